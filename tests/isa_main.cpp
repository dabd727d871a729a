// logitkit tests: main() of a unit-test binary built for one SIMD path.
//
// Compiled into each logitkit_tests_<path> binary with that path's target flags. The build passes
//   LOGITKIT_TEST_ISA           label of the path ("scalar", "sse4.2", "avx2", "avx512", ...)
//   LOGITKIT_TEST_CPU_FEATURES  space-separated CPU features the path needs ("avx2 fma")
//   LOGITKIT_TEST_EXPECTED_ARCH (optional) the logitkit::simd_arch_name() these flags must select
// SPDX-License-Identifier: MIT
#include <logitkit/logitkit.hpp>

#include <cstdio>
#include <cstring>

#ifndef LOGITKIT_TEST_ISA
#error "LOGITKIT_TEST_ISA must be defined by the build"
#endif
#ifndef LOGITKIT_TEST_CPU_FEATURES
#error "LOGITKIT_TEST_CPU_FEATURES must be defined by the build"
#endif

extern "C" {
extern const char logitkit_test_isa[];
extern const char logitkit_test_cpu_features[];
int logitkit_test_require_cpu();
}
int logitkit_run_catch(int argc, char** argv);

const char logitkit_test_isa[] = LOGITKIT_TEST_ISA;
const char logitkit_test_cpu_features[] = LOGITKIT_TEST_CPU_FEATURES;

int main(int argc, char** argv) {
    if (const int rc = logitkit_test_require_cpu(); rc != 0) return rc;

    const char* const arch = logitkit::simd_arch_name();
    std::printf("logitkit SIMD path: %s (test binary: %s)\n", arch, logitkit_test_isa);
#ifdef LOGITKIT_TEST_EXPECTED_ARCH
    if (std::strcmp(arch, LOGITKIT_TEST_EXPECTED_ARCH) != 0) {
        std::fprintf(stderr,
                     "FAILED: logitkit::simd_arch_name() is \"%s\"; this binary's target flags should select \"%s\"\n",
                     arch, LOGITKIT_TEST_EXPECTED_ARCH);
        return 1;
    }
#endif
    std::fflush(stdout);
    return logitkit_run_catch(argc, argv);
}
