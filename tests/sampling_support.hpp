// Shared by the tests of the random kernels (philox, gumbel_softmax, sample_categorical): Pearson's
// chi-square goodness-of-fit test at significance 1e-3, a standard-library view of philox4x32, and
// the message of a thrown exception.
#pragma once

#include <logitkit/philox.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <random>
#include <string>
#include <vector>

namespace lk_sampling {

// Wilson-Hilferty approximation of the 1 - 1e-3 quantile of chi-square with df degrees of freedom
// (slightly above the exact value for small df, so the test is a little conservative).
inline double critical_1e3(int df) {
    const double z = 3.090232306167813;  // the 1 - 1e-3 quantile of N(0, 1)
    const double a = 2.0 / (9.0 * df);
    return df * std::pow(1.0 - a + z * std::sqrt(a), 3);
}

/// Checks `counts` against the probabilities `p`: classes of probability 0 must never occur, and
/// classes expected fewer than 5 times are pooled into one bin. Returns the number of bins; with
/// fewer than 2 there is nothing to test beyond the zeros, and the caller decides whether that is
/// acceptable.
inline int check_frequencies(const std::vector<double>& counts, const std::vector<long double>& p) {
    double total = 0;
    for (double c : counts) total += c;
    double stat = 0, pooled_obs = 0, pooled_exp = 0;
    int bins = 0;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        if (p[i] == 0) {
            INFO("class " << i << " has probability 0");
            CHECK(counts[i] == 0);
            continue;
        }
        const double e = static_cast<double>(p[i] * total);
        if (e < 5) {
            pooled_obs += counts[i];
            pooled_exp += e;
            continue;
        }
        stat += (counts[i] - e) * (counts[i] - e) / e;
        ++bins;
    }
    if (pooled_exp > 0) {
        stat += (pooled_obs - pooled_exp) * (pooled_obs - pooled_exp) / pooled_exp;
        ++bins;
    }
    if (bins < 2) return bins;
    INFO("chi-square " << stat << " with " << bins - 1 << " degrees of freedom; critical value "
                       << critical_1e3(bins - 1));
    CHECK(stat < critical_1e3(bins - 1));
    return bins;
}

/// philox4x32 behind another type: the kernels draw from it word by word through their generic
/// generator path, not philox's own block path.
struct wrapped_philox {
    using result_type = std::uint32_t;
    logitkit::philox4x32 g;
    static constexpr result_type min() { return logitkit::philox4x32::min(); }
    static constexpr result_type max() { return logitkit::philox4x32::max(); }
    result_type operator()() { return g(); }
};

/// n logits uniform in (-mag, mag), the same on every platform for a seed.
template <class T>
std::vector<T> random_logits(std::size_t n, double mag, std::uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<T> v(n);
    for (auto& x : v) x = static_cast<T>(mag * (static_cast<double>(g() >> 11) * 0x1p-53 * 2 - 1));
    return v;
}

/// The message of the exception f() throws, or "" when it throws none.
template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    return "";
}

}  // namespace lk_sampling
