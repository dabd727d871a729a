// logitkit — the batch abstraction the kernels are written against.
// SPDX-License-Identifier: MIT
//
// batch<T, Arch> is xsimd::batch<T, Arch> on an xsimd architecture and scalar_batch<T> on
// scalar_arch. Kernels call the primitives as simd::fma, simd::max, ... (qualified, so that
// argument-dependent lookup never mixes in xsimd's own overloads).
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "../reduced_precision.hpp"
#include "config.hpp"

namespace logitkit {
namespace detail {

template <class T, class Arch>
struct batch_of;

}  // namespace detail
}  // namespace logitkit

#include "arch/scalar.hpp"
#if LOGITKIT_HAS_XSIMD
#include "arch/xsimd_generic.hpp"
#include "arch/x86_avx2.hpp"
#include "arch/x86_avx512.hpp"
#endif

namespace logitkit {
namespace detail {

template <class T, class Arch>
using batch = typename batch_of<T, Arch>::type;

#if LOGITKIT_HAS_XSIMD
/// The architecture the target flags select: xsimd's default, scalar_arch where xsimd has none,
/// and avx512f where xsimd's default has no float registers. xsimd 8 declares those of avx512cd
/// (and so of avx512dq, built on it) only when AVX512BW is enabled as well, so that flags with CD
/// or DQ but not BW (Knights Landing's, -mavx512f -mavx512cd) would select an arch no batch can
/// use; avx512f has the same registers and instructions.
template <class A, bool = std::is_same<A, xsimd::unavailable>::value,
          bool = xsimd::types::has_simd_register<float, A>::value>
struct usable_arch {
    using type = A;
};
template <class A, bool Registers>
struct usable_arch<A, true, Registers> {
    using type = scalar_arch;
};
#if XSIMD_WITH_AVX512F
template <class A>
struct usable_arch<A, false, false> {
    using type = xsimd::avx512f;
};
#endif
using default_arch = typename usable_arch<xsimd::default_arch>::type;
#else
using default_arch = scalar_arch;
#endif

namespace simd {

#if LOGITKIT_HAS_XSIMD
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> fma(const xsimd::batch<T, A>& a, const xsimd::batch<T, A>& b,
                                      const xsimd::batch<T, A>& c) noexcept {
    return fma_impl(a, b, c, A{}, A{});
}
template <class T, class A>
LOGITKIT_INLINE T reduce_add(const xsimd::batch<T, A>& v) noexcept {
    return reduce_add_impl(v, A{}, A{});
}
template <class T, class A>
LOGITKIT_INLINE T reduce_max(const xsimd::batch<T, A>& v) noexcept {
    return reduce_max_impl(v, A{}, A{});
}
template <class T, class A>
LOGITKIT_INLINE double lanes_sum(const xsimd::batch<T, A>& v) noexcept {
    return lanes_sum_impl(v, A{}, A{});
}
template <class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> pow2_from_shifted(const xsimd::batch<T, A>& t) noexcept {
    return pow2_from_shifted_impl(t, A{}, A{});
}
template <class T, class A>
LOGITKIT_INLINE void store_stream(T* p, const xsimd::batch<T, A>& v) noexcept {
    store_stream_impl(p, v, A{}, A{});
}
template <class T, class A>
LOGITKIT_INLINE void stream_fence(const xsimd::batch<T, A>*) noexcept {
    stream_fence_impl(A{}, A{});
}
template <class T, class A>
constexpr bool streams_of(const xsimd::batch<T, A>*) noexcept {
    return streams_impl(A{}, A{});
}
template <class T, class A>
constexpr int exp_table_bits_of(const xsimd::batch<T, A>*) noexcept {
    return exp_table_bits_impl(static_cast<const T*>(nullptr), A{}, A{});
}
template <class T, class A>
constexpr int exp_interleave_of(const xsimd::batch<T, A>*) noexcept {
    return exp_interleave_impl(static_cast<const T*>(nullptr), A{}, A{});
}
template <int L, class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> exp2_fraction(const xsimd::batch<T, A>& t) noexcept {
    return exp2_fraction_impl<L>(t, A{}, A{});
}
template <int L, class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> exp2_scaled(const xsimd::batch<T, A>& t) noexcept {
    return exp2_scaled_impl<L>(t, A{}, A{});
}
template <int L, class T, class A>
LOGITKIT_INLINE xsimd::batch<T, A> add_exponent(const xsimd::batch<T, A>& y, const xsimd::batch<T, A>& t) noexcept {
    return add_exponent_impl<L>(y, t, A{}, A{});
}
#endif
template <class T>
constexpr int exp_table_bits_of(const scalar_batch<T>*) noexcept {
    return 0;
}
template <class T>
constexpr int exp_interleave_of(const scalar_batch<T>*) noexcept {
    return 1;
}
template <class T>
constexpr bool streams_of(const scalar_batch<T>*) noexcept {
    return false;
}
template <class T>
LOGITKIT_INLINE void stream_fence(const scalar_batch<T>*) noexcept {}
template <class T>
LOGITKIT_INLINE void store_stream(T* p, const scalar_batch<T>& v) noexcept {
    v.store_unaligned(p);
}
/// Whether V's architecture has non-temporal stores (simd::store_stream bypasses the caches).
template <class V>
constexpr bool streams = streams_of(static_cast<const V*>(nullptr));
/// The exponential's table size (log2) on V's architecture (see exp.hpp).
template <class V>
constexpr int exp_table_bits_of() noexcept {
    return exp_table_bits_of(static_cast<const V*>(nullptr));
}
/// How many batches the exponential takes together on V's architecture (see exp.hpp).
template <class V>
constexpr int exp_interleave_of() noexcept {
    return exp_interleave_of(static_cast<const V*>(nullptr));
}

// A batch of float loads from and stores to bfloat16 and float16 elements too, widened exactly and
// rounded once (widen and narrow), so that a kernel reads and writes them where it reads and
// writes floats, without a pass of its own for the conversion.
template <class V, class T>
LOGITKIT_INLINE V load(const T* p) noexcept {
    if constexpr (!is_reduced_precision<T>::value) {
        return V::load_unaligned(p);
    } else if constexpr (V::size == 1) {
        return V(widen(*p));
    } else {
#if LOGITKIT_HAS_XSIMD
        using A = typename V::arch_type;
        return simd::load_widened_impl(p, A{}, A{});
#endif
    }
}
template <class V, class T>
LOGITKIT_INLINE void store(T* p, const V& v) noexcept {
    if constexpr (!is_reduced_precision<T>::value) {
        v.store_unaligned(p);
    } else if constexpr (V::size == 1) {
        typename V::value_type f;
        v.store_unaligned(&f);
        *p = narrow<T>(f);
    } else {
#if LOGITKIT_HAS_XSIMD
        using A = typename V::arch_type;
        simd::store_narrowed_impl(p, v, A{}, A{});
#endif
    }
}

/// store, for a batch that holds no NaN: a bfloat16 store then skips its NaN test, which gives
/// the same bits with two instructions less per batch on AVX512BW, three on AVX2.
template <class V, class T>
LOGITKIT_INLINE void store_no_nan(T* p, const V& v) noexcept {
    if constexpr (is_reduced_precision<T>::value && V::size > 1) {
#if LOGITKIT_HAS_XSIMD
        using A = typename V::arch_type;
        simd::store_narrowed_no_nan_impl(p, v, A{}, A{});
#endif
    } else {
        store(p, v);
    }
}

/// N batches as one value: each operation is applied to all N before the next one, so that the N
/// dependency chains of a long computation (the exponential's) are interleaved in the
/// instruction stream. Taken one batch at a time, the out-of-order core holds too few batches'
/// worth of such a chain to keep the vector units busy (softmax, 128x1000 float on AVX-512:
/// 8-16% less time with four batches together). Each lane gets the operations, and so the bits,
/// it would get in a batch of its own.
template <class V, int N>
struct pack {
    using value_type = typename V::value_type;
    V v[N];

    pack() = default;
    explicit pack(value_type s) noexcept { each([&](int k) LOGITKIT_LAMBDA_INLINE { v[k] = V(s); }); }

    /// f(0), ..., f(N - 1), unrolled at any optimisation level.
    template <class F>
    static LOGITKIT_INLINE void each(F&& f) noexcept {
        each_impl(f, std::make_integer_sequence<int, N>{});
    }
    template <class F>
    static LOGITKIT_INLINE pack map(F&& f) noexcept {
        pack r;
        each([&](int k) LOGITKIT_LAMBDA_INLINE { r.v[k] = f(k); });
        return r;
    }

    friend LOGITKIT_INLINE pack operator+(const pack& a, const pack& b) noexcept {
        return map([&](int k) LOGITKIT_LAMBDA_INLINE { return a.v[k] + b.v[k]; });
    }
    friend LOGITKIT_INLINE pack operator-(const pack& a, const pack& b) noexcept {
        return map([&](int k) LOGITKIT_LAMBDA_INLINE { return a.v[k] - b.v[k]; });
    }
    friend LOGITKIT_INLINE pack operator*(const pack& a, const pack& b) noexcept {
        return map([&](int k) LOGITKIT_LAMBDA_INLINE { return a.v[k] * b.v[k]; });
    }
    friend LOGITKIT_INLINE pack operator/(const pack& a, const pack& b) noexcept {
        return map([&](int k) LOGITKIT_LAMBDA_INLINE { return a.v[k] / b.v[k]; });
    }

private:
    template <class F, int... K>
    static LOGITKIT_INLINE void each_impl(F& f, std::integer_sequence<int, K...>) noexcept {
        (f(K), ...);
    }
};

template <class V, int N>
LOGITKIT_INLINE pack<V, N> fma(const pack<V, N>& a, const pack<V, N>& b, const pack<V, N>& c) noexcept {
    return pack<V, N>::map([&](int k) LOGITKIT_LAMBDA_INLINE { return simd::fma(a.v[k], b.v[k], c.v[k]); });
}
template <int L, class V, int N>
LOGITKIT_INLINE pack<V, N> exp2_scaled(const pack<V, N>& t) noexcept {
    return pack<V, N>::map([&](int k) LOGITKIT_LAMBDA_INLINE { return simd::exp2_scaled<L>(t.v[k]); });
}
template <class V, int N>
constexpr int exp_table_bits_of(const pack<V, N>*) noexcept {
    return exp_table_bits_of<V>();
}

/// Keeps the batch v in a register. GCC and Clang otherwise fold the load of a batch into each
/// instruction that reads it (as a memory operand), so that a pass applying three operations to
/// every batch loads each three times and is bound by the load ports.
template <class V>
LOGITKIT_INLINE void in_register([[maybe_unused]] V& v) noexcept {
#if LOGITKIT_HAS_XSIMD && defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    if constexpr (V::size > 1) asm("" : "+v"(v.data));
#endif
}

/// The batch (0, 1, 2, ...): compared with a count, it selects the lanes below it.
template <class V>
LOGITKIT_INLINE V lane_index() noexcept {
    using T = typename V::value_type;
    alignas(64) static constexpr T index[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    static_assert(V::size <= 16, "lane_index: at most 16 lanes");
    return V::load_unaligned(index);
}

template <class V, class T>
LOGITKIT_INLINE V load_partial(const T* p, std::size_t n, typename V::value_type fill) noexcept {
    if constexpr (is_reduced_precision<T>::value) {
        typename V::value_type lanes[V::size];
        for (std::size_t i = 0; i < V::size; ++i) lanes[i] = i < n ? widen(p[i]) : fill;
        return V::load_unaligned(lanes);
    } else if constexpr (V::size == 1) {
        return n == 0 ? V(fill) : V(*p);
    } else {
#if LOGITKIT_HAS_XSIMD
        using A = typename V::arch_type;
        return simd::load_partial_impl(p, n, fill, A{}, A{});
#endif
    }
}
template <class V, class T>
LOGITKIT_INLINE void store_partial(T* p, const V& v, std::size_t n) noexcept {
    if constexpr (is_reduced_precision<T>::value) {
        typename V::value_type lanes[V::size];
        v.store_unaligned(lanes);
        for (std::size_t i = 0; i < n; ++i) p[i] = narrow<T>(lanes[i]);
    } else if constexpr (V::size == 1) {
        if (n != 0) v.store_unaligned(p);
    } else {
#if LOGITKIT_HAS_XSIMD
        using A = typename V::arch_type;
        simd::store_partial_impl(p, v, n, A{}, A{});
#endif
    }
}

}  // namespace simd
}  // namespace detail

/// Name of the SIMD architecture the kernels of this translation unit use: "scalar", "sse2",
/// "sse4.2", "avx2", "avx512bw", ... (an FMA variant is reported by its base instruction set).
template <class Arch = detail::default_arch>
const char* simd_arch_name() noexcept {
    const char* n = Arch::name();
    for (const char* p = n; *p; ++p)
        if (*p == '+') return p + 1;
    return n;
}

}  // namespace logitkit
