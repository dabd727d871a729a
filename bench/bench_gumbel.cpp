// logitkit benchmarks: gumbel_softmax, gumbel_noise and sample_categorical.
// SPDX-License-Identifier: MIT
//
// The noise dominates these kernels (two logarithms per element), so they are reported per
// element (ns_per_elem) rather than against a memcpy:
//
//   softmax/128x1000                       the same shape without noise, for reference
//   gumbel_noise/128x1000                  the noise alone (philox4x32)
//   gumbel_softmax/128x1000                soft sample, philox4x32, tau = 0.5
//   gumbel_softmax/128x1000/hard           one-hot only (no softmax pass)
//   gumbel_softmax/128x1000/mt19937        soft sample, std::mt19937 (generic generator path)
//   gumbel_softmax/128x1000/f64            double
//   gumbel_softmax/32x32000
//   sample_categorical/1x32000[/filter]    one token from a vocabulary of 32000 ...
//   sample_categorical/1x128256[/filter]   ... and of 128256 (Llama 3), filters: none, T = 0.7,
//                                          top_k = 50, top_p = 0.9, top_k = 50 + top_p = 0.9
//   sample_categorical/32x32000            a batch of 32 tokens
//
// gumbel inputs are N(0, 1); sampling logits are 4 * N(0, 1), whose top-p nucleus is a few
// hundred classes, as for a language model. Fixed seeds. With LOGITKIT_BENCH_HAVE_LIBTORCH
// (bench_gumbel_libtorch.cpp), torch_gumbel_softmax/... and torch_multinomial/... run on the
// same inputs (one thread).
//
//   bench_gumbel --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include "bench_common.hpp"

#include <logitkit/gumbel_softmax.hpp>
#include <logitkit/logitkit.hpp>
#include <logitkit/philox.hpp>
#include <logitkit/sample_categorical.hpp>

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace lk = logitkit;

namespace logitkit_bench {

#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
/// Registers torch::nn::functional::gumbel_softmax on `s` (bench_gumbel_libtorch.cpp).
void register_torch_gumbel(const shape& s, bool hard);
/// Registers torch::multinomial(torch::softmax(x / T, -1), 1) on `s`.
void register_torch_multinomial(const shape& s, double temperature);
#endif

/// Logits for the sampling benchmarks: 4 * N(0, 1), shared with the libtorch file.
const float* sampling_logits(std::size_t count) {
    bool fresh = false;
    float* p = buffer<float>("logits/4N(0,1)", count, &fresh);
    if (fresh) {
        const float* n = random_normal<float>("x", count, seed_x);
        for (std::size_t i = 0; i < count; ++i) p[i] = 4.0f * n[i];
    }
    return p;
}

namespace {

enum class generator { philox, mt19937 };

void configure(benchmark::internal::Benchmark* b) { b->UseRealTime()->Unit(benchmark::kMicrosecond); }

void bm_softmax(benchmark::State& state, shape s) {
    const auto n = static_cast<std::size_t>(s.elements());
    const lk::tensor_view<const float, 2> x(random_normal<float>("x", n, seed_x), {s.rows, s.cols});
    const lk::tensor_view<float, 2> y(buffer<float>("out", n), {s.rows, s.cols});
    for (auto _ : state) {
        lk::softmax(x, y, -1, {0.5});
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(float), s.elements());
}

void bm_noise(benchmark::State& state, shape s) {
    const auto n = static_cast<std::size_t>(s.elements());
    const lk::tensor_view<float, 2> y(buffer<float>("out", n), {s.rows, s.cols});
    lk::philox4x32 gen(1);
    for (auto _ : state) {
        lk::gumbel_noise(y, gen);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    report_traffic(state, n * sizeof(float), s.elements());
}

template <class T>
void bm_gumbel(benchmark::State& state, shape s, bool hard, generator gen_kind) {
    const auto n = static_cast<std::size_t>(s.elements());
    const lk::tensor_view<const T, 2> x(random_normal<T>("x", n, seed_x), {s.rows, s.cols});
    const lk::tensor_view<T, 2> y(buffer<T>("out", n), {s.rows, s.cols});
    const lk::gumbel_softmax_options o{0.5, hard};
    lk::philox4x32 philox(1);
    std::mt19937 mt(1);
    for (auto _ : state) {
        if (gen_kind == generator::philox)
            lk::gumbel_softmax(x, y, philox, o);
        else
            lk::gumbel_softmax(x, y, mt, o);
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(T), s.elements());
}

void bm_sample(benchmark::State& state, shape s, lk::sample_categorical_options o) {
    const auto n = static_cast<std::size_t>(s.elements());
    const lk::tensor_view<const float, 2> x(sampling_logits(n), {s.rows, s.cols});
    std::vector<std::int64_t> out(static_cast<std::size_t>(s.rows));
    const lk::tensor_view<std::int64_t, 2> idx(out.data(), {s.rows, 1});
    lk::philox4x32 gen(1);
    for (auto _ : state) {
        lk::sample_categorical(x, idx, gen, o);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    report_traffic(state, n * sizeof(float), s.elements());
}

void register_all() {
    const shape small{128, 1000, 1}, vocab{32, 32000, 1};
    configure(benchmark::RegisterBenchmark(("softmax/" + small.name()).c_str(), bm_softmax, small));
    configure(benchmark::RegisterBenchmark(("gumbel_noise/" + small.name()).c_str(), bm_noise, small));
    for (const shape& s : {small, vocab}) {
        configure(benchmark::RegisterBenchmark(("gumbel_softmax/" + s.name()).c_str(), bm_gumbel<float>, s, false,
                                               generator::philox));
        configure(benchmark::RegisterBenchmark(("gumbel_softmax/" + s.name() + "/hard").c_str(), bm_gumbel<float>, s,
                                               true, generator::philox));
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
        register_torch_gumbel(s, false);
        register_torch_gumbel(s, true);
#endif
    }
    configure(benchmark::RegisterBenchmark(("gumbel_softmax/" + small.name() + "/mt19937").c_str(), bm_gumbel<float>,
                                           small, false, generator::mt19937));
    configure(benchmark::RegisterBenchmark(("gumbel_softmax/" + small.name() + "/f64").c_str(), bm_gumbel<double>,
                                           small, false, generator::philox));

    struct filter {
        const char* name;
        lk::sample_categorical_options o;
    };
    const filter filters[] = {{"", {}},
                              {"/T0.7", {0.7, 0, 1.0}},
                              {"/top_k50", {1.0, 50, 1.0}},
                              {"/top_p0.9", {1.0, 0, 0.9}},
                              {"/top_k50_top_p0.9", {1.0, 50, 0.9}}};
    for (const shape& s : {shape{1, 32000, 1}, shape{1, 128256, 1}}) {
        for (const filter& f : filters)
            configure(
                benchmark::RegisterBenchmark(("sample_categorical/" + s.name() + f.name).c_str(), bm_sample, s, f.o));
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
        register_torch_multinomial(s, 1.0);
#endif
    }
    configure(benchmark::RegisterBenchmark(("sample_categorical/" + vocab.name()).c_str(), bm_sample, vocab,
                                           lk::sample_categorical_options{}));
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
    register_torch_multinomial(vocab, 1.0);
#endif
}

}  // namespace
}  // namespace logitkit_bench

int main(int argc, char** argv) {
    return logitkit_bench::run_benchmarks(argc, argv, logitkit::simd_arch_name(), logitkit_bench::register_all);
}
