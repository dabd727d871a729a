// logitkit — AVX2 overrides of the generic primitives.
// SPDX-License-Identifier: MIT
#pragma once

#include "xsimd_generic.hpp"

#if defined(__AVX2__)
#include <immintrin.h>

namespace logitkit {
namespace detail {
namespace simd {

// One vpermps looks up an 8-entry float table by the low 3 bits of each lane, so the exponential
// uses L = 3 and a degree-4 polynomial instead of degree 7. Doubles keep L = 0: a 4-entry
// double lookup costs more than the polynomial terms it saves.
template <class A>
constexpr int exp_table_bits_impl(const float*, const A&, const xsimd::avx2&) noexcept {
    return 3;
}

template <int L, class A>
LOGITKIT_INLINE xsimd::batch<float, A> exp2_fraction_impl(const xsimd::batch<float, A>& t, const A&,
                                                         const xsimd::avx2&) noexcept {
    if constexpr (L == 3) {
        const float* e = exp2_fraction_table<float>::value;
        const __m256 table = _mm256_setr_ps(e[0], e[2], e[4], e[6], e[8], e[10], e[12], e[14]);
        return _mm256_permutevar8x32_ps(table, _mm256_castps_si256(t));
    } else {
        return exp2_fraction_impl<L>(t, A{}, xsimd::generic{});
    }
}

}  // namespace simd
}  // namespace detail
}  // namespace logitkit

#endif
