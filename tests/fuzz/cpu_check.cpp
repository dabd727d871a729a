// logitkit fuzzer: the CPU check. Compiled for the baseline target (no -m flags), it runs before
// any code built with the fuzzer's instruction-set flags and exits when the CPU lacks them.
// SPDX-License-Identifier: MIT
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#ifndef LOGITKIT_FUZZ_CPU_FEATURES
#define LOGITKIT_FUZZ_CPU_FEATURES ""
#endif

namespace {

// 1 when the CPU (and OS) supports `feature`, 0 when not, -1 when the name is not known here.
int cpu_has(const std::string& feature) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
#define LOGITKIT_CPU_FEATURE(name) \
    if (feature == name) return __builtin_cpu_supports(name) ? 1 : 0;
    LOGITKIT_CPU_FEATURE("sse4.2")
    LOGITKIT_CPU_FEATURE("avx")
    LOGITKIT_CPU_FEATURE("avx2")
    LOGITKIT_CPU_FEATURE("fma")
    LOGITKIT_CPU_FEATURE("avx512f")
    LOGITKIT_CPU_FEATURE("avx512cd")
    LOGITKIT_CPU_FEATURE("avx512dq")
    LOGITKIT_CPU_FEATURE("avx512bw")
    LOGITKIT_CPU_FEATURE("avx512vl")
#undef LOGITKIT_CPU_FEATURE
#else
    (void)feature;
#endif
    return -1;
}

__attribute__((constructor(101))) void logitkit_fuzz_cpu_gate() {
    const char* p = LOGITKIT_FUZZ_CPU_FEATURES;
    while (*p != '\0') {
        while (*p == ' ') ++p;
        const char* end = p;
        while (*end != '\0' && *end != ' ') ++end;
        if (end != p) {
            const std::string feature(p, end);
            const int has = cpu_has(feature);
            if (has < 0) {
                std::fprintf(stderr, "logitkit fuzz: cannot check CPU feature '%s' on this platform\n", feature.c_str());
                std::_Exit(1);
            }
            if (has == 0) {
                std::printf("SKIPPED: this CPU lacks %s (needed by the fuzzer's flags: %s)\n", feature.c_str(),
                            LOGITKIT_FUZZ_CPU_FEATURES);
                std::fflush(stdout);
                std::_Exit(77);
            }
        }
        p = end;
    }
}

}  // namespace
