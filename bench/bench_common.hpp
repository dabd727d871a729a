// Shared pieces of the logitkit benchmarks (bench_softmax.cpp, bench_libtorch.cpp).
// SPDX-License-Identifier: MIT
#pragma once

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <tuple>
#include <typeindex>

namespace logitkit_bench {

/// A 2-D problem: `rows x cols`, reduced along `axis` (1 = the last, contiguous axis; 0 = the
/// strided one).
struct shape {
    std::ptrdiff_t rows;
    std::ptrdiff_t cols;
    int axis;

    std::ptrdiff_t elements() const { return rows * cols; }
    /// "128x1000"; the memcpy baselines are named after this.
    std::string dims() const { return std::to_string(rows) + "x" + std::to_string(cols); }
    /// "128x1000" or "1000x1024/axis0"; the kernels are named after this.
    std::string name() const { return axis == 0 ? dims() + "/axis0" : dims(); }
    /// The number of rows (slices) the reduction produces.
    std::ptrdiff_t lines() const { return axis == 0 ? cols : rows; }
};

/// [maps, classes, pixels] with the classes on axis 1, as a segmentation network's logits.
struct map_shape {
    std::ptrdiff_t maps;
    std::ptrdiff_t classes;
    std::ptrdiff_t pixels;

    std::ptrdiff_t elements() const { return maps * classes * pixels; }
    /// "8x21x4096"
    std::string dims() const {
        return std::to_string(maps) + "x" + std::to_string(classes) + "x" + std::to_string(pixels);
    }
};

namespace detail {
struct free_deleter {
    void operator()(void* p) const noexcept { std::free(p); }
};
using key = std::tuple<std::string, std::size_t, std::type_index>;
inline std::map<key, std::unique_ptr<void, free_deleter>>& buffers() {
    static std::map<key, std::unique_ptr<void, free_deleter>> cache;
    return cache;
}
}  // namespace detail

/// A 64-byte aligned buffer of `count` elements of T, kept for the life of the process and shared
/// by all benchmarks that ask for the same (role, count, T); `fresh` is set when it was just
/// created. `role` tells the buffers apart ("x", "y", "dy", ...). Every byte is written when the
/// buffer is created (zeros), so no benchmark pays for first-touch page faults.
template <class T>
T* buffer(const std::string& role, std::size_t count, bool* fresh = nullptr) {
    auto& cache = detail::buffers();
    const detail::key k{role, count, std::type_index(typeid(T))};
    auto it = cache.find(k);
    if (fresh != nullptr) *fresh = (it == cache.end());
    if (it == cache.end()) {
        std::size_t bytes = count * sizeof(T);
        bytes = (bytes + 63) / 64 * 64;
        void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
        if (p == nullptr) throw std::bad_alloc();
        std::memset(p, 0, bytes);
        it = cache.emplace(k, std::unique_ptr<void, detail::free_deleter>(p)).first;
    }
    return static_cast<T*>(it->second.get());
}

/// Like buffer(), filled with N(0, 1) values from a generator seeded with `seed` (the same seed
/// gives the same values in every run and in every benchmark).
template <class T>
const T* random_normal(const std::string& role, std::size_t count, std::uint64_t seed) {
    bool fresh = false;
    T* p = buffer<T>(role + "/normal/" + std::to_string(seed), count, &fresh);
    if (fresh) {
        std::mt19937_64 gen(seed);
        std::normal_distribution<double> normal(0.0, 1.0);
        for (std::size_t i = 0; i < count; ++i) p[i] = static_cast<T>(normal(gen));
    }
    return p;
}

/// Reports the traffic of one iteration: `bytes` read plus written (as GB/s, "bytes_per_second")
/// and `elements` processed (as "ns_per_elem"). Also records `bytes` as the per-iteration
/// counter "bytes" that report.py uses to pair each kernel with the memcpy moving the same bytes.
inline void report_traffic(benchmark::State& state, std::size_t bytes, std::ptrdiff_t elements) {
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes) * static_cast<std::int64_t>(state.iterations()));
    // value * iterations / seconds, inverted: seconds per element; the 1e-9 makes it nanoseconds.
    // (The console reporter appends "s" to every inverted rate; the number is in nanoseconds.)
    state.counters["ns_per_elem"] = benchmark::Counter(
        static_cast<double>(elements) * 1e-9,
        benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
    state.counters["bytes"] = benchmark::Counter(static_cast<double>(bytes));
}

/// The baseline every kernel is compared with: copies `bytes` from one buffer to another (both
/// read and written: 2 * bytes of traffic) by copy(dst, src, bytes), std::memcpy unless given. The
/// source holds non-zero bytes, so that nothing can take a shortcut for zero pages.
template <class Copy>
void bm_copy(benchmark::State& state, std::size_t bytes, std::ptrdiff_t elements, Copy copy) {
    bool fresh = false;
    unsigned char* src = buffer<unsigned char>("memcpy-src", bytes, &fresh);
    if (fresh)
        for (std::size_t i = 0; i < bytes; ++i) src[i] = static_cast<unsigned char>(i * 131u + 7u);
    unsigned char* dst = buffer<unsigned char>("memcpy-dst", bytes);
    for (auto _ : state) {
        benchmark::DoNotOptimize(src);
        copy(dst, src, bytes);
        benchmark::DoNotOptimize(dst);
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * bytes, elements);
}
inline void bm_memcpy(benchmark::State& state, std::size_t bytes, std::ptrdiff_t elements) {
    bm_copy(state, bytes, elements, [](void* d, const void* s, std::size_t n) { std::memcpy(d, s, n); });
}

/// The softmax-family kernels bench_softmax times, on logitkit and on its peers.
enum class kernel { softmax, log_softmax, softmax_backward, log_softmax_backward, logsumexp };

inline const char* kernel_name(kernel k) {
    switch (k) {
        case kernel::softmax: return "softmax";
        case kernel::log_softmax: return "log_softmax";
        case kernel::softmax_backward: return "softmax_backward";
        case kernel::log_softmax_backward: return "log_softmax_backward";
        case kernel::logsumexp: return "logsumexp";
    }
    return "?";
}

/// Bytes one call of the kernel reads plus writes.
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

/// Seeds of the benchmark inputs.
constexpr std::uint64_t seed_x = 20240601;
constexpr std::uint64_t seed_dy = 20240602;

#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
/// Registers libtorch's kernel k on `s` under `name`, for T = float or double (bench_libtorch.cpp).
template <class T>
void register_libtorch(const std::string& name, kernel k, const shape& s);
/// Called once from main(): pins libtorch to one thread and names its version in the context
/// (libtorch_setup.cpp).
void setup_libtorch();
#endif

#ifdef LOGITKIT_BENCH_HAVE_ONEDNN
/// Registers oneDNN's float kernel k on `s` under `name` when oneDNN has it (no logsumexp);
/// returns whether it did (bench_onednn.cpp).
bool register_onednn(const std::string& name, kernel k, const shape& s);
/// Called once from main(): one OpenMP thread, oneDNN's version in the context.
void setup_onednn();
#endif

/// main() of every benchmark binary: flags, context, the libtorch setup when its peers are built
/// in, registration, and the run.
inline int run_benchmarks(int argc, char** argv, const char* simd_arch, void (*register_all)()) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("logitkit_simd_arch", simd_arch);
#ifdef LOGITKIT_BENCH_SMOKE
    // A run's JSON carries this too, so that bench/report.py cannot take it for figures.
    benchmark::AddCustomContext("logitkit_bench_build", "smoke test (-O1): the times are not figures");
    std::fprintf(stderr, "logitkit bench: built with LOGITKIT_BENCH_SMOKE (-O1) to test that it runs; "
                         "the times are not figures (bench/run_bench.sh builds the real benchmarks)\n");
#endif
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
    setup_libtorch();
#endif
#ifdef LOGITKIT_BENCH_HAVE_ONEDNN
    setup_onednn();
#endif
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

}  // namespace logitkit_bench
