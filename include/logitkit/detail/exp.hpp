// logitkit — vector exponential used by every kernel.
// SPDX-License-Identifier: MIT
//
// Contract (checked by tests/test_exp.cpp on every compiled architecture):
//   exp_of(d, e) returns exp(d + e) for any d (NaN, ±inf included) and a correction |e| <= ulp(d)
//   (e = 0 when the argument is a plain float). e carries the rounding error of d = fl(x - m), so
//   that exp(x - m) is evaluated as if x - m were exact.
//   float : relative error <= 2 ulp (measured: <= 1.5) where the result is a normal number;
//           subnormal results are rounded once (error <= 1 subnormal ulp + 2 ulp relative);
//           exp(d) = 0 for d < -103.98, +inf for d > 88.73, NaN for NaN.
//   double: relative error <= 2 ulp where the result is normal; 0 below -745.2, +inf above 709.79.
//
// Method: n = round(d / ln2) by the "shifter" trick (no float-to-int conversion), r = d - n ln2 in
// two Cody-Waite steps plus e, exp(r) by its Taylor polynomial (degree 7 for float, whose
// truncation error on |r| <= ln2/2 is 5e-9 relative; degree 13 for double, 4e-18), scaled by 2^n
// built directly in the exponent field. Lanes whose result rounds to 0 are set to 0. Lanes whose
// 2^n is not a normal number take a second, clamped path that scales in two steps so the result
// is rounded only once; it is taken only when a batch holds such a lane (or a NaN or +inf).
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
    // n * ln2_hi is exact for |n| < 2^8: ln2_hi has 16 significant bits.
    static constexpr float ln2_hi = 0.693145751953125f;
    static constexpr float ln2_lo = 1.42860676533018708e-06f;
    static constexpr float shifter = 12582912.0f + 127.0f;  // 1.5 * 2^23 + exponent bias
    static constexpr float fast_lo = -87.0f;                 // 2^n normal for d in [fast_lo, fast_hi]
    static constexpr float fast_hi = 88.0f;
    static constexpr float zero_below = -104.0f;  // exp rounds to 0 below -103.98
    static constexpr float clamp_lo = -110.0f;
    static constexpr float clamp_hi = 89.0f;    // and overflows to inf above 88.73
    static constexpr float split = 64.0f;       // slow path: 2^n = 2^(n -/+ split) * 2^(+/-split)
    static constexpr float pow2_split = 0x1p64f;
    static constexpr float pow2_minus_split = 0x1p-64f;
    static constexpr int degree = 7;
    static constexpr float inv_factorial[14] = {1.0f,
                                                1.0f,
                                                0.5f,
                                                0.166666666666666667f,
                                                0.0416666666666666667f,
                                                0.00833333333333333333f,
                                                0.00138888888888888889f,
                                                1.98412698412698413e-4f,
                                                0, 0, 0, 0, 0, 0};
};

template <>
struct exp_constants<double> {
    static constexpr double log2e = 1.44269504088896340736;
    // n * ln2_hi is exact for |n| < 2^11: ln2_hi has 32 significant bits.
    static constexpr double ln2_hi = 6.93147180369123816490e-01;
    static constexpr double ln2_lo = 1.90821492927058770002e-10;
    static constexpr double shifter = 6755399441055744.0 + 1023.0;  // 1.5 * 2^52 + exponent bias
    static constexpr double fast_lo = -708.0;
    static constexpr double fast_hi = 709.0;
    static constexpr double zero_below = -746.0;  // exp rounds to 0 below -745.14
    static constexpr double clamp_lo = -760.0;
    static constexpr double clamp_hi = 710.0;   // and overflows to inf above 709.79
    static constexpr double split = 512.0;
    static constexpr double pow2_split = 0x1p512;
    static constexpr double pow2_minus_split = 0x1p-512;
    static constexpr int degree = 13;
    static constexpr double inv_factorial[14] = {1.0,
                                                 1.0,
                                                 0.5,
                                                 1.66666666666666666667e-01,
                                                 4.16666666666666666667e-02,
                                                 8.33333333333333333333e-03,
                                                 1.38888888888888888889e-03,
                                                 1.98412698412698412698e-04,
                                                 2.48015873015873015873e-05,
                                                 2.75573192239858906526e-06,
                                                 2.75573192239858906526e-07,
                                                 2.50521083854417187751e-08,
                                                 2.08767569878680989792e-09,
                                                 1.60590438368216145994e-10};
};

template <class V>
LOGITKIT_INLINE V exp_taylor(const V& r) noexcept {
    using T = typename V::value_type;
    using C = exp_constants<T>;
    V p(C::inv_factorial[C::degree]);
    for (int k = C::degree - 1; k >= 0; --k) p = simd::fma(p, r, V(C::inv_factorial[k]));
    return p;
}

/// exp(d + e); see the contract at the top of this file.
template <class V>
LOGITKIT_INLINE V exp_of(const V& d, const V& e) noexcept {
    using T = typename V::value_type;
    using C = exp_constants<T>;
    const V fast_lo(C::fast_lo), fast_hi(C::fast_hi);
    // Lanes far below the range (masked elements, -inf logits) are 0 and need no slow path.
    const auto zero = d < V(C::zero_below);
    if (simd::all(((d >= fast_lo) & (d <= fast_hi)) | zero)) {
        const V t = simd::fma(d, V(C::log2e), V(C::shifter));
        const V n = t - V(C::shifter);
        V r = simd::fma(n, V(-C::ln2_hi), d);
        r = simd::fma(n, V(-C::ln2_lo), r) + e;
        return simd::select(zero, V(T(0)), exp_taylor(r) * simd::pow2_from_shifted(t));
    }
    // Comparisons with NaN are false, so select keeps NaN lanes as they are.
    const V lo(C::clamp_lo), hi(C::clamp_hi);
    const auto below = d < lo;
    const auto above = d > hi;
    V dc = simd::select(below, lo, simd::select(above, hi, d));
    const V ec = simd::select(below | above, V(T(0)), e);
    const V t = simd::fma(dc, V(C::log2e), V(C::shifter));
    const V n = t - V(C::shifter);
    V r = simd::fma(n, V(-C::ln2_hi), dc);
    r = simd::fma(n, V(-C::ln2_lo), r) + ec;
    const auto negative = dc < V(T(0));
    const V split = simd::select(negative, V(-C::split), V(C::split));
    // 2^(n - split) is normal and p * 2^(n - split) exact; the final product rounds once.
    const V big = exp_taylor(r) * simd::pow2_from_shifted(t - split);
    const V two_split = simd::select(negative, V(C::pow2_minus_split), V(C::pow2_split));
    return big * two_split;
}

}  // namespace detail
}  // namespace logitkit
