// logitkit — the portable scalar "architecture": one lane, plain C++.
// SPDX-License-Identifier: MIT
//
// scalar_batch mirrors the small part of xsimd::batch that the kernels use, so that every
// kernel is written once and instantiated either on an xsimd architecture or on scalar_arch.
// It also serves the tails of vector loops on other architectures' column kernels.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "../config.hpp"
#include "exp2_table.hpp"

namespace logitkit {
namespace detail {

struct scalar_arch {
    static constexpr const char* name() noexcept { return "scalar"; }
};

template <class T>
struct scalar_batch;

template <class T>
struct scalar_mask {
    bool v;
    friend constexpr scalar_mask operator&(scalar_mask a, scalar_mask b) noexcept { return {a.v && b.v}; }
    friend constexpr scalar_mask operator|(scalar_mask a, scalar_mask b) noexcept { return {a.v || b.v}; }
};

template <class T>
struct scalar_batch {
    using value_type = T;
    using arch_type = scalar_arch;
    static constexpr std::size_t size = 1;
    T v;

    scalar_batch() = default;
    constexpr scalar_batch(T x) noexcept : v(x) {}

    static LOGITKIT_INLINE scalar_batch load_unaligned(const T* p) noexcept { return scalar_batch(*p); }
    LOGITKIT_INLINE void store_unaligned(T* p) const noexcept { *p = v; }

    friend LOGITKIT_INLINE scalar_batch operator+(scalar_batch a, scalar_batch b) noexcept { return a.v + b.v; }
    friend LOGITKIT_INLINE scalar_batch operator-(scalar_batch a, scalar_batch b) noexcept { return a.v - b.v; }
    friend LOGITKIT_INLINE scalar_batch operator*(scalar_batch a, scalar_batch b) noexcept { return a.v * b.v; }
    friend LOGITKIT_INLINE scalar_batch operator/(scalar_batch a, scalar_batch b) noexcept { return a.v / b.v; }
    friend LOGITKIT_INLINE scalar_batch operator-(scalar_batch a) noexcept { return -a.v; }
    LOGITKIT_INLINE scalar_batch& operator+=(scalar_batch b) noexcept { v += b.v; return *this; }
    friend LOGITKIT_INLINE scalar_mask<T> operator<(scalar_batch a, scalar_batch b) noexcept { return {a.v < b.v}; }
    friend LOGITKIT_INLINE scalar_mask<T> operator>(scalar_batch a, scalar_batch b) noexcept { return {a.v > b.v}; }
    friend LOGITKIT_INLINE scalar_mask<T> operator>=(scalar_batch a, scalar_batch b) noexcept { return {a.v >= b.v}; }
    friend LOGITKIT_INLINE scalar_mask<T> operator<=(scalar_batch a, scalar_batch b) noexcept { return {a.v <= b.v}; }
    friend LOGITKIT_INLINE scalar_mask<T> operator!=(scalar_batch a, scalar_batch b) noexcept { return {a.v != b.v}; }
};

namespace simd {

template <class T>
LOGITKIT_INLINE scalar_batch<T> fma(scalar_batch<T> a, scalar_batch<T> b, scalar_batch<T> c) noexcept {
    return std::fma(a.v, b.v, c.v);
}
// Returns a when a > b, else b: a NaN in the first operand is dropped, as with x86 max.
template <class T>
LOGITKIT_INLINE scalar_batch<T> max(scalar_batch<T> a, scalar_batch<T> b) noexcept {
    return a.v > b.v ? a.v : b.v;
}
template <class T>
LOGITKIT_INLINE scalar_batch<T> min(scalar_batch<T> a, scalar_batch<T> b) noexcept {
    return a.v < b.v ? a.v : b.v;
}
template <class T>
LOGITKIT_INLINE scalar_batch<T> select(scalar_mask<T> m, scalar_batch<T> a, scalar_batch<T> b) noexcept {
    return m.v ? a : b;
}
template <class T>
LOGITKIT_INLINE bool all(scalar_mask<T> m) noexcept { return m.v; }
template <class T>
LOGITKIT_INLINE T reduce_add(scalar_batch<T> a) noexcept { return a.v; }
template <class T>
LOGITKIT_INLINE T reduce_max(scalar_batch<T> a) noexcept { return a.v; }
template <class T>
LOGITKIT_INLINE double lanes_sum(scalar_batch<T> a) noexcept { return static_cast<double>(a.v); }

// Reinterprets the low bits of a "shifter" float/double as an exponent field: 2^n from
// t = 1.5*2^p + bias + n (see exp.hpp).
LOGITKIT_INLINE scalar_batch<float> pow2_from_shifted(scalar_batch<float> t) noexcept {
    std::uint32_t bits;
    std::memcpy(&bits, &t.v, sizeof bits);
    bits <<= 23;
    float r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}
LOGITKIT_INLINE scalar_batch<double> pow2_from_shifted(scalar_batch<double> t) noexcept {
    std::uint64_t bits;
    std::memcpy(&bits, &t.v, sizeof bits);
    bits <<= 52;
    double r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}

template <class T>
using scalar_bits_t = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

// |v| with its significand cleared (see binade in xsimd_generic.hpp).
template <class T>
LOGITKIT_INLINE scalar_batch<T> binade(scalar_batch<T> v) noexcept {
    constexpr int mantissa = std::numeric_limits<T>::digits - 1;
    constexpr scalar_bits_t<T> exponent = ((scalar_bits_t<T>(1) << (sizeof(T) * 8 - 1 - mantissa)) - 1) << mantissa;
    scalar_bits_t<T> bits;
    std::memcpy(&bits, &v.v, sizeof bits);
    bits &= exponent;
    T r;
    std::memcpy(&r, &bits, sizeof r);
    return r;
}

// 2^((k mod 2^L) / 2^L) for the k held in the low bits of t = round_shifter + k (see exp.hpp).
template <int L, class T>
LOGITKIT_INLINE scalar_batch<T> exp2_fraction(scalar_batch<T> t) noexcept {
    scalar_bits_t<T> bits;
    std::memcpy(&bits, &t.v, sizeof bits);
    return exp2_fraction_table<T>::template entry<L>(bits);
}

// 2^((k mod 2^L) / 2^L) * 2^(k >> L) when normal (see exp2_scaled_impl in xsimd_generic.hpp).
template <int L, class T>
LOGITKIT_INLINE scalar_batch<T> exp2_scaled(scalar_batch<T> t) noexcept {
    constexpr int mantissa = std::numeric_limits<T>::digits - 1;
    scalar_bits_t<T> tb, fb;
    std::memcpy(&tb, &t.v, sizeof tb);
    const T f = exp2_fraction_table<T>::template entry<L>(tb);
    std::memcpy(&fb, &f, sizeof fb);
    fb += (tb << (mantissa - L)) - ((tb & ((scalar_bits_t<T>(1) << L) - 1)) << (mantissa - L));
    T r;
    std::memcpy(&r, &fb, sizeof r);
    return r;
}

// y * 2^(k >> L) for a normal result, by an integer add to the exponent field.
template <int L, class T>
LOGITKIT_INLINE scalar_batch<T> add_exponent(scalar_batch<T> y, scalar_batch<T> t) noexcept {
    constexpr int mantissa = std::numeric_limits<T>::digits - 1;
    scalar_bits_t<T> yb, tb;
    std::memcpy(&yb, &y.v, sizeof yb);
    std::memcpy(&tb, &t.v, sizeof tb);
    yb += (tb << (mantissa - L)) & ~((scalar_bits_t<T>(1) << mantissa) - 1);
    T r;
    std::memcpy(&r, &yb, sizeof r);
    return r;
}

}  // namespace simd

template <class T>
struct batch_of<T, scalar_arch> {
    using type = scalar_batch<T>;
};

}  // namespace detail
}  // namespace logitkit
