// logitkit benchmarks: attention-shaped softmax, [batch, heads, queries, keys] = [8, 16, 512, 512]
// along the keys, with a padding mask, with the causal option, and unmasked, in float and in
// bfloat16; and unmasked bfloat16 softmax and log_softmax at the core 2-D shapes. Each group has a memcpy of the
// same bytes and (with LOGITKIT_BENCH_HAVE_LIBTORCH) libtorch's softmax after masked_fill.
// SPDX-License-Identifier: MIT
//
//   memcpy/attn[/bf16]                x read + y written
//   softmax/attn[/bf16]               unmasked
//   softmax_padding/attn[/bf16]       bool mask [8, 1, 1, 512]: sample b keeps 512 - 64 * (b % 4) keys
//   softmax_causal/attn[/bf16]        options.causal (reads no mask)
//   torch_softmax*/attn[/bf16]        at::softmax_out(y, x.masked_fill(~mask, -inf), -1), one thread
//   memcpy/128x1000/bf16, softmax/128x1000/bf16, log_softmax/128x1000/bf16 and their torch_ peers
//   (and 32x32000, 4096x128, 1024x32000)
#include "bench_attention.hpp"

#include <logitkit/logitkit.hpp>

#include <benchmark/benchmark.h>

#include <cstring>
#include <string>
#include <vector>

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

const void* scores(std::size_t count, bool bf16) {
    const float* x = random_normal<float>("x", count, seed_x);
    if (!bf16) return x;
    bool fresh = false;
    lk::bfloat16* b = buffer<lk::bfloat16>("x-bf16", count, &fresh);
    if (fresh)
        for (std::size_t i = 0; i < count; ++i) b[i] = lk::bfloat16(x[i]);
    return b;
}

namespace {

template <class T>
void bm_attention(benchmark::State& state, attn::mask_kind kind) {
    const auto n = static_cast<std::size_t>(attn::elements());
    const T* x = static_cast<const T*>(scores(n, sizeof(T) == 2));
    T* y = buffer<T>("out", n);
    const lk::tensor_view<const T, 4> xv(x, attn::shape());
    const lk::tensor_view<T, 4> yv(y, attn::shape());
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
    report_traffic(state, 2 * n * sizeof(T), attn::elements());
}

void bm_softmax_bf16(benchmark::State& state, shape s, bool log) {
    const auto n = static_cast<std::size_t>(s.elements());
    const auto* x = static_cast<const lk::bfloat16*>(scores(n, true));
    lk::bfloat16* y = buffer<lk::bfloat16>("out", n);
    const lk::tensor_view<const lk::bfloat16, 2> xv(x, {s.rows, s.cols});
    const lk::tensor_view<lk::bfloat16, 2> yv(y, {s.rows, s.cols});
    for (auto _ : state) {
        if (log)
            lk::log_softmax(xv, yv, -1);
        else
            lk::softmax(xv, yv, -1);
        benchmark::DoNotOptimize(y);
        benchmark::ClobberMemory();
    }
    report_traffic(state, 2 * n * sizeof(lk::bfloat16), s.elements());
}

void configure(benchmark::internal::Benchmark* b) { b->UseRealTime()->Unit(benchmark::kMicrosecond); }

void register_all() {
    for (bool bf16 : {false, true}) {
        const std::string suffix = bf16 ? "/bf16" : "";
        const std::size_t elem = bf16 ? 2 : 4;
        configure(benchmark::RegisterBenchmark(("memcpy/attn" + suffix).c_str(), bm_memcpy,
                                               static_cast<std::size_t>(attn::elements()) * elem, attn::elements()));
        for (attn::mask_kind k : {attn::mask_kind::none, attn::mask_kind::padding, attn::mask_kind::causal}) {
            const std::string name = std::string(attn::kernel_name(k)) + "/attn" + suffix;
            if (bf16)
                configure(benchmark::RegisterBenchmark(name.c_str(), bm_attention<lk::bfloat16>, k));
            else
                configure(benchmark::RegisterBenchmark(name.c_str(), bm_attention<float>, k));
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
            register_libtorch_attention(k, bf16);
#endif
        }
    }
    for (const shape& s : std::vector<shape>{{128, 1000, 1}, {32, 32000, 1}, {4096, 128, 1}, {1024, 32000, 1}}) {
        configure(benchmark::RegisterBenchmark(("memcpy/" + s.dims() + "/bf16").c_str(), bm_memcpy,
                                               static_cast<std::size_t>(s.elements()) * 2, s.elements()));
        for (const bool log : {false, true}) {
            const std::string kernel = log ? "log_softmax/" : "softmax/";
            configure(benchmark::RegisterBenchmark((kernel + s.name() + "/bf16").c_str(), bm_softmax_bf16, s, log));
#ifdef LOGITKIT_BENCH_HAVE_LIBTORCH
            register_libtorch_bf16(s, log);
#endif
        }
    }
}

}  // namespace
}  // namespace logitkit_bench

int main(int argc, char** argv) {
    return logitkit_bench::run_benchmarks(argc, argv, logitkit::simd_arch_name(), logitkit_bench::register_all);
}
