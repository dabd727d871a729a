// Trains a softmax-regression classifier on the Iris data with logitkit's fused cross-entropy:
// one call gives the mean loss and, in place of the logits, its gradient.
//
//   train_classifier [path/to/iris.csv]
//
// The data (150 flowers, 4 measurements in cm, 3 species) is shuffled with a fixed seed and split
// into 120 training and 30 held-out rows; the features are standardised with the training rows'
// mean and standard deviation; full-batch gradient descent fits logits = x W + b. The program
// prints the training loss every few epochs and the held-out accuracy, and exits with status 1
// when that accuracy is below 90% (2 when the data cannot be read).
// SPDX-License-Identifier: MIT
#include <logitkit/logitkit.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#ifndef LOGITKIT_IRIS_CSV
#define LOGITKIT_IRIS_CSV "examples/data/iris.csv"
#endif

namespace {

constexpr int features = 4;

struct dataset {
    std::vector<std::array<float, features>> x;
    std::vector<std::int64_t> label;
    std::vector<std::string> species;  // label -> name, in order of first appearance
};

/// Reads "f1,f2,f3,f4,species" lines after a header line.
bool read_csv(const std::string& path, dataset& d) {
    std::ifstream in(path);
    if (!in) return false;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        if (line.empty() || line == "\r") continue;
        std::stringstream s(line);
        std::array<float, features> row{};
        std::string field;
        for (int k = 0; k < features; ++k) {
            if (!std::getline(s, field, ',')) return false;
            row[static_cast<std::size_t>(k)] = std::stof(field);
        }
        if (!std::getline(s, field)) return false;
        if (!field.empty() && field.back() == '\r') field.pop_back();
        std::int64_t label = -1;
        for (std::size_t c = 0; c < d.species.size(); ++c)
            if (d.species[c] == field) label = static_cast<std::int64_t>(c);
        if (label < 0) {
            label = static_cast<std::int64_t>(d.species.size());
            d.species.push_back(field);
        }
        d.x.push_back(row);
        d.label.push_back(label);
    }
    return !d.x.empty();
}

/// splitmix64: the same sequence on every platform (std::shuffle's is implementation-defined).
struct splitmix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
};

/// logits[i, c] = b[c] + sum_k x[i, k] * w[k, c].
void forward(const std::vector<std::array<float, features>>& x, const std::vector<float>& w,
             const std::vector<float>& b, std::vector<float>& logits, std::size_t classes) {
    logits.assign(x.size() * classes, 0.0f);
    for (std::size_t i = 0; i < x.size(); ++i)
        for (std::size_t c = 0; c < classes; ++c) {
            float z = b[c];
            for (std::size_t k = 0; k < features; ++k) z += x[i][k] * w[k * classes + c];
            logits[i * classes + c] = z;
        }
}

double accuracy(const std::vector<float>& logits, const std::vector<std::int64_t>& label, std::size_t classes) {
    std::size_t right = 0;
    for (std::size_t i = 0; i < label.size(); ++i) {
        std::size_t best = 0;
        for (std::size_t c = 1; c < classes; ++c)
            if (logits[i * classes + c] > logits[i * classes + best]) best = c;
        if (static_cast<std::int64_t>(best) == label[i]) ++right;
    }
    return static_cast<double>(right) / static_cast<double>(label.size());
}

}  // namespace

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : LOGITKIT_IRIS_CSV;
    dataset all;
    bool ok = false;
    try {
        ok = read_csv(path, all);
    } catch (const std::exception&) {  // a field that is not a number
        ok = false;
    }
    if (!ok) {
        std::fprintf(stderr, "train_classifier: cannot read the Iris data from %s\n", path.c_str());
        return 2;
    }
    const std::size_t n = all.x.size(), classes = all.species.size();
    std::printf("logitkit %s: %zu rows, %zu species, from %s\n", logitkit::simd_arch_name(), n, classes, path.c_str());

    // Fixed-seed Fisher-Yates shuffle, then 80% / 20%.
    std::vector<std::size_t> order(n);
    for (std::size_t i = 0; i < n; ++i) order[i] = i;
    splitmix64 rng{20240607};
    for (std::size_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng.next() % (i + 1)]);
    const std::size_t n_train = n * 4 / 5;
    dataset train, held;
    for (std::size_t j = 0; j < n; ++j) {
        dataset& d = j < n_train ? train : held;
        d.x.push_back(all.x[order[j]]);
        d.label.push_back(all.label[order[j]]);
    }
    std::printf("split: %zu training rows, %zu held-out rows\n", train.x.size(), held.x.size());

    // Standardise with the training rows' statistics.
    for (std::size_t k = 0; k < features; ++k) {
        double mean = 0, var = 0;
        for (const auto& r : train.x) mean += r[k];
        mean /= static_cast<double>(train.x.size());
        for (const auto& r : train.x) var += (r[k] - mean) * (r[k] - mean);
        const double sd = std::sqrt(var / static_cast<double>(train.x.size()));
        for (auto* d : {&train, &held})
            for (auto& r : d->x) r[k] = static_cast<float>((r[k] - mean) / sd);
    }

    // Full-batch gradient descent on the mean cross-entropy.
    std::vector<float> w(features * classes, 0.0f), b(classes, 0.0f), logits;
    const float learning_rate = 0.5f;
    const int epochs = 300;
    const auto rows = static_cast<logitkit::index_type>(train.x.size());
    const auto cols = static_cast<logitkit::index_type>(classes);
    const logitkit::tensor_view<const std::int64_t, 1> targets(train.label.data(), {rows});
    for (int epoch = 1; epoch <= epochs; ++epoch) {
        forward(train.x, w, b, logits, classes);
        // The gradient d(loss)/d(logits) replaces the logits.
        const logitkit::tensor_view<float, 2> z(logits.data(), {rows, cols});
        logitkit::loss_outputs<float, 2> out;
        out.grad = z;
        const double loss = logitkit::cross_entropy(z, targets, {}, out);
        if (epoch == 1 || epoch % 25 == 0) std::printf("epoch %3d  loss %.4f\n", epoch, loss);
        // d(loss)/dW = x^T * dlogits, d(loss)/db = column sums of dlogits.
        for (std::size_t c = 0; c < classes; ++c) {
            float gb = 0;
            std::array<float, features> gw{};
            for (std::size_t i = 0; i < train.x.size(); ++i) {
                const float g = logits[i * classes + c];
                gb += g;
                for (std::size_t k = 0; k < features; ++k) gw[k] += train.x[i][k] * g;
            }
            b[c] -= learning_rate * gb;
            for (std::size_t k = 0; k < features; ++k) w[k * classes + c] -= learning_rate * gw[k];
        }
    }

    forward(train.x, w, b, logits, classes);
    std::printf("training accuracy: %.1f%%\n", 100 * accuracy(logits, train.label, classes));

    // Held-out evaluation.
    forward(held.x, w, b, logits, classes);
    const double acc = accuracy(logits, held.label, classes);
    const logitkit::tensor_view<const float, 2> zh(logits.data(),
                                                   {static_cast<logitkit::index_type>(held.x.size()), cols});
    const logitkit::tensor_view<const std::int64_t, 1> th(held.label.data(),
                                                          {static_cast<logitkit::index_type>(held.label.size())});
    std::printf("held-out loss: %.4f\n", logitkit::cross_entropy(zh, th));
    std::printf("held-out accuracy: %.1f%% (%zu rows)\n", 100 * acc, held.x.size());
    if (acc < 0.9) {
        std::printf("FAILED: held-out accuracy below 90%%\n");
        return 1;
    }
    return 0;
}
