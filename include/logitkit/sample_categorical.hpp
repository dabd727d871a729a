// logitkit — sample_categorical: one class per line from softmax(logits / T), top-k / top-p.
// SPDX-License-Identifier: MIT
//
//   struct sample_categorical_options { double temperature = 1.0; std::int64_t top_k = 0; double top_p = 1.0; };
//
//   sample_categorical(logits, out_indices, rng, options = {}, axis = -1);  // one index per line
//   std::int64_t sample_categorical(logits_1d, rng, options = {});          // one line
//
// Each line along `axis` is sampled by the Gumbel-max trick, argmax_i (x_i / T + g_i), which is an
// exact draw from softmax(x / T); with top_k / top_p, from that distribution restricted to the
// classes the filters keep (HF transformers' order and rules: temperature, then top-k, then top-p;
// see detail/sampling_kernels.hpp). Everything is computed in double and no probability tensor is
// written. The noise g_i of the element with row-major index i of the logits is the same as
// gumbel_noise / gumbel_softmax draw for it (float logits: 32 random bits; double: 64), taken in
// double precision, so with philox4x32 the indices are the same on every SIMD path and whatever
// split of the lines into calls (give each call philox4x32(seed, offset + first_element *
// philox_words_per_element<T>)). The generator is advanced past all x.size() elements, whether
// filtered out or not.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "detail/checks.hpp"
#include "detail/forward.hpp"
#include "detail/sampling_kernels.hpp"
#include "philox.hpp"
#include "tensor_view.hpp"

namespace logitkit {

/// Options of sample_categorical.
struct sample_categorical_options {
    /// The logits are divided by it (in double): finite and > 0.
    double temperature = 1.0;
    /// Keep only the classes whose scaled logit is >= the top_k-th largest (ties with it are kept).
    /// 0 (or >= the number of classes) means no top-k filter; must be >= 0.
    std::int64_t top_k = 0;
    /// Keep the smallest set of most probable classes whose probability reaches top_p (after
    /// top-k; at least the most probable class). In [0, 1]; 1 means no top-p filter, 0 keeps only
    /// the most probable class.
    double top_p = 1.0;
};

namespace detail {

inline sampling_plan checked_sampling_plan(const char* fn, const sample_categorical_options& o) {
    sampling_plan p;
    p.temperature = checked_temperature<double>(fn, o.temperature);
    if (o.top_k < 0)
        fail_argument(fn, "options.top_k = " + std::to_string(o.top_k) +
                              "; expected 0 (no top-k filter) or a number of classes > 0");
    p.top_k = o.top_k;
    if (!(o.top_p >= 0 && o.top_p <= 1)) {
        std::ostringstream s;
        s.precision(17);
        s << "options.top_p = " << o.top_p << "; expected a probability in [0, 1] (1: no top-p filter)";
        fail_argument(fn, s.str());
    }
    p.top_p = o.top_p;
    return p;
}

template <std::size_t R>
std::string line_name(const char* name, const extents_type<R>& idx, std::size_t axis) {
    std::string s = std::string(name) + "[";
    for (std::size_t k = 0; k < R; ++k) {
        if (k != 0) s += ", ";
        s += k == axis ? std::string(":") : std::to_string(idx[k]);
    }
    return s + "]";
}

template <class Arch, class T, std::size_t R, class G>
void sample_categorical_impl(const tensor_view<const T, R>& x, const tensor_view<std::int64_t, R>& out, G& rng,
                             const sample_categorical_options& options, int axis) {
    constexpr const char* fn = "sample_categorical";
    const int a = normalize_axis<R>(fn, axis);
    const auto ax = static_cast<std::size_t>(a);
    extents_type<R> expected = x.shape();
    expected[ax] = 1;
    check_shape(fn, "out_indices", out.shape(), "x.shape with extent 1 on the axis", expected);
    const sampling_plan plan = checked_sampling_plan(fn, options);
    check_data(fn, "x", x);
    check_data(fn, "out_indices", out);
    check_distinct_elements(fn, "out_indices", out);
    check_no_overlap(fn, "out_indices", out, "x", x, false);
    const index_type n = x.extent(ax);
    if (out.size() == 0) return;
    if (n == 0)
        fail_argument(fn, "x.shape = " + format_extents(x.shape()) + " has no class along axis " + std::to_string(a) +
                              "; expected at least one class to sample from");

    line_sampler<Arch, T> sampler(plan);
    const index_type xstep = x.stride(ax);
    std::vector<T> gathered;
    auto line_data = [&](index_type xo) -> const T* {
        const T* p = x.data() + xo;
        if (xstep == 1 || n == 1) return p;
        gathered.resize(static_cast<std::size_t>(n));
        for (index_type r = 0; r < n; ++r) gathered[static_cast<std::size_t>(r)] = p[r * xstep];
        return gathered.data();
    };

    // Every line is checked before anything is drawn or written.
    std::vector<double> maxima;
    maxima.reserve(static_cast<std::size_t>(out.size()));
    for_each_line(
        x.shape(), ax, x.strides(), out.strides(), [&](index_type xo, index_type, const extents_type<R>& idx) {
            double m = 0;
            if (!sampler.line_max(line_data(xo), n, m))
                fail_argument(fn, line_name("x", idx, ax) +
                                      " has no finite maximum after division by the temperature (it holds a NaN or a "
                                      "+inf, or only -inf); expected finite logits, -inf allowed, at least one finite");
            maxima.push_back(m);
        });

    constexpr int K = words_per_element<T>;
    noise_source_t<G> src(rng);
    std::size_t line = 0;
    if (ax == R - 1) {
        // Lines are consecutive runs of the row-major index space: noise drawn line by line.
        stream_noise<Arch, K, noise_source_t<G>> noise(src);
        for_each_line(x.shape(), ax, x.strides(), out.strides(),
                      [&](index_type xo, index_type oo, const extents_type<R>&) {
                          out.data()[oo] = sampler.sample(line_data(xo), n, maxima[line++], noise);
                      });
        return;
    }
    if constexpr (R > 1) {
        // Another axis: the noise of the whole tensor (a scratch of x.size() doubles), in row-major
        // order, then line by line.
        std::vector<double> g(static_cast<std::size_t>(x.size()));
        for_each_noise_chunk<Arch, K>(src, x.size(), [&](index_type first, std::size_t m, const double* chunk) {
            std::copy(chunk, chunk + m, g.begin() + first);
        });
        extents_type<R> rm{};  // row-major strides of x's shape
        index_type s = 1;
        for (std::size_t k = R; k-- > 0;) {
            rm[k] = s;
            s *= x.extent(k);
        }
        std::vector<double> gl(static_cast<std::size_t>(n));
        for_each_line(x.shape(), ax, x.strides(), out.strides(),
                      [&](index_type xo, index_type oo, const extents_type<R>& idx) {
                          index_type base = 0;
                          for (std::size_t k = 0; k < R; ++k) base += idx[k] * rm[k];
                          for (index_type r = 0; r < n; ++r)
                              gl[static_cast<std::size_t>(r)] = g[static_cast<std::size_t>(base + r * rm[ax])];
                          array_noise noise(gl.data());
                          out.data()[oo] = sampler.sample(line_data(xo), n, maxima[line++], noise);
                      });
    }
}

}  // namespace detail

/// Draws one class index per line of `logits` along `axis` into out_indices (logits' shape with
/// extent 1 on the axis): an exact sample of softmax(logits / T) after the top-k and top-p filters
/// of `options` (see the top of this file). Lines may hold -inf (never drawn), but each needs a
/// finite logit and no NaN or +inf (also after the division by T).
/// Throws std::out_of_range for a bad axis, std::invalid_argument for any other bad argument
/// (temperature, top_k < 0, top_p outside [0, 1], shapes, an empty class axis, null data, an
/// out_indices sharing memory with logits, a line without a finite maximum) before drawing or
/// writing anything.
template <class Arch = detail::default_arch, class TX, std::size_t R, class URBG>
void sample_categorical(const tensor_view<TX, R>& logits, const tensor_view<std::int64_t, R>& out_indices, URBG&& rng,
                        const sample_categorical_options& options = {}, int axis = -1) {
    using T = std::remove_const_t<TX>;
    using G = std::remove_reference_t<URBG>;
    static_assert(std::is_same<T, float>::value || std::is_same<T, double>::value,
                  "logitkit: the element type must be float or double");
    static_assert(!std::is_const<G>::value, "logitkit: the random generator must not be const (it is advanced)");
    detail::sample_categorical_impl<Arch>(tensor_view<const T, R>(logits), out_indices, rng, options, axis);
}

/// One draw from the single line `logits`; see above.
template <class Arch = detail::default_arch, class TX, class URBG,
          class = std::enable_if_t<!is_tensor_view_v<std::remove_reference_t<URBG>>>>
std::int64_t sample_categorical(const tensor_view<TX, 1>& logits, URBG&& rng,
                                const sample_categorical_options& options = {}) {
    std::int64_t index = -1;
    sample_categorical<Arch>(logits, tensor_view<std::int64_t, 1>(&index, {1}), rng, options, 0);
    return index;
}

}  // namespace logitkit
