// logitkit — Gumbel noise: random words, their uniforms and -log(-log(u)), the same on every path.
// SPDX-License-Identifier: MIT
//
// The noise of one element is computed in three steps:
//   1. random bits: one 32-bit word (float elements) or two (double elements: 64 bits, the first
//      word being the high half) from the generator, in the row-major order of the elements;
//   2. a uniform in the open interval (0, 1), exactly:
//        float : u = (w + 1/2) * 2^-32,  w the 32-bit word         u in [2^-33, 1 - 2^-33]
//        double: u = (k + 1/2) * 2^-52,  k the top 52 of 64 bits   u in [2^-53, 1 - 2^-53]
//      so u is never 0 nor 1 and the noise is always finite: g in [-3.14, 22.87] (float) and
//      [-3.61, 36.74] (double);
//   3. g = -log(-log(u)), in double for both element types (float elements round g once).
//
// Step 3 must give the same bits on every SIMD path and in every scalar tail, so it is written
// with +, -, *, / only (each correctly rounded by IEEE 754 on every path), never with an FMA, and
// every product passes through rounded(), an empty asm statement that keeps the compiler from
// contracting it with the following addition (g++ 12 contracts by default in C++, even with
// -std=c++17, whenever the target has FMA). The same holds for det_exp, used by the top-p filter
// of sample_categorical.
// -ffast-math voids this guarantee.
//
// The words of philox4x32 are computed directly from their position, vectorised on SSE2, AVX2 and
// AVX-512 (one block per 64-bit lane, which _mm*_mul_epu32 multiplies exactly), so the stream does
// not depend on the path nor on how the work is split.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <type_traits>
#include <utility>

#include "../philox.hpp"
#include "../tensor_view.hpp"
#include "exp.hpp"
#include "simd.hpp"
#include "stages.hpp"

#if LOGITKIT_HAS_XSIMD && (defined(__SSE2__) || defined(__AVX2__) || defined(__AVX512F__))
#include <immintrin.h>
#endif

namespace logitkit {
namespace detail {

// ---------------------------------------------------------------------------------------------
// rounded(): a value the compiler must materialise, so that a product is never fused into an FMA.
// ---------------------------------------------------------------------------------------------

#if defined(__GNUC__) && defined(__x86_64__)
#define LOGITKIT_OPAQUE_SCALAR(v) __asm__("" : "+x"(v))
#elif defined(__GNUC__) && defined(__aarch64__)
#define LOGITKIT_OPAQUE_SCALAR(v) __asm__("" : "+w"(v))
#elif defined(__GNUC__)
#define LOGITKIT_OPAQUE_SCALAR(v) __asm__("" : "+m"(v))
#else
#define LOGITKIT_OPAQUE_SCALAR(v) ((void)0)
#endif

LOGITKIT_INLINE scalar_batch<double> rounded(scalar_batch<double> v) noexcept {
    LOGITKIT_OPAQUE_SCALAR(v.v);
    return v;
}

#if LOGITKIT_HAS_XSIMD
template <class A>
LOGITKIT_INLINE xsimd::batch<double, A> rounded(const xsimd::batch<double, A>& v) noexcept {
    typename xsimd::batch<double, A>::register_type r = v;
#if defined(__GNUC__) && defined(__AVX512F__)
    __asm__("" : "+v"(r));
#elif defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __asm__("" : "+x"(r));
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__("" : "+w"(r));
#elif defined(__GNUC__)
    __asm__("" : "+m"(r));
#endif
    return xsimd::batch<double, A>(r);
}
#endif

// ---------------------------------------------------------------------------------------------
// negative_det_log and det_exp: reproducible double logarithm and exponential.
// ---------------------------------------------------------------------------------------------

/// x = 2^k * m with m in [sqrt(1/2), sqrt(2)), for a positive normal x; k is returned as a double.
LOGITKIT_INLINE void log_split(scalar_batch<double> x, scalar_batch<double>& m, scalar_batch<double>& k) noexcept {
    std::uint64_t ix;
    std::memcpy(&ix, &x.v, sizeof ix);
    const std::uint64_t tmp = ix + 0x00095F619980C433ull;  // (1023 << 52) - bits(sqrt(1/2))
    const std::uint64_t kb = tmp >> 52;                    // k + 1023
    const std::uint64_t iz = ix - (tmp & 0xFFF0000000000000ull) + 0x3FF0000000000000ull;
    const std::uint64_t kd = kb | 0x4330000000000000ull;  // 2^52 + kb
    double mv, kv;
    std::memcpy(&mv, &iz, sizeof mv);
    std::memcpy(&kv, &kd, sizeof kv);
    m = mv;
    k = kv - 4503599627371519.0;  // 2^52 + 1023
}

#if LOGITKIT_HAS_XSIMD
template <class A>
LOGITKIT_INLINE void log_split(const xsimd::batch<double, A>& x, xsimd::batch<double, A>& m,
                               xsimd::batch<double, A>& k) noexcept {
    using U = xsimd::batch<std::uint64_t, A>;
    const U ix = simd::bit_cast<std::uint64_t>(x);
    const U tmp = ix + U(0x00095F619980C433ull);
    const U kb = tmp >> 52;
    m = simd::bit_cast<double>(ix - (tmp & U(0xFFF0000000000000ull)) + U(0x3FF0000000000000ull));
    k = simd::bit_cast<double>(kb | U(0x4330000000000000ull)) - xsimd::batch<double, A>(4503599627371519.0);
}
#endif

/// x[u] = -log(x[u]) for positive normal x[u], within about 1 ulp (fdlibm's method:
/// log(1 + f) = f - s (f - R), s = f / (2 + f), R a minimax polynomial in s^2), with the same bits
/// on every path. The divisions of all U batches are issued before the polynomials that wait for
/// them: a division and its polynomial form a chain too long for out-of-order execution to overlap
/// with the next batch's.
template <int U, class V>
LOGITKIT_INLINE void negative_det_log(V (&x)[U]) noexcept {
    V f[U], k[U], s[U];
    row::unrolled<U>([&](int u) LOGITKIT_LAMBDA_INLINE {
        V m;
        log_split(x[u], m, k[u]);
        f[u] = m - V(1.0);  // exact (Sterbenz)
        s[u] = f[u] / (V(2.0) + f[u]);
    });
    row::unrolled<U>([&](int u) LOGITKIT_LAMBDA_INLINE {
        const V z = rounded(s[u] * s[u]);
        const V w = rounded(z * z);
        V a = rounded(w * V(1.531383769920937332e-01));               // Lg6
        a = rounded(w * (V(2.222219843214978396e-01) + a));           // Lg4
        const V t1 = rounded(w * (V(3.999999999940941908e-01) + a));  // Lg2
        V b = rounded(w * V(1.479819860511658591e-01));               // Lg7
        b = rounded(w * (V(1.818357216161805012e-01) + b));           // Lg5
        b = rounded(w * (V(2.857142874366239149e-01) + b));           // Lg3
        const V t2 = rounded(z * (V(6.666666666666735130e-01) + b));  // Lg1
        const V r = t2 + t1;
        const V q = rounded(s[u] * (f[u] - r));
        const V klo = rounded(k[u] * V(1.90821492927058770002e-10));
        const V khi = rounded(k[u] * V(6.93147180369123816490e-01));
        x[u] = -(khi - ((q - klo) - f[u]));
    });
}

/// exp(d) for d <= 0 (-inf included), within a few ulps, with the same bits on every path.
/// Results below 2^-1021 are flushed to 0.
template <class V>
LOGITKIT_INLINE V det_exp(const V& d) noexcept {
    using C = exp_constants<double>;
    const V lo(-708.0);
    const auto under = d < lo;
    const V dc = simd::select(under, lo, d);
    const V t = rounded(dc * V(C::log2e)) + V(C::shifter);
    const V n = t - V(C::shifter);
    V r = dc - rounded(n * V(C::ln2_hi));
    r = r - rounded(n * V(C::ln2_lo));
    using P = taylor_coefficients<double>;
    V p(P::inv_factorial[C::degree]);
    for (int i = C::degree - 1; i >= 0; --i) p = rounded(p * r) + V(P::inv_factorial[i]);
    const V e = rounded(p * simd::pow2_from_shifted(t));
    return simd::select(under, V(0.0), e);
}

/// The uniform of one element from its 32-bit word (K = 1) or its two words (K = 2).
template <int K>
LOGITKIT_INLINE double uniform_of_words(const std::uint32_t* w) noexcept {
    std::uint64_t bits;
    double shift;
    if constexpr (K == 1) {
        bits = 0x3FF0000000000000ull | (std::uint64_t(w[0]) << 20);  // 1 + w 2^-32
        shift = 1.0 - 0x1p-33;
    } else {
        bits = 0x3FF0000000000000ull | (std::uint64_t(w[0]) << 20) | (w[1] >> 12);  // 1 + k 2^-52
        shift = 1.0 - 0x1p-53;
    }
    double one_plus;
    std::memcpy(&one_plus, &bits, sizeof one_plus);
    return one_plus - shift;  // exact: (w + 1/2) 2^-32 or (k + 1/2) 2^-52
}

/// p[i] = f(p[i]) for i < rem (< the batch size), the other lanes of the batch holding `fill`.
/// (Bounds every index by the batch size, which keeps GCC's -Warray-bounds quiet once inlined.)
template <class V, class F>
LOGITKIT_INLINE void apply_tail(double* p, std::size_t rem, double fill, F&& f) noexcept {
    double t[V::size];
    for (std::size_t i = 0; i < V::size; ++i) t[i] = i < rem ? p[i] : fill;
    simd::store(t, f(simd::load<V>(t)));
    for (std::size_t i = 0; i < rem && i < V::size; ++i) p[i] = t[i];
}

/// g[i] = -log(g[i]) for i < n, the g[i] positive normal numbers.
template <class Arch>
void negative_log_in_place(double* g, std::size_t n) noexcept {
    using V = batch<double, Arch>;
    constexpr std::size_t W = V::size;
    constexpr int U = 4;
    std::size_t i = 0;
    for (; i + U * W <= n; i += U * W) {
        V x[U];
        row::unrolled<U>([&](int u) LOGITKIT_LAMBDA_INLINE { x[u] = simd::load<V>(g + i + u * W); });
        negative_det_log(x);
        row::unrolled<U>([&](int u) LOGITKIT_LAMBDA_INLINE { simd::store(g + i + u * W, x[u]); });
    }
    const auto one = [](const V& u) {
        V x[1] = {u};
        negative_det_log(x);
        return x[0];
    };
    for (; i + W <= n; i += W) simd::store(g + i, one(simd::load<V>(g + i)));
    if (i < n) apply_tail<V>(g + i, n - i, 0.5, one);
}

/// g[i] = the Gumbel noise -log(-log(u)) of element i from its K words (w[K*i], ...), for i < n,
/// one logarithm over the whole chunk at a time: both logarithms of one batch in a row form a
/// chain of two divisions too long for out-of-order execution to overlap with the next batch's
/// (measured 1.5x slower on an AVX-512 Xeon).
template <class Arch, int K>
void gumbel_of_words(const std::uint32_t* w, std::size_t n, double* g) noexcept {
    for (std::size_t i = 0; i < n; ++i) g[i] = uniform_of_words<K>(w + K * i);
    negative_log_in_place<Arch>(g, n);
    negative_log_in_place<Arch>(g, n);
}

// ---------------------------------------------------------------------------------------------
// philox4x32 blocks, vectorised: one block per 64-bit lane.
// ---------------------------------------------------------------------------------------------

namespace philox_isa {

#if LOGITKIT_HAS_XSIMD && defined(__SSE2__)
struct sse2 {
    using reg = __m128i;
    static constexpr std::size_t lanes = 2;
    static LOGITKIT_INLINE reg set1(std::uint64_t v) noexcept { return _mm_set1_epi64x(static_cast<long long>(v)); }
    static LOGITKIT_INLINE reg iota() noexcept { return _mm_set_epi64x(1, 0); }
    static LOGITKIT_INLINE reg add(reg a, reg b) noexcept { return _mm_add_epi64(a, b); }
    static LOGITKIT_INLINE reg mul(reg a, reg b) noexcept { return _mm_mul_epu32(a, b); }
    static LOGITKIT_INLINE reg high(reg a) noexcept { return _mm_srli_epi64(a, 32); }
    static LOGITKIT_INLINE reg bit_and(reg a, reg b) noexcept { return _mm_and_si128(a, b); }
    static LOGITKIT_INLINE reg bit_xor(reg a, reg b) noexcept { return _mm_xor_si128(a, b); }
    static LOGITKIT_INLINE reg join(reg lo, reg hi) noexcept { return _mm_or_si128(lo, _mm_slli_epi64(hi, 32)); }
    // a = (x0 | x1 << 32), b = (x2 | x3 << 32) per block: writes the blocks' words in order.
    static LOGITKIT_INLINE void store(std::uint32_t* out, reg a, reg b) noexcept {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi64(a, b));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4), _mm_unpackhi_epi64(a, b));
    }
};
#endif

#if LOGITKIT_HAS_XSIMD && defined(__AVX2__)
struct avx2 {
    using reg = __m256i;
    static constexpr std::size_t lanes = 4;
    static LOGITKIT_INLINE reg set1(std::uint64_t v) noexcept { return _mm256_set1_epi64x(static_cast<long long>(v)); }
    static LOGITKIT_INLINE reg iota() noexcept { return _mm256_set_epi64x(3, 2, 1, 0); }
    static LOGITKIT_INLINE reg add(reg a, reg b) noexcept { return _mm256_add_epi64(a, b); }
    static LOGITKIT_INLINE reg mul(reg a, reg b) noexcept { return _mm256_mul_epu32(a, b); }
    static LOGITKIT_INLINE reg high(reg a) noexcept { return _mm256_srli_epi64(a, 32); }
    static LOGITKIT_INLINE reg bit_and(reg a, reg b) noexcept { return _mm256_and_si256(a, b); }
    static LOGITKIT_INLINE reg bit_xor(reg a, reg b) noexcept { return _mm256_xor_si256(a, b); }
    static LOGITKIT_INLINE reg join(reg lo, reg hi) noexcept { return _mm256_or_si256(lo, _mm256_slli_epi64(hi, 32)); }
    static LOGITKIT_INLINE void store(std::uint32_t* out, reg a, reg b) noexcept {
        const reg lo = _mm256_unpacklo_epi64(a, b);  // blocks 0, 2
        const reg hi = _mm256_unpackhi_epi64(a, b);  // blocks 1, 3
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
    }
};
#endif

#if LOGITKIT_HAS_XSIMD && defined(__AVX512F__)
struct avx512 {
    using reg = __m512i;
    static constexpr std::size_t lanes = 8;
    static LOGITKIT_INLINE reg set1(std::uint64_t v) noexcept { return _mm512_set1_epi64(static_cast<long long>(v)); }
    static LOGITKIT_INLINE reg iota() noexcept { return _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0); }
    static LOGITKIT_INLINE reg add(reg a, reg b) noexcept { return _mm512_add_epi64(a, b); }
    static LOGITKIT_INLINE reg mul(reg a, reg b) noexcept { return _mm512_mul_epu32(a, b); }
    static LOGITKIT_INLINE reg high(reg a) noexcept { return _mm512_srli_epi64(a, 32); }
    static LOGITKIT_INLINE reg bit_and(reg a, reg b) noexcept { return _mm512_and_si512(a, b); }
    static LOGITKIT_INLINE reg bit_xor(reg a, reg b) noexcept { return _mm512_xor_si512(a, b); }
    static LOGITKIT_INLINE reg join(reg lo, reg hi) noexcept { return _mm512_or_si512(lo, _mm512_slli_epi64(hi, 32)); }
    static LOGITKIT_INLINE void store(std::uint32_t* out, reg a, reg b) noexcept {
        const reg lo = _mm512_unpacklo_epi64(a, b);  // blocks 0, 2, 4, 6
        const reg hi = _mm512_unpackhi_epi64(a, b);  // blocks 1, 3, 5, 7
        const reg first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
        const reg second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
        _mm512_storeu_si512(out, _mm512_permutex2var_epi64(lo, first, hi));
        _mm512_storeu_si512(out + 16, _mm512_permutex2var_epi64(lo, second, hi));
    }
};
#endif

/// The vector implementation for Arch, or void for the scalar loop.
template <class Arch>
struct select {
#if LOGITKIT_HAS_XSIMD && defined(__AVX512F__)
    using avx512_t = std::conditional_t<std::is_base_of<xsimd::avx512f, Arch>::value, avx512, void>;
#else
    using avx512_t = void;
#endif
#if LOGITKIT_HAS_XSIMD && defined(__AVX2__)
    using avx2_t = std::conditional_t<std::is_base_of<xsimd::avx2, Arch>::value, avx2, void>;
#else
    using avx2_t = void;
#endif
#if LOGITKIT_HAS_XSIMD && defined(__SSE2__)
    using sse2_t = std::conditional_t<std::is_base_of<xsimd::sse2, Arch>::value, sse2, void>;
#else
    using sse2_t = void;
#endif
    using type = std::conditional_t<!std::is_void<avx512_t>::value, avx512_t,
                                    std::conditional_t<!std::is_void<avx2_t>::value, avx2_t, sse2_t>>;
};

// G groups of blocks go through the rounds in lockstep: one group's chain of ten dependent
// multiplies is too long for out-of-order execution to overlap with the next group's. _mm*_mul_epu32
// reads only the low half of each lane, so the high halves of x0 and x2 may hold garbage until the
// words are joined, and the other words need no masking at all.
/// Blocks first .. first + G * I::lanes - 1 to out.
template <class I, int G>
LOGITKIT_INLINE void block_groups(std::uint64_t first, philox4x32::key_type key, std::uint32_t* out) noexcept {
    using reg = typename I::reg;
    constexpr std::size_t L = I::lanes;
    const reg m0 = I::set1(philox4x32::multiplier0);
    const reg m1 = I::set1(philox4x32::multiplier1);
    reg x0[G], x1[G], x2[G], x3[G];
    row::unrolled<G>([&](int g) LOGITKIT_LAMBDA_INLINE {
        x0[g] = I::add(I::iota(), I::set1(first + g * L));
        x1[g] = I::high(x0[g]);
        x2[g] = I::set1(0);
        x3[g] = I::set1(0);
    });
    std::uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < philox4x32::rounds; ++r) {
        if (r != 0) {
            k0 += philox4x32::weyl0;
            k1 += philox4x32::weyl1;
        }
        const reg kr0 = I::set1(k0), kr1 = I::set1(k1);
        row::unrolled<G>([&](int g) LOGITKIT_LAMBDA_INLINE {
            const reg p0 = I::mul(m0, x0[g]);
            const reg p1 = I::mul(m1, x2[g]);
            x0[g] = I::bit_xor(I::bit_xor(I::high(p1), x1[g]), kr0);
            x2[g] = I::bit_xor(I::bit_xor(I::high(p0), x3[g]), kr1);
            x1[g] = p1;
            x3[g] = p0;
        });
    }
    const reg low32 = I::set1(0xFFFFFFFFu);
    row::unrolled<G>([&](int g) LOGITKIT_LAMBDA_INLINE {
        I::store(out + 4 * g * L, I::join(I::bit_and(x0[g], low32), x1[g]), I::join(I::bit_and(x2[g], low32), x3[g]));
    });
}

// Groups of blocks go through the rounds in lockstep: one group's chain of ten dependent
// multiplies is too long for out-of-order execution to overlap with the next group's (the words
// come 1.6x faster on an AVX-512 Xeon, 1.5x with AVX2). _mm*_mul_epu32 reads only the low half of each lane, so
// the high halves of x0 and x2 may hold garbage until the words are joined, and x1 and x3 need no
// masking at all.
template <class I>
void blocks(std::uint64_t first, std::size_t count, philox4x32::key_type key, std::uint32_t* out) noexcept {
    constexpr std::size_t L = I::lanes;
    constexpr int G = L >= 8 ? 4 : 2;  // the state of G groups and the constants fill the registers
    std::size_t i = 0;
    for (; i + G * L <= count; i += G * L) block_groups<I, G>(first + i, key, out + 4 * i);
    for (; i + L <= count; i += L) block_groups<I, 1>(first + i, key, out + 4 * i);
    for (; i < count; ++i) {
        const auto w = philox4x32::block(philox4x32::counter_of(first + i), key);
        for (std::size_t j = 0; j < 4; ++j) out[4 * i + j] = w[j];
    }
}

template <>
inline void blocks<void>(std::uint64_t first, std::size_t count, philox4x32::key_type key,
                         std::uint32_t* out) noexcept {
    for (std::size_t i = 0; i < count; ++i) {
        const auto w = philox4x32::block(philox4x32::counter_of(first + i), key);
        for (std::size_t j = 0; j < 4; ++j) out[4 * i + j] = w[j];
    }
}

}  // namespace philox_isa

/// Writes words [position, position + count) of the philox4x32 stream of `seed` to out.
template <class Arch>
void philox_words(std::uint64_t seed, std::uint64_t position, std::size_t count, std::uint32_t* out) noexcept {
    // Positions wrap at 2^64 as the generator's do, so block indices wrap at 2^62.
    constexpr std::uint64_t block_mask = (std::uint64_t(1) << 62) - 1;
    const auto key = philox4x32::key_of(seed);
    std::uint64_t b = position >> 2;
    std::size_t j = static_cast<std::size_t>(position & 3);
    if (j != 0 && count != 0) {
        const auto w = philox4x32::block(philox4x32::counter_of(b), key);
        for (; j < 4 && count != 0; ++j, --count) *out++ = w[j];
        b = (b + 1) & block_mask;
    }
    std::size_t full = count / 4;
    count -= 4 * full;
    while (full != 0) {  // at most twice: up to the wrap, then from block 0
        const std::uint64_t to_wrap = block_mask - b + 1;
        const std::size_t run = to_wrap < full ? static_cast<std::size_t>(to_wrap) : full;
        philox_isa::blocks<typename philox_isa::select<Arch>::type>(b, run, key, out);
        out += 4 * run;
        b = (b + run) & block_mask;
        full -= run;
    }
    if (count != 0) {
        const auto w = philox4x32::block(philox4x32::counter_of(b), key);
        for (std::size_t i = 0; i < count; ++i) out[i] = w[i];
    }
}

// ---------------------------------------------------------------------------------------------
// Noise sources: where the words of consecutive elements come from.
// ---------------------------------------------------------------------------------------------

/// philox4x32: words computed from their position; the generator is advanced when done.
class philox_source {
public:
    explicit philox_source(philox4x32& g) noexcept : g_(g), seed_(g.seed_value()), position_(g.offset()) {}
    ~philox_source() { g_.set_offset(position_); }
    philox_source(const philox_source&) = delete;
    philox_source& operator=(const philox_source&) = delete;

    /// The words of the next n elements (K words each).
    template <class Arch, int K>
    void fill(std::uint32_t* out, std::size_t n) noexcept {
        philox_words<Arch>(seed_, position_, K * n, out);
        position_ += K * n;
    }
    template <int K>
    void skip(std::uint64_t n) noexcept {
        position_ += K * n;
    }
    std::uint64_t seed() const noexcept { return seed_; }
    std::uint64_t position() const noexcept { return position_; }

private:
    philox4x32& g_;
    std::uint64_t seed_;
    std::uint64_t position_;
};

/// Any UniformRandomBitGenerator, drawn in order. A float element takes one 32-bit value, a
/// double element one 64-bit value (high word first). A generator whose range is 2^32 gives one
/// 32-bit value per call; one whose range is 2^64 gives one 64-bit value per call (a 32-bit value
/// is then its high half); any other generator goes through std::uniform_int_distribution.
template <class G>
class urbg_source {
    using result = typename G::result_type;
    static_assert(std::is_unsigned<result>::value, "logitkit: the random generator must produce unsigned integers");
    static constexpr std::uint64_t range = static_cast<std::uint64_t>(G::max()) - static_cast<std::uint64_t>(G::min());
    static constexpr int mode = range == 0xFFFFFFFFull ? 32 : (range == ~0ull ? 64 : 0);

public:
    explicit urbg_source(G& g) noexcept : g_(g) {}

    template <class Arch, int K>
    void fill(std::uint32_t* out, std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            if constexpr (K == 1) {
                out[i] = word32();
            } else {
                const std::uint64_t v = word64();
                out[2 * i] = static_cast<std::uint32_t>(v >> 32);
                out[2 * i + 1] = static_cast<std::uint32_t>(v);
            }
        }
    }
    template <int K>
    void skip(std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i) {
            if constexpr (K == 1)
                (void)word32();
            else
                (void)word64();
        }
    }

private:
    std::uint64_t draw() { return static_cast<std::uint64_t>(g_()) - static_cast<std::uint64_t>(G::min()); }
    std::uint32_t word32() {
        if constexpr (mode == 32)
            return static_cast<std::uint32_t>(draw());
        else if constexpr (mode == 64)
            return static_cast<std::uint32_t>(draw() >> 32);
        else
            return std::uniform_int_distribution<std::uint32_t>(0, 0xFFFFFFFFu)(g_);
    }
    std::uint64_t word64() {
        if constexpr (mode == 64) {
            return draw();
        } else {
            const std::uint64_t hi = word32();
            return (hi << 32) | word32();
        }
    }

    G& g_;
};

template <class G>
using noise_source_t =
    std::conditional_t<std::is_same<std::remove_cv_t<G>, philox4x32>::value, philox_source, urbg_source<G>>;

template <class T>
constexpr int words_per_element = static_cast<int>(philox_words_per_element<T>);

/// Elements per noise chunk: the words and noise of a chunk live on the stack.
constexpr std::size_t noise_chunk = 256;

/// Calls f(first, n, g) for consecutive chunks of the next `count` elements' noise: g[i] is the
/// (double) noise of element first + i.
template <class Arch, int K, class Source, class F>
void for_each_noise_chunk(Source& src, index_type count, F&& f) {
    std::uint32_t words[K * noise_chunk];
    double g[noise_chunk];
    for (index_type first = 0; first < count;) {
        const std::size_t n = static_cast<std::size_t>(std::min<index_type>(count - first, index_type(noise_chunk)));
        src.template fill<Arch, K>(words, n);
        gumbel_of_words<Arch, K>(words, n, g);
        f(first, n, static_cast<const double*>(g));
        first += static_cast<index_type>(n);
    }
}

// ---------------------------------------------------------------------------------------------
// The row-major index space of a tensor, in runs along its last dimension.
// ---------------------------------------------------------------------------------------------

/// Calls f(offsets, steps, n) for runs of n consecutive row-major indices, in row-major order:
/// element j of a run is at offsets[v] + j * steps[v] in view v. Views that are all contiguous
/// form a single run.
template <std::size_t R, std::size_t N, class F>
void for_each_run(const extents_type<R>& shape, const std::array<extents_type<R>, N>& strides, bool contiguous, F&& f) {
    for (std::size_t k = 0; k < R; ++k)
        if (shape[k] == 0) return;
    std::array<index_type, N> off{};
    std::array<index_type, N> step{};
    if (contiguous) {
        step.fill(1);
        index_type n = 1;
        for (std::size_t k = 0; k < R; ++k) n *= shape[k];
        f(off, step, n);
        return;
    }
    for (std::size_t v = 0; v < N; ++v) step[v] = strides[v][R - 1];
    extents_type<R> idx{};
    for (;;) {
        f(off, step, shape[R - 1]);
        std::size_t k = R - 1;
        for (;;) {
            if (k == 0) return;
            --k;
            ++idx[k];
            for (std::size_t v = 0; v < N; ++v) off[v] += strides[v][k];
            if (idx[k] < shape[k]) break;
            for (std::size_t v = 0; v < N; ++v) off[v] -= strides[v][k] * idx[k];
            idx[k] = 0;
        }
    }
}

}  // namespace detail
}  // namespace logitkit
