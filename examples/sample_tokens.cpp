// logitkit example: sampling tokens from a language model's logits with sample_categorical.
//
// A made-up vocabulary of twelve tokens with fixed logits is sampled 200000 times under several
// settings of temperature, top-k and top-p, and the empirical frequency of each token is printed
// next to the exact probability of drawing it (computed here independently, in double, from the
// documented rules: softmax(logits / T); top-k keeps the classes >= the k-th largest; top-p keeps
// the most probable classes until their probability reaches top_p).
//
// Build it with the project (target `sample_tokens`) or directly:
//   g++ -std=c++17 -O2 -Iinclude examples/sample_tokens.cpp -o sample_tokens && ./sample_tokens
//
// The draws use logitkit::philox4x32 with a fixed seed: the output is the same on every run,
// every machine and every SIMD path.

#include <logitkit/philox.hpp>
#include <logitkit/sample_categorical.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <vector>

namespace lk = logitkit;

namespace {

const char* const vocabulary[] = {"the", "cat", "sat",     "on", "mat",   "dog",
                                  "ran", "a",   "quickly", ".",  "zebra", "<eos>"};
const float logits[] = {3.2f, 2.9f, 2.4f, 2.0f, 1.7f, 1.5f, 1.1f, 0.8f, 0.2f, -0.5f, -2.0f, -3.5f};
constexpr std::size_t vocab = sizeof(logits) / sizeof(logits[0]);

/// The probability of drawing each token under `o`, following the rules sample_categorical documents.
std::vector<double> exact(const lk::sample_categorical_options& o) {
    std::vector<double> z(vocab);
    for (std::size_t i = 0; i < vocab; ++i) z[i] = logits[i] / o.temperature;
    std::vector<std::size_t> order(vocab);
    std::iota(order.begin(), order.end(), std::size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return z[a] > z[b]; });
    std::vector<bool> keep(vocab, true);
    if (o.top_k > 0 && static_cast<std::size_t>(o.top_k) < vocab)
        for (std::size_t i = 0; i < vocab; ++i) keep[i] = z[i] >= z[order[static_cast<std::size_t>(o.top_k) - 1]];
    std::vector<double> p(vocab, 0.0);
    double s = 0;
    for (std::size_t i = 0; i < vocab; ++i)
        if (keep[i]) s += (p[i] = std::exp(z[i] - z[order[0]]));
    for (double& v : p) v /= s;
    if (o.top_p < 1) {
        double before = 0;  // probability of the classes ahead of this one
        for (std::size_t j = 0; j < vocab; ++j) {
            const std::size_t i = order[j];
            if (j > 0 && before >= o.top_p) p[i] = 0;
            before += p[i];
        }
        s = std::accumulate(p.begin(), p.end(), 0.0);
        for (double& v : p) v /= s;
    }
    return p;
}

void show(const char* title, const lk::sample_categorical_options& o, lk::philox4x32& gen) {
    // 200000 rows holding the same logits: one call draws one token per row.
    const lk::index_type draws = 200000;
    std::vector<float> rows(static_cast<std::size_t>(draws) * vocab);
    for (lk::index_type r = 0; r < draws; ++r)
        std::copy(logits, logits + vocab, rows.begin() + r * lk::index_type(vocab));
    std::vector<std::int64_t> tokens(static_cast<std::size_t>(draws));
    lk::sample_categorical(lk::tensor_view<const float, 2>(rows.data(), {draws, lk::index_type(vocab)}),
                           lk::tensor_view<std::int64_t, 2>(tokens.data(), {draws, 1}), gen, o);

    std::vector<double> freq(vocab, 0.0);
    for (std::int64_t t : tokens) freq[static_cast<std::size_t>(t)] += 1.0 / draws;
    const std::vector<double> p = exact(o);

    std::printf("%s  (temperature %.2f, top_k %lld, top_p %.2f)\n", title, o.temperature,
                static_cast<long long>(o.top_k), o.top_p);
    std::printf("  %-8s %8s %10s\n", "token", "exact", "empirical");
    double worst = 0;  // the largest difference, in standard errors sqrt(p (1 - p) / draws)
    for (std::size_t i = 0; i < vocab; ++i) {
        std::printf("  %-8s %8.4f %10.4f%s\n", vocabulary[i], p[i], freq[i], p[i] == 0 ? "   (filtered out)" : "");
        if (p[i] > 0 && p[i] < 1)
            worst = std::max(worst, std::fabs(freq[i] - p[i]) / std::sqrt(p[i] * (1 - p[i]) / draws));
    }
    std::printf("  largest difference: %.2f standard errors\n\n", worst);
}

}  // namespace

int main() {
    lk::philox4x32 gen(/*seed=*/2024);
    show("plain softmax", {1.0, 0, 1.0}, gen);
    show("colder", {0.5, 0, 1.0}, gen);
    show("hotter", {2.0, 0, 1.0}, gen);
    show("top-k", {1.0, 3, 1.0}, gen);
    show("nucleus (top-p)", {1.0, 0, 0.8}, gen);
    show("temperature, top-k and top-p together", {0.7, 6, 0.9}, gen);

    // Decoding one token at a time: the single-line overload.
    std::printf("ten draws at temperature 0.3, one line at a time: ");
    for (int i = 0; i < 10; ++i) {
        const std::int64_t t =
            lk::sample_categorical(lk::tensor_view<const float, 1>(logits, {lk::index_type(vocab)}), gen, {0.3});
        std::printf("%s ", vocabulary[t]);
    }
    std::printf("\n");
    return 0;
}
