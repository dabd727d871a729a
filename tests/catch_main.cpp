// logitkit tests: the Catch2 session shared by every test binary, and the CPU check that lets a
// binary built for a wider SIMD target skip (exit code 77) on a CPU that lacks it.
//
// This file is compiled once, for the compiler's baseline target, so the check itself never uses
// the instructions it checks for. Each test binary's main translation unit (isa_main.cpp) defines
// logitkit_test_isa and logitkit_test_cpu_features.
// SPDX-License-Identifier: MIT
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

extern "C" {
// Label of the SIMD path the binary was built for ("avx2", "avx512", ...).
extern const char logitkit_test_isa[];
// Space-separated __builtin_cpu_supports() feature names the binary needs ("" for none).
extern const char logitkit_test_cpu_features[];
}

namespace {

// 1 when the CPU (and OS) supports `feature`, 0 when not, -1 when the name is not known here.
int cpu_has(const std::string& feature) {
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
#define LOGITKIT_CPU_FEATURE(name) \
    if (feature == name) return __builtin_cpu_supports(name) ? 1 : 0;
    LOGITKIT_CPU_FEATURE("popcnt")
    LOGITKIT_CPU_FEATURE("sse2")
    LOGITKIT_CPU_FEATURE("sse3")
    LOGITKIT_CPU_FEATURE("ssse3")
    LOGITKIT_CPU_FEATURE("sse4.1")
    LOGITKIT_CPU_FEATURE("sse4.2")
    LOGITKIT_CPU_FEATURE("avx")
    LOGITKIT_CPU_FEATURE("avx2")
    LOGITKIT_CPU_FEATURE("fma")
    LOGITKIT_CPU_FEATURE("bmi")
    LOGITKIT_CPU_FEATURE("bmi2")
    LOGITKIT_CPU_FEATURE("avx512f")
    LOGITKIT_CPU_FEATURE("avx512cd")
    LOGITKIT_CPU_FEATURE("avx512dq")
    LOGITKIT_CPU_FEATURE("avx512bw")
    LOGITKIT_CPU_FEATURE("avx512vl")
    LOGITKIT_CPU_FEATURE("avx512ifma")
    LOGITKIT_CPU_FEATURE("avx512vbmi")
    LOGITKIT_CPU_FEATURE("avx512vbmi2")
    LOGITKIT_CPU_FEATURE("avx512vnni")
    LOGITKIT_CPU_FEATURE("avx512bitalg")
    LOGITKIT_CPU_FEATURE("avx512vpopcntdq")
#undef LOGITKIT_CPU_FEATURE
#else
    (void)feature;
#endif
    return -1;
}

}  // namespace

// 0 when the CPU runs this binary's SIMD path; otherwise prints why and returns 77 (skip) or 1
// (a feature name this check does not know: a build configuration error).
extern "C" int logitkit_test_require_cpu() {
    const char* p = logitkit_test_cpu_features;
    while (*p != '\0') {
        while (*p == ' ') ++p;
        const char* end = p;
        while (*end != '\0' && *end != ' ') ++end;
        if (end != p) {
            const std::string feature(p, end);
            const int has = cpu_has(feature);
            if (has < 0) {
                std::fprintf(stderr, "logitkit tests: cannot check CPU feature '%s' for %s on this platform\n",
                             feature.c_str(), logitkit_test_isa);
                std::fflush(stderr);
                return 1;
            }
            if (has == 0) {
                std::printf("SKIPPED: this CPU lacks %s\n(missing CPU feature: %s)\n", logitkit_test_isa,
                            feature.c_str());
                std::fflush(stdout);
                return 77;
            }
        }
        p = end;
    }
    return 0;
}

#if defined(__GNUC__) || defined(__clang__)
// Runs before the static initialisers of the test files (which are compiled with the wider target
// flags and may already use its instructions), so an unsupported CPU skips instead of crashing.
__attribute__((constructor(101))) static void logitkit_test_cpu_gate() {
    const int rc = logitkit_test_require_cpu();
    if (rc != 0) std::_Exit(rc);
}
#endif

int logitkit_run_catch(int argc, char** argv) {
    return Catch::Session().run(argc, argv);
}
