// Reference implementations for the logitkit tests.
//
// Everything here is deliberately simple: a dense, row-major tensor of any rank stored in a
// std::vector, and the softmax-family operations evaluated element by element in long double.
// Nothing in this file uses logitkit, so the tests compare the library against an independent
// implementation.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace lk_ref {

using ld = long double;
using index_t = std::ptrdiff_t;
using shape_t = std::vector<index_t>;

inline index_t numel(const shape_t& shape) {
    index_t n = 1;
    for (index_t e : shape) n *= e;
    return n;
}

inline std::string shape_string(const shape_t& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) {
        if (i != 0) s += ", ";
        s += std::to_string(shape[i]);
    }
    return s + "]";
}

/// A dense row-major tensor of values of type V.
template <class V>
struct dense {
    shape_t shape;
    std::vector<V> data;

    dense() = default;
    explicit dense(shape_t s, V fill = V()) : shape(std::move(s)), data(static_cast<std::size_t>(numel(shape)), fill) {}

    index_t size() const { return static_cast<index_t>(data.size()); }
    std::size_t rank() const { return shape.size(); }
    V& operator[](index_t i) { return data[static_cast<std::size_t>(i)]; }
    const V& operator[](index_t i) const { return data[static_cast<std::size_t>(i)]; }
};

/// Turns a possibly negative axis into [0, rank). The tests only pass valid axes here.
inline std::size_t normalize_axis(int axis, std::size_t rank) {
    const int r = static_cast<int>(rank);
    if (axis < -r || axis >= r) throw std::logic_error("reference: axis out of range");
    return static_cast<std::size_t>(axis < 0 ? axis + r : axis);
}

/// The rows of a dense tensor along `axis`: `outer` x `inner` rows of `n` elements each. Element
/// `i` of row (o, j) is at linear index `o * n * inner + i * inner + j`.
struct rows_t {
    index_t outer = 1, n = 1, inner = 1;
    index_t base(index_t o, index_t j) const { return o * n * inner + j; }
    index_t stride() const { return inner; }
    index_t count() const { return outer * inner; }
};

inline rows_t rows_of(const shape_t& shape, int axis) {
    const std::size_t a = normalize_axis(axis, shape.size());
    rows_t r;
    for (std::size_t k = 0; k < a; ++k) r.outer *= shape[k];
    r.n = shape[a];
    for (std::size_t k = a + 1; k < shape.size(); ++k) r.inner *= shape[k];
    return r;
}

/// Calls f(base, stride, n) for each row along `axis`.
template <class F>
void for_each_row(const shape_t& shape, int axis, F&& f) {
    const rows_t r = rows_of(shape, axis);
    for (index_t o = 0; o < r.outer; ++o)
        for (index_t j = 0; j < r.inner; ++j) f(r.base(o, j), r.stride(), r.n);
}

/// x / temperature as the library defines it: the quotient is computed and rounded in the element
/// type (`fl(x / T)`, PyTorch's `x / T`), then widened.
template <class Elem>
ld scaled_input(Elem x, double temperature) {
    if (temperature == 1.0) return static_cast<ld>(x);
    const Elem t = static_cast<Elem>(temperature);
    const Elem q = static_cast<Elem>(x / t);
    return static_cast<ld>(q);
}

namespace detail {

constexpr ld ld_nan() { return std::numeric_limits<ld>::quiet_NaN(); }
constexpr ld ld_inf() { return std::numeric_limits<ld>::infinity(); }

/// Shared row pass of softmax and log_softmax: fills `out` with softmax (log == false) or
/// log_softmax (log == true) of the scaled inputs.
template <class Elem>
dense<ld> softmax_impl(const dense<Elem>& x, int axis, double temperature, bool log) {
    dense<ld> y(x.shape, ld(0));
    std::vector<ld> v;
    for_each_row(x.shape, axis, [&](index_t base, index_t stride, index_t n) {
        if (n == 0) return;
        v.resize(static_cast<std::size_t>(n));
        bool any_nan = false;
        ld m = -ld_inf();
        for (index_t i = 0; i < n; ++i) {
            const ld s = scaled_input(x[base + i * stride], temperature);
            v[static_cast<std::size_t>(i)] = s;
            if (std::isnan(s))
                any_nan = true;
            else if (s > m)
                m = s;
        }
        // Row maximum not finite (NaN anywhere, +inf, or every entry -inf): NaN row.
        if (any_nan || !std::isfinite(m)) {
            for (index_t i = 0; i < n; ++i) y[base + i * stride] = ld_nan();
            return;
        }
        ld sum = 0;
        for (index_t i = 0; i < n; ++i) sum += std::exp(v[static_cast<std::size_t>(i)] - m);
        const ld log_sum = std::log(sum);
        for (index_t i = 0; i < n; ++i) {
            const ld d = v[static_cast<std::size_t>(i)] - m;  // -inf for -inf entries
            y[base + i * stride] = log ? d - log_sum : std::exp(d) / sum;
        }
    });
    return y;
}

}  // namespace detail

/// softmax(fl(x / T)) along `axis`.
template <class Elem>
dense<ld> softmax(const dense<Elem>& x, int axis, double temperature = 1.0) {
    return detail::softmax_impl(x, axis, temperature, false);
}

/// log_softmax(fl(x / T)) along `axis`.
template <class Elem>
dense<ld> log_softmax(const dense<Elem>& x, int axis, double temperature = 1.0) {
    return detail::softmax_impl(x, axis, temperature, true);
}

/// The output shape of logsumexp: x's shape with extent 1 on `axis`.
inline shape_t reduced_shape(const shape_t& shape, int axis) {
    shape_t s = shape;
    s[normalize_axis(axis, shape.size())] = 1;
    return s;
}

/// log(sum(exp(x))) along `axis`; the result keeps the axis with extent 1.
/// Any NaN -> NaN; otherwise any +inf -> +inf; all -inf (or an empty row) -> -inf.
template <class Elem>
dense<ld> logsumexp(const dense<Elem>& x, int axis) {
    dense<ld> out(reduced_shape(x.shape, axis), ld(0));
    const rows_t r = rows_of(x.shape, axis);
    for (index_t o = 0; o < r.outer; ++o) {
        for (index_t j = 0; j < r.inner; ++j) {
            const index_t base = r.base(o, j);
            bool any_nan = false;
            ld m = -detail::ld_inf();
            for (index_t i = 0; i < r.n; ++i) {
                const ld s = static_cast<ld>(x[base + i * r.inner]);
                if (std::isnan(s))
                    any_nan = true;
                else if (s > m)
                    m = s;
            }
            ld result;
            if (any_nan) {
                result = detail::ld_nan();
            } else if (!std::isfinite(m)) {
                result = m;  // +inf, or -inf for all -inf / empty rows
            } else {
                ld sum = 0;
                for (index_t i = 0; i < r.n; ++i) sum += std::exp(static_cast<ld>(x[base + i * r.inner]) - m);
                result = m + std::log(sum);
            }
            out[o * r.inner + j] = result;
        }
    }
    return out;
}

/// dx = y * (dy - sum(dy * y)) along `axis`, plain (IEEE) arithmetic in long double.
template <class Elem>
dense<ld> softmax_backward(const dense<Elem>& y, const dense<Elem>& dy, int axis) {
    dense<ld> dx(y.shape, ld(0));
    for_each_row(y.shape, axis, [&](index_t base, index_t stride, index_t n) {
        ld s = 0;
        for (index_t i = 0; i < n; ++i) s += static_cast<ld>(dy[base + i * stride]) * static_cast<ld>(y[base + i * stride]);
        for (index_t i = 0; i < n; ++i) {
            const index_t k = base + i * stride;
            dx[k] = static_cast<ld>(y[k]) * (static_cast<ld>(dy[k]) - s);
        }
    });
    return dx;
}

/// dx = dy - exp(y) * sum(dy) along `axis`, plain (IEEE) arithmetic in long double.
template <class Elem>
dense<ld> log_softmax_backward(const dense<Elem>& y, const dense<Elem>& dy, int axis) {
    dense<ld> dx(y.shape, ld(0));
    for_each_row(y.shape, axis, [&](index_t base, index_t stride, index_t n) {
        ld s = 0;
        for (index_t i = 0; i < n; ++i) s += static_cast<ld>(dy[base + i * stride]);
        for (index_t i = 0; i < n; ++i) {
            const index_t k = base + i * stride;
            dx[k] = static_cast<ld>(dy[k]) - std::exp(static_cast<ld>(y[k])) * s;
        }
    });
    return dx;
}

/// Error scale of softmax_backward: |y| * (|dy| + sum|dy * y|).
template <class Elem>
dense<ld> softmax_backward_scale(const dense<Elem>& y, const dense<Elem>& dy, int axis) {
    dense<ld> sc(y.shape, ld(0));
    for_each_row(y.shape, axis, [&](index_t base, index_t stride, index_t n) {
        ld s = 0;
        for (index_t i = 0; i < n; ++i)
            s += std::fabs(static_cast<ld>(dy[base + i * stride]) * static_cast<ld>(y[base + i * stride]));
        for (index_t i = 0; i < n; ++i) {
            const index_t k = base + i * stride;
            sc[k] = std::fabs(static_cast<ld>(y[k])) * (std::fabs(static_cast<ld>(dy[k])) + s);
        }
    });
    return sc;
}

/// Error scale of log_softmax_backward: |dy| + exp(y) * sum|dy|.
template <class Elem>
dense<ld> log_softmax_backward_scale(const dense<Elem>& y, const dense<Elem>& dy, int axis) {
    dense<ld> sc(y.shape, ld(0));
    for_each_row(y.shape, axis, [&](index_t base, index_t stride, index_t n) {
        ld s = 0;
        for (index_t i = 0; i < n; ++i) s += std::fabs(static_cast<ld>(dy[base + i * stride]));
        for (index_t i = 0; i < n; ++i) {
            const index_t k = base + i * stride;
            sc[k] = std::fabs(static_cast<ld>(dy[k])) + std::exp(static_cast<ld>(y[k])) * s;
        }
    });
    return sc;
}

}  // namespace lk_ref
