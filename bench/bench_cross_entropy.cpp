// logitkit benchmarks: fused softmax cross-entropy (loss, and loss + gradient) against a memcpy of
// the logits' bytes.
// SPDX-License-Identifier: MIT
//
//   memcpy/128x1000/ce                      copies the logits' bytes (reads and writes 2 x logits)
//   cross_entropy/128x1000/loss             mean loss only: reads the logits once
//   cross_entropy/128x1000/loss_grad        mean loss and its gradient into another buffer
//   cross_entropy/128x1000/loss_grad_inplace  the gradient overwrites the logits
//   ... the same at 1024x32000 and 64x128256 (float), plus
//   cross_entropy/1024x32000/loss_grad/smoothing  label_smoothing = 0.1 (adds sum(m - x) per row)
//   cross_entropy/128x1000/loss_grad/f64    double
//   cross_entropy/8x21x4096/class_axis1/loss_grad  per-pixel classes of [N, C, HW] maps (class axis
//                                           1, strided; the pixels contiguous beside it), also
//                                           1x1000x1024
//   torch_cross_entropy/...                 libtorch's F.cross_entropy forward / forward+backward,
//                                           with -DLOGITKIT_BENCH_LIBTORCH=ON
//
// bytes_per_second counts the logits' bytes, plus the gradient's bytes when one is written (the
// class-index targets, 8 bytes per row, are not counted). With the memcpy's GB/s beside it, the
// loss+gradient kernel's GB/s is directly the fraction of memcpy speed it reaches (both move
// 2 x logits bytes); the loss alone moves half as much. Inputs are N(0, 1) logits and uniform
// targets, with fixed seeds.
//
//   bench_cross_entropy --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include "bench_common.hpp"

#include <logitkit/logitkit.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace lk = logitkit;

namespace logitkit_bench {
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
void register_libtorch_cross_entropy(const shape& s);  // bench_cross_entropy_libtorch.cpp
void register_libtorch_cross_entropy_map(const map_shape& s);
#endif
namespace {

enum class mode { loss, loss_grad, loss_grad_inplace };

const char* mode_name(mode m) {
    switch (m) {
        case mode::loss:
            return "loss";
        case mode::loss_grad:
            return "loss_grad";
        case mode::loss_grad_inplace:
            return "loss_grad_inplace";
    }
    return "?";
}

template <class T>
std::size_t traffic(mode m, const shape& s) {
    const auto bytes = static_cast<std::size_t>(s.elements()) * sizeof(T);
    return m == mode::loss ? bytes : 2 * bytes;
}

constexpr std::uint64_t seed_targets = 20240603;

/// Uniform class indices in [0, classes), one per row.
const std::int64_t* random_targets(std::ptrdiff_t rows, std::ptrdiff_t classes) {
    bool fresh = false;
    std::int64_t* t =
        buffer<std::int64_t>("targets/" + std::to_string(classes), static_cast<std::size_t>(rows), &fresh);
    if (fresh) {
        std::mt19937_64 gen(seed_targets);
        std::uniform_int_distribution<std::int64_t> pick(0, classes - 1);
        for (std::ptrdiff_t i = 0; i < rows; ++i) t[i] = pick(gen);
    }
    return t;
}

template <class T>
void bm_cross_entropy(benchmark::State& state, mode m, shape s, double smoothing) {
    const auto n = static_cast<std::size_t>(s.elements());
    const T* x = random_normal<T>("x", n, seed_x);
    const lk::tensor_view<const std::int64_t, 1> tv(random_targets(s.rows, s.cols), {s.rows});
    lk::cross_entropy_options<T> options;
    options.label_smoothing = smoothing;
    double loss = 0;

    switch (m) {
        case mode::loss: {
            const lk::tensor_view<const T, 2> xv(x, {s.rows, s.cols});
            for (auto _ : state) {
                loss = lk::cross_entropy(xv, tv, options);
                benchmark::DoNotOptimize(loss);
            }
            break;
        }
        case mode::loss_grad: {
            const lk::tensor_view<const T, 2> xv(x, {s.rows, s.cols});
            lk::loss_outputs<T, 2> out;
            out.grad = lk::tensor_view<T, 2>(buffer<T>("grad", n), {s.rows, s.cols});
            for (auto _ : state) {
                loss = lk::cross_entropy(xv, tv, options, out);
                benchmark::DoNotOptimize(loss);
                benchmark::ClobberMemory();
            }
            break;
        }
        case mode::loss_grad_inplace: {
            // A private copy of the logits, overwritten by the gradient at every iteration (the
            // kernel's work does not depend on the values).
            T* work = buffer<T>("inplace", n);
            std::memcpy(work, x, n * sizeof(T));
            const lk::tensor_view<T, 2> xv(work, {s.rows, s.cols});
            lk::loss_outputs<T, 2> out;
            out.grad = xv;
            for (auto _ : state) {
                loss = lk::cross_entropy(xv, tv, options, out);
                benchmark::DoNotOptimize(loss);
                benchmark::ClobberMemory();
            }
            break;
        }
    }
    report_traffic(state, traffic<T>(m, s), s.elements());
}

/// Loss and gradient of [N, C, HW] logits with class axis 1 and [N, HW] targets.
template <class T>
void bm_cross_entropy_map(benchmark::State& state, map_shape s) {
    const auto n = static_cast<std::size_t>(s.elements());
    const T* x = random_normal<T>("x", n, seed_x);
    const lk::tensor_view<const T, 3> xv(x, {s.maps, s.classes, s.pixels});
    const lk::tensor_view<const std::int64_t, 2> tv(random_targets(s.maps * s.pixels, s.classes), {s.maps, s.pixels});
    lk::cross_entropy_options<T> options;
    options.class_axis = 1;
    lk::loss_outputs<T, 3> out;
    out.grad = lk::tensor_view<T, 3>(buffer<T>("grad", n), {s.maps, s.classes, s.pixels});
    double loss = 0;
    for (auto _ : state) {
        loss = lk::cross_entropy(xv, tv, options, out);
        benchmark::DoNotOptimize(loss);
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(T), s.elements());
}

void configure(benchmark::internal::Benchmark* b) {
    b->UseRealTime()->Unit(benchmark::kMicrosecond);
}

template <class T>
void add(mode m, const shape& s, const std::string& suffix = "", double smoothing = 0) {
    const std::string name = "cross_entropy/" + s.dims() + "/" + mode_name(m) + suffix;
    configure(benchmark::RegisterBenchmark(name.c_str(), bm_cross_entropy<T>, m, s, smoothing));
}

void add_memcpy(const std::string& name, std::size_t bytes, std::ptrdiff_t elements) {
    configure(benchmark::RegisterBenchmark(("memcpy/" + name).c_str(), bm_memcpy, bytes, elements));
}

void register_all() {
    const std::vector<shape> shapes = {{128, 1000, 1}, {1024, 32000, 1}, {64, 128256, 1}};
    for (const shape& s : shapes) {
        add_memcpy(s.dims() + "/ce", static_cast<std::size_t>(s.elements()) * sizeof(float), s.elements());
        add<float>(mode::loss, s);
        add<float>(mode::loss_grad, s);
        add<float>(mode::loss_grad_inplace, s);
        if (s.rows == 1024) add<float>(mode::loss_grad, s, "/smoothing", 0.1);
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
        register_libtorch_cross_entropy(s);
#endif
        if (s.rows == 128) {
            add_memcpy(s.dims() + "/ce/f64", static_cast<std::size_t>(s.elements()) * sizeof(double), s.elements());
            add<double>(mode::loss, s, "/f64");
            add<double>(mode::loss_grad, s, "/f64");
        }
    }
    for (const map_shape& s : {map_shape{8, 21, 4096}, map_shape{1, 1000, 1024}}) {
        add_memcpy(s.dims() + "/ce", static_cast<std::size_t>(s.elements()) * sizeof(float), s.elements());
        const std::string name = "cross_entropy/" + s.dims() + "/class_axis1/loss_grad";
        configure(benchmark::RegisterBenchmark(name.c_str(), bm_cross_entropy_map<float>, s));
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
        register_libtorch_cross_entropy_map(s);
#endif
    }
}

}  // namespace
}  // namespace logitkit_bench

int main(int argc, char** argv) {
    return logitkit_bench::run_benchmarks(argc, argv, logitkit::simd_arch_name(), logitkit_bench::register_all);
}
