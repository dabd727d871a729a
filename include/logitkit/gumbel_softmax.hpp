// logitkit — gumbel_softmax, its straight-through backward, and gumbel_noise.
// SPDX-License-Identifier: MIT
//
//   struct gumbel_softmax_options { double tau = 1.0; bool hard = false; };
//
//   gumbel_noise(out, rng);                                   // out = Gumbel(0, 1) noise
//   gumbel_softmax(x, y, rng, options = {}, axis = -1);       // y = softmax((x + g) / tau)
//   gumbel_softmax(x, y, y_soft, rng, options = {}, axis = -1);  // also writes the soft sample
//   gumbel_softmax_backward(y_soft, dy, dx, options, axis = -1); // dx = (1/tau) y_soft (dy - sum(dy y_soft))
//
// `rng` is any UniformRandomBitGenerator (std::mt19937, std::mt19937_64, ...) or
// logitkit::philox4x32. The noise g of element i (in the row-major order of x's index space) is
// drawn from 32 random bits for float and 64 for double (philox4x32: the words at position
// offset + i * philox_words_per_element<T>), mapped to a uniform u in the open interval (0, 1)
// and turned into -log(-log(u)); see detail/gumbel_noise.hpp. It is always finite, and with
// philox4x32 it is the same, bit for bit, on every SIMD path and whatever split of the work into
// calls: a call on rows [r0, r1) of a row-major [N, C] tensor, given
// philox4x32(seed, offset + r0 * C * philox_words_per_element<T>), writes exactly those rows of
// the call on the whole tensor given philox4x32(seed, offset).
#pragma once

#include <cmath>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "detail/checks.hpp"
#include "detail/forward.hpp"
#include "detail/gumbel_kernels.hpp"
#include "detail/staging.hpp"
#include "philox.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// Options of gumbel_softmax and gumbel_softmax_backward.
struct gumbel_softmax_options {
    /// The temperature: finite and > 0 (and representable in the element type). Small values give
    /// samples close to one-hot.
    double tau = 1.0;
    /// Output the exact one-hot of the argmax (lowest index among equal maxima) instead of the
    /// soft sample. Its straight-through gradient is that of the soft sample (see
    /// gumbel_softmax_backward); ask for the soft sample with the y_soft overload.
    bool hard = false;
};

namespace detail {

template <class G>
constexpr void check_generator() {
    static_assert(!std::is_const<G>::value, "logitkit: the random generator must not be const (it is advanced)");
}

/// The checks of gumbel_softmax that concern the views' memory.
template <class S, std::size_t R>
void check_gumbel_memory(const char* fn, const tensor_view<const S, R>& x, const tensor_view<S, R>& y,
                         const tensor_view<S, R>* soft) {
    check_data(fn, "x", x);
    check_data(fn, "y", y);
    if (soft != nullptr) check_data(fn, "y_soft", *soft);
    check_distinct_elements(fn, "y", y);
    if (soft != nullptr) check_distinct_elements(fn, "y_soft", *soft);
    check_no_overlap(fn, "y", y, "x", x, true);
    if (soft != nullptr) {
        check_no_overlap(fn, "y_soft", *soft, "x", x, true);
        check_no_overlap(fn, "y_soft", *soft, "y", y, false);
    }
}

template <class Arch, class T, std::size_t R, class G>
void gumbel_softmax_impl(const tensor_view<const T, R>& x, const tensor_view<T, R>& y, const tensor_view<T, R>* soft,
                         G& rng, const gumbel_softmax_options& options, int axis) {
    constexpr const char* fn = "gumbel_softmax";
    const int a = normalize_axis<R>(fn, axis);
    check_shape(fn, "y", y.shape(), "x.shape", x.shape());
    if (soft != nullptr) check_shape(fn, "y_soft", soft->shape(), "x.shape", x.shape());
    const T tau = checked_temperature<T>(fn, options.tau, "tau");
    check_gumbel_memory(fn, x, y, soft);
    if (x.size() == 0) return;

    // z = (x + g) / tau goes to the soft output when there is one, else to y.
    const tensor_view<T, R>& z = soft != nullptr ? *soft : y;
    {
        noise_source_t<G> src(rng);
        write_perturbed<Arch>(src, &x, z, tau);
    }
    const auto ax = static_cast<std::size_t>(a);
    const tensor_view<const T, R> zc(z);
    if (options.hard) run_along_axis<Arch, T>(one_hot_op<T>{}, make_layout(x.shape(), zc, y), ax);
    if (!options.hard || soft != nullptr)
        run_along_axis<Arch, T>(softmax_op<T, identity_input>{identity_input{}}, make_layout(x.shape(), zc, z), ax);
    if (!options.hard && soft != nullptr) copy_view(zc, y);
}

/// gumbel_softmax_impl, or for bfloat16 / float16 the same on float copies (see staging.hpp):
/// the noise and the results are those of the float call on the widened x, rounded once.
template <class Arch, class S, std::size_t R, class G>
void gumbel_softmax_any(const tensor_view<const S, R>& x, const tensor_view<S, R>& y, const tensor_view<S, R>* soft,
                        G& rng, const gumbel_softmax_options& options, int axis) {
    if constexpr (!is_reduced_precision<S>::value) {
        gumbel_softmax_impl<Arch>(x, y, soft, rng, options, axis);
    } else {
        check_gumbel_memory("gumbel_softmax", x, y, soft);
        float_copy<R> xf = stage(x, true), yf = stage(y, false), sf;
        if (soft != nullptr) sf = stage(*soft, false);
        const tensor_view<float, R> sv = sf.view();
        gumbel_softmax_impl<Arch>(xf.cview(), yf.view(), soft != nullptr ? &sv : nullptr, rng, options, axis);
        unstage(yf, y);
        if (soft != nullptr) unstage(sf, *soft);
    }
}

}  // namespace detail

/// Fills `out` with Gumbel(0, 1) noise drawn from `rng`, in row-major order of out's index space:
/// exactly the g that gumbel_softmax adds to x given the same generator state. Always finite.
template <class Arch = detail::default_arch, class T, std::size_t R, class URBG>
void gumbel_noise(const tensor_view<T, R>& out, URBG&& rng) {
    using G = std::remove_reference_t<URBG>;
    detail::check_generator<G>();
    detail::check_element_types<T, T>();
    constexpr const char* fn = "gumbel_noise";
    detail::check_data(fn, "out", out);
    detail::check_distinct_elements(fn, "out", out);
    if (out.size() == 0) return;
    detail::noise_source_t<G> src(rng);
    if constexpr (detail::is_reduced_precision<T>::value) {  // float noise, rounded once
        detail::float_copy<R> f = detail::stage(out, false);
        detail::write_perturbed<Arch, float, R>(src, nullptr, f.view(), 1.0f);
        detail::unstage(f, out);
    } else {
        detail::write_perturbed<Arch, T, R>(src, nullptr, out, T(1));
    }
}

/// y = softmax((x + g) / tau) along `axis`, g ~ Gumbel(0, 1) per element (see the top of this
/// file); with options.hard, y is the exact one-hot of the argmax of (x + g) / tau along the axis.
/// It is computed as fl(fl(x + g) / tau) followed by the softmax kernel, so that
///   gumbel_softmax(x, y, rng, {tau}) == softmax(x + gumbel_noise, y, axis, {tau})
/// bit for bit (for y and a softmax input laid out alike), with softmax's error bound. A line whose
/// maximum of (x + g) / tau is not finite (a NaN, a +inf, or only -inf: as softmax) gives NaN on
/// the whole line, hard or not.
/// y may be exactly x (in place); otherwise they must not overlap. The generator is advanced past
/// the x.size() elements' noise (nothing is drawn for an empty x).
/// Throws std::out_of_range for a bad axis, std::invalid_argument for any other bad argument
/// (options.tau not finite and > 0, shapes, null data, overlap), before drawing or writing anything.
template <class Arch = detail::default_arch, class TX, class TY, std::size_t R, class URBG,
          class = std::enable_if_t<!is_tensor_view_v<std::remove_reference_t<URBG>>>>
void gumbel_softmax(const tensor_view<TX, R>& x, const tensor_view<TY, R>& y, URBG&& rng,
                    const gumbel_softmax_options& options = {}, int axis = -1) {
    using G = std::remove_reference_t<URBG>;
    detail::check_generator<G>();
    detail::check_element_types<TX, TY>();
    detail::gumbel_softmax_any<Arch>(tensor_view<const TY, R>(x), y, static_cast<const tensor_view<TY, R>*>(nullptr),
                                     rng, options, axis);
}

/// As above, and also writes the soft sample softmax((x + g) / tau) to y_soft (what
/// gumbel_softmax_backward needs when options.hard is set; otherwise y_soft equals y). y_soft may be
/// exactly x; it must not overlap y.
template <class Arch = detail::default_arch, class TX, class TY, class TS, std::size_t R, class URBG>
void gumbel_softmax(const tensor_view<TX, R>& x, const tensor_view<TY, R>& y, const tensor_view<TS, R>& y_soft,
                    URBG&& rng, const gumbel_softmax_options& options = {}, int axis = -1) {
    using G = std::remove_reference_t<URBG>;
    detail::check_generator<G>();
    detail::check_element_types<TX, TY>();
    detail::check_element_types<TS, TY>();
    detail::gumbel_softmax_any<Arch>(tensor_view<const TY, R>(x), y, &y_soft, rng, options, axis);
}

/// The straight-through gradient of gumbel_softmax, hard or not: the gradient of the soft sample
/// y_soft = softmax((x + g) / tau) with respect to x, the noise held fixed:
///   dx = (1 / tau) * y_soft * (dy - sum(dy * y_soft))     along `axis`,
/// i.e. softmax_backward(y_soft, dy) / tau (evaluated as (y_soft (dy - s)) * fl(1 / tau)). With
/// options.hard, dy is the gradient of the one-hot output, passed straight through to the soft
/// sample (y_hard - stop_gradient(y_soft) + y_soft). dx may be exactly y_soft or exactly dy.
/// float: |error| <= 1e-6 * |y| * (|dy| + sum|dy * y|) / tau; double: 1e-14 likewise.
template <class Arch = detail::default_arch, class TY, class TDY, class TDX, std::size_t R>
void gumbel_softmax_backward(const tensor_view<TY, R>& y_soft, const tensor_view<TDY, R>& dy,
                             const tensor_view<TDX, R>& dx, const gumbel_softmax_options& options, int axis = -1) {
    detail::check_element_types<TY, TDX>();
    detail::check_element_types<TDY, TDX>();
    using S = TDX;
    using T = detail::compute_type_t<S>;
    constexpr const char* fn = "gumbel_softmax_backward";
    const int a = detail::normalize_axis<R>(fn, axis);
    detail::check_shape(fn, "dy", dy.shape(), "y_soft.shape", y_soft.shape());
    detail::check_shape(fn, "dx", dx.shape(), "y_soft.shape", y_soft.shape());
    (void)detail::checked_temperature<T>(fn, options.tau, "tau");
    const T inv_tau = static_cast<T>(1.0 / options.tau);
    detail::check_data(fn, "y_soft", y_soft);
    detail::check_data(fn, "dy", dy);
    detail::check_data(fn, "dx", dx);
    detail::check_distinct_elements(fn, "dx", dx);
    detail::check_no_overlap(fn, "dx", dx, "y_soft", y_soft, true);
    detail::check_no_overlap(fn, "dx", dx, "dy", dy, true);
    const tensor_view<const S, R> yc(y_soft), dyc(dy);
    const auto layout = detail::make_layout(y_soft.shape(), yc, dyc, dx);
    if constexpr (std::is_same<S, T>::value)
        detail::run_along_axis<Arch, T>(detail::gumbel_backward_op<T>{inv_tau}, layout, static_cast<std::size_t>(a));
    else
        detail::run_converted<Arch, T, S>(detail::gumbel_backward_op<T>{inv_tau}, layout, static_cast<std::size_t>(a));
}

}  // namespace logitkit
