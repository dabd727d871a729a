// logitkit — kernel primitives on any xsimd architecture.
// SPDX-License-Identifier: MIT
//
// Everything here is written once against xsimd::batch<T, Arch>. An instruction set that can do
// better overrides a primitive in its own file (see x86_avx512.hpp) through the arch-tag overloads
// of the *_impl functions; overload resolution picks the most derived architecture tag. The
// dispatching wrappers live in simd.hpp, after every architecture file, so they see all overloads.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../../reduced_precision.hpp"
#include "../config.hpp"
#include "exp2_table.hpp"

namespace logitkit {
namespace detail {

template <class T, class Arch>
struct batch_of {
    using type = xsimd::batch<T, Arch>;
};

namespace simd {

// a * b + c, rounded once where the architecture has a fused multiply-add (xsimd 8 has none for
// AVX-512 and falls back to a multiply and an add there; x86_avx512.hpp overrides it).
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> fma_impl(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                           const xsimd::batch<T, A>& c, const A&, const xsimd::generic&) noexcept {
    return xsimd::fma(a, b, c);
}
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> max(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    return xsimd::max(a, b);
}
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> min(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    return xsimd::min(a, b);
}
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> select(const xsimd::batch_bool<T, A>& m, const xsimd::batch<T, A>& a,
                                         const xsimd::batch<T, A>& b) noexcept {
    return xsimd::select(m, a, b);
}
template <class T, class A>
LOGITKIT_INLINE bool all(const xsimd::batch_bool<T, A>& m) noexcept {
    return xsimd::all(m);
}

template <class T, class A>
LOGITKIT_INLINE T reduce_add_impl(const xsimd::batch<T, A>& v, const A&, const xsimd::generic&) noexcept {
#if XSIMD_VERSION_MAJOR >= 9
    return xsimd::reduce_add(v);
#else
    return xsimd::hadd(v);
#endif
}

// The lanes of v widened to double and added pairwise, lane i to lane i + w for w = size / 2,
// size / 4, ..., 1: a chain of log2(lanes) additions rather than one per lane, which short rows
// would wait on. Architectures with double vectors do the same additions in registers.
template <class T, class A>
LOGITKIT_INLINE double lanes_sum_impl(const xsimd::batch<T, A>& v, const A&, const xsimd::generic&) noexcept {
    constexpr std::size_t size = xsimd::batch<T, A>::size;
    alignas(A::alignment()) T l[size];
    v.store_aligned(l);
    double d[size];
    for (std::size_t i = 0; i < size; ++i) d[i] = static_cast<double>(l[i]);
    for (std::size_t w = size / 2; w > 0; w /= 2)
        for (std::size_t i = 0; i < w; ++i) d[i] += d[i + w];
    return d[0];
}

// xsimd 8 has no reduce_max; a store and a short loop is enough for a once-per-row reduction.
template <class T, class A>
LOGITKIT_INLINE T reduce_max_impl(const xsimd::batch<T, A>& v, const A&, const xsimd::generic&) noexcept {
    alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
    v.store_aligned(lanes);
    T m = lanes[0];
    for (std::size_t i = 1; i < xsimd::batch<T, A>::size; ++i) m = lanes[i] > m ? lanes[i] : m;
    return m;
}

template <class To, class From, class A>
LOGITKIT_INLINE xsimd::batch<To, A> bit_cast(const xsimd::batch<From, A>& v) noexcept {
#if XSIMD_VERSION_MAJOR >= 10
    return xsimd::bitwise_cast<To>(v);
#else
    return xsimd::bitwise_cast<xsimd::batch<To, A>>(v);
#endif
}

template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> pow2_from_shifted_impl(const xsimd::batch<float, A>& t, const A&,
                                                             const xsimd::generic&) noexcept {
    return bit_cast<float>(bit_cast<std::int32_t>(t) << 23);
}
template <class A>
LOGITKIT_INLINE xsimd::batch<double, A> pow2_from_shifted_impl(const xsimd::batch<double, A>& t, const A&,
                                                              const xsimd::generic&) noexcept {
    return bit_cast<double>(bit_cast<std::int64_t>(t) << 52);
}

// |v| with its significand cleared: the power of two at or below it for a normal v, 0 for a
// subnormal or zero, so that comparing two of them compares exponent fields.
template <class A>
LOGITKIT_INLINE xsimd::batch<float, A> binade(const xsimd::batch<float, A>& v) noexcept {
    return bit_cast<float>(bit_cast<std::int32_t>(v) & xsimd::batch<std::int32_t, A>(0x7f800000));
}
template <class A>
LOGITKIT_INLINE xsimd::batch<double, A> binade(const xsimd::batch<double, A>& v) noexcept {
    return bit_cast<double>(bit_cast<std::int64_t>(v) & xsimd::batch<std::int64_t, A>(0x7ff0000000000000));
}

// The exponential's table size (log2; see exp.hpp): none unless an architecture overrides it.
template <class T, class A>
constexpr int exp_table_bits_impl(const T*, const A&, const xsimd::generic&) noexcept {
    return 0;
}
// How many batches the exponential takes together (see simd::pack): one, unless an architecture
// with registers to spare overrides it.
template <class T, class A>
constexpr int exp_interleave_impl(const T*, const A&, const xsimd::generic&) noexcept {
    return 1;
}

// 2^((k mod 2^L) / 2^L) for the k in the low bits of t = round_shifter + k, through memory.
template <int L, class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> exp2_fraction_impl(const xsimd::batch<T, A>& t, const A&,
                                                     const xsimd::generic&) noexcept {
    using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    alignas(A::alignment()) I k[xsimd::batch<T, A>::size];
    alignas(A::alignment()) T f[xsimd::batch<T, A>::size];
    bit_cast<I>(t).store_aligned(k);
    for (std::size_t i = 0; i < xsimd::batch<T, A>::size; ++i) f[i] = exp2_fraction_table<T>::template entry<L>(k[i]);
    return xsimd::batch<T, A>::load_aligned(f);
}

// 2^((k mod 2^L) / 2^L) * 2^(k >> L) for the k in the low bits of t = round_shifter + k, when
// normal. t shifted by (mantissa - L) holds (k >> L) in the exponent field and (k mod 2^L) just
// below it; the table entry's bits minus the latter, plus the shifted t, is the scaled entry.
// An architecture with a register-wide permute subtracts the index bits from the table once,
// outside the loops.
template <int L, class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> exp2_scaled_impl(const xsimd::batch<T, A>& t, const A&,
                                                   const xsimd::generic&) noexcept {
    using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    constexpr int mantissa = std::numeric_limits<T>::digits - 1;
    const xsimd::batch<I, A> shifted = bit_cast<I>(t) << (mantissa - L);
    if constexpr (L == 0) {
        return bit_cast<T>(bit_cast<I>(xsimd::batch<T, A>(T(1))) + shifted);
    } else {
        alignas(A::alignment()) I k[xsimd::batch<T, A>::size];
        bit_cast<I>(t).store_aligned(k);
        for (std::size_t i = 0; i < xsimd::batch<T, A>::size; ++i) {
            const T entry = exp2_fraction_table<T>::template entry<L>(k[i]);
            I f;
            std::memcpy(&f, &entry, sizeof f);
            k[i] = f - static_cast<I>((k[i] & ((I(1) << L) - 1)) << (mantissa - L));
        }
        return bit_cast<T>(xsimd::batch<I, A>::load_aligned(k) + shifted);
    }
}

// y * 2^(k >> L) for a normal result, by an integer add to the exponent field.
template <int L, class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> add_exponent_impl(const xsimd::batch<T, A>& y, const xsimd::batch<T, A>& t,
                                                    const A&, const xsimd::generic&) noexcept {
    using I = std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t>;
    constexpr int mantissa = std::numeric_limits<T>::digits - 1;
    xsimd::batch<I, A> s = bit_cast<I>(t) << (mantissa - L);
    if constexpr (L > 0) s = s & xsimd::batch<I, A>(static_cast<I>(-(I(1) << mantissa)));
    return bit_cast<T>(bit_cast<I>(y) + s);
}

// A store that bypasses the caches, to an address aligned to the batch: a plain store unless an
// architecture has a non-temporal one. stream_fence orders such stores before later ones.
template <class A>
constexpr bool streams_impl(const A&, const xsimd::generic&) noexcept {
    return false;
}
template <class T, class A>
LOGITKIT_INLINE void store_stream_impl(T* p, const xsimd::batch<T, A>& v, const A&, const xsimd::generic&) noexcept {
    v.store_aligned(p);
}
template <class A>
LOGITKIT_INLINE void stream_fence_impl(const A&, const xsimd::generic&) noexcept {}

// Loads the first n (< batch size) elements, filling the other lanes with `fill`.
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> load_partial_impl(const T* p, std::size_t n, T fill, const A&,
                                                    const xsimd::generic&) noexcept {
    alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
    for (std::size_t i = 0; i < xsimd::batch<T, A>::size; ++i) lanes[i] = i < n ? p[i] : fill;
    return xsimd::batch<T, A>::load_aligned(lanes);
}
template <class T, class A>
LOGITKIT_INLINE void store_partial_impl(T* p, const xsimd::batch<T, A>& v, std::size_t n, const A&,
                                        const xsimd::generic&) noexcept {
    alignas(A::alignment()) T lanes[xsimd::batch<T, A>::size];
    v.store_aligned(lanes);
    for (std::size_t i = 0; i < n; ++i) p[i] = lanes[i];
}

// A batch of float from elements stored as bfloat16 or float16, each widened exactly (widen), and
// a batch of float stored so, each rounded once (narrow): the same bits as reduced_precision.hpp.
template <class S, class A>
LOGITKIT_INLINE xsimd::batch<float, A> load_widened_impl(const S* p, const A&, const xsimd::generic&) noexcept {
    alignas(A::alignment()) float lanes[xsimd::batch<float, A>::size];
    for (std::size_t i = 0; i < xsimd::batch<float, A>::size; ++i) lanes[i] = widen(p[i]);
    return xsimd::batch<float, A>::load_aligned(lanes);
}
template <class S, class A>
LOGITKIT_INLINE void store_narrowed_impl(S* p, const xsimd::batch<float, A>& v, const A&,
                                         const xsimd::generic&) noexcept {
    alignas(A::alignment()) float lanes[xsimd::batch<float, A>::size];
    v.store_aligned(lanes);
    for (std::size_t i = 0; i < xsimd::batch<float, A>::size; ++i) p[i] = narrow<S>(lanes[i]);
}
/// store_narrowed for a batch that holds no NaN (see simd::store_no_nan).
template <class S, class A>
LOGITKIT_INLINE void store_narrowed_no_nan_impl(S* p, const xsimd::batch<float, A>& v, const A&,
                                                const xsimd::generic&) noexcept {
    store_narrowed_impl(p, v, A{}, A{});
}

}  // namespace simd
}  // namespace detail
}  // namespace logitkit
