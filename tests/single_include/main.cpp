// logitkit single-header check: compiled with only single_include/ on the include path (plus the
// system paths, where xsimd may be), it runs every kernel once and checks the results.
// SPDX-License-Identifier: MIT
#include <logitkit/logitkit.hpp>

#ifndef LOGITKIT_SINGLE_HEADER
#error "this program must be compiled against single_include/logitkit/logitkit.hpp"
#endif

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace {
int failures = 0;
void check(bool ok, const char* what, double got, double want) {
    std::printf("%-36s %.9f (expected %.9f) %s\n", what, got, want, ok ? "ok" : "FAILED");
    if (!ok) ++failures;
}
bool close(double a, double b) { return std::fabs(a - b) <= 1e-6 * std::fmax(1.0, std::fabs(b)); }
}  // namespace

int main() {
    const float x[2][3] = {{1, 2, 3}, {1, 1, 1}};
    float y[2][3], l[2][3], lse[2][1], dx[2][3];
    const logitkit::tensor_view<const float, 2> xv(&x[0][0], {2, 3});
    const logitkit::tensor_view<float, 2> yv(&y[0][0], {2, 3}), lv(&l[0][0], {2, 3}), dxv(&dx[0][0], {2, 3});

    logitkit::softmax(xv, yv);
    check(close(y[0][2], 0.665240955774821), "softmax([1, 2, 3])[2]", y[0][2], 0.665240955774821);
    logitkit::log_softmax(xv, lv, -1, logitkit::softmax_options{2.0});
    check(close(l[1][0], -1.09861228866811), "log_softmax([1, 1, 1] / 2)[0]", l[1][0], -1.09861228866811);
    logitkit::logsumexp(xv, logitkit::tensor_view<float, 2>(&lse[0][0], {2, 1}));
    check(close(lse[0][0], 3.40760596444438), "logsumexp([1, 2, 3])", lse[0][0], 3.40760596444438);
    // dy = 1 everywhere: the softmax gradient of a constant is 0.
    const float ones[2][3] = {{1, 1, 1}, {1, 1, 1}};
    const logitkit::tensor_view<const float, 2> dyv(&ones[0][0], {2, 3});
    logitkit::softmax_backward(logitkit::tensor_view<const float, 2>(&y[0][0], {2, 3}), dyv, dxv);
    check(close(dx[0][1], 0.0), "softmax_backward(y, 1)[1]", dx[0][1], 0.0);
    logitkit::log_softmax_backward(logitkit::tensor_view<const float, 2>(&l[0][0], {2, 3}), dyv, dxv);
    check(close(dx[1][2], 0.0), "log_softmax_backward(l, 1)[2]", dx[1][2], 0.0);

    bool threw = false;
    try {
        logitkit::softmax(xv, yv, 2);
    } catch (const std::out_of_range&) {
        threw = true;
    }
    check(threw, "softmax(axis = 2) throws out_of_range", threw, 1);

    std::printf("SIMD path: %s\n", logitkit::simd_arch_name());
    if (failures != 0) {
        std::printf("FAILED: %d check(s)\n", failures);
        return 1;
    }
    std::printf("single header OK\n");
    return 0;
}
