// logitkit — fused softmax cross-entropy: line stages, per-sample terms and their dispatch.
// SPDX-License-Identifier: MIT
//
// A sample is one line of logits along the class axis. Its loss and gradient take two reads of the
// line:
//   1. stats — one pass for the maximum M and S = sum(exp(x - M)) together ("online"): each lane
//      keeps the sum relative to a reference that only moves when an element exceeds it by more
//      than a headroom (64 for float, 512 for double), so exp never overflows, and rescaling is
//      rare and exact in its argument. The exponentials are those of the softmax kernels
//      (exp_shifted: the rounding of x - ref is fed back into exp).
//   2. terms — the gradient pass g = alpha * exp(x - M) + gamma * w (class indices) or
//      alpha * exp(x - M) - coef * a (probabilities), which also sums the label-smoothing or
//      soft-target term sum(a * (M - x)) when the loss needs it. When neither a gradient nor such a
//      term is needed (class indices, no label smoothing), the line is read once.
// With every sample written as
//   loss = sum_c a_c * (lse - x_c) + z * lse^2,     lse = M + log(S),
// where a_c are the sample's class coefficients (a_t = w_t for a class index t without smoothing),
// the loss is A * log(S) + sum_c a_c * (M - x_c) + z * lse^2 with A = sum_c a_c: every term is >= 0
// for non-negative weights, so nothing cancels whatever the magnitude of the logits, and
//   d(loss)/d(x_c) = (A + 2 z lse) * p_c - a_c,     p_c = exp(x_c - M) / S.
// Lines are contiguous (rows), strided along the class axis with another contiguous dimension
// (columns: vectorised across that dimension, one sample per lane), or gathered into scratch.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "../tensor_view.hpp"
#include "dispatch.hpp"
#include "exp.hpp"
#include "log.hpp"
#include "loss_common.hpp"
#include "simd.hpp"
#include "stages.hpp"

namespace logitkit {
namespace detail {
namespace xent {

/// How far an element may exceed a lane's reference before the reference moves: exp(headroom)
/// times the number of elements of a lane stays far below the largest finite value.
template <class T>
struct headroom;
template <>
struct headroom<float> {
    static constexpr float value = 64.0f;
};
template <>
struct headroom<double> {
    static constexpr double value = 512.0;
};

template <class V>
LOGITKIT_INLINE auto nonzero(const V& v) noexcept {
    const V zero(typename V::value_type(0));
    return (v < zero) | (v > zero);
}

/// Sums whose terms may be infinite (a -inf logit with a non-zero coefficient): the finite terms go
/// to the compensated sum of the caller (whose error terms an infinity would turn into NaN), the
/// infinite ones to a plain sum here, where inf + inf = inf and inf - inf = NaN as IEEE says.
template <class V>
struct infinite_part {
    V sum = V(typename V::value_type(0));
    /// Returns t with its infinite lanes replaced by 0, after adding them to `sum`.
    LOGITKIT_INLINE V split(const V& t) noexcept {
        using T = typename V::value_type;
        const V big(std::numeric_limits<T>::max());
        const auto inf = (t > big) | (t < -big);
        sum = sum + simd::select(inf, t, V(T(0)));
        return simd::select(inf, V(T(0)), t);
    }
    double total() const noexcept { return compensated_sum<V>::lanes_sum(sum); }
};

/// Per lane: the finite part (compensated_sum::lanes, which leaves out c once s overflows, as
/// the row paths do) plus the split-off infinite part.
template <class V>
void add_lanes(const compensated_sum<V>& finite, const infinite_part<V>& inf, double* out) noexcept {
    finite.lanes(out);
    typename V::value_type f[V::size];
    simd::store(f, inf.sum);
    for (std::size_t l = 0; l < V::size; ++l) out[l] += static_cast<double>(f[l]);
}

/// Per-lane state of the one-pass maximum and sum of exponentials: the lane's sum is
/// sum(exp(x - ref)), and ref only moves up, by more than the headroom at a time.
template <class V>
struct online_lanes {
    using T = typename V::value_type;
    V max = V(-std::numeric_limits<T>::infinity());
    V ref = V(std::numeric_limits<T>::lowest());
    compensated_sum<V> acc;

    /// Takes a batch of candidates (one per lane) before their exponentials are added: the lanes
    /// where a candidate exceeds ref + headroom move ref to it and rescale their sums, including
    /// the partial sums the caller holds.
    template <class... P>
    LOGITKIT_INLINE void observe(const V& cand, P&... partials) noexcept {
        max = simd::max(max, cand);
        const V lim = ref + V(headroom<T>::value);
        if (simd::all(cand <= lim)) return;  // NaN candidates come here too, and move nothing
        const auto up = cand > lim;
        const V next = simd::select(up, cand, ref);
        const V f = simd::select(up, exp_shifted<true>(ref, next), V(T(1)));
        acc.s = acc.s * f;
        acc.c = acc.c * f;
        ((partials = partials * f), ...);
        ref = next;
    }
};

/// The maximum of a line, the sum of exp(x - max), and a second sum taken in the same pass.
template <class T>
struct line_stats {
    T max;         // NaN when the line holds a NaN that the maximum kept
    double sum;    // sum(exp(x - max)); NaN when the line holds a NaN; unused when max is not finite
    double extra;  // the optional second sum (soft targets: sum of w * q)
    bool in_range = false;  // every x - max in the exponential's fast range (see exp_mode)
    // The sum of the exponentials stats stored (its `exps`): sum, or sum(exp(x)) where the line
    // took them unshifted, exps then holding exp(x).
    double exps_sum = 0;
};

/// Per lane, (s + c) * exp(ref - m) in double: the lanes' sums brought to the reference m.
/// exp_shifted feeds the rounding of ref - m back into the exponential. With m >= every lane's
/// reference the factors are in [0, 1]; a lane that held a NaN keeps its NaN sum (its running
/// maximum may have lost the NaN, but its sum has not). Lanes of a line whose maximum is not finite
/// may come out as NaN or infinite: such a line's loss is NaN anyway (see lse_of).
template <class V>
LOGITKIT_INLINE void lane_sums_at(const online_lanes<V>& st, const V& m, double* out) noexcept {
    using T = typename V::value_type;
    const V f = exp_shifted<true>(st.ref, m);
    T s[V::size], c[V::size];
    simd::store(s, st.acc.s * f);
    simd::store(c, st.acc.c * f);
    for (std::size_t l = 0; l < V::size; ++l) out[l] = static_cast<double>(s[l]) + static_cast<double>(c[l]);
}

/// No second sum.
struct no_extra {
    static constexpr bool active = false;
    template <class V>
    LOGITKIT_INLINE V term(index_type) const noexcept {
        return V(typename V::value_type(0));
    }
    template <class V>
    LOGITKIT_INLINE V tail(index_type, std::size_t) const noexcept {
        return V(typename V::value_type(0));
    }
    template <class V>
    LOGITKIT_INLINE V col_term(index_type, index_type) const noexcept {
        return V(typename V::value_type(0));
    }
};

/// sum(w_c * q_c) (sum(q_c) without weights) of a soft-target line, along with the stats pass.
/// Rows: q contiguous, w contiguous. Columns: q at q + r * sq + lane, w[r].
template <class T, bool Weighted>
struct target_mass {
    static constexpr bool active = true;
    const T* q;
    index_type sq;
    const T* w;
    template <class V>
    LOGITKIT_INLINE V term(index_type i) const noexcept {
        if constexpr (Weighted)
            return simd::load<V>(q + i) * simd::load<V>(w + i);
        else
            return simd::load<V>(q + i);
    }
    template <class V>
    LOGITKIT_INLINE V tail(index_type i, std::size_t rem) const noexcept {
        if constexpr (Weighted)
            return simd::load_partial<V>(q + i, rem, T(0)) * simd::load_partial<V>(w + i, rem, T(0));
        else
            return simd::load_partial<V>(q + i, rem, T(0));
    }
    template <class V>
    LOGITKIT_INLINE V col_term(index_type r, index_type lane) const noexcept {
        if constexpr (Weighted)
            return simd::load<V>(q + r * sq + lane) * V(w[r]);
        else
            return simd::load<V>(q + r * sq + lane);
    }
};

// ---------------------------------------------------------------------------------------------
// Stage 1: maximum and sum of exponentials in one pass.
// ---------------------------------------------------------------------------------------------
namespace row {

/// A non-null `next` (the next line's logits) is prefetched by the exact-sum pass. A non-null
/// `exps` receives the exponentials when the line is in range (the result's in_range): exp(x - max),
/// or exp(x) (see exps_sum).
template <class Arch, class T, class Extra>
line_stats<T> stats(const T* x, index_type n, const Extra& extra, const T* next = nullptr,
                    T* exps = nullptr) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    const V zero(T(0));
    if constexpr (!Extra::active) {
        // A short line is held in registers (see row::with_short_line in stages.hpp).
        line_stats<T> st;
        if (detail::row::with_short_line<Arch, T>(n, [&](auto B) {
                const auto l = detail::row::shifted_exp_short<Arch, decltype(B)::value>(x, n, identity_input{});
                if (exps != nullptr) detail::row::store_short(exps, n, l.e);
                st = {l.shift.m, l.sum, 0, detail::row::in_fast_range_short(l.v, l.shift.m), l.sum};
            }))
            return st;
        // A line of unshifted logits (every |x| <= unshifted_limit, as most are) takes exp(x)
        // first, its range on the way (as line_exp_sum), which spares it the range's own pass.
        // S = sum(exp(x)) * exp(-max): each exp(x) is within the exponential's bound, x being
        // exact, so that sum(exp(x)) keeps the 16 u of coarse_log_sum, and the scaling, in double,
        // adds two roundings of double (nothing for float; for double, within the factor of 2
        // that coarse_log_sum leaves). S is at least 1 (the maximum's term), where the rounding
        // of exp(max) may have left it just under.
        double su;
        row_range<T> r;
        const bool unshifted =
            exps != nullptr
                ? detail::row::unshifted_exp_sum<Arch, true>(x, exps, n, identity_input{}, su, next,
                                                             detail::row::along_nothing{}, &r)
                : detail::row::unshifted_exp_sum<Arch, false>(x, static_cast<T*>(nullptr), n, identity_input{}, su,
                                                              next, detail::row::along_nothing{}, &r);
        if (unshifted)
            return {r.max, std::max(1.0, su * std::exp(-static_cast<double>(r.max))), 0,
                    exp_mode_for(r, r.max, identity_input{}) != exp_mode::checked, su};
    }
    // A row whose range keeps every x - max in the exponential's fast range (the common case)
    // takes two passes, its range and then the exact sum in the faster exp mode; any other row
    // the one-pass online maximum below, which never overflows whatever the row holds.
    const row_range<T> range = detail::row::reduce_range<Arch>(x, n);
    const exp_mode mode = exp_mode_for(range, range.max, identity_input{});
    if (mode != exp_mode::checked) {
        const double sum =
            exps != nullptr
                ? detail::row::exp_sum<Arch, true, true>(x, exps, n, range.max, identity_input{}, mode, next)
                : detail::row::exp_sum<Arch, false, true>(x, static_cast<T*>(nullptr), n, range.max,
                                                          identity_input{}, mode, next);
        double e = 0;
        if constexpr (Extra::active)
            e = accumulate<V>(
                n, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return extra.template term<V>(i); },
                [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE { return extra.template tail<V>(i, rem); });
        return {range.max, sum, e, true, sum};
    }
    online_lanes<V> st;
    compensated_sum<V> ex;
    index_type i = 0;
    while (i + 4 * W <= n) {
        V a0 = zero, a1 = zero, a2 = zero, a3 = zero;
        [[maybe_unused]] V b0 = zero, b1 = zero, b2 = zero, b3 = zero;
        const index_type end = i + std::min<index_type>((n - i) / (4 * W), block_batches) * 4 * W;
        for (; i < end; i += 4 * W) {
            const V x0 = simd::load<V>(x + i);
            const V x1 = simd::load<V>(x + i + W);
            const V x2 = simd::load<V>(x + i + 2 * W);
            const V x3 = simd::load<V>(x + i + 3 * W);
            st.observe(simd::max(simd::max(x0, x1), simd::max(x2, x3)), a0, a1, a2, a3);
            a0 = a0 + exp_shifted<true>(x0, st.ref);
            a1 = a1 + exp_shifted<true>(x1, st.ref);
            a2 = a2 + exp_shifted<true>(x2, st.ref);
            a3 = a3 + exp_shifted<true>(x3, st.ref);
            if constexpr (Extra::active) {
                b0 = b0 + extra.template term<V>(i);
                b1 = b1 + extra.template term<V>(i + W);
                b2 = b2 + extra.template term<V>(i + 2 * W);
                b3 = b3 + extra.template term<V>(i + 3 * W);
            }
        }
        st.acc.add((a0 + a1) + (a2 + a3));
        if constexpr (Extra::active) ex.add((b0 + b1) + (b2 + b3));
    }
    for (; i + W <= n; i += W) {
        const V x0 = simd::load<V>(x + i);
        st.observe(x0);
        st.acc.add(exp_shifted<true>(x0, st.ref));
        if constexpr (Extra::active) ex.add(extra.template term<V>(i));
    }
    if (i < n) {
        const auto rem = static_cast<std::size_t>(n - i);
        // Padding lanes hold -inf: exp(-inf - ref) = 0 for any reference.
        const V x0 = simd::load_partial<V>(x + i, rem, -std::numeric_limits<T>::infinity());
        st.observe(x0);
        st.acc.add(exp_shifted<true>(x0, st.ref));
        if constexpr (Extra::active) ex.add(extra.template tail<V>(i, rem));
    }

    T mx[W];
    simd::store(mx, st.max);
    T m = -std::numeric_limits<T>::infinity();
    bool nan = false;
    for (index_type l = 0; l < W; ++l) {
        if (std::isnan(mx[l]))
            nan = true;
        else if (mx[l] > m)
            m = mx[l];
    }
    const double e = Extra::active ? ex.total() : 0.0;
    // A line whose maximum is not finite has a NaN loss whatever its sum (see lse_of).
    if (nan || !std::isfinite(m)) return {nan ? std::numeric_limits<T>::quiet_NaN() : m, 0.0, e};
    double lanes[W];
    lane_sums_at(st, V(m), lanes);
    double sum = 0;
    for (index_type l = 0; l < W; ++l) sum += lanes[l];
    return {m, sum, e};
}

}  // namespace row

namespace col {

/// Stats of K * W adjacent columns (one sample per lane): line r of lane l at x + r * sx + l.
template <class Arch, int K, class T, class Extra>
void stats(const T* x, index_type sx, index_type n, const Extra& extra, T* m, double* sum, double* e) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    const V zero(T(0));
    online_lanes<V> st[K];
    compensated_sum<V> ex[K];
    index_type r = 0;
    while (r < n) {
        V blk[K];
        [[maybe_unused]] V eb[K];
        for (int k = 0; k < K; ++k) blk[k] = eb[k] = zero;
        const index_type end = std::min(n, r + block_batches);
        for (; r < end; ++r) {
            for (int k = 0; k < K; ++k) {
                const V xv = simd::load<V>(x + r * sx + k * W);
                st[k].observe(xv, blk[k]);
                blk[k] = blk[k] + exp_shifted<true>(xv, st[k].ref);
                if constexpr (Extra::active) eb[k] = eb[k] + extra.template col_term<V>(r, k * W);
            }
        }
        for (int k = 0; k < K; ++k) {
            st[k].acc.add(blk[k]);
            if constexpr (Extra::active) ex[k].add(eb[k]);
        }
    }
    for (int k = 0; k < K; ++k) {
        simd::store(m + k * W, st[k].max);
        // Each lane at its own maximum (a -inf or NaN maximum: see lse_of).
        lane_sums_at(st[k], st[k].max, sum + k * W);
        ex[k].lanes(e + k * W);
    }
}

}  // namespace col

// ---------------------------------------------------------------------------------------------
// Stage 2: the gradient and the smoothing / soft-target sum.
// ---------------------------------------------------------------------------------------------
namespace row {

/// The exp mode of the gradient pass: in_range when the stats pass found the row in range.
template <bool InRange>
constexpr exp_mode pass_mode = InRange ? exp_mode::in_range : exp_mode::checked;

/// Class indices: g = alpha * exp(x - m) + gamma * w (gamma without weights), stored when Store;
/// returns sum(w * (m - x)) over the classes of non-zero weight when Smooth, else 0.
template <class Arch, bool Store, bool Smooth, bool Weighted, bool InRange, class T>
double hard_pass(const T* x, T* g, const T* w, index_type n, T m, T alpha, T gamma) noexcept {
    using V = batch<T, Arch>;
    const V vm(m), va(alpha), vg(gamma), zero(T(0));
    auto grad = [&](const V& xv, const V& wv) LOGITKIT_LAMBDA_INLINE {
        const V e = exp_shifted<true, pass_mode<InRange>>(xv, vm);
        if constexpr (Weighted)
            return simd::fma(vg, wv, va * e);
        else
            return simd::fma(va, e, vg);
    };
    auto smooth = [&](const V& xv, const V& wv) {
        const V d = vm - xv;
        if constexpr (Weighted)
            return simd::select(nonzero(wv), wv * d, zero);
        else
            return d;
    };
    auto weights = [&](index_type i) { return Weighted ? simd::load<V>(w + i) : zero; };
    // Padding lanes: x = m and w = 0, so that they add nothing.
    auto weights_tail = [&](index_type i, std::size_t rem) {
        return Weighted ? simd::load_partial<V>(w + i, rem, T(0)) : zero;
    };
    if constexpr (!Smooth) {
        static_assert(Store, "a pass with neither output is never run");
        for_each_batch<V::size>(
            n, [&](index_type i) { simd::store(g + i, grad(simd::load<V>(x + i), weights(i))); },
            [&](index_type i, std::size_t rem) {
                simd::store_partial(g + i, grad(simd::load_partial<V>(x + i, rem, m), weights_tail(i, rem)), rem);
            });
        return 0;
    } else {
        infinite_part<V> infs;
        const double finite = accumulate<V>(
            n,
            [&](index_type i) {
                const V xv = simd::load<V>(x + i);
                const V wv = weights(i);
                if constexpr (Store) simd::store(g + i, grad(xv, wv));
                return infs.split(smooth(xv, wv));
            },
            [&](index_type i, std::size_t rem) {
                const V xv = simd::load_partial<V>(x + i, rem, m);
                const V wv = weights_tail(i, rem);
                if constexpr (Store) simd::store_partial(g + i, grad(xv, wv), rem);
                return infs.split(smooth(xv, wv));
            });
        return finite + infs.total();
    }
}

/// hard_pass's gradient (without smoothing) from the exponentials the stats pass stored:
/// g = alpha * e + gamma * w, the same operations on the same values; with Stream written by
/// write_row's streamed path.
template <class Arch, bool Weighted, bool Stream, class T>
void hard_grad(const T* e, T* g, const T* w, index_type n, T alpha, T gamma) noexcept {
    using V = batch<T, Arch>;
    const V va(alpha), vg(gamma);
    auto grad = [&](const V& ev, const V& wv) LOGITKIT_LAMBDA_INLINE {
        if constexpr (Weighted)
            return simd::fma(vg, wv, va * ev);
        else
            return simd::fma(va, ev, vg);
    };
    write_row<V, Stream>(
        g, n, next_line<T>{},
        [&](index_type i) LOGITKIT_LAMBDA_INLINE {
            return grad(simd::load<V>(e + i), Weighted ? simd::load<V>(w + i) : V(T(0)));
        },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
            return grad(simd::load_partial<V>(e + i, rem, T(0)),
                        Weighted ? simd::load_partial<V>(w + i, rem, T(0)) : V(T(0)));
        });
}

/// Probabilities: a = w * (keep * q + spread); g = alpha * exp(x - m) + beta * a when Store;
/// returns sum(a * (m - x)) over the classes with a != 0.
template <class Arch, bool Store, bool Weighted, bool InRange, class T>
double soft_pass(const T* x, const T* q, T* g, const T* w, index_type n, T m, T alpha, T beta, T keep,
                 T spread) noexcept {
    using V = batch<T, Arch>;
    const V vm(m), va(alpha), vb(beta), vk(keep), vs(spread), zero(T(0));
    auto coefficient = [&](const V& qv, const V& wv) {
        const V a = simd::fma(qv, vk, vs);
        if constexpr (Weighted)
            return a * wv;
        else {
            (void)wv;
            return a;
        }
    };
    infinite_part<V> infs;
    auto body = [&](const V& xv, const V& a) { return infs.split(simd::select(nonzero(a), a * (vm - xv), zero)); };
    const double finite = accumulate<V>(
        n,
        [&](index_type i) {
            const V xv = simd::load<V>(x + i);
            const V a = coefficient(simd::load<V>(q + i), Weighted ? simd::load<V>(w + i) : zero);
            if constexpr (Store) simd::store(g + i, simd::fma(va, exp_shifted<true, pass_mode<InRange>>(xv, vm), vb * a));
            return body(xv, a);
        },
        [&](index_type i, std::size_t rem) {
            // Padding lanes: x = m, q = 0, w = 0: a * (m - x) = 0.
            const V xv = simd::load_partial<V>(x + i, rem, m);
            const V a = coefficient(simd::load_partial<V>(q + i, rem, T(0)),
                                    Weighted ? simd::load_partial<V>(w + i, rem, T(0)) : zero);
            if constexpr (Store) simd::store_partial(g + i, simd::fma(va, exp_shifted<true>(xv, vm), vb * a), rem);
            return body(xv, a);
        });
    return finite + infs.total();
}

}  // namespace row

namespace col {

/// Class indices over K * W columns: per lane, g = alpha * exp(x - m) + gamma * w[r], zero in the
/// lanes whose `active` is 0; sum(w[r] * (m - x)) per lane into smooth when Smooth.
template <class Arch, int K, bool Store, bool Smooth, bool Weighted, class T>
void hard_pass(const T* x, index_type sx, T* g, index_type sg, const T* w, index_type n, const T* m, const T* alpha,
               const T* gamma, const T* active, double* smooth) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    const V zero(T(0));
    V vm[K], va[K], vg[K], vact[K];
    for (int k = 0; k < K; ++k) {
        vm[k] = simd::load<V>(m + k * W);
        va[k] = simd::load<V>(alpha + k * W);
        vg[k] = simd::load<V>(gamma + k * W);
        vact[k] = simd::load<V>(active + k * W);
    }
    compensated_sum<V> acc[K];
    [[maybe_unused]] infinite_part<V> infs[K];
    index_type r = 0;
    while (r < n) {
        V blk[K];
        for (int k = 0; k < K; ++k) blk[k] = zero;
        const index_type end = std::min(n, r + block_batches);
        for (; r < end; ++r) {
            const T wr = Weighted ? w[r] : T(1);
            for (int k = 0; k < K; ++k) {
                const V xv = simd::load<V>(x + r * sx + k * W);
                if constexpr (Store) {
                    const V gv = simd::fma(va[k], exp_shifted<true>(xv, vm[k]), vg[k] * V(wr));
                    simd::store(g + r * sg + k * W, simd::select(vact[k] > zero, gv, zero));
                }
                if constexpr (Smooth) {
                    if (wr != T(0)) blk[k] = blk[k] + infs[k].split(V(wr) * (vm[k] - xv));
                }
            }
        }
        if constexpr (Smooth)
            for (int k = 0; k < K; ++k) acc[k].add(blk[k]);
    }
    if constexpr (Smooth) {
        for (int k = 0; k < K; ++k) add_lanes(acc[k], infs[k], smooth + k * W);
    }
}

/// hard_pass's gradient (without smoothing) from the exponentials exp_sum stored in g: per lane,
/// g = alpha * e + gamma * w[r], zero in the lanes whose `active` is 0; the same operations on
/// the same values.
template <class Arch, int K, bool Weighted, class T>
void hard_grad(T* g, index_type sg, const T* w, index_type n, const T* alpha, const T* gamma,
               const T* active) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    const V zero(T(0));
    V va[K], vg[K], vact[K];
    for (int k = 0; k < K; ++k) {
        va[k] = simd::load<V>(alpha + k * W);
        vg[k] = simd::load<V>(gamma + k * W);
        vact[k] = simd::load<V>(active + k * W);
    }
    for (index_type r = 0; r < n; ++r) {
        const T wr = Weighted ? w[r] : T(1);
        for (int k = 0; k < K; ++k) {
            T* q = g + r * sg + k * W;
            const V gv = simd::fma(va[k], simd::load<V>(q), vg[k] * V(wr));
            simd::store(q, simd::select(vact[k] > zero, gv, zero));
        }
    }
}

/// Probabilities over K * W columns: a = w[r] * (keep * q + spread); g = alpha * exp(x - m) +
/// beta * a per lane when Store; sum(a * (m - x)) per lane into sums.
template <class Arch, int K, bool Store, bool Weighted, class T>
void soft_pass(const T* x, index_type sx, const T* q, index_type sq, T* g, index_type sg, const T* w, index_type n,
               const T* m, const T* alpha, const T* beta, T keep, T spread, double* sums) noexcept {
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    const V zero(T(0)), vk(keep), vs(spread);
    V vm[K], va[K], vb[K];
    for (int k = 0; k < K; ++k) {
        vm[k] = simd::load<V>(m + k * W);
        va[k] = simd::load<V>(alpha + k * W);
        vb[k] = simd::load<V>(beta + k * W);
    }
    compensated_sum<V> acc[K];
    infinite_part<V> infs[K];
    index_type r = 0;
    while (r < n) {
        V blk[K];
        for (int k = 0; k < K; ++k) blk[k] = zero;
        const index_type end = std::min(n, r + block_batches);
        for (; r < end; ++r) {
            const V wr(Weighted ? w[r] : T(1));
            for (int k = 0; k < K; ++k) {
                const V xv = simd::load<V>(x + r * sx + k * W);
                V a = simd::fma(simd::load<V>(q + r * sq + k * W), vk, vs);
                if constexpr (Weighted) a = a * wr;
                if constexpr (Store)
                    simd::store(g + r * sg + k * W, simd::fma(va[k], exp_shifted<true>(xv, vm[k]), vb[k] * a));
                blk[k] = blk[k] + infs[k].split(simd::select(nonzero(a), a * (vm[k] - xv), zero));
            }
        }
        for (int k = 0; k < K; ++k) acc[k].add(blk[k]);
    }
    for (int k = 0; k < K; ++k) add_lanes(acc[k], infs[k], sums + k * W);
}

}  // namespace col

// ---------------------------------------------------------------------------------------------
// Per-sample terms.
// ---------------------------------------------------------------------------------------------

/// What every sample of a call shares.
template <class T>
struct setup {
    index_type classes = 0;
    const T* weight = nullptr;  // contiguous, one per class; null for all 1
    double weight_sum = 0;      // sum of the weights (the number of classes without weights)
    double smoothing = 0;       // label smoothing epsilon
    double z = 0;               // z-loss coefficient
    std::int64_t ignore_index = -100;
    bool grad = false;  // write the gradient

    double w(std::int64_t c) const noexcept {
        return weight ? static_cast<double>(weight[static_cast<std::size_t>(c)]) : 1.0;
    }
    double keep() const noexcept { return 1.0 - smoothing; }
    double spread() const noexcept { return smoothing / static_cast<double>(classes); }
};

/// log-sum-exp of a line from its stats; NaN when the maximum is not finite or the sum is NaN (a
/// NaN, a +inf or only -inf in the line: log_softmax is NaN there, and so is the loss).
/// log_sum is log(st.sum), which the loss uses again.
template <class T>
double lse_of(const line_stats<T>& st, double log_sum) noexcept {
    if (!std::isfinite(st.max)) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(st.max) + log_sum;
}

/// The class mass A = sum_c a_c of a sample with class index t.
template <class T>
double hard_mass(const setup<T>& p, std::int64_t t) noexcept {
    return p.keep() * p.w(t) + p.spread() * p.weight_sum;
}

/// The class mass A = sum_c a_c of a sample with class probabilities (st.extra = sum(w * q)).
template <class T>
double soft_mass(const setup<T>& p, const line_stats<T>& st) noexcept {
    return p.keep() * st.extra + p.spread() * p.weight_sum;
}

/// Whether log_sum = log(S) from the stats pass is too coarse for the loss. The stats' S is within 16 unit
/// roundoffs of its value, relative (exp_of's 2 ulp and a block's partial sums in T), so log(S)
/// is within 16 u, absolute; the loss A * log(S) + sum_c a_c (M - x_c) then keeps its bound
/// tol * max(1, |loss|) while |A| * 16 u is under half of tol * max(1, |A| log(S)). Past that
/// (a heavy class weight or probability mass on a confident line, where S is near 1 and log(S)
/// tiny), log(S) is taken again with log_sum_near_one. S < 2 does not make the maximum unique:
/// the stats may round a line with two maxima to just under 2 (a lane's sum brought to the
/// maximum by a rounded factor), and log_sum_near_one counts them.
template <class T>
bool coarse_log_sum(const line_stats<T>& st, double log_sum, double mass) noexcept {
    constexpr double u = std::numeric_limits<T>::epsilon() / 2;
    constexpr double tol = std::is_same<T, float>::value ? 2e-6 : 1e-12;
    if (!std::isfinite(st.max) || !(st.sum < 2)) return false;
    const double a = std::fabs(mass);
    return a * 16 * u > 0.5 * tol * std::max(1.0, a * log_sum);
}

/// log(S) of a line whose maximum is m, as log1p of the sum of exp(x - m) over the elements below
/// m when m is unique: that sum is within 16 u of its value, relative, so log(S) is too, however
/// close S is to 1. With k > 1 maxima, S >= 2 and log(k + that sum) is as accurate.
template <class Arch, class T>
double log_sum_near_one(const T* x, index_type n, T m) noexcept {
    using V = batch<T, Arch>;
    const V vm(m), zero(T(0));
    const auto below = [&](const V& xv) LOGITKIT_LAMBDA_INLINE {
        return simd::select(xv < vm, exp_shifted<true>(xv, vm), zero);
    };
    // Padding lanes hold m: they are not below it.
    const double rest = accumulate<V>(
        n, [&](index_type i) LOGITKIT_LAMBDA_INLINE { return below(simd::load<V>(x + i)); },
        [&](index_type i, std::size_t rem) LOGITKIT_LAMBDA_INLINE {
            return below(simd::load_partial<V>(x + i, rem, m));
        });
    index_type maxima = 0;
    for (index_type i = 0; i < n; ++i) maxima += x[i] == m ? 1 : 0;
    return maxima <= 1 ? std::log1p(rest) : std::log(static_cast<double>(maxima) + rest);
}

/// log(S) of the line at x with stride sx, from its stats or, where those are too coarse for the
/// loss (coarse_log_sum), from the line again (a strided one gathered first).
template <class Arch, class T>
double line_log_sum(const setup<T>& p, const line_stats<T>& st, double mass, const T* x, index_type sx = 1) {
    const double log_sum = std::log(st.sum);
    if (!coarse_log_sum(st, log_sum, mass)) return log_sum;
    if (sx == 1) return log_sum_near_one<Arch>(x, p.classes, st.max);
    std::vector<T> line(static_cast<std::size_t>(p.classes));
    for (index_type r = 0; r < p.classes; ++r) line[static_cast<std::size_t>(r)] = x[r * sx];
    return log_sum_near_one<Arch>(line.data(), p.classes, st.max);
}

/// Whether the coefficient of stored exponentials is subnormal. Unshifted exponentials reach
/// exp(unshifted_limit) and their coefficient is as much smaller: a subnormal one (a vast line
/// under a small scale) has lost its digits, and the line, or the block of columns, takes its
/// gradient from exp(x - max) instead. Shifted ones have alpha_exps = alpha, and both ways give
/// the same bits.
template <class T>
bool subnormal(T coef) noexcept {
    return std::fabs(coef) < std::numeric_limits<T>::min() && coef != T(0);
}

/// The scalars of one sample with a class index t.
template <class T>
struct hard_sample {
    double lse;
    double log_sum;  // log(sum(exp(x - M)))
    T alpha;  // coefficient of exp(x - M) in the gradient
    T alpha_exps;  // coefficient of the exponentials stats stored (line_stats::exps_sum)
    T gamma;  // coefficient of w_c in the gradient
    T g_t;    // the gradient at the target class, evaluated directly
};

template <class T>
hard_sample<T> hard_terms(const setup<T>& p, const line_stats<T>& st, double log_sum, T xt, std::int64_t t,
                          double coef) noexcept {
    hard_sample<T> h;
    h.log_sum = log_sum;
    h.lse = lse_of(st, h.log_sum);
    if (std::isnan(h.lse) || !p.grad) {
        const T nan = std::numeric_limits<T>::quiet_NaN();
        h.alpha = h.alpha_exps = h.gamma = h.g_t = nan;  // no gradient: never used
        return h;
    }
    const double wt = p.w(t);
    const double a_t = p.keep() * wt + p.spread() * wt;
    const double b = hard_mass(p, t) + 2 * p.z * h.lse;
    // Through 1 / S, as the lanes of a column block take them (hard_lane_terms), where the
    // divisions cost more than the rest of a lane's scalars.
    const double inv_sum = 1.0 / st.sum;
    h.alpha = static_cast<T>(coef * b * inv_sum);
    h.alpha_exps = st.exps_sum == st.sum ? h.alpha : static_cast<T>(coef * b * (1.0 / st.exps_sum));
    h.gamma = static_cast<T>(-coef * p.spread());
    const double p_t = std::exp(static_cast<double>(xt) - static_cast<double>(st.max)) * inv_sum;
    h.g_t = static_cast<T>(coef * (b * p_t - a_t));
    return h;
}

/// loss = (1 - eps) * w_t * (lse - x_t) + eps / C * sum_c w_c * (lse - x_c) + z * lse^2.
template <class T>
double hard_loss(const setup<T>& p, const line_stats<T>& st, T xt, std::int64_t t, double smooth_sum,
                 const hard_sample<T>& h) noexcept {
    const double lse = h.lse, log_s = h.log_sum;
    if (std::isnan(lse)) return lse;
    double loss = 0;
    const double wt = p.w(t);
    if (p.keep() != 0 && wt != 0)
        loss += p.keep() * wt * ((static_cast<double>(st.max) - static_cast<double>(xt)) + log_s);
    if (p.smoothing != 0) loss += p.spread() * (p.weight_sum * log_s + smooth_sum);
    if (p.z != 0) loss += p.z * lse * lse;
    return loss;
}

/// The scalars of one sample with class probabilities.
template <class T>
struct soft_sample {
    double lse;
    double log_sum;  // log(sum(exp(x - M)))
    double mass;  // A = sum_c a_c
    T alpha;      // coefficient of exp(x - M) in the gradient
    T beta;       // coefficient of a_c: -coef
};

template <class T>
soft_sample<T> soft_terms(const setup<T>& p, const line_stats<T>& st, double log_sum, double coef) noexcept {
    soft_sample<T> s;
    s.log_sum = log_sum;
    s.lse = lse_of(st, s.log_sum);
    s.mass = soft_mass(p, st);
    if (std::isnan(s.lse)) {
        s.alpha = s.beta = std::numeric_limits<T>::quiet_NaN();
        return s;
    }
    s.alpha = static_cast<T>(coef * (s.mass + 2 * p.z * s.lse) / st.sum);
    s.beta = static_cast<T>(-coef);
    return s;
}

template <class T>
double soft_loss(const setup<T>& p, const soft_sample<T>& s, double sum_am) noexcept {
    if (std::isnan(s.lse)) return s.lse;
    double loss = sum_am;
    if (s.mass != 0) loss += s.mass * s.log_sum;
    if (p.z != 0) loss += p.z * s.lse * s.lse;
    return loss;
}

/// The value of a std::bool_constant argument, whatever reference it reaches a lambda as.
template <class B>
constexpr bool flag = std::decay_t<B>::value;

/// Calls f(std::bool_constant<b>{}).
template <class F>
LOGITKIT_INLINE decltype(auto) with_bool(bool b, F&& f) {
    if (b) return f(std::true_type{});
    return f(std::false_type{});
}

// ---------------------------------------------------------------------------------------------
// Lines: one sample, contiguous.
// ---------------------------------------------------------------------------------------------

/// One sample with class index t (not ignored) after its stats pass: st are the line's stats,
/// and `exps` (null: none) the exponentials that pass stored, which a gradient without smoothing
/// then reuses. g is null without a gradient. Returns its loss.
template <class Arch, class T>
double hard_row_from(const setup<T>& p, const T* x, T* g, std::int64_t t, double coef, const line_stats<T>& st,
                     T* exps, bool large) {
    const index_type n = p.classes;
    const bool smoothing = p.smoothing != 0;
    const bool reuse = exps != nullptr;
    const T xt = x[t];  // read before an in-place gradient overwrites it
    const hard_sample<T> h = hard_terms(p, st, line_log_sum<Arch>(p, st, hard_mass(p, t), x), xt, t, coef);
    double smooth = 0;
    if (reuse && st.in_range && !subnormal(h.alpha_exps)) {
        with_bool(p.weight != nullptr, [&](auto weighted) {
            with_bool(large && g != x, [&](auto stream) {
                row::hard_grad<Arch, flag<decltype(weighted)>, flag<decltype(stream)>>(exps, g, p.weight, n,
                                                                                        h.alpha_exps, h.gamma);
            });
        });
    } else if (p.grad || smoothing) {
        with_bool(p.grad, [&](auto store) {
            with_bool(smoothing, [&](auto sm) {
                with_bool(p.weight != nullptr, [&](auto weighted) {
                    with_bool(st.in_range, [&](auto in_range) {
                        if constexpr (flag<decltype(store)> || flag<decltype(sm)>)
                            smooth = row::hard_pass<Arch, flag<decltype(store)>, flag<decltype(sm)>,
                                                    flag<decltype(weighted)>, flag<decltype(in_range)>>(
                                x, g, p.weight, n, st.max, h.alpha, h.gamma);
                    });
                });
            });
        });
    }
    if (p.grad) g[t] = h.g_t;
    return hard_loss(p, st, xt, t, smooth, h);
}

/// One sample with class index t (not ignored); g is null without a gradient. Returns its loss.
/// Given `exps` (scratch for the line), a gradient without smoothing reuses the stats pass's
/// exponentials instead of computing them again. A `large` problem (see stream_lines) prefetches
/// the next line, and streams that gradient unless it is written over the logits.
template <class Arch, class T>
double hard_row(const setup<T>& p, const T* x, T* g, std::int64_t t, double coef, T* exps = nullptr,
                bool large = false, const next_line<T>& next = {}) {
    const bool reuse = exps != nullptr && p.grad && p.smoothing == 0;
    const line_stats<T> st =
        row::stats<Arch>(x, p.classes, no_extra{}, large ? next.a : nullptr, reuse ? exps : nullptr);
    return hard_row_from<Arch>(p, x, g, t, coef, st, reuse ? exps : nullptr, large);
}

/// One sample with class probabilities q; g is null without a gradient. Returns its loss.
template <class Arch, class T>
double soft_row(const setup<T>& p, const T* x, const T* q, T* g, double coef) {
    const index_type n = p.classes;
    const T keep = static_cast<T>(p.keep()), spread = static_cast<T>(p.spread());
    return with_bool(p.weight != nullptr, [&](auto weighted) {
        constexpr bool Wt = flag<decltype(weighted)>;
        const line_stats<T> st = row::stats<Arch>(x, n, target_mass<T, Wt>{q, 0, p.weight});
        const soft_sample<T> s = soft_terms(p, st, line_log_sum<Arch>(p, st, soft_mass(p, st), x), coef);
        const double sum_am = with_bool(p.grad, [&](auto store) {
            return with_bool(st.in_range, [&](auto in_range) {
                return row::soft_pass<Arch, flag<decltype(store)>, Wt, flag<decltype(in_range)>>(
                    x, q, g, p.weight, n, st.max, s.alpha, s.beta, keep, spread);
            });
        });
        return soft_loss(p, s, sum_am);
    });
}

// ---------------------------------------------------------------------------------------------
// Columns: K * W samples side by side, one per lane.
// ---------------------------------------------------------------------------------------------

/// The per-sample scalars of hard_terms and hard_loss for the lanes of a column block, side by
/// side in double batches (one sample per lane). A lane takes them here when its sample is
/// counted (active 1, not 0), its line's maximum and sum are finite, and log(S) is fine for its
/// loss (not coarse_log_sum); `plain` is 1 for the lanes that did and 0 for the others, and
/// `all_plain` says whether every counted lane did: the others are the caller's, through
/// hard_terms. A lane not counted gets zero coefficients (alpha, alpha_exps, gamma); its other
/// values are left for the caller to skip. Lanes are independent: a lane's values do not depend
/// on the others. alpha_exps is the coefficient of the stored exponentials, whose
/// sums are exps_sum (see line_stats::exps_sum).
template <std::size_t L>
struct lane_terms {
    double lse[L], log_sum[L], alpha[L], alpha_exps[L], gamma[L], g_t[L], plain[L];
    bool all_plain;
};
template <class Arch, class T, std::size_t L>
void hard_lane_terms(const setup<T>& p, const double* m, const double* xt, const double* wt, const double* sum,
                     const double* exps_sum, const double* coef, const double* active, lane_terms<L>& out) noexcept {
    using VD = batch<double, Arch>;
    constexpr std::size_t WD = VD::size;
    static_assert(L % WD == 0, "hard_lane_terms: whole batches of lanes");
    constexpr double u = std::numeric_limits<T>::epsilon() / 2;
    constexpr double tol = std::is_same<T, float>::value ? 2e-6 : 1e-12;
    const VD keep(p.keep()), spread(p.spread()), spread_mass(p.spread() * p.weight_sum), two_z(2 * p.z), one(1.0),
        zero(0.0);
    out.all_plain = true;
    for (std::size_t l = 0; l < L; l += WD) {
        const VD mv = simd::load<VD>(m + l), s = simd::load<VD>(sum + l), w = simd::load<VD>(wt + l);
        const VD c = simd::load<VD>(coef + l), on = simd::load<VD>(active + l);
        const VD log_s = log_normal(s);
        const VD lse = mv + log_s;
        const VD mass = keep * w + spread_mass;
        const VD a = simd::max(mass, -mass);
        // Not coarse_log_sum: S >= 2, or |A| 16 u within half the loss bound.
        const auto fine = (s >= VD(2.0)) | (a * VD(16 * u) <= VD(0.5 * tol) * simd::max(one, a * log_s));
        // S is at least 1 (the maximum's term) and finite; m finite.
        const auto finite = (s >= one) & (s <= VD(std::numeric_limits<double>::max())) & ((mv - mv) <= zero);
        const auto counted = on > zero;
        const auto plain = fine & finite & counted;
        // The operations of hard_terms, in its order.
        const VD b = mass + two_z * lse;
        const VD inv_sum = one / s;
        const VD p_t = exp_of(simd::load<VD>(xt + l) - mv) * inv_sum;
        const VD a_t = keep * w + spread * w;
        const VD alpha = c * b * inv_sum;
        simd::store(out.lse + l, lse);
        simd::store(out.log_sum + l, log_s);
        simd::store(out.alpha + l, simd::select(counted, alpha, zero));
        simd::store(out.alpha_exps + l,
                    simd::select(counted, exps_sum == sum ? alpha : c * b * (one / simd::load<VD>(exps_sum + l)), zero));
        simd::store(out.gamma + l, simd::select(counted, -c * spread, zero));
        simd::store(out.g_t + l, c * (b * p_t - a_t));
        simd::store(out.plain + l, simd::select(plain, one, zero));
        out.all_plain = out.all_plain && simd::all(simd::select(plain, zero, on) <= zero);
    }
}

/// hard_loss for the lanes of hard_lane_terms, in its operations and order: a plain lane's loss,
/// 0 for a lane not plain (the caller's, or not counted). A term hard_loss leaves out (a zero
/// weight, no smoothing, no z-loss) adds nothing here either.
template <class Arch, class T, std::size_t L>
void hard_lane_losses(const setup<T>& p, const double* m, const double* xt, const double* wt, const double* smooth,
                      const lane_terms<L>& h, double* loss) noexcept {
    using VD = batch<double, Arch>;
    constexpr std::size_t WD = VD::size;
    const VD keep(p.keep()), spread(p.spread()), weight_sum(p.weight_sum), z(p.z), zero(0.0);
    for (std::size_t l = 0; l < L; l += WD) {
        const VD w = simd::load<VD>(wt + l), log_s = simd::load<VD>(h.log_sum + l), lse = simd::load<VD>(h.lse + l);
        VD v = zero;
        if (p.keep() != 0) {
            const VD term = keep * w * ((simd::load<VD>(m + l) - simd::load<VD>(xt + l)) + log_s);
            v = v + simd::select((w < zero) | (w > zero), term, zero);
        }
        if (p.smoothing != 0) v = v + spread * (weight_sum * log_s + simd::load<VD>(smooth + l));
        if (p.z != 0) v = v + z * lse * lse;
        simd::store(loss + l, simd::select(simd::load<VD>(h.plain + l) > zero, v, zero));
    }
}

/// The bytes of logits a column block may span and still be found in the L1 cache by its next pass.
constexpr index_type l1_block_bytes = 32 * 1024;

template <class Arch, int K, class T>
void hard_cols(const setup<T>& p, const T* x, index_type sx, T* g, index_type sg, const std::int64_t* t,
               const double* coef, double* loss) {
    using V = batch<T, Arch>;
    constexpr index_type L = static_cast<index_type>(V::size) * K;
    const index_type n = p.classes;
    T m[L], shift[L], xt[L], alpha[L], alpha_exps[L], gamma[L], active[L];
    double sum[L], exps_sum[L], extra[L], smooth[L];
    // As on a line (row::stats), a block of unshifted logits takes exp(x) itself (its sums are
    // then sums of exp(x), and m its columns' maxima); any other block whose range keeps every
    // x - max in the exponential's fast range takes exp(x - max). The exponentials are stored in g
    // for a gradient without smoothing (unless g is the logits). Any other block takes the
    // one-pass online maximum. A block larger than the L1 cache takes its unshifted
    // exponentials first, its columns' ranges on the way; a smaller one (few classes: 8x21x4096
    // float) takes its range first all the same: that pass's loads, free of other work, fetch
    // the block from memory in less time than the exponentials' pass does (23% less time there),
    // and the later passes find it in L1.
    const bool smoothing = p.smoothing != 0;
    const bool store_exps = p.grad && !smoothing && g != x;
    bool reuse = store_exps;
    bool unshifted =
        n * L * index_type(sizeof(T)) > l1_block_bytes &&
        (store_exps ? detail::col::unshifted_exp_sum<Arch, K, true, true>(x, sx, g, sg, n, shift, identity_input{},
                                                                           exps_sum, m)
                    : detail::col::unshifted_exp_sum<Arch, K, false, true>(x, sx, static_cast<T*>(nullptr), 0, n, shift,
                                                                           identity_input{}, exps_sum, m));
    if (!unshifted) {
        const exp_mode mode = detail::col::reduce_range<Arch, K, true>(x, sx, n, shift, identity_input{}, m);
        unshifted = mode == exp_mode::unshifted;
        reuse = store_exps && mode != exp_mode::checked;
        double* sums = unshifted ? exps_sum : sum;
        if (mode == exp_mode::checked)
            col::stats<Arch, K>(x, sx, n, no_extra{}, m, sum, extra);
        else if (reuse)
            detail::col::exp_sum<Arch, K, true>(x, sx, g, sg, n, shift, identity_input{}, sums, mode);
        else
            detail::col::exp_sum<Arch, K, false>(x, sx, static_cast<T*>(nullptr), 0, n, shift, identity_input{},
                                                 sums, mode);
    }
    // The samples' inputs, lane by lane (the target's logit and weight: a gather), then as double.
    double md[L], xd[L], wd[L], counted[L];
    bool any = false;
    for (index_type l = 0; l < L; ++l) {
        smooth[l] = 0;
        const bool on = t[l] != p.ignore_index;
        any = any || on;
        counted[l] = on ? 1.0 : 0.0;
        xt[l] = on ? x[t[l] * sx + l] : T(0);
        wd[l] = on ? p.w(t[l]) : 0.0;
    }
    for (index_type l = 0; l < L; ++l) {
        md[l] = static_cast<double>(m[l]);
        xd[l] = static_cast<double>(xt[l]);
        active[l] = static_cast<T>(counted[l]);
    }
    if (unshifted) {
        // As row::stats: S = sum(exp(x)) * exp(-max), at least 1.
        using VD = batch<double, Arch>;
        for (index_type l = 0; l < L; l += static_cast<index_type>(VD::size))
            simd::store(sum + l, simd::max(VD(1.0), simd::load<VD>(exps_sum + l) * exp_of(-simd::load<VD>(md + l))));
    }
    const double* stored_sum = unshifted ? exps_sum : sum;
    // The samples' scalars: lane by lane in double batches (hard_lane_terms), hard_terms for the
    // counted lanes that are not plain.
    lane_terms<static_cast<std::size_t>(L)> h;
    hard_lane_terms<Arch>(p, md, xd, wd, sum, stored_sum, coef, counted, h);
    index_type scalar_lanes[L];  // the counted lanes that are not plain
    index_type scalar_count = 0;
    if (!h.all_plain)
        for (index_type l = 0; l < L; ++l)
            if (counted[l] != 0 && h.plain[l] == 0) scalar_lanes[scalar_count++] = l;
    for (index_type i = 0; i < scalar_count; ++i) {
        const index_type l = scalar_lanes[i];
        const line_stats<T> st{m[l], sum[l], 0, false, stored_sum[l]};
        const hard_sample<T> hs =
            hard_terms(p, st, line_log_sum<Arch>(p, st, hard_mass(p, t[l]), x + l, sx), xt[l], t[l], coef[l]);
        h.lse[l] = hs.lse;
        h.log_sum[l] = hs.log_sum;
        h.alpha[l] = static_cast<double>(hs.alpha);
        h.alpha_exps[l] = static_cast<double>(hs.alpha_exps);
        h.gamma[l] = static_cast<double>(hs.gamma);
        h.g_t[l] = static_cast<double>(hs.g_t);
    }
    for (index_type l = 0; l < L; ++l) {
        alpha[l] = static_cast<T>(h.alpha[l]);
        alpha_exps[l] = static_cast<T>(h.alpha_exps[l]);
        gamma[l] = static_cast<T>(h.gamma[l]);
    }
    int tiny = 0;
    for (index_type l = 0; l < L; ++l) tiny |= subnormal(alpha_exps[l]);
    if (tiny) reuse = false;
    if (reuse) {
        with_bool(p.weight != nullptr, [&](auto weighted) {
            col::hard_grad<Arch, K, flag<decltype(weighted)>>(g, sg, p.weight, n, alpha_exps, gamma, active);
        });
    } else if (p.grad || (smoothing && any)) {
        with_bool(p.grad, [&](auto store) {
            with_bool(smoothing && any, [&](auto sm) {
                with_bool(p.weight != nullptr, [&](auto weighted) {
                    if constexpr (flag<decltype(store)> || flag<decltype(sm)>)
                        col::hard_pass<Arch, K, flag<decltype(store)>, flag<decltype(sm)>, flag<decltype(weighted)>>(
                            x, sx, g, sg, p.weight, n, m, alpha, gamma, active, smooth);
                });
            });
        });
    }
    hard_lane_losses<Arch>(p, md, xd, wd, smooth, h, loss);
    if (p.grad)
        for (index_type l = 0; l < L; ++l)
            if (counted[l] != 0) g[t[l] * sg + l] = static_cast<T>(h.g_t[l]);
    for (index_type i = 0; i < scalar_count; ++i) {
        const index_type l = scalar_lanes[i];
        hard_sample<T> hs;
        hs.lse = h.lse[l];
        hs.log_sum = h.log_sum[l];
        loss[l] = hard_loss(p, line_stats<T>{m[l], sum[l], 0}, xt[l], t[l], smooth[l], hs);
    }
}

template <class Arch, int K, class T>
void soft_cols(const setup<T>& p, const T* x, index_type sx, const T* q, index_type sq, T* g, index_type sg,
               const double* coef, double* loss) {
    using V = batch<T, Arch>;
    constexpr index_type L = static_cast<index_type>(V::size) * K;
    const index_type n = p.classes;
    const T keep = static_cast<T>(p.keep()), spread = static_cast<T>(p.spread());
    with_bool(p.weight != nullptr, [&](auto weighted) {
        constexpr bool Wt = flag<decltype(weighted)>;
        T m[L], alpha[L], beta[L];
        double sum[L], extra[L], sum_am[L];
        soft_sample<T> s[L];
        col::stats<Arch, K>(x, sx, n, target_mass<T, Wt>{q, sq, p.weight}, m, sum, extra);
        for (index_type l = 0; l < L; ++l) {
            const line_stats<T> st{m[l], sum[l], extra[l]};
            s[l] = soft_terms(p, st, line_log_sum<Arch>(p, st, soft_mass(p, st), x + l, sx), coef[l]);
            alpha[l] = s[l].alpha;
            beta[l] = s[l].beta;
        }
        with_bool(p.grad, [&](auto store) {
            col::soft_pass<Arch, K, flag<decltype(store)>, Wt>(x, sx, q, sq, g, sg, p.weight, n, m, alpha, beta, keep,
                                                               spread, sum_am);
        });
        for (index_type l = 0; l < L; ++l)
            loss[l] = soft_loss(p, s[l], sum_am[l]);
    });
}

// ---------------------------------------------------------------------------------------------
// Dispatch over the samples of a call.
// ---------------------------------------------------------------------------------------------

/// Operands: 0 logits, 1 grad, 2 targets (class indices: per sample, stride 0 on the class axis;
/// probabilities: the logits' shape), 3 per-sample losses, 4 upstream gradient. Absent operands
/// have a null base and zero strides.
template <class T, std::size_t R>
struct problem {
    axis_layout<R, 5> layout;
    std::size_t axis = 0;
    setup<T> p;
    bool has_losses = false;
    bool has_upstream = false;
    double scale = 1;  // gradient scale before the upstream factor
};

template <class U, std::size_t N>
LOGITKIT_INLINE U* operand(const pointers<N>& base, std::size_t i, index_type off) noexcept {
    return reinterpret_cast<U*>(base[i]) + off;
}

/// Runs every sample; returns the sum of the per-sample losses (written to operand 3 when given).
template <class Arch, bool Soft, class T, std::size_t R>
double run(const problem<T, R>& P) {
    const auto& L = P.layout;
    const std::size_t a = P.axis;
    const index_type n = L.shape[a];
    for (std::size_t k = 0; k < R; ++k)
        if (k != a && L.shape[k] == 0) return 0;
    const bool grad = P.p.grad;
    neumaier_sum total;
    auto store_loss = [&](double loss, T* out) {
        if (P.has_losses) *out = static_cast<T>(loss);
    };
    auto emit = [&](neumaier_sum& sum, double loss, T* out) {
        sum.add(loss);
        store_loss(loss, out);
    };
    auto coef_at = [&](const T* up) { return P.has_upstream ? P.scale * static_cast<double>(*up) : P.scale; };
    auto zero_line = [&](T* g, index_type sg) {
        for (index_type r = 0; r < n; ++r) g[r * sg] = T(0);
    };

    std::array<std::size_t, R> dims{};
    std::size_t count = 0;

    if (n == 0) {  // no classes: every loss is 0 and the gradient is empty
        for (std::size_t k = 0; k < R; ++k)
            if (k != a) dims[count++] = k;
        for_each_outer(L, dims, count,
                       [&](const std::array<index_type, 5>& off) { emit(total, 0.0, operand<T>(L.base, 3, off[3])); });
        return total.value();
    }

    const index_type sx = L.strides[0][a], sg = L.strides[1][a], sq = L.strides[2][a];
    const bool rows = n == 1 || (sx == 1 && (!grad || sg == 1) && (!Soft || sq == 1));
    if (rows) {
        for (std::size_t k = 0; k < R; ++k)
            if (k != a) dims[count++] = k;
        // Logits far larger than the cache (see stream_lines): the next sample's logits, along
        // the fastest outer dimension, are prefetched, and the gradient streamed (hard_row).
        const bool large = !Soft && n > 1 && stream_lines<Arch, T>(outer_count<R>(L.shape, dims, count), n);
        if constexpr (!Soft) {
            if (!grad && !large) {
                // The loss alone, in cache: lines go in groups, every line's stats pass first and
                // then their losses, so that a line's scalar work (its logarithm) does not stand
                // between the lines' passes (128x1000 float: 3% less time).
                struct sample {
                    const T* x;
                    std::int64_t t;
                    double coef;
                    T* out;
                };
                constexpr std::size_t group = 8;
                sample q[group];
                line_stats<T> st[group];
                std::size_t waiting = 0;
                const auto flush = [&] {
                    for (std::size_t k = 0; k < waiting; ++k)
                        if (q[k].t != P.p.ignore_index) st[k] = row::stats<Arch>(q[k].x, n, no_extra{});
                    for (std::size_t k = 0; k < waiting; ++k)
                        emit(total,
                             q[k].t == P.p.ignore_index
                                 ? 0.0
                                 : hard_row_from<Arch>(P.p, q[k].x, static_cast<T*>(nullptr), q[k].t, q[k].coef,
                                                       st[k], static_cast<T*>(nullptr), false),
                             q[k].out);
                    waiting = 0;
                };
                for_each_outer(L, dims, count, [&](const std::array<index_type, 5>& off) {
                    q[waiting++] = {operand<const T>(L.base, 0, off[0]), *operand<const std::int64_t>(L.base, 2, off[2]),
                                    coef_at(operand<const T>(L.base, 4, off[4])), operand<T>(L.base, 3, off[3])};
                    if (waiting == group) flush();
                });
                flush();
                return total.value();
            }
        }
        std::vector<T> exps(!Soft && grad && P.p.smoothing == 0 ? static_cast<std::size_t>(n) : 0);
        const std::size_t along = fastest_outer<R>(L.shape, dims, count);
        const index_type next_step = along != R ? L.strides[0][along] : 0;
        for_each_outer(L, dims, count, [&](const std::array<index_type, 5>& off) {
            const T* x = operand<const T>(L.base, 0, off[0]);
            T* g = grad ? operand<T>(L.base, 1, off[1]) : nullptr;
            const double coef = coef_at(operand<const T>(L.base, 4, off[4]));
            double loss = 0;
            if constexpr (Soft) {
                loss = soft_row<Arch>(P.p, x, operand<const T>(L.base, 2, off[2]), g, coef);
            } else {
                const std::int64_t t = *operand<const std::int64_t>(L.base, 2, off[2]);
                if (t == P.p.ignore_index) {
                    if (grad) zero_line(g, 1);
                } else {
                    next_line<T> next;
                    if (along != R) next.a = prefetch_address<T>(x, next_step);
                    loss = hard_row<Arch>(P.p, x, g, t, coef, exps.empty() ? nullptr : exps.data(), large, next);
                }
            }
            emit(total, loss, operand<T>(L.base, 3, off[3]));
        });
        return total.value();
    }

    // The innermost dimension (other than the class axis) along which logits, gradient and
    // probabilities are all contiguous: one sample per lane across it.
    std::size_t inner = R;
    for (std::size_t k = R; k-- > 0;) {
        if (k == a || L.shape[k] <= 1) continue;
        if (L.strides[0][k] == 1 && (!grad || L.strides[1][k] == 1) && (!Soft || L.strides[2][k] == 1)) {
            inner = k;
            break;
        }
    }
    if (inner != R) {
        for (std::size_t k = 0; k < R; ++k)
            if (k != a && k != inner) dims[count++] = k;
        const index_type width = L.shape[inner];
        const index_type s2 = L.strides[2][inner], s3 = L.strides[3][inner], s4 = L.strides[4][inner];
        for_each_outer(L, dims, count, [&](const std::array<index_type, 5>& off) {
            auto blocks = [&](auto arch, auto kk, index_type j) {
                using A = decltype(arch);
                constexpr int K = std::decay_t<decltype(kk)>::value;
                constexpr index_type lanes = static_cast<index_type>(batch<T, A>::size) * K;
                for (; j + lanes <= width; j += lanes) {
                    double coef[lanes], loss[lanes];
                    for (index_type l = 0; l < lanes; ++l)
                        coef[l] = coef_at(operand<const T>(L.base, 4, off[4] + (j + l) * s4));
                    const T* x = operand<const T>(L.base, 0, off[0] + j);
                    T* g = grad ? operand<T>(L.base, 1, off[1] + j) : nullptr;
                    if constexpr (Soft) {
                        soft_cols<A, K>(P.p, x, sx, operand<const T>(L.base, 2, off[2] + j), sq, g, sg, coef, loss);
                    } else {
                        std::int64_t t[lanes];
                        for (index_type l = 0; l < lanes; ++l)
                            t[l] = *operand<const std::int64_t>(L.base, 2, off[2] + (j + l) * s2);
                        hard_cols<A, K>(P.p, x, sx, g, sg, t, coef, loss);
                    }
                    for (index_type l = 0; l < lanes; ++l) store_loss(loss[l], operand<T>(L.base, 3, off[3] + (j + l) * s3));
                    // The block's losses summed in batches (row::sum: compensated between runs
                    // of batches), then added to the total, instead of one add per sample, each
                    // waiting on the last (8x21x4096 float: 7% of the time).
                    total.add(detail::row::sum<A>(loss, lanes));
                }
                return j;
            };
            // Blocks of 1 KiB of each class line (see column_block_batches), then of 4 and 1
            // batches: not of a page, as a block's per-sample scalars live on the stack.
            index_type j = blocks(Arch{}, std::integral_constant<int, column_block_batches<T, Arch>(1024)>{}, 0);
            j = blocks(Arch{}, std::integral_constant<int, 4>{}, j);
            j = blocks(Arch{}, std::integral_constant<int, 1>{}, j);
            blocks(scalar_arch{}, std::integral_constant<int, 1>{}, j);
        });
        return total.value();
    }

    // Gather: copy each line into contiguous scratch, run it as a row, scatter the gradient.
    for (std::size_t k = 0; k < R; ++k)
        if (k != a) dims[count++] = k;
    std::vector<T> xs(static_cast<std::size_t>(n)), qs(Soft ? static_cast<std::size_t>(n) : 0),
        gs(grad ? static_cast<std::size_t>(n) : 0);
    for_each_outer(L, dims, count, [&](const std::array<index_type, 5>& off) {
        const T* x = operand<const T>(L.base, 0, off[0]);
        T* g = grad ? operand<T>(L.base, 1, off[1]) : nullptr;
        const double coef = coef_at(operand<const T>(L.base, 4, off[4]));
        double loss = 0;
        bool wrote = false;
        if constexpr (Soft) {
            const T* q = operand<const T>(L.base, 2, off[2]);
            for (index_type r = 0; r < n; ++r) {
                xs[static_cast<std::size_t>(r)] = x[r * sx];
                qs[static_cast<std::size_t>(r)] = q[r * sq];
            }
            loss = soft_row<Arch>(P.p, xs.data(), qs.data(), grad ? gs.data() : nullptr, coef);
            wrote = grad;
        } else {
            const std::int64_t t = *operand<const std::int64_t>(L.base, 2, off[2]);
            if (t == P.p.ignore_index) {
                if (grad) zero_line(g, sg);
            } else {
                for (index_type r = 0; r < n; ++r) xs[static_cast<std::size_t>(r)] = x[r * sx];
                loss = hard_row<Arch>(P.p, xs.data(), grad ? gs.data() : nullptr, t, coef);
                wrote = grad;
            }
        }
        if (wrote)
            for (index_type r = 0; r < n; ++r) g[r * sg] = gs[static_cast<std::size_t>(r)];
        emit(total, loss, operand<T>(L.base, 3, off[3]));
    });
    return total.value();
}

}  // namespace xent
}  // namespace detail
}  // namespace logitkit
