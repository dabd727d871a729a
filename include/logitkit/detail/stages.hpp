// logitkit — the stages every softmax-family kernel is assembled from.
// SPDX-License-Identifier: MIT
//
// Row stages work on n contiguous elements; column stages on `width` contiguous columns that
// repeat every `stride` elements along the reduced axis, so a non-last axis is vectorised across
// the contiguous inner dimension instead of being gathered. Each stage is usable, testable and
// benchmarkable on its own: reduce_max, exp_sum (sum of exp, optionally storing it), scale,
// shift (x - m - L), and the backward pieces dot, sum, softmax_grad, log_softmax_grad.
//
// Sums are accumulated in blocks: four batch accumulators take at most `block_batches` batches
// each, then the block is added to a compensated (TwoSum) accumulator, and the lanes are finally
// added in double. The error of a sum of positive terms is then a few ulps whatever n is.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "../tensor_view.hpp"
#include "exp.hpp"
#include "simd.hpp"


namespace logitkit {
namespace detail {

/// Whether x and y, perhaps of different types, start at the same address (an in-place call).
template <class X, class Y>
bool same_address(const X* x, const Y* y) noexcept {
    return static_cast<const void*>(x) == static_cast<const void*>(y);
}

/// Input transform of the forward kernels: the identity, or division by the temperature
/// (PyTorch's softmax(x / T): each quotient is rounded to T's type before the softmax).
struct identity_input {
    template <class V>
    LOGITKIT_INLINE V operator()(const V& v) const noexcept {
        return v;
    }
};
template <class T>
struct divide_input {
    T temperature;
    template <class V>
    LOGITKIT_INLINE V operator()(const V& v) const noexcept {
        return v / V(temperature);
    }
};

/// Compensated accumulator of batches: s + c carries the running sum without losing the low bits.
template <class V>
struct compensated_sum {
    V s = V(typename V::value_type(0));
    V c = V(typename V::value_type(0));
    LOGITKIT_INLINE void add(const V& v) noexcept {
        const V t = s + v;
        const V vp = t - s;
        const V sp = t - vp;
        c = c + ((s - sp) + (v - vp));
        s = t;
    }
    /// Per lane s + c, in double; once s is not finite, c holds inf - inf and is left out.
    void lanes(double* out) const noexcept {
        typename V::value_type sl[V::size], cl[V::size];
        simd::store(sl, s);
        simd::store(cl, c);
        for (std::size_t i = 0; i < V::size; ++i)
            out[i] = std::isfinite(sl[i]) ? static_cast<double>(sl[i]) + static_cast<double>(cl[i])
                                          : static_cast<double>(sl[i]);
    }
    /// The sum of s + c over the lanes; c is left out once s is not finite (it holds inf - inf).
    LOGITKIT_INLINE double total() const noexcept {
        const double ts = lanes_sum(s);
        return std::isfinite(ts) ? ts + lanes_sum(c) : ts;
    }
    /// Sum of the lanes of v, in double, added pairwise (see simd::lanes_sum).
    static double lanes_sum(const V& v) noexcept { return simd::lanes_sum(v); }
};

constexpr index_type block_batches = 8;

/// A line longer than this is summed in pieces of this many elements whose totals are added in
/// order: an executor can then take the pieces of one long line (dispatch.hpp) and give the bits
/// of the single-threaded sum. A multiple of every batch width, so only the last piece has a tail.
constexpr index_type line_piece = index_type(1) << 16;

/// A condition that never holds (accumulate's default give_up).
struct never {
    constexpr bool operator()() const noexcept { return false; }
};

/// A term of accumulate that takes B batches at a time: term(i, batches<B>{}) returns the
/// simd::pack<V, B> of the batches at i, i + W, ..., i + (B - 1) W.
template <int B>
using batches = std::integral_constant<int, B>;

/// Sums term(i) over the full batches at i = 0, W, 2W, ... and tail(i, rem) for the last rem < W
/// elements, as described at the top of this file, piece by piece (line_piece). give_up() is
/// asked after every four batches; once it holds, the sum is abandoned and NaN returned. A term
/// that takes batches<B> (see above) is given four batches at a time, and one at a time after.
template <class V, class Term, class Tail, class GiveUp = never>
LOGITKIT_INLINE double accumulate(index_type n, Term term, Tail tail, GiveUp give_up = {}) noexcept {
    if constexpr (std::is_invocable_v<Term&, index_type, batches<4>>) {
        return accumulate<V>(
            n, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return term(i, batches<1>{}).v[0]; }, tail, give_up,
            [&](index_type i, V& a0, V& a1, V& a2, V& a3) LOGITKIT_LAMBDA_INLINE {
                const simd::pack<V, 4> t = term(i, batches<4>{});
                a0 = a0 + t.v[0];
                a1 = a1 + t.v[1];
                a2 = a2 + t.v[2];
                a3 = a3 + t.v[3];
            });
    } else {
        return accumulate<V>(n, term, tail, give_up, [&](index_type i, V& a0, V& a1, V& a2, V& a3) LOGITKIT_LAMBDA_INLINE {
            a0 = a0 + term(i);
            a1 = a1 + term(i + V::size);
            a2 = a2 + term(i + 2 * V::size);
            a3 = a3 + term(i + 3 * V::size);
        });
    }
}

/// accumulate, with add_four(i, a0, a1, a2, a3) adding the four batches at i to a0, ..., a3.
template <class V, class Term, class Tail, class GiveUp, class AddFour>
LOGITKIT_INLINE double accumulate(index_type n, Term term, Tail tail, GiveUp give_up, AddFour add_four) noexcept {
    using T = typename V::value_type;
    constexpr index_type W = V::size;
    double total = 0;
    for (index_type begin = 0;;) {
        const index_type stop = n - begin <= line_piece ? n : begin + line_piece;
        compensated_sum<V> acc;
        index_type i = begin;
        while (i + 4 * W <= stop) {
            V a0(T(0)), a1(T(0)), a2(T(0)), a3(T(0));
            const index_type end = i + std::min<index_type>((stop - i) / (4 * W), block_batches) * 4 * W;
            for (; i < end; i += 4 * W) {
                add_four(i, a0, a1, a2, a3);
                if (give_up()) return std::numeric_limits<double>::quiet_NaN();
            }
            acc.add((a0 + a1) + (a2 + a3));
        }
        if (i < stop) {
            // The last batches (fewer than four) and the tail make one more block, so that they
            // cost one compensated add rather than one each, each waiting on the one before.
            V a[4] = {V(T(0)), V(T(0)), V(T(0)), V(T(0))};
            for (int k = 0; i + W <= stop; ++k, i += W) a[k] = term(i);
            if (i < stop) a[3] = tail(i, static_cast<std::size_t>(stop - i));
            acc.add((a[0] + a[1]) + (a[2] + a[3]));
        }
        if (begin == 0 && stop == n) return acc.total();
        total += acc.total();
        if (stop == n) return total;
        begin = stop;
    }
}

/// Calls body(i) for each full batch and tail(i, rem) for the remainder.
template <index_type W, class Body, class Tail>
LOGITKIT_INLINE void for_each_batch(index_type n, Body body, Tail tail) noexcept {
    index_type i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        body(i);
        body(i + W);
        body(i + 2 * W);
        body(i + 3 * W);
    }
    for (; i + W <= n; i += W) body(i);
    if (i < n) tail(i, static_cast<std::size_t>(n - i));
}

/// The inputs of the line after the current one (null: none), which a streamed output stage
/// prefetches while it writes.
template <class T>
struct next_line {
    const T* a = nullptr;
    const T* b = nullptr;
};

/// p + step elements, for a prefetch only: past the last line it points at no object, so the
/// address is formed as an integer (a prefetch of any address is harmless).
template <class T>
const T* prefetch_address(const T* p, index_type step) noexcept {
    return reinterpret_cast<const T*>(reinterpret_cast<std::uintptr_t>(p) +
                                      static_cast<std::uintptr_t>(step) * sizeof(T));
}

/// Writes value(i) (a batch) to y + i for each full batch and tail(i, rem) (a batch holding rem
/// valid lanes) to the last rem elements. With Stream, the batches at aligned addresses go out
/// as non-temporal stores: the output is not read again soon, and an ordinary store would first
/// read each line from memory and evict the next line's input to make room for it. The next
/// line's inputs are prefetched meanwhile, one batch ahead per batch written, so that its first
/// pass reads them from cache instead of waiting on memory.
template <class V, bool Stream, bool NoNan = false, class Y, class T, class Value, class Tail>
LOGITKIT_INLINE void write_row(Y* y, index_type n, const next_line<T>& next, Value value, Tail tail) noexcept {
    constexpr index_type W = V::size;
    index_type i = 0;
    // A y stored as bfloat16 or float16 (Y), each batch rounded on its way out, is not streamed.
    if constexpr (Stream && simd::streams<V> && std::is_same<Y, typename V::value_type>::value) {
        const auto misalign = reinterpret_cast<std::uintptr_t>(y) % sizeof(V);
        // y not aligned to Y: no batch of it is aligned, and the ordinary stores below serve.
        if (misalign % sizeof(Y) == 0) {
            // Elements before the first aligned batch (fewer than W: tail's rem is always < W).
            const index_type head =
                std::min(n, static_cast<index_type>(((sizeof(V) - misalign) % sizeof(V)) / sizeof(Y)));
            if (head > 0)
                simd::store_partial(y, tail(0, static_cast<std::size_t>(head)), static_cast<std::size_t>(head));
            for (i = head; i + W <= n; i += W) {
                if (next.a != nullptr) LOGITKIT_PREFETCH(next.a + i);
                if (next.b != nullptr) LOGITKIT_PREFETCH(next.b + i);
                simd::store_stream(y + i, value(i));
            }
            if (i < n)
                simd::store_partial(y + i, tail(i, static_cast<std::size_t>(n - i)), static_cast<std::size_t>(n - i));
            simd::stream_fence(static_cast<const V*>(nullptr));
            return;
        }
    }
    // NoNan: value(i) holds no NaN (see simd::store_no_nan).
    const auto store = [&](index_type j) LOGITKIT_LAMBDA_INLINE {
        if constexpr (NoNan)
            simd::store_no_nan(y + j, value(j));
        else
            simd::store(y + j, value(j));
    };
    for (; i + 4 * W <= n; i += 4 * W) {
        store(i);
        store(i + W);
        store(i + 2 * W);
        store(i + 3 * W);
    }
    for (; i + W <= n; i += W) store(i);
    if (i < n) simd::store_partial(y + i, tail(i, static_cast<std::size_t>(n - i)), static_cast<std::size_t>(n - i));
}

/// How a row stage evaluates exp(x - m), chosen per row from the row's range (exp_mode_for): the
/// cheaper modes drop work that the range proves unnecessary, never accuracy.
enum class exp_mode {
    checked,    // any input: the exponential tests each batch for lanes out of its fast range
    in_range,   // every x - m in the fast range (no NaN, no infinity): no test
    in_binade,  // in range, and no x of a larger exponent than m: Fast2Sum gives x - m's rounding
    unshifted,  // every |x| <= unshifted_limit: exp(x) itself, m = 0, so no subtraction to round
};

// exp(xi - m), with the rounding error of the subtraction fed back (see exp.hpp) when Exact.
template <bool Exact, exp_mode Mode = exp_mode::checked, class V>
LOGITKIT_INLINE V exp_shifted(const V& xi, const V& m) noexcept {
    if constexpr (Mode == exp_mode::unshifted) return exp_of_in_range(xi);
    const V d = xi - m;
    V e(typename V::value_type(0));
    if constexpr (Exact && Mode == exp_mode::in_binade) {
        // Fast2Sum of (-m) + xi, exact since |m| has the larger exponent.
        e = xi - (d + m);
    } else if constexpr (Exact) {
        // TwoSum: the exact error of xi + (-m), whatever their magnitudes.
        const V mm = -m;
        const V xp = d - mm;
        const V mp = d - xp;
        e = (xi - xp) + (mm - mp);
    }
    if constexpr (Mode == exp_mode::checked)
        return exp_of(d, e);
    else
        return exp_of_in_range(d, e);
}

/// A row's largest and smallest element, and whether both are finite. An infinity shows in them;
/// a NaN may not (max and min may drop it), so `finite` only selects a faster path: every exp
/// mode turns a NaN input into a NaN term, which makes the row's sum, and so each of its
/// outputs, NaN, as the row's NaN requires.
template <class T>
struct row_range {
    T max;
    T min;
    bool finite;
};

/// The biased exponent field of v (0 for zero and subnormals, whose exponent is the smallest).
template <class T>
int exponent_field(T v) noexcept {
    using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    U bits;
    std::memcpy(&bits, &v, sizeof bits);
    constexpr int mantissa = std::numeric_limits<T>::digits - 1;
    return static_cast<int>((bits >> mantissa) & ((U(1) << (sizeof(T) * 8 - 1 - mantissa)) - 1));
}

/// The exp_mode a row with this range allows, for exp(in(x) - m) with m = in(max); in() is
/// monotone, so in(min) - m is the row's smallest exponent argument. Never unshifted (see
/// line_shift_for).
template <class T, class In>
exp_mode exp_mode_for(const row_range<T>& r, T m, In in) noexcept {
    if (!r.finite) return exp_mode::checked;
    const T lo = in(r.min);
    if (!(lo - m >= exp_constants<T>::fast_lo)) return exp_mode::checked;
    if (m != T(0) && exponent_field(lo) <= exponent_field(m)) return exp_mode::in_binade;
    return exp_mode::in_range;
}

/// The shift of a row's exponentials, exp(in(x) - m), and the exp_mode it allows. softmax is the
/// same for any shift that keeps the terms finite; the row's maximum is needed only to keep
/// them from overflowing. With Unshifted, a row whose every |in(x)| is at most unshifted_limit
/// therefore takes m = 0 (exp_mode::unshifted): no subtraction, whose rounding would have to be
/// fed back into the exponential, and every term is a normal number. A row whose elements are
/// all equal (one element included) keeps its shift, so that each output is exactly 1/n (or
/// -log n rounded once). Every other row takes m = in(max).
template <class T>
struct line_shift {
    T m;
    exp_mode mode;
};
template <bool Unshifted = true, class T, class In>
line_shift<T> line_shift_for(const row_range<T>& r, In in) noexcept {
    constexpr T limit = exp_constants<T>::unshifted_limit;
    const T hi = in(r.max);
    if (Unshifted && r.finite && r.max != r.min && hi <= limit && in(r.min) >= -limit)
        return {T(0), exp_mode::unshifted};
    return {hi, exp_mode_for(r, hi, in)};
}

/// log(sum(exp(in(x)))) of a line as two T, a + b, from its shift m and s = sum(exp(in(x) - m)),
/// for log_softmax's (in(x) - a) - b. Shifted, a = m and b = log(s): in(x) - m is exact where it
/// is near 0. Unshifted, log(s) itself may be as large as the line's maximum, and an output near
/// 0 then needs it to about twice T's digits, as a + b: in(x) - a is exact where the output is
/// near 0, and b holds what a lacks. float: l = log(s) in double, split in two. double: a = l,
/// whose rounding (up to half an ulp of 533 for |x| <= 512) would be the output's error, and b
/// from one Newton step, log(s) - l = log(s e^-l) = s e^-l - 1 to within (s e^-l - 1)^2 / 2: its
/// error is that of e^-l and of the fused multiply-add, about 2 ulp of 1 (tests/test_row_modes).
template <class T>
struct log_offset {
    T a;
    T b;
};
template <class T>
log_offset<T> log_offset_of(const line_shift<T>& sh, double s) noexcept {
    const double l = std::log(s);
    if (sh.mode != exp_mode::unshifted) return {sh.m, static_cast<T>(l)};
    if constexpr (std::numeric_limits<double>::digits >= 2 * std::numeric_limits<T>::digits) {
        const T a = static_cast<T>(l);
        return {a, static_cast<T>(l - static_cast<double>(a))};
    } else {
        return {static_cast<T>(l), static_cast<T>(std::fma(s, std::exp(-l), -1.0))};
    }
}

namespace row {

/// Largest element; -inf for n == 0. A NaN may or may not be returned for a row that holds one:
/// the later stages propagate it either way.
template <class Arch, class T>
T reduce_max(const T* x, index_type n) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    const T lowest = -std::numeric_limits<T>::infinity();
    V a0(lowest), a1(lowest), a2(lowest), a3(lowest);
    index_type i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        a0 = simd::max(a0, simd::load<V>(x + i));
        a1 = simd::max(a1, simd::load<V>(x + i + W));
        a2 = simd::max(a2, simd::load<V>(x + i + 2 * W));
        a3 = simd::max(a3, simd::load<V>(x + i + 3 * W));
    }
    for (; i + W <= n; i += W) a0 = simd::max(a0, simd::load<V>(x + i));
    if (i < n) a0 = simd::max(a0, simd::load_partial<V>(x + i, static_cast<std::size_t>(n - i), lowest));
    return simd::reduce_max(simd::max(simd::max(a0, a1), simd::max(a2, a3)));
}

/// The row's range (see row_range) in one pass; x stored as T or, for T = compute_type_t<S>, as S.
template <class Arch, class S, class T = compute_type_t<S>>
row_range<T> reduce_range(const S* x, index_type n) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    constexpr T inf = std::numeric_limits<T>::infinity();
    // Four accumulators of each, so that the latency of max and min does not bound the pass;
    // each batch is loaded once (simd::in_register), not once per operation.
    V hi[4], lo[4];
    for (int k = 0; k < 4; ++k) {
        hi[k] = V(-inf);
        lo[k] = V(inf);
    }
    auto observe = [&](int k, V v) LOGITKIT_LAMBDA_INLINE {
        simd::in_register(v);
        hi[k] = simd::max(hi[k], v);
        lo[k] = simd::min(lo[k], v);
    };
    index_type i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
        observe(0, simd::load<V>(x + i));
        observe(1, simd::load<V>(x + i + W));
        observe(2, simd::load<V>(x + i + 2 * W));
        observe(3, simd::load<V>(x + i + 3 * W));
    }
    for (; i + W <= n; i += W) observe(0, simd::load<V>(x + i));
    if (i < n) {
        const auto rem = static_cast<std::size_t>(n - i);
        hi[1] = simd::max(hi[1], simd::load_partial<V>(x + i, rem, -inf));
        lo[1] = simd::min(lo[1], simd::load_partial<V>(x + i, rem, inf));
    }
    const T max = simd::reduce_max(simd::max(simd::max(hi[0], hi[1]), simd::max(hi[2], hi[3])));
    const T min = -simd::reduce_max(-simd::min(simd::min(lo[0], lo[1]), simd::min(lo[2], lo[3])));
    return {max, min, n > 0 && std::isfinite(max) && std::isfinite(min)};
}

/// Work taken a batch at a time beside a row pass (unshifted_exp_sum's `along`):
/// step(i) for the batch at i, tail(i, rem) for the last rem elements. This one does nothing.
struct along_nothing {
    LOGITKIT_INLINE void step(index_type) const noexcept {}
    LOGITKIT_INLINE void tail(index_type, std::size_t) const noexcept {}
};

/// y = f(x) beside another line's pass: an output stage of the line before (softmax's scale,
/// log_softmax's shift), in place where x is y. Its loads and stores then overlap the other
/// line's exponentials instead of waiting on the cache in a pass of their own. The first `done`
/// elements are written so far; finish() writes the rest. y null: nothing to write. With Stream
/// (y aligned to a batch) the batches go out as non-temporal stores (see write_row). x and y may
/// be stored as X and Y, bfloat16 or float16 for T = float, converted in the loads and stores.
template <class Arch, class T, class F, bool Stream = false, class X = T, class Y = T>
struct rewrite_along {
    using V = batch<T, Arch>;
    const X* x = nullptr;
    Y* y = nullptr;
    index_type n = 0;
    F f{};
    index_type done = 0;
    /// Every f(x) is known to be free of NaN (no_nan_outputs): a y stored as bfloat16 then
    /// rounds without its NaN test (simd::store_no_nan).
    bool no_nan = false;
    LOGITKIT_INLINE void step(index_type i) noexcept {
        if constexpr (Stream)
            simd::store_stream(y + i, f(simd::load<V>(x + i)));
        else if (is_reduced_precision<Y>::value && no_nan)
            simd::store_no_nan(y + i, f(simd::load<V>(x + i)));
        else
            simd::store(y + i, f(simd::load<V>(x + i)));
        done = i + V::size;
    }
    LOGITKIT_INLINE void tail(index_type i, std::size_t rem) noexcept {
        simd::store_partial(y + i, f(simd::load_partial<V>(x + i, rem, T(0))), rem);
        done = n;
    }
    void finish() noexcept {
        if (y == nullptr) return;
        if (is_reduced_precision<Y>::value && no_nan)
            write_rest<true>();
        else
            write_rest<false>();
        y = nullptr;
    }

private:
    template <bool NoNan>
    void write_rest() noexcept {
        write_row<V, Stream, NoNan>(
            y + done, n - done, next_line<T>{},
            [&](index_type i) LOGITKIT_LAMBDA_INLINE { return f(simd::load<V>(x + done + i)); },
            [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
                return f(simd::load_partial<V>(x + done + i, rem, T(0)));
            });
    }
};

/// v * s (softmax's scale), and (in(v) - a) - b (log_softmax's shift), for rewrite_along.
template <class V>
struct times {
    V s;
    LOGITKIT_INLINE V operator()(const V& v) const noexcept { return v * s; }
};
template <class V, class In>
struct minus_twice {
    V a, b;
    In in{};
    LOGITKIT_INLINE V operator()(const V& v) const noexcept { return (in(v) - a) - b; }
};

/// Sum of exp(in(x_i) - m); when Store, also writes each exp(in(x_i) - m) to y. Exact (the
/// default with Store) feeds the rounding of x - m back into the exponential, so that each term
/// is within the exponential's bound of the true value. `mode` must be what exp_mode_for allows
/// for the row (checked always is). A non-null `next` (the next line's input) is prefetched, a
/// batch per batch, for callers whose lines do not fit in the cache together.
template <class Arch, bool Store, exp_mode Mode, bool Exact = Store, class S, class T, class In>
double exp_sum(const S* x, T* y, index_type n, T m, In in, const S* next = nullptr) noexcept {
    using V = batch<T, Arch>;
    const V vm(m);
    return accumulate<V>(
        n,
        [&](index_type i) LOGITKIT_LAMBDA_INLINE {
            if (next != nullptr) LOGITKIT_PREFETCH(next + i);
            V v = in(simd::load<V>(x + i));
            simd::in_register(v);
            const V e = exp_shifted<Exact, Mode>(v, vm);
            if constexpr (Store) simd::store(y + i, e);
            return e;
        },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
            V e;
            if constexpr (Mode == exp_mode::unshifted) {
                // Padding lanes hold in(0), in range, and are cleared after: each element gets the
                // bits it would get in a full batch.
                e = exp_shifted<Exact, Mode>(in(simd::load_partial<V>(x + i, rem, T(0))), vm);
                e = simd::select(simd::lane_index<V>() < V(static_cast<T>(rem)), e, V(T(0)));
            } else {
                // Padding lanes hold exp(-inf - m) = 0, which only the checked exponential handles.
                e = exp_shifted<Exact>(in(simd::load_partial<V>(x + i, rem, -std::numeric_limits<T>::infinity())), vm);
            }
            if constexpr (Store) simd::store_partial(y + i, e, rem);
            return e;
        });
}
/// The pass of unshifted_exp_sum, without its verdict: the sum of exp(in(x)) (storing each to y
/// when Store), and the range of the row. The sum is NaN when the pass stopped, within four
/// batches of the first element out of the unshifted limit, or met a NaN that max and min dropped.
/// The pieces of a split line take it one by one, and the line's verdict comes from them all.
/// Together: four batches through the exponential at a time where exp_interleave says so.
template <class Arch, bool Store, bool Together = true, class S, class T, class In, class Along = along_nothing>
double unshifted_exp_pass(const S* x, T* y, index_type n, In in, row_range<T>& range, const S* next = nullptr,
                          Along&& along = Along{}) noexcept {
    using V = batch<T, Arch>;
    constexpr T limit = exp_constants<T>::unshifted_limit;
    if (n < 2) return std::numeric_limits<double>::quiet_NaN();
    const T last = widen(x[n - 1]);
    if (!(in(last) <= limit && in(last) >= -limit)) return std::numeric_limits<double>::quiet_NaN();
    V hi(last), lo(last);
    const V up(limit), down(-limit), zero(T(0));
    const auto observe = [&](const V& v) LOGITKIT_LAMBDA_INLINE {
        hi = simd::max(hi, v);
        lo = simd::min(lo, v);
    };
    // A copy, which no store through y can alias, so that it stays in registers.
    std::remove_reference_t<Along> a = along;
    // count batches at i (a simd::pack), their exponentials together.
    const auto term = [&](index_type i, auto count) LOGITKIT_LAMBDA_INLINE {
        using P = simd::pack<V, decltype(count)::value>;
        P v;
        P::each([&](int k) LOGITKIT_LAMBDA_INLINE {
            if (next != nullptr) LOGITKIT_PREFETCH(next + i + k * V::size);
            v.v[k] = simd::load<V>(x + i + k * V::size);
            simd::in_register(v.v[k]);
            observe(v.v[k]);
        });
        const P u = in(v);
        const P e = exp_of_in_range(u);
        P::each([&](int k) LOGITKIT_LAMBDA_INLINE {
            if constexpr (Store) simd::store(y + i + k * V::size, e.v[k]);
            a.step(i + k * V::size);
        });
        return e;
    };
    const auto tail = [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
        // Padding lanes hold the last element: they change neither the range nor, once
        // cleared, the sum.
        const V v = simd::load_partial<V>(x + i, rem, last);
        observe(v);
        const V u = in(v);
        const V e = simd::select(simd::lane_index<V>() < V(static_cast<T>(rem)), exp_of_in_range(u), zero);
        if constexpr (Store) simd::store_partial(y + i, e, rem);
        a.tail(i, rem);
        return e;
    };
    const auto give_up = [&]() LOGITKIT_LAMBDA_INLINE { return !simd::all((in(hi) <= up) & (in(lo) >= down)); };
    double sum;
    if constexpr (Together && exp_interleave<V> == 4)
        sum = accumulate<V>(n, term, tail, give_up);
    else
        sum = accumulate<V>(
            n, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return term(i, batches<1>{}).v[0]; }, tail, give_up);
    along = a;
    const T max = simd::reduce_max(hi), min = -simd::reduce_max(-lo);
    range = {max, min, std::isfinite(max) && std::isfinite(min)};
    return sum;
}

/// exp_sum in exp_mode::unshifted (the same bits) for a row not yet known to allow it: the row's
/// range is taken on the way, its maximum and minimum beside the exponential, and the sum is
/// returned only when line_shift_for<true> then gives the row exp_mode::unshifted. Otherwise
/// returns false, having stopped within four batches of the first element out of the unshifted
/// limit (y holds garbage then). A row's last element is looked at first: masked lines (-inf)
/// usually end in masked elements, and then cost nothing here.
///
/// `along` (see along_nothing) takes its batches beside this pass's: the output stage of
/// another line of the same length, whose loads and stores then overlap these exponentials
/// instead of having a pass of their own. It has reached along.done when this returns.
/// A non-null `range` receives the row's range when this returns true.
template <class Arch, bool Store, class S, class T, class In, class Along = along_nothing>
bool unshifted_exp_sum(const S* x, T* y, index_type n, In in, double& sum, const S* next = nullptr,
                       Along&& along = Along{}, row_range<T>* range = nullptr) noexcept {
    row_range<T> r;
    // A line streamed from memory (next given) takes its batches one at a time: the pass waits on
    // memory, and four together cost such lines 10-25% more time (1024x32000 float).
    sum = next == nullptr
              ? unshifted_exp_pass<Arch, Store, true>(x, y, n, in, r, next, std::forward<Along>(along))
              : unshifted_exp_pass<Arch, Store, false>(x, y, n, in, r, next, std::forward<Along>(along));
    if (std::isnan(sum) || line_shift_for<true>(r, in).mode != exp_mode::unshifted) return false;
    if (range != nullptr) *range = r;
    return true;
}

template <class Arch, bool Store, bool Exact = Store, class S, class T, class In>
double exp_sum(const S* x, T* y, index_type n, T m, In in, exp_mode mode, const S* next = nullptr) noexcept {
    switch (mode) {
        case exp_mode::unshifted: return exp_sum<Arch, Store, exp_mode::unshifted, Exact>(x, y, n, m, in, next);
        case exp_mode::in_binade:
            // Without Exact the rounding of x - m is not fed back: in_binade is in_range.
            if constexpr (Exact) return exp_sum<Arch, Store, exp_mode::in_binade, Exact>(x, y, n, m, in, next);
            return exp_sum<Arch, Store, exp_mode::in_range, Exact>(x, y, n, m, in, next);
        case exp_mode::in_range: return exp_sum<Arch, Store, exp_mode::in_range, Exact>(x, y, n, m, in, next);
        case exp_mode::checked: break;
    }
    return exp_sum<Arch, Store, exp_mode::checked, Exact>(x, y, n, m, in, next);
}

// Short lines. A line of at most B batches is loaded into registers once and every stage works
// on the registers, so that it costs one load and one store per batch instead of a pass per
// stage (and the masked load of a tail a masked store has just written, which waits for that
// store to retire). Lanes past n hold x[0], which changes neither the line's maximum nor whether
// it holds a NaN, and keeps the exponential on its fast path; they are zeroed before a sum and
// never stored.

/// The most batches a short line holds (0: no short lines). With 16 vector registers (SSE, AVX2)
/// part of such a line lives on the stack, and reloading a batch from there still costs less than
/// a pass per stage with its loop and tail (AVX2, 4096x128 float: softmax 20%, logsumexp 25%
/// less time than with lines of at most 4 batches; AVX-512, lines of 256 floats: 15%).
template <class Arch, class T>
constexpr int short_line_batches = batch<T, Arch>::size == 1 ? 0 : 16;

/// Whether a line of n elements is a short line.
template <class Arch, class T>
constexpr bool is_short_line(index_type n) noexcept {
    return n > 0 && n <= short_line_batches<Arch, T> * index_type(batch<T, Arch>::size);
}

/// Calls f(std::integral_constant<int, B>{}) for the fewest batches B in {1, 2, 4, 8} that hold n
/// elements, and returns true; returns false (calling nothing) when n is longer than a short line.
template <class Arch, class T, class F>
LOGITKIT_INLINE bool with_short_line(index_type n, F f) {
    constexpr int most = short_line_batches<Arch, T>;
    constexpr index_type W = batch<T, Arch>::size;
    if constexpr (most == 0) {
        return false;
    } else {
        if (!is_short_line<Arch, T>(n)) return false;
        if (n <= W) {
            f(std::integral_constant<int, 1>{});
        } else if (n <= 2 * W) {
            f(std::integral_constant<int, 2>{});
        } else if (n <= 4 * W) {
            f(std::integral_constant<int, 4>{});
        } else if (most > 8 && n <= 8 * W) {
            f(std::integral_constant<int, 8>{});
        } else {
            f(std::integral_constant<int, most>{});
        }
        return true;
    }
}

template <class F, int... I>
LOGITKIT_INLINE void unrolled_impl(F& f, std::integer_sequence<int, I...>) {
    (f(I), ...);
}
/// f(0), f(1), ..., f(B - 1), unrolled whatever the optimisation level: a short line's batches
/// stay in registers only when every index into them is a constant.
template <int B, class F>
LOGITKIT_INLINE void unrolled(F f) {
    unrolled_impl(f, std::make_integer_sequence<int, B>{});
}

/// v = the n > 0 elements of a short line (stored as T, or as S for a batch of T = compute_type_t<S>),
/// the lanes past n holding `fill`.
template <int B, class V, class S>
LOGITKIT_INLINE void load_short(const S* x, index_type n, typename V::value_type fill, V (&v)[B]) noexcept {
    constexpr index_type W = V::size;
    unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE {
        const index_type i = b * W;
        if (i + W <= n)
            v[b] = simd::load<V>(x + i);
        else if (i < n)
            v[b] = simd::load_partial<V>(x + i, static_cast<std::size_t>(n - i), fill);
        else
            v[b] = V(fill);
    });
}

/// Writes the n elements of a short line (stored as load_short reads them); no_nan as for
/// rewrite_along.
template <int B, class V, class S>
LOGITKIT_INLINE void store_short(S* y, index_type n, const V (&v)[B], bool no_nan = false) noexcept {
    constexpr index_type W = V::size;
    unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE {
        const index_type i = b * W;
        if (i + W <= n && is_reduced_precision<S>::value && no_nan)
            simd::store_no_nan(y + i, v[b]);
        else if (i + W <= n)
            simd::store(y + i, v[b]);
        else if (i < n)
            simd::store_partial(y + i, v[b], static_cast<std::size_t>(n - i));
    });
}

/// op(v[0], ..., v[B - 1]) lane by lane, as a tree.
template <int B, class V, class Op>
LOGITKIT_INLINE V fold_short(const V (&v)[B], Op op) noexcept {
    V h[B];
    unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { h[b] = v[b]; });
    if constexpr (B >= 16) unrolled<8>([&](int b) LOGITKIT_LAMBDA_INLINE { h[b] = op(h[b], h[b + 8]); });
    if constexpr (B >= 8) unrolled<4>([&](int b) LOGITKIT_LAMBDA_INLINE { h[b] = op(h[b], h[b + 4]); });
    if constexpr (B >= 4) unrolled<2>([&](int b) LOGITKIT_LAMBDA_INLINE { h[b] = op(h[b], h[b + 2]); });
    if constexpr (B >= 2) h[0] = op(h[0], h[1]);
    return h[0];
}

/// The largest element of a short line (of v; as reduce_max, a NaN may or may not be returned).
template <int B, class V>
LOGITKIT_INLINE typename V::value_type max_short(const V (&v)[B]) noexcept {
    return simd::reduce_max(fold_short(v, [](const V& a, const V& b) LOGITKIT_LAMBDA_INLINE { return simd::max(a, b); }));
}

/// Whether a short line is one line_shift_for leaves unshifted: every |v| at most
/// unshifted_limit (false for an infinity; a NaN may pass, and then makes the line's sum NaN,
/// see row_range), and not all equal to `first`, the line's first element (the lanes past the
/// line hold it).
template <int B, class V>
LOGITKIT_INLINE bool unshifted_short(const V (&v)[B], const V& first) noexcept {
    const V limit(exp_constants<typename V::value_type>::unshifted_limit);
    const V hi = fold_short(v, [](const V& a, const V& b) LOGITKIT_LAMBDA_INLINE { return simd::max(a, b); });
    const V lo = fold_short(v, [](const V& a, const V& b) LOGITKIT_LAMBDA_INLINE { return simd::min(a, b); });
    return simd::all((hi <= limit) & (lo >= -limit)) && !simd::all((hi == first) & (lo == first));
}

/// The sum of a short line's batches, added in the order accumulate adds them (batch b into
/// accumulator b mod 4), so that it is rounded no more often than a longer line's sum.
template <int B, class V>
LOGITKIT_INLINE double sum_short(const V (&v)[B]) noexcept {
    if constexpr (B == 1) {
        return simd::lanes_sum(v[0]);
    } else if constexpr (B == 2) {
        return simd::lanes_sum(v[0] + v[1]);
    } else {
        V a[4] = {v[0], v[1], v[2], v[3]};
        unrolled<B / 4 - 1>([&](int k) LOGITKIT_LAMBDA_INLINE {
            unrolled<4>([&](int b) LOGITKIT_LAMBDA_INLINE { a[b] = a[b] + v[4 * (k + 1) + b]; });
        });
        return simd::lanes_sum((a[0] + a[1]) + (a[2] + a[3]));
    }
}

/// e = exp(v - m) for a short line of n elements (zero past n), and the sum of e; Mode is
/// checked or unshifted (m = 0); Exact as for exp_shifted.
template <exp_mode Mode = exp_mode::checked, bool Exact = true, int B, class V>
LOGITKIT_INLINE double exp_sum_short(const V (&v)[B], index_type n, typename V::value_type m, V (&e)[B]) noexcept {
    using T = typename V::value_type;
    constexpr index_type W = V::size;
    const V vm(m);
    unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE {
        e[b] = exp_shifted<Exact, Mode>(v[b], vm);
        if ((b + 1) * W > n) e[b] = simd::select(simd::lane_index<V>() < V(static_cast<T>(n - b * W)), e[b], V(T(0)));
    });
    return sum_short(e);
}

/// Whether every v - m of a short line is in the exponential's fast range: no NaN, no infinity,
/// none too small (exp_mode::in_range).
template <int B, class V>
LOGITKIT_INLINE bool in_fast_range_short(const V (&v)[B], typename V::value_type m) noexcept {
    const V vm(m), lo(exp_constants<typename V::value_type>::fast_lo);
    auto ok = (v[0] - vm) >= lo;
    unrolled<B - 1>([&](int b) LOGITKIT_LAMBDA_INLINE { ok = ok & ((v[b + 1] - vm) >= lo); });
    return simd::all(ok);
}

/// A short line through its first stages: v = in(x), its shift m, e = exp(v - m) and its sum.
/// The shift is max(v), or, with Unshifted, 0 for a line that line_shift_for would leave
/// unshifted (which also spares the line the horizontal maximum). Without Exact, e is only good
/// for the sum (as row::exp_sum without Exact).
template <class V, int B>
struct short_line {
    V v[B];
    V e[B];
    line_shift<typename V::value_type> shift;
    double sum;
};
template <class Arch, int B, bool Unshifted = false, bool Exact = true, class S, class In,
          class T = compute_type_t<S>>
LOGITKIT_INLINE short_line<batch<T, Arch>, B> shifted_exp_short(const S* x, index_type n, In in) noexcept {
    short_line<batch<T, Arch>, B> l;
    const T first = widen(x[0]);
    load_short(x, n, first, l.v);
    unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { l.v[b] = in(l.v[b]); });
    if (Unshifted && unshifted_short(l.v, in(batch<T, Arch>(first)))) {
        l.shift = {T(0), exp_mode::unshifted};
        l.sum = exp_sum_short<exp_mode::unshifted>(l.v, n, T(0), l.e);
    } else {
        l.shift = {max_short(l.v), exp_mode::checked};
        l.sum = exp_sum_short<exp_mode::checked, Exact>(l.v, n, l.shift.m, l.e);
    }
    return l;
}

// The output stages below take Stream (see write_row) and the next line's inputs to prefetch.

/// y = e * s (e may be y).
template <class Arch, bool Stream = false, class T>
void scale(const T* e, T* y, index_type n, T s, const next_line<T>& next = {}) noexcept {
    using V = batch<T, Arch>;
    const V vs(s);
    write_row<V, Stream>(
        y, n, next, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(e + i) * vs; },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE { return simd::load_partial<V>(e + i, rem, T(0)) * vs; });
}

/// y = (in(x) - m) - l: log_softmax's output stage (two roundings, so a large m never swamps l).
/// NoNan as for write_row.
template <class Arch, bool Stream = false, bool NoNan = false, class X, class Y, class T, class In>
void shift(const X* x, Y* y, index_type n, T m, T l, In in, const next_line<T>& next = {}) noexcept {
    using V = batch<T, Arch>;
    const V vm(m), vl(l);
    write_row<V, Stream, NoNan>(
        y, n, next, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return (in(simd::load<V>(x + i)) - vm) - vl; },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
            return (in(simd::load_partial<V>(x + i, rem, T(0))) - vm) - vl;
        });
}

/// Sum of a_i * b_i.
template <class Arch, class T>
double dot(const T* a, const T* b, index_type n) noexcept {
    using V = batch<T, Arch>;
    return accumulate<V>(
        n, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(a + i) * simd::load<V>(b + i); },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
            return simd::load_partial<V>(a + i, rem, T(0)) * simd::load_partial<V>(b + i, rem, T(0));
        });
}

/// Sum of a_i.
template <class Arch, class T>
double sum(const T* a, index_type n) noexcept {
    using V = batch<T, Arch>;
    return accumulate<V>(
        n, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(a + i); },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE { return simd::load_partial<V>(a + i, rem, T(0)); });
}

/// dx = y * (dy - s).
template <class Arch, bool Stream = false, class T>
void softmax_grad(const T* y, const T* dy, T* dx, index_type n, T s, const next_line<T>& next = {}) noexcept {
    using V = batch<T, Arch>;
    const V vs(s);
    write_row<V, Stream>(
        dx, n, next,
        [&](index_type i) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(y + i) * (simd::load<V>(dy + i) - vs); },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
            return simd::load_partial<V>(y + i, rem, T(0)) * (simd::load_partial<V>(dy + i, rem, T(0)) - vs);
        });
}

/// log_softmax's gradient of a batch, dy - exp(y) s, given minus_s = -s: the one formula of
/// every backward path (lines, short lines, grouped lines, columns), so that each gives an
/// element the same bits.
template <class V>
LOGITKIT_INLINE V log_softmax_grad_of(const V& y, const V& minus_s, const V& dy) noexcept {
    return simd::fma(exp_of(y), minus_s, dy);
}
/// The same for each batch of a simd::pack, its exponentials together (exp_of of a pack).
template <class V, int N>
LOGITKIT_INLINE simd::pack<V, N> log_softmax_grad_of(const simd::pack<V, N>& y, const V& minus_s,
                                                     const simd::pack<V, N>& dy) noexcept {
    const simd::pack<V, N> e = exp_of(y);
    return simd::pack<V, N>::map([&](int k) LOGITKIT_LAMBDA_INLINE { return simd::fma(e.v[k], minus_s, dy.v[k]); });
}

/// dx = dy - exp(y) * s.
template <class Arch, bool Stream = false, class T>
void log_softmax_grad(const T* y, const T* dy, T* dx, index_type n, T s, const next_line<T>& next = {}) noexcept {
    using V = batch<T, Arch>;
    const V vs(T(-s));
    write_row<V, Stream>(
        dx, n, next,
        [&](index_type i) LOGITKIT_LAMBDA_INLINE {
            return log_softmax_grad_of(simd::load<V>(y + i), vs, simd::load<V>(dy + i));
        },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
            return log_softmax_grad_of(simd::load_partial<V>(y + i, rem, T(0)), vs,
                                       simd::load_partial<V>(dy + i, rem, T(0)));
        });
}

/// log_softmax_grad (the same bits), returning the sum of the n elements at next (row::sum's
/// bits), which are loaded beside it: the next line's dy, whose own pass would otherwise wait on
/// the cache where this one waits on the exponential (log_softmax_backward: a line's sum, then
/// its output stage with the next line's sum).
template <class Arch, class T>
double log_softmax_grad_and_sum(const T* y, const T* dy, T* dx, index_type n, T s, const T* next) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    const V vs(T(-s));
    const auto term = [&](index_type i, auto count) LOGITKIT_LAMBDA_INLINE {
        using P = simd::pack<V, decltype(count)::value>;
        const P g = log_softmax_grad_of(P::map([&](int k) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(y + i + k * W); }),
                                        vs,
                                        P::map([&](int k) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(dy + i + k * W); }));
        P::each([&](int k) LOGITKIT_LAMBDA_INLINE { simd::store(dx + i + k * W, g.v[k]); });
        return P::map([&](int k) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(next + i + k * W); });
    };
    const auto tail = [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
        simd::store_partial(dx + i,
                            log_softmax_grad_of(simd::load_partial<V>(y + i, rem, T(0)), vs,
                                                simd::load_partial<V>(dy + i, rem, T(0))),
                            rem);
        return simd::load_partial<V>(next + i, rem, T(0));
    };
    if constexpr (exp_interleave<V> == 4)
        return accumulate<V>(n, term, tail);
    else
        return accumulate<V>(n, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return term(i, batches<1>{}).v[0]; }, tail);
}

}  // namespace row

namespace col {

// A column block is K batches of W adjacent columns: element (r, k) of a block lives at
// p + r * stride + k * W. Per-column results are arrays of K * W values.

/// give_up() is asked after each band of rows; once it holds, the sums are abandoned and false
/// returned.
template <class V, int K, class Term, class GiveUp = never>
LOGITKIT_INLINE bool accumulate(index_type n, Term term, double* sums, GiveUp give_up = {}) noexcept {
    using T = typename V::value_type;
    compensated_sum<V> acc[K];
    index_type r = 0;
    while (r < n) {
        V blk[K];
        for (int k = 0; k < K; ++k) blk[k] = V(T(0));
        const index_type end = std::min(n, r + block_batches);
        // Two rows at a time: a wide block's per-column state (this sum, and what term keeps),
        // more than the registers hold, is then loaded and stored once per two rows (logsumexp
        // over axis 0 of 1000x1024 float: 3% less time; the other kernels there unchanged).
        for (; r + 1 < end; r += 2)
            for (int k = 0; k < K; ++k) {
                const V t0 = term(r, k);
                const V t1 = term(r + 1, k);
                blk[k] = blk[k] + (t0 + t1);
            }
        if (r < end) {
            for (int k = 0; k < K; ++k) blk[k] = blk[k] + term(r, k);
            ++r;
        }
        for (int k = 0; k < K; ++k) acc[k].add(blk[k]);
        if (give_up()) return false;
    }
    for (int k = 0; k < K; ++k) acc[k].lanes(sums + k * V::size);
    return true;
}

/// Per column, the largest and the smallest element of n rows, into h and l. A NaN may or may
/// not be dropped (see reduce_range).
template <class Arch, int K, class T>
LOGITKIT_INLINE void range_of(const T* x, index_type sx, index_type n, batch<T, Arch> (&h)[K],
                              batch<T, Arch> (&l)[K]) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    constexpr T inf = std::numeric_limits<T>::infinity();
    for (int k = 0; k < K; ++k) {
        h[k] = V(-inf);
        l[k] = V(inf);
    }
    // The rows in bands: each batch of columns takes the band's rows before the next batch does,
    // so that its maximum and minimum stay in registers for the band (a block's, 2 K batches, do
    // not fit in them) while the band's rows, a few pages, stay in the first-level cache.
    for (index_type r = 0; r < n; r += block_batches) {
        const index_type end = std::min(n, r + block_batches);
        for (int k = 0; k < K; ++k) {
            V hk = h[k], lk = l[k];
            for (index_type i = r; i < end; ++i) {
                V v = simd::load<V>(x + i * sx + k * W);
                simd::in_register(v);
                hk = simd::max(hk, v);
                lk = simd::min(lk, v);
            }
            h[k] = hk;
            l[k] = lk;
        }
    }
}

/// range_of, stored to hi and lo (K * W each).
template <class Arch, int K, class T>
void range(const T* x, index_type sx, index_type n, T* hi, T* lo) noexcept {
    using V = batch<T, Arch>;
    V h[K], l[K];
    range_of<Arch, K>(x, sx, n, h, l);
    for (int k = 0; k < K; ++k) {
        simd::store(hi + k * V::size, h[k]);
        simd::store(lo + k * V::size, l[k]);
    }
}

/// Per column: the shift m, and the exp_mode every column of the block allows (see
/// row::reduce_range and line_shift_for), from the columns' maxima hi(k) and minima lo(k), batch
/// k of each: with Unshifted, m = 0 and exp_mode::unshifted when every column may go unshifted;
/// else m = in(max) and the mode exp_mode_for gives the block. A non-null `max` receives in(max)
/// in either case.
template <class Arch, int K, bool Unshifted = false, class T, class Hi, class Lo, class In>
exp_mode mode_of_range(Hi hi, Lo lo, T* m, In in, T* max = nullptr) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    // Lane by lane in batches, as the scalar tests of those functions would take them one column
    // at a time (for a few classes per sample, as in cross-entropy over a class axis that is not
    // last, those tests cost as much as the passes).
    const V big(std::numeric_limits<T>::max()), limit(exp_constants<T>::unshifted_limit),
        fast_lo(exp_constants<T>::fast_lo), zero(T(0));
    bool unshifted = Unshifted, in_range = true, in_binade = true;
    for (int k = 0; k < K; ++k) {
        const V h = hi(k), l = lo(k);
        const V ih = in(h), il = in(l);
        // Both finite (an empty block's -inf maximum is not), so hi != lo is hi > lo.
        const auto finite = (h >= -big) & (h <= big) & (l >= -big) & (l <= big);
        if constexpr (Unshifted)
            unshifted = unshifted && simd::all(finite & (h > l) & (ih <= limit) & (il >= -limit));
        in_range = in_range && simd::all(finite & ((il - ih) >= fast_lo));
        in_binade = in_binade && simd::all(((ih < zero) | (ih > zero)) & (simd::binade(il) <= simd::binade(ih)));
        simd::store(m + k * W, ih);
        if (max != nullptr) simd::store(max + k * W, ih);
    }
    if (unshifted) {
        std::fill(m, m + K * W, T(0));
        return exp_mode::unshifted;
    }
    return !in_range ? exp_mode::checked : in_binade ? exp_mode::in_binade : exp_mode::in_range;
}

/// mode_of_range of the columns' maxima and minima stored at hi and lo (K * W each).
template <class Arch, int K, bool Unshifted = false, class T, class In>
exp_mode mode_of_stored_range(const T* hi, const T* lo, T* m, In in, T* max = nullptr) noexcept {
    using V = batch<T, Arch>;
    return mode_of_range<Arch, K, Unshifted, T>([&](int k) { return simd::load<V>(hi + k * V::size); },
                                                [&](int k) { return simd::load<V>(lo + k * V::size); }, m, in, max);
}

/// The columns' shifts and the block's exp_mode (mode_of_range) from one pass over the block.
template <class Arch, int K, bool Unshifted = false, class T, class In>
exp_mode reduce_range(const T* x, index_type sx, index_type n, T* m, In in, T* max = nullptr) noexcept {
    using V = batch<T, Arch>;
    V h[K], l[K];
    range_of<Arch, K>(x, sx, n, h, l);
    return mode_of_range<Arch, K, Unshifted, T>([&](int k) { return h[k]; }, [&](int k) { return l[k]; }, m, in,
                                                max);
}

template <class Arch, int K, bool Store, exp_mode Mode, class T, class In>
void exp_sum(const T* x, index_type sx, T* y, index_type sy, index_type n, const T* m, In in,
             double* sums) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    V vm[K];
    for (int k = 0; k < K; ++k) vm[k] = simd::load<V>(m + k * W);
    accumulate<V, K>(
        n,
        [&](index_type r, int k) LOGITKIT_LAMBDA_INLINE {
            const V e = exp_shifted<Store, Mode>(in(simd::load<V>(x + r * sx + k * W)), vm[k]);
            if constexpr (Store) simd::store(y + r * sy + k * W, e);
            return e;
        },
        sums);
}
template <class Arch, int K, bool Store, class T, class In>
void exp_sum(const T* x, index_type sx, T* y, index_type sy, index_type n, const T* m, In in, double* sums,
             exp_mode mode) noexcept {
    switch (mode) {
        case exp_mode::unshifted: return exp_sum<Arch, K, Store, exp_mode::unshifted>(x, sx, y, sy, n, m, in, sums);
        case exp_mode::in_binade:
            if constexpr (Store) return exp_sum<Arch, K, Store, exp_mode::in_binade>(x, sx, y, sy, n, m, in, sums);
            return exp_sum<Arch, K, Store, exp_mode::in_range>(x, sx, y, sy, n, m, in, sums);
        case exp_mode::in_range: return exp_sum<Arch, K, Store, exp_mode::in_range>(x, sx, y, sy, n, m, in, sums);
        case exp_mode::checked: break;
    }
    exp_sum<Arch, K, Store, exp_mode::checked>(x, sx, y, sy, n, m, in, sums);
}

/// The pass of unshifted_exp_sum, without its verdict: the columns' sums of exp(in(x)) (storing
/// each to y when Store) into sums, and with Maxima the columns' maxima into max (K * W). Returns
/// false, having stopped at the end of the band of rows holding the first element out of the
/// unshifted limit (y holds garbage then). The limit is a bound on the whole block, kept in two
/// registers: per-column maxima and minima, held in memory for a wide block (more than the
/// registers), cost a load and a store each per batch (1000x1024 float, axis 0: about 10% of
/// softmax's time). The pieces of a block's rows take it one by one, and the block's verdict
/// (unshifted_verdict) follows them all.
template <class Arch, int K, bool Store, bool Maxima = false, class T, class In>
bool unshifted_exp_pass(const T* x, index_type sx, T* y, index_type sy, index_type n, In in, double* sums,
                        T* max = nullptr) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    constexpr T inf = std::numeric_limits<T>::infinity();
    const V up(exp_constants<T>::unshifted_limit), down(-exp_constants<T>::unshifted_limit);
    V hi(-inf), lo(inf);
    V h[Maxima ? K : 1];
    for (V& v : h) v = V(-inf);
    const bool within = accumulate<V, K>(
        n,
        [&](index_type r, int k) LOGITKIT_LAMBDA_INLINE {
            V v = simd::load<V>(x + r * sx + k * W);
            simd::in_register(v);
            hi = simd::max(hi, v);
            lo = simd::min(lo, v);
            if constexpr (Maxima) h[k] = simd::max(h[k], v);
            const V e = exp_of_in_range(in(v));
            if constexpr (Store) simd::store(y + r * sy + k * W, e);
            return e;
        },
        sums, [&]() LOGITKIT_LAMBDA_INLINE { return !simd::all((in(hi) <= up) & (in(lo) >= down)); });
    if (!within) return false;
    if constexpr (Maxima)
        for (int k = 0; k < K; ++k) simd::store(max + k * W, h[k]);
    return true;
}

/// Whether every column of n rows holds two different elements (a NaN differs from everything),
/// rows compared with the first until each column has met one: for most blocks, row 1 alone.
template <class Arch, int K, class T>
bool columns_vary(const T* x, index_type sx, index_type n) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    for (int k = 0; k < K; ++k) {
        const V first = simd::load<V>(x + k * W);
        auto met = first != first;
        for (index_type r = 1; r < n && !simd::all(met); ++r) met = met | (simd::load<V>(x + r * sx + k * W) != first);
        if (!simd::all(met)) return false;
    }
    return true;
}

/// Whether a block of n rows whose every element was within the unshifted limit
/// (unshifted_exp_pass) is unshifted, as reduce_range<Unshifted = true> would find: every column
/// not all equal (columns_vary), and no NaN, which the limit's max and min may have dropped, in
/// the columns' sums. Then m is set to 0.
template <class Arch, int K, class T>
bool unshifted_verdict(const T* x, index_type sx, index_type n, const double* sums, T* m) noexcept {
    constexpr index_type lanes = batch<T, Arch>::size * K;
    for (index_type i = 0; i < lanes; ++i)
        if (std::isnan(sums[i])) return false;
    if (!columns_vary<Arch, K>(x, sx, n)) return false;
    std::fill(m, m + lanes, T(0));
    return true;
}

/// col::exp_sum in exp_mode::unshifted (the same bits) for a block not yet known to allow it, as
/// row::unshifted_exp_sum for rows: the sums are returned (m set to 0, and with Maxima in(max) of
/// the columns to max, as reduce_range gives) only when reduce_range<Unshifted = true> would give
/// the block exp_mode::unshifted (unshifted_verdict). The pass is col::accumulate's, a row at a
/// time across the block: not reduce_range's order (a batch of columns down the band), which
/// with the stores took 75% more time on 1000x1024 softmax, each store 4 KiB from the next row's
/// load.
template <class Arch, int K, bool Store, bool Maxima = false, class T, class In>
bool unshifted_exp_sum(const T* x, index_type sx, T* y, index_type sy, index_type n, T* m, In in, double* sums,
                       T* max = nullptr) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    if (n < 2 || !unshifted_exp_pass<Arch, K, Store, Maxima>(x, sx, y, sy, n, in, sums, max) ||
        !unshifted_verdict<Arch, K>(x, sx, n, sums, m))
        return false;
    if constexpr (Maxima)
        for (int k = 0; k < K; ++k) simd::store(max + k * W, in(simd::load<V>(max + k * W)));
    return true;
}

template <class Arch, int K, class T>
void scale(T* y, index_type sy, index_type n, const T* s) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    V vs[K];
    for (int k = 0; k < K; ++k) vs[k] = simd::load<V>(s + k * W);
    for (index_type r = 0; r < n; ++r)
        for (int k = 0; k < K; ++k) {
            T* p = y + r * sy + k * W;
            simd::store(p, simd::load<V>(p) * vs[k]);
        }
}

template <class Arch, int K, class T, class In>
void shift(const T* x, index_type sx, T* y, index_type sy, index_type n, const T* m, const T* l, In in) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    V vm[K], vl[K];
    for (int k = 0; k < K; ++k) {
        vm[k] = simd::load<V>(m + k * W);
        vl[k] = simd::load<V>(l + k * W);
    }
    for (index_type r = 0; r < n; ++r)
        for (int k = 0; k < K; ++k)
            simd::store(y + r * sy + k * W, (in(simd::load<V>(x + r * sx + k * W)) - vm[k]) - vl[k]);
}

template <class Arch, int K, class T>
void dot(const T* a, index_type sa, const T* b, index_type sb, index_type n, double* sums) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    accumulate<V, K>(
        n, [&](index_type r, int k) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(a + r * sa + k * W) * simd::load<V>(b + r * sb + k * W); },
        sums);
}

template <class Arch, int K, class T>
void sum(const T* a, index_type sa, index_type n, double* sums) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    accumulate<V, K>(n, [&](index_type r, int k) LOGITKIT_LAMBDA_INLINE { return simd::load<V>(a + r * sa + k * W); }, sums);
}

template <class Arch, int K, class T>
void softmax_grad(const T* y, index_type sy, const T* dy, index_type sdy, T* dx, index_type sdx, index_type n,
                  const T* s) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    V vs[K];
    for (int k = 0; k < K; ++k) vs[k] = simd::load<V>(s + k * W);
    for (index_type r = 0; r < n; ++r)
        for (int k = 0; k < K; ++k)
            simd::store(dx + r * sdx + k * W,
                        simd::load<V>(y + r * sy + k * W) * (simd::load<V>(dy + r * sdy + k * W) - vs[k]));
}

template <class Arch, int K, class T>
void log_softmax_grad(const T* y, index_type sy, const T* dy, index_type sdy, T* dx, index_type sdx, index_type n,
                      const T* s) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    V vs[K];
    for (int k = 0; k < K; ++k) vs[k] = -simd::load<V>(s + k * W);
    for (index_type r = 0; r < n; ++r)
        for (int k = 0; k < K; ++k)
            simd::store(dx + r * sdx + k * W, row::log_softmax_grad_of(simd::load<V>(y + r * sy + k * W), vs[k],
                                                                  simd::load<V>(dy + r * sdy + k * W)));
}

}  // namespace col
}  // namespace detail
}  // namespace logitkit
