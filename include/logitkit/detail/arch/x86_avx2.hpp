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

// Non-temporal stores: the line is written without first being read for ownership.
template <class A>
constexpr bool streams_impl(const A&, const xsimd::avx2&) noexcept {
    return true;
}
template <class A>
LOGITKIT_INLINE void store_stream_impl(float* p, const xsimd::batch<float, A>& v, const A&, const xsimd::avx2&) noexcept {
    _mm256_stream_ps(p, v);
}
template <class A>
LOGITKIT_INLINE void store_stream_impl(double* p, const xsimd::batch<double, A>& v, const A&,
                                       const xsimd::avx2&) noexcept {
    _mm256_stream_pd(p, v);
}
template <class A>
LOGITKIT_INLINE void stream_fence_impl(const A&, const xsimd::avx2&) noexcept {
    _mm_sfence();
}

template <int L, class A>
LOGITKIT_INLINE xsimd::batch<float, A> exp2_scaled_impl(const xsimd::batch<float, A>& t, const A&,
                                                       const xsimd::avx2&) noexcept {
    if constexpr (L == 3) {
        const float* e = exp2_fraction_table<float>::value;
        const __m256i table = _mm256_sub_epi32(
            _mm256_castps_si256(_mm256_setr_ps(e[0], e[2], e[4], e[6], e[8], e[10], e[12], e[14])),
            _mm256_setr_epi32(0, 1 << 20, 2 << 20, 3 << 20, 4 << 20, 5 << 20, 6 << 20, 7 << 20));
        const __m256i k = _mm256_castps_si256(t);
        return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_permutevar8x32_epi32(table, k), _mm256_slli_epi32(k, 20)));
    } else {
        return exp2_scaled_impl<L>(t, A{}, xsimd::generic{});
    }
}

// The pairwise double sum of the lanes (see lanes_sum_impl in xsimd_generic.hpp) in registers;
// templated on the architecture so that each instruction set's copy stays its own.
template <class A>
LOGITKIT_INLINE double lanes_sum_pd(__m256d d, const A&) noexcept {
    const __m128d h = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
    return _mm_cvtsd_f64(_mm_add_sd(h, _mm_unpackhi_pd(h, h)));
}
template <class A>
LOGITKIT_INLINE double lanes_sum_impl(const xsimd::batch<float, A>& v, const A&, const xsimd::avx2&) noexcept {
    return lanes_sum_pd(_mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))),
                        A{});
}
template <class A>
LOGITKIT_INLINE double lanes_sum_impl(const xsimd::batch<double, A>& v, const A&, const xsimd::avx2&) noexcept {
    return lanes_sum_pd(v, A{});
}

// Horizontal maximum by halving shuffles; x86 max keeps its second operand when one is NaN.
template <class A>
LOGITKIT_INLINE float reduce_max_impl(const xsimd::batch<float, A>& v, const A&, const xsimd::avx2&) noexcept {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}
template <class A>
LOGITKIT_INLINE double reduce_max_impl(const xsimd::batch<double, A>& v, const A&, const xsimd::avx2&) noexcept {
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    m = _mm_max_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}

// Masked loads and stores for the tails: lanes past n are neither read nor written (no fault at
// the end of a buffer), and a tail costs a few instructions instead of a loop through memory.
// All bits set in each of the first n 32-bit (float) or 64-bit (double) lanes.
template <class T>
LOGITKIT_INLINE __m256i lanes_below(std::size_t n) noexcept {
    if constexpr (sizeof(T) == 4)
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    else
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(static_cast<long long>(n)), _mm256_setr_epi64x(0, 1, 2, 3));
}

template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> load_partial_impl(const float* p, std::size_t n, float fill, const A&,
                                                        const xsimd::avx2&) noexcept {
    const __m256i m = lanes_below<float>(n);
    return _mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
template <class A>
LOGITKIT_INLINE xsimd::batch<double, A> load_partial_impl(const double* p, std::size_t n, double fill, const A&,
                                                         const xsimd::avx2&) noexcept {
    const __m256i m = lanes_below<double>(n);
    return _mm256_blendv_pd(_mm256_set1_pd(fill), _mm256_maskload_pd(p, m), _mm256_castsi256_pd(m));
}
template <class A>
LOGITKIT_INLINE void store_partial_impl(float* p, const xsimd::batch<float, A>& v, std::size_t n, const A&,
                                        const xsimd::avx2&) noexcept {
    _mm256_maskstore_ps(p, lanes_below<float>(n), v);
}
template <class A>
LOGITKIT_INLINE void store_partial_impl(double* p, const xsimd::batch<double, A>& v, std::size_t n, const A&,
                                        const xsimd::avx2&) noexcept {
    _mm256_maskstore_pd(p, lanes_below<double>(n), v);
}

// bfloat16 and float16 as in x86_avx512.hpp. Without vpermw, bytes move within a 128-bit lane
// (vpshufb): a load broadcasts the 8 halves to both lanes, which then costs one shuffle; a store
// picks each lane's high halves and vpermq joins the lanes. A NaN is found by one unordered
// compare and quieted in its float bits before the halves are picked: 9 instructions to store and
// 1 to load, where shifts, a masked compare and vpackusdw took 11 and 2 (bfloat16 softmax, AVX2:
// 128x1000 12%, 32x32000 13%, 4096x128 7%, 1024x32000 9% less time).
template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> load_widened_impl(const bfloat16* p, const A&, const xsimd::avx2&) noexcept {
    // The 8 halves in both 128-bit lanes (a load alone), each lane's 4 to its lanes' high halves.
    const __m256i to_high = _mm256_setr_epi8(-1, -1, 0, 1, -1, -1, 2, 3, -1, -1, 4, 5, -1, -1, 6, 7, -1, -1, 8, 9, -1,
                                             -1, 10, 11, -1, -1, 12, 13, -1, -1, 14, 15);
    return _mm256_castsi256_ps(_mm256_shuffle_epi8(
        _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), to_high));
}
// u + 0x7fff, plus 1 where the kept half is odd. (Templated on the arch, as every function here,
// so that translation units built with other target flags keep their own copies.)
template <class A>
LOGITKIT_INLINE __m256i bfloat16_rounded(__m256i u) noexcept {
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    return _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), odd);
}
// Each 128-bit lane's high halves to its low 8 bytes, then the two lanes' together.
template <class A>
LOGITKIT_INLINE void store_high_halves(bfloat16* p, __m256i b) noexcept {
    const __m256i high_halves = _mm256_setr_epi8(2, 3, 6, 7, 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1, 2, 3, 6, 7,
                                                 10, 11, 14, 15, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(b, high_halves), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
}
template <class A>
LOGITKIT_INLINE void store_narrowed_impl(bfloat16* p, const xsimd::batch<float, A>& v, const A&,
                                         const xsimd::avx2&) noexcept {
    const __m256 quiet = _mm256_or_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x400000)));
    const __m256 rounded = _mm256_castsi256_ps(bfloat16_rounded<A>(_mm256_castps_si256(v)));
    store_high_halves<A>(p, _mm256_castps_si256(_mm256_blendv_ps(rounded, quiet, _mm256_cmp_ps(v, v, _CMP_UNORD_Q))));
}
template <class A>
LOGITKIT_INLINE void store_narrowed_no_nan_impl(bfloat16* p, const xsimd::batch<float, A>& v, const A&,
                                                const xsimd::avx2&) noexcept {
    store_high_halves<A>(p, bfloat16_rounded<A>(_mm256_castps_si256(v)));
}
#if defined(__F16C__)
template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> load_widened_impl(const float16* p, const A&, const xsimd::avx2&) noexcept {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
template <class A>
LOGITKIT_INLINE void store_narrowed_impl(float16* p, const xsimd::batch<float, A>& v, const A&,
                                         const xsimd::avx2&) noexcept {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
#endif

}  // namespace simd
}  // namespace detail
}  // namespace logitkit

#endif
