// logitkit — the whole public API.
// SPDX-License-Identifier: MIT
#pragma once

#include "cross_entropy.hpp"  // also nll_loss.hpp
#include "executor.hpp"
#include "gumbel_softmax.hpp"
#include "log_softmax.hpp"
#include "logsumexp.hpp"
#include "philox.hpp"
#include "reduced_precision.hpp"
#include "sample_categorical.hpp"
#include "softmax.hpp"
#include "softmax_options.hpp"
#include "tensor_view.hpp"
#include "version.hpp"
#include "detail/simd.hpp"
