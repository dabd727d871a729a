// libtorch peers of the logitkit softmax benchmarks; compiled into bench_softmax only when CMake
// finds Torch with -DLOGITKIT_BENCH_LIBTORCH=ON (it then defines LOGITKIT_BENCH_HAVE_LIBTORCH).
// SPDX-License-Identifier: MIT
//
// The out= forms of the ATen operators behind torch.softmax, torch.log_softmax, their autograd
// backward functions and torch.logsumexp(keepdim=True), on the same float inputs and shapes as
// the logitkit benchmarks (float and double), writing into a preallocated output (no allocation in the timed loop),
// on one thread (libtorch_setup.cpp).

#include "bench_common.hpp"

#include <torch/torch.h>

#include <benchmark/benchmark.h>

#include <string>
#include <type_traits>

namespace logitkit_bench {
namespace {

template <class T>
void bm_torch(benchmark::State& state, kernel k, shape s) {
    const auto n = static_cast<std::size_t>(s.elements());
    // Views of the same buffers the logitkit benchmarks use (same role names and seeds).
    T* x = const_cast<T*>(random_normal<T>("x", n, seed_x));
    T* dy = const_cast<T*>(random_normal<T>("dy", n, seed_dy));
    T* y = buffer<T>("out", n);
    const auto dtype = std::is_same<T, double>::value ? torch::kFloat64 : torch::kFloat32;
    const auto options = torch::TensorOptions().dtype(dtype);
    const torch::Tensor xt = torch::from_blob(x, {s.rows, s.cols}, options);
    const torch::Tensor dyt = torch::from_blob(dy, {s.rows, s.cols}, options);
    torch::Tensor yt = torch::from_blob(y, {s.rows, s.cols}, options);
    // The backward kernels read the forward's output; its values do not change their speed.
    const torch::Tensor fwd = k == kernel::log_softmax_backward ? torch::log_softmax(xt, s.axis) : torch::softmax(xt, s.axis);
    torch::Tensor lse = torch::from_blob(y, {s.axis == 0 ? 1 : s.rows, s.axis == 0 ? s.cols : 1}, options);
    const std::int64_t dim = s.axis;
    for (auto _ : state) {
        switch (k) {
            case kernel::softmax: at::softmax_out(yt, xt, dim); break;
            case kernel::log_softmax: at::log_softmax_out(yt, xt, dim); break;
            case kernel::softmax_backward: at::_softmax_backward_data_out(yt, dyt, fwd, dim, dtype); break;
            case kernel::log_softmax_backward:
                at::_log_softmax_backward_data_out(yt, dyt, fwd, dim, dtype);
                break;
            case kernel::logsumexp: at::logsumexp_out(lse, xt, {dim}, true); break;
        }
        benchmark::DoNotOptimize(y);
        benchmark::ClobberMemory();
    }
    report_traffic(state, traffic<T>(k, s), s.elements());
}

}  // namespace

template <class T>
void register_libtorch(const std::string& name, kernel k, const shape& s) {
    benchmark::RegisterBenchmark(name.c_str(), bm_torch<T>, k, s)->UseRealTime()->Unit(benchmark::kMicrosecond);
}
template void register_libtorch<float>(const std::string&, kernel, const shape&);
template void register_libtorch<double>(const std::string&, kernel, const shape&);

}  // namespace logitkit_bench
