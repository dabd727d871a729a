// logitkit::philox4x32: the Philox-4x32-10 bijection against the published known-answer vectors,
// the word stream and its offsets, the UniformRandomBitGenerator interface, the vectorised word
// generator against the scalar one, and a chi-square check of the output's uniformity.
#include <logitkit/detail/gumbel_noise.hpp>
#include <logitkit/philox.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <type_traits>
#include <vector>

#include "sampling_support.hpp"

namespace {

using logitkit::philox4x32;
using counter = philox4x32::counter_type;
using key = philox4x32::key_type;

// Philox-4x32-10 written out from its definition (Salmon et al., SC 2011), independently of the
// library: ten rounds of the S-box, the key bumped by the Weyl constants between rounds.
counter reference_philox(counter x, key k) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k[0] = static_cast<std::uint32_t>(k[0] + 0x9E3779B9u);
            k[1] = static_cast<std::uint32_t>(k[1] + 0xBB67AE85u);
        }
        const std::uint64_t a = static_cast<std::uint64_t>(0xD2511F53u) * x[0];
        const std::uint64_t b = static_cast<std::uint64_t>(0xCD9E8D57u) * x[2];
        const counter y = {static_cast<std::uint32_t>(b >> 32) ^ x[1] ^ k[0], static_cast<std::uint32_t>(b),
                           static_cast<std::uint32_t>(a >> 32) ^ x[3] ^ k[1], static_cast<std::uint32_t>(a)};
        x = y;
    }
    return x;
}

struct kat {
    counter ctr;
    key k;
    counter expected;
};

// Random123's kat_vectors, philox4x32 with 10 rounds.
const kat known_answers[] = {
    {{0x00000000u, 0x00000000u, 0x00000000u, 0x00000000u},
     {0x00000000u, 0x00000000u},
     {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
    {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
     {0xffffffffu, 0xffffffffu},
     {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
    {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
     {0xa4093822u, 0x299f31d0u},
     {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
};

constexpr bool same(const counter& a, const counter& b) {
    return a[0] == b[0] && a[1] == b[1] && a[2] == b[2] && a[3] == b[3];
}

// The bijection is constexpr: the first vector is checked at compile time.
static_assert(same(philox4x32::block({0, 0, 0, 0}, {0, 0}), {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}),
              "philox4x32 known-answer vector");

}  // namespace

TEST_CASE("philox4x32: known-answer vectors of Random123", "[philox]") {
    for (const kat& v : known_answers) {
        CAPTURE(v.ctr[0], v.ctr[1], v.ctr[2], v.ctr[3], v.k[0], v.k[1]);
        CHECK(same(reference_philox(v.ctr, v.k), v.expected));  // the definition gives the vectors
        CHECK(same(philox4x32::block(v.ctr, v.k), v.expected));
    }
}

TEST_CASE("philox4x32: block agrees with the definition on random inputs", "[philox]") {
    std::mt19937_64 gen(2011);
    for (int i = 0; i < 2000; ++i) {
        const std::uint64_t a = gen(), b = gen(), c = gen();
        const counter ctr = {static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(a >> 32),
                             static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(b >> 32)};
        const key k = {static_cast<std::uint32_t>(c), static_cast<std::uint32_t>(c >> 32)};
        REQUIRE(same(philox4x32::block(ctr, k), reference_philox(ctr, k)));
    }
}

TEST_CASE("philox4x32: the word stream, offsets, discard and equality", "[philox]") {
    const std::uint64_t seed = 0x0123456789ABCDEFull;
    const key k = {0x89ABCDEFu, 0x01234567u};
    SECTION("words come block after block, four per block") {
        philox4x32 g(seed);
        for (std::uint64_t b = 0; b < 50; ++b) {
            const counter w = reference_philox({static_cast<std::uint32_t>(b), 0, 0, 0}, k);
            for (int j = 0; j < 4; ++j) REQUIRE(g() == w[static_cast<std::size_t>(j)]);
        }
        CHECK(g.offset() == 200);
        CHECK(g.seed_value() == seed);
    }
    SECTION("the block index uses both low counter words") {
        const std::uint64_t b = 0x100000000ull;  // the first block whose counter has x1 = 1
        philox4x32 g(seed, 4 * b - 2);
        const counter before = reference_philox({0xFFFFFFFFu, 0, 0, 0}, k);
        const counter after = reference_philox({0, 1, 0, 0}, k);
        CHECK(g() == before[2]);
        CHECK(g() == before[3]);
        CHECK(g() == after[0]);
        CHECK(philox4x32::word_at(seed, 4 * b + 3) == after[3]);
    }
    SECTION("an offset, discard, set_offset and word_at all address the same stream") {
        philox4x32 a(seed);
        std::vector<std::uint32_t> words(1000);
        for (auto& w : words) w = a();
        for (std::uint64_t off : {0ull, 1ull, 3ull, 4ull, 5ull, 517ull, 998ull}) {
            philox4x32 b(seed, off);
            CHECK(b() == words[off]);
            philox4x32 c(seed);
            c.discard(off);
            CHECK(c() == words[off]);
            philox4x32 d(seed, 999);
            (void)d();
            d.set_offset(off);
            CHECK(d() == words[off]);
            CHECK(philox4x32::word_at(seed, off) == words[off]);
        }
    }
    SECTION("equality is equality of (seed, offset); seed() restarts") {
        philox4x32 a(7, 10), b(7, 10), c(8, 10);
        CHECK(a == b);
        CHECK(a != c);
        (void)a();
        CHECK(a != b);
        b.discard(1);
        CHECK(a == b);
        const std::uint32_t first = philox4x32(9)();
        a.seed(9);
        CHECK(a.offset() == 0);
        CHECK(a() == first);
        philox4x32 copy = a;
        CHECK(copy() == a());
    }
    SECTION("default construction") {
        philox4x32 g;
        CHECK(g.seed_value() == philox4x32::default_seed);
        CHECK(g.offset() == 0);
    }
}

TEST_CASE("philox4x32 is a UniformRandomBitGenerator", "[philox]") {
    static_assert(std::is_same<philox4x32::result_type, std::uint32_t>::value, "result_type");
    static_assert(philox4x32::min() == 0 && philox4x32::max() == 0xFFFFFFFFu, "range");
    philox4x32 g(1);
    std::uniform_int_distribution<int> d(1, 6);
    int counts[7] = {};
    for (int i = 0; i < 6000; ++i) ++counts[d(g)];
    for (int v = 1; v <= 6; ++v) CHECK(counts[v] > 800);
    std::vector<int> perm(100);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), g);
    CHECK(!std::is_sorted(perm.begin(), perm.end()));
    std::sort(perm.begin(), perm.end());
    CHECK(perm.front() == 0);
    CHECK(perm.back() == 99);
}

TEMPLATE_TEST_CASE("philox4x32: vectorised words equal the scalar stream", "[philox]", logitkit::detail::default_arch,
                   logitkit::detail::scalar_arch) {
    std::mt19937_64 gen(77);
    std::vector<std::uint32_t> got(600);
    for (int t = 0; t < 400; ++t) {
        const std::uint64_t seed = gen();
        // Positions near 0, anywhere, across the 2^32-block boundary of the counter, and across
        // the end of the stream, where positions wrap to 0 (word_at takes them modulo 2^64).
        std::uint64_t pos = gen() % 4096;
        if (t % 4 == 1) pos = gen() >> 4;
        if (t % 4 == 2) pos = 4 * 0x100000000ull - 1 - gen() % 300;
        if (t % 4 == 3) pos = std::uint64_t(0) - 1 - gen() % 300;
        const std::size_t count = static_cast<std::size_t>(gen() % got.size());
        logitkit::detail::philox_words<TestType>(seed, pos, count, got.data());
        for (std::size_t i = 0; i < count; ++i) {
            INFO("seed " << seed << " position " << pos + i);
            REQUIRE(got[i] == philox4x32::word_at(seed, pos + i));
        }
    }
}

TEST_CASE("philox4x32: the words are uniform (chi-square, p = 1e-3)", "[philox][statistics]") {
    // 2^20 words of one stream: counts of the top byte and of the low byte (256 bins each), and of
    // each bit, compared with the uniform distribution. The seed is fixed, so the outcome is too;
    // a correct generator fails each check with probability 1e-3.
    constexpr std::size_t n = std::size_t(1) << 20;
    std::vector<std::uint32_t> w(n);
    logitkit::detail::philox_words<logitkit::detail::default_arch>(20240607, 12345, n, w.data());
    std::vector<double> top(256), low(256);
    std::array<double, 32> ones{};
    for (std::uint32_t v : w) {
        ++top[v >> 24];
        ++low[v & 0xFF];
        for (int b = 0; b < 32; ++b) ones[static_cast<std::size_t>(b)] += (v >> b) & 1u;
    }
    const double e = static_cast<double>(n) / 256;
    double chi_top = 0, chi_low = 0;
    for (int i = 0; i < 256; ++i) {
        chi_top += (top[static_cast<std::size_t>(i)] - e) * (top[static_cast<std::size_t>(i)] - e) / e;
        chi_low += (low[static_cast<std::size_t>(i)] - e) * (low[static_cast<std::size_t>(i)] - e) / e;
    }
    CHECK(chi_top < lk_sampling::critical_1e3(255));
    CHECK(chi_low < lk_sampling::critical_1e3(255));
    // Each bit: 32 binomial(n, 1/2) counts, tested together at 1e-3 (Bonferroni: each two-sided
    // at 1e-3 / 32, |z| < 4.17).
    const double sd = std::sqrt(n * 0.25);
    for (int b = 0; b < 32; ++b) {
        INFO("bit " << b);
        CHECK(std::fabs(ones[static_cast<std::size_t>(b)] - n / 2.0) / sd < 4.17);
    }
}
