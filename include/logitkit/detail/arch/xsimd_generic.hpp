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

#include "../config.hpp"

namespace logitkit {
namespace detail {

template <class T, class Arch>
struct batch_of {
    using type = xsimd::batch<T, Arch>;
};

namespace simd {

template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> fma(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                      const xsimd::batch<T, A>& c) noexcept {
    return xsimd::fma(a, b, c);
}
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> max(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b) noexcept {
    return xsimd::max(a, b);
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

}  // namespace simd
}  // namespace detail
}  // namespace logitkit
