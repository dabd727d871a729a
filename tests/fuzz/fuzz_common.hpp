// logitkit fuzzers: what fuzz_kernels.cpp and fuzz_losses.cpp share. Operands and their
// allocations, the decoding of layouts and values, the long double softmax and backward
// references with the bounds of docs/api.md, and the checks of a call's outcome and of the memory
// it must leave alone.
// SPDX-License-Identifier: MIT
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <logitkit/logitkit.hpp>

#include "reference.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#ifndef LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES
#define LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES 0
#endif

namespace lk_fuzz {

using logitkit::index_type;
using ld = long double;
using shape_t = std::vector<index_type>;

constexpr std::size_t none = static_cast<std::size_t>(-1);

inline index_type count(const shape_t& s) { return lk_ref::numel(s); }
inline std::string format(const shape_t& s) { return lk_ref::shape_string(s); }

/// One operand: its view's shape and strides, and where its data lives.
struct operand {
    const char* name = "";
    shape_t shape, strides;
    std::size_t alloc = none;  // index of its allocation; none: null data
    index_type offset = 0;     // element offset of data() in the allocation
    bool is_output = false;
};

/// The lowest and highest element offset (relative to data()) a non-empty view reaches.
inline std::pair<index_type, index_type> reach(const operand& o) {
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

/// Row-major strides of a shape.
inline shape_t row_major_strides(const shape_t& shape) {
    shape_t rs(shape.size(), 1);
    for (std::size_t k = shape.size(); k-- > 1;) rs[k - 1] = rs[k] * shape[k];
    return rs;
}

/// Calls f(base, stride, n) for every line along `axis` of a row-major tensor.
template <class F>
void for_each_line(const shape_t& shape, std::size_t axis, F f) {
    if (count(shape) == 0) return;
    const shape_t rs = row_major_strides(shape);
    shape_t outer = shape;
    outer[axis] = 1;
    for_each_offset(outer, rs, [&](index_type base) { f(base, rs[axis], shape[axis]); });
}

// ---------------------------------------------------------------------------------------------
// Decoding.
// ---------------------------------------------------------------------------------------------

/// Strides of a layout: dimensions in a permuted memory order, optional padding after each
/// dimension, an optional gap between innermost elements, negative strides, and (inputs only)
/// zero strides. Apart from zero strides the dimensions nest, so elements are distinct.
inline shape_t decode_strides(FuzzedDataProvider& f, const shape_t& shape, bool allow_zero) {
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
        const index_type pad =
            f.ConsumeIntegralInRange<int>(0, 3) == 0 ? f.ConsumeIntegralInRange<index_type>(1, 3) : 0;
        acc *= std::max<index_type>(shape[d], 1) + pad;
    }
    return strides;
}

template <class T>
struct value_source {
    int mode;  // 0: finite, one magnitude; 1: mixed with specials; 2: raw bits; 3: probabilities
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

/// A temperature or tau: valid values, values valid only as a double (1e-40 is subnormal as a
/// float, 1e-50 and 1e300 are not representable), and invalid ones.
inline double decode_temperature(FuzzedDataProvider& f) {
    switch (f.ConsumeIntegralInRange<int>(0, 15)) {
        case 0: return 0.5;
        case 1: return 0.7;
        case 2: return 2.0;
        case 3: return 1e-3;
        case 4: return 1e3;
        case 5: return 1e-40;  // subnormal as a float, normal as a double
        case 6: return 1e-50;  // rounds to 0 as a float: invalid for float
        case 7: return 1e300;  // overflows a float: invalid for float
        case 8: return 0.0;
        case 9: return -1.0;
        case 10: return std::numeric_limits<double>::quiet_NaN();
        case 11: return std::numeric_limits<double>::infinity();
        case 12: return f.ConsumeFloatingPoint<double>();
        case 13: return static_cast<double>(f.ConsumeIntegralInRange<int>(1, 1000)) / 64.0;
        default: return 1.0;
    }
}

/// Whether a temperature-like option is valid for element type T: finite and > 0 as given and
/// once rounded to T (docs/api.md).
template <class T>
bool valid_temperature(double t) {
    const T r = static_cast<T>(t);
    return std::isfinite(t) && t > 0 && std::isfinite(r) && r > 0;
}

/// A random shape of rank R: small extents (the SIMD widths are 4 to 16 lanes), now and then 0 or
/// a larger one, at most max_elements in all.
inline shape_t decode_shape(FuzzedDataProvider& f, std::size_t R, index_type max_elements) {
    shape_t shape(R);
    for (auto& e : shape) {
        const int kind = f.ConsumeIntegralInRange<int>(0, 15);
        e = kind == 0   ? 0
            : kind < 12 ? f.ConsumeIntegralInRange<index_type>(1, 9)
                        : f.ConsumeIntegralInRange<index_type>(10, 70);
    }
    while (count(shape) > max_elements) *std::max_element(shape.begin(), shape.end()) /= 2;
    return shape;
}

/// An axis of a rank-R tensor: mostly in [-R, R), now and then out of range.
inline int decode_axis(FuzzedDataProvider& f, int r) {
    return f.ConsumeIntegralInRange<int>(0, 15) != 0
               ? f.ConsumeIntegralInRange<int>(-r, r - 1)
               : f.PickValueInArray({r, r + 1, -r - 1, -r - 7, 100, INT_MAX, INT_MIN});
}

inline bool axis_in_range(int axis, std::size_t rank) {
    const int r = static_cast<int>(rank);
    return axis >= -r && axis < r;
}

/// The axis in [0, rank), or `fallback` for an axis out of range (the shapes of a call that must
/// throw std::out_of_range are built around some axis all the same).
inline std::size_t axis_or(int axis, std::size_t rank, std::size_t fallback) {
    return axis_in_range(axis, rank) ? lk_ref::normalize_axis(axis, rank) : fallback;
}

/// Changes one extent of `shape` (and, for rank >= 2, maybe swaps the first and last).
inline void mismatch_shape(FuzzedDataProvider& f, shape_t& shape) {
    const std::size_t R = shape.size();
    const std::size_t d = f.ConsumeIntegralInRange<std::size_t>(0, R - 1);
    const index_type delta = f.ConsumeBool() ? 1 : -1;
    shape[d] = std::max<index_type>(0, shape[d] + delta) == shape[d] ? shape[d] + 1
                                                                     : std::max<index_type>(0, shape[d] + delta);
    if (f.ConsumeBool() && R >= 2) std::swap(shape[0], shape[R - 1]);
}

// ---------------------------------------------------------------------------------------------
// Allocations: every operand in its own exactly sized heap block unless a case shares one.
// ---------------------------------------------------------------------------------------------

/// The element span [lo, hi] of a view relative to data(); (0, 0) for an empty view.
inline std::pair<index_type, index_type> span_of(const operand& o) {
    return count(o.shape) == 0 ? std::pair<index_type, index_type>(0, 0) : reach(o);
}

/// Gives `o` an allocation of its own, with 0 to 2 spare elements on each side.
template <class V>
void place_alone(FuzzedDataProvider& f, operand& o, std::vector<std::vector<V>>& allocs) {
    const auto s = span_of(o);
    const index_type before = f.ConsumeIntegralInRange<index_type>(0, 2),
                     after = f.ConsumeIntegralInRange<index_type>(0, 2);
    o.alloc = allocs.size();
    o.offset = before - s.first;
    allocs.emplace_back(static_cast<std::size_t>(before + (s.second - s.first) + 1 + after));
}

/// Places `out` in src's allocation at src.data() + delta, for a delta that makes the spans
/// intersect or not; grows the allocation to hold both. The operands in `sharing` that already
/// live in that allocation move with src.
template <class V>
void place_shifted(FuzzedDataProvider& f, operand& src, operand& out, std::vector<std::vector<V>>& allocs,
                   const std::vector<operand*>& sharing = {}) {
    const auto ss = span_of(src), so = span_of(out);
    const index_type delta = f.ConsumeIntegralInRange<index_type>(ss.first - so.second - 2, ss.second - so.first + 2);
    const index_type lo = std::min(src.offset + ss.first, src.offset + delta + so.first);
    const index_type hi = std::max(src.offset + ss.second, src.offset + delta + so.second);
    std::vector<V>& mem = allocs[src.alloc];
    const index_type shift = -std::min<index_type>(lo, 0);
    const index_type size = std::max<index_type>(static_cast<index_type>(mem.size()) + shift, hi + shift + 1);
    mem.assign(static_cast<std::size_t>(size), V(0));
    for (operand* o : sharing)
        if (o != &src && o != &out && o->alloc == src.alloc) o->offset += shift;
    src.offset += shift;
    out.alloc = src.alloc;
    out.offset = src.offset + delta;
}

/// Gives `out` a zero stride on one dimension of extent >= 2 (when it has one).
inline void make_repeated(FuzzedDataProvider& f, operand& out) {
    std::vector<std::size_t> dims;
    for (std::size_t d = 0; d < out.shape.size(); ++d)
        if (out.shape[d] >= 2) dims.push_back(d);
    if (!dims.empty()) out.strides[dims[f.ConsumeIntegralInRange<std::size_t>(0, dims.size() - 1)]] = 0;
}

/// Fills every element of every allocation, spare elements included, each allocation from its own
/// value source.
template <class T>
void fill_values(FuzzedDataProvider& f, std::vector<std::vector<T>>& allocs) {
    for (auto& a : allocs) {
        const value_source<T> src = decode_source<T>(f);
        for (T& v : a) v = decode_value<T>(f, src);
    }
}

/// "name: shape [..] strides [..] in allocation a (n elements) at offset o", or "... data null".
inline std::string describe_operand(const operand& o, std::size_t alloc_elements) {
    std::string s = std::string(o.name) + ": shape " + format(o.shape) + " strides " + format(o.strides);
    if (o.alloc == none) return s + " data null";
    return s + " in allocation " + std::to_string(o.alloc) + " (" + std::to_string(alloc_elements) +
           " elements) at offset " + std::to_string(o.offset);
}

template <std::size_t R>
logitkit::extents_type<R> to_extents(const shape_t& s) {
    logitkit::extents_type<R> e{};
    std::copy_n(s.begin(), R, e.begin());
    return e;
}

/// The view of `o` over `mem` (an empty view's shape with null data when it has no allocation).
template <class V, std::size_t R>
logitkit::tensor_view<V, R> view_of(const operand& o, std::vector<std::vector<V>>& mem) {
    V* p = o.alloc == none ? nullptr : mem[o.alloc].data() + o.offset;
    return logitkit::tensor_view<V, R>(p, to_extents<R>(o.shape), to_extents<R>(o.strides));
}

/// A logical tensor in row-major order.
template <class V>
struct dense {
    shape_t shape;
    std::vector<V> v;
};

template <class V>
dense<V> gather(const operand& o, const std::vector<std::vector<V>>& mem) {
    dense<V> d;
    d.shape = o.shape;
    for_each_offset(o.shape, o.strides,
                    [&](index_type off) { d.v.push_back(mem[o.alloc][static_cast<std::size_t>(o.offset + off)]); });
    return d;
}

// ---------------------------------------------------------------------------------------------
// The documented argument rules, computed independently of the library.
// ---------------------------------------------------------------------------------------------

/// Null data with a non-zero size.
inline bool null_with_elements(const operand& o) { return o.alloc == none && count(o.shape) != 0; }

/// An output whose strides map two indices to one element.
inline bool repeats_elements(const operand& o) {
    if (o.alloc == none || count(o.shape) <= 1) return false;
    std::vector<index_type> offs;
    for_each_offset(o.shape, o.strides, [&](index_type off) { offs.push_back(off); });
    std::sort(offs.begin(), offs.end());
    return std::adjacent_find(offs.begin(), offs.end()) != offs.end();
}

/// Exactly the same view: same data, shape and strides.
inline bool same_view(const operand& a, const operand& b) {
    return a.alloc != none && a.alloc == b.alloc && a.offset == b.offset && a.shape == b.shape &&
           a.strides == b.strides;
}

/// The memory spans of two non-empty views in one allocation intersect (the library compares
/// spans, so interleaved views that share a span count as overlapping).
inline bool spans_intersect(const operand& a, const operand& b) {
    if (a.alloc == none || b.alloc == none || a.alloc != b.alloc) return false;
    if (count(a.shape) == 0 || count(b.shape) == 0) return false;
    const auto ra = reach(a), rb = reach(b);
    return a.offset + ra.first <= b.offset + rb.second && b.offset + rb.first <= a.offset + ra.second;
}

// ---------------------------------------------------------------------------------------------
// References (long double) and the stated bounds (docs/api.md).
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

struct expected_value {
    ld ref = 0;
    ld allowed = 0;     // |got - ref| <= allowed
    bool nan = false;   // NaN expected
    bool check = true;  // false: the bound does not apply (possible overflow in the backward kernels)
};

/// softmax (or log_softmax) of one line of values already rounded to T, into out[0], out[step],
/// ...: NaN on the whole line when its maximum is not finite, else the reference and its bound.
template <class T>
void softmax_line_reference(const std::vector<ld>& x, bool log, expected_value* out, index_type step) {
    const ld inf = std::numeric_limits<ld>::infinity();
    const ld true_min = static_cast<ld>(std::numeric_limits<T>::denorm_min());
    const ld min_normal = static_cast<ld>(std::numeric_limits<T>::min());
    const std::size_t n = x.size();
    bool nan = false;
    ld m = -inf;
    for (ld v : x) {
        nan = nan || std::isnan(v);
        if (v > m) m = v;
    }
    if (nan || m == inf || m == -inf) {
        for (std::size_t i = 0; i < n; ++i) out[static_cast<index_type>(i) * step].nan = true;
        return;
    }
    ld s = 0;
    for (ld xi : x) s += std::exp(xi - m);
    for (std::size_t i = 0; i < n; ++i) {
        expected_value& e = out[static_cast<index_type>(i) * step];
        if (!log) {
            e.ref = std::exp(x[i] - m) / s;
            e.allowed = bounds<T>::softmax_rel * e.ref + (e.ref < min_normal ? 2 * true_min : 0);
        } else {
            e.ref = (x[i] - m) - std::log(s);
            e.allowed = bounds<T>::log_coef * std::max<ld>(1, std::fabs(e.ref));
        }
    }
}

/// softmax_backward (soft) or log_softmax_backward of one line, divided by `tau` (1 for the
/// kernels; gumbel_softmax_backward is softmax_backward / tau). The bound is only applied where
/// every intermediate of the T arithmetic stays finite (there the result is the element type's
/// IEEE arithmetic, as documented), and it is widened by what underflow to subnormals costs.
template <class T>
void backward_line_reference(const std::vector<ld>& y, const std::vector<ld>& dy, bool soft, ld tau,
                             expected_value* out, index_type step) {
    const ld true_min = static_cast<ld>(std::numeric_limits<T>::denorm_min());
    const ld maxT = static_cast<ld>(std::numeric_limits<T>::max());
    const std::size_t n = y.size();
    ld s = 0, sabs = 0;
    for (std::size_t i = 0; i < n; ++i) {
        s += soft ? dy[i] * y[i] : dy[i];
        sabs += std::fabs(soft ? dy[i] * y[i] : dy[i]);
    }
    // Outside the bound's reach: a non-finite input, or intermediate values that may overflow T
    // (the kernels sum in T lanes). There only memory safety is checked.
    bool applies = std::isfinite(sabs) && sabs < maxT / 16;
    std::vector<ld> scale(n);
    for (std::size_t i = 0; i < n && applies; ++i) {
        const ld sc = soft ? std::fabs(y[i]) * (std::fabs(dy[i]) + sabs) : std::fabs(dy[i]) + std::exp(y[i]) * sabs;
        // Every intermediate of the T arithmetic must stay finite: dy * y, dy - s, y * (dy - s)
        // for softmax_backward; exp(y) and exp(y) * s for log_softmax_backward; and the result
        // divided by tau.
        const ld term =
            soft ? std::fabs(y[i]) * (std::fabs(dy[i]) + sabs) + std::fabs(dy[i]) : std::exp(y[i]) * (1 + sabs);
        if (!std::isfinite(sc) || !(sc < maxT / 16) || !(term < maxT / 16) || !(term / tau < maxT / 16))
            applies = false;
        scale[i] = sc;
    }
    for (std::size_t i = 0; i < n; ++i) {
        expected_value& e = out[static_cast<index_type>(i) * step];
        if (!applies) {
            e.check = false;
            continue;
        }
        e.ref = (soft ? y[i] * (dy[i] - s) : dy[i] - std::exp(y[i]) * s) / tau;
        // The stated bound plus what underflow costs, which the relative form does not cover:
        // each product dy * y (and the sum s rounded to T) may lose up to half a subnormal ulp
        // (softmax_backward), and exp(y) below the normal range is rounded to a subnormal
        // (log_softmax_backward).
        const ld underflow = soft ? std::fabs(y[i]) * static_cast<ld>(n + 1) * true_min : 2 * sabs * true_min;
        e.allowed = (bounds<T>::backward_coef * scale[i] + 4 * true_min + underflow) / tau;
    }
}

// ---------------------------------------------------------------------------------------------
// Checks.
// ---------------------------------------------------------------------------------------------

template <class T>
std::string show(T v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*g (%a)", std::numeric_limits<T>::max_digits10, static_cast<double>(v),
                  static_cast<double>(v));
    return buf;
}

inline std::string show(std::int64_t v) { return std::to_string(v); }

[[noreturn]] inline void fail(const std::string& what) {
    std::fprintf(stderr, "\nlogitkit fuzz: FAILED: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

/// LOGITKIT_FUZZ_VERBOSE=1: each case is printed before it runs (for replaying a saved input).
inline bool verbose() {
    static const bool v = std::getenv("LOGITKIT_FUZZ_VERBOSE") != nullptr;
    return v;
}

inline const char* expected_error_name(bool out_of_range, bool invalid_argument) {
    return out_of_range && invalid_argument ? "std::out_of_range or std::invalid_argument"
           : out_of_range                   ? "std::out_of_range"
           : invalid_argument               ? "std::invalid_argument"
                                            : "no error";
}

/// What a call threw.
struct outcome {
    enum kind { none, invalid_argument, out_of_range, other } thrown = none;
    std::string message;
};

template <class F>
outcome capture(F&& call) {
    outcome r;
    try {
        call();
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

/// Both paths threw what the documented rules predict (nothing, or the predicted type with a
/// message starting "logitkit::<fn>: "), and the same message.
inline void check_outcomes(const std::string& what, const char* fn, const outcome& simd, const outcome& scalar,
                           bool want_oor, bool want_inv) {
    const std::string prefix = std::string("logitkit::") + fn + ": ";
    for (const auto* o : {&simd, &scalar}) {
        const char* path = o == &simd ? "SIMD" : "scalar";
        if (o->thrown == outcome::other)
            fail(what + "\n  " + path + " path threw an unexpected exception type: " + o->message);
        if (o->thrown == outcome::none && (want_oor || want_inv))
            fail(what + "\n  " + path + " path did not throw; expected " +
                 (want_oor ? "std::out_of_range" : "std::invalid_argument"));
        if (o->thrown != outcome::none && !want_oor && !want_inv)
            fail(what + "\n  " + path + " path threw for a valid call: " + o->message);
        if ((o->thrown == outcome::out_of_range && !want_oor) || (o->thrown == outcome::invalid_argument && !want_inv))
            fail(what + "\n  " + path + " path threw the wrong exception type: " + o->message);
        if (o->thrown != outcome::none && o->message.compare(0, prefix.size(), prefix) != 0)
            fail(what + "\n  " + path + " path's message does not start with \"" + prefix + "\": " + o->message);
    }
    if (simd.thrown != scalar.thrown || simd.message != scalar.message)
        fail(what + "\n  the SIMD and scalar paths disagree: \"" + simd.message + "\" vs \"" + scalar.message + "\"");
}

/// Per allocation, which elements a call may write.
using write_mask = std::vector<std::vector<char>>;

template <class V>
write_mask no_writes(const std::vector<std::vector<V>>& allocs) {
    write_mask m(allocs.size());
    for (std::size_t a = 0; a < allocs.size(); ++a) m[a].assign(allocs[a].size(), 0);
    return m;
}

inline void allow_writes(write_mask& m, const operand& o) {
    if (o.alloc == none) return;
    for_each_offset(o.shape, o.strides,
                    [&](index_type off) { m[o.alloc][static_cast<std::size_t>(o.offset + off)] = 1; });
}

/// Every element the mask does not allow is bit for bit what it was before the call.
template <class V>
void check_unchanged(const std::string& what, const char* path, const std::vector<std::vector<V>>& before,
                     const std::vector<std::vector<V>>& after, const write_mask& allowed, bool threw) {
    for (std::size_t a = 0; a < before.size(); ++a)
        for (std::size_t i = 0; i < before[a].size(); ++i)
            if (!allowed[a][i] && std::memcmp(&after[a][i], &before[a][i], sizeof(V)) != 0)
                fail(what + "\n  the " + path + " path changed element " + std::to_string(i) + " of allocation " +
                     std::to_string(a) + (threw ? " in a call that threw" : ", which is not an output element") + ": " +
                     show(before[a][i]) + " -> " + show(after[a][i]));
}

/// Why `got` does not match `e` (a NaN where NaN is expected, an exact infinity where the
/// reference rounds to one, else within the bound), or null when it does.
template <class T>
const char* mismatch(T got, const expected_value& e) {
    if (!e.check) return nullptr;
    const T rT = static_cast<T>(e.ref);
    if (e.nan) return std::isnan(got) ? nullptr : "expected NaN";
    if (std::isnan(got)) return "unexpected NaN";
    if (std::isinf(rT)) return got == rT ? nullptr : "expected an exact infinity";
    if (std::isinf(got)) return "unexpected infinity";
    if (!(std::fabs(static_cast<ld>(got) - e.ref) <= e.allowed)) return "error above the stated bound";
    return nullptr;
}

/// The report of one output element that does not match its reference.
template <class T>
std::string mismatch_report(const char* name, std::size_t i, const char* path, const char* why, T got, T other,
                            const expected_value& e) {
    std::string s = std::string("  ") + name + " element " + std::to_string(i) + " (row-major) on the " + path +
                    " path: " + why + "\n    got        " + show(got) + "\n    other path " + show(other);
    char buf[160];
    std::snprintf(buf, sizeof buf, "\n    reference  %.21Lg, allowed error %.3Lg, error %.3Lg", e.ref, e.allowed,
                  std::fabs(static_cast<ld>(got) - e.ref));
    return s + buf;
}

// ---------------------------------------------------------------------------------------------
// Dispatch on the decoded element type and rank.
// ---------------------------------------------------------------------------------------------

/// run(float{}) or run(double{}), as the input says.
template <class F>
void with_element_type(FuzzedDataProvider& f, F&& run) {
    if (f.ConsumeBool())
        run(float{});
    else
        run(double{});
}

template <std::size_t R, std::size_t Hi, class F>
void with_rank_from(std::size_t r, F& run) {
    if constexpr (R <= Hi) {
        if (r == R)
            run(std::integral_constant<std::size_t, R>{});
        else
            with_rank_from<R + 1, Hi>(r, run);
    }
}

/// run(std::integral_constant<std::size_t, R>{}) for a rank R in [Lo, Hi], as the input says.
template <std::size_t Lo, std::size_t Hi, class F>
void with_rank(FuzzedDataProvider& f, F&& run) {
    with_rank_from<Lo, Hi>(f.ConsumeIntegralInRange<std::size_t>(Lo, Hi), run);
}

}  // namespace lk_fuzz
