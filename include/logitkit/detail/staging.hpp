// logitkit — bfloat16 / float16 tensors for the losses and gumbel_softmax: each operand is
// widened to a dense float copy, the float kernel runs on the copies, and each output is rounded
// once into the caller's view. The arguments are checked on the caller's views first (null data,
// repeated output elements, overlap), since the copies can never overlap; the float call checks
// the rest (axis, shapes, options) before anything is written back.
#pragma once

#include <cstddef>
#include <vector>

#include "../reduced_precision.hpp"
#include "../tensor_view.hpp"
#include "loss_common.hpp"

namespace logitkit {
namespace detail {

/// A dense row-major float copy of a view (empty for a view that is not given).
template <std::size_t R>
struct float_copy {
    std::vector<float> values;
    extents_type<R> shape{};
    bool given = false;

    tensor_view<float, R> view() {
        return given ? tensor_view<float, R>(values.data(), shape) : tensor_view<float, R>{};
    }
    tensor_view<const float, R> cview() {
        return given ? tensor_view<const float, R>(values.data(), shape) : tensor_view<const float, R>{};
    }
};

/// Widens v's elements (copy_values) or only sizes the copy for an output.
template <class S, std::size_t R>
float_copy<R> stage(const tensor_view<S, R>& v, bool copy_values) {
    float_copy<R> c;
    c.given = is_given(v);
    c.shape = v.shape();
    if (!c.given) return c;
    c.values.resize(static_cast<std::size_t>(v.size()));
    if (copy_values) {
        std::size_t i = 0;
        for_each_index<R>(v.shape(), [&](const extents_type<R>& idx) { c.values[i++] = widen(v[idx]); });
    }
    return c;
}

/// Rounds the copy once into the caller's view.
template <class S, std::size_t R>
void unstage(const float_copy<R>& c, const tensor_view<S, R>& v) {
    if (!c.given) return;
    std::size_t i = 0;
    for_each_index<R>(v.shape(), [&](const extents_type<R>& idx) { v[idx] = narrow<S>(c.values[i++]); });
}

}  // namespace detail
}  // namespace logitkit
