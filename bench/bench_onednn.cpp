// oneDNN peers of the logitkit softmax benchmarks; compiled into bench_softmax only when CMake
// finds dnnl with -DLOGITKIT_BENCH_ONEDNN=ON (it then defines LOGITKIT_BENCH_HAVE_ONEDNN).
// SPDX-License-Identifier: MIT
//
// oneDNN 2.x primitives (softmax_forward, logsoftmax_forward, softmax_backward,
// logsoftmax_backward) on plain row-major f32 memory over the same buffers as the logitkit
// benchmarks; the primitive is created once, outside the timed loop; one OpenMP thread.

#include "bench_common.hpp"

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <benchmark/benchmark.h>

#include <string>
#include <unordered_map>

namespace logitkit_bench {
namespace {

dnnl::engine& cpu_engine() {
    static dnnl::engine e(dnnl::engine::kind::cpu, 0);
    return e;
}

template <class Fwd>
typename Fwd::primitive_desc forward_pd(const dnnl::memory::desc& md, int axis, dnnl::prop_kind prop) {
    return typename Fwd::primitive_desc(typename Fwd::desc(prop, md, axis), cpu_engine());
}

template <class Fwd, class Bwd>
dnnl::primitive backward_primitive(const dnnl::memory::desc& md, int axis) {
    const auto hint = forward_pd<Fwd>(md, axis, dnnl::prop_kind::forward_training);
    return Bwd(typename Bwd::primitive_desc(typename Bwd::desc(md, md, axis), cpu_engine(), hint));
}

void bm_onednn(benchmark::State& state, kernel k, shape s) {
    const auto n = static_cast<std::size_t>(s.elements());
    float* x = const_cast<float*>(random_normal<float>("x", n, seed_x));
    float* dy = const_cast<float*>(random_normal<float>("dy", n, seed_dy));
    float* y = buffer<float>("out", n);
    const dnnl::memory::desc md({s.rows, s.cols}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::ab);
    dnnl::engine& eng = cpu_engine();
    dnnl::stream stream(eng);
    dnnl::memory xm(md, eng, x), dym(md, eng, dy), ym(md, eng, y);
    dnnl::primitive prim;
    std::unordered_map<int, dnnl::memory> args;
    const auto inference = dnnl::prop_kind::forward_inference;
    switch (k) {
        case kernel::softmax:
            prim = dnnl::softmax_forward(forward_pd<dnnl::softmax_forward>(md, s.axis, inference));
            args = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}};
            break;
        case kernel::log_softmax:
            prim = dnnl::logsoftmax_forward(forward_pd<dnnl::logsoftmax_forward>(md, s.axis, inference));
            args = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}};
            break;
        case kernel::softmax_backward:
        case kernel::log_softmax_backward:
            // x stands in for the forward's output: its values do not change the speed.
            prim = k == kernel::softmax_backward
                       ? backward_primitive<dnnl::softmax_forward, dnnl::softmax_backward>(md, s.axis)
                       : backward_primitive<dnnl::logsoftmax_forward, dnnl::logsoftmax_backward>(md, s.axis);
            args = {{DNNL_ARG_DST, xm}, {DNNL_ARG_DIFF_DST, dym}, {DNNL_ARG_DIFF_SRC, ym}};
            break;
        case kernel::logsumexp: state.SkipWithError("oneDNN has no logsumexp primitive"); return;
    }
    for (auto _ : state) {
        prim.execute(stream, args);
        stream.wait();
        benchmark::DoNotOptimize(y);
        benchmark::ClobberMemory();
    }
    report_traffic(state, traffic<float>(k, s), s.elements());
}

}  // namespace

bool register_onednn(const std::string& name, kernel k, const shape& s) {
    if (k == kernel::logsumexp) return false;
    benchmark::RegisterBenchmark(name.c_str(), bm_onednn, k, s)->UseRealTime()->Unit(benchmark::kMicrosecond);
    return true;
}

void setup_onednn() {
    omp_set_num_threads(1);
    const dnnl_version_t* v = dnnl_version();
    benchmark::AddCustomContext("onednn_version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                                                       std::to_string(v->patch));
}

}  // namespace logitkit_bench
