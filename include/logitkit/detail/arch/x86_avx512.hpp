// logitkit — AVX-512 overrides of the generic primitives.
// SPDX-License-Identifier: MIT
#pragma once

#include "x86_avx2.hpp"  // lanes_sum_pd (AVX-512F implies AVX2)
#include "xsimd_generic.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>

namespace logitkit {
namespace detail {
namespace simd {

template <class A>
LOGITKIT_INLINE float reduce_max_impl(const xsimd::batch<float, A>& v, const A&, const xsimd::avx512f&) noexcept {
    return _mm512_reduce_max_ps(v);
}
template <class A>
LOGITKIT_INLINE double reduce_max_impl(const xsimd::batch<double, A>& v, const A&, const xsimd::avx512f&) noexcept {
    return _mm512_reduce_max_pd(v);
}

template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> fma_impl(const xsimd::batch<float, A>& a, const xsimd::batch<float, A>& b,
                                               const xsimd::batch<float, A>& c, const A&, const xsimd::avx512f&) noexcept {
    return _mm512_fmadd_ps(a, b, c);
}
template <class A>
LOGITKIT_INLINE xsimd::batch<double, A> fma_impl(const xsimd::batch<double, A>& a, const xsimd::batch<double, A>& b,
                                                const xsimd::batch<double, A>& c, const A&,
                                                const xsimd::avx512f&) noexcept {
    return _mm512_fmadd_pd(a, b, c);
}

// The pairwise double sum of the lanes (see lanes_sum_impl in xsimd_generic.hpp) in registers.
template <class A>
LOGITKIT_INLINE double lanes_sum_impl(const xsimd::batch<double, A>& v, const A&, const xsimd::avx512f&) noexcept {
    return lanes_sum_pd(_mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1)), A{});
}
template <class A>
LOGITKIT_INLINE double lanes_sum_impl(const xsimd::batch<float, A>& v, const A&, const xsimd::avx512f&) noexcept {
    const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    const __m512d d = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(v)), _mm512_cvtps_pd(high));
    return lanes_sum_pd(_mm256_add_pd(_mm512_castpd512_pd256(d), _mm512_extractf64x4_pd(d, 1)), A{});
}

// The zero-masked shift avoids the unmasked form, whose GCC 12 header trips
// -Wmaybe-uninitialized once inlined.
template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> pow2_from_shifted_impl(const xsimd::batch<float, A>& t, const A&,
                                                             const xsimd::avx512f&) noexcept {
    return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(__mmask16(0xFFFF), _mm512_castps_si512(t), 23));
}
template <class A>
LOGITKIT_INLINE xsimd::batch<double, A> pow2_from_shifted_impl(const xsimd::batch<double, A>& t, const A&,
                                                              const xsimd::avx512f&) noexcept {
    return _mm512_castsi512_pd(_mm512_maskz_slli_epi64(__mmask8(0xFF), _mm512_castpd_si512(t), 52));
}

// One vpermps / vpermpd looks up a 16-entry float or 8-entry double table by the low bits of each
// lane: the exponential uses L = 4 (float, degree 3) and L = 3 (double, degree 8).
template <class A>
constexpr int exp_table_bits_impl(const float*, const A&, const xsimd::avx512f&) noexcept {
    return 4;
}
template <class A>
constexpr int exp_table_bits_impl(const double*, const A&, const xsimd::avx512f&) noexcept {
    return 3;
}

// Four float batches together: their chains and the degree-3 polynomial's constants fit in the 32
// registers (softmax 128x1000: 8% less time). Double's degree-8 polynomial gained nothing in
// pairs.
template <class A>
constexpr int exp_interleave_impl(const float*, const A&, const xsimd::avx512f&) noexcept {
    return 4;
}

template <int L, class A>
LOGITKIT_INLINE xsimd::batch<float, A> exp2_fraction_impl(const xsimd::batch<float, A>& t, const A&,
                                                         const xsimd::avx512f&) noexcept {
    if constexpr (L == 4) {
        return _mm512_permutexvar_ps(_mm512_castps_si512(t), _mm512_load_ps(exp2_fraction_table<float>::value));
    } else {
        return exp2_fraction_impl<L>(t, A{}, xsimd::generic{});
    }
}
template <int L, class A>
LOGITKIT_INLINE xsimd::batch<double, A> exp2_fraction_impl(const xsimd::batch<double, A>& t, const A&,
                                                          const xsimd::avx512f&) noexcept {
    if constexpr (L == 3) {
        const double* e = exp2_fraction_table<double>::value;
        const __m512d table = _mm512_setr_pd(e[0], e[2], e[4], e[6], e[8], e[10], e[12], e[14]);
        return _mm512_permutexvar_pd(_mm512_castpd_si512(t), table);
    } else {
        return exp2_fraction_impl<L>(t, A{}, xsimd::generic{});
    }
}

template <int L, class A>
LOGITKIT_INLINE xsimd::batch<float, A> exp2_scaled_impl(const xsimd::batch<float, A>& t, const A&,
                                                       const xsimd::avx512f&) noexcept {
    if constexpr (L == 4) {
        const __m512i table = _mm512_sub_epi32(
            _mm512_castps_si512(_mm512_load_ps(exp2_fraction_table<float>::value)),
            _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 19));
        const __m512i k = _mm512_castps_si512(t);
        return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_permutexvar_epi32(k, table),
                                                    _mm512_maskz_slli_epi32(__mmask16(0xFFFF), k, 19)));
    } else {
        return exp2_scaled_impl<L>(t, A{}, xsimd::generic{});
    }
}
template <int L, class A>
LOGITKIT_INLINE xsimd::batch<double, A> exp2_scaled_impl(const xsimd::batch<double, A>& t, const A&,
                                                        const xsimd::avx512f&) noexcept {
    if constexpr (L == 3) {
        const double* e = exp2_fraction_table<double>::value;
        const __m512i table =
            _mm512_sub_epi64(_mm512_castpd_si512(_mm512_setr_pd(e[0], e[2], e[4], e[6], e[8], e[10], e[12], e[14])),
                             _mm512_slli_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7), 49));
        const __m512i k = _mm512_castpd_si512(t);
        return _mm512_castsi512_pd(_mm512_add_epi64(_mm512_permutexvar_epi64(k, table),
                                                    _mm512_maskz_slli_epi64(__mmask8(0xFF), k, 49)));
    } else {
        return exp2_scaled_impl<L>(t, A{}, xsimd::generic{});
    }
}

template <int L, class A>
LOGITKIT_INLINE xsimd::batch<float, A> add_exponent_impl(const xsimd::batch<float, A>& y,
                                                        const xsimd::batch<float, A>& t, const A&,
                                                        const xsimd::avx512f&) noexcept {
    __m512i s = _mm512_maskz_slli_epi32(__mmask16(0xFFFF), _mm512_castps_si512(t), 23 - L);
    if constexpr (L > 0) s = _mm512_and_si512(s, _mm512_set1_epi32(-(1 << 23)));
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(y), s));
}
template <int L, class A>
LOGITKIT_INLINE xsimd::batch<double, A> add_exponent_impl(const xsimd::batch<double, A>& y,
                                                         const xsimd::batch<double, A>& t, const A&,
                                                         const xsimd::avx512f&) noexcept {
    __m512i s = _mm512_maskz_slli_epi64(__mmask8(0xFF), _mm512_castpd_si512(t), 52 - L);
    if constexpr (L > 0) s = _mm512_and_si512(s, _mm512_set1_epi64(-(std::int64_t(1) << 52)));
    return _mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(y), s));
}

// Non-temporal stores (xsimd's avx512f tag does not derive from avx2's, hence these again).
template <class A>
constexpr bool streams_impl(const A&, const xsimd::avx512f&) noexcept {
    return true;
}
template <class A>
LOGITKIT_INLINE void stream_fence_impl(const A&, const xsimd::avx512f&) noexcept {
    _mm_sfence();
}
template <class A>
LOGITKIT_INLINE void store_stream_impl(float* p, const xsimd::batch<float, A>& v, const A&,
                                       const xsimd::avx512f&) noexcept {
    _mm512_stream_ps(p, v);
}
template <class A>
LOGITKIT_INLINE void store_stream_impl(double* p, const xsimd::batch<double, A>& v, const A&,
                                       const xsimd::avx512f&) noexcept {
    _mm512_stream_pd(p, v);
}

// Masked loads and stores: a tail costs one instruction, and lanes past n are never touched.
template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> load_partial_impl(const float* p, std::size_t n, float fill, const A&,
                                                        const xsimd::avx512f&) noexcept {
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1u);
    return _mm512_mask_loadu_ps(_mm512_set1_ps(fill), m, p);
}
template <class A>
LOGITKIT_INLINE xsimd::batch<double, A> load_partial_impl(const double* p, std::size_t n, double fill, const A&,
                                                         const xsimd::avx512f&) noexcept {
    const __mmask8 m = static_cast<__mmask8>((1u << n) - 1u);
    return _mm512_mask_loadu_pd(_mm512_set1_pd(fill), m, p);
}
template <class A>
LOGITKIT_INLINE void store_partial_impl(float* p, const xsimd::batch<float, A>& v, std::size_t n, const A&,
                                        const xsimd::avx512f&) noexcept {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1u), v);
}
template <class A>
LOGITKIT_INLINE void store_partial_impl(double* p, const xsimd::batch<double, A>& v, std::size_t n, const A&,
                                        const xsimd::avx512f&) noexcept {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1u), v);
}

// bfloat16 is the high half of a float's bits: widened by moving the halves into place (one
// vpermw); rounded to nearest even by adding 0x7fff plus the kept half's lowest bit, a NaN kept a
// quiet NaN. AVX512BW's vpermw moves the halves in one instruction each way, the rounding bit is
// tested rather than shifted out, and a NaN is found by one unordered compare: 6 instructions to
// store, 1 to load, where shifts, vpmovdw and the loads' NaN quieting took 9 and 5. A loop that
// converts is bound by its vector instructions (bfloat16 softmax: 32x32000 11% less time,
// 4096x128 9%, before the quieting went). Without AVX512BW, the generic lane loop. float16
// through vcvtph2ps / vcvtps2ph, which round as float16_from_float does.
#if defined(__AVX512BW__)
template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> load_widened_impl(const bfloat16* p, const A&, const xsimd::avx512bw&) noexcept {
    // Word i of the line to the high half of lane i, the low halves zero.
    const __m512i to_high = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0, 6, 0, 5, 0, 4,
                                             0, 3, 0, 2, 0, 1, 0, 0, 0);
    return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(
        __mmask32(0xAAAAAAAAu), to_high, _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)))));
}
// u + 0x7fff, plus 1 where the kept half is odd. (Templated on the arch, as every function here,
// so that translation units built with other target flags keep their own copies.)
template <class A>
LOGITKIT_INLINE __m512i bfloat16_rounded(__m512i u) noexcept {
    const __m512i up = _mm512_add_epi32(u, _mm512_set1_epi32(0x7fff));
    return _mm512_mask_add_epi32(up, _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000)), up, _mm512_set1_epi32(1));
}
// The high halves of the lanes, in order.
template <class A>
LOGITKIT_INLINE void store_high_halves(bfloat16* p, __m512i b) noexcept {
    const __m512i high_halves = _mm512_set_epi16(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1, 31, 29, 27,
                                                 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                        _mm512_castsi512_si256(_mm512_permutexvar_epi16(high_halves, b)));
}
template <class A>
LOGITKIT_INLINE void store_narrowed_impl(bfloat16* p, const xsimd::batch<float, A>& v, const A&,
                                         const xsimd::avx512bw&) noexcept {
    const __m512i u = _mm512_castps_si512(v);
    // A NaN quieted instead of rounded.
    store_high_halves<A>(p, _mm512_mask_or_epi32(bfloat16_rounded<A>(u), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), u,
                                                 _mm512_set1_epi32(0x400000)));
}
template <class A>
LOGITKIT_INLINE void store_narrowed_no_nan_impl(bfloat16* p, const xsimd::batch<float, A>& v, const A&,
                                                const xsimd::avx512bw&) noexcept {
    store_high_halves<A>(p, bfloat16_rounded<A>(_mm512_castps_si512(v)));
}
#endif
template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> load_widened_impl(const float16* p, const A&, const xsimd::avx512f&) noexcept {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
template <class A>
LOGITKIT_INLINE void store_narrowed_impl(float16* p, const xsimd::batch<float, A>& v, const A&,
                                         const xsimd::avx512f&) noexcept {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

}  // namespace simd
}  // namespace detail
}  // namespace logitkit

#endif
