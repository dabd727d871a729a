// logitkit benchmarks: softmax-family kernels against a memcpy of the same bytes.
// SPDX-License-Identifier: MIT
//
// Every kernel benchmark is registered right after a memcpy baseline that moves the same number
// of bytes (bytes read + bytes written by the kernel; the memcpy copies half of that from one
// buffer to another, so it too reads and writes that many bytes in total). The kernel's GB/s
// divided by the baseline's GB/s is the fraction of memcpy speed the kernel reaches:
//
//   memcpy/128x1000            2 x 128x1000 floats (x read, y written)
//   softmax/128x1000           softmax along the last axis
//   log_softmax/128x1000
//   memcpy/1000x1024           softmax/1000x1024/axis0 reduces along axis 0 (strided)
//   memcpy/128x1000/bwd        3 x 128x1000 floats (y and dy read, dx written)
//   softmax_backward/128x1000, log_softmax_backward/128x1000
//   memcpy/128x1000/lse        128x1000 floats read, 128 written
//   logsumexp/128x1000
//   memcpy/128x1000/f64        as memcpy/128x1000 in double
//   softmax/128x1000/f64
//
// Each benchmark reports bytes_per_second (GB/s), the counter ns_per_elem (nanoseconds per input
// element) and the counter bytes (bytes moved per iteration, which report.py uses to pair kernels
// with baselines). Inputs are N(0, 1) with fixed seeds. With LOGITKIT_BENCH_HAVE_LIBTORCH
// (bench_libtorch.cpp), torch_softmax/... and torch_log_softmax/... run on the same inputs.
//
//   bench_softmax --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench/run_bench.sh   (builds, runs and prints a Markdown table)

#include "bench_common.hpp"

#include <logitkit/logitkit.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace lk = logitkit;

namespace logitkit_bench {
namespace {

enum class kernel { softmax, log_softmax, softmax_backward, log_softmax_backward, logsumexp };

const char* kernel_name(kernel k) {
    switch (k) {
        case kernel::softmax: return "softmax";
        case kernel::log_softmax: return "log_softmax";
        case kernel::softmax_backward: return "softmax_backward";
        case kernel::log_softmax_backward: return "log_softmax_backward";
        case kernel::logsumexp: return "logsumexp";
    }
    return "?";
}

// Bytes one call of the kernel reads plus writes.
template <class T>
std::size_t traffic(kernel k, const shape& s) {
    const auto n = static_cast<std::size_t>(s.elements());
    switch (k) {
        case kernel::softmax:
        case kernel::log_softmax: return 2 * n * sizeof(T);
        case kernel::softmax_backward:
        case kernel::log_softmax_backward: return 3 * n * sizeof(T);
        case kernel::logsumexp: return (n + static_cast<std::size_t>(s.lines())) * sizeof(T);
    }
    return 0;
}

template <class T>
lk::tensor_view<const T, 2> in_view(const T* p, const shape& s) {
    return lk::tensor_view<const T, 2>(p, {s.rows, s.cols});
}
template <class T>
lk::tensor_view<T, 2> out_view(T* p, const shape& s) {
    return lk::tensor_view<T, 2>(p, {s.rows, s.cols});
}

// The forward output a backward kernel takes as its `y`: softmax(x) or log_softmax(x).
template <class T>
const T* forward_output(kernel k, const shape& s) {
    const bool log = (k == kernel::log_softmax_backward);
    bool fresh = false;
    T* y = buffer<T>(std::string(log ? "log_softmax(x)/" : "softmax(x)/") + s.name(),
                     static_cast<std::size_t>(s.elements()), &fresh);
    if (fresh) {
        const T* x = random_normal<T>("x", static_cast<std::size_t>(s.elements()), seed_x);
        if (log)
            lk::log_softmax(in_view(x, s), out_view(y, s), s.axis);
        else
            lk::softmax(in_view(x, s), out_view(y, s), s.axis);
    }
    return y;
}

template <class T>
void bm_kernel(benchmark::State& state, kernel k, shape s) {
    const auto n = static_cast<std::size_t>(s.elements());
    const T* x = random_normal<T>("x", n, seed_x);
    T* out = buffer<T>("out", n);
    const lk::tensor_view<const T, 2> xv = in_view(x, s);
    const lk::tensor_view<T, 2> outv = out_view(out, s);

    switch (k) {
        case kernel::softmax:
            for (auto _ : state) {
                lk::softmax(xv, outv, s.axis);
                benchmark::DoNotOptimize(out);
                benchmark::ClobberMemory();
            }
            break;
        case kernel::log_softmax:
            for (auto _ : state) {
                lk::log_softmax(xv, outv, s.axis);
                benchmark::DoNotOptimize(out);
                benchmark::ClobberMemory();
            }
            break;
        case kernel::softmax_backward:
        case kernel::log_softmax_backward: {
            const lk::tensor_view<const T, 2> yv = in_view(forward_output<T>(k, s), s);
            const lk::tensor_view<const T, 2> dyv = in_view(random_normal<T>("dy", n, seed_dy), s);
            if (k == kernel::softmax_backward) {
                for (auto _ : state) {
                    lk::softmax_backward(yv, dyv, outv, s.axis);
                    benchmark::DoNotOptimize(out);
                    benchmark::ClobberMemory();
                }
            } else {
                for (auto _ : state) {
                    lk::log_softmax_backward(yv, dyv, outv, s.axis);
                    benchmark::DoNotOptimize(out);
                    benchmark::ClobberMemory();
                }
            }
            break;
        }
        case kernel::logsumexp: {
            const lk::tensor_view<T, 2> lse(out, {s.axis == 0 ? 1 : s.rows, s.axis == 0 ? s.cols : 1});
            for (auto _ : state) {
                lk::logsumexp(xv, lse, s.axis);
                benchmark::DoNotOptimize(out);
                benchmark::ClobberMemory();
            }
            break;
        }
    }
    report_traffic(state, traffic<T>(k, s), s.elements());
}

void configure(benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

void add_memcpy(const std::string& name, std::size_t bytes, std::ptrdiff_t elements) {
    configure(benchmark::RegisterBenchmark(("memcpy/" + name).c_str(), bm_memcpy, bytes / 2, elements));
}

template <class T>
void add_kernel(kernel k, const shape& s, const std::string& suffix = "") {
    const std::string name = std::string(kernel_name(k)) + "/" + s.name() + suffix;
    configure(benchmark::RegisterBenchmark(name.c_str(), bm_kernel<T>, k, s));
}

void register_all() {
    const std::vector<shape> forward_shapes = {
        {128, 1000, 1}, {32, 32000, 1}, {4096, 128, 1}, {1024, 32000, 1}, {1000, 1024, 0}};
    const std::vector<shape> small_and_large = {{128, 1000, 1}, {1024, 32000, 1}};

    for (const shape& s : forward_shapes) {
        add_memcpy(s.dims(), traffic<float>(kernel::softmax, s), s.elements());
        add_kernel<float>(kernel::softmax, s);
        add_kernel<float>(kernel::log_softmax, s);
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
        register_libtorch(s, false);
        register_libtorch(s, true);
#endif
        for (const shape& t : small_and_large) {
            if (t.rows != s.rows || t.cols != s.cols || t.axis != s.axis) continue;
            add_memcpy(s.dims() + "/bwd", traffic<float>(kernel::softmax_backward, s), s.elements());
            add_kernel<float>(kernel::softmax_backward, s);
            add_kernel<float>(kernel::log_softmax_backward, s);
            add_memcpy(s.dims() + "/lse", traffic<float>(kernel::logsumexp, s), s.elements());
            add_kernel<float>(kernel::logsumexp, s);
        }
        if (s.rows == 128 && s.cols == 1000 && s.axis == 1) {
            add_memcpy(s.dims() + "/f64", traffic<double>(kernel::softmax, s), s.elements());
            add_kernel<double>(kernel::softmax, s, "/f64");
        }
    }
}

}  // namespace
}  // namespace logitkit_bench

int main(int argc, char** argv) {
    return logitkit_bench::run_benchmarks(argc, argv, logitkit::simd_arch_name(), logitkit_bench::register_all);
}
