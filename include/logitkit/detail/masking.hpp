// logitkit — masked and causal lines for softmax, log_softmax and their backward kernels.
// SPDX-License-Identifier: MIT
//
// A masked line is reduced to an unmasked one: the forward kernels write the masked input
// (masked elements -inf) into the output line, or into a scratch line when the output is not
// contiguous along the axis or is stored in another type (bfloat16, float16: the line is widened
// to float on the way in and rounded once on the way out), and run the row operation in place
// there; the backward kernels zero dy at masked elements first and zero dx there afterwards. A
// causal rule keeps a prefix of each line, so it only shortens the row and fills the rest,
// reading no mask memory; so does a bool mask line that keeps a prefix (a padding mask), found
// by reading the mask line.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "../reduced_precision.hpp"
#include "../tensor_view.hpp"
#include "dispatch.hpp"
#include "stages.hpp"

namespace logitkit {
namespace detail {

/// A mask view seen in the input's index space: broadcast dimensions have stride 0. M is bool
/// (true keeps the element) or the element type (added to the input; -inf masks the element).
template <class M, std::size_t R>
struct broadcast_mask {
    const M* data = nullptr;  // null: no mask view
    extents_type<R> strides{};
};

struct causal_rule {
    bool on = false;
    std::int64_t offset = 0;
    std::size_t query_axis = 0;

    /// The kept prefix of the line of query index q: keys j <= q + offset, within [0, n].
    index_type limit(index_type q, index_type n) const noexcept {
        if (!on || offset >= n) return n;
        if (offset < -q - 1) return 0;
        const index_type l = q + static_cast<index_type>(offset) + 1;
        return l < n ? l : n;
    }
};

template <class M>
LOGITKIT_INLINE bool mask_keeps(M m) noexcept {
    if constexpr (std::is_same<M, bool>::value)
        return m;
    else
        return widen(m) != -std::numeric_limits<compute_type_t<M>>::infinity();
}

/// z[j] = the masked input of element j (x / t, plus the additive mask), -inf where masked, for
/// j < n; returns how many elements are kept. Each combination is its own branch-free loop, and
/// contiguous x and mask their own instantiation, so that the compiler vectorises them.
template <bool Contiguous, bool Divide, class T, class S, class M>
index_type mask_line(const S* x, index_type xs, const M* m, index_type ms, index_type n, T t, T* z) noexcept {
    constexpr T ninf = -std::numeric_limits<T>::infinity();
    auto input = [&](index_type j) {
        const T v = widen(x[Contiguous ? j : j * xs]);
        return Divide ? v / t : v;
    };
    if (m == nullptr) {
        for (index_type j = 0; j < n; ++j) z[j] = input(j);
        return n;
    }
    // Select and count in separate loops, and bool read as its byte: so they vectorise.
    index_type kept = 0;
    if constexpr (std::is_same<M, bool>::value) {
        // The select as integer operations on the bits, keep = all ones where the byte is not
        // zero: they vectorise without mask registers, whose compare of 64 bytes and shifts into
        // each batch's mask took 3x the time of this loop (8x16x512x512 float under a padding
        // mask: the whole call takes half the time).
        using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        static_assert(sizeof(U) == sizeof(T), "mask_line: float or double");
        U ninf_bits;
        std::memcpy(&ninf_bits, &ninf, sizeof ninf);
        const unsigned char* b = reinterpret_cast<const unsigned char*>(m);
        for (index_type j = 0; j < n; ++j) {
            const T v = input(j);
            U bits;
            std::memcpy(&bits, &v, sizeof v);
            const U keep = ((U(b[Contiguous ? j : j * ms]) - 1) >> (8 * sizeof(U) - 1)) - 1;
            const U r = (bits & keep) | (ninf_bits & ~keep);
            std::memcpy(z + j, &r, sizeof r);
        }
        for (index_type j = 0; j < n; ++j) kept += b[Contiguous ? j : j * ms] != 0;
    } else {
        for (index_type j = 0; j < n; ++j) {
            const T mv = widen(m[Contiguous ? j : j * ms]);
            const T v = input(j) + mv;
            z[j] = (mv > ninf || mv != mv) ? v : ninf;  // mv != -inf, spelled so that it vectorises
        }
        for (index_type j = 0; j < n; ++j) kept += mask_keeps(m[Contiguous ? j : j * ms]) ? 1 : 0;
    }
    return kept;
}

template <class T, class S, class M>
index_type mask_line(const S* x, index_type xs, const M* m, index_type ms, index_type n, T t, T* z) noexcept {
    const bool contiguous = xs == 1 && (m == nullptr || ms == 1);
    if (t == T(1))
        return contiguous ? mask_line<true, false>(x, xs, m, ms, n, t, z) : mask_line<false, false>(x, xs, m, ms, n, t, z);
    return contiguous ? mask_line<true, true>(x, xs, m, ms, n, t, z) : mask_line<false, true>(x, xs, m, ms, n, t, z);
}

/// p where the bool mask line m[0, n) (stride ms) keeps m[0, p) and masks m[p, n); -1 where it
/// keeps some other pattern. A mask byte that is not zero keeps its element, as in mask_line.
inline index_type kept_prefix(const bool* m, index_type ms, index_type n) noexcept {
    const unsigned char* b = reinterpret_cast<const unsigned char*>(m);
    if (n == 0) return 0;
    if (ms == 0) return b[0] != 0 ? n : 0;
    if (ms != 1) return -1;
    const void* first_masked = std::memchr(b, 0, static_cast<std::size_t>(n));
    if (first_masked == nullptr) return n;
    const index_type p = static_cast<const unsigned char*>(first_masked) - b;
    // Any byte kept past p, eight at a time.
    std::uint64_t kept = 0;
    index_type j = p;
    for (; j + 8 <= n; j += 8) {
        std::uint64_t w;
        std::memcpy(&w, b + j, sizeof w);
        kept |= w;
    }
    for (; j < n; ++j) kept |= b[j];
    return kept == 0 ? p : -1;
}

/// A bool mask line that keeps a prefix of the line's first `limit` elements (keys padded at the
/// end, as most padding masks are) only shortens the line, as the causal rule does: limit
/// becomes the prefix's length and m null, so that the line runs as an unmasked one and its
/// masked input is never copied.
template <class M>
void take_kept_prefix(const M*& m, index_type ms, index_type& limit) noexcept {
    if constexpr (std::is_same<M, bool>::value) {
        if (m == nullptr) return;
        const index_type p = kept_prefix(m, ms, limit);
        if (p >= 0) {
            limit = p;
            m = nullptr;
        }
    } else {
        (void)ms;
        (void)limit;
    }
}

/// The layout of a masked call: the tensor operands, then the mask, then a pseudo-operand whose
/// offset is the query index (stride 1 along the query axis, 0 elsewhere).
template <std::size_t R, std::size_t N, class M>
axis_layout<R, N + 2> masked_layout(const axis_layout<R, N>& L, const broadcast_mask<M, R>& mask,
                                    const causal_rule& causal) {
    axis_layout<R, N + 2> out;
    out.shape = L.shape;
    for (std::size_t i = 0; i < N; ++i) {
        out.strides[i] = L.strides[i];
        out.base[i] = L.base[i];
    }
    out.strides[N] = mask.strides;
    out.base[N] = nullptr;
    out.strides[N + 1] = extents_type<R>{};
    if (causal.on) out.strides[N + 1][causal.query_axis] = 1;
    out.base[N + 1] = nullptr;
    return out;
}

template <class S, class T>
void fill_line(S* p, index_type stride, index_type from, index_type to, T v) noexcept {
    const S w = narrow<S>(v);
    for (index_type j = from; j < to; ++j) p[j * stride] = w;
}

/// softmax or log_softmax (Op, computing in T) of x / t along `axis` into y, x stored as SX and
/// y as SY, under a mask and/or a causal rule. A line with no kept element is filled with Op's
/// masked value (0 or -inf); otherwise masked elements get that value and the kept ones follow
/// the unmasked rules.
template <class Arch, template <class, class> class Op, class T, class SX, class SY, class M, std::size_t R>
void run_masked_forward(const axis_layout<R, 2>& xy, const broadcast_mask<M, R>& mask, const causal_rule& causal,
                        std::size_t axis, T t, executor* ex) {
    const index_type n = xy.shape[axis];
    if (n == 0 || has_empty_outer<R>(xy.shape, axis)) return;
    const auto L = masked_layout(xy, mask, causal);
    const index_type xs = xy.strides[0][axis], ys = xy.strides[1][axis], ms = mask.strides[axis];
    using plain = Op<T, identity_input>;
    constexpr T fill = plain::masked_value;
    // The row runs in y itself when y holds T contiguously along the axis.
    const bool in_y = std::is_same<SY, T>::value && ys == 1;
    for_each_line_with_scratch<T>(L, axis, ex, in_y ? 0 : static_cast<std::size_t>(n),
                                  [&](const std::array<index_type, 4>& off, T* scratch) {
        const SX* x = reinterpret_cast<const SX*>(L.base[0]) + off[0];
        SY* y = reinterpret_cast<SY*>(L.base[1]) + off[1];
        const M* m = mask.data ? mask.data + off[2] : nullptr;
        index_type limit = causal.limit(off[3], n);
        take_kept_prefix(m, ms, limit);
        if (m == nullptr && xs == 1 && ys == 1) {
            // The causal rule alone (or a prefix) on contiguous lines: the kept prefix is an
            // unmasked row, read and written as stored (see run_converted_forward), softmax's
            // exponentials in scratch where y is not T.
            if (limit > 0) {
                const converted_line<SX, SY> line{x, y};
                if (t == T(1))
                    plain{identity_input{}}.template rows<Arch>(&line, 1, limit, scratch);
                else
                    Op<T, divide_input<T>>{divide_input<T>{t}}.template rows<Arch>(&line, 1, limit, scratch);
            }
            fill_line(y, 1, limit, n, fill);
            return;
        }
        T* z = in_y ? reinterpret_cast<T*>(y) : scratch;
        const index_type kept = mask_line(x, xs, m, ms, limit, t, z);
        if (kept == 0) {
            fill_line(y, ys, 0, n, fill);
            return;
        }
        plain{identity_input{}}.template row<Arch>(std::array<T*, 2>{z, z}, limit);
        if (kept < limit) {
            // A kept NaN or +inf makes the row NaN; masked elements still get the masked value.
            index_type first = 0;
            while (!mask_keeps(m[first * ms])) ++first;
            if (std::isnan(z[first]))
                for (index_type j = 0; j < limit; ++j)
                    if (!mask_keeps(m[j * ms])) z[j] = fill;
        }
        if (!in_y) convert_line<Arch>(z, 1, y, ys, limit);
        fill_line(y, ys, limit, n, fill);
    });
}

/// softmax_backward or log_softmax_backward (Op, computing in T) with y, dy and dx stored as S,
/// under a mask and/or a causal rule, divided by the temperature t: masked elements of y and dy
/// are ignored and dx is 0 there.
template <class Arch, class Op, class T, class S, class M, std::size_t R>
void run_masked_backward(const axis_layout<R, 3>& ydydx, const broadcast_mask<M, R>& mask, const causal_rule& causal,
                         std::size_t axis, T t, executor* ex) {
    const index_type n = ydydx.shape[axis];
    if (n == 0 || has_empty_outer<R>(ydydx.shape, axis)) return;
    const auto L = masked_layout(ydydx, mask, causal);
    const index_type ys = ydydx.strides[0][axis], dys = ydydx.strides[1][axis], dxs = ydydx.strides[2][axis];
    const index_type ms = mask.strides[axis];
    constexpr bool stored_as_t = std::is_same<S, T>::value;
    for_each_line_with_scratch<T>(L, axis, ex, static_cast<std::size_t>(n) * 3,
                                  [&](const std::array<index_type, 5>& off, T* scratch) {
        T* const y_buf = scratch;
        T* const dy_buf = y_buf + n;
        T* const dx_buf = dy_buf + n;
        const S* y = reinterpret_cast<const S*>(L.base[0]) + off[0];
        const S* dy = reinterpret_cast<const S*>(L.base[1]) + off[1];
        S* dx = reinterpret_cast<S*>(L.base[2]) + off[2];
        const M* m = mask.data ? mask.data + off[3] : nullptr;
        index_type limit = causal.limit(off[4], n);
        take_kept_prefix(m, ms, limit);
        // Masked elements of y and dy are not read: y there is what the forward wrote (0 or
        // -inf), dy is 0, so they take no part in the line's sum.
        index_type kept = limit;
        const T* yz = y_buf;
        const T* dyz = dy_buf;
        if (m != nullptr) {
            kept = 0;
            for (index_type j = 0; j < limit; ++j) {
                const bool keep = mask_keeps(m[j * ms]);
                y_buf[j] = keep ? widen(y[j * ys]) : Op::masked_value;
                dy_buf[j] = keep ? widen(dy[j * dys]) : T(0);
                kept += keep ? 1 : 0;
            }
        } else {
            if (stored_as_t && ys == 1)
                yz = reinterpret_cast<const T*>(y);
            else
                convert_line<Arch>(y, ys, y_buf, 1, limit);
            if (stored_as_t && dys == 1)
                dyz = reinterpret_cast<const T*>(dy);
            else
                convert_line<Arch>(dy, dys, dy_buf, 1, limit);
        }
        if (kept == 0) {
            fill_line(dx, dxs, 0, n, T(0));
            return;
        }
        const bool in_dx = stored_as_t && dxs == 1;
        T* dxz = in_dx ? reinterpret_cast<T*>(dx) : dx_buf;
        Op{}.template row<Arch>(std::array<T*, 3>{const_cast<T*>(yz), const_cast<T*>(dyz), dxz}, limit);
        if (m != nullptr && kept < limit)
            for (index_type j = 0; j < limit; ++j)
                if (!mask_keeps(m[j * ms])) dxz[j] = T(0);
        if (t != T(1))
            for (index_type j = 0; j < limit; ++j) dxz[j] = dxz[j] / t;
        if (!in_dx) convert_line<Arch>(dxz, 1, dx, dxs, limit);
        fill_line(dx, dxs, limit, n, T(0));
    });
}

}  // namespace detail
}  // namespace logitkit
