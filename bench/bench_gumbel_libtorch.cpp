// libtorch peers of the gumbel / sampling benchmarks; compiled into bench_gumbel only when CMake
// finds Torch with -DLOGITKIT_BENCH_LIBTORCH=ON (it then defines LOGITKIT_BENCH_HAVE_LIBTORCH).
// SPDX-License-Identifier: MIT
//
//   torch_gumbel_softmax/<shape>[/hard]   torch::nn::functional::gumbel_softmax, tau = 0.5, on the
//                                         same N(0, 1) inputs as gumbel_softmax/<shape>
//   torch_multinomial/<shape>             torch::multinomial(torch::softmax(x / T, -1), 1), on the
//                                         same 4 * N(0, 1) logits as sample_categorical/<shape>
// Both allocate their results, as these functions do; one thread (at::set_num_threads(1)), as
// logitkit's kernels are single-threaded.

#include "bench_common.hpp"

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <string>

namespace logitkit_bench {

const float* sampling_logits(std::size_t count);  // bench_gumbel.cpp

namespace {

void bm_torch_gumbel(benchmark::State& state, shape s, bool hard) {
    const auto n = static_cast<std::size_t>(s.elements());
    float* x = const_cast<float*>(random_normal<float>("x", n, seed_x));
    const torch::Tensor xt = torch::from_blob(x, {s.rows, s.cols}, torch::TensorOptions().dtype(torch::kFloat32));
    namespace F = torch::nn::functional;
    const auto options = F::GumbelSoftmaxFuncOptions().tau(0.5).hard(hard).dim(-1);
    for (auto _ : state) {
        torch::Tensor y = F::gumbel_softmax(xt, options);
        benchmark::DoNotOptimize(y.data_ptr());
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(float), s.elements());
}

void bm_torch_multinomial(benchmark::State& state, shape s, double temperature) {
    const auto n = static_cast<std::size_t>(s.elements());
    float* x = const_cast<float*>(sampling_logits(n));
    const torch::Tensor xt = torch::from_blob(x, {s.rows, s.cols}, torch::TensorOptions().dtype(torch::kFloat32));
    for (auto _ : state) {
        torch::Tensor idx = torch::multinomial(torch::softmax(xt / temperature, -1), 1);
        benchmark::DoNotOptimize(idx.data_ptr());
        benchmark::ClobberMemory();
    }
    report_traffic(state, n * sizeof(float), s.elements());
}

}  // namespace

void register_torch_gumbel(const shape& s, bool hard) {
    const std::string name = "torch_gumbel_softmax/" + s.name() + (hard ? "/hard" : "");
    benchmark::RegisterBenchmark(name.c_str(), bm_torch_gumbel, s, hard)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void register_torch_multinomial(const shape& s, double temperature) {
    const std::string name = "torch_multinomial/" + s.name();
    benchmark::RegisterBenchmark(name.c_str(), bm_torch_multinomial, s, temperature)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace logitkit_bench
