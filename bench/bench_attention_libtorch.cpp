// libtorch peers of the attention benchmarks: softmax over the keys after masked_fill with -inf
// (what PyTorch code does for a padding or causal mask), in float and bfloat16, and unmasked
// bfloat16 softmax and log_softmax on the core shapes; the same input buffers as logitkit's, one thread.
// SPDX-License-Identifier: MIT
#include "bench_attention.hpp"

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <limits>
#include <string>

namespace logitkit_bench {
namespace {

void bm_torch(benchmark::State& state, attn::mask_kind kind, bool bf16) {
    const auto n = static_cast<std::size_t>(attn::elements());
    const std::size_t elem = bf16 ? 2 : 4;
    void* x = const_cast<void*>(scores(n, bf16));
    unsigned char* y = buffer<unsigned char>("out-torch", n * elem);
    const auto type = torch::TensorOptions().dtype(bf16 ? torch::kBFloat16 : torch::kFloat32);
    const torch::Tensor xt = torch::from_blob(x, {attn::batch, attn::heads, attn::queries, attn::keys}, type);
    torch::Tensor yt = torch::from_blob(y, {attn::batch, attn::heads, attn::queries, attn::keys}, type);
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
    report_traffic(state, 2 * n * elem, attn::elements());
}

void bm_torch_bf16(benchmark::State& state, shape s, bool log) {
    const auto n = static_cast<std::size_t>(s.elements());
    const auto type = torch::TensorOptions().dtype(torch::kBFloat16);
    const torch::Tensor xt = torch::from_blob(const_cast<void*>(scores(n, true)), {s.rows, s.cols}, type);
    torch::Tensor yt = torch::from_blob(buffer<unsigned char>("out-torch", n * 2), {s.rows, s.cols}, type);
    for (auto _ : state) {
        if (log)
            at::log_softmax_out(yt, xt, -1);
        else
            at::softmax_out(yt, xt, -1);
        benchmark::DoNotOptimize(yt.data_ptr());
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * 2, s.elements());
}

}  // namespace

void register_libtorch_attention(attn::mask_kind k, bool bf16) {
    const std::string name = std::string("torch_") + attn::kernel_name(k) + "/attn" + (bf16 ? "/bf16" : "");
    benchmark::RegisterBenchmark(name.c_str(), bm_torch, k, bf16)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void register_libtorch_bf16(const shape& s, bool log) {
    const std::string name = std::string(log ? "torch_log_softmax/" : "torch_softmax/") + s.name() + "/bf16";
    benchmark::RegisterBenchmark(name.c_str(), bm_torch_bf16, s, log)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace logitkit_bench
