// logitkit benchmarks: attention-shaped softmax, [batch, heads, queries, keys] = [8, 16, 512, 512]
// along the keys, with a padding mask, with the causal option, and unmasked, beside a memcpy of
// the same bytes and (with LOGITKIT_BENCH_HAVE_LIBTORCH) libtorch's softmax after masked_fill.
// SPDX-License-Identifier: MIT
//
//   memcpy/attn              x read + y written, float
//   softmax/attn             unmasked
//   softmax_padding/attn     bool mask [8, 1, 1, 512]: sample b keeps its first 512 - 64 * (b % 4) keys
//   softmax_causal/attn      options.causal (reads no mask)
//   torch_softmax/attn, torch_softmax_padding/attn, torch_softmax_causal/attn
//                            at::softmax_out(y, x.masked_fill(~mask, -inf), -1), one thread
#include "bench_attention.hpp"

#include <logitkit/logitkit.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>

namespace lk = logitkit;

namespace logitkit_bench {

const bool* padding_mask() {
    bool fresh = false;
    bool* m = buffer<bool>("padding-mask", static_cast<std::size_t>(attn::batch * attn::keys), &fresh);
    if (fresh)
        for (std::ptrdiff_t b = 0; b < attn::batch; ++b)
            for (std::ptrdiff_t k = 0; k < attn::keys; ++k) m[b * attn::keys + k] = k < attn::keys - 64 * (b % 4);
    return m;
}

namespace {

void bm_softmax(benchmark::State& state, attn::mask_kind kind) {
    const auto n = static_cast<std::size_t>(attn::elements());
    const float* x = random_normal<float>("x", n, seed_x);
    float* y = buffer<float>("out", n);
    const lk::tensor_view<const float, 4> xv(x, attn::shape());
    const lk::tensor_view<float, 4> yv(y, attn::shape());
    const lk::tensor_view<const bool, 4> mask(padding_mask(), {attn::batch, 1, 1, attn::keys});
    lk::softmax_options causal;
    causal.causal = true;
    for (auto _ : state) {
        switch (kind) {
            case attn::mask_kind::none: lk::softmax(xv, yv, -1); break;
            case attn::mask_kind::padding: lk::softmax(xv, yv, mask, -1); break;
            case attn::mask_kind::causal: lk::softmax(xv, yv, -1, causal); break;
        }
        benchmark::DoNotOptimize(y);
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(float), attn::elements());
}

void bm_memcpy(benchmark::State& state) {
    const std::size_t bytes = static_cast<std::size_t>(attn::elements()) * sizeof(float);
    const float* src = random_normal<float>("x", static_cast<std::size_t>(attn::elements()), seed_x);
    float* dst = buffer<float>("memcpy-dst", static_cast<std::size_t>(attn::elements()));
    for (auto _ : state) {
        benchmark::DoNotOptimize(src);
        std::memcpy(dst, src, bytes);
        benchmark::DoNotOptimize(dst);
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * bytes, attn::elements());
}

void configure(benchmark::internal::Benchmark* b) { b->UseRealTime()->Unit(benchmark::kMillisecond); }

}  // namespace
}  // namespace logitkit_bench

int main(int argc, char** argv) {
    using namespace logitkit_bench;
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("logitkit_simd_arch", logitkit::simd_arch_name());
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
    setup_libtorch();
#endif
    configure(benchmark::RegisterBenchmark("memcpy/attn", bm_memcpy));
    for (attn::mask_kind k : {attn::mask_kind::none, attn::mask_kind::padding, attn::mask_kind::causal}) {
        configure(benchmark::RegisterBenchmark((std::string(attn::kernel_name(k)) + "/attn").c_str(), bm_softmax, k));
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
        register_libtorch_attention(k);
#endif
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
