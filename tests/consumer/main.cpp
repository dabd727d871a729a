// logitkit consumer check: softmax of a small tensor through the installed/fetched headers.
// SPDX-License-Identifier: MIT
#include <logitkit/logitkit.hpp>

#include <cmath>
#include <cstdio>

int main() {
    int failures = 0;

    // Rank 1: softmax({1, 2, 3}).
    {
        const float x[3] = {1.0f, 2.0f, 3.0f};
        float y[3] = {0.0f, 0.0f, 0.0f};
        logitkit::tensor_view<const float, 1> xv(x, {3});
        logitkit::tensor_view<float, 1> yv(y, {3});
        logitkit::softmax(xv, yv);

        double denom = 0.0;
        for (float v : x) denom += std::exp(static_cast<double>(v) - 3.0);
        double sum = 0.0;
        for (int i = 0; i < 3; ++i) {
            const double ref = std::exp(static_cast<double>(x[i]) - 3.0) / denom;
            sum += y[i];
            std::printf("softmax[%d] = %.9f (reference %.9f)\n", i, static_cast<double>(y[i]), ref);
            if (!(std::fabs(static_cast<double>(y[i]) - ref) <= 1e-6)) {
                std::fprintf(stderr, "FAILED: softmax[%d] = %.9g, expected %.9g\n", i,
                             static_cast<double>(y[i]), ref);
                ++failures;
            }
        }
        if (!(std::fabs(sum - 1.0) <= 1e-6)) {
            std::fprintf(stderr, "FAILED: softmax sums to %.9g, expected 1\n", sum);
            ++failures;
        }
    }

    // Rank 2, last axis: each row of a 2x3 tensor sums to 1.
    {
        double x[6] = {0.5, -1.0, 2.0, 10.0, 10.0, -30.0};
        double y[6] = {};
        logitkit::tensor_view<double, 2> xv(x, {2, 3});
        logitkit::tensor_view<double, 2> yv(y, {2, 3});
        logitkit::softmax(xv, yv, -1);
        for (int r = 0; r < 2; ++r) {
            double m = x[3 * r];
            for (int c = 1; c < 3; ++c) m = std::fmax(m, x[3 * r + c]);
            double denom = 0.0;
            for (int c = 0; c < 3; ++c) denom += std::exp(x[3 * r + c] - m);
            for (int c = 0; c < 3; ++c) {
                const double ref = std::exp(x[3 * r + c] - m) / denom;
                if (!(std::fabs(y[3 * r + c] - ref) <= 1e-12 * std::fmax(1.0, ref))) {
                    std::fprintf(stderr, "FAILED: softmax[%d][%d] = %.17g, expected %.17g\n", r, c,
                                 y[3 * r + c], ref);
                    ++failures;
                }
            }
        }
    }

    std::printf("logitkit SIMD path: %s\n", logitkit::simd_arch_name());
    if (failures != 0) {
        std::fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    std::printf("consumer OK\n");
    return 0;
}
