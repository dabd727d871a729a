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
#include <fuzzer/FuzzedDataProvider.h>

#include <logitkit/logitkit.hpp>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES
#define LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES 0
#endif

namespace {

using logitkit::index_type;
using ld = long double;

constexpr int max_rank = 4;
constexpr index_type max_elements = 1024;  // per operand, logical
constexpr std::size_t none = static_cast<std::size_t>(-1);

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

using shape_t = std::vector<index_type>;

index_type count(const shape_t& s) {
    index_type n = 1;
    for (index_type e : s) n *= e;
    return n;
}

std::string format(const shape_t& s) {
    std::string r = "[";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

/// One operand: its view's shape and strides, and where its data lives.
struct operand {
    const char* name = "";
    shape_t shape, strides;
    std::size_t alloc = none;  // index of its allocation; none: null data
    index_type offset = 0;     // element offset of data() in the allocation
    bool is_output = false;
};

/// The lowest and highest element offset (relative to data()) a non-empty view reaches.
std::pair<index_type, index_type> reach(const operand& o) {
    index_type lo = 0, hi = 0;
    for (std::size_t k = 0; k < o.shape.size(); ++k) {
        const index_type r = (o.shape[k] - 1) * o.strides[k];
        (r < 0 ? lo : hi) += r;
    }
    return {lo, hi};
}

/// Calls f(offset) for every element of the view, in row-major index order.
template <class F>
void for_each_offset(const shape_t& shape, const shape_t& strides, F f) {
    if (count(shape) == 0) return;
    shape_t idx(shape.size(), 0);
    for (;;) {
        index_type off = 0;
        for (std::size_t k = 0; k < shape.size(); ++k) off += idx[k] * strides[k];
        f(off);
        std::size_t k = shape.size();
        for (;;) {
            if (k == 0) return;
            --k;
            if (++idx[k] < shape[k]) break;
            idx[k] = 0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.
// ---------------------------------------------------------------------------------------------

/// Strides of a layout: dimensions in a permuted memory order, optional padding after each
/// dimension, an optional gap between innermost elements, negative strides, and (inputs only)
/// zero strides. Apart from zero strides the dimensions nest, so elements are distinct.
shape_t decode_strides(FuzzedDataProvider& f, const shape_t& shape, bool allow_zero) {
    const std::size_t R = shape.size();
    std::vector<std::size_t> order(R);  // order[0] is the innermost dimension
    for (std::size_t i = 0; i < R; ++i) order[i] = R - 1 - i;
    if (f.ConsumeIntegralInRange<int>(0, 2) == 0)
        for (std::size_t i = R; i-- > 1;) std::swap(order[i], order[f.ConsumeIntegralInRange<std::size_t>(0, i)]);
    shape_t strides(R, 0);
    index_type acc = f.ConsumeIntegralInRange<int>(0, 4) == 0 ? f.ConsumeIntegralInRange<index_type>(2, 3) : 1;
    for (std::size_t j = 0; j < R; ++j) {
        const std::size_t d = order[j];
        const int kind = f.ConsumeIntegralInRange<int>(0, 15);
        index_type s = acc;
        if (allow_zero && kind == 0)
            s = 0;
        else if (kind >= 12)
            s = -s;
        strides[d] = s;
        const index_type pad = f.ConsumeIntegralInRange<int>(0, 3) == 0 ? f.ConsumeIntegralInRange<index_type>(1, 3) : 0;
        acc *= std::max<index_type>(shape[d], 1) + pad;
    }
    return strides;
}

template <class T>
struct value_source {
    int mode;     // 0: finite, one magnitude; 1: mixed with specials; 2: raw bits; 3: probabilities
    double magnitude;
    int special_rate;  // out of 16
};

template <class T>
T decode_special(FuzzedDataProvider& f) {
    using L = std::numeric_limits<T>;
    switch (f.ConsumeIntegralInRange<int>(0, 13)) {
        case 0: return L::infinity();
        case 1: return -L::infinity();
        case 2: return L::quiet_NaN();
        case 3: return -L::quiet_NaN();
        case 4: return T(0);
        case 5: return -T(0);
        case 6: return L::denorm_min();
        case 7: return -L::denorm_min();
        case 8: return L::min();
        case 9: return L::max();
        case 10: return -L::max();
        case 11: return L::denorm_min() * static_cast<T>(f.ConsumeIntegralInRange<int>(1, 1 << 20));
        case 12: return L::max() / static_cast<T>(f.ConsumeIntegralInRange<int>(1, 1 << 10));
        default: return -L::max() / static_cast<T>(f.ConsumeIntegralInRange<int>(1, 1 << 10));
    }
}

template <class T>
T decode_value(FuzzedDataProvider& f, const value_source<T>& src) {
    if (src.mode == 2) {
        typename std::conditional<sizeof(T) == 4, std::uint32_t, std::uint64_t>::type bits =
            f.ConsumeIntegral<decltype(bits)>();
        T v;
        std::memcpy(&v, &bits, sizeof v);
        return v;
    }
    if (src.mode == 1 && f.ConsumeIntegralInRange<int>(0, 15) < src.special_rate) return decode_special<T>(f);
    const double u = static_cast<double>(f.ConsumeIntegral<std::uint16_t>()) / 65535.0;  // [0, 1]
    if (src.mode == 3) return static_cast<T>(u);
    return static_cast<T>((2 * u - 1) * src.magnitude);
}

template <class T>
value_source<T> decode_source(FuzzedDataProvider& f) {
    static const double magnitudes[] = {1, 10, 100, 1e4, 1e15, 1e30, 1e38, 1e150, 1e300};
    value_source<T> s{};
    s.mode = f.ConsumeIntegralInRange<int>(0, 9);
    s.mode = s.mode < 5 ? 0 : s.mode < 8 ? 1 : s.mode == 8 ? 2 : 3;
    double m = magnitudes[f.ConsumeIntegralInRange<std::size_t>(0, sizeof(magnitudes) / sizeof(magnitudes[0]) - 1)];
    s.magnitude = std::min<double>(m, static_cast<double>(std::numeric_limits<T>::max()));
    s.special_rate = f.ConsumeIntegralInRange<int>(1, 8);
    return s;
}

double decode_temperature(FuzzedDataProvider& f) {
    switch (f.ConsumeIntegralInRange<int>(0, 15)) {
        case 0: return 0.5;
        case 1: return 0.7;
        case 2: return 2.0;
        case 3: return 1e-3;
        case 4: return 1e3;
        case 5: return 1e-40;   // subnormal as a float, normal as a double
        case 6: return 1e-50;   // rounds to 0 as a float: invalid for float
        case 7: return 1e300;   // overflows a float: invalid for float
        case 8: return 0.0;
        case 9: return -1.0;
        case 10: return std::numeric_limits<double>::quiet_NaN();
        case 11: return std::numeric_limits<double>::infinity();
        case 12: return f.ConsumeFloatingPoint<double>();
        case 13: return static_cast<double>(f.ConsumeIntegralInRange<int>(1, 1000)) / 64.0;
        default: return 1.0;
    }
}

// ---------------------------------------------------------------------------------------------
// Reference (long double) and the stated bounds (docs/api.md).
// ---------------------------------------------------------------------------------------------

template <class T>
struct bounds;
template <>
struct bounds<float> {
    static constexpr ld softmax_rel = 5e-7L, log_coef = 1e-6L, backward_coef = 1e-6L;
};
template <>
struct bounds<double> {
    static constexpr ld softmax_rel = 1e-14L, log_coef = 1e-14L, backward_coef = 1e-14L;
};

/// A logical tensor in row-major order.
template <class V>
struct dense {
    shape_t shape;
    std::vector<V> v;
};

/// Calls f(base, stride, n) for every line along `axis` of a row-major tensor.
template <class F>
void for_each_line(const shape_t& shape, std::size_t axis, F f) {
    if (count(shape) == 0) return;
    shape_t rs(shape.size(), 1);
    for (std::size_t k = shape.size() - 1; k-- > 0;) rs[k] = rs[k + 1] * shape[k + 1];
    shape_t outer = shape;
    outer[axis] = 1;
    for_each_offset(outer, rs, [&](index_type base) { f(base, rs[axis], shape[axis]); });
}

struct expected_value {
    ld ref = 0;
    ld allowed = 0;      // |got - ref| <= allowed
    bool nan = false;    // NaN expected
    bool check = true;   // false: the bound does not apply (possible overflow in the backward kernels)
};

template <class T>
std::vector<expected_value> reference(kernel_id k, const std::vector<dense<T>>& in, const shape_t& out_shape,
                                      std::size_t axis, T t) {
    const shape_t& shape = in[0].shape;
    std::vector<expected_value> out(static_cast<std::size_t>(count(out_shape)));
    const ld inf = std::numeric_limits<ld>::infinity();
    const ld true_min = static_cast<ld>(std::numeric_limits<T>::denorm_min());
    const ld min_normal = static_cast<ld>(std::numeric_limits<T>::min());
    const ld maxT = static_cast<ld>(std::numeric_limits<T>::max());
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
        auto at = [&](std::size_t op, index_type i) {
            return in[op].v[static_cast<std::size_t>(base + i * stride)];
        };
        auto put = [&](index_type i) -> expected_value& { return out[static_cast<std::size_t>(base + i * stride)]; };
        if (is_forward(k)) {
            std::vector<ld> x(static_cast<std::size_t>(n));
            bool nan = false;
            ld m = -inf;
            for (index_type i = 0; i < n; ++i) {
                const T xt = at(0, i) / t;  // rounded to T, as documented
                x[static_cast<std::size_t>(i)] = static_cast<ld>(xt);
                nan = nan || std::isnan(xt);
                if (x[static_cast<std::size_t>(i)] > m) m = x[static_cast<std::size_t>(i)];
            }
            if (nan || m == inf || m == -inf) {
                for (index_type i = 0; i < n; ++i) put(i).nan = true;
                return;
            }
            ld s = 0;
            for (ld xi : x) s += std::exp(xi - m);
            for (index_type i = 0; i < n; ++i) {
                expected_value& e = put(i);
                const ld xi = x[static_cast<std::size_t>(i)];
                if (k == kernel_id::softmax) {
                    e.ref = std::exp(xi - m) / s;
                    e.allowed = bounds<T>::softmax_rel * e.ref + (e.ref < min_normal ? 2 * true_min : 0);
                } else {
                    e.ref = (xi - m) - std::log(s);
                    e.allowed = bounds<T>::log_coef * std::max<ld>(1, std::fabs(e.ref));
                }
            }
            return;
        }
        // Backward kernels: plain arithmetic; the bound's scale as in the unit tests.
        const bool soft = k == kernel_id::softmax_backward;
        ld s = 0, sabs = 0;
        for (index_type i = 0; i < n; ++i) {
            const ld y = static_cast<ld>(at(0, i)), dy = static_cast<ld>(at(1, i));
            s += soft ? dy * y : dy;
            sabs += std::fabs(soft ? dy * y : dy);
        }
        // Outside the bound's reach: a non-finite input, or intermediate values that may overflow
        // T (the kernels sum in T lanes). There only memory safety is checked.
        bool applies = std::isfinite(sabs) && sabs < maxT / 16;
        std::vector<ld> scale(static_cast<std::size_t>(n));
        for (index_type i = 0; i < n && applies; ++i) {
            const ld y = static_cast<ld>(at(0, i)), dy = static_cast<ld>(at(1, i));
            const ld sc = soft ? std::fabs(y) * (std::fabs(dy) + sabs) : std::fabs(dy) + std::exp(y) * sabs;
            // Every intermediate of the T arithmetic must stay finite: dy * y, dy - s, y * (dy - s)
            // for softmax_backward; exp(y) and exp(y) * s for log_softmax_backward.
            const ld term = soft ? std::fabs(y) * (std::fabs(dy) + sabs) + std::fabs(dy) : std::exp(y) * (1 + sabs);
            if (!std::isfinite(sc) || !(sc < maxT / 16) || !(term < maxT / 16)) applies = false;
            scale[static_cast<std::size_t>(i)] = sc;
        }
        for (index_type i = 0; i < n; ++i) {
            expected_value& e = put(i);
            if (!applies) {
                e.check = false;
                continue;
            }
            const ld y = static_cast<ld>(at(0, i)), dy = static_cast<ld>(at(1, i));
            e.ref = soft ? y * (dy - s) : dy - std::exp(y) * s;
            // The stated bound plus what underflow costs, which the relative form does not cover:
            // each product dy * y (and the sum s rounded to T) may lose up to half a subnormal ulp
            // (softmax_backward), and exp(y) below the normal range is rounded to a subnormal
            // (log_softmax_backward).
            const ld underflow = soft ? std::fabs(y) * static_cast<ld>(n + 1) * true_min : 2 * sabs * true_min;
            e.allowed = bounds<T>::backward_coef * scale[static_cast<std::size_t>(i)] + 4 * true_min + underflow;
        }
    });
    return out;
}

// ---------------------------------------------------------------------------------------------
// One case.
// ---------------------------------------------------------------------------------------------

template <class T>
std::string show(T v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g (%a)", std::numeric_limits<T>::max_digits10, static_cast<double>(v),
                  static_cast<double>(v));
    return buf;
}

struct outcome {
    enum kind { none, invalid_argument, out_of_range, other } thrown = none;
    std::string message;
};

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
        for (const operand& o : ops) {
            s += "\n  " + std::string(o.name) + ": shape " + format(o.shape) + " strides " + format(o.strides);
            if (o.alloc == none)
                s += " data null";
            else
                s += " in allocation " + std::to_string(o.alloc) + " (" + std::to_string(allocs[o.alloc].size()) +
                     " elements) at offset " + std::to_string(o.offset);
        }
        return s;
    }
};

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "\nlogitkit fuzz: FAILED: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

template <std::size_t R>
logitkit::extents_type<R> to_extents(const shape_t& s) {
    logitkit::extents_type<R> e{};
    for (std::size_t k = 0; k < R; ++k) e[k] = s[k];
    return e;
}

template <class Arch, class T, std::size_t R>
outcome run(const fuzz_case<T>& c, std::vector<std::vector<T>>& mem) {
    auto view = [&](const operand& o) {
        T* p = o.alloc == none ? nullptr : mem[o.alloc].data() + o.offset;
        return logitkit::tensor_view<T, R>(p, to_extents<R>(o.shape), to_extents<R>(o.strides));
    };
    outcome r;
    try {
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
    } catch (const std::out_of_range& e) {
        r.thrown = outcome::out_of_range;
        r.message = e.what();
    } catch (const std::invalid_argument& e) {
        r.thrown = outcome::invalid_argument;
        r.message = e.what();
    } catch (const std::exception& e) {
        r.thrown = outcome::other;
        r.message = e.what();
    }
    return r;
}

/// The errors the documented rules predict for this case (computed independently of the library).
template <class T>
void predict_errors(const fuzz_case<T>& c, bool& out_of_range, bool& invalid_argument) {
    const int R = static_cast<int>(c.shape.size());
    out_of_range = c.axis < -R || c.axis >= R;
    invalid_argument = false;
    const operand& out = c.ops.back();
    // Shapes.
    if (c.k == kernel_id::logsumexp) {
        if (!out_of_range) {
            shape_t expected = c.shape;
            expected[static_cast<std::size_t>(c.axis < 0 ? c.axis + R : c.axis)] = 1;
            invalid_argument = invalid_argument || out.shape != expected;
        }
    } else {
        for (const operand& o : c.ops) invalid_argument = invalid_argument || o.shape != c.shape;
    }
    // Temperature, rounded to the element type.
    if (is_forward(c.k)) {
        const double tt = c.temperature;
        const T t = static_cast<T>(tt);
        invalid_argument = invalid_argument || !(std::isfinite(tt) && tt > 0 && std::isfinite(t) && t > 0);
    }
    // Null data with a non-zero size.
    for (const operand& o : c.ops) invalid_argument = invalid_argument || (o.alloc == none && count(o.shape) != 0);
    // An output that maps two indices to one element.
    if (out.alloc != none && count(out.shape) > 1) {
        std::vector<index_type> offs;
        for_each_offset(out.shape, out.strides, [&](index_type off) { offs.push_back(off); });
        std::sort(offs.begin(), offs.end());
        invalid_argument = invalid_argument || std::adjacent_find(offs.begin(), offs.end()) != offs.end();
    }
    // Overlap of the output's memory span with an input's, other than exact in-place use.
    for (std::size_t i = 0; i + 1 < c.ops.size(); ++i) {
        const operand& in = c.ops[i];
        if (in.alloc == none || out.alloc == none || in.alloc != out.alloc) continue;
        if (count(in.shape) == 0 || count(out.shape) == 0) continue;
        const bool same = in.offset == out.offset && in.shape == out.shape && in.strides == out.strides;
        if (same && c.k != kernel_id::logsumexp) continue;
        const auto a = reach(in), b = reach(out);
        const index_type a_lo = in.offset + a.first, a_hi = in.offset + a.second;
        const index_type b_lo = out.offset + b.first, b_hi = out.offset + b.second;
        invalid_argument = invalid_argument || (a_lo <= b_hi && b_lo <= a_hi);
    }
}

template <class T>
dense<T> gather(const operand& o, const std::vector<std::vector<T>>& mem) {
    dense<T> d;
    d.shape = o.shape;
    for_each_offset(o.shape, o.strides, [&](index_type off) { d.v.push_back(mem[o.alloc][static_cast<std::size_t>(o.offset + off)]); });
    return d;
}

template <class T>
void check_output(const fuzz_case<T>& c, const char* path, const dense<T>& got, const std::vector<expected_value>& ex,
                  const dense<T>& other, const std::vector<dense<T>>& in, std::size_t axis) {
    for (std::size_t i = 0; i < ex.size(); ++i) {
        const expected_value& e = ex[i];
        if (!e.check) continue;
        const T g = got.v[i];
        const T rT = static_cast<T>(e.ref);
        const char* why = nullptr;
        if (e.nan) {
            if (!std::isnan(g)) why = "expected NaN";
        } else if (std::isnan(g)) {
            why = "unexpected NaN";
        } else if (std::isinf(rT)) {
            if (g != rT) why = "expected an exact infinity";
        } else if (std::isinf(g)) {
            why = "unexpected infinity";
        } else if (!(std::fabs(static_cast<ld>(g) - e.ref) <= e.allowed)) {
            why = "error above the stated bound";
        }
        if (why) {
            std::string s = c.describe() + "\n  output element " + std::to_string(i) + " (row-major) on the " + path +
                            " path: " + why + "\n    got       " + show(g) + "\n    other path " + show(other.v[i]);
            char buf[160];
            std::snprintf(buf, sizeof buf, "\n    reference %.21Lg, allowed error %.3Lg, error %.3Lg", e.ref, e.allowed,
                          std::fabs(static_cast<ld>(g) - e.ref));
            s += buf;
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

bool verbose() {
    static const bool v = std::getenv("LOGITKIT_FUZZ_VERBOSE") != nullptr;
    return v;
}

template <class T, std::size_t R>
void run_case(const fuzz_case<T>& c) {
    bool want_oor = false, want_inv = false;
    predict_errors(c, want_oor, want_inv);
    if (verbose())  // LOGITKIT_FUZZ_VERBOSE=1: show each case before running it (for replaying)
        std::fprintf(stderr, "logitkit fuzz: case %s\n  expected: %s\n", c.describe().c_str(),
                     want_oor && want_inv ? "std::out_of_range or std::invalid_argument"
                     : want_oor          ? "std::out_of_range"
                     : want_inv          ? "std::invalid_argument"
                                         : "no error");

    std::vector<std::vector<T>> simd_mem = c.allocs, scalar_mem = c.allocs;
    const outcome simd = run<logitkit::detail::default_arch, T, R>(c, simd_mem);
    const outcome scalar = run<logitkit::detail::scalar_arch, T, R>(c, scalar_mem);

    const std::string prefix = std::string("logitkit::") + kernel_name(c.k) + ": ";
    for (const auto* o : {&simd, &scalar}) {
        const char* path = o == &simd ? "SIMD" : "scalar";
        if (o->thrown == outcome::other) fail(c.describe() + "\n  " + path + " path threw an unexpected exception type: " + o->message);
        if (o->thrown == outcome::none && (want_oor || want_inv))
            fail(c.describe() + "\n  " + path + " path did not throw; expected " +
                 (want_oor ? "std::out_of_range" : "std::invalid_argument"));
        if (o->thrown != outcome::none && !want_oor && !want_inv)
            fail(c.describe() + "\n  " + path + " path threw for a valid call: " + o->message);
        if ((o->thrown == outcome::out_of_range && !want_oor) || (o->thrown == outcome::invalid_argument && !want_inv))
            fail(c.describe() + "\n  " + path + " path threw the wrong exception type: " + o->message);
        if (o->thrown != outcome::none && o->message.compare(0, prefix.size(), prefix) != 0)
            fail(c.describe() + "\n  " + path + " path's message does not start with \"" + prefix + "\": " + o->message);
    }
    if (simd.thrown != scalar.thrown || simd.message != scalar.message)
        fail(c.describe() + "\n  the SIMD and scalar paths disagree: \"" + simd.message + "\" vs \"" + scalar.message + "\"");

    // Memory: bytes outside the output's elements never change; after a throw nothing changes.
    const operand& out = c.ops.back();
    std::vector<std::vector<char>> written(c.allocs.size());
    for (std::size_t a = 0; a < c.allocs.size(); ++a) written[a].assign(c.allocs[a].size(), 0);
    if (simd.thrown == outcome::none && out.alloc != none)
        for_each_offset(out.shape, out.strides, [&](index_type off) { written[out.alloc][static_cast<std::size_t>(out.offset + off)] = 1; });
    for (const auto* mem : {&simd_mem, &scalar_mem})
        for (std::size_t a = 0; a < c.allocs.size(); ++a)
            for (std::size_t i = 0; i < c.allocs[a].size(); ++i)
                if (!written[a][i] && std::memcmp(&(*mem)[a][i], &c.allocs[a][i], sizeof(T)) != 0)
                    fail(c.describe() + "\n  the " + (mem == &simd_mem ? "SIMD" : "scalar") + " path changed element " +
                         std::to_string(i) + " of allocation " + std::to_string(a) +
                         (simd.thrown == outcome::none ? ", which is not an output element" : " in a call that threw") +
                         ": " + show(c.allocs[a][i]) + " -> " + show((*mem)[a][i]));
    if (simd.thrown != outcome::none) return;

    // Values.
    std::vector<dense<T>> in;
    for (std::size_t i = 0; i + 1 < c.ops.size(); ++i) in.push_back(gather(c.ops[i], c.allocs));
    const dense<T> got_simd = gather(out, simd_mem), got_scalar = gather(out, scalar_mem);
    const std::size_t axis = static_cast<std::size_t>(c.axis < 0 ? c.axis + int(R) : c.axis);
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
    c.shape.resize(R);
    for (auto& e : c.shape) {
        const int kind = f.ConsumeIntegralInRange<int>(0, 15);
        e = kind == 0 ? 0 : kind < 12 ? f.ConsumeIntegralInRange<index_type>(1, 9) : f.ConsumeIntegralInRange<index_type>(10, 70);
    }
    while (count(c.shape) > max_elements) *std::max_element(c.shape.begin(), c.shape.end()) /= 2;
    const int r = static_cast<int>(R);
    c.axis = f.ConsumeIntegralInRange<int>(0, 15) != 0 ? f.ConsumeIntegralInRange<int>(-r, r - 1)
                                                       : f.PickValueInArray({r, r + 1, -r - 1, -r - 7, 100, INT_MAX, INT_MIN});
    if (is_forward(c.k) && f.ConsumeBool()) c.temperature = decode_temperature(f);
    const int pl = f.ConsumeIntegralInRange<int>(0, 31);
    c.place = pl < 18 ? placement::separate : all_placements[1 + (pl - 18) % 6];
    const bool axis_ok = c.axis >= -r && c.axis < r;
    const std::size_t a = axis_ok ? static_cast<std::size_t>(c.axis < 0 ? c.axis + r : c.axis) : 0;

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
    if (c.place == placement::shape_mismatch) {
        operand& o = c.ops[f.ConsumeIntegralInRange<std::size_t>(1, n_in)];
        const std::size_t d = f.ConsumeIntegralInRange<std::size_t>(0, R - 1);
        const index_type delta = f.ConsumeBool() ? 1 : -1;
        o.shape[d] = std::max<index_type>(0, o.shape[d] + delta) == o.shape[d] ? o.shape[d] + 1
                                                                               : std::max<index_type>(0, o.shape[d] + delta);
        if (f.ConsumeBool() && R >= 2) std::swap(o.shape[0], o.shape[R - 1]);
    }
    for (std::size_t i = 0; i <= n_in; ++i) c.ops[i].strides = decode_strides(f, c.ops[i].shape, i < n_in);

    // Allocations.
    auto span_of = [](const operand& o) {
        return count(o.shape) == 0 ? std::pair<index_type, index_type>(0, 0) : reach(o);
    };
    auto place_alone = [&](operand& o) {
        const auto s = span_of(o);
        const index_type before = f.ConsumeIntegralInRange<index_type>(0, 2), after = f.ConsumeIntegralInRange<index_type>(0, 2);
        o.alloc = c.allocs.size();
        o.offset = before - s.first;
        c.allocs.emplace_back(static_cast<std::size_t>(before + (s.second - s.first) + 1 + after));
    };
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
        case placement::overlap: {
            operand& src = c.ops[f.ConsumeIntegralInRange<std::size_t>(0, n_in - 1)];
            const auto ss = span_of(src), so = span_of(out);
            // Output data at src.data() + delta: the spans intersect for some deltas and not others.
            const index_type delta =
                f.ConsumeIntegralInRange<index_type>(ss.first - so.second - 2, ss.second - so.first + 2);
            const index_type lo = std::min(src.offset + ss.first, src.offset + delta + so.first);
            const index_type hi = std::max(src.offset + ss.second, src.offset + delta + so.second);
            // Grow src's allocation to hold both views: shift everything by -lo.
            std::vector<T>& mem = c.allocs[src.alloc];
            const index_type shift = -std::min<index_type>(lo, 0);
            const index_type size = std::max<index_type>(static_cast<index_type>(mem.size()) + shift, hi + shift + 1);
            mem.assign(static_cast<std::size_t>(size), T(0));
            src.offset += shift;
            out.alloc = src.alloc;
            out.offset = src.offset + delta;
            break;
        }
        case placement::duplicate: {
            std::vector<std::size_t> dims;
            for (std::size_t d = 0; d < R; ++d)
                if (out.shape[d] >= 2) dims.push_back(d);
            if (!dims.empty()) out.strides[dims[f.ConsumeIntegralInRange<std::size_t>(0, dims.size() - 1)]] = 0;
            place_alone(out);
            break;
        }
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
    for (std::size_t i = 0; i < c.allocs.size(); ++i) {
        const value_source<T> src = decode_source<T>(f);
        for (T& v : c.allocs[i]) v = decode_value<T>(f, src);
    }

    run_case<T, R>(c);
    check_view_errors<T, R>(f);
}

template <class T>
void fuzz_rank(FuzzedDataProvider& f) {
    switch (f.ConsumeIntegralInRange<int>(1, max_rank)) {
        case 1: fuzz_one<T, 1>(f); break;
        case 2: fuzz_one<T, 2>(f); break;
        case 3: fuzz_one<T, 3>(f); break;
        default: fuzz_one<T, 4>(f); break;
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* arch = logitkit::simd_arch_name();
    std::fprintf(stderr, "logitkit fuzz: SIMD path %s against scalar_arch%s\n", arch,
                 LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES ? " (skipping the known issues in tests/fuzz/README.md)" : "");
    if (std::strcmp(arch, "scalar") == 0) {
        std::fprintf(stderr, "logitkit fuzz: FAILED: no SIMD path is compiled (is xsimd on the include path?); "
                             "comparing scalar with scalar tests nothing\n");
        std::exit(1);
    }
#ifdef LOGITKIT_FUZZ_EXPECTED_ARCH
    if (LOGITKIT_FUZZ_EXPECTED_ARCH[0] != '\0' && std::strcmp(arch, LOGITKIT_FUZZ_EXPECTED_ARCH) != 0) {
        std::fprintf(stderr, "logitkit fuzz: FAILED: the SIMD path is %s; these flags should select %s\n", arch,
                     LOGITKIT_FUZZ_EXPECTED_ARCH);
        std::exit(1);
    }
#endif
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider f(data, size);
    if (f.ConsumeBool())
        fuzz_rank<float>(f);
    else
        fuzz_rank<double>(f);
    return 0;
}
