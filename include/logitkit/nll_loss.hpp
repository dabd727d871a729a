// logitkit — negative log-likelihood loss, and the types shared by the loss functions.
// SPDX-License-Identifier: MIT
//
//   enum class reduction { none, mean, sum };
//
//   template <class T, std::size_t R> struct loss_outputs {
//       tensor_view<T, R>           grad;      // out: d(loss)/d(input), the input's shape
//       tensor_view<T, R - 1>       losses;    // out: per-sample losses, the targets' shape
//       tensor_view<const T, R - 1> upstream;  // in, reduction::none only: d(L)/d(losses)
//   };
//
//   template <class T> struct nll_loss_options {
//       int class_axis = 1;                 // PyTorch's class axis; -1 for [..., C]
//       tensor_view<const T, 1> weight;     // per-class weights, empty = all 1
//       std::int64_t ignore_index = -100;   // targets equal to it count for nothing
//       reduction reduction = reduction::mean;
//   };
//
//   double nll_loss(log_probs, targets, options = {}, outputs = {});
//
// Semantics are those of PyTorch's F.nll_loss, for inputs of rank 2 to 8 with the classes on
// `class_axis` (PyTorch: axis 1, as in [N, C] and [N, C, d1, ...]). See cross_entropy.hpp for the
// fused softmax cross-entropy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "detail/checks.hpp"
#include "detail/loss_common.hpp"
#include "detail/simd.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// How a loss reduces its per-sample values: as PyTorch's `reduction` argument.
enum class reduction {
    none,  ///< no reduction: the per-sample losses are the result (see loss_outputs::losses)
    mean,  ///< the sum divided by the total weight of the samples (see each loss)
    sum,   ///< the sum of the per-sample losses
};

/// The optional outputs of a loss, and the upstream gradient of reduction::none. Leave a member
/// default-constructed to skip it.
///
/// `grad`     — d(loss)/d(input) with the input's shape (the logits of cross_entropy, the
///              log-probabilities of nll_loss). It may be exactly the input view (same data,
///              shape and strides): the gradient then overwrites the input in place. For
///              reduction::none it is the gradient of sum_i upstream_i * losses_i (upstream_i = 1
///              when `upstream` is not given).
/// `losses`   — the per-sample losses (what reduction::none returns), with the input's shape less
///              the class axis. Written for any reduction when given.
/// `upstream` — reduction::none only: the gradient of the caller's objective with respect to each
///              per-sample loss; same shape as `losses`.
/// No output may share memory with an input or with another output, except `grad` with the input.
template <class T, std::size_t R>
struct loss_outputs {
    static_assert(R >= 2 && R <= 8, "logitkit: the loss functions take inputs of rank 2 to 8");
    tensor_view<T, R> grad{};
    tensor_view<T, R - 1> losses{};
    tensor_view<const T, R - 1> upstream{};
};

/// Options of nll_loss.
template <class T>
struct nll_loss_options {
    /// The axis of the input that holds the classes; negative counts from the end. PyTorch's is 1.
    int class_axis = 1;
    /// One weight per class (length C), or empty for all 1.
    tensor_view<const T, 1> weight{};
    /// A target equal to this value is ignored: its loss and gradient are 0 and it does not count
    /// in the mean.
    std::int64_t ignore_index = -100;
    logitkit::reduction reduction = logitkit::reduction::mean;
};

namespace detail {

template <class TX, class TT>
constexpr void check_loss_types() {
    using T = std::remove_const_t<TX>;
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "logitkit: the loss functions take float or double inputs");
    static_assert(std::is_same<std::remove_const_t<TT>, std::int64_t>::value,
                  "logitkit: class-index targets must be a tensor_view of std::int64_t");
}

inline void check_reduction(const char* fn, reduction r) {
    if (r != reduction::none && r != reduction::mean && r != reduction::sum)
        fail_argument(fn, "options.reduction = " + std::to_string(static_cast<int>(r)) +
                              "; expected reduction::none, reduction::mean or reduction::sum");
}

/// Checks the outputs of a loss against its input x (rank R), its targets, its weights and the
/// shape of the per-sample values.
template <class T, std::size_t R, class TG, std::size_t RG>
void check_loss_outputs(const char* fn, const char* x_name, const tensor_view<const T, R>& x,
                        const tensor_view<TG, RG>& targets, const tensor_view<const T, 1>& weight, reduction r,
                        const loss_outputs<T, R>& out, const extents_type<R - 1>& sample_shape) {
    const std::string x_shape = std::string(x_name) + ".shape";
    const bool has_grad = is_given(out.grad);
    const bool has_losses = is_given(out.losses);
    const bool has_upstream = is_given(out.upstream);
    if (has_upstream) {
        if (r != reduction::none)
            fail_argument(fn,
                          "outputs.upstream is given but options.reduction is not reduction::none; expected an "
                          "empty upstream (the gradient of a mean or a sum needs none)");
        check_shape<R - 1>(fn, "outputs.upstream", out.upstream.shape(),
                           (std::string(x_name) + ".shape without the class axis").c_str(), sample_shape);
        check_data(fn, "outputs.upstream", out.upstream);
    }
    if (has_grad) {
        check_shape<R>(fn, "outputs.grad", out.grad.shape(), x_shape.c_str(), x.shape());
        check_data(fn, "outputs.grad", out.grad);
        check_distinct_elements(fn, "outputs.grad", out.grad);
        check_no_overlap(fn, "outputs.grad", out.grad, x_name, x, true);
        check_no_overlap(fn, "outputs.grad", out.grad, "targets", targets, false);
        check_no_overlap(fn, "outputs.grad", out.grad, "options.weight", weight, false);
        if (has_upstream) check_no_overlap(fn, "outputs.grad", out.grad, "outputs.upstream", out.upstream, false);
    }
    if (has_losses) {
        check_shape<R - 1>(fn, "outputs.losses", out.losses.shape(),
                           (std::string(x_name) + ".shape without the class axis").c_str(), sample_shape);
        check_data(fn, "outputs.losses", out.losses);
        check_distinct_elements(fn, "outputs.losses", out.losses);
        check_no_overlap(fn, "outputs.losses", out.losses, x_name, x, false);
        check_no_overlap(fn, "outputs.losses", out.losses, "targets", targets, false);
        check_no_overlap(fn, "outputs.losses", out.losses, "options.weight", weight, false);
        if (has_upstream) check_no_overlap(fn, "outputs.losses", out.losses, "outputs.upstream", out.upstream, false);
        if (has_grad) check_no_overlap(fn, "outputs.losses", out.losses, "outputs.grad", out.grad, false);
    }
}

/// The scale of the gradient of each sample before its own weight: 1 / (total weight) for the
/// mean, 1 for the sum and for reduction::none (times the sample's upstream value).
inline double gradient_scale(reduction r, double mean_denominator) {
    return r == reduction::mean ? 1.0 / mean_denominator : 1.0;
}

inline double reduce_total(reduction r, double total, double mean_denominator) {
    return r == reduction::mean ? total / mean_denominator : total;
}

}  // namespace detail

/// The negative log-likelihood loss of PyTorch's F.nll_loss: per sample i with target t_i,
///   loss_i = -weight[t_i] * log_probs[..., t_i, ...]   (0 when t_i == ignore_index),
/// reduced as options.reduction says; the mean divides by the sum of weight[t_i] over the samples
/// that are not ignored, so that it is NaN when every target is ignored (or there are no samples).
///
/// log_probs: [N, C] or [N, C, d1, ...] (classes on options.class_axis), float or double.
/// targets:   class indices (std::int64_t), log_probs' shape without the class axis.
/// Returns the mean or the sum; for reduction::none, the sum of the per-sample losses (written to
/// outputs.losses when given). The result is accumulated in double, so a reduction over losses
/// whose sum exceeds double's range (per-sample losses near DBL_MAX) is inf even where the mean
/// itself would fit.
/// outputs.grad (optional) receives d(loss)/d(log_probs): -weight[t_i] * scale at each target
/// position, 0 elsewhere (scale: 1 / total weight for the mean, 1 for the sum, upstream_i for
/// reduction::none).
///
/// A term with weight 0 adds 0 to the loss even when its log-probability is -inf (PyTorch gives NaN
/// for 0 * inf). Throws std::invalid_argument, before writing anything, for a target outside
/// [0, C) that is not ignore_index (naming its value and position), a shape mismatch, a weight
/// vector whose length is not C, or outputs that overlap the inputs; std::out_of_range for a bad
/// class_axis.
template <class Arch = detail::default_arch, class TL, class TT, std::size_t R>
double nll_loss(const tensor_view<TL, R>& log_probs, const tensor_view<TT, R - 1>& targets,
                const nll_loss_options<std::remove_const_t<TL>>& options = {},
                const loss_outputs<std::remove_const_t<TL>, R>& outputs = {}) {
    using T = std::remove_const_t<TL>;
    detail::check_loss_types<TL, TT>();
    constexpr const char* fn = "nll_loss";
    const tensor_view<const T, R> lp(log_probs);
    const tensor_view<const std::int64_t, R - 1> tg(targets);

    const std::size_t a = static_cast<std::size_t>(detail::normalize_axis<R>(fn, options.class_axis));
    const index_type classes = lp.extent(a);
    const extents_type<R - 1> sample_shape = detail::drop_axis<R>(lp.shape(), a);
    detail::check_reduction(fn, options.reduction);
    detail::check_shape<R - 1>(fn, "targets", tg.shape(), "log_probs.shape without the class axis", sample_shape);
    detail::check_data(fn, "log_probs", lp);
    detail::check_data(fn, "targets", tg);
    const detail::class_weights<T> cw = detail::read_weights(fn, options.weight, classes);
    detail::check_loss_outputs(fn, "log_probs", lp, tg, options.weight, options.reduction, outputs, sample_shape);
    const detail::target_scan scan = detail::scan_class_targets(fn, tg, classes, options.ignore_index, cw);

    // Losses first: with an in-place gradient, every log-probability is read before any write.
    const bool has_losses = detail::is_given(outputs.losses);
    detail::neumaier_sum total;
    auto full_index = [&](const extents_type<R - 1>& idx, std::int64_t t) {
        extents_type<R> full{};
        for (std::size_t k = 0, j = 0; k < R; ++k) full[k] = (k == a) ? static_cast<index_type>(t) : idx[j++];
        return full;
    };
    detail::for_each_index<R - 1>(sample_shape, [&](const extents_type<R - 1>& idx) {
        const std::int64_t t = tg[idx];
        double loss = 0;
        if (t != options.ignore_index) {
            const double w = cw.at(t);
            if (w != 0) loss = -w * static_cast<double>(lp[full_index(idx, t)]);
        }
        total.add(loss);
        if (has_losses) outputs.losses[idx] = static_cast<T>(loss);
    });

    if (detail::is_given(outputs.grad)) {
        const bool has_upstream = detail::is_given(outputs.upstream);
        const double scale = detail::gradient_scale(options.reduction, scan.weight_total);
        detail::fill(outputs.grad, T(0));
        detail::for_each_index<R - 1>(sample_shape, [&](const extents_type<R - 1>& idx) {
            const std::int64_t t = tg[idx];
            if (t == options.ignore_index) return;
            const double up = has_upstream ? static_cast<double>(outputs.upstream[idx]) : 1.0;
            outputs.grad[full_index(idx, t)] = static_cast<T>(-cw.at(t) * (scale * up));
        });
    }
    return detail::reduce_total(options.reduction, total.value(), scan.weight_total);
}

}  // namespace logitkit
