// logitkit — validation and dispatch shared by the public functions.
// SPDX-License-Identifier: MIT
#pragma once

#include <type_traits>

#include "../softmax_options.hpp"
#include "../tensor_view.hpp"
#include "checks.hpp"
#include "ops.hpp"

namespace logitkit {
namespace detail {

template <class In, class Out>
constexpr void check_element_types() {
    static_assert(std::is_same<std::remove_const_t<In>, Out>::value,
                  "logitkit: the input and output views must have the same element type");
    static_assert(!std::is_const<Out>::value, "logitkit: the output view must not be a view of const");
    static_assert(std::is_same<Out, float>::value || std::is_same<Out, double>::value,
                  "logitkit: the element type must be float or double");
}

/// softmax and log_softmax: y = op(x / T) along axis.
template <class Arch, template <class, class> class Op, class T, std::size_t R>
void forward(const char* fn, const tensor_view<const T, R>& x, const tensor_view<T, R>& y, int axis,
             const softmax_options& options) {
    const int a = normalize_axis<R>(fn, axis);
    check_shape(fn, "y", y.shape(), "x.shape", x.shape());
    const T t = checked_temperature<T>(fn, options.temperature);
    check_data(fn, "x", x);
    check_data(fn, "y", y);
    check_distinct_elements(fn, "y", y);
    check_no_overlap(fn, "y", y, "x", x, true);
    const auto layout = make_layout<T>(x.shape(), x, y);
    if (t == T(1))
        run_along_axis<Arch, T>(Op<T, identity_input>{identity_input{}}, layout, static_cast<std::size_t>(a));
    else
        run_along_axis<Arch, T>(Op<T, divide_input<T>>{divide_input<T>{t}}, layout, static_cast<std::size_t>(a));
}

/// softmax_backward and log_softmax_backward: dx from y and dy along axis.
template <class Arch, class Op, class T, std::size_t R>
void backward(const char* fn, const tensor_view<const T, R>& y, const tensor_view<const T, R>& dy,
              const tensor_view<T, R>& dx, int axis) {
    const int a = normalize_axis<R>(fn, axis);
    check_shape(fn, "dy", dy.shape(), "y.shape", y.shape());
    check_shape(fn, "dx", dx.shape(), "y.shape", y.shape());
    check_data(fn, "y", y);
    check_data(fn, "dy", dy);
    check_data(fn, "dx", dx);
    check_distinct_elements(fn, "dx", dx);
    check_no_overlap(fn, "dx", dx, "y", y, true);
    check_no_overlap(fn, "dx", dx, "dy", dy, true);
    run_along_axis<Arch, T>(Op{}, make_layout<T>(y.shape(), y, dy, dx), static_cast<std::size_t>(a));
}

}  // namespace detail
}  // namespace logitkit
