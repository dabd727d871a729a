// logitkit — log_softmax and its backward kernel, unmasked and masked.
// SPDX-License-Identifier: MIT
#pragma once

#include "detail/forward.hpp"
#include "softmax_options.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// y = log_softmax(x / T) along `axis`, as PyTorch's F.log_softmax(x / T, dim).
/// float: |error| <= 1e-6 * max(1, |y|); double: 1e-14 * max(1, |y|) (see README).
/// With options.causal, masked elements are -inf (see the masked overload).
template <class Arch = detail::default_arch, class TX, class TY, std::size_t R>
void log_softmax(const tensor_view<TX, R>& x, const tensor_view<TY, R>& y, int axis = -1,
                 const softmax_options& options = {}) {
    detail::check_forward_element_types<TX, TY>();
    detail::forward<Arch, detail::log_softmax_op>("log_softmax", tensor_view<const std::remove_const_t<TX>, R>(x), y, axis,
                                                  options);
}

/// Masked log_softmax: the log_softmax of the kept elements of each line, -inf at masked ones.
/// The mask is as for softmax's masked overload. A line with no kept element is all -inf (never
/// NaN).
template <class Arch = detail::default_arch, class TX, class TY, std::size_t R, class TM, std::size_t S>
void log_softmax(const tensor_view<TX, R>& x, const tensor_view<TY, R>& y, const tensor_view<TM, S>& mask,
                 int axis = -1, const softmax_options& options = {}) {
    detail::check_forward_element_types<TX, TY>();
    detail::check_mask_type<TM, std::remove_const_t<TX>>();
    using M = std::remove_const_t<TM>;
    detail::forward<Arch, detail::log_softmax_op>("log_softmax", tensor_view<const std::remove_const_t<TX>, R>(x), y,
                                                  tensor_view<const M, S>(mask), axis, options);
}

/// dx = (dy - exp(y) * sum(dy)) / T along `axis`, the gradient of log_softmax given its output y
/// and the gradient dy of its output (T: options.temperature, as for softmax_backward). dx may be
/// exactly y or exactly dy.
template <class Arch = detail::default_arch, class TY, class TDY, class TDX, std::size_t R>
void log_softmax_backward(const tensor_view<TY, R>& y, const tensor_view<TDY, R>& dy, const tensor_view<TDX, R>& dx,
                          int axis = -1, const softmax_options& options = {}) {
    detail::check_element_types<TY, TDX>();
    detail::check_element_types<TDY, TDX>();
    detail::backward<Arch, detail::log_softmax_backward_op>("log_softmax_backward", tensor_view<const TDX, R>(y),
                                                                tensor_view<const TDX, R>(dy), dx, axis, options);
}

/// The gradient of masked log_softmax: dy counts as 0 at masked elements, and dx is 0 there.
template <class Arch = detail::default_arch, class TY, class TDY, class TDX, std::size_t R, class TM, std::size_t S>
void log_softmax_backward(const tensor_view<TY, R>& y, const tensor_view<TDY, R>& dy, const tensor_view<TDX, R>& dx,
                          const tensor_view<TM, S>& mask, int axis = -1, const softmax_options& options = {}) {
    detail::check_element_types<TY, TDX>();
    detail::check_element_types<TDY, TDX>();
    detail::check_mask_type<TM, TDX>();
    using M = std::remove_const_t<TM>;
    detail::backward<Arch, detail::log_softmax_backward_op>("log_softmax_backward", tensor_view<const TDX, R>(y),
                                                                tensor_view<const TDX, R>(dy), dx,
                                                                tensor_view<const M, S>(mask), axis, options);
}

}  // namespace logitkit
