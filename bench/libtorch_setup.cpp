// Shared by every benchmark binary that has libtorch peers: one libtorch thread (logitkit's
// kernels are single-threaded), and libtorch's version in the benchmark context.
// SPDX-License-Identifier: MIT
#include "bench_common.hpp"

#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace logitkit_bench {

void setup_libtorch() {
    at::set_num_threads(1);
    benchmark::AddCustomContext("libtorch_version", TORCH_VERSION);
    benchmark::AddCustomContext("libtorch_threads", std::to_string(at::get_num_threads()));
    const char* capability = std::getenv("ATEN_CPU_CAPABILITY");
    benchmark::AddCustomContext("libtorch_cpu_capability", capability != nullptr ? capability : "default");
}

}  // namespace logitkit_bench
