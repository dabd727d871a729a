// logitkit — the kernels of gumbel_noise, gumbel_softmax and gumbel_softmax_backward.
// SPDX-License-Identifier: MIT
//
// gumbel_softmax runs in two passes: the perturbed logits z = (x + g) / tau are written in
// row-major order (the noise of element i is that of position offset + i of the generator), then
// the softmax stages (or the one-hot of the argmax) run along the axis on z, in place.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "../tensor_view.hpp"
#include "dispatch.hpp"
#include "gumbel_noise.hpp"
#include "ops.hpp"
#include "stages.hpp"

namespace logitkit {
namespace detail {

/// out = noise (with_x = false) or out = (x + noise) / tau (tau == 1: x + noise), in row-major
/// order of the views' index space, the noise drawn from `src`.
template <class Arch, class T, std::size_t R, class Source>
void write_perturbed(Source& src, const tensor_view<const T, R>* x, const tensor_view<T, R>& out, T tau) {
    constexpr int K = words_per_element<T>;
    const bool divide = tau != T(1);
    const T* xp = x != nullptr ? x->data() : nullptr;
    T* op = out.data();
    const bool contiguous = out.is_contiguous() && (x == nullptr || x->is_contiguous());
    const std::array<extents_type<R>, 2> strides{x != nullptr ? x->strides() : out.strides(), out.strides()};
    for_each_run(out.shape(), strides, contiguous,
                 [&](const std::array<index_type, 2>& off, const std::array<index_type, 2>& step, index_type n) {
                     const T* xr = xp != nullptr ? xp + off[0] : nullptr;
                     T* yr = op + off[1];
                     const index_type sx = step[0], sy = step[1];
                     for_each_noise_chunk<Arch, K>(src, n, [&](index_type first, std::size_t m, const double* g) {
                         const index_type cnt = static_cast<index_type>(m);
                         if (xr == nullptr) {
                             for (index_type j = 0; j < cnt; ++j) yr[(first + j) * sy] = static_cast<T>(g[j]);
                         } else if (sx == 1 && sy == 1) {
                             const T* a = xr + first;
                             T* b = yr + first;
                             if (divide)
                                 for (index_type j = 0; j < cnt; ++j) b[j] = (a[j] + static_cast<T>(g[j])) / tau;
                             else
                                 for (index_type j = 0; j < cnt; ++j) b[j] = a[j] + static_cast<T>(g[j]);
                         } else {
                             for (index_type j = 0; j < cnt; ++j) {
                                 const T v = xr[(first + j) * sx] + static_cast<T>(g[j]);
                                 yr[(first + j) * sy] = divide ? v / tau : v;
                             }
                         }
                     });
                 });
}

/// The one-hot of the argmax of a line (lowest index among equal maxima); a line whose maximum is
/// not finite (a NaN, a +inf, or only -inf) gives NaN everywhere, as softmax does.
template <class T>
struct one_hot_op {
    static constexpr std::size_t inputs = 1;
    static constexpr bool reduces = false;

    /// The index of the maximum of z[0], z[s], ..., z[(n-1) s], or -1 when it is not finite.
    static index_type argmax(const T* z, index_type s, index_type n) noexcept {
        T best = -std::numeric_limits<T>::infinity();
        index_type at = -1;
        bool finite = true;
        for (index_type r = 0; r < n; ++r) {
            const T v = z[r * s];
            finite = finite && v == v && v != std::numeric_limits<T>::infinity();
            if (v > best) {
                best = v;
                at = r;
            }
        }
        return finite ? at : -1;
    }
    static void write(T* y, index_type s, index_type n, index_type at) noexcept {
        const T other = at < 0 ? std::numeric_limits<T>::quiet_NaN() : T(0);
        for (index_type r = 0; r < n; ++r) y[r * s] = r == at ? T(1) : other;
    }

    template <class Arch>
    void row(const std::array<T*, 2>& p, index_type n) const {
        // Vector pass: no NaN and the maximum; then the first element equal to it.
        using V = batch<T, Arch>;
        constexpr index_type W = V::size;
        const T inf = std::numeric_limits<T>::infinity();
        const T* z = p[0];
        const V vinf(inf);
        auto ok = vinf <= vinf;
        index_type i = 0;
        for (; i + W <= n; i += W) ok = ok & (simd::load<V>(z + i) <= vinf);
        for (; i < n; ++i) ok = ok & (V(z[i]) <= vinf);
        const T m = row::reduce_max<Arch>(z, n);
        index_type at = -1;
        if (simd::all(ok) && m < inf && m > -inf)
            for (index_type r = 0; r < n; ++r)
                if (z[r] == m) {
                    at = r;
                    break;
                }
        T* y = p[1];
        std::fill(y, y + n, at < 0 ? std::numeric_limits<T>::quiet_NaN() : T(0));
        if (at >= 0) y[at] = T(1);
    }
    template <class Arch, int K>
    void cols(const std::array<T*, 2>& p, const std::array<index_type, 2>& s, index_type n) const {
        constexpr std::size_t lanes = block_lanes<T, Arch, K>;
        index_type at[lanes];
        for (std::size_t l = 0; l < lanes; ++l) at[l] = argmax(p[0] + l, s[0], n);
        for (std::size_t l = 0; l < lanes; ++l) write(p[1] + l, s[1], n, at[l]);
    }
};

/// The straight-through gradient: dx = (y * (dy - sum(dy * y))) * inv_tau.
template <class T>
struct gumbel_backward_op {
    static constexpr std::size_t inputs = 2;
    static constexpr bool reduces = false;
    T inv_tau;

    template <class Arch>
    void row(const std::array<T*, 3>& p, index_type n) const {
        using V = batch<T, Arch>;
        const V vs(static_cast<T>(row::dot<Arch>(p[0], p[1], n)));
        const V vt(inv_tau);
        const T* y = p[0];
        const T* dy = p[1];
        T* dx = p[2];
        for_each_batch<V::size>(
            n, [&](index_type i) { simd::store(dx + i, (simd::load<V>(y + i) * (simd::load<V>(dy + i) - vs)) * vt); },
            [&](index_type i, std::size_t rem) {
                const V a = simd::load_partial<V>(y + i, rem, T(0));
                const V b = simd::load_partial<V>(dy + i, rem, T(0));
                simd::store_partial(dx + i, (a * (b - vs)) * vt, rem);
            });
    }
    template <class Arch, int K>
    void cols(const std::array<T*, 3>& p, const std::array<index_type, 3>& s, index_type n) const {
        using V = batch<T, Arch>;
        constexpr index_type W = V::size;
        constexpr std::size_t lanes = block_lanes<T, Arch, K>;
        double sums[lanes];
        col::dot<Arch, K>(p[0], s[0], p[1], s[1], n, sums);
        V vs[K];
        for (int k = 0; k < K; ++k) {
            T st[W];
            for (index_type l = 0; l < W; ++l) st[l] = static_cast<T>(sums[k * W + l]);
            vs[k] = simd::load<V>(st);
        }
        const V vt(inv_tau);
        for (index_type r = 0; r < n; ++r)
            for (int k = 0; k < K; ++k)
                simd::store(
                    p[2] + r * s[2] + k * W,
                    (simd::load<V>(p[0] + r * s[0] + k * W) * (simd::load<V>(p[1] + r * s[1] + k * W) - vs[k])) * vt);
    }
};

/// dst = src, element by element (views of one shape that do not overlap).
template <class T, std::size_t R>
void copy_view(const tensor_view<const T, R>& src, const tensor_view<T, R>& dst) {
    const std::array<extents_type<R>, 2> strides{src.strides(), dst.strides()};
    for_each_run(src.shape(), strides, src.is_contiguous() && dst.is_contiguous(),
                 [&](const std::array<index_type, 2>& off, const std::array<index_type, 2>& step, index_type n) {
                     const T* a = src.data() + off[0];
                     T* b = dst.data() + off[1];
                     for (index_type j = 0; j < n; ++j) b[j * step[1]] = a[j * step[0]];
                 });
}

}  // namespace detail
}  // namespace logitkit
