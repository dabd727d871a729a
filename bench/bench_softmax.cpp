// logitkit benchmarks: softmax-family kernels against a memcpy of the same bytes.
// SPDX-License-Identifier: MIT
//
// Every kernel benchmark is registered right after a memcpy baseline that moves the same number
// of bytes (bytes read + bytes written by the kernel; the memcpy copies half of that from one
// buffer to another, so it too reads and writes that many bytes in total). The kernel's GB/s
// divided by the baseline's GB/s is the fraction of memcpy speed the kernel reaches:
//
//   memcpy/128x1000            2 x 128x1000 floats (x read, y written)
//   softmax/128x1000           softmax along the last axis; also log_softmax/...
//   memcpy/128x1000/bwd        3 x 128x1000 floats (y and dy read, dx written)
//   softmax_backward/128x1000, log_softmax_backward/128x1000
//   memcpy/128x1000/lse        128x1000 floats read, 128 written
//   logsumexp/128x1000
//   ... the same for 32x32000, 4096x128, 1024x32000 and 1000x1024/axis0 (axis 0, strided)
//   memcpy/128x1000/f64, softmax/128x1000/f64     in double (every kernel at 128x1000 and 4096x128)
//   memcpy/1024x32000/threads:2, softmax/1024x32000/threads:2, ...
//                                                on a logitkit::thread_pool of 2 threads, the
//                                                memcpy's parts on the same threads
//   sweep/memcpy/<n>, sweep/softmax/<n>           rows of n = 1 .. 2^20 elements
//
// Each benchmark reports bytes_per_second (GB/s), the counter ns_per_elem (nanoseconds per input
// element) and the counter bytes (bytes moved per iteration, which report.py uses to pair kernels
// with baselines). Inputs are N(0, 1) with fixed seeds. The peers run on the same buffers and
// shapes, named with torch_ (LOGITKIT_BENCH_HAVE_LIBTORCH, bench_libtorch.cpp) or onednn_
// (LOGITKIT_BENCH_HAVE_ONEDNN, bench_onednn.cpp) before the kernel's name: torch_softmax/128x1000,
// sweep/onednn_softmax/1000, ...
//
//   bench_softmax --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench/run_bench.sh   (builds, runs, and writes the Markdown table and the plot)

#include "bench_common.hpp"

#include <logitkit/logitkit.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace lk = logitkit;

namespace logitkit_bench {
namespace {

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
void bm_kernel(benchmark::State& state, kernel k, shape s, lk::executor* parallel) {
    const auto n = static_cast<std::size_t>(s.elements());
    const T* x = random_normal<T>("x", n, seed_x);
    T* out = buffer<T>("out", n);
    const lk::tensor_view<const T, 2> xv = in_view(x, s);
    const lk::tensor_view<T, 2> outv = out_view(out, s);
    lk::softmax_options options;
    options.parallel = parallel;

    switch (k) {
        case kernel::softmax:
            for (auto _ : state) {
                lk::softmax(xv, outv, s.axis, options);
                benchmark::DoNotOptimize(out);
                benchmark::ClobberMemory();
            }
            break;
        case kernel::log_softmax:
            for (auto _ : state) {
                lk::log_softmax(xv, outv, s.axis, options);
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
                    lk::softmax_backward(yv, dyv, outv, s.axis, options);
                    benchmark::DoNotOptimize(out);
                    benchmark::ClobberMemory();
                }
            } else {
                for (auto _ : state) {
                    lk::log_softmax_backward(yv, dyv, outv, s.axis, options);
                    benchmark::DoNotOptimize(out);
                    benchmark::ClobberMemory();
                }
            }
            break;
        }
        case kernel::logsumexp: {
            const lk::tensor_view<T, 2> lse(out, {s.axis == 0 ? 1 : s.rows, s.axis == 0 ? s.cols : 1});
            for (auto _ : state) {
                lk::logsumexp(xv, lse, s.axis, parallel);
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

/// The memcpy moving `bytes`; on `parallel`, its threads each copy a part (whole cache lines), the
/// baseline of a kernel on the same threads.
void add_memcpy(const std::string& name, std::size_t bytes, std::ptrdiff_t elements,
                lk::executor* parallel = nullptr) {
    if (parallel == nullptr) {
        configure(benchmark::RegisterBenchmark(name.c_str(), bm_memcpy, bytes / 2, elements));
        return;
    }
    const auto copy = [parallel](void* d, const void* s, std::size_t n) {
        const std::size_t parts = parallel->concurrency();
        const auto edge = [&](std::size_t k) { return k == parts ? n : n / parts * k / 64 * 64; };
        parallel->run(parts, [&](std::size_t k) {
            std::memcpy(static_cast<char*>(d) + edge(k), static_cast<const char*>(s) + edge(k), edge(k + 1) - edge(k));
        });
    };
    configure(benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
        bm_copy(state, bytes / 2, elements, copy);
    }));
}

// logitkit's kernel k on s as `prefix + kernel_name(k) + suffix`, then its peers, named with
// torch_ / onednn_ before the kernel name.
template <class T>
void add_kernel(kernel k, const shape& s, const std::string& prefix, const std::string& suffix,
                lk::executor* parallel = nullptr) {
    const std::string name = prefix + kernel_name(k) + suffix;
    configure(benchmark::RegisterBenchmark(name.c_str(), bm_kernel<T>, k, s, parallel));
    if (parallel != nullptr) return;
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
    register_libtorch<T>(prefix + "torch_" + kernel_name(k) + suffix, k, s);
#endif
    if (!std::is_same<T, float>::value) return;
#ifdef LOGITKIT_BENCH_HAVE_ONEDNN
    register_onednn(prefix + "onednn_" + kernel_name(k) + suffix, k, s);
#endif
}

// The thread pool the threads:N benchmarks run on.
lk::thread_pool& pool(std::size_t threads) {
    static std::map<std::size_t, std::unique_ptr<lk::thread_pool>> pools;
    auto& p = pools[threads];
    if (!p) p.reset(new lk::thread_pool(threads));
    return *p;
}

// The kernels in groups that move the same bytes; each group follows one memcpy of its bytes,
// named memcpy/<dims> then the group's flavour (/bwd: three tensors, /lse: one read), then suffix.
struct kernel_group {
    std::vector<kernel> kernels;
    const char* flavour;
};

template <class T>
void add_group(const kernel_group& group, const shape& s, const std::string& suffix,
               lk::executor* parallel = nullptr) {
    add_memcpy("memcpy/" + s.dims() + group.flavour + suffix, traffic<T>(group.kernels.front(), s), s.elements(),
               parallel);
    for (kernel k : group.kernels) add_kernel<T>(k, s, "", "/" + s.name() + suffix, parallel);
}

void register_all() {
    const std::vector<shape> forward_shapes = {
        {128, 1000, 1}, {32, 32000, 1}, {4096, 128, 1}, {1024, 32000, 1}, {1000, 1024, 0}};
    const std::vector<kernel_group> every = {{{kernel::softmax, kernel::log_softmax}, ""},
                                             {{kernel::softmax_backward, kernel::log_softmax_backward}, "/bwd"},
                                             {{kernel::logsumexp}, "/lse"}};
    for (const shape& s : forward_shapes) {
        for (const kernel_group& g : every) add_group<float>(g, s, "");
        if (s.axis == 1 && s.cols <= 1000)
            for (const kernel_group& g : every) add_group<double>(g, s, "/f64");
    }

    // Opt-in threads (executor.hpp) on the out-of-cache shape, the non-last axis and one long row
    // (split into pieces), on a pool of 2 threads (this library's CI machine has 2 cores). Each
    // group runs on the same 2 threads after its memcpy there (its parts on the threads): the
    // ratio to memcpy is then that of the same thread count, and report.py's thread table
    // compares each kernel's speed-up from threads with memcpy's.
    const shape long_row{1, std::ptrdiff_t(1) << 22, 1};
    const std::vector<kernel_group> threaded = {{{kernel::softmax, kernel::log_softmax}, ""},
                                                {{kernel::softmax_backward}, "/bwd"},
                                                {{kernel::logsumexp}, "/lse"}};
    for (const kernel_group& g : threaded) add_group<float>(g, long_row, "");
    for (const shape& s : {shape{1024, 32000, 1}, shape{1000, 1024, 0}, long_row})
        for (const kernel_group& g : threaded) add_group<float>(g, s, "/threads:2", &pool(2));

    // Row-length sweep: softmax along rows of n elements, n = 1 .. 2^20 (powers of two and odd
    // sizes), 2^18 elements per call (1 MB of input) or one row when n is larger; memcpy of the
    // same bytes and the peers beside each. bench/report.py --plot draws ns/elem against n.
    std::vector<std::ptrdiff_t> lengths;
    for (std::ptrdiff_t n = 1; n <= (std::ptrdiff_t(1) << 20); n *= 4) lengths.push_back(n);
    for (std::ptrdiff_t n : {3, 7, 33, 100, 500, 1000, 4097, 32000, 100003}) lengths.push_back(n);
    std::sort(lengths.begin(), lengths.end());
    for (std::ptrdiff_t n : lengths) {
        const shape s{std::max<std::ptrdiff_t>(1, (std::ptrdiff_t(1) << 18) / n), n, 1};
        const std::string suffix = "/" + std::to_string(n);
        add_memcpy("sweep/memcpy" + suffix, traffic<float>(kernel::softmax, s), s.elements());
        add_kernel<float>(kernel::softmax, s, "sweep/", suffix);
    }
}

}  // namespace
}  // namespace logitkit_bench

int main(int argc, char** argv) {
    return logitkit_bench::run_benchmarks(argc, argv, logitkit::simd_arch_name(), logitkit_bench::register_all);
}
