// Shared pieces of the attention benchmarks (bench_attention.cpp, bench_attention_libtorch.cpp).
// SPDX-License-Identifier: MIT
#pragma once

#include "bench_common.hpp"

#include <array>
#include <cstddef>

namespace logitkit_bench {
namespace attn {

constexpr std::ptrdiff_t batch = 8, heads = 16, queries = 512, keys = 512;
inline std::array<std::ptrdiff_t, 4> shape() { return {batch, heads, queries, keys}; }
constexpr std::ptrdiff_t elements() { return batch * heads * queries * keys; }

enum class mask_kind { none, padding, causal };
inline const char* kernel_name(mask_kind k) {
    return k == mask_kind::none ? "softmax" : k == mask_kind::padding ? "softmax_padding" : "softmax_causal";
}

}  // namespace attn

/// The padding mask, [batch, 1, 1, keys]: sample b keeps its first keys - 64 * (b % 4) keys.
const bool* padding_mask();

#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
/// Registers "torch_<kernel_name(k)>/attn" (bench_attention_libtorch.cpp).
void register_libtorch_attention(attn::mask_kind k);
#endif

}  // namespace logitkit_bench
