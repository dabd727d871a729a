// logitkit — running a per-axis operation over a strided tensor.
// SPDX-License-Identifier: MIT
//
// An operation sees its operands (inputs first, then outputs) as pointers plus strides. It
// provides row<Arch>(p, n), for operands contiguous along the axis, and cols<Arch, K>(p, s, n),
// for K batches of adjacent columns that are contiguous in some other dimension and step by s
// along the axis. The dispatcher picks, in this order:
//   1. rows    — every operand has stride 1 on the axis: the contiguous fast path;
//   2. columns — every operand has stride 1 on another dimension: the axis is walked with vector
//                loads across that dimension (no gathering);
//   3. gather  — anything else: each line is copied to a contiguous buffer, processed as a row,
//                and the outputs are copied back.
// An operation with `reduces = true` has one output whose extent along the axis is 1 (its axis
// stride is ignored).
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "../reduced_precision.hpp"
#include "../tensor_view.hpp"
#include "simd.hpp"

namespace logitkit {
namespace detail {

template <std::size_t N>
using pointers = std::array<char*, N>;

template <std::size_t R, std::size_t N>
struct axis_layout {
    extents_type<R> shape;                   // the inputs' shape
    std::array<extents_type<R>, N> strides;  // per operand, in elements
    pointers<N> base;                        // per operand, as bytes
};

/// Calls f(offsets) for every index of the dimensions listed in `dims` (count of them), where
/// offsets[i] is operand i's element offset.
template <std::size_t R, std::size_t N, class F>
void for_each_outer(const axis_layout<R, N>& L, const std::array<std::size_t, R>& dims, std::size_t count, F f) {
    std::array<index_type, R> idx{};
    std::array<index_type, N> off{};
    for (;;) {
        f(off);
        std::size_t k = count;
        for (;;) {
            if (k == 0) return;
            --k;
            const std::size_t d = dims[k];
            ++idx[k];
            for (std::size_t i = 0; i < N; ++i) off[i] += L.strides[i][d];
            if (idx[k] < L.shape[d]) break;
            for (std::size_t i = 0; i < N; ++i) off[i] -= L.strides[i][d] * idx[k];
            idx[k] = 0;
        }
    }
}

/// True when a dimension other than the axis is empty: there is no line to run.
template <std::size_t R>
bool has_empty_outer(const extents_type<R>& shape, std::size_t axis) {
    for (std::size_t k = 0; k < R; ++k)
        if (k != axis && shape[k] == 0) return true;
    return false;
}

/// for_each_outer over every dimension but the axis: f(offsets) once per line along the axis.
template <std::size_t R, std::size_t N, class F>
void for_each_line(const axis_layout<R, N>& L, std::size_t axis, F f) {
    std::array<std::size_t, R> dims{};
    std::size_t count = 0;
    for (std::size_t k = 0; k < R; ++k)
        if (k != axis) dims[count++] = k;
    for_each_outer(L, dims, count, f);
}

template <class T, std::size_t N>
LOGITKIT_INLINE std::array<T*, N> at(const pointers<N>& base, const std::array<index_type, N>& off) noexcept {
    std::array<T*, N> p;
    // An empty input (e.g. logsumexp over an axis of extent 0) may have null data: no offset.
    for (std::size_t i = 0; i < N; ++i) p[i] = base[i] ? reinterpret_cast<T*>(base[i]) + off[i] : nullptr;
    return p;
}

template <class Arch, class T, int K, class Op, std::size_t N>
LOGITKIT_INLINE index_type run_column_blocks(const Op& op, std::array<T*, N> p, const std::array<index_type, N>& s,
                                             index_type n, index_type width, index_type j) {
    constexpr index_type W = batch<T, Arch>::size * K;
    for (; j + W <= width; j += W) {
        std::array<T*, N> q = p;
        for (auto& ptr : q) ptr += j;
        op.template cols<Arch, K>(q, s, n);
    }
    return j;
}

template <class Arch, class T, class Op, std::size_t R, std::size_t N>
void run_along_axis(const Op& op, const axis_layout<R, N>& L, std::size_t axis) {
    constexpr std::size_t last = N - 1;
    const index_type n = L.shape[axis];
    if (has_empty_outer<R>(L.shape, axis)) return;
    if (n == 0 && !Op::reduces) return;

    auto on_axis = [&](std::size_t i) { return (Op::reduces && i == last) ? index_type(1) : L.strides[i][axis]; };
    bool rows = true;
    for (std::size_t i = 0; i < N; ++i) rows = rows && (on_axis(i) == 1 || n <= 1);

    std::array<std::size_t, R> dims{};
    std::size_t count = 0;
    if (rows) {
        for_each_line(L, axis, [&](const std::array<index_type, N>& off) { op.template row<Arch>(at<T>(L.base, off), n); });
        return;
    }

    // The innermost dimension (other than the axis) along which every operand is contiguous.
    std::size_t inner = R;
    for (std::size_t k = R; k-- > 0;) {
        if (k == axis || L.shape[k] <= 1) continue;
        bool unit = true;
        for (std::size_t i = 0; i < N; ++i) unit = unit && L.strides[i][k] == 1;
        if (unit) {
            inner = k;
            break;
        }
    }
    if (inner != R) {
        for (std::size_t k = 0; k < R; ++k)
            if (k != axis && k != inner) dims[count++] = k;
        std::array<index_type, N> s;
        for (std::size_t i = 0; i < N; ++i) s[i] = (Op::reduces && i == last) ? 0 : L.strides[i][axis];
        const index_type width = L.shape[inner];
        for_each_outer(L, dims, count, [&](const std::array<index_type, N>& off) {
            const auto p = at<T>(L.base, off);
            index_type j = run_column_blocks<Arch, T, 4>(op, p, s, n, width, 0);
            j = run_column_blocks<Arch, T, 1>(op, p, s, n, width, j);
            run_column_blocks<scalar_arch, T, 1>(op, p, s, n, width, j);
        });
        return;
    }

    // Gather: copy each line into contiguous scratch, run the row kernel, scatter the outputs.
    std::vector<T> scratch(static_cast<std::size_t>(n) * N + 1);
    for_each_line(L, axis, [&](const std::array<index_type, N>& off) {
        const auto p = at<T>(L.base, off);
        std::array<T*, N> q;
        for (std::size_t i = 0; i < N; ++i) q[i] = scratch.data() + static_cast<std::size_t>(n) * i;
        for (std::size_t i = 0; i < Op::inputs; ++i)
            for (index_type r = 0; r < n; ++r) q[i][r] = p[i][r * L.strides[i][axis]];
        op.template row<Arch>(q, n);
        for (std::size_t i = Op::inputs; i < N; ++i) {
            if (Op::reduces && i == last) {
                *p[i] = *q[i];
                continue;
            }
            for (index_type r = 0; r < n; ++r) p[i][r * L.strides[i][axis]] = q[i][r];
        }
    });
}

/// run_along_axis for operands stored as S (bfloat16, float16) while the operation computes in
/// T (float): each line is widened into contiguous scratch, processed as a row, and its outputs
/// are rounded back once.
template <class Arch, class T, class S, class Op, std::size_t R, std::size_t N>
void run_converted(const Op& op, const axis_layout<R, N>& L, std::size_t axis) {
    constexpr std::size_t last = N - 1;
    const index_type n = L.shape[axis];
    if (has_empty_outer<R>(L.shape, axis)) return;
    if (n == 0 && !Op::reduces) return;
    std::vector<T> scratch(static_cast<std::size_t>(n) * N + 1);
    for_each_line(L, axis, [&](const std::array<index_type, N>& off) {
        const auto p = at<S>(L.base, off);
        std::array<T*, N> q;
        for (std::size_t i = 0; i < N; ++i) q[i] = scratch.data() + static_cast<std::size_t>(n) * i;
        for (std::size_t i = 0; i < Op::inputs; ++i) widen_line(p[i], L.strides[i][axis], n, q[i]);
        op.template row<Arch>(q, n);
        for (std::size_t i = Op::inputs; i < N; ++i) {
            if (Op::reduces && i == last)
                *p[i] = narrow<S>(*q[i]);
            else
                narrow_line(q[i], n, p[i], L.strides[i][axis]);
        }
    });
}

}  // namespace detail
}  // namespace logitkit
