// logitkit — softmax and its backward kernel.
// SPDX-License-Identifier: MIT
#pragma once

#include "detail/forward.hpp"
#include "softmax_options.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// y = softmax(x / T) along `axis` (negative counts from the end), as PyTorch's
/// F.softmax(x / T, dim). y may be exactly x (in place); otherwise they must not overlap.
/// float: relative error <= 5e-7 for outputs >= FLT_MIN; double: <= 1e-14 (see README).
/// Throws std::out_of_range for a bad axis, std::invalid_argument for any other bad argument.
template <class Arch = detail::default_arch, class TX, class TY, std::size_t R>
void softmax(const tensor_view<TX, R>& x, const tensor_view<TY, R>& y, int axis = -1,
             const softmax_options& options = {}) {
    detail::check_element_types<TX, TY>();
    detail::forward<Arch, detail::softmax_op>("softmax", tensor_view<const TY, R>(x), y, axis, options);
}

/// dx = y * (dy - sum(dy * y)) along `axis`, the gradient of softmax given its output y and the
/// gradient dy of its output. dx may be exactly y or exactly dy.
template <class Arch = detail::default_arch, class TY, class TDY, class TDX, std::size_t R>
void softmax_backward(const tensor_view<TY, R>& y, const tensor_view<TDY, R>& dy, const tensor_view<TDX, R>& dx,
                      int axis = -1) {
    detail::check_element_types<TY, TDX>();
    detail::check_element_types<TDY, TDX>();
    detail::backward<Arch, detail::softmax_backward_op<TDX>>("softmax_backward", tensor_view<const TDX, R>(y),
                                                            tensor_view<const TDX, R>(dy), dx, axis);
}

}  // namespace logitkit
