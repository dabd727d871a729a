// logitkit — bfloat16 and float16 storage types.
// SPDX-License-Identifier: MIT
//
// Two-byte storage formats for tensors; the kernels widen each element to float, compute and
// accumulate in float, and round each output once. Conversions from float round to nearest,
// ties to even, keep the sign of zeros and infinities, and keep NaN a NaN (quieted, with the top
// payload bits); conversions to float are exact. A bfloat16 is the high half of a float's bits,
// and widens to that float, a signalling NaN to a signalling NaN (as in PyTorch): the kernels'
// arithmetic quiets it, and a bare shift is the cheapest load a kernel can take. A float16 NaN
// widens quieted (as vcvtph2ps gives it).
//
//   bfloat16: 1 sign, 8 exponent, 7 fraction bits (float's range, 8 significant bits; one ulp
//             is 2^-7 relative at most).
//   float16:  IEEE binary16: 1 sign, 5 exponent, 10 fraction bits (largest finite 65504,
//             subnormals down to 2^-24).
//
// float16 uses the F16C instructions when the target has them (-mf16c, -march=native on x86-64);
// both formats have exact portable conversions otherwise. The AVX-512 BF16 conversion
// (vcvtneps2bf16) is not used: it flushes subnormal floats to zero, which this rounding does not.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "detail/config.hpp"
#include "tensor_view.hpp"

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace logitkit {
namespace detail {

inline std::uint32_t float_bits(float f) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
}
inline float bits_float(std::uint32_t u) noexcept {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline std::uint16_t bfloat16_from_float(float f) noexcept {
    const std::uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
    return static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
inline float float_from_bfloat16(std::uint16_t b) noexcept {
    return bits_float(static_cast<std::uint32_t>(b) << 16);
}

inline std::uint16_t float16_from_float_portable(float f) noexcept {
    const std::uint32_t u = float_bits(f);
    const std::uint32_t sign = (u >> 16) & 0x8000u;
    const std::uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // quiet NaN
    if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520 rounds to inf
    if (a >= 0x38800000u) {  // a normal float16: drop 13 bits, ties to even, rebias 127 -> 15
        const std::uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - 0x38000000u;
        return static_cast<std::uint16_t>(sign | (r >> 13));
    }
    // A float16 subnormal (or zero): the multiple of 2^-24 nearest to m * 2^(e - 150).
    const std::uint32_t e = a >> 23;
    const std::uint32_t m = (a & 0x7fffffu) | (e != 0 ? 0x800000u : 0u);
    const std::uint32_t shift = (e != 0 ? 126u : 125u) - e;
    if (shift >= 32) return static_cast<std::uint16_t>(sign);
    std::uint32_t q = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u) != 0)) ++q;
    return static_cast<std::uint16_t>(sign | q);
}
inline float float_from_float16_portable(std::uint16_t h) noexcept {
    const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
    const std::uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return bits_float(sign | 0x7f800000u | (m << 13) | (m != 0 ? 0x400000u : 0u));  // NaN: quiet
    if (e == 0) {
        const float v = static_cast<float>(m) * 0x1p-24f;  // exact
        return sign != 0 ? -v : v;
    }
    return bits_float(sign | ((e + 112u) << 23) | (m << 13));
}

inline std::uint16_t float16_from_float(float f) noexcept {
#if defined(__F16C__)
    return static_cast<std::uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
    return float16_from_float_portable(f);
#endif
}
inline float float_from_float16(std::uint16_t h) noexcept {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#else
    return float_from_float16_portable(h);
#endif
}

}  // namespace detail

/// bfloat16 storage: convert explicitly from and to float.
struct bfloat16 {
    std::uint16_t bits;

    bfloat16() = default;
    explicit bfloat16(float f) noexcept : bits(detail::bfloat16_from_float(f)) {}
    explicit operator float() const noexcept { return detail::float_from_bfloat16(bits); }
    static bfloat16 from_bits(std::uint16_t b) noexcept {
        bfloat16 r;
        r.bits = b;
        return r;
    }
};

/// IEEE binary16 storage: convert explicitly from and to float.
struct float16 {
    std::uint16_t bits;

    float16() = default;
    explicit float16(float f) noexcept : bits(detail::float16_from_float(f)) {}
    explicit operator float() const noexcept { return detail::float_from_float16(bits); }
    static float16 from_bits(std::uint16_t b) noexcept {
        float16 r;
        r.bits = b;
        return r;
    }
};

static_assert(sizeof(bfloat16) == 2 && std::is_trivially_copyable<bfloat16>::value, "bfloat16 is 2 plain bytes");
static_assert(sizeof(float16) == 2 && std::is_trivially_copyable<float16>::value, "float16 is 2 plain bytes");

namespace detail {

template <class S>
struct is_reduced_precision : std::false_type {};
template <>
struct is_reduced_precision<bfloat16> : std::true_type {};
template <>
struct is_reduced_precision<float16> : std::true_type {};

/// The type a kernel computes in for elements stored as S: float for the two-byte formats.
template <class S>
using compute_type_t = std::conditional_t<is_reduced_precision<std::remove_const_t<S>>::value, float,
                                          std::remove_const_t<S>>;

/// S -> its compute type, exactly.
template <class S>
LOGITKIT_INLINE compute_type_t<S> widen(S v) noexcept {
    if constexpr (is_reduced_precision<std::remove_const_t<S>>::value)
        return static_cast<float>(v);
    else
        return v;
}
/// Compute type -> S, rounded once to nearest even.
template <class S, class T>
LOGITKIT_INLINE S narrow(T v) noexcept {
    if constexpr (is_reduced_precision<S>::value)
        return S(static_cast<float>(v));
    else
        return static_cast<S>(v);
}

}  // namespace detail
}  // namespace logitkit
