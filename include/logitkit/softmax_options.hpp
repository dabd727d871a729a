// logitkit — options shared by softmax, log_softmax and their backward kernels.
// SPDX-License-Identifier: MIT
#pragma once

#include <cstdint>

namespace logitkit {

class executor;

/// Options of softmax, log_softmax and their backward kernels. Pass the backward kernel the
/// forward call's options: it then gives the gradient with respect to the forward's x.
struct softmax_options {
    /// The input is divided by the temperature first, as in PyTorch's softmax(x / T): each
    /// quotient is rounded to the element type. Must be finite and > 0. The backward kernels
    /// divide the gradient by it.
    double temperature = 1.0;
    /// Causal masking without a mask tensor: along the axis (keys), element j of the line whose
    /// index along the dimension just before the axis (queries) is i is kept when
    /// j <= i + causal_offset, and masked otherwise. causal_offset = 0 is the square causal tile
    /// (PyTorch's is_causal); keys - queries aligns a rectangular tile to the bottom right (the
    /// queries are the last ones of the sequence). Needs an axis >= 1.
    bool causal = false;
    std::int64_t causal_offset = 0;
    /// Runs the call's lines on this executor (a logitkit::thread_pool, or one of your own; see
    /// executor.hpp), bit-identical to the single-threaded call. nullptr: the calling thread only.
    executor* parallel = nullptr;
};

}  // namespace logitkit
