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

/// The attention scores, N(0, 1), as float or rounded to bfloat16 (bf16 = true): the same buffer
/// for logitkit and libtorch.
const void* scores(std::size_t count, bool bf16);

#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
/// Registers "torch_<kernel_name(k)>/attn[/bf16]" (bench_attention_libtorch.cpp).
void register_libtorch_attention(attn::mask_kind k, bool bf16);
/// Registers "torch_softmax/<s.name()>/bf16" (log: "torch_log_softmax/..."): unmasked bfloat16
/// softmax or log_softmax on a 2-D shape.
void register_libtorch_bf16(const shape& s, bool log);
#endif

}  // namespace logitkit_bench
