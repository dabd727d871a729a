// Reference implementations of the loss functions for the logitkit tests.
//
// Written plainly, in long double, following PyTorch's definitions step by step: log_softmax of
// each line, then nll_loss / label smoothing / probability targets as aten/src/ATen/native/
// LossNLL.cpp composes them, and the gradient by the chain rule through log_softmax. Nothing here
// uses logitkit. Tensors are dense and row-major; the class axis is an index into the shape.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace lk_loss_ref {

using ld = long double;
using index_t = std::ptrdiff_t;
using shape_t = std::vector<index_t>;

enum class red { none, mean, sum };

inline index_t numel(const shape_t& s) {
    index_t n = 1;
    for (index_t e : s) n *= e;
    return n;
}

/// Options, as in PyTorch's F.cross_entropy plus the z-loss coefficient.
struct config {
    std::size_t class_axis = 1;  // already normalised to [0, rank)
    std::vector<ld> weight;      // empty: all 1
    std::int64_t ignore_index = -100;
    ld smoothing = 0;
    red reduction = red::mean;
    ld z = 0;
};

struct result {
    std::vector<ld> losses;  // per sample (row-major over the shape without the class axis)
    ld reduced = 0;          // mean or sum; for none, the sum of the losses
    std::vector<ld> grad;    // d(reduced)/d(input), or d(sum_i upstream_i * losses_i)/d(input) for none
};

/// The lines along the class axis: sample s = (o, j) has element c at o * C * inner + c * inner + j.
struct lines {
    index_t outer = 1, classes = 1, inner = 1;
    lines(const shape_t& shape, std::size_t axis) {
        for (std::size_t k = 0; k < axis; ++k) outer *= shape[k];
        classes = shape[axis];
        for (std::size_t k = axis + 1; k < shape.size(); ++k) inner *= shape[k];
    }
    index_t samples() const { return outer * inner; }
    index_t at(index_t s, index_t c) const {
        const index_t o = s / inner, j = s % inner;
        return o * classes * inner + c * inner + j;
    }
};

inline ld nan() {
    return std::numeric_limits<ld>::quiet_NaN();
}
inline ld inf() {
    return std::numeric_limits<ld>::infinity();
}

/// log_softmax of one line, and its log-sum-exp. A line whose maximum is not finite (a NaN, a
/// +inf, or only -inf) gives NaN everywhere, as PyTorch.
inline std::vector<ld> log_softmax_line(const std::vector<ld>& x, ld& lse) {
    ld m = -inf();
    bool has_nan = false;
    for (ld v : x) {
        if (std::isnan(v))
            has_nan = true;
        else if (v > m)
            m = v;
    }
    std::vector<ld> out(x.size(), nan());
    if (has_nan || !std::isfinite(m)) {
        lse = nan();
        return out;
    }
    // log(sum(exp(x - m))) as log1p of the terms other than one maximum's: exact to the last
    // bits of log_s however close the sum is to 1 (a confident line), where the loss
    // sum_c a_c * -lp_c can be dominated by sum(a) * log_s.
    ld rest = 0;
    bool skipped = false;
    for (ld v : x) {
        if (!skipped && v == m)
            skipped = true;
        else
            rest += std::exp(v - m);
    }
    const ld log_s = std::log1p(rest);
    lse = m + log_s;
    for (std::size_t c = 0; c < x.size(); ++c) out[c] = (x[c] - m) - log_s;
    return out;
}

inline ld weight_of(const config& cfg, index_t c) {
    return cfg.weight.empty() ? 1.0L : cfg.weight[static_cast<std::size_t>(c)];
}

/// a * (-lp), with a term of coefficient 0 adding 0 (logitkit's convention where PyTorch's
/// 0 * inf would give NaN).
inline ld term(ld a, ld lp) {
    return a == 0 ? 0.0L : a * -lp;
}

/// Core of both target kinds: per sample, the class coefficients a_c of loss = sum_c a_c * -lp_c
/// (+ z * lse^2), whether the sample counts, and the mean's denominator.
template <class Coefficients>
result evaluate(const std::vector<ld>& x, const shape_t& shape, const config& cfg, const std::vector<ld>& upstream,
                ld mean_denominator, Coefficients coefficients) {
    const lines L(shape, cfg.class_axis);
    const index_t C = L.classes;
    result r;
    r.losses.assign(static_cast<std::size_t>(L.samples()), 0.0L);
    r.grad.assign(x.size(), 0.0L);
    ld total = 0;
    std::vector<ld> line(static_cast<std::size_t>(C)), a(static_cast<std::size_t>(C));
    for (index_t s = 0; s < L.samples(); ++s) {
        for (index_t c = 0; c < C; ++c) line[static_cast<std::size_t>(c)] = x[static_cast<std::size_t>(L.at(s, c))];
        if (!coefficients(s, a)) continue;  // ignored: loss 0, gradient 0
        ld loss = 0, lse = 0;
        if (C > 0) {
            const std::vector<ld> lp = log_softmax_line(line, lse);
            for (index_t c = 0; c < C; ++c)
                loss += term(a[static_cast<std::size_t>(c)], lp[static_cast<std::size_t>(c)]);
            if (std::isnan(lse)) loss = nan();
            if (cfg.z != 0) loss += cfg.z * lse * lse;
            // Gradient: d/dx_c of sum_k a_k * -lp_k is -a_c + p_c * sum_k a_k (log_softmax
            // backward), and of z * lse^2 it is 2 z lse p_c.
            ld scale = cfg.reduction == red::mean ? 1.0L / mean_denominator : 1.0L;
            if (cfg.reduction == red::none && !upstream.empty()) scale *= upstream[static_cast<std::size_t>(s)];
            ld sum_a = 0;
            for (ld v : a) sum_a += v;
            for (index_t c = 0; c < C; ++c) {
                const ld p = std::exp(lp[static_cast<std::size_t>(c)]);
                const ld d = -a[static_cast<std::size_t>(c)] + p * sum_a + 2 * cfg.z * lse * p;
                r.grad[static_cast<std::size_t>(L.at(s, c))] = std::isnan(lse) ? nan() : scale * d;
            }
        }
        r.losses[static_cast<std::size_t>(s)] = loss;
        total += loss;
    }
    r.reduced = cfg.reduction == red::mean ? total / mean_denominator : total;
    return r;
}

/// F.cross_entropy with class-index targets (the shape without the class axis, row-major).
inline result cross_entropy(const std::vector<ld>& x, const shape_t& shape, const std::vector<std::int64_t>& t,
                            const config& cfg, const std::vector<ld>& upstream = {}) {
    const lines L(shape, cfg.class_axis);
    const index_t C = L.classes;
    // nll_loss's total weight: the weights of the targets that are not ignored.
    ld denominator = 0;
    for (std::int64_t v : t)
        if (v != cfg.ignore_index) denominator += weight_of(cfg, v);
    const ld eps = cfg.smoothing;
    return evaluate(x, shape, cfg, upstream, denominator, [&](index_t s, std::vector<ld>& a) {
        const std::int64_t target = t[static_cast<std::size_t>(s)];
        if (target == cfg.ignore_index) return false;
        if (target < 0 || target >= C) throw std::logic_error("reference: target out of range");
        // (1 - eps) * nll + eps / C * smooth_loss, with nll = -w_t lp_t and
        // smooth_loss = -sum_c w_c lp_c.
        for (index_t c = 0; c < C; ++c) a[static_cast<std::size_t>(c)] = eps / C * weight_of(cfg, c);
        a[static_cast<std::size_t>(target)] += (1 - eps) * weight_of(cfg, target);
        return true;
    });
}

/// F.cross_entropy with class-probability targets (the logits' shape).
inline result cross_entropy_soft(const std::vector<ld>& x, const shape_t& shape, const std::vector<ld>& q,
                                 const config& cfg, const std::vector<ld>& upstream = {}) {
    const lines L(shape, cfg.class_axis);
    const index_t C = L.classes;
    const ld eps = cfg.smoothing;
    // PyTorch: the mean divides by input.numel() / C, the number of samples.
    const ld denominator = static_cast<ld>(L.samples());
    result r = evaluate(x, shape, cfg, upstream, denominator, [&](index_t s, std::vector<ld>& a) {
        for (index_t c = 0; c < C; ++c)
            a[static_cast<std::size_t>(c)] =
                weight_of(cfg, c) * (q[static_cast<std::size_t>(L.at(s, c))] * (1 - eps) + eps / C);
        return true;
    });
    if (cfg.reduction == red::mean && numel(shape) == 0) r.reduced = nan();
    return r;
}

/// F.nll_loss on log-probabilities.
inline result nll_loss(const std::vector<ld>& lp, const shape_t& shape, const std::vector<std::int64_t>& t,
                       const config& cfg, const std::vector<ld>& upstream = {}) {
    const lines L(shape, cfg.class_axis);
    const index_t C = L.classes;
    result r;
    r.losses.assign(static_cast<std::size_t>(L.samples()), 0.0L);
    r.grad.assign(lp.size(), 0.0L);
    ld total = 0, denominator = 0;
    for (std::int64_t v : t)
        if (v != cfg.ignore_index) denominator += weight_of(cfg, v);
    for (index_t s = 0; s < L.samples(); ++s) {
        const std::int64_t target = t[static_cast<std::size_t>(s)];
        if (target == cfg.ignore_index) continue;
        if (target < 0 || target >= C) throw std::logic_error("reference: target out of range");
        const std::size_t at = static_cast<std::size_t>(L.at(s, target));
        const ld w = weight_of(cfg, target);
        const ld loss = term(w, lp[at]);
        r.losses[static_cast<std::size_t>(s)] = loss;
        total += loss;
        ld scale = cfg.reduction == red::mean ? 1.0L / denominator : 1.0L;
        if (cfg.reduction == red::none && !upstream.empty()) scale *= upstream[static_cast<std::size_t>(s)];
        r.grad[at] = -w * scale;
    }
    r.reduced = cfg.reduction == red::mean ? total / denominator : total;
    return r;
}

}  // namespace lk_loss_ref
