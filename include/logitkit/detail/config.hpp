// logitkit — compile-time selection of the SIMD architecture.
// SPDX-License-Identifier: MIT
#pragma once

// The architecture is fixed by the compiler's target flags (-msse4.2, -mavx2 -mfma,
// -mavx512f ..., -march=native): xsimd's default_arch is the widest instruction set the
// translation unit may use. Defining LOGITKIT_NO_SIMD, or building without xsimd on the
// include path, selects the portable scalar path.
#if !defined(LOGITKIT_NO_SIMD) && defined(__has_include)
#if __has_include(<xsimd/xsimd.hpp>)
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its -Wmaybe-uninitialized
// reports once inlined (GCC bug 105593, fixed in GCC 13). The warning points into the intrinsic
// headers, so it is silenced for the text of the headers included here.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#include <xsimd/xsimd.hpp>
#pragma GCC diagnostic pop
#else
#include <xsimd/xsimd.hpp>
#endif
#define LOGITKIT_HAS_XSIMD 1
#endif
#endif

#ifndef LOGITKIT_HAS_XSIMD
#define LOGITKIT_HAS_XSIMD 0
#endif

// LOGITKIT_LAMBDA_INLINE goes after a lambda's parameter list: the stages pass their per-batch
// work as lambdas, which must inline into the unrolled loops. LOGITKIT_COLD keeps a rare path
// (the exponential's out-of-range lanes) out of those loops.
#if defined(__GNUC__) || defined(__clang__)
#define LOGITKIT_INLINE inline __attribute__((always_inline))
#define LOGITKIT_LAMBDA_INLINE __attribute__((always_inline))
#define LOGITKIT_COLD __attribute__((noinline, cold))
#define LOGITKIT_PREFETCH(p) __builtin_prefetch((p), 0, 2)
#else
#define LOGITKIT_INLINE inline
#define LOGITKIT_LAMBDA_INLINE
#define LOGITKIT_COLD
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#define LOGITKIT_PREFETCH(p) _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1)
#else
#define LOGITKIT_PREFETCH(p) ((void)(p))
#endif
#endif
