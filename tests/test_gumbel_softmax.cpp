// gumbel_noise, gumbel_softmax and gumbel_softmax_backward.
//
// Statistical checks use fixed seeds and Pearson's chi-square test at significance 1e-3 (critical
// values from the Wilson-Hilferty approximation, slightly conservative for few bins; bins with an
// expected count below 5 are pooled). With a fixed seed each outcome is fixed; a correct
// implementation fails one such check with probability 1e-3. The noise (hence every hard sample)
// is bit-identical on every SIMD path, so a check passes on all test binaries or on none.
#include <logitkit/gumbel_softmax.hpp>
#include <logitkit/philox.hpp>
#include <logitkit/softmax.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
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

template <std::size_t R>
using ext = lk::extents_type<R>;

// ---------------------------------------------------------------------------------------------
// Helpers.
// ---------------------------------------------------------------------------------------------

template <class T>
std::vector<ld> softmax_ld(const std::vector<T>& x) {
    ld m = -std::numeric_limits<ld>::infinity();
    for (T v : x) m = std::max<ld>(m, v);
    std::vector<ld> p(x.size());
    ld s = 0;
    for (std::size_t i = 0; i < x.size(); ++i) s += (p[i] = std::exp(static_cast<ld>(x[i]) - m));
    for (auto& v : p) v /= s;
    return p;
}

template <class T>
bool same_bits(const T* a, const T* b, std::size_t n) {
    return std::memcmp(a, b, n * sizeof(T)) == 0;
}

template <class T>
std::uint64_t fnv1a(const std::vector<T>& v) {
    std::uint64_t h = 14695981039346656037ull;
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    for (std::size_t i = 0; i < v.size() * sizeof(T); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

template <std::size_t R>
ext<R> unravel(index_type i, const ext<R>& shape) {
    ext<R> idx{};
    for (std::size_t k = R; k-- > 0;) {
        idx[k] = i % shape[k];
        i /= shape[k];
    }
    return idx;
}

template <std::size_t R>
index_type count(const ext<R>& shape) {
    index_type n = 1;
    for (auto e : shape) n *= e;
    return n;
}

/// Memory with a chosen layout: dimensions from innermost to outermost in `order`, a gap of one
/// element after each innermost run, and negative strides where `negative` says.
template <class T, std::size_t R>
struct strided_tensor {
    std::vector<T> mem;
    lk::tensor_view<T, R> view;

    strided_tensor(const ext<R>& shape, const std::array<std::size_t, R>& order, const std::array<bool, R>& negative) {
        ext<R> strides{};
        index_type s = 1;
        for (std::size_t j = 0; j < R; ++j) {
            strides[order[j]] = s;
            s *= shape[order[j]] + (j == 0 ? 1 : 0);
        }
        mem.assign(static_cast<std::size_t>(s), std::numeric_limits<T>::quiet_NaN());
        T* data = mem.data();
        for (std::size_t k = 0; k < R; ++k)
            if (negative[k]) {
                data += (shape[k] - 1) * strides[k];
                strides[k] = -strides[k];
            }
        view = lk::tensor_view<T, R>(data, shape, strides);
    }
    /// The elements in row-major order of the index space.
    std::vector<T> dense() const {
        std::vector<T> d(static_cast<std::size_t>(view.size()));
        for (index_type i = 0; i < view.size(); ++i) d[static_cast<std::size_t>(i)] = view[unravel(i, view.shape())];
        return d;
    }
    void fill(const std::vector<T>& d) {
        for (index_type i = 0; i < view.size(); ++i) view[unravel(i, view.shape())] = d[static_cast<std::size_t>(i)];
    }
};

/// The uniform the documentation promises for the words of one element.
template <class T>
ld documented_uniform(std::uint64_t seed, std::uint64_t position) {
    const std::uint32_t a = philox4x32::word_at(seed, position);
    if (std::is_same<T, float>::value) return (static_cast<ld>(a) + 0.5L) * std::ldexp(1.0L, -32);
    const std::uint32_t b = philox4x32::word_at(seed, position + 1);
    const std::uint64_t k = ((static_cast<std::uint64_t>(a) << 32) | b) >> 12;
    return (static_cast<ld>(k) + 0.5L) * std::ldexp(1.0L, -52);
}

constexpr std::uint64_t K_of(bool is_double) { return is_double ? 2 : 1; }

/// A generator that always returns the same value (to reach the ends of the uniform's range).
template <class U>
struct constant_generator {
    using result_type = U;
    U value;
    static constexpr U min() { return 0; }
    static constexpr U max() { return std::numeric_limits<U>::max(); }
    U operator()() { return value; }
};

const std::vector<double> class_logits = {1.5, 0.2, -0.7, 2.1, 0.0, -2.5, 1.0, 0.6};

}  // namespace

// ---------------------------------------------------------------------------------------------
// The noise.
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("gumbel_noise: -log(-log(u)) of the documented uniform of each element", "[gumbel]", float, double) {
    using T = TestType;
    constexpr bool is_double = std::is_same<T, double>::value;
    const std::uint64_t seed = 987654321, offset = 13;  // an offset that is not a block boundary
    std::vector<T> g(4099);
    philox4x32 gen(seed, offset);
    lk::gumbel_noise(lk::tensor_view<T, 1>(g.data(), {index_type(g.size())}), gen);
    CHECK(gen.offset() == offset + g.size() * K_of(is_double));
    ld worst = 0;
    for (std::size_t i = 0; i < g.size(); ++i) {
        const ld u = documented_uniform<T>(seed, offset + i * K_of(is_double));
        REQUIRE(u > 0);
        REQUIRE(u < 1);
        const ld ref = -std::log(-std::log(u));
        // float: one rounding of a double value; double: a few ulps of max(1, |g|).
        const ld allowed =
            is_double ? 2e-15L * std::max<ld>(1, std::fabs(ref)) : std::ldexp(std::fabs(ref), -24) + 1e-14L;
        worst = std::max(worst, std::fabs(g[i] - ref) / allowed);
    }
    CHECK(worst <= 1);
}

TEMPLATE_TEST_CASE("gumbel_noise: uniforms at the ends of their range give finite noise", "[gumbel]", float, double) {
    using T = TestType;
    constexpr bool is_double = std::is_same<T, double>::value;
    std::vector<T> g(64);
    const lk::tensor_view<T, 1> gv(g.data(), {64});
    // All-zero and all-one bits: the smallest and largest uniform.
    const ld u_lo = is_double ? std::ldexp(1.0L, -53) : std::ldexp(1.0L, -33);
    const ld g_lo = -std::log(-std::log(u_lo));
    const ld g_hi = -std::log(-std::log1p(-u_lo));
    auto check_all = [&](ld expected) {
        for (T v : g) {
            REQUIRE(std::isfinite(v));
            CHECK(std::fabs(v - expected) <= 1e-6L * std::fabs(expected));
        }
    };
    lk::gumbel_noise(gv, constant_generator<std::uint32_t>{0});
    check_all(g_lo);
    lk::gumbel_noise(gv, constant_generator<std::uint32_t>{0xFFFFFFFFu});
    check_all(g_hi);
    lk::gumbel_noise(gv, constant_generator<std::uint64_t>{0});
    check_all(g_lo);
    lk::gumbel_noise(gv, constant_generator<std::uint64_t>{~0ull});
    check_all(g_hi);
    // The documented ranges.
    CHECK(g_lo > (is_double ? -3.61L : -3.14L));
    CHECK(g_hi < (is_double ? 36.75L : 22.88L));
    // Every 32-bit value near both ends, through the generic path.
    for (std::uint32_t w : {0u, 1u, 2u, 3u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFEu, 0xFFFFFFFDu}) {
        lk::gumbel_noise(gv, constant_generator<std::uint32_t>{w});
        for (T v : g) REQUIRE(std::isfinite(v));
    }
}

TEMPLATE_TEST_CASE("gumbel_noise: Gumbel(0, 1) distributed (chi-square, p = 1e-3)", "[gumbel][statistics]", float,
                   double) {
    using T = TestType;
    // 20 equiprobable bins between the Gumbel quantiles -log(-log(j / 20)).
    const int bins = 20;
    std::vector<double> edges;
    for (int j = 1; j < bins; ++j) edges.push_back(-std::log(-std::log(static_cast<double>(j) / bins)));
    const std::vector<ld> p(bins, 1.0L / bins);
    auto check = [&](const std::vector<T>& g) {
        std::vector<double> counts(bins);
        for (T v : g)
            ++counts[static_cast<std::size_t>(std::upper_bound(edges.begin(), edges.end(), v) - edges.begin())];
        REQUIRE(lk_sampling::check_frequencies(counts, p) >= 2);
    };
    std::vector<T> g(100000);
    const lk::tensor_view<T, 1> gv(g.data(), {index_type(g.size())});
    SECTION("philox4x32") {
        lk::gumbel_noise(gv, philox4x32(31337));
        check(g);
    }
    SECTION("std::mt19937") {
        std::mt19937 gen(31337);
        lk::gumbel_noise(gv, gen);
        check(g);
    }
    SECTION("std::minstd_rand (through std::uniform_int_distribution)") {
        std::minstd_rand gen(31337);
        lk::gumbel_noise(gv, gen);
        check(g);
    }
}

TEMPLATE_TEST_CASE("gumbel_noise: the same bits on every path and for any split of the work", "[gumbel][determinism]",
                   float, double) {
    using T = TestType;
    constexpr bool is_double = std::is_same<T, double>::value;
    const std::size_t n = 10007;
    std::vector<T> a(n), b(n), c(n);
    const lk::tensor_view<T, 1> av(a.data(), {index_type(n)}), bv(b.data(), {index_type(n)});
    lk::gumbel_noise(av, philox4x32(2024, 3));
    lk::gumbel_noise<lk::detail::scalar_arch>(bv, philox4x32(2024, 3));
    CHECK(same_bits(a.data(), b.data(), n));  // this binary's SIMD path against the scalar path
    wrapped_philox w{philox4x32(2024, 3)};
    lk::gumbel_noise(bv, w);  // drawn word by word through the generic path
    CHECK(same_bits(a.data(), b.data(), n));
    CHECK(w.g.offset() == 3 + n * K_of(is_double));
    // In pieces of odd sizes, each with its own generator at the right offset.
    for (std::size_t first = 0, piece = 1; first < n; first += piece, piece = piece * 3 + 1) {
        const std::size_t len = std::min(piece, n - first);
        lk::gumbel_noise(lk::tensor_view<T, 1>(c.data() + first, {index_type(len)}),
                         philox4x32(2024, 3 + first * lk::philox_words_per_element<T>));
    }
    CHECK(same_bits(a.data(), c.data(), n));
    // Every test binary (scalar, SSE4.2, AVX2, AVX-512, ...) must produce these bits.
    const std::uint64_t expected = is_double ? 0x8173405064f95a29ull : 0xba384a3f1713810eull;
    CHECK(fnv1a(a) == expected);
}

// ---------------------------------------------------------------------------------------------
// gumbel_softmax.
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("gumbel_softmax equals softmax(x + gumbel_noise) with the same generator, bit for bit", "[gumbel]",
                   float, double) {
    using T = TestType;
    const std::vector<T> x = random_logits<T>(24 * 37, 8, 5);
    for (double tau : {1.0, 0.5, 3.0}) {
        for (int axis : {-1, 0}) {
            CAPTURE(tau, axis);
            std::vector<T> y(x.size()), g(x.size()), ref(x.size());
            const ext<2> shape{24, 37};
            lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), shape), lk::tensor_view<T, 2>(y.data(), shape),
                               philox4x32(77, 1000), {tau}, axis);
            lk::gumbel_noise(lk::tensor_view<T, 2>(g.data(), shape), philox4x32(77, 1000));
            for (std::size_t i = 0; i < x.size(); ++i) g[i] = x[i] + g[i];
            lk::softmax(lk::tensor_view<const T, 2>(g.data(), shape), lk::tensor_view<T, 2>(ref.data(), shape), axis,
                        {tau});
            CHECK(same_bits(y.data(), ref.data(), x.size()));
            // Any UniformRandomBitGenerator: the same relation.
            std::mt19937 m1(9), m2(9);
            lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), shape), lk::tensor_view<T, 2>(y.data(), shape), m1,
                               {tau}, axis);
            lk::gumbel_noise(lk::tensor_view<T, 2>(g.data(), shape), m2);
            for (std::size_t i = 0; i < x.size(); ++i) g[i] = x[i] + g[i];
            lk::softmax(lk::tensor_view<const T, 2>(g.data(), shape), lk::tensor_view<T, 2>(ref.data(), shape), axis,
                        {tau});
            CHECK(same_bits(y.data(), ref.data(), x.size()));
            CHECK(m1 == m2);
        }
    }
}

TEMPLATE_TEST_CASE("gumbel_softmax on strided, reversed and permuted layouts of rank 3", "[gumbel]", float, double) {
    using T = TestType;
    const ext<3> shape{5, 6, 7};
    const std::vector<T> xd = random_logits<T>(5 * 6 * 7, 5, 11);
    const std::array<std::array<std::size_t, 3>, 3> orders = {{{2, 1, 0}, {0, 2, 1}, {1, 0, 2}}};
    const std::array<std::array<bool, 3>, 3> flips = {
        {{false, false, false}, {true, false, false}, {false, true, true}}};
    for (std::size_t o = 0; o < orders.size(); ++o) {
        for (int axis = 0; axis < 3; ++axis) {
            for (bool hard : {false, true}) {
                CAPTURE(o, axis, hard);
                strided_tensor<T, 3> x(shape, orders[o], flips[o]), y(shape, orders[(o + 1) % 3], flips[(o + 2) % 3]);
                x.fill(xd);
                lk::gumbel_softmax(lk::tensor_view<const T, 3>(x.view), y.view, philox4x32(5, 8), {0.7, hard}, axis);
                // Reference: the noise in row-major order, x + g written with y's layout, softmax in
                // place (the same dispatch as gumbel_softmax's own softmax pass).
                std::vector<T> g(xd.size());
                lk::gumbel_noise(lk::tensor_view<T, 3>(g.data(), shape), philox4x32(5, 8));
                for (std::size_t i = 0; i < g.size(); ++i) g[i] = xd[i] + g[i];
                strided_tensor<T, 3> ref(shape, orders[(o + 1) % 3], flips[(o + 2) % 3]);
                ref.fill(g);
                lk::softmax(lk::tensor_view<const T, 3>(ref.view), ref.view, axis, {0.7});
                const std::vector<T> got = y.dense(), want = ref.dense();
                if (!hard) {
                    CHECK(same_bits(got.data(), want.data(), got.size()));
                } else {
                    // One-hot at the maximum of each line of the soft sample.
                    for (index_type i = 0; i < count(shape); ++i) {
                        ext<3> idx = unravel(i, shape);
                        if (idx[static_cast<std::size_t>(axis)] != 0) continue;
                        index_type ones = 0, at = -1;
                        T best = -1;
                        for (index_type r = 0; r < shape[static_cast<std::size_t>(axis)]; ++r) {
                            idx[static_cast<std::size_t>(axis)] = r;
                            const T v = y.view[idx];
                            REQUIRE((v == T(0) || v == T(1)));
                            if (v == T(1)) {
                                ++ones;
                                at = r;
                            }
                        }
                        REQUIRE(ones == 1);
                        for (index_type r = 0; r < shape[static_cast<std::size_t>(axis)]; ++r) {
                            idx[static_cast<std::size_t>(axis)] = r;
                            best = std::max(best, ref.view[idx]);
                        }
                        idx[static_cast<std::size_t>(axis)] = at;
                        CHECK(ref.view[idx] == best);
                    }
                }
                // The gaps between the elements of y are untouched.
                std::size_t untouched = 0;
                for (T v : y.mem) untouched += std::isnan(v) ? 1 : 0;
                CHECK(untouched == y.mem.size() - g.size());
            }
        }
    }
}

TEMPLATE_TEST_CASE("gumbel_softmax: soft samples are positive and sum to 1", "[gumbel]", float, double) {
    using T = TestType;
    const index_type rows = 500, cols = 50;
    const std::vector<T> x = random_logits<T>(static_cast<std::size_t>(rows * cols), 4, 21);
    std::vector<T> y(x.size());
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), {rows, cols}),
                       lk::tensor_view<T, 2>(y.data(), {rows, cols}), philox4x32(3), {1.0});
    const ld tol = std::is_same<T, float>::value ? 1e-5L : 1e-13L;
    for (index_type r = 0; r < rows; ++r) {
        ld s = 0;
        for (index_type c = 0; c < cols; ++c) {
            const T v = y[static_cast<std::size_t>(r * cols + c)];
            REQUIRE(v > 0);
            REQUIRE(v <= 1);
            s += v;
        }
        REQUIRE(std::fabs(s - 1) <= tol);
    }
}

TEMPLATE_TEST_CASE("gumbel_softmax hard: the exact one-hot of the soft sample's argmax", "[gumbel]", float, double) {
    using T = TestType;
    const index_type rows = 300, cols = 40;
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    // Coarse logits make equal values of x + g rare but possible in float: ties go to the lowest index.
    std::vector<T> x = random_logits<T>(n, 3, 8);
    const ext<2> shape{rows, cols};
    const lk::tensor_view<const T, 2> xv(x.data(), shape);
    std::vector<T> hard(n), hard_only(n), soft(n), soft_plain(n), soft_copy(n);
    lk::gumbel_softmax(xv, lk::tensor_view<T, 2>(hard.data(), shape), lk::tensor_view<T, 2>(soft.data(), shape),
                       philox4x32(4, 40), {0.3, true});
    lk::gumbel_softmax(xv, lk::tensor_view<T, 2>(hard_only.data(), shape), philox4x32(4, 40), {0.3, true});
    lk::gumbel_softmax(xv, lk::tensor_view<T, 2>(soft_plain.data(), shape), philox4x32(4, 40), {0.3, false});
    lk::gumbel_softmax(xv, lk::tensor_view<T, 2>(soft_copy.data(), shape),
                       lk::tensor_view<T, 2>(hard_only.data(), shape), philox4x32(4, 40), {0.3, false});
    CHECK(same_bits(soft.data(), soft_plain.data(), n));       // the y_soft output is the soft sample
    CHECK(same_bits(soft_copy.data(), soft_plain.data(), n));  // not hard: y == y_soft
    CHECK(same_bits(hard_only.data(), soft_plain.data(), n));
    lk::gumbel_softmax(xv, lk::tensor_view<T, 2>(hard_only.data(), shape), philox4x32(4, 40), {0.3, true});
    CHECK(same_bits(hard.data(), hard_only.data(), n));  // with or without the soft output
    // The perturbed logits, recomputed: the hard index is their first maximum.
    std::vector<T> g(n);
    lk::gumbel_noise(lk::tensor_view<T, 2>(g.data(), shape), philox4x32(4, 40));
    for (index_type r = 0; r < rows; ++r) {
        index_type at = -1, ones = 0;
        T zbest = -std::numeric_limits<T>::infinity();
        index_type zat = -1;
        T smax = 0;
        for (index_type c = 0; c < cols; ++c) {
            const std::size_t i = static_cast<std::size_t>(r * cols + c);
            REQUIRE((hard[i] == T(0) || hard[i] == T(1)));
            if (hard[i] == T(1)) {
                ++ones;
                at = c;
            }
            const T z = (x[i] + g[i]) / static_cast<T>(0.3);
            if (z > zbest) {
                zbest = z;
                zat = c;
            }
            smax = std::max(smax, soft[i]);
        }
        REQUIRE(ones == 1);
        CHECK(at == zat);
        CHECK(soft[static_cast<std::size_t>(r * cols + at)] == smax);
    }
    // The scalar path gives the same one-hot.
    std::vector<T> hard_scalar(n);
    lk::gumbel_softmax<lk::detail::scalar_arch>(xv, lk::tensor_view<T, 2>(hard_scalar.data(), shape), philox4x32(4, 40),
                                                {0.3, true});
    CHECK(same_bits(hard.data(), hard_scalar.data(), n));
}

TEMPLATE_TEST_CASE("gumbel_softmax hard: argmax frequencies match softmax(x) (chi-square, p = 1e-3)",
                   "[gumbel][statistics]", float, double) {
    using T = TestType;
    const index_type C = static_cast<index_type>(class_logits.size()), N = 20000;
    std::vector<T> base(class_logits.begin(), class_logits.end());
    const std::vector<ld> p = softmax_ld(base);
    std::vector<T> x(static_cast<std::size_t>(N * C)), y(x.size());
    auto frequencies = [&](int axis) {
        std::vector<double> counts(static_cast<std::size_t>(C));
        for (index_type r = 0; r < N; ++r)
            for (index_type c = 0; c < C; ++c) {
                const std::size_t i = static_cast<std::size_t>(axis == 1 ? r * C + c : c * N + r);
                if (y[i] == T(1)) ++counts[static_cast<std::size_t>(c)];
            }
        return counts;
    };
    for (int axis : {1, 0}) {
        const ext<2> shape = axis == 1 ? ext<2>{N, C} : ext<2>{C, N};
        for (index_type r = 0; r < N; ++r)
            for (index_type c = 0; c < C; ++c)
                x[static_cast<std::size_t>(axis == 1 ? r * C + c : c * N + r)] = base[static_cast<std::size_t>(c)];
        const lk::tensor_view<const T, 2> xv(x.data(), shape);
        const lk::tensor_view<T, 2> yv(y.data(), shape);
        SECTION("philox4x32, tau = 0.5, axis " + std::to_string(axis)) {
            lk::gumbel_softmax(xv, yv, philox4x32(100 + static_cast<std::uint64_t>(axis)), {0.5, true}, axis);
            REQUIRE(lk_sampling::check_frequencies(frequencies(axis), p) >= 2);
        }
        SECTION("philox4x32, tau = 2, axis " + std::to_string(axis)) {
            lk::gumbel_softmax(xv, yv, philox4x32(200 + static_cast<std::uint64_t>(axis)), {2.0, true}, axis);
            REQUIRE(lk_sampling::check_frequencies(frequencies(axis), p) >= 2);
        }
        SECTION("std::mt19937_64, tau = 1, axis " + std::to_string(axis)) {
            std::mt19937_64 gen(300 + static_cast<std::uint64_t>(axis));
            lk::gumbel_softmax(xv, yv, gen, {1.0, true}, axis);
            REQUIRE(lk_sampling::check_frequencies(frequencies(axis), p) >= 2);
        }
    }
}

TEMPLATE_TEST_CASE("gumbel_softmax: a small tau gives nearly one-hot soft samples", "[gumbel]", float, double) {
    using T = TestType;
    const index_type rows = 2000, cols = 10;
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    const std::vector<T> x = random_logits<T>(n, 2, 17);
    const ext<2> shape{rows, cols};
    std::vector<T> hard(n), soft(n);
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), shape), lk::tensor_view<T, 2>(hard.data(), shape),
                       lk::tensor_view<T, 2>(soft.data(), shape), philox4x32(6), {1e-3, true});
    index_type near = 0;
    for (index_type r = 0; r < rows; ++r) {
        ld distance = 0;  // L1 distance of the soft sample to the hard one
        for (index_type c = 0; c < cols; ++c) {
            const std::size_t i = static_cast<std::size_t>(r * cols + c);
            distance += std::fabs(static_cast<ld>(soft[i]) - hard[i]);
        }
        near += distance < 0.01L ? 1 : 0;
    }
    // Gumbel-max gaps are Exp(1)-like: a gap below tau * log(200) = 0.0053 has probability ~0.5%.
    CHECK(near >= rows * 97 / 100);
}

TEMPLATE_TEST_CASE("gumbel_softmax: identical output for any number of threads", "[gumbel][determinism]", float,
                   double) {
    using T = TestType;
    const index_type rows = 64, cols = 1000;
    const std::size_t n = static_cast<std::size_t>(rows * cols);
    const std::vector<T> x = random_logits<T>(n, 6, 99);
    const std::uint64_t seed = 0xC0FFEE, offset = 5;
    std::vector<T> one(n);
    philox4x32 gen(seed, offset);
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), {rows, cols}),
                       lk::tensor_view<T, 2>(one.data(), {rows, cols}), gen, {0.7});
    CHECK(gen.offset() == offset + n * lk::philox_words_per_element<T>);
    for (int threads : {2, 3, 5}) {
        CAPTURE(threads);
        std::vector<T> many(n);
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            const index_type r0 = rows * t / threads, r1 = rows * (t + 1) / threads;
            pool.emplace_back([&, r0, r1] {
                const std::size_t first = static_cast<std::size_t>(r0 * cols);
                lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data() + first, {r1 - r0, cols}),
                                   lk::tensor_view<T, 2>(many.data() + first, {r1 - r0, cols}),
                                   philox4x32(seed, offset + first * lk::philox_words_per_element<T>), {0.7});
            });
        }
        for (auto& th : pool) th.join();
        CHECK(same_bits(one.data(), many.data(), n));
    }
}

TEMPLATE_TEST_CASE("gumbel_softmax: special values", "[gumbel]", float, double) {
    using T = TestType;
    const T inf = std::numeric_limits<T>::infinity(), nan = std::numeric_limits<T>::quiet_NaN();
    const std::vector<std::vector<T>> rows = {
        {1, nan, 2}, {1, inf, 2}, {-inf, -inf, -inf}, {1, -inf, 2}, {-inf, 3, -inf}};
    for (bool hard : {false, true}) {
        for (std::size_t k = 0; k < rows.size(); ++k) {
            CAPTURE(hard, k);
            const std::vector<T>& x = rows[k];
            std::vector<T> y(3);
            lk::gumbel_softmax(lk::tensor_view<const T, 1>(x.data(), {3}), lk::tensor_view<T, 1>(y.data(), {3}),
                               philox4x32(k), {0.5, hard});
            if (k < 3) {
                for (T v : y) CHECK(std::isnan(v));
            } else {
                for (std::size_t i = 0; i < 3; ++i)
                    if (std::isinf(x[i])) CHECK(y[i] == T(0));
                CHECK(std::fabs(static_cast<ld>(y[0]) + y[1] + y[2] - 1) < 1e-6L);
                if (k == 4) CHECK(y[1] == T(1));
            }
        }
    }
    // -inf classes are never the hard sample.
    const index_type N = 3000;
    std::vector<T> x(static_cast<std::size_t>(N * 4)), y(x.size());
    for (index_type r = 0; r < N; ++r) {
        const T row[4] = {-inf, 0, -inf, 0};
        std::copy(row, row + 4, x.begin() + r * 4);
    }
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), {N, 4}), lk::tensor_view<T, 2>(y.data(), {N, 4}),
                       philox4x32(12), {1.0, true});
    double second = 0;
    for (index_type r = 0; r < N; ++r) {
        REQUIRE(y[static_cast<std::size_t>(r * 4)] == T(0));
        REQUIRE(y[static_cast<std::size_t>(r * 4 + 2)] == T(0));
        second += y[static_cast<std::size_t>(r * 4 + 1)];
    }
    CHECK(std::fabs(second / N - 0.5) < 3.29 * std::sqrt(0.25 / N));  // binomial, two-sided 1e-3
}

TEMPLATE_TEST_CASE("gumbel_softmax: empty tensors, axis extent 1, in place", "[gumbel]", float, double) {
    using T = TestType;
    philox4x32 gen(1, 10);
    std::vector<T> x(6, T(2)), y(6);
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), {0, 3}), lk::tensor_view<T, 2>(y.data(), {0, 3}), gen);
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(nullptr, {3, 0}), lk::tensor_view<T, 2>(nullptr, {3, 0}), gen);
    CHECK(gen.offset() == 10);  // nothing drawn
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x.data(), {6, 1}), lk::tensor_view<T, 2>(y.data(), {6, 1}), gen,
                       {0.25}, 1);
    for (T v : y) CHECK(v == T(1));
    CHECK(gen.offset() == 10 + 6 * lk::philox_words_per_element<T>);
    // In place: y is exactly x.
    const std::vector<T> x0 = random_logits<T>(60, 3, 4);
    std::vector<T> a = x0, b(60);
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x0.data(), {6, 10}), lk::tensor_view<T, 2>(b.data(), {6, 10}),
                       philox4x32(8), {1.5});
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(a.data(), {6, 10}), lk::tensor_view<T, 2>(a.data(), {6, 10}),
                       philox4x32(8), {1.5});
    CHECK(same_bits(a.data(), b.data(), 60));
    // y_soft exactly x, hard one-hot in y.
    std::vector<T> s = x0, h(60), h2(60), s2(60);
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(s.data(), {6, 10}), lk::tensor_view<T, 2>(h.data(), {6, 10}),
                       lk::tensor_view<T, 2>(s.data(), {6, 10}), philox4x32(8), {1.5, true});
    lk::gumbel_softmax(lk::tensor_view<const T, 2>(x0.data(), {6, 10}), lk::tensor_view<T, 2>(h2.data(), {6, 10}),
                       lk::tensor_view<T, 2>(s2.data(), {6, 10}), philox4x32(8), {1.5, true});
    CHECK(same_bits(s.data(), b.data(), 60));
    CHECK(same_bits(h.data(), h2.data(), 60));
}

TEST_CASE("gumbel_softmax: argument errors", "[gumbel][errors]") {
    std::vector<float> x(12, 1.0f), y(12, -7.0f), s(12, -7.0f);
    const lk::tensor_view<const float, 2> xv(x.data(), {3, 4});
    const lk::tensor_view<float, 2> yv(y.data(), {3, 4}), sv(s.data(), {3, 4});
    philox4x32 gen(3, 30);
    auto untouched = [&] {
        CHECK(gen.offset() == 30);
        for (float v : y) CHECK(v == -7.0f);
        for (float v : s) CHECK(v == -7.0f);
    };
    for (double tau :
         {0.0, -1.0, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(), 1e-50}) {
        CAPTURE(tau);
        const std::string e = error_of([&] { lk::gumbel_softmax(xv, yv, gen, {tau}); });
        CHECK(e.rfind("logitkit::gumbel_softmax: options.tau = ", 0) == 0);
        CHECK_THROWS_AS(lk::gumbel_softmax(xv, yv, gen, {tau, true}), std::invalid_argument);
        CHECK_THROWS_AS(lk::gumbel_softmax_backward(lk::tensor_view<const float, 2>(yv), xv, sv, {tau}),
                        std::invalid_argument);
    }
    CHECK(error_of([&] { lk::gumbel_softmax(xv, yv, gen, {1e-50}); }).find("representable") != std::string::npos);
    CHECK_THROWS_AS(lk::gumbel_softmax(xv, yv, gen, {}, 2), std::out_of_range);
    CHECK_THROWS_AS(lk::gumbel_softmax(xv, yv, gen, {}, -3), std::out_of_range);
    CHECK(error_of([&] {
              lk::gumbel_softmax(xv, lk::tensor_view<float, 2>(y.data(), {4, 3}), gen);
          }).rfind("logitkit::gumbel_softmax: y.shape", 0) == 0);
    CHECK(error_of([&] {
              lk::gumbel_softmax(xv, yv, lk::tensor_view<float, 2>(s.data(), {2, 4}), gen);
          }).rfind("logitkit::gumbel_softmax: y_soft.shape", 0) == 0);
    CHECK_THROWS_AS(lk::gumbel_softmax(lk::tensor_view<const float, 2>(nullptr, {3, 4}), yv, gen),
                    std::invalid_argument);
    CHECK_THROWS_AS(lk::gumbel_softmax(xv, lk::tensor_view<float, 2>(nullptr, {3, 4}), gen), std::invalid_argument);
    // Overlaps: y shifted by one element over x; y_soft over y; y_soft exactly y.
    std::vector<float> buf(13, 1.0f);
    CHECK_THROWS_AS(lk::gumbel_softmax(lk::tensor_view<const float, 2>(buf.data(), {3, 4}),
                                       lk::tensor_view<float, 2>(buf.data() + 1, {3, 4}), gen),
                    std::invalid_argument);
    CHECK(error_of([&] { lk::gumbel_softmax(xv, yv, yv, gen); }).find("y_soft overlaps y") != std::string::npos);
    CHECK_THROWS_AS(lk::gumbel_softmax(xv, yv, lk::tensor_view<float, 2>(y.data() + 2, {2, 4}), gen),
                    std::invalid_argument);
    // A y whose strides map two indices to one element.
    CHECK_THROWS_AS(lk::gumbel_softmax(xv, lk::tensor_view<float, 2>(y.data(), {3, 4}, {0, 1}), gen),
                    std::invalid_argument);
    untouched();
    CHECK_THROWS_AS(lk::gumbel_noise(lk::tensor_view<float, 1>(nullptr, {4}), gen), std::invalid_argument);
    // The backward kernel.
    std::vector<float> dx(12, -7.0f);
    const lk::tensor_view<float, 2> dxv(dx.data(), {3, 4});
    CHECK(error_of([&] {
              lk::gumbel_softmax_backward(xv, lk::tensor_view<const float, 2>(y.data(), {4, 3}), dxv, {});
          }).rfind("logitkit::gumbel_softmax_backward: dy.shape", 0) == 0);
    CHECK_THROWS_AS(lk::gumbel_softmax_backward(xv, xv, dxv, {}, 5), std::out_of_range);
    CHECK(error_of([&] {
              lk::gumbel_softmax_backward(lk::tensor_view<const float, 2>(buf.data(), {3, 4}), xv,
                                          lk::tensor_view<float, 2>(buf.data() + 1, {3, 4}), {});
          }).find("dx overlaps y_soft") != std::string::npos);
    for (float v : dx) CHECK(v == -7.0f);
}

// ---------------------------------------------------------------------------------------------
// The straight-through backward.
// ---------------------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("gumbel_softmax_backward: (1/tau) y (dy - sum(dy y)) against long double", "[gumbel][backward]",
                   float, double) {
    using T = TestType;
    const ld coef = std::is_same<T, float>::value ? 1e-6L : 1e-14L;
    const ext<3> shape{4, 9, 33};
    const std::size_t n = 4 * 9 * 33;
    const std::vector<T> x = random_logits<T>(n, 3, 41), dy = random_logits<T>(n, 1, 42);
    for (double tau : {0.3, 1.0, 2.5}) {
        for (int axis : {2, 1, 0}) {
            CAPTURE(tau, axis);
            std::vector<T> y(n), dx(n);
            lk::gumbel_softmax(lk::tensor_view<const T, 3>(x.data(), shape), lk::tensor_view<T, 3>(y.data(), shape),
                               philox4x32(50), {tau}, axis);
            lk::gumbel_softmax_backward(lk::tensor_view<const T, 3>(y.data(), shape),
                                        lk::tensor_view<const T, 3>(dy.data(), shape),
                                        lk::tensor_view<T, 3>(dx.data(), shape), {tau}, axis);
            const auto a = static_cast<std::size_t>(axis);
            ld worst = 0;
            for (index_type i = 0; i < static_cast<index_type>(n); ++i) {
                ext<3> idx = unravel(i, shape);
                ld dot = 0, absdot = 0;
                for (index_type r = 0; r < shape[a]; ++r) {
                    ext<3> j = idx;
                    j[a] = r;
                    const std::size_t f = static_cast<std::size_t>((j[0] * 9 + j[1]) * 33 + j[2]);
                    dot += static_cast<ld>(dy[f]) * y[f];
                    absdot += std::fabs(static_cast<ld>(dy[f]) * y[f]);
                }
                const std::size_t f = static_cast<std::size_t>(i);
                const ld ref = static_cast<ld>(y[f]) * (static_cast<ld>(dy[f]) - dot) / static_cast<ld>(tau);
                const ld allowed = coef * std::fabs(static_cast<ld>(y[f])) *
                                       (std::fabs(static_cast<ld>(dy[f])) + absdot) / static_cast<ld>(tau) +
                                   std::numeric_limits<T>::denorm_min();
                worst = std::max(worst, std::fabs(dx[f] - ref) / allowed);
            }
            CHECK(worst <= 1);
            // dx may be exactly y_soft or exactly dy.
            std::vector<T> in_y = y, in_dy = dy;
            lk::gumbel_softmax_backward(lk::tensor_view<const T, 3>(in_y.data(), shape),
                                        lk::tensor_view<const T, 3>(dy.data(), shape),
                                        lk::tensor_view<T, 3>(in_y.data(), shape), {tau}, axis);
            lk::gumbel_softmax_backward(lk::tensor_view<const T, 3>(y.data(), shape),
                                        lk::tensor_view<const T, 3>(in_dy.data(), shape),
                                        lk::tensor_view<T, 3>(in_dy.data(), shape), {tau}, axis);
            CHECK(same_bits(in_y.data(), dx.data(), n));
            CHECK(same_bits(in_dy.data(), dx.data(), n));
        }
    }
}

TEST_CASE("gumbel_softmax_backward is the gradient of the soft sample (finite differences)", "[gumbel][backward]") {
    // L(x) = sum(w * y_soft(x)) with the noise held fixed (the same generator state every time).
    const index_type C = 7;
    const double tau = 0.6;
    std::vector<double> x = random_logits<double>(C, 2, 61), w = random_logits<double>(C, 1, 62), y(C), dx(C);
    auto loss = [&](const std::vector<double>& xs) {
        std::vector<double> ys(C);
        lk::gumbel_softmax(lk::tensor_view<const double, 1>(xs.data(), {C}), lk::tensor_view<double, 1>(ys.data(), {C}),
                           philox4x32(70, 4), {tau});
        ld s = 0;
        for (index_type i = 0; i < C; ++i)
            s += static_cast<ld>(w[static_cast<std::size_t>(i)]) * ys[static_cast<std::size_t>(i)];
        return s;
    };
    for (bool hard : {false, true}) {
        std::vector<double> yh(C);
        lk::gumbel_softmax(lk::tensor_view<const double, 1>(x.data(), {C}), lk::tensor_view<double, 1>(yh.data(), {C}),
                           lk::tensor_view<double, 1>(y.data(), {C}), philox4x32(70, 4), {tau, hard});
        lk::gumbel_softmax_backward(lk::tensor_view<const double, 1>(y.data(), {C}),
                                    lk::tensor_view<const double, 1>(w.data(), {C}),
                                    lk::tensor_view<double, 1>(dx.data(), {C}), {tau, hard});
        for (index_type i = 0; i < C; ++i) {
            const double h = 1e-5;
            std::vector<double> xp = x, xm = x;
            xp[static_cast<std::size_t>(i)] += h;
            xm[static_cast<std::size_t>(i)] -= h;
            const ld fd = (loss(xp) - loss(xm)) / (2 * h);
            CAPTURE(hard, i);
            CHECK(std::fabs(fd - dx[static_cast<std::size_t>(i)]) <= 1e-8L);
        }
    }
}
