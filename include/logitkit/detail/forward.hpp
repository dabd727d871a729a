// logitkit — validation and dispatch shared by the public functions.
// SPDX-License-Identifier: MIT
#pragma once

#include <string>
#include <type_traits>

#include "../softmax_options.hpp"
#include "../tensor_view.hpp"
#include "checks.hpp"
#include "masking.hpp"
#include "ops.hpp"

namespace logitkit {
namespace detail {

template <class S>
constexpr bool is_element_type = std::is_same<S, float>::value || std::is_same<S, double>::value ||
                                 is_reduced_precision<S>::value;

/// Input and output of one element type: float, double, bfloat16 or float16.
template <class In, class Out>
constexpr void check_element_types() {
    static_assert(!std::is_const<Out>::value, "logitkit: the output view must not be a view of const");
    static_assert(is_element_type<Out>, "logitkit: the element type must be float, double, bfloat16 or float16");
    static_assert(std::is_same<std::remove_const_t<In>, Out>::value,
                  "logitkit: the input and output views must have the same element type");
}

/// softmax and log_softmax also convert: float input with bfloat16 / float16 output, or the reverse.
template <class In, class Out>
constexpr void check_forward_element_types() {
    using I = std::remove_const_t<In>;
    static_assert(!std::is_const<Out>::value, "logitkit: the output view must not be a view of const");
    static_assert(is_element_type<I> && is_element_type<Out>,
                  "logitkit: the element types must be float, double, bfloat16 or float16");
    static_assert(std::is_same<compute_type_t<I>, compute_type_t<Out>>::value,
                  "logitkit: the input and output views must have the same element type, or float and "
                  "bfloat16 / float16 (either way round)");
}

template <class TM, class S>
constexpr void check_mask_type() {
    static_assert(std::is_same<std::remove_const_t<TM>, bool>::value || std::is_same<std::remove_const_t<TM>, S>::value,
                  "logitkit: a mask holds bool (true keeps the element) or the input's element type (added to "
                  "the input; -inf masks the element)");
}

/// The mask seen with the input's shape: its dimensions align with the input's last ones, and an
/// extent of 1 (or a missing leading dimension) broadcasts, as in NumPy.
template <class M, std::size_t S, std::size_t R>
broadcast_mask<M, R> checked_mask(const char* fn, const tensor_view<const M, S>& mask, const char* shape_name,
                                  const extents_type<R>& shape) {
    static_assert(S >= 1 && S <= R, "logitkit: a mask has rank 1 to the input's rank (its dimensions align with "
                                    "the input's last dimensions)");
    check_data(fn, "mask", mask);
    broadcast_mask<M, R> b;
    b.data = mask.data();
    for (std::size_t k = 0; k < R; ++k) {
        if (k < R - S) continue;
        const std::size_t mk = k - (R - S);
        const index_type e = mask.extent(mk);
        if (e != shape[k] && e != 1)
            fail_argument(fn, "mask.shape = " + format_extents(mask.shape()) + " cannot be broadcast to " + shape_name +
                                  " = " + format_extents(shape) +
                                  "; expected each extent of mask (aligned with the last dimensions) to be 1 or "
                                  "the matching extent");
        b.strides[k] = e == 1 ? 0 : mask.stride(mk);
    }
    return b;
}

inline causal_rule checked_causal(const char* fn, const softmax_options& options, int axis) {
    causal_rule c;
    c.on = options.causal;
    c.offset = options.causal_offset;
    if (c.on) {
        if (axis == 0)
            fail_argument(fn, "options.causal = true needs a query dimension just before the axis; expected an "
                              "axis >= 1, got the axis 0");
        c.query_axis = static_cast<std::size_t>(axis - 1);
    }
    return c;
}

template <class T>
struct checked_call {
    int axis;
    T temperature;
    causal_rule causal;
    executor* parallel;
};

template <class T, class SX, class SY, std::size_t R>
checked_call<T> check_forward(const char* fn, const tensor_view<const SX, R>& x, const tensor_view<SY, R>& y, int axis,
                              const softmax_options& options) {
    checked_call<T> c;
    c.axis = normalize_axis<R>(fn, axis);
    check_shape(fn, "y", y.shape(), "x.shape", x.shape());
    c.temperature = checked_temperature<T>(fn, options.temperature);
    c.causal = checked_causal(fn, options, c.axis);
    c.parallel = options.parallel;
    check_data(fn, "x", x);
    check_data(fn, "y", y);
    check_distinct_elements(fn, "y", y);
    check_no_overlap(fn, "y", y, "x", x, std::is_same<SX, SY>::value);
    return c;
}

template <class Arch, template <class, class> class Op, class T, class SX, class SY, std::size_t R, class M>
void run_forward(const tensor_view<const SX, R>& x, const tensor_view<SY, R>& y, const checked_call<T>& c,
                 const broadcast_mask<M, R>& mask) {
    const auto layout = make_layout(x.shape(), x, y);
    const std::size_t a = static_cast<std::size_t>(c.axis);
    constexpr bool same_types = std::is_same<SX, T>::value && std::is_same<SY, T>::value;
    if (mask.data != nullptr || c.causal.on) {
        run_masked_forward<Arch, Op, T, SX, SY>(layout, mask, c.causal, a, c.temperature, c.parallel);
        return;
    }
    const auto run = [&](const auto& op) {
        if constexpr (same_types)
            run_along_axis<Arch, T>(op, layout, a, c.parallel);
        else
            run_converted_forward<Arch, T, SX, SY>(op, layout, a, c.parallel);
    };
    if (c.temperature == T(1))
        run(Op<T, identity_input>{identity_input{}});
    else
        run(Op<T, divide_input<T>>{divide_input<T>{c.temperature}});
}

/// softmax and log_softmax: y = op(x / T) along axis, with options.causal if set.
template <class Arch, template <class, class> class Op, class SX, class SY, std::size_t R>
void forward(const char* fn, const tensor_view<const SX, R>& x, const tensor_view<SY, R>& y, int axis,
             const softmax_options& options) {
    using T = compute_type_t<SY>;
    const checked_call<T> c = check_forward<T>(fn, x, y, axis, options);
    run_forward<Arch, Op>(x, y, c, broadcast_mask<bool, R>{});
}

/// softmax and log_softmax under a mask view (and options.causal if set).
template <class Arch, template <class, class> class Op, class SX, class SY, std::size_t R, class M, std::size_t S>
void forward(const char* fn, const tensor_view<const SX, R>& x, const tensor_view<SY, R>& y,
             const tensor_view<const M, S>& mask, int axis, const softmax_options& options) {
    using T = compute_type_t<SY>;
    const checked_call<T> c = check_forward<T>(fn, x, y, axis, options);
    const broadcast_mask<M, R> b = checked_mask(fn, mask, "x.shape", x.shape());
    check_no_overlap(fn, "y", y, "mask", mask, false);
    run_forward<Arch, Op>(x, y, c, b);
}

template <class T, class S, std::size_t R>
checked_call<T> check_backward(const char* fn, const tensor_view<const S, R>& y, const tensor_view<const S, R>& dy,
                               const tensor_view<S, R>& dx, int axis, const softmax_options& options) {
    checked_call<T> c;
    c.axis = normalize_axis<R>(fn, axis);
    check_shape(fn, "dy", dy.shape(), "y.shape", y.shape());
    check_shape(fn, "dx", dx.shape(), "y.shape", y.shape());
    c.temperature = checked_temperature<T>(fn, options.temperature);
    c.causal = checked_causal(fn, options, c.axis);
    c.parallel = options.parallel;
    check_data(fn, "y", y);
    check_data(fn, "dy", dy);
    check_data(fn, "dx", dx);
    check_distinct_elements(fn, "dx", dx);
    check_no_overlap(fn, "dx", dx, "y", y, true);
    check_no_overlap(fn, "dx", dx, "dy", dy, true);
    return c;
}

template <class Arch, template <class> class Op, class T, class S, std::size_t R, class M>
void run_backward(const tensor_view<const S, R>& y, const tensor_view<const S, R>& dy, const tensor_view<S, R>& dx,
                  const checked_call<T>& c, const broadcast_mask<M, R>& mask) {
    const auto layout = make_layout(y.shape(), y, dy, dx);
    const std::size_t a = static_cast<std::size_t>(c.axis);
    constexpr bool stored_as_t = std::is_same<S, T>::value;
    if (!stored_as_t || mask.data != nullptr || c.causal.on || c.temperature != T(1))
        run_masked_backward<Arch, Op<T>, T, S>(layout, mask, c.causal, a, c.temperature, c.parallel);
    else if constexpr (stored_as_t)
        run_along_axis<Arch, T>(Op<T>{}, layout, a, c.parallel);
}

/// softmax_backward and log_softmax_backward: dx from y and dy along axis.
template <class Arch, template <class> class Op, class S, std::size_t R>
void backward(const char* fn, const tensor_view<const S, R>& y, const tensor_view<const S, R>& dy,
              const tensor_view<S, R>& dx, int axis, const softmax_options& options) {
    using T = compute_type_t<S>;
    const checked_call<T> c = check_backward<T>(fn, y, dy, dx, axis, options);
    run_backward<Arch, Op>(y, dy, dx, c, broadcast_mask<bool, R>{});
}

/// The backward kernels under a mask view (and options.causal if set).
template <class Arch, template <class> class Op, class S, std::size_t R, class M, std::size_t MR>
void backward(const char* fn, const tensor_view<const S, R>& y, const tensor_view<const S, R>& dy,
              const tensor_view<S, R>& dx, const tensor_view<const M, MR>& mask, int axis,
              const softmax_options& options) {
    using T = compute_type_t<S>;
    const checked_call<T> c = check_backward<T>(fn, y, dy, dx, axis, options);
    const broadcast_mask<M, R> b = checked_mask(fn, mask, "y.shape", y.shape());
    check_no_overlap(fn, "dx", dx, "mask", mask, false);
    run_backward<Arch, Op>(y, dy, dx, c, b);
}

}  // namespace detail
}  // namespace logitkit
