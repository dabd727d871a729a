// logitkit — fused softmax cross-entropy: loss and gradient from the logits, in one call, with no
// probability tensor.
// SPDX-License-Identifier: MIT
//
//   template <class T> struct cross_entropy_options {
//       int class_axis = 1;                 // PyTorch's class axis; -1 for [..., C] (TensorFlow)
//       tensor_view<const T, 1> weight;     // per-class weights, empty = all 1
//       std::int64_t ignore_index = -100;   // class-index targets equal to it count for nothing
//       double label_smoothing = 0;         // in [0, 1]
//       reduction reduction = reduction::mean;
//       double z_loss = 0;                  // adds z_loss * logsumexp^2 per sample
//   };
//
//   // targets as class indices (std::int64_t, the logits' shape without the class axis)
//   double cross_entropy(logits, targets, options = {}, outputs = {});
//   // targets as class probabilities (the logits' shape)
//   double cross_entropy(logits, probabilities, options = {}, outputs = {});
//
// `reduction` and `loss_outputs` (grad, losses, upstream) are defined in nll_loss.hpp.
//
// Example: mean loss and its gradient, in place, over [N, C] float logits.
//   logitkit::tensor_view<float, 2> x(logits, {n, c});
//   logitkit::tensor_view<const std::int64_t, 1> t(labels, {n});
//   logitkit::loss_outputs<float, 2> out;
//   out.grad = x;                                   // the gradient replaces the logits
//   double loss = logitkit::cross_entropy(x, t, {}, out);
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "detail/checks.hpp"
#include "detail/cross_entropy_kernels.hpp"
#include "detail/loss_common.hpp"
#include "detail/simd.hpp"
#include "detail/staging.hpp"
#include "nll_loss.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// Options of cross_entropy.
template <class T>
struct cross_entropy_options {
    /// The axis of the logits that holds the classes; negative counts from the end. PyTorch's is 1
    /// ([N, C], [N, C, d1, ...]); TensorFlow's is -1 ([..., C]).
    int class_axis = 1;
    /// One weight per class (length C), or empty for all 1.
    tensor_view<const T, 1> weight{};
    /// Class-index targets equal to this value are ignored: loss 0, gradient 0, and they do not
    /// count in the mean. With class-probability targets it must be negative (as in PyTorch).
    std::int64_t ignore_index = -100;
    /// The target distribution is mixed with the uniform one: (1 - eps) * target + eps / C.
    /// Must be in [0, 1].
    double label_smoothing = 0.0;
    logitkit::reduction reduction = logitkit::reduction::mean;
    /// Adds z_loss * lse^2 to the loss of every sample that is not ignored, lse being the
    /// log-sum-exp of its logits (the auxiliary "z-loss" that keeps lse near 0). Finite, >= 0.
    double z_loss = 0.0;
};

namespace detail {

/// cross_entropy on bfloat16 / float16 logits, through float copies (staging.hpp).
template <class Arch, class S, std::size_t R, class TG, std::size_t RG>
double cross_entropy_staged(const tensor_view<const S, R>& x, const tensor_view<TG, RG>& targets,
                            const cross_entropy_options<S>& options, const loss_outputs<S, R>& outputs);

}  // namespace detail

namespace detail {

template <class Arch, bool Soft, class T, std::size_t R, class TG, std::size_t RG>
double cross_entropy_impl(const tensor_view<const T, R>& x, const tensor_view<TG, RG>& targets,
                          const cross_entropy_options<T>& options, const loss_outputs<T, R>& outputs,
                          const class_weights<T>& cw, std::size_t axis, double mean_denominator) {
    xent::problem<T, R> P;
    P.axis = axis;
    P.p.classes = x.extent(axis);
    P.p.weight = cw.data();
    P.p.weight_sum = cw.sum;
    P.p.smoothing = options.label_smoothing;
    P.p.z = options.z_loss;
    P.p.ignore_index = options.ignore_index;
    P.p.grad = is_given(outputs.grad) && outputs.grad.size() != 0;
    P.has_losses = is_given(outputs.losses) && outputs.losses.size() != 0;
    P.has_upstream = is_given(outputs.upstream) && outputs.upstream.size() != 0;
    P.scale = gradient_scale(options.reduction, mean_denominator);

    auto& L = P.layout;
    L.shape = x.shape();
    for (auto& s : L.strides) s = extents_type<R>{};
    for (auto& b : L.base) b = nullptr;
    L.base[0] = byte_pointer(x.data());
    L.strides[0] = x.strides();
    if (P.p.grad) {
        L.base[1] = byte_pointer(outputs.grad.data());
        L.strides[1] = outputs.grad.strides();
    }
    L.base[2] = byte_pointer(targets.data());
    if constexpr (Soft)
        L.strides[2] = targets.strides();
    else
        L.strides[2] = insert_axis<R>(targets.strides(), axis);
    if (P.has_losses) {
        L.base[3] = byte_pointer(outputs.losses.data());
        L.strides[3] = insert_axis<R>(outputs.losses.strides(), axis);
    }
    if (P.has_upstream) {
        L.base[4] = byte_pointer(outputs.upstream.data());
        L.strides[4] = insert_axis<R>(outputs.upstream.strides(), axis);
    }
    const double total = xent::run<Arch, Soft>(P);
    return reduce_total(options.reduction, total, mean_denominator);
}

}  // namespace detail

/// Softmax cross-entropy with class-index targets, as PyTorch's F.cross_entropy.
///
/// logits:  [N, C] or [N, C, d1, ...] (rank 2 to 8; classes on options.class_axis), float or double.
/// targets: class indices (std::int64_t), the logits' shape without the class axis.
/// Per sample, with p = softmax(logits) along the class axis, lse its log-sum-exp, t the target,
/// w the class weights (all 1 when none) and eps the label smoothing:
///   loss = (1 - eps) * w[t] * -log p[t] + eps / C * sum_c w[c] * -log p[c] + z_loss * lse^2,
/// and 0 when t == ignore_index. reduction::mean divides the sum of the losses by the sum of w[t]
/// over the samples that are not ignored (PyTorch's normalisation, also with label smoothing), so
/// it is NaN when every target is ignored or there are no samples; reduction::sum adds them.
/// Returns the mean or the sum, accumulated in double; for reduction::none, the sum of the
/// per-sample losses, which go to outputs.losses when given.
///
/// outputs.grad (optional; may be exactly the logits view, then overwritten in place) receives
/// d(loss)/d(logits): scale * ((A + 2 z_loss lse) * p[c] - a[c]) with a[c] = (1 - eps) w[t] [c == t]
/// + eps / C * w[c], A = sum_c a[c], scale = 1 / (sum of w[t]) for the mean, 1 for the sum, and
/// upstream[i] (or 1) for reduction::none. Ignored samples get a zero gradient and are not read.
///
/// Special values: a line whose maximum is not finite (a NaN, a +inf, or only -inf) has a NaN loss
/// and a NaN gradient, as log_softmax is NaN there. -inf logits elsewhere are fine (their
/// probability is 0); a term whose coefficient is 0 (zero weight, no smoothing) adds 0 even when
/// its log-probability is -inf, where PyTorch gives 0 * inf = NaN.
/// Accuracy (tested against a long double reference): per-sample loss |err| <= tol * max(1, |loss|)
/// + z_loss (2 |lse| + d) d, with tol = 2e-6 (float) / 1e-12 (double) and d = tol * max(1, |lse|)
/// the accuracy of lse; gradient |err| <= 2e-6 (float) / 1e-12 (double)
/// times scale * ((|A + 2 z_loss lse| + 2 z_loss max(1, |lse|)) * p[c] + a[c]) (lse is known to
/// an ulp of max(1, |lse|)), plus 4 + 2 * scale * |A + 2 z_loss lse| subnormal units (a subnormal
/// exp(x[c] - max) is rounded). The bound holds while the intermediates fit the element type: the
/// gradient coefficient scale * (A + 2 z_loss lse) / sum(exp(x - max)) and scale * a[c], and for
/// the loss the terms w[c] * (max - x[c]) (label smoothing) and a[c] * (max - x[c])
/// (probabilities), which are summed in the element type; beyond that range the results are those
/// of IEEE arithmetic in the element type (inf, or NaN for inf * 0), as for the backward kernels.
/// Each line of logits is read once for the loss, twice with a gradient or label smoothing, and
/// once more where the loss needs log(sum(exp(x - max))) closer than that sum's rounding (a
/// confident line, the sum near 1, under a class mass A well above 1).
///
/// Throws std::invalid_argument, before writing anything, for a target outside [0, C) that is not
/// ignore_index (naming its value and position), a shape mismatch, a weight vector whose length is
/// not C, label_smoothing outside [0, 1], a negative or non-finite z_loss, an upstream gradient
/// with a reduction other than none, or outputs that overlap the inputs; std::out_of_range for a
/// bad class_axis.
template <class Arch = detail::default_arch, class TL, class TT, std::size_t R>
double cross_entropy(const tensor_view<TL, R>& logits, const tensor_view<TT, R - 1>& targets,
                     const cross_entropy_options<std::remove_const_t<TL>>& options = {},
                     const loss_outputs<std::remove_const_t<TL>, R>& outputs = {}) {
    using T = std::remove_const_t<TL>;
    if constexpr (detail::is_reduced_precision<T>::value) {
        static_assert(std::is_same<std::remove_const_t<TT>, std::int64_t>::value,
                      "logitkit: class-index targets must be a tensor_view of std::int64_t");
        return detail::cross_entropy_staged<Arch>(tensor_view<const T, R>(logits),
                                                  tensor_view<const std::int64_t, R - 1>(targets), options, outputs);
    } else {
        detail::check_loss_types<TL, TT>();
        constexpr const char* fn = "cross_entropy";
        const tensor_view<const T, R> x(logits);
        const tensor_view<const std::int64_t, R - 1> tg(targets);

        const std::size_t a = static_cast<std::size_t>(detail::normalize_axis<R>(fn, options.class_axis));
        const index_type classes = x.extent(a);
        const extents_type<R - 1> sample_shape = detail::drop_axis<R>(x.shape(), a);
        detail::check_reduction(fn, options.reduction);
        detail::check_label_smoothing(fn, options.label_smoothing);
        detail::check_z_loss(fn, options.z_loss);
        detail::check_shape<R - 1>(fn, "targets", tg.shape(), "logits.shape without the class axis", sample_shape);
        detail::check_data(fn, "logits", x);
        detail::check_data(fn, "targets", tg);
        const detail::class_weights<T> cw = detail::read_weights(fn, options.weight, classes);
        detail::check_loss_outputs(fn, "logits", x, tg, options.weight, options.reduction, outputs, sample_shape);
        const detail::target_scan scan = detail::scan_class_targets(fn, tg, classes, options.ignore_index, cw);
        return detail::cross_entropy_impl<Arch, false>(x, tg, options, outputs, cw, a, scan.weight_total);
    }
}

/// Softmax cross-entropy with class-probability ("soft") targets, as PyTorch's F.cross_entropy
/// when the target has the logits' shape.
///
/// targets: class probabilities q >= 0, the logits' shape (they need not sum to 1).
/// Per sample: loss = sum_c a[c] * -log p[c] + z_loss * lse^2 with a[c] = w[c] * ((1 - eps) q[c] +
/// eps / C). reduction::mean divides the sum by the number of samples (not by a weight sum, as
/// PyTorch); NaN when there are none. The gradient is scale * ((A + 2 z_loss lse) * p[c] - a[c]),
/// A = sum_c a[c], scale = 1 / (number of samples) for the mean. options.ignore_index must be
/// negative (PyTorch does not support it with probabilities).
/// Everything else (outputs, special values, accuracy, errors) is as for class indices; a negative
/// or NaN probability is rejected with its position.
template <class Arch = detail::default_arch, class TL, class TP, std::size_t R>
double cross_entropy(const tensor_view<TL, R>& logits, const tensor_view<TP, R>& targets,
                     const cross_entropy_options<std::remove_const_t<TL>>& options = {},
                     const loss_outputs<std::remove_const_t<TL>, R>& outputs = {}) {
    using T = std::remove_const_t<TL>;
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value ||
                      detail::is_reduced_precision<T>::value,
                  "logitkit: cross_entropy takes float, double, bfloat16 or float16 logits");
    static_assert(std::is_same<std::remove_const_t<TP>, T>::value,
                  "logitkit: class-probability targets must have the logits' element type (class indices are "
                  "std::int64_t with the logits' rank less one)");
    if constexpr (detail::is_reduced_precision<T>::value) {
        return detail::cross_entropy_staged<Arch>(tensor_view<const T, R>(logits), tensor_view<const T, R>(targets),
                                                  options, outputs);
    } else {
        constexpr const char* fn = "cross_entropy";
        const tensor_view<const T, R> x(logits);
        const tensor_view<const T, R> q(targets);

        const std::size_t a = static_cast<std::size_t>(detail::normalize_axis<R>(fn, options.class_axis));
        const extents_type<R - 1> sample_shape = detail::drop_axis<R>(x.shape(), a);
        detail::check_reduction(fn, options.reduction);
        detail::check_label_smoothing(fn, options.label_smoothing);
        detail::check_z_loss(fn, options.z_loss);
        if (options.ignore_index >= 0)
            detail::fail_argument(fn, "options.ignore_index = " + std::to_string(options.ignore_index) +
                                          " is not supported with class-probability targets; expected a negative "
                                          "ignore_index (the default is -100)");
        detail::check_shape<R>(fn, "targets", q.shape(), "logits.shape", x.shape(),
                               "class-probability targets have the logits' shape");
        detail::check_data(fn, "logits", x);
        detail::check_data(fn, "targets", q);
        const detail::class_weights<T> cw = detail::read_weights(fn, options.weight, x.extent(a));
        detail::check_loss_outputs(fn, "logits", x, q, options.weight, options.reduction, outputs, sample_shape);
        detail::scan_probabilities<Arch>(fn, q);

        index_type samples = 1;
        for (index_type e : sample_shape) samples *= e;
        const double total =
            detail::cross_entropy_impl<Arch, true>(x, q, options, outputs, cw, a, static_cast<double>(samples));
        // PyTorch: the mean over an empty input (no samples, or no classes) is NaN.
        if (options.reduction == reduction::mean && x.size() == 0) return std::numeric_limits<double>::quiet_NaN();
        return total;
    }
}

namespace detail {

template <class Arch, class S, std::size_t R, class TG, std::size_t RG>
double cross_entropy_staged(const tensor_view<const S, R>& x, const tensor_view<TG, RG>& targets,
                            const cross_entropy_options<S>& options, const loss_outputs<S, R>& outputs) {
    constexpr const char* fn = "cross_entropy";
    const std::size_t a = static_cast<std::size_t>(normalize_axis<R>(fn, options.class_axis));
    check_data(fn, "logits", x);
    check_data(fn, "targets", targets);
    check_data(fn, "options.weight", options.weight);
    check_loss_outputs(fn, "logits", x, targets, options.weight, options.reduction, outputs, drop_axis<R>(x.shape(), a));
    float_copy<R> xf = stage(x, true), grad = stage(outputs.grad, false);
    float_copy<R - 1> losses = stage(outputs.losses, false), upstream = stage(outputs.upstream, true);
    float_copy<1> weight = stage(options.weight, true);
    cross_entropy_options<float> of;
    of.class_axis = options.class_axis;
    of.weight = weight.cview();
    of.ignore_index = options.ignore_index;
    of.label_smoothing = options.label_smoothing;
    of.reduction = options.reduction;
    of.z_loss = options.z_loss;
    loss_outputs<float, R> out;
    out.grad = grad.view();
    out.losses = losses.view();
    out.upstream = upstream.cview();
    double result;
    if constexpr (std::is_same<std::remove_const_t<TG>, std::int64_t>::value) {
        result = cross_entropy<Arch>(xf.cview(), targets, of, out);
    } else {
        float_copy<R> q = stage(targets, true);
        result = cross_entropy<Arch>(xf.cview(), q.cview(), of, out);
    }
    unstage(grad, outputs.grad);
    unstage(losses, outputs.losses);
    return result;
}

}  // namespace detail

}  // namespace logitkit
