// logitkit — options shared by softmax and log_softmax.
// SPDX-License-Identifier: MIT
#pragma once

namespace logitkit {

/// Options of softmax and log_softmax.
struct softmax_options {
    /// The input is divided by the temperature first, as in PyTorch's softmax(x / T): each
    /// quotient is rounded to the element type. Must be finite and > 0.
    double temperature = 1.0;
};

}  // namespace logitkit
