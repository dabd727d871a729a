// logitkit — logsumexp.
// SPDX-License-Identifier: MIT
#pragma once

#include "detail/forward.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// out = log(sum(exp(x))) along `axis`; out has x's shape with extent 1 on the axis (keepdim).
/// An all -inf line (or an empty axis) gives -inf; a line holding +inf gives +inf, or NaN when it
/// also holds a NaN. float: |error| <= 1e-6 * max(1, |out|); double: 1e-14 * max(1, |out|);
/// bfloat16 / float16: computed in float and rounded once (within 1 ulp of the storage type).
/// With an executor (see executor.hpp) the lines are split over its threads, bit-identically.
template <class Arch = detail::default_arch, class TX, class TO, std::size_t R>
void logsumexp(const tensor_view<TX, R>& x, const tensor_view<TO, R>& out, int axis = -1,
               executor* parallel = nullptr) {
    detail::check_element_types<TX, TO>();
    constexpr const char* fn = "logsumexp";
    const int a = detail::normalize_axis<R>(fn, axis);
    extents_type<R> expected = x.shape();
    expected[static_cast<std::size_t>(a)] = 1;
    detail::check_shape(fn, "out", out.shape(), "x.shape with extent 1 on the axis", expected);
    detail::check_data(fn, "x", x);
    detail::check_data(fn, "out", out);
    detail::check_distinct_elements(fn, "out", out);
    detail::check_no_overlap(fn, "out", out, "x", x, false);
    using T = detail::compute_type_t<TO>;
    const tensor_view<const TO, R> xc(x);
    const auto layout = detail::make_layout(x.shape(), xc, out);
    if constexpr (std::is_same<TO, T>::value)
        detail::run_along_axis<Arch, T>(detail::logsumexp_op<T>{}, layout, static_cast<std::size_t>(a), parallel);
    else
        detail::run_converted<Arch, T, TO>(detail::logsumexp_op<T>{}, layout, static_cast<std::size_t>(a), parallel);
}

}  // namespace logitkit
