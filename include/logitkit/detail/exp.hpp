// logitkit — vector exponential used by every kernel.
// SPDX-License-Identifier: MIT
//
// Contract (checked by tests/test_exp.cpp on every compiled architecture and table size):
//   exp_of(d, e) returns exp(d + e) for any d (NaN, ±inf included) and a correction |e| <= ulp(d)
//   (e = 0 when the argument is a plain float). e carries the rounding error of d = fl(x - m), so
//   that exp(x - m) is evaluated as if x - m were exact.
//   float : relative error <= 2 ulp (measured: <= 1.5) where the result is a normal number;
//           subnormal results are rounded once (error <= 1 subnormal ulp + 2 ulp relative);
//           exp(d) = 0 for d < -103.98, +inf for d > 88.73, NaN for NaN.
//   double: relative error <= 2 ulp where the result is normal; 0 below -745.2, +inf above 709.79.
//   exp_of_in_range(d) (no correction) has the same bound for d in [fast_lo, fast_hi].
//
// Method: k = round(d 2^L / ln2) by the "shifter" trick (no float-to-int conversion), so that
// d = (k / 2^L) ln2 + r with |r| <= ln2 / 2^(L+1); r is formed in two Cody-Waite steps plus e.
// exp(d) = 2^(k >> L) * 2^((k mod 2^L) / 2^L) * exp(r): the middle factor comes from a table of
// 2^L entries (L = 0: no table), exp(r) - 1 from its Taylor polynomial, of the lowest degree
// whose truncation error on |r| is below 1/20 ulp (table below), and 2^(k >> L) is added to the
// exponent field of the table entry as an integer, before the last multiply-add (with a fused
// multiply-add the result is the same as scaling after it: scaling by a power of 2 commutes with
// the one rounding while everything is normal). An architecture with a register-wide permute (AVX2: 8 float
// entries, AVX-512: 16 float / 8 double entries) picks a table and so a shorter polynomial; the
// others use L = 0. Lanes whose result rounds to 0 are set to 0. Lanes whose 2^(k >> L) is not a
// normal number take a second, clamped path that scales in two steps so the result is rounded
// only once; it is taken only when a batch holds such a lane (or a NaN or +inf).
#pragma once

#include <limits>

#include "simd.hpp"

namespace logitkit {
namespace detail {

template <class T>
struct exp_constants;

template <>
struct exp_constants<float> {
    static constexpr float log2e = 1.44269504088896341f;
    // n * ln2_hi is exact for |n| < 2^12 (without an FMA too): ln2_hi has 12 significant bits.
    static constexpr float ln2_hi = 0.693115234375f;
    static constexpr float ln2_lo = 3.19461849453094172e-05f;
    static constexpr float round_shifter = 12582912.0f;       // 1.5 * 2^23: adding it rounds to an integer
    static constexpr float shifter = round_shifter + 127.0f;  // plus the exponent bias (pow2_from_shifted)
    static constexpr float fast_lo = -87.0f;                  // 2^(k >> L) normal for d in [fast_lo, fast_hi]
    static constexpr float fast_hi = 88.0f;
    // A line whose every |x| is at most this needs no shift by its maximum (exp_mode::unshifted):
    // each exp(x) is a normal number, and a sum of up to 2^31 of them stays finite (e^64 = 6e27).
    static constexpr float unshifted_limit = 64.0f;
    static constexpr float zero_below = -104.0f;  // exp rounds to 0 below -103.98
    static constexpr float clamp_lo = -110.0f;
    static constexpr float clamp_hi = 89.0f;    // and overflows to inf above 88.73
    static constexpr float split = 64.0f;       // slow path: 2^s = 2^(s -/+ split) * 2^(+/-split)
    static constexpr float pow2_split = 0x1p64f;
    static constexpr float pow2_minus_split = 0x1p-64f;
    static constexpr int degree = 7;
    // Truncation error of the Taylor polynomial of exp(r) - 1 on |r| <= ln2 / 2^(L+1), relative:
    // L = 0, degree 7: 5e-9; L = 3, degree 4: 1.3e-9; L = 4, degree 3: 9e-9 (1 ulp = 6e-8).
    static constexpr int degree_for_table(int L) noexcept { return L >= 4 ? 3 : L >= 3 ? 4 : 7; }
};

template <>
struct exp_constants<double> {
    static constexpr double log2e = 1.44269504088896340736;
    // n * ln2_hi is exact for |n| < 2^21: ln2_hi has 32 significant bits.
    static constexpr double ln2_hi = 6.93147180369123816490e-01;
    static constexpr double ln2_lo = 1.90821492927058770002e-10;
    static constexpr double round_shifter = 6755399441055744.0;  // 1.5 * 2^52
    static constexpr double shifter = round_shifter + 1023.0;
    static constexpr double fast_lo = -708.0;
    static constexpr double fast_hi = 709.0;
    static constexpr double unshifted_limit = 512.0;  // e^512 = 2e222
    static constexpr double zero_below = -746.0;  // exp rounds to 0 below -745.14
    static constexpr double clamp_lo = -760.0;
    static constexpr double clamp_hi = 710.0;   // and overflows to inf above 709.79
    static constexpr double split = 512.0;
    static constexpr double pow2_split = 0x1p512;
    static constexpr double pow2_minus_split = 0x1p-512;
    static constexpr int degree = 13;
    // L = 0, degree 13: 4e-18; L = 3, degree 8: 1.5e-18; L = 4, degree 7: 1.2e-18 (1 ulp = 1.1e-16).
    static constexpr int degree_for_table(int L) noexcept { return L >= 4 ? 7 : L >= 3 ? 8 : 13; }
};

template <class T>
struct taylor_coefficients {
    static constexpr T inv_factorial[14] = {T(1.0L),
                                            T(1.0L),
                                            T(0.5L),
                                            T(1.66666666666666666666667e-01L),
                                            T(4.16666666666666666666667e-02L),
                                            T(8.33333333333333333333333e-03L),
                                            T(1.38888888888888888888889e-03L),
                                            T(1.98412698412698412698413e-04L),
                                            T(2.48015873015873015873016e-05L),
                                            T(2.75573192239858906525573e-06L),
                                            T(2.75573192239858906525573e-07L),
                                            T(2.50521083854417187750521e-08L),
                                            T(2.08767569878680989792101e-09L),
                                            T(1.60590438368216145993924e-10L)};
};

/// exp(r) - 1 by its Taylor polynomial of the given degree: r + r^2 P(r), with P's terms paired
/// (P = (c2 + c3 r) + r^2 (c4 + c5 r) + ...) so that its latency grows with log(degree), since
/// the row loops are bound by the latency of this chain rather than by its operation count.
template <int Degree, class V>
LOGITKIT_INLINE V expm1_taylor(const V& r) noexcept {
    using C = taylor_coefficients<typename V::value_type>;
    const V r2 = r * r;
    constexpr int top = Degree - (Degree % 2 == 0 ? 0 : 1);  // last even index
    V p = Degree % 2 == 0 ? V(C::inv_factorial[Degree]) : simd::fma(V(C::inv_factorial[Degree]), r, V(C::inv_factorial[Degree - 1]));
    for (int k = top - 2; k >= 2; k -= 2) p = simd::fma(p, r2, simd::fma(V(C::inv_factorial[k + 1]), r, V(C::inv_factorial[k])));
    return simd::fma(r2, p, r);
}

/// The table size (log2) exp_of uses on V's architecture.
template <class V>
constexpr int exp_table_bits = simd::exp_table_bits_of<V>();

/// exp(r) - 1 for d = (k / 2^L) ln2 + r - e, and t = round_shifter + k.
template <int L, class V>
LOGITKIT_INLINE V exp_reduced(const V& d, const V& e, V& t) noexcept {
    using T = typename V::value_type;
    using C = exp_constants<T>;
    constexpr T scale = T(1 << L);
    t = simd::fma(d, V(C::log2e * scale), V(C::round_shifter));
    const V n = t - V(C::round_shifter);
    // The low part of n ln2 / 2^L and the correction e are combined beside the high part's fma.
    const V r = simd::fma(n, V(-C::ln2_hi / scale), d) + simd::fma(n, V(-C::ln2_lo / scale), e);
    return expm1_taylor<C::degree_for_table(L)>(r);
}

/// exp(r) - 1 for d = (k / 2^L) ln2 + r (no correction), and t = round_shifter + k: the two
/// Cody-Waite steps are chained fused multiply-adds, one operation fewer than with e.
template <int L, class V>
LOGITKIT_INLINE V exp_reduced(const V& d, V& t) noexcept {
    using T = typename V::value_type;
    using C = exp_constants<T>;
    constexpr T scale = T(1 << L);
    t = simd::fma(d, V(C::log2e * scale), V(C::round_shifter));
    const V n = t - V(C::round_shifter);
    const V r = simd::fma(n, V(-C::ln2_lo / scale), simd::fma(n, V(-C::ln2_hi / scale), d));
    return expm1_taylor<C::degree_for_table(L)>(r);
}

/// 2^(k >> L) * 2^((k mod 2^L) / 2^L) * exp(r) for d = (k / 2^L) ln2 + r - e; t = round_shifter + k.
/// The exponent factor is left out: the caller adds it with simd::add_exponent<L>(y, t).
template <int L, bool Corrected = true, class V>
LOGITKIT_INLINE V exp_mantissa(const V& d, const V& e, V& t) noexcept {
    using T = typename V::value_type;
    // Without a correction (e = 0) the reduction of exp_of_in_range(d), so that exp_of(d) gives a
    // lane the same bits whichever path its batch takes.
    V q;
    if constexpr (Corrected)
        q = exp_reduced<L>(d, e, t);
    else
        q = exp_reduced<L>(d, t);
    if constexpr (L == 0) {
        return q + V(T(1));
    } else {
        const V f = simd::exp2_fraction<L>(t);
        return simd::fma(f, q, f);
    }
}

// The batches holding a lane out of the fast range (or NaN or +inf); without Corrected, e is 0.
template <int L, bool Corrected = true, class V>
LOGITKIT_COLD V exp_of_wide_range(V d, V e) noexcept {
    using T = typename V::value_type;
    using C = exp_constants<T>;
    V t;
    // Comparisons with NaN are false, so select keeps NaN lanes as they are.
    const V lo(C::clamp_lo), hi(C::clamp_hi);
    const auto below = d < lo;
    const auto above = d > hi;
    const V dc = simd::select(below, lo, simd::select(above, hi, d));
    const V ec = simd::select(below | above, V(T(0)), e);
    const V y = exp_mantissa<L, Corrected>(dc, ec, t);
    const auto negative = dc < V(T(0));
    const V split = simd::select(negative, V(-C::split), V(C::split)) * V(T(1 << L));
    // 2^((k >> L) - split) is normal and y times it exact; the final product rounds once. The
    // products are floating-point so that NaN lanes stay NaN.
    const V big = y * simd::add_exponent<L>(V(T(1)), t - split);
    const V two_split = simd::select(negative, V(C::pow2_minus_split), V(C::pow2_split));
    return big * two_split;
}

/// exp(d + e) for d known to be in [fast_lo, fast_hi] (no NaN): exp_of without its range test,
/// for callers that established the range of a whole row beforehand.
template <class V, int L = exp_table_bits<V>>
LOGITKIT_INLINE V exp_of_in_range(const V& d, const V& e) noexcept {
    V t;
    const V q = exp_reduced<L>(d, e, t);
    // f 2^(k >> L), normal in this range, scaled before the last fma rather than after it: the
    // table lookup and the exponent shift then cost one integer add (see exp2_scaled).
    const V f = simd::exp2_scaled<L>(t);
    return simd::fma(f, q, f);
}

/// exp(d) for d known to be in [fast_lo, fast_hi] (no NaN; a NaN lane gives NaN all the same).
template <class V, int L = exp_table_bits<V>>
LOGITKIT_INLINE V exp_of_in_range(const V& d) noexcept {
    V t;
    const V q = exp_reduced<L>(d, t);
    const V f = simd::exp2_scaled<L>(t);
    return simd::fma(f, q, f);
}

/// How many batches a pass takes through the exponential together, as a simd::pack (whose
/// operations give each batch the bits it gets alone): as many as the registers hold with the
/// polynomial's terms and constants.
template <class V>
constexpr int exp_interleave = simd::exp_interleave_of<V>();

/// The lanes of d that exp_of_in_range takes: d in [fast_lo, fast_hi] (false for NaN).
template <class V>
LOGITKIT_INLINE auto in_fast_range(const V& d) noexcept {
    using C = exp_constants<typename V::value_type>;
    return (d >= V(C::fast_lo)) & (d <= V(C::fast_hi));
}

/// exp(d + e); see the contract at the top of this file. L is the table size (log2); the
/// default is the architecture's, and tests instantiate the others.
template <class V, int L = exp_table_bits<V>>
LOGITKIT_INLINE V exp_of(const V& d, const V& e) noexcept {
    using T = typename V::value_type;
    using C = exp_constants<T>;
    const auto fast = in_fast_range(d);
    if (simd::all(fast)) return exp_of_in_range<V, L>(d, e);
    // Lanes far below the range (masked elements, -inf logits) are 0 and need no slow path.
    const auto zero = d < V(C::zero_below);
    if (simd::all(fast | zero)) return simd::select(zero, V(T(0)), exp_of_in_range<V, L>(d, e));
    return exp_of_wide_range<L>(d, e);
}

/// exp(d): exp_of(d, 0), with the reduction of exp_of_in_range(d) (one operation fewer).
template <class V, int L = exp_table_bits<V>>
LOGITKIT_INLINE V exp_of(const V& d) noexcept {
    using T = typename V::value_type;
    using C = exp_constants<T>;
    const auto fast = in_fast_range(d);
    if (simd::all(fast)) return exp_of_in_range<V, L>(d);
    const auto zero = d < V(C::zero_below);
    if (simd::all(fast | zero)) return simd::select(zero, V(T(0)), exp_of_in_range<V, L>(d));
    return exp_of_wide_range<L, false>(d, V(T(0)));
}

// A pack holding a lane out of the fast range (or NaN or +inf): each batch's exp_of. Out of
// line, so that the common path keeps the pack in registers.
template <class V, int N>
LOGITKIT_COLD simd::pack<V, N> exp_of_each(simd::pack<V, N> d) noexcept {
    return simd::pack<V, N>::map([&](int k) LOGITKIT_LAMBDA_INLINE { return exp_of(d.v[k]); });
}

/// exp_of of each batch of a simd::pack: the pack's exponentials together when every lane is in
/// the fast range (the bits exp_of gives each batch alone, which takes exp_of_in_range then
/// too), otherwise each batch's exp_of.
template <class V, int N>
LOGITKIT_INLINE simd::pack<V, N> exp_of(const simd::pack<V, N>& d) noexcept {
    using P = simd::pack<V, N>;
    auto fast = in_fast_range(d.v[0]);
    P::each([&](int k) LOGITKIT_LAMBDA_INLINE {
        if (k > 0) fast = fast & in_fast_range(d.v[k]);
    });
    if (simd::all(fast)) return exp_of_in_range(d);
    return exp_of_each(d);
}

}  // namespace detail
}  // namespace logitkit
