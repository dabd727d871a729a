#!/usr/bin/env python3
"""Writes tour.expected: the exact text that examples/tour.cpp must print on stdout.

Every number is computed independently of logitkit, with numpy in float64, straight from the
textbook definitions:

    softmax(x)     = exp(x - max x) / sum(exp(x - max x))
    log_softmax(x) = (x - max x) - log(sum(exp(x - max x)))
    logsumexp(x)   = max x + log(sum(exp(x - max x)))
    softmax_backward:     dx = y * (dy - sum(dy * y))
    log_softmax_backward: dx = dy - exp(z) * sum(dy)

The tour computes in double and prints results with six decimals. Before writing anything,
this script checks that each printed value is far enough from a rounding boundary of "%.6f"
that rounding in the tour's own computation cannot change the printed digits: a margin of
1e-12 * max(1, |value|) for double results (16 float ulps for any result computed in float),
and stops with an error otherwise.

Usage: python3 tour_expected.py [OUTPUT]   (default: tour.expected next to this script)
Needs numpy (Debian: apt-get install python3-numpy).
"""

import os
import sys

import numpy as np

# ------------------------------------------------------------------------------------------------
# Reference kernels (float64).


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def logsumexp(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=axis, keepdims=True)
    return m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def softmax_backward(y, dy):
    return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))


def log_softmax_backward(z, dz):
    return dz - np.exp(z) * np.sum(dz, axis=-1, keepdims=True)


def f64(values):
    """The tour's double inputs."""
    return np.asarray(values, dtype=np.float64)


# ------------------------------------------------------------------------------------------------
# Formatting, mirroring the printing helpers of tour.cpp.

out = []


def emit(line=""):
    out.append(line + "\n")


def fmt_result(v, dtype="double", nonnegative=False):
    """'%.6f' of v, after checking that rounding of the tour's computation cannot change it.

    nonnegative: the quantity cannot come out negative (a probability), so "-0.000000" is not a
    possible rendering of it.
    """
    v = float(v)
    if dtype == "float":
        margin = 16 * float(np.spacing(np.float32(abs(v))))
    else:
        margin = 1e-12 * max(1.0, abs(v))  # far above any double rounding in the kernels
    text = "%.6f" % v
    lo, hi = "%.6f" % (max(0.0, v - margin) if nonnegative else v - margin), "%.6f" % (v + margin)
    if lo != text or hi != text:
        sys.exit("tour_expected.py: %r is within %.3g of a rounding boundary of '%%.6f' "
                 "(%s .. %s); choose other inputs" % (v, margin, lo, hi))
    return text


def fmt_input(v):
    return "%g" % float(v)


def fmt(v, style, dtype):
    return fmt_input(v) if style == "input" else fmt_result(v, dtype)


def print_vector(name, v, style="result", dtype="double"):
    emit("  %s = [%s]" % (name, ", ".join(fmt(e, style, dtype) for e in np.ravel(v))))


def print_matrix(name, m, style="result", dtype="double"):
    m = np.asarray(m)
    indent = len(name) + 5  # width of "  NAME = "
    rows = ["[" + ", ".join(fmt(e, style, dtype) for e in row) + "]" for row in m]
    emit("  %s = [%s]" % (name, (",\n" + " " * (indent + 1)).join(rows)))


def heading(title):
    emit()
    emit(title)
    emit("-" * len(title))


def say(line):
    emit("  " + line)


# ------------------------------------------------------------------------------------------------
# The tour, section by section.


def softmax_along_dim1():
    heading("1. softmax along dim 1")
    say("softmax turns a row of scores (logits) into probabilities:")
    say("softmax(x)_i = exp(x_i) / sum_j exp(x_j), taken along one axis.")
    x = f64([[1, 2, 3], [1, 2, 3]])
    y = softmax(x, axis=1)
    print_matrix("x", x, "input")
    print_matrix("softmax(x, axis=1)", y)
    say("Each row is normalised on its own, so equal rows give equal probabilities.")
    say("Every entry is positive and every row sums to 1:")
    print_vector("row sums", y.sum(axis=1))


def softmax_of_scores():
    heading("2. softmax of a score vector")
    x = f64([2.0, 1.0, 0.1, 0.5])
    print_vector("x", x, "input")
    print_vector("softmax(x)", softmax(x))
    say("The largest score gets the largest probability and the order is kept,")
    assert str(np.e).startswith("2.718")
    say("but the gaps are exaggerated: a score 1 higher is e = 2.718... times as likely.")


def softmax_and_log_softmax():
    heading("3. softmax and log_softmax of [2, 3]")
    x = f64([2, 3])
    print_vector("x", x, "input")
    print_vector("softmax(x)", softmax(x))
    print_vector("log_softmax(x)", log_softmax(x))
    say("With two entries, softmax is the logistic sigmoid of the difference:")
    emit("  1 / (1 + exp(-(3 - 2))) = %s" % fmt_result(1.0 / (1.0 + np.exp(-1.0)), "double"))
    say("log_softmax(x) = x - logsumexp(x) is computed directly, not as log(softmax(x)),")
    say("so it stays exact where softmax underflows. For x = [0, -800], exp(-800) is below")
    say("the smallest double, so softmax(x)[1] is 0 and its log would be -inf:")
    with np.errstate(under="ignore"):
        assert np.exp(-800.0) == 0.0
    x2 = f64([0, -800])
    emit("  softmax(x)[1] = %s, log_softmax(x)[1] = %s"
         % (fmt_result(softmax(x2)[1], nonnegative=True), fmt_result(log_softmax(x2)[1])))


def axis0_versus_axis1():
    heading("4. axis 0 versus axis 1")
    x = f64([[1, 2, 3], [4, 5, 6]])
    cols = softmax(x, axis=0)
    print_matrix("x", x, "input")
    print_matrix("softmax(x, axis=1)", softmax(x, axis=1))
    print_matrix("softmax(x, axis=0)", cols)
    say("axis=1 (or -1, the default) normalises each row; axis=0 normalises each column.")
    say("Softmax only sees differences: row [4, 5, 6] gives the same result as [1, 2, 3],")
    say("and every column [k, k + 3] gives the same pair of probabilities. Column sums:")
    print_vector("column sums", cols.sum(axis=0))


def temperature():
    heading("5. temperature")
    say("softmax_options::temperature = T gives softmax(x / T). One row, three temperatures:")
    x = f64([2.0, 1.0, 0.1, 0.5])
    print_vector("x", x, "input")
    for t in (0.5, 1.0, 2.0):
        # The kernel takes fl(x / T); these T are powers of two, so x / T is exact.
        assert np.array_equal((x / t) * t, x)
        print_vector("softmax(x / %g)" % t, softmax(x / t))
    say("T < 1 sharpens the distribution towards the largest score, T > 1 flattens it")
    say("towards uniform (1/4 each here); T = 1 is plain softmax.")


def smooth_maximum():
    heading("6. logsumexp")
    say("logsumexp(x) = log(sum_i exp(x_i)) is a smooth maximum, a little above max(x).")
    say("The result keeps x's rank with extent 1 on the reduced axis (here 2x1):")
    x = f64([[1, 2, 3], [4, 5, 6]])
    lse = logsumexp(x, axis=1)
    print_matrix("x", x, "input")
    print_matrix("logsumexp(x, axis=1)", lse)
    say("log_softmax(x) is x minus this, e.g. 1 - %s = %s."
        % (fmt_result(lse[0, 0]), fmt_result(log_softmax(x, axis=1)[0, 0])))
    say("The row maximum is subtracted first, so large scores do not overflow.")
    say("exp(1000) is infinite even in double, yet:")
    with np.errstate(over="ignore"):
        assert np.isinf(np.exp(1000.0))
    big = np.array([1000, 1001, 1002], dtype=np.float64)
    print_vector("x", big, "input")
    print_vector("logsumexp(x)", logsumexp(big))
    print_vector("softmax(x)", softmax(big))
    say("which is softmax([1, 2, 3]) again: adding a constant to every score changes nothing.")


def transposed_view():
    heading("7. a transposed (strided) view")
    say("A tensor_view is a pointer, a shape and strides (in elements), so a transpose is")
    say("just another view of the same memory. Here m is stored as a 3x2 row-major matrix:")
    m = f64([[1, 4], [2, 5], [3, 6]])
    print_matrix("m", m, "input")
    # The view with shape (2, 3) and strides (1, 2) over m's buffer, built from the strides
    # themselves rather than with .T, as the tour does.
    buf = m.ravel()
    t = np.array([[buf[i * 1 + j * 2] for j in range(3)] for i in range(2)])
    assert np.array_equal(t, m.T)
    say("Its transpose t is the view with shape {2, 3} and strides {1, 2}:")
    print_matrix("t", t, "input")
    yt = softmax(t, axis=1)
    print_matrix("softmax(t, axis=1)", yt)
    say("No copy was made: the kernel walked the strides. The 3x2 buffer behind the output")
    say("now holds softmax(m, axis=0):")
    ybuf = np.empty(6)
    for i in range(2):
        for j in range(3):
            ybuf[i * 1 + j * 2] = yt[i, j]
    assert np.allclose(ybuf.reshape(3, 2), softmax(m, axis=0), rtol=1e-15, atol=0)
    print_matrix("buffer", ybuf.reshape(3, 2))


def gradients():
    heading("8. gradients (backward)")
    say("softmax_backward(y, dy, dx) gives dx = y * (dy - sum(dy * y)), the gradient with")
    say("respect to x of a loss whose gradient with respect to y = softmax(x) is dy.")
    x = f64([1, 2, 3])
    y = softmax(x)
    dy = f64([0, 0, 1])
    dx = softmax_backward(y, dy)
    # Cross-check against the Jacobian of softmax: J = diag(y) - y y^T, dx = J^T dy.
    jac = np.diag(y) - np.outer(y, y)
    assert np.allclose(dx, jac.T @ dy, rtol=1e-14, atol=1e-16)
    print_vector("x", x, "input")
    print_vector("y = softmax(x)", y)
    print_vector("dy", dy, "input")
    print_vector("dx", dx)
    say("Raising x[2] raises y[2] and lowers the others; dx sums to 0 because y always")
    say("sums to 1.")
    emit()
    say("log_softmax_backward(z, dz, dx) gives dx = dz - exp(z) * sum(dz) for z = log_softmax(x).")
    say("Cross-entropy with target class 2 is loss = -z[2], so dz = [0, 0, -1]:")
    z = log_softmax(x)
    dz = f64([0, 0, -1])
    dxz = log_softmax_backward(z, dz)
    assert np.allclose(dxz, softmax(x) - np.array([0, 0, 1]), rtol=1e-14, atol=1e-16)
    print_vector("z = log_softmax(x)", z)
    emit("  loss = -z[2] = %s" % fmt_result(-z[2]))
    print_vector("dx", dxz)
    say("This is the familiar softmax(x) - onehot(target).")


def main():
    title = "logitkit tour: softmax, log_softmax, logsumexp and their gradients"
    emit(title)
    emit("=" * len(title))
    emit("The examples compute in double (float views work the same way) and print 6 decimals.")
    softmax_along_dim1()
    softmax_of_scores()
    softmax_and_log_softmax()
    axis0_versus_axis1()
    temperature()
    smooth_maximum()
    transposed_view()
    gradients()

    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "tour.expected")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write("".join(out))
    print("wrote %s (%d lines)" % (path, sum(s.count("\n") for s in out)))


if __name__ == "__main__":
    main()
