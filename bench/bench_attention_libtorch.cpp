// libtorch peers of the attention benchmarks: softmax over the keys after masked_fill with -inf
// (what PyTorch code does for a padding or causal mask), on the same inputs, one thread.
// SPDX-License-Identifier: MIT
#include "bench_attention.hpp"

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <limits>
#include <string>

namespace logitkit_bench {
namespace {

void bm_torch(benchmark::State& state, attn::mask_kind kind) {
    const auto n = static_cast<std::size_t>(attn::elements());
    float* x = const_cast<float*>(random_normal<float>("x", n, seed_x));
    float* y = buffer<float>("out", n);
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
    const torch::Tensor xt = torch::from_blob(x, {attn::batch, attn::heads, attn::queries, attn::keys}, f32);
    torch::Tensor yt = torch::from_blob(y, {attn::batch, attn::heads, attn::queries, attn::keys}, f32);
    const auto b8 = torch::TensorOptions().dtype(torch::kBool);
    // masked_fill takes the positions to fill: the complement of the keep mask.
    const torch::Tensor keep_padding =
        torch::from_blob(const_cast<bool*>(padding_mask()), {attn::batch, 1, 1, attn::keys}, b8);
    const torch::Tensor fill_padding = keep_padding.logical_not();
    const torch::Tensor fill_causal = torch::ones({attn::queries, attn::keys}, b8).triu(1);
    const float ninf = -std::numeric_limits<float>::infinity();
    for (auto _ : state) {
        switch (kind) {
            case attn::mask_kind::none: at::softmax_out(yt, xt, -1); break;
            case attn::mask_kind::padding: at::softmax_out(yt, xt.masked_fill(fill_padding, ninf), -1); break;
            case attn::mask_kind::causal: at::softmax_out(yt, xt.masked_fill(fill_causal, ninf), -1); break;
        }
        benchmark::DoNotOptimize(y);
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(float), attn::elements());
}

}  // namespace

void register_libtorch_attention(attn::mask_kind k) {
    const std::string name = std::string("torch_") + attn::kernel_name(k) + "/attn";
    benchmark::RegisterBenchmark(name.c_str(), bm_torch, k)->UseRealTime()->Unit(benchmark::kMillisecond);
}

}  // namespace logitkit_bench
