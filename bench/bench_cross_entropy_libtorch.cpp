// libtorch peers of the cross-entropy benchmarks; compiled into bench_cross_entropy only when CMake
// finds Torch with -DLOGITKIT_BENCH_LIBTORCH=ON (it then defines LOGITKIT_BENCH_HAVE_LIBTORCH).
// SPDX-License-Identifier: MIT
//
//   torch_cross_entropy/RxC/loss       at::cross_entropy_loss forward, mean reduction
//   torch_cross_entropy/RxC/loss_grad  forward and backward (autograd) of the same
//   torch_cross_entropy/NxCxHW/class_axis1/loss_grad  the same on [N, C, HW] logits, [N, HW] targets
// on one thread, float, N(0, 1) logits and uniform targets as the logitkit benchmarks.

#include "bench_common.hpp"

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <string>

namespace logitkit_bench {
namespace {

void time_torch_ce(benchmark::State& state, torch::Tensor x, const torch::Tensor& t, bool grad) {
    if (grad) x.set_requires_grad(true);
    for (auto _ : state) {
        torch::Tensor loss = torch::nn::functional::cross_entropy(x, t);
        if (grad) {
            loss.backward();
            benchmark::DoNotOptimize(x.grad().data_ptr());
            x.mutable_grad().reset();
        }
        benchmark::DoNotOptimize(loss.data_ptr());
        benchmark::ClobberMemory();
    }
    const auto elements = static_cast<std::ptrdiff_t>(x.numel());
    report_traffic(state, static_cast<std::size_t>(elements) * sizeof(float) * (grad ? 2 : 1), elements);
}

void bm_torch_ce(benchmark::State& state, shape s, bool grad) {
    at::set_num_threads(1);
    torch::manual_seed(1);
    time_torch_ce(state, torch::randn({s.rows, s.cols}, torch::kFloat32),
                  torch::randint(0, s.cols, {s.rows}, torch::kInt64), grad);
}

void bm_torch_ce_map(benchmark::State& state, map_shape s) {
    at::set_num_threads(1);
    torch::manual_seed(1);
    time_torch_ce(state, torch::randn({s.maps, s.classes, s.pixels}, torch::kFloat32),
                  torch::randint(0, s.classes, {s.maps, s.pixels}, torch::kInt64), true);
}

}  // namespace

void register_libtorch_cross_entropy(const shape& s) {
    for (bool grad : {false, true}) {
        const std::string name = "torch_cross_entropy/" + s.dims() + (grad ? "/loss_grad" : "/loss");
        benchmark::RegisterBenchmark(name.c_str(), bm_torch_ce, s, grad)->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
}

void register_libtorch_cross_entropy_map(const map_shape& s) {
    const std::string name = "torch_cross_entropy/" + s.dims() + "/class_axis1/loss_grad";
    benchmark::RegisterBenchmark(name.c_str(), bm_torch_ce_map, s)->UseRealTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace logitkit_bench
