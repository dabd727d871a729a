// logitkit — softmax and its backward kernel, unmasked and masked.
// SPDX-License-Identifier: MIT
#pragma once

#include "detail/forward.hpp"
#include "softmax_options.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// y = softmax(x / T) along `axis` (negative counts from the end), as PyTorch's
/// F.softmax(x / T, dim). y may be exactly x (in place); otherwise they must not overlap.
/// float: relative error <= 5e-7 for outputs >= FLT_MIN; double: <= 1e-14 (see README).
/// With options.causal, masked elements are 0 (see the masked overload).
/// Throws std::out_of_range for a bad axis, std::invalid_argument for any other bad argument.
template <class Arch = detail::default_arch, class TX, class TY, std::size_t R>
void softmax(const tensor_view<TX, R>& x, const tensor_view<TY, R>& y, int axis = -1,
             const softmax_options& options = {}) {
    detail::check_forward_element_types<TX, TY>();
    detail::forward<Arch, detail::softmax_op>("softmax", tensor_view<const std::remove_const_t<TX>, R>(x), y, axis,
                                              options);
}

/// Masked softmax: the softmax of the kept elements of each line, 0 at masked elements.
/// mask: bool (true keeps the element) or x's element type (added to x / T; -inf masks the
/// element), of rank 1 to R, broadcast to x's shape from the last dimension (extent 1 repeats).
/// options.causal masks further. A line with no kept element is all 0 (never NaN); otherwise the
/// kept elements follow the unmasked rules (a kept NaN or +inf gives NaN on the kept elements).
template <class Arch = detail::default_arch, class TX, class TY, std::size_t R, class TM, std::size_t S>
void softmax(const tensor_view<TX, R>& x, const tensor_view<TY, R>& y, const tensor_view<TM, S>& mask, int axis = -1,
             const softmax_options& options = {}) {
    detail::check_forward_element_types<TX, TY>();
    detail::check_mask_type<TM, std::remove_const_t<TX>>();
    using M = std::remove_const_t<TM>;
    detail::forward<Arch, detail::softmax_op>("softmax", tensor_view<const std::remove_const_t<TX>, R>(x), y,
                                              tensor_view<const M, S>(mask), axis, options);
}

/// dx = y * (dy - sum(dy * y)) / T along `axis`, the gradient of softmax given its output y and
/// the gradient dy of its output (T: options.temperature, so that passing the forward call's
/// options gives the gradient with respect to its x). dx may be exactly y or exactly dy.
template <class Arch = detail::default_arch, class TY, class TDY, class TDX, std::size_t R>
void softmax_backward(const tensor_view<TY, R>& y, const tensor_view<TDY, R>& dy, const tensor_view<TDX, R>& dx,
                      int axis = -1, const softmax_options& options = {}) {
    detail::check_element_types<TY, TDX>();
    detail::check_element_types<TDY, TDX>();
    detail::backward<Arch, detail::softmax_backward_op>("softmax_backward", tensor_view<const TDX, R>(y),
                                                            tensor_view<const TDX, R>(dy), dx, axis, options);
}

/// The gradient of masked softmax: dy counts as 0 at masked elements, and dx is 0 there.
template <class Arch = detail::default_arch, class TY, class TDY, class TDX, std::size_t R, class TM, std::size_t S>
void softmax_backward(const tensor_view<TY, R>& y, const tensor_view<TDY, R>& dy, const tensor_view<TDX, R>& dx,
                      const tensor_view<TM, S>& mask, int axis = -1, const softmax_options& options = {}) {
    detail::check_element_types<TY, TDX>();
    detail::check_element_types<TDY, TDX>();
    detail::check_mask_type<TM, TDX>();
    using M = std::remove_const_t<TM>;
    detail::backward<Arch, detail::softmax_backward_op>("softmax_backward", tensor_view<const TDX, R>(y),
                                                            tensor_view<const TDX, R>(dy), dx,
                                                            tensor_view<const M, S>(mask), axis, options);
}

}  // namespace logitkit
