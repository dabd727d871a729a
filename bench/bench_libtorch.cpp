// libtorch peers of the logitkit softmax benchmarks; compiled into bench_softmax only when CMake
// finds Torch with -DLOGITKIT_BENCH_LIBTORCH=ON (it then defines LOGITKIT_BENCH_HAVE_LIBTORCH).
// SPDX-License-Identifier: MIT
//
// at::softmax_out / at::log_softmax_out, the out= forms of torch::softmax / torch::log_softmax,
// on the same float inputs and shapes as softmax/... and log_softmax/..., writing into a
// preallocated output (no allocation in the timed loop), on one thread (at::set_num_threads(1))
// as logitkit's kernels are single-threaded.

#include "bench_common.hpp"

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <string>

namespace logitkit_bench {
namespace {

void bm_torch(benchmark::State& state, shape s, bool log) {
    const auto n = static_cast<std::size_t>(s.elements());
    // Views of the same buffers the logitkit benchmarks use (same role names and seeds).
    float* x = const_cast<float*>(random_normal<float>("x", n, seed_x));
    float* y = buffer<float>("out", n);
    const auto options = torch::TensorOptions().dtype(torch::kFloat32);
    const torch::Tensor xt = torch::from_blob(x, {s.rows, s.cols}, options);
    torch::Tensor yt = torch::from_blob(y, {s.rows, s.cols}, options);
    const std::int64_t dim = s.axis;
    for (auto _ : state) {
        if (log)
            at::log_softmax_out(yt, xt, dim);
        else
            at::softmax_out(yt, xt, dim);
        benchmark::DoNotOptimize(y);
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(float), s.elements());
}

}  // namespace

void register_libtorch(const shape& s, bool log) {
    const std::string name = std::string(log ? "torch_log_softmax/" : "torch_softmax/") + s.name();
    benchmark::RegisterBenchmark(name.c_str(), bm_torch, s, log)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
}

}  // namespace logitkit_bench
