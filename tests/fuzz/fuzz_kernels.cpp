// logitkit differential fuzzer (libFuzzer).
//
// Each input decodes one call: a kernel (softmax, log_softmax, logsumexp, softmax_backward,
// log_softmax_backward), an element type, a rank 1..4 and shape, an axis, a temperature, a memory
// layout per operand (permuted, padded, negative and, for inputs, zero strides) and the values
// (finite values of several magnitudes, +-inf, NaN, +-0, subnormals, huge and raw bit patterns).
// The call runs twice, on the SIMD path these flags compile (logitkit::simd_arch_name()) and
// forced to logitkit::detail::scalar_arch, each on its own copy of the memory. Checked:
//
//  * valid calls: neither path throws; no byte outside the output elements changes; where NaN is
//    expected (docs/api.md) both paths give NaN, infinities agree exactly, and every other output
//    of each path is within the stated error bound of a long double reference, so the two paths
//    are within twice that bound of each other;
//  * invalid calls (axis out of range, mismatched shapes, bad temperature, null data, partial
//    overlap of an output with an input, an output that maps two indices to one element, a
//    negative or overflowing extent): the documented exception type is thrown (std::out_of_range
//    for the axis, std::invalid_argument otherwise), its message starts with
//    "logitkit::<function>: ", and not one byte of any operand's memory changes.
//
// Every operand lives in its own exactly sized heap allocation (shared only where the case asks
// for aliasing), so AddressSanitizer sees any access past a view's memory. A violation prints the
// case and aborts, which libFuzzer reports as a crash and saves as an artifact.
// SPDX-License-Identifier: MIT
#include "fuzz_common.hpp"

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace {

using namespace lk_fuzz;

constexpr std::size_t max_rank = 4;
constexpr index_type max_elements = 1024;  // per operand, logical

enum class kernel_id { softmax, log_softmax, logsumexp, softmax_backward, log_softmax_backward };
constexpr kernel_id all_kernels[] = {kernel_id::softmax, kernel_id::log_softmax, kernel_id::logsumexp,
                                     kernel_id::softmax_backward, kernel_id::log_softmax_backward};

const char* kernel_name(kernel_id k) {
    switch (k) {
        case kernel_id::softmax: return "softmax";
        case kernel_id::log_softmax: return "log_softmax";
        case kernel_id::logsumexp: return "logsumexp";
        case kernel_id::softmax_backward: return "softmax_backward";
        case kernel_id::log_softmax_backward: return "log_softmax_backward";
    }
    return "?";
}
bool is_forward(kernel_id k) { return k == kernel_id::softmax || k == kernel_id::log_softmax; }
bool is_backward(kernel_id k) { return k == kernel_id::softmax_backward || k == kernel_id::log_softmax_backward; }

/// How the operands are placed relative to each other.
enum class placement {
    separate,        // each operand in its own allocation
    in_place,        // the output is exactly an input's view (allowed except for logsumexp)
    overlap,         // the output shares an input's allocation at a shifted offset
    duplicate,       // the output has stride 0 on a dimension of extent >= 2
    shape_mismatch,  // one operand's shape differs from the expected one
    null_input,      // an input's data is null
    null_output,     // the output's data is null
};
constexpr placement all_placements[] = {placement::separate, placement::in_place,       placement::overlap,
                                        placement::duplicate, placement::shape_mismatch, placement::null_input,
                                        placement::null_output};
const char* placement_name(placement p) {
    switch (p) {
        case placement::separate: return "separate";
        case placement::in_place: return "in place";
        case placement::overlap: return "shifted into an input's memory";
        case placement::duplicate: return "output with a zero stride";
        case placement::shape_mismatch: return "shape mismatch";
        case placement::null_input: return "null input";
        case placement::null_output: return "null output";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------
// Reference (long double) and the stated bounds (docs/api.md).
// ---------------------------------------------------------------------------------------------

template <class T>
std::vector<expected_value> reference(kernel_id k, const std::vector<dense<T>>& in, const shape_t& out_shape,
                                      std::size_t axis, T t) {
    const shape_t& shape = in[0].shape;
    std::vector<expected_value> out(static_cast<std::size_t>(count(out_shape)));
    const ld inf = std::numeric_limits<ld>::infinity();
    if (k == kernel_id::logsumexp) {
        shape_t rs(out_shape.size(), 1);
        for (std::size_t d = out_shape.size() - 1; d-- > 0;) rs[d] = rs[d + 1] * out_shape[d + 1];
        // Output index of each input line: the input's row-major line base mapped to out_shape.
        shape_t irs(shape.size(), 1);
        for (std::size_t d = shape.size() - 1; d-- > 0;) irs[d] = irs[d + 1] * shape[d + 1];
        shape_t outer = shape;
        outer[axis] = 1;
        if (count(outer) == 0) return out;
        index_type o = 0;
        for_each_offset(outer, irs, [&](index_type base) {
            const index_type stride = irs[axis], n = shape[axis];
            bool nan = false, pinf = false;
            ld m = -inf;
            for (index_type i = 0; i < n; ++i) {
                const ld x = static_cast<ld>(in[0].v[static_cast<std::size_t>(base + i * stride)]);
                nan = nan || std::isnan(x);
                pinf = pinf || x == inf;
                if (x > m) m = x;
            }
            expected_value e;
            if (nan) {
                e.nan = true;
            } else if (pinf) {
                e.ref = inf;
            } else if (m == -inf) {
                e.ref = -inf;
            } else {
                ld s = 0;
                for (index_type i = 0; i < n; ++i)
                    s += std::exp(static_cast<ld>(in[0].v[static_cast<std::size_t>(base + i * stride)]) - m);
                e.ref = m + std::log(s);
                e.allowed = bounds<T>::log_coef * std::max<ld>(1, std::fabs(e.ref));
            }
            out[static_cast<std::size_t>(o++)] = e;
        });
        return out;
    }
    for_each_line(shape, axis, [&](index_type base, index_type stride, index_type n) {
        std::vector<ld> a(static_cast<std::size_t>(n)), b(is_backward(k) ? a.size() : 0);
        for (index_type i = 0; i < n; ++i) {
            const std::size_t at = static_cast<std::size_t>(base + i * stride);
            // The forward kernels see x / T rounded to T, as documented.
            a[static_cast<std::size_t>(i)] = static_cast<ld>(is_forward(k) ? static_cast<T>(in[0].v[at] / t) : in[0].v[at]);
            if (is_backward(k)) b[static_cast<std::size_t>(i)] = static_cast<ld>(in[1].v[at]);
        }
        expected_value* line = out.data() + base;
        if (is_forward(k))
            softmax_line_reference<T>(a, k == kernel_id::log_softmax, line, stride);
        else
            backward_line_reference<T>(a, b, k == kernel_id::softmax_backward, 1, line, stride);
    });
    return out;
}

// ---------------------------------------------------------------------------------------------
// One case.
// ---------------------------------------------------------------------------------------------

template <class T>
struct fuzz_case {
    kernel_id k = kernel_id::softmax;
    shape_t shape;  // the input shape
    int axis = -1;
    double temperature = 1.0;
    placement place = placement::separate;
    std::vector<operand> ops;  // inputs first, output last
    std::vector<std::vector<T>> allocs;

    std::string describe() const {
        std::string s = std::string("logitkit::") + kernel_name(k) + "<" + (sizeof(T) == 4 ? "float" : "double") +
                        "> shape " + format(shape) + " axis " + std::to_string(axis);
        if (is_forward(k)) s += " temperature " + show(temperature);
        s += "; placement: " + std::string(placement_name(place)) + "; SIMD path " + logitkit::simd_arch_name();
        for (const operand& o : ops) s += "\n  " + describe_operand(o, o.alloc == none ? 0 : allocs[o.alloc].size());
        return s;
    }
};

template <class Arch, class T, std::size_t R>
outcome run(const fuzz_case<T>& c, std::vector<std::vector<T>>& mem) {
    auto view = [&](const operand& o) { return view_of<T, R>(o, mem); };
    return capture([&] {
        logitkit::softmax_options opt;
        opt.temperature = c.temperature;
        const auto out = view(c.ops.back());
        const logitkit::tensor_view<const T, R> a = view(c.ops[0]);
        switch (c.k) {
            case kernel_id::softmax: logitkit::softmax<Arch>(a, out, c.axis, opt); break;
            case kernel_id::log_softmax: logitkit::log_softmax<Arch>(a, out, c.axis, opt); break;
            case kernel_id::logsumexp: logitkit::logsumexp<Arch>(a, out, c.axis); break;
            case kernel_id::softmax_backward:
                logitkit::softmax_backward<Arch>(a, logitkit::tensor_view<const T, R>(view(c.ops[1])), out, c.axis);
                break;
            case kernel_id::log_softmax_backward:
                logitkit::log_softmax_backward<Arch>(a, logitkit::tensor_view<const T, R>(view(c.ops[1])), out,
                                                     c.axis);
                break;
        }
    });
}

/// The errors the documented rules predict for this case (computed independently of the library).
template <class T>
void predict_errors(const fuzz_case<T>& c, bool& out_of_range, bool& invalid_argument) {
    out_of_range = !axis_in_range(c.axis, c.shape.size());
    invalid_argument = false;
    const operand& out = c.ops.back();
    // Shapes.
    if (c.k == kernel_id::logsumexp) {
        if (!out_of_range) {
            shape_t expected = c.shape;
            expected[lk_ref::normalize_axis(c.axis, c.shape.size())] = 1;
            invalid_argument = invalid_argument || out.shape != expected;
        }
    } else {
        for (const operand& o : c.ops) invalid_argument = invalid_argument || o.shape != c.shape;
    }
    // Temperature, rounded to the element type.
    if (is_forward(c.k)) invalid_argument = invalid_argument || !valid_temperature<T>(c.temperature);
    for (const operand& o : c.ops) invalid_argument = invalid_argument || null_with_elements(o);
    invalid_argument = invalid_argument || repeats_elements(out);
    // Overlap of the output's memory span with an input's, other than exact in-place use.
    for (std::size_t i = 0; i + 1 < c.ops.size(); ++i) {
        const operand& in = c.ops[i];
        if (same_view(in, out) && c.k != kernel_id::logsumexp) continue;
        invalid_argument = invalid_argument || spans_intersect(in, out);
    }
}

template <class T>
void check_output(const fuzz_case<T>& c, const char* path, const dense<T>& got, const std::vector<expected_value>& ex,
                  const dense<T>& other, const std::vector<dense<T>>& in, std::size_t axis) {
    for (std::size_t i = 0; i < ex.size(); ++i) {
        if (const char* why = mismatch(got.v[i], ex[i])) {
            std::string s = c.describe() + "\n" + mismatch_report("output", i, path, why, got.v[i], other.v[i], ex[i]);
            // The line along the axis that produced this output.
            const shape_t& shape = in[0].shape;
            shape_t rs(shape.size(), 1), ors(got.shape.size(), 1);
            for (std::size_t d = shape.size() - 1; d-- > 0;) {
                rs[d] = rs[d + 1] * shape[d + 1];
                ors[d] = ors[d + 1] * got.shape[d + 1];
            }
            index_type base = 0, rem = static_cast<index_type>(i);
            for (std::size_t d = 0; d < shape.size(); ++d) {
                const index_type id = rem / ors[d];
                rem %= ors[d];
                if (d != axis) base += id * rs[d];
            }
            for (std::size_t j = 0; j < in.size(); ++j) {
                s += "\n  " + std::string(c.ops[j].name) + " along the axis:";
                for (index_type q = 0; q < shape[axis] && q < 80; ++q)
                    s += " " + show(in[j].v[static_cast<std::size_t>(base + q * rs[axis])]);
                if (shape[axis] > 80) s += " ...";
            }
            fail(s);
        }
    }
}

template <class T, std::size_t R>
void run_case(const fuzz_case<T>& c) {
    bool want_oor = false, want_inv = false;
    predict_errors(c, want_oor, want_inv);
    if (verbose())
        std::fprintf(stderr, "logitkit fuzz: case %s\n  expected: %s\n", c.describe().c_str(),
                     expected_error_name(want_oor, want_inv));

    std::vector<std::vector<T>> simd_mem = c.allocs, scalar_mem = c.allocs;
    const outcome simd = run<logitkit::detail::default_arch, T, R>(c, simd_mem);
    const outcome scalar = run<logitkit::detail::scalar_arch, T, R>(c, scalar_mem);
    check_outcomes(c.describe(), kernel_name(c.k), simd, scalar, want_oor, want_inv);

    // Memory: bytes outside the output's elements never change; after a throw nothing changes.
    const operand& out = c.ops.back();
    const bool threw = simd.thrown != outcome::none;
    write_mask written = no_writes(c.allocs);
    if (!threw) allow_writes(written, out);
    check_unchanged(c.describe(), "SIMD", c.allocs, simd_mem, written, threw);
    check_unchanged(c.describe(), "scalar", c.allocs, scalar_mem, written, threw);
    if (simd.thrown != outcome::none) return;

    // Values.
    std::vector<dense<T>> in;
    for (std::size_t i = 0; i + 1 < c.ops.size(); ++i) in.push_back(gather(c.ops[i], c.allocs));
    const dense<T> got_simd = gather(out, simd_mem), got_scalar = gather(out, scalar_mem);
    const std::size_t axis = lk_ref::normalize_axis(c.axis, R);
    const auto ex = reference<T>(c.k, in, out.shape, axis, static_cast<T>(c.temperature));
    check_output(c, "SIMD", got_simd, ex, got_scalar, in, axis);
    check_output(c, "scalar", got_scalar, ex, got_simd, in, axis);
}

/// tensor_view's own checks: a negative extent, or a shape whose size overflows, throws
/// std::invalid_argument from the constructor.
template <class T, std::size_t R>
void check_view_errors(FuzzedDataProvider& f) {
    logitkit::extents_type<R> shape{};
    for (auto& e : shape) e = f.ConsumeIntegralInRange<index_type>(0, 3);
    const bool negative = f.ConsumeBool();
    if (negative)
        shape[f.ConsumeIntegralInRange<std::size_t>(0, R - 1)] = -f.ConsumeIntegralInRange<index_type>(1, PTRDIFF_MAX);
    else if (R >= 2)
        for (auto& e : shape) e = f.ConsumeIntegralInRange<index_type>(index_type(1) << 33, PTRDIFF_MAX);
    else
        return;
    T dummy[1] = {T(0)};
    try {
        if (f.ConsumeBool())
            (void)logitkit::tensor_view<T, R>(dummy, shape);
        else
            (void)logitkit::tensor_view<const T, R>(dummy, shape, shape);
    } catch (const std::invalid_argument& e) {
        if (std::string(e.what()).compare(0, 22, "logitkit::tensor_view:") != 0)
            fail(std::string("tensor_view error message does not start with \"logitkit::tensor_view:\": ") + e.what());
        return;
    }
    fail("tensor_view accepted the invalid shape " + format(shape_t(shape.begin(), shape.end())));
}

template <class T, std::size_t R>
void fuzz_one(FuzzedDataProvider& f) {
    fuzz_case<T> c;
    c.k = f.PickValueInArray(all_kernels);
    // Shape: small extents (the SIMD widths are 4 to 16 lanes), now and then a larger one.
    c.shape = decode_shape(f, R, max_elements);
    const int r = static_cast<int>(R);
    c.axis = decode_axis(f, r);
    if (is_forward(c.k) && f.ConsumeBool()) c.temperature = decode_temperature(f);
    const int pl = f.ConsumeIntegralInRange<int>(0, 31);
    c.place = pl < 18 ? placement::separate : all_placements[1 + (pl - 18) % 6];
    const std::size_t a = axis_or(c.axis, R, 0);

    // Operands and their shapes.
    const std::size_t n_in = is_backward(c.k) ? 2 : 1;
    const char* names[3] = {"x", "y", ""};
    if (is_backward(c.k)) {
        names[0] = "y";
        names[1] = "dy";
        names[2] = "dx";
    } else {
        names[1] = c.k == kernel_id::logsumexp ? "out" : "y";
    }
    c.ops.resize(n_in + 1);
    for (std::size_t i = 0; i <= n_in; ++i) {
        c.ops[i].name = names[i];
        c.ops[i].shape = c.shape;
        c.ops[i].is_output = i == n_in;
    }
    operand& out = c.ops.back();
    if (c.k == kernel_id::logsumexp) out.shape[a] = 1;
    if (c.place == placement::shape_mismatch) mismatch_shape(f, c.ops[f.ConsumeIntegralInRange<std::size_t>(1, n_in)].shape);
    for (std::size_t i = 0; i <= n_in; ++i) c.ops[i].strides = decode_strides(f, c.ops[i].shape, i < n_in);

    // Allocations.
    auto place_alone = [&](operand& o) { lk_fuzz::place_alone(f, o, c.allocs); };
    for (std::size_t i = 0; i < n_in; ++i) place_alone(c.ops[i]);
    switch (c.place) {
        case placement::in_place: {
            const operand& src = c.ops[f.ConsumeIntegralInRange<std::size_t>(0, n_in - 1)];
            out.strides = src.strides;  // same view; for logsumexp a different shape over the same memory
            if (out.shape == src.shape) {
                out.alloc = src.alloc;
                out.offset = src.offset;
            } else {
                // logsumexp: x's strides, out's shape, x's data; make sure it fits.
                const auto so = span_of(out), ss = span_of(src);
                if (so.first >= ss.first && so.second <= ss.second) {
                    out.alloc = src.alloc;
                    out.offset = src.offset;
                } else {
                    place_alone(out);
                }
            }
            break;
        }
        case placement::overlap:
            place_shifted(f, c.ops[f.ConsumeIntegralInRange<std::size_t>(0, n_in - 1)], out, c.allocs);
            break;
        case placement::duplicate:
            make_repeated(f, out);
            place_alone(out);
            break;
        case placement::null_output:
            out.alloc = none;
            break;
        case placement::null_input: {
            place_alone(out);
            operand& in = c.ops[f.ConsumeIntegralInRange<std::size_t>(0, n_in - 1)];
            // (An open issue in tests/fuzz/README.md would be avoided here, under
            // #if LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES, until it is fixed.)
            in.alloc = none;
            break;
        }
        default:
            place_alone(out);
            break;
    }
    // Allocations of null inputs stay allocated but unused; that is harmless.

    // Values: every element of every allocation, padding included.
    fill_values(f, c.allocs);

    run_case<T, R>(c);
    check_view_errors<T, R>(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider f(data, size);
    with_element_type(f, [&](auto t) {
        with_rank<1, max_rank>(f, [&](auto r) { fuzz_one<decltype(t), decltype(r)::value>(f); });
    });
    return 0;
}
