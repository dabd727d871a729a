// sample_categorical: Gumbel-max draws from softmax(x / T) with top-k / top-p filters.
//
// Statistical checks use fixed seeds and Pearson's chi-square test at significance 1e-3 (critical
// values from the Wilson-Hilferty approximation, slightly conservative for few bins; bins with an
// expected count below 5 are pooled); the classes a filter removes must never be drawn. The drawn
// indices are the same on every SIMD path, so each check passes on all test binaries or on none.
#include <logitkit/detail/gumbel_noise.hpp>
#include <logitkit/philox.hpp>
#include <logitkit/sample_categorical.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sampling_support.hpp"

namespace {

namespace lk = logitkit;
using lk_sampling::error_of;
using lk_sampling::random_logits;
using lk_sampling::wrapped_philox;
using lk::index_type;
using lk::philox4x32;
using ld = long double;
using options = lk::sample_categorical_options;

/// The distribution sample_categorical draws from, by the documented rules, in long double:
/// z = x / T; top-k keeps z >= the k-th largest; top-p keeps, in (z desc, index asc) order, each
/// class whose predecessors hold less than top_p (the first always).
template <class T>
std::vector<ld> filtered_distribution(const std::vector<T>& x, const options& o) {
    const std::size_t n = x.size();
    std::vector<double> z(n);
    for (std::size_t i = 0; i < n; ++i) z[i] = static_cast<double>(x[i]) / o.temperature;
    std::vector<bool> keep(n, true);
    if (o.top_k > 0 && static_cast<std::size_t>(o.top_k) < n) {
        std::vector<double> s = z;
        std::sort(s.begin(), s.end(), std::greater<double>());
        const double kth = s[static_cast<std::size_t>(o.top_k - 1)];
        for (std::size_t i = 0; i < n; ++i) keep[i] = z[i] >= kth;
    }
    const double m = *std::max_element(z.begin(), z.end());
    std::vector<ld> p(n, 0);
    ld s = 0;
    for (std::size_t i = 0; i < n; ++i)
        if (keep[i]) s += (p[i] = std::exp(static_cast<ld>(z[i]) - m));
    for (auto& v : p) v /= s;
    if (o.top_p < 1) {
        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), std::size_t(0));
        std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return z[a] > z[b]; });
        ld c = 0;
        bool closed = false;
        for (std::size_t j = 0; j < n; ++j) {
            const std::size_t i = order[j];
            if (!keep[i]) continue;
            if (closed || (j > 0 && !(c < o.top_p))) {
                closed = true;
                p[i] = 0;
                continue;
            }
            c += p[i];
        }
        ld t = 0;
        for (auto v : p) t += v;
        for (auto& v : p) v /= t;
    }
    return p;
}

/// N rows of the same logits, sampled in one call; the counts of each class.
template <class T, class G>
std::vector<double> draw_counts(const std::vector<T>& logits, index_type N, G&& gen, const options& o) {
    const index_type C = static_cast<index_type>(logits.size());
    std::vector<T> x(static_cast<std::size_t>(N * C));
    for (index_type r = 0; r < N; ++r) std::copy(logits.begin(), logits.end(), x.begin() + r * C);
    std::vector<std::int64_t> idx(static_cast<std::size_t>(N), -1);
    lk::sample_categorical(lk::tensor_view<const T, 2>(x.data(), {N, C}),
                           lk::tensor_view<std::int64_t, 2>(idx.data(), {N, 1}), gen, o);
    std::vector<double> counts(logits.size());
    for (auto i : idx) {
        REQUIRE(i >= 0);
        REQUIRE(i < C);
        ++counts[static_cast<std::size_t>(i)];
    }
    return counts;
}

/// The Gumbel noise (in double) of elements [0, n) of a philox4x32 stream, for logits of type T.
template <class T>
std::vector<double> noise_of(std::uint64_t seed, std::uint64_t offset, std::size_t n) {
    constexpr int K = static_cast<int>(lk::philox_words_per_element<T>);
    std::vector<std::uint32_t> w(K * n);
    for (std::size_t i = 0; i < w.size(); ++i) w[i] = philox4x32::word_at(seed, offset + i);
    std::vector<double> g(n);
    lk::detail::gumbel_of_words<lk::detail::scalar_arch, K>(w.data(), n, g.data());
    return g;
}

std::uint64_t fnv1a(const std::vector<std::int64_t>& v) {
    std::uint64_t h = 14695981039346656037ull;
    for (std::int64_t x : v)
        for (int b = 0; b < 8; ++b) h = (h ^ ((static_cast<std::uint64_t>(x) >> (8 * b)) & 0xFF)) * 1099511628211ull;
    return h;
}

const std::vector<double> category_logits = {1.5, 0.2, -0.7, 2.1, 0.0, -2.5, 1.0, 0.6, 1.9, -1.2};

}  // namespace

TEMPLATE_TEST_CASE("sample_categorical: frequencies match the filtered softmax (chi-square, p = 1e-3)",
                   "[sample][statistics]", float, double) {
    using T = TestType;
    const std::vector<T> logits(category_logits.begin(), category_logits.end());
    const index_type N = 20000;
    const std::vector<std::pair<const char*, options>> cases = {
        {"T = 1", {1.0, 0, 1.0}},
        {"T = 0.5", {0.5, 0, 1.0}},
        {"T = 2.5", {2.5, 0, 1.0}},
        {"top_k = 3", {1.0, 3, 1.0}},
        {"top_k = 6, T = 0.7", {0.7, 6, 1.0}},
        {"top_p = 0.7", {1.0, 0, 0.7}},
        {"top_p = 0.95, T = 2", {2.0, 0, 0.95}},
        {"top_k = 5, top_p = 0.6", {1.0, 5, 0.6}},
    };
    std::uint64_t seed = 1000;
    for (const auto& c : cases) {
        SECTION(c.first) {
            const std::vector<ld> p = filtered_distribution(logits, c.second);
            lk_sampling::check_frequencies(draw_counts(logits, N, philox4x32(++seed), c.second), p);
        }
    }
    SECTION("std::mt19937, top_p = 0.8") {
        std::mt19937 gen(5);
        const options o{1.0, 0, 0.8};
        lk_sampling::check_frequencies(draw_counts(logits, N, gen, o), filtered_distribution(logits, o));
    }
    SECTION("std::mt19937_64, T = 0.8, top_k = 4") {
        std::mt19937_64 gen(6);
        const options o{0.8, 4, 1.0};
        lk_sampling::check_frequencies(draw_counts(logits, N, gen, o), filtered_distribution(logits, o));
    }
}

TEST_CASE("sample_categorical: top-k keeps ties, top-p follows HF transformers' boundary", "[sample][statistics]") {
    const index_type N = 12000;
    SECTION("every class tied with the k-th largest is kept") {
        const std::vector<float> x = {1, 2, 2, 0};
        const std::vector<double> counts = draw_counts(x, N, philox4x32(1), options{1.0, 1, 1.0});
        lk_sampling::check_frequencies(counts, {0, 0.5L, 0.5L, 0});
    }
    SECTION("top_p: the shortest prefix reaching top_p") {
        const std::vector<double> x = {std::log(0.15), std::log(0.5), std::log(0.05), std::log(0.3)};
        // Sorted: 0.5 (1), 0.3 (3), 0.15 (0), 0.05 (2).
        lk_sampling::check_frequencies(draw_counts(x, N, philox4x32(2), options{1.0, 0, 0.75}), {0, 0.625L, 0, 0.375L});
        lk_sampling::check_frequencies(draw_counts(x, N, philox4x32(3), options{1.0, 0, 0.85}),
                          {0.15L / 0.95L, 0.5L / 0.95L, 0, 0.3L / 0.95L});
        lk_sampling::check_frequencies(draw_counts(x, N, philox4x32(4), options{1.0, 0, 0.3}), {0, 1, 0, 0});
    }
    SECTION("top_p among equal probabilities keeps the lowest indices") {
        const std::vector<float> x(10, 0.0f);
        const std::vector<double> counts = draw_counts(x, N, philox4x32(5), options{1.0, 0, 0.35});
        lk_sampling::check_frequencies(counts, {0.25L, 0.25L, 0.25L, 0.25L, 0, 0, 0, 0, 0, 0});
    }
    SECTION("top_k = 1 and top_p = 0 are greedy (first maximum)") {
        const std::vector<float> x = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f};
        for (const options& o : {options{1.0, 1, 1.0}, options{1.0, 0, 0.0}, options{3.0, 0, 0.0}}) {
            const std::vector<double> counts = draw_counts(x, 500, philox4x32(6), o);
            if (o.top_k == 1) {
                CHECK(counts[0] + counts[2] + counts[4] == 0);  // top-k keeps both tied maxima
            } else {
                CHECK(counts[1] == 500);  // top_p = 0 keeps the first of the most probable
            }
        }
    }
}

TEMPLATE_TEST_CASE("sample_categorical is the argmax of z + g over the kept classes", "[sample]", float, double) {
    using T = TestType;
    const index_type N = 200, C = 700;  // lines longer than a noise chunk (256)
    const std::vector<T> x = random_logits<T>(static_cast<std::size_t>(N * C), 6, 3);
    const std::uint64_t seed = 424242, offset = 7;
    const std::vector<double> g = noise_of<T>(seed, offset, x.size());
    for (const options& o : {options{1.0, 0, 1.0}, options{0.6, 0, 1.0}, options{1.0, 20, 1.0}, options{1.3, 0, 0.9},
                             options{0.9, 100, 0.5}}) {
        CAPTURE(o.temperature, o.top_k, o.top_p);
        std::vector<std::int64_t> idx(static_cast<std::size_t>(N));
        philox4x32 gen(seed, offset);
        lk::sample_categorical(lk::tensor_view<const T, 2>(x.data(), {N, C}),
                               lk::tensor_view<std::int64_t, 2>(idx.data(), {N, 1}), gen, o);
        CHECK(gen.offset() == offset + x.size() * lk::philox_words_per_element<T>);
        for (index_type r = 0; r < N; ++r) {
            std::vector<T> row(x.begin() + r * C, x.begin() + (r + 1) * C);
            const std::vector<ld> p = filtered_distribution(row, o);
            double best = -std::numeric_limits<double>::infinity();
            index_type at = -1;
            for (index_type c = 0; c < C; ++c) {
                if (p[static_cast<std::size_t>(c)] == 0) continue;
                const double z = static_cast<double>(row[static_cast<std::size_t>(c)]);
                const double v =
                    (o.temperature == 1.0 ? z : z / o.temperature) + g[static_cast<std::size_t>(r * C + c)];
                if (v > best) {
                    best = v;
                    at = c;
                }
            }
            REQUIRE(idx[static_cast<std::size_t>(r)] == at);
        }
        // Through the generic generator path (noise drawn and dropped for filtered chunks): the same.
        std::vector<std::int64_t> idx2(static_cast<std::size_t>(N));
        wrapped_philox w{philox4x32(seed, offset)};
        lk::sample_categorical(lk::tensor_view<const T, 2>(x.data(), {N, C}),
                               lk::tensor_view<std::int64_t, 2>(idx2.data(), {N, 1}), w, o);
        CHECK(idx == idx2);
        CHECK(w.g == gen);
    }
}

TEMPLATE_TEST_CASE("sample_categorical along a non-last axis and on rank 3", "[sample]", float, double) {
    using T = TestType;
    const index_type A = 3, B = 40, C = 5;
    const std::vector<T> x = random_logits<T>(static_cast<std::size_t>(A * B * C), 3, 9);
    const std::vector<double> g = noise_of<T>(11, 0, x.size());
    for (int axis : {0, 1, 2}) {
        for (const options& o : {options{}, options{0.5, 2, 0.9}}) {
            CAPTURE(axis, o.top_k);
            std::array<index_type, 3> oshape = {A, B, C};
            oshape[static_cast<std::size_t>(axis)] = 1;
            std::vector<std::int64_t> idx(static_cast<std::size_t>(oshape[0] * oshape[1] * oshape[2]));
            lk::sample_categorical(lk::tensor_view<const T, 3>(x.data(), {A, B, C}),
                                   lk::tensor_view<std::int64_t, 3>(idx.data(), oshape), philox4x32(11), o, axis);
            const std::array<index_type, 3> rm = {B * C, C, 1};
            const index_type n = axis == 0 ? A : axis == 1 ? B : C;
            for (index_type i = 0; i < oshape[0]; ++i)
                for (index_type j = 0; j < oshape[1]; ++j)
                    for (index_type k = 0; k < oshape[2]; ++k) {
                        const index_type base = i * rm[0] + j * rm[1] + k * rm[2];
                        const index_type step = rm[static_cast<std::size_t>(axis)];
                        std::vector<T> line(static_cast<std::size_t>(n));
                        for (index_type r = 0; r < n; ++r)
                            line[static_cast<std::size_t>(r)] = x[static_cast<std::size_t>(base + r * step)];
                        const std::vector<ld> p = filtered_distribution(line, o);
                        double best = -std::numeric_limits<double>::infinity();
                        index_type at = -1;
                        for (index_type r = 0; r < n; ++r) {
                            if (p[static_cast<std::size_t>(r)] == 0) continue;
                            const double v = static_cast<double>(line[static_cast<std::size_t>(r)]) / o.temperature +
                                             g[static_cast<std::size_t>(base + r * step)];
                            if (v > best) {
                                best = v;
                                at = r;
                            }
                        }
                        REQUIRE(idx[static_cast<std::size_t>((i * oshape[1] + j) * oshape[2] + k)] == at);
                    }
        }
    }
    // Axis 0 of a transposed [C, N] layout: the class frequencies still match.
    const std::vector<float> logits(category_logits.begin(), category_logits.end());
    const index_type N = 20000, K = static_cast<index_type>(logits.size());
    std::vector<float> xt(static_cast<std::size_t>(N * K));
    for (index_type c = 0; c < K; ++c)
        for (index_type r = 0; r < N; ++r)
            xt[static_cast<std::size_t>(c * N + r)] = logits[static_cast<std::size_t>(c)];
    std::vector<std::int64_t> idx(static_cast<std::size_t>(N));
    lk::sample_categorical(lk::tensor_view<const float, 2>(xt.data(), {K, N}),
                           lk::tensor_view<std::int64_t, 2>(idx.data(), {1, N}), philox4x32(12), {}, 0);
    std::vector<double> counts(logits.size());
    for (auto i : idx) ++counts[static_cast<std::size_t>(i)];
    lk_sampling::check_frequencies(counts, filtered_distribution(logits, options{}));
}

TEMPLATE_TEST_CASE("sample_categorical: the same indices for any split, path, and a fixed checksum",
                   "[sample][determinism]", float, double) {
    using T = TestType;
    const index_type N = 48, C = 3000;
    const std::vector<T> x = random_logits<T>(static_cast<std::size_t>(N * C), 5, 1234);
    const std::uint64_t seed = 99, offset = 1;
    std::vector<std::int64_t> all;
    for (const options& o : {options{}, options{0.8, 40, 1.0}, options{1.2, 0, 0.9}}) {
        std::vector<std::int64_t> one(static_cast<std::size_t>(N)), scalar(static_cast<std::size_t>(N)),
            threaded(static_cast<std::size_t>(N));
        lk::sample_categorical(lk::tensor_view<const T, 2>(x.data(), {N, C}),
                               lk::tensor_view<std::int64_t, 2>(one.data(), {N, 1}), philox4x32(seed, offset), o);
        lk::sample_categorical<lk::detail::scalar_arch>(lk::tensor_view<const T, 2>(x.data(), {N, C}),
                                                        lk::tensor_view<std::int64_t, 2>(scalar.data(), {N, 1}),
                                                        philox4x32(seed, offset), o);
        CHECK(one == scalar);
        std::vector<std::thread> pool;
        const int threads = 3;
        for (int t = 0; t < threads; ++t) {
            const index_type r0 = N * t / threads, r1 = N * (t + 1) / threads;
            pool.emplace_back([&, r0, r1] {
                lk::sample_categorical(
                    lk::tensor_view<const T, 2>(x.data() + r0 * C, {r1 - r0, C}),
                    lk::tensor_view<std::int64_t, 2>(threaded.data() + r0, {r1 - r0, 1}),
                    philox4x32(seed, offset + static_cast<std::uint64_t>(r0 * C) * lk::philox_words_per_element<T>), o);
            });
        }
        for (auto& th : pool) th.join();
        CHECK(one == threaded);
        all.insert(all.end(), one.begin(), one.end());
    }
    // Every test binary (scalar, SSE4.2, AVX2, AVX-512, ...) must draw these indices.
    const std::uint64_t expected = std::is_same<T, double>::value ? 0xe639558b93db488eull : 0x7ed43a160e0c9a46ull;
    CHECK(fnv1a(all) == expected);
}

TEMPLATE_TEST_CASE("sample_categorical: -inf classes, one finite class, single line", "[sample]", float, double) {
    using T = TestType;
    const T inf = std::numeric_limits<T>::infinity();
    const std::vector<T> one_finite = {-inf, -inf, T(-3), -inf};
    const std::vector<double> c1 = draw_counts(one_finite, 200, philox4x32(1), options{});
    CHECK(c1[2] == 200);
    const std::vector<double> c2 = draw_counts(one_finite, 200, philox4x32(2), options{0.1, 2, 0.5});
    CHECK(c2[2] == 200);
    const std::vector<T> some = {-inf, T(0), T(1), -inf, T(0.5)};
    const std::vector<double> c3 = draw_counts(some, 5000, philox4x32(3), options{});
    CHECK(c3[0] + c3[3] == 0);
    lk_sampling::check_frequencies(c3, filtered_distribution(some, options{}));
    // The single-line overload.
    std::mt19937 gen(4), copy(4);
    const std::int64_t i = lk::sample_categorical(lk::tensor_view<const T, 1>(some.data(), {5}), gen, {0.5});
    std::int64_t j = -1;
    lk::sample_categorical(lk::tensor_view<const T, 1>(some.data(), {5}), lk::tensor_view<std::int64_t, 1>(&j, {1}),
                           copy, {0.5});
    CHECK(i == j);
    CHECK(gen == copy);
    // A vocabulary of 32000 with top-k and top-p: only the kept classes are drawn.
    const std::vector<T> big = random_logits<T>(32000, 8, 77);
    const options o{0.9, 50, 0.8};
    const std::vector<ld> p = filtered_distribution(big, o);
    const std::vector<double> counts = draw_counts(big, 64, philox4x32(5), o);
    for (std::size_t k = 0; k < big.size(); ++k)
        if (p[k] == 0) REQUIRE(counts[k] == 0);
}

TEST_CASE("sample_categorical: argument errors", "[sample][errors]") {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::vector<float> x(12, 0.5f);
    std::vector<std::int64_t> out(3, -9);
    const lk::tensor_view<const float, 2> xv(x.data(), {3, 4});
    const lk::tensor_view<std::int64_t, 2> ov(out.data(), {3, 1});
    philox4x32 gen(1, 20);
    std::mt19937 mt(5);
    const std::mt19937 mt0 = mt;
    auto untouched = [&] {
        CHECK(gen.offset() == 20);
        CHECK(mt == mt0);
        for (auto v : out) CHECK(v == -9);
    };
    const std::string prefix = "logitkit::sample_categorical: ";
    for (double t : {0.0, -2.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()})
        CHECK(error_of([&] { lk::sample_categorical(xv, ov, gen, {t}); }).rfind(prefix + "options.temperature", 0) ==
              0);
    CHECK(error_of([&] {
              lk::sample_categorical(xv, ov, gen, {1.0, -1});
          }).rfind(prefix + "options.top_k = -1", 0) == 0);
    for (double p : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()})
        CHECK(error_of([&] {
                  lk::sample_categorical(xv, ov, gen, {1.0, 0, p});
              }).rfind(prefix + "options.top_p", 0) == 0);
    CHECK(error_of([&] {
              lk::sample_categorical(xv, lk::tensor_view<std::int64_t, 2>(out.data(), {1, 3}), gen);
          }).rfind(prefix + "out_indices.shape", 0) == 0);
    CHECK_THROWS_AS(lk::sample_categorical(xv, ov, gen, {}, 2), std::out_of_range);
    CHECK_THROWS_AS(lk::sample_categorical(lk::tensor_view<const float, 2>(nullptr, {3, 4}), ov, gen),
                    std::invalid_argument);
    CHECK_THROWS_AS(lk::sample_categorical(xv, lk::tensor_view<std::int64_t, 2>(nullptr, {3, 1}), gen),
                    std::invalid_argument);
    CHECK_THROWS_AS(lk::sample_categorical(xv, lk::tensor_view<std::int64_t, 2>(out.data(), {3, 1}, {0, 1}), gen),
                    std::invalid_argument);
    // out_indices in the logits' memory.
    std::vector<double> shared(8, 0.0);
    CHECK(error_of([&] {
              lk::sample_categorical(
                  lk::tensor_view<const double, 2>(shared.data(), {2, 4}),
                  lk::tensor_view<std::int64_t, 2>(reinterpret_cast<std::int64_t*>(shared.data() + 2), {2, 1}), gen);
          }).find("out_indices overlaps x") != std::string::npos);
    // No class to sample from.
    CHECK(error_of([&] {
              lk::sample_categorical(lk::tensor_view<const float, 2>(x.data(), {3, 0}), ov, gen);
          }).find("no class along axis 1") != std::string::npos);
    // A line without a finite maximum, named by its index; nothing drawn or written before.
    for (float bad : {nan, inf}) {
        std::vector<float> y = x;
        y[6] = bad;
        const std::string e = error_of([&] {
            lk::sample_categorical(lk::tensor_view<const float, 2>(y.data(), {3, 4}), ov, mt);
        });
        CHECK(e.rfind(prefix + "x[1, :] has no finite maximum", 0) == 0);
    }
    std::vector<float> y = x;
    for (int c = 0; c < 4; ++c) y[static_cast<std::size_t>(8 + c)] = -inf;
    CHECK(error_of([&] {
              lk::sample_categorical(lk::tensor_view<const float, 2>(y.data(), {3, 4}), ov, gen);
          }).rfind(prefix + "x[2, :] has no finite maximum", 0) == 0);
    std::vector<float> col = x;
    col[1] = col[5] = col[9] = -inf;  // column 1 of the 3 x 4 logits
    std::vector<std::int64_t> out4(4, -9);
    CHECK(error_of([&] {
              lk::sample_categorical(lk::tensor_view<const float, 2>(col.data(), {3, 4}),
                                     lk::tensor_view<std::int64_t, 2>(out4.data(), {1, 4}), gen, {}, 0);
          }).rfind(prefix + "x[:, 1] has no finite maximum", 0) == 0);
    for (auto v : out4) CHECK(v == -9);
    // Finite logits whose division by a tiny temperature overflows.
    std::vector<double> big = {1e300, 0.0};
    CHECK_THROWS_AS(lk::sample_categorical(lk::tensor_view<const double, 1>(big.data(), {2}), gen, {1e-10}),
                    std::invalid_argument);
    untouched();
    // Empty: nothing to do, nothing drawn.
    lk::sample_categorical(lk::tensor_view<const float, 2>(nullptr, {0, 4}),
                           lk::tensor_view<std::int64_t, 2>(nullptr, {0, 1}), gen);
    CHECK(gen.offset() == 20);
}
