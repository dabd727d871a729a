// logitkit fuzzers: libFuzzer's initialisation, shared by every fuzz target. Compiled with the
// harness's instruction-set flags, so that simd_arch_name() names the path the harness runs.
// SPDX-License-Identifier: MIT
#include <logitkit/logitkit.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES
#define LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES 0
#endif

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    const char* arch = logitkit::simd_arch_name();
    std::fprintf(stderr, "logitkit fuzz: SIMD path %s against scalar_arch%s\n", arch,
                 LOGITKIT_FUZZ_SKIP_KNOWN_ISSUES ? " (skipping the known issues in tests/fuzz/README.md)" : "");
    if (std::strcmp(arch, "scalar") == 0) {
        std::fprintf(stderr,
                     "logitkit fuzz: FAILED: no SIMD path is compiled (is xsimd on the include path?); "
                     "comparing scalar with scalar tests nothing\n");
        std::exit(1);
    }
#ifdef LOGITKIT_FUZZ_EXPECTED_ARCH
    if (LOGITKIT_FUZZ_EXPECTED_ARCH[0] != '\0' && std::strcmp(arch, LOGITKIT_FUZZ_EXPECTED_ARCH) != 0) {
        std::fprintf(stderr, "logitkit fuzz: FAILED: the SIMD path is %s; these flags should select %s\n", arch,
                     LOGITKIT_FUZZ_EXPECTED_ARCH);
        std::exit(1);
    }
#endif
    return 0;
}
