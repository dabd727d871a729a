// logitkit — a vector logarithm for the per-sample sums of the losses.
// SPDX-License-Identifier: MIT
//
// Contract (checked by tests/test_exp.cpp on every compiled architecture): log_normal(s), for a
// batch of double s whose lanes are positive, normal and finite, returns log(s) with a relative
// error <= 1.5 ulp (measured: 0.95), exact at s = 1; other lanes get unspecified values. On
// scalar_arch it is std::log.
//
// Why: the losses take one logarithm per sample, and for samples side by side (a class axis that
// is not the last) a call into the C library per lane cost more than the whole vector pass over
// the sample's logits. Lane by lane it has no table and no branch, so a lane's bits do not depend
// on its neighbours.
//
// Method: s = 2^e f with f in [sqrt(1/2), sqrt(2)), then log(f) = 2 atanh(u) with
// u = (f - 1) / (f + 1), |u| <= 0.1716, taken as two doubles (x * (1 / d) and the remainder's
// quotient, so that log(s) near s = 1 keeps its relative accuracy), and the series
// u + u^3 / 3 + ... + u^19 / 19 (the first term left out is under 2^-55 of the sum);
// log(s) = e ln2_hi + (e ln2_lo + log(f)).
#pragma once

#include <cmath>
#include <cstdint>

#include "simd.hpp"

namespace logitkit {
namespace detail {

template <class V>
LOGITKIT_INLINE V log_normal(const V& s) noexcept {
    static_assert(std::is_same<typename V::value_type, double>::value, "log_normal: batches of double");
    if constexpr (V::size == 1) {
        return V(std::log(s.v));
    } else {
#if LOGITKIT_HAS_XSIMD
        using A = typename V::arch_type;
        using U = xsimd::batch<std::uint64_t, A>;
        const U bits = simd::bit_cast<std::uint64_t>(s);
        // f in [1, 2) from the mantissa; the biased exponent as a double, through the bits of
        // 2^52 + exponent.
        const V f1 = simd::bit_cast<double>((bits & U((std::uint64_t(1) << 52) - 1)) | U(std::uint64_t(1023) << 52));
        const V e1 = simd::bit_cast<double>((bits >> 52) | U(std::uint64_t(0x433) << 52)) - V(0x1p52 + 1023.0);
        const auto halve = f1 > V(1.41421356237309504880);
        const V f = simd::select(halve, f1 * V(0.5), f1);
        const V e = simd::select(halve, e1 + V(1.0), e1);
        const V x = f - V(1.0);
        const V d = f + V(1.0);
        const V bp = d - f;
        const V d_lo = (f - (d - bp)) + (V(1.0) - bp);
        // One division: u within an ulp or two of x / d, and u_lo its remainder's quotient, a
        // term of an ulp of u whose own rounding is far below the bound.
        const V r = V(1.0) / d;
        const V u = x * r;
        const V u_lo = (simd::fma(-u, d, x) - u * d_lo) * r;
        const V u2 = u * u;
        V p(1.0 / 19);
        p = simd::fma(p, u2, V(1.0 / 17));
        p = simd::fma(p, u2, V(1.0 / 15));
        p = simd::fma(p, u2, V(1.0 / 13));
        p = simd::fma(p, u2, V(1.0 / 11));
        p = simd::fma(p, u2, V(1.0 / 9));
        p = simd::fma(p, u2, V(1.0 / 7));
        p = simd::fma(p, u2, V(1.0 / 5));
        p = simd::fma(p, u2, V(1.0 / 3));
        const V two_u = u + u;
        const V log_f = two_u + ((u_lo + u_lo) + two_u * (u2 * p));
        constexpr double ln2_hi = 6.93147180369123816490e-01;  // 32 bits: e ln2_hi is exact
        constexpr double ln2_lo = 1.90821492927058770002e-10;
        return e * V(ln2_hi) + simd::fma(e, V(ln2_lo), log_f);
#endif
    }
}

}  // namespace detail
}  // namespace logitkit
