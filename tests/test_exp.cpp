// The contract of detail::exp_of (stated in include/logitkit/detail/exp.hpp), checked on the
// architecture this binary was compiled for and on the scalar path.
#include <logitkit/detail/exp.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <limits>
#include <random>
#include <vector>

#include "test_support.hpp"

namespace {

using logitkit::detail::batch;
using logitkit::detail::default_arch;
using logitkit::detail::scalar_arch;
using lk_test::ulps;

// The errors of exponentials against their exact values, as the contract measures them: ulps
// where the result is normal, subnormal ulps past 2 ulp relative below that, and an infinity
// where the exact value overflows.
template <class T>
struct exp_errors {
    long double worst = 0, worst_sub = 0;
    T worst_at = 0;
    void add(T d, T got, long double ref) {
        if (ref >= std::numeric_limits<T>::min() && ref <= std::numeric_limits<T>::max()) {
            const long double u = ulps(got, ref);
            if (u > worst) {
                worst = u;
                worst_at = d;
            }
        } else if (ref < std::numeric_limits<T>::min()) {
            const long double err = std::fabs(got - ref) - 2 * std::numeric_limits<T>::epsilon() * ref;
            worst_sub = std::max(worst_sub, err / std::numeric_limits<T>::denorm_min());
        } else {
            CHECK(std::isinf(got));
        }
    }
    void check() const {
        INFO("worst " << static_cast<double>(worst) << " ulp at d = " << worst_at);
        CHECK(worst <= 2.0L);
        INFO("worst subnormal error " << static_cast<double>(worst_sub) << " subnormal ulps");
        CHECK(worst_sub <= 1.0L);
    }
};

// L is the exponential's table size (log2): the architecture's own by default; the tests also run
// every other size on this architecture, which reads its table through memory.
template <class Arch, class T, int L = logitkit::detail::exp_table_bits<batch<T, Arch>>>
void check_exp_contract(T lo, T hi, long count) {
    using V = batch<T, Arch>;
    constexpr std::size_t W = V::size;
    std::mt19937_64 gen(12345);
    std::uniform_real_distribution<T> dist(lo, hi);
    exp_errors<T> errors;
    for (long i = 0; i < count; ++i) {
        T d[W], e[W], out[W];
        for (std::size_t k = 0; k < W; ++k) {
            d[k] = dist(gen);
            // A correction of up to half an ulp of d, as the TwoSum of x - m produces.
            const T u = std::nextafter(d[k], std::numeric_limits<T>::infinity()) - d[k];
            e[k] = (i % 2 == 0) ? T(0) : static_cast<T>(u * (dist(gen) - lo) / (hi - lo) - u / 2);
        }
        logitkit::detail::simd::store(out, logitkit::detail::exp_of<V, L>(V::load_unaligned(d), V::load_unaligned(e)));
        for (std::size_t k = 0; k < W; ++k)
            errors.add(d[k], out[k], std::exp(static_cast<long double>(d[k]) + static_cast<long double>(e[k])));
    }
    errors.check();
}

template <class Arch, class T, int L = logitkit::detail::exp_table_bits<batch<T, Arch>>>
void check_exp_specials() {
    using V = batch<T, Arch>;
    constexpr T inf = std::numeric_limits<T>::infinity();
    const std::vector<T> in = {T(0), -T(0), -inf, inf, std::numeric_limits<T>::quiet_NaN(), T(-1e30), T(1e30),
                               std::numeric_limits<T>::lowest(), std::numeric_limits<T>::max(),
                               std::numeric_limits<T>::denorm_min(), -std::numeric_limits<T>::denorm_min()};
    for (T v : in) {
        T out[V::size];
        logitkit::detail::simd::store(out, logitkit::detail::exp_of<V, L>(V(v), V(T(0))));
        INFO("exp(" << v << ") = " << out[0]);
        if (std::isnan(v)) {
            CHECK(std::isnan(out[0]));
        } else if (v == -inf || v < T(-1e29)) {
            CHECK(out[0] == T(0));
        } else if (v == inf || v > T(1e29)) {
            CHECK(out[0] == inf);
        } else {
            CHECK(out[0] == T(1));
        }
    }
}

// Whether simd::fma rounds once on V's architecture (SSE has no fused multiply-add).
template <class V>
bool fused_multiply_add() {
    using T = typename V::value_type;
    const T a = T(1) + std::numeric_limits<T>::epsilon();
    T out[V::size];
    logitkit::detail::simd::store(out, logitkit::detail::simd::fma(V(a), V(T(2) - a), V(T(-1))));
    return out[0] != T(0);  // a (2 - a) - 1 = -eps^2 exactly, 0 once the product is rounded
}

// exp_of_in_range scales the table entry by 2^(k >> L) before the last multiply-add; with a fused
// multiply-add the result must be the bits of scaling after it (exp_mantissa, then add_exponent)
// wherever it is used. Without one the product rounds first, at the scaled exponent, and the
// two may differ in the last place (both within the contract, which the tests below check).
template <class Arch, class T, int L>
void check_scaled_table_bits(long count) {
    using V = batch<T, Arch>;
    if (!fused_multiply_add<V>()) {
        WARN("no fused multiply-add on " << Arch::name() << ": the pre-scaled table's bits are not compared");
        return;
    }
    using C = logitkit::detail::exp_constants<T>;
    constexpr std::size_t W = V::size;
    std::mt19937_64 gen(99);
    std::uniform_real_distribution<T> dist(C::fast_lo, C::fast_hi);
    long differ = 0;
    for (long i = 0; i < count; ++i) {
        T d[W], e[W], scaled[W], after[W];
        for (std::size_t k = 0; k < W; ++k) {
            d[k] = dist(gen);
            e[k] = (i % 2 == 0) ? T(0) : static_cast<T>((std::nextafter(d[k], T(0)) - d[k]) * T(0.3));
        }
        const V dv = V::load_unaligned(d), ev = V::load_unaligned(e);
        V t;
        logitkit::detail::simd::store(scaled, logitkit::detail::exp_of_in_range<V, L>(dv, ev));
        const V y = logitkit::detail::exp_mantissa<L>(dv, ev, t);
        logitkit::detail::simd::store(after, logitkit::detail::simd::add_exponent<L>(y, t));
        for (std::size_t k = 0; k < W; ++k) differ += std::memcmp(&scaled[k], &after[k], sizeof(T)) != 0;
    }
    CHECK(differ == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("the pre-scaled table gives the bits of scaling the result", "[exp]", float, double) {
    check_scaled_table_bits<default_arch, TestType, 0>(20000);
    check_scaled_table_bits<default_arch, TestType, 3>(20000);
    check_scaled_table_bits<default_arch, TestType, 4>(20000);
    check_scaled_table_bits<scalar_arch, TestType, 0>(20000);
    check_scaled_table_bits<scalar_arch, TestType, 4>(20000);
}

TEMPLATE_TEST_CASE("exp_of meets its ulp bound over its whole range", "[exp]", float, double) {
    const bool is_float = std::is_same<TestType, float>::value;
    const TestType lo = is_float ? TestType(-110) : TestType(-760);
    const TestType hi = is_float ? TestType(90) : TestType(712);
    SECTION("compiled architecture") { check_exp_contract<default_arch, TestType>(lo, hi, 200000); }
    SECTION("scalar path") { check_exp_contract<scalar_arch, TestType>(lo, hi, 200000); }
    SECTION("near zero") { check_exp_contract<default_arch, TestType>(TestType(-1), TestType(1), 100000); }
    SECTION("subnormal results") {
        check_exp_contract<default_arch, TestType>(is_float ? TestType(-104) : TestType(-746),
                                                   is_float ? TestType(-87) : TestType(-707), 100000);
    }
}

TEMPLATE_TEST_CASE("exp_of handles zero, infinities, NaN and huge magnitudes", "[exp]", float, double) {
    check_exp_specials<default_arch, TestType>();
    check_exp_specials<scalar_arch, TestType>();
    check_exp_specials<default_arch, TestType, 0>();
    check_exp_specials<default_arch, TestType, 3>();
    check_exp_specials<default_arch, TestType, 4>();
}

TEMPLATE_TEST_CASE("exp_of meets its bound with every table size", "[exp]", float, double) {
    constexpr int bits = logitkit::detail::exp_table_bits<batch<TestType, default_arch>>;
    INFO("this architecture's table: 2^" << bits);
    const bool is_float = std::is_same<TestType, float>::value;
    const TestType lo = is_float ? TestType(-110) : TestType(-760);
    const TestType hi = is_float ? TestType(90) : TestType(712);
    SECTION("no table") { check_exp_contract<default_arch, TestType, 0>(lo, hi, 100000); }
    SECTION("8 entries") { check_exp_contract<default_arch, TestType, 3>(lo, hi, 100000); }
    SECTION("16 entries") { check_exp_contract<default_arch, TestType, 4>(lo, hi, 100000); }
    SECTION("8 entries, scalar") { check_exp_contract<scalar_arch, TestType, 3>(lo, hi, 100000); }
    SECTION("16 entries, near zero") { check_exp_contract<default_arch, TestType, 4>(TestType(-1), TestType(1), 100000); }
    SECTION("8 entries, subnormal results") {
        check_exp_contract<default_arch, TestType, 3>(is_float ? TestType(-104) : TestType(-746),
                                                      is_float ? TestType(-87) : TestType(-707), 100000);
    }
}

namespace {

// exp_of_in_range(d), the form without a correction (exp_mode::unshifted), over its whole fast
// range and densely over the unshifted lines' range [-limit, limit]; a NaN lane gives NaN.
template <class Arch, class T, int L = logitkit::detail::exp_table_bits<batch<T, Arch>>>
void check_uncorrected_exp(T lo, T hi, long count) {
    using V = batch<T, Arch>;
    constexpr std::size_t W = V::size;
    std::mt19937_64 gen(777);
    std::uniform_real_distribution<T> dist(lo, hi);
    exp_errors<T> errors;
    for (long i = 0; i < count; ++i) {
        T d[W], out[W];
        for (std::size_t k = 0; k < W; ++k) d[k] = dist(gen);
        logitkit::detail::simd::store(out, logitkit::detail::exp_of_in_range<V, L>(V::load_unaligned(d)));
        for (std::size_t k = 0; k < W; ++k) errors.add(d[k], out[k], std::exp(static_cast<long double>(d[k])));
    }
    errors.check();
    T out[W];
    logitkit::detail::simd::store(out, logitkit::detail::exp_of_in_range<V, L>(V(std::numeric_limits<T>::quiet_NaN())));
    CHECK(std::isnan(out[0]));
}

}  // namespace

TEMPLATE_TEST_CASE("exp_of_in_range without a correction meets the same ulp bound", "[exp]", float, double) {
    using C = logitkit::detail::exp_constants<TestType>;
    SECTION("compiled architecture, fast range") { check_uncorrected_exp<default_arch, TestType>(C::fast_lo, C::fast_hi, 200000); }
    SECTION("compiled architecture, unshifted lines") {
        check_uncorrected_exp<default_arch, TestType>(-C::unshifted_limit, C::unshifted_limit, 200000);
    }
    SECTION("scalar path") { check_uncorrected_exp<scalar_arch, TestType>(C::fast_lo, C::fast_hi, 200000); }
    SECTION("no table") { check_uncorrected_exp<default_arch, TestType, 0>(C::fast_lo, C::fast_hi, 100000); }
    SECTION("8 entries") { check_uncorrected_exp<default_arch, TestType, 3>(C::fast_lo, C::fast_hi, 100000); }
    SECTION("16 entries") { check_uncorrected_exp<default_arch, TestType, 4>(C::fast_lo, C::fast_hi, 100000); }
}

namespace {

// exp_of(d), the one-argument form, against exp_of(d, 0): the same contract over the whole range,
// specials included.
template <class Arch, class T>
void check_exp_of_without_correction(long count) {
    using V = batch<T, Arch>;
    constexpr std::size_t W = V::size;
    constexpr T inf = std::numeric_limits<T>::infinity();
    const bool is_float = std::is_same<T, float>::value;
    std::mt19937_64 gen(4242);
    std::uniform_real_distribution<T> dist(is_float ? T(-110) : T(-760), is_float ? T(90) : T(712));
    const T specials[] = {T(0), -T(0), -inf, inf, std::numeric_limits<T>::quiet_NaN(), T(-1e30), T(1e30),
                          std::numeric_limits<T>::denorm_min()};
    exp_errors<T> errors;
    for (long i = 0; i < count; ++i) {
        T d[W], out[W];
        for (std::size_t k = 0; k < W; ++k) d[k] = (i % 50 == 0 && k == 0) ? specials[(i / 50) % 8] : dist(gen);
        logitkit::detail::simd::store(out, logitkit::detail::exp_of(V::load_unaligned(d)));
        for (std::size_t k = 0; k < W; ++k) {
            if (std::isnan(d[k]))
                CHECK(std::isnan(out[k]));
            else
                errors.add(d[k], out[k], std::exp(static_cast<long double>(d[k])));
        }
    }
    errors.check();
}

}  // namespace

namespace {

// A lane's exponential does not depend on the other lanes of its batch: a batch holding a lane out
// of the fast range takes the wide-range path, which must give the in-range lanes the fast path's
// bits (as for the pre-scaled table, given a fused multiply-add).
template <class Arch, class T>
void check_lane_independence(long count) {
    using V = batch<T, Arch>;
    constexpr std::size_t W = V::size;
    if (W == 1) return;
    if (!fused_multiply_add<V>()) {
        WARN("no fused multiply-add on " << Arch::name() << ": lane independence is not compared");
        return;
    }
    using C = logitkit::detail::exp_constants<T>;
    std::mt19937_64 gen(31);
    std::uniform_real_distribution<T> dist(C::fast_lo, C::fast_hi);
    const T odd[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(), T(-1e30), T(1e30),
                     C::fast_lo - T(3)};
    long differ = 0;
    for (long i = 0; i < count; ++i) {
        T d[W], e[W], alone[W], mixed[W], alone_e[W], mixed_e[W];
        for (std::size_t k = 0; k < W; ++k) {
            d[k] = dist(gen);
            e[k] = static_cast<T>((std::nextafter(d[k], T(0)) - d[k]) * T(0.3));
        }
        logitkit::detail::simd::store(alone, logitkit::detail::exp_of(V::load_unaligned(d)));
        logitkit::detail::simd::store(alone_e, logitkit::detail::exp_of(V::load_unaligned(d), V::load_unaligned(e)));
        const std::size_t at = static_cast<std::size_t>(i) % W;
        d[at] = odd[static_cast<std::size_t>(i) % 5];
        logitkit::detail::simd::store(mixed, logitkit::detail::exp_of(V::load_unaligned(d)));
        logitkit::detail::simd::store(mixed_e, logitkit::detail::exp_of(V::load_unaligned(d), V::load_unaligned(e)));
        for (std::size_t k = 0; k < W; ++k)
            if (k != at)
                differ += (std::memcmp(&alone[k], &mixed[k], sizeof(T)) != 0) + (std::memcmp(&alone_e[k], &mixed_e[k], sizeof(T)) != 0);
    }
    CHECK(differ == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("a lane's exponential does not depend on the other lanes of its batch", "[exp]", float, double) {
    check_lane_independence<default_arch, TestType>(20000);
}

TEMPLATE_TEST_CASE("exp_of(d) without a correction meets the contract over the whole range", "[exp]", float, double) {
    SECTION("compiled architecture") { check_exp_of_without_correction<default_arch, TestType>(200000); }
    SECTION("scalar path") { check_exp_of_without_correction<scalar_arch, TestType>(100000); }
}

#include <logitkit/detail/log.hpp>

namespace {

template <class Arch>
void check_log_normal(long count) {
    using V = batch<double, Arch>;
    constexpr std::size_t W = V::size;
    std::mt19937_64 gen(2026);
    std::uniform_real_distribution<double> exponent(-1021.0, 1023.0), near_one(-1e-3, 1e-3);
    const double edges[] = {1.0, 2.0, 0.5, std::numeric_limits<double>::min(), std::numeric_limits<double>::max(),
                            std::nextafter(1.0, 2.0), std::nextafter(1.0, 0.0), std::sqrt(2.0), std::nextafter(std::sqrt(2.0), 2.0)};
    long double worst = 0;
    double worst_at = 0;
    for (long i = 0; i < count; ++i) {
        double s[W], out[W];
        for (std::size_t k = 0; k < W; ++k) {
            const long j = i * static_cast<long>(W) + static_cast<long>(k);
            // Every third lane near 1, where log(s) is small and only its relative error counts.
            s[k] = j < 9 ? edges[j] : j % 3 == 0 ? 1.0 + near_one(gen) : std::exp2(exponent(gen));
        }
        logitkit::detail::simd::store(out, logitkit::detail::log_normal(V::load_unaligned(s)));
        for (std::size_t k = 0; k < W; ++k) {
            const long double ref = std::log(static_cast<long double>(s[k]));
            const long double u = ref == 0 ? (out[k] == 0 ? 0 : std::numeric_limits<long double>::infinity()) : ulps(out[k], ref);
            if (u > worst) {
                worst = u;
                worst_at = s[k];
            }
        }
    }
    INFO("worst " << static_cast<double>(worst) << " ulp at s = " << worst_at);
    CHECK(worst <= 1.5L);
}

}  // namespace

TEST_CASE("log_normal meets its 1.5 ulp bound over the normal doubles", "[exp][log]") {
    SECTION("compiled architecture") { check_log_normal<default_arch>(300000); }
    SECTION("scalar path") { check_log_normal<scalar_arch>(30000); }
}

namespace {

// exp_of_in_range of a simd::pack (the batches a pass takes through the exponential together)
// gives each batch the bits exp_of_in_range gives it alone, over the unshifted lines' range; and
// exp_of of a pack the bits exp_of gives each batch alone, over the whole range: some packs hold
// a lane out of the fast range (NaN, an infinity, a result that is subnormal, 0 or +inf).
template <class Arch, class T>
void check_pack_bits(long count) {
    using V = batch<T, Arch>;
    using P = logitkit::detail::simd::pack<V, 4>;
    constexpr std::size_t W = V::size;
    using C = logitkit::detail::exp_constants<T>;
    const T specials[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                          -std::numeric_limits<T>::infinity(), C::fast_lo - T(3), C::zero_below - T(1),
                          C::fast_hi + T(0.5), C::clamp_hi + T(1)};
    std::mt19937_64 gen(77);
    std::uniform_real_distribution<T> dist(-C::unshifted_limit, C::unshifted_limit);
    std::uniform_real_distribution<T> wide(C::fast_lo, T(0));
    // Whether f of a pack of the 4 W values at d gives each batch the bits f gives it alone.
    const auto same_bits = [](const T* d, auto f) {
        P p;
        T alone[4 * W], together[4 * W];
        for (int k = 0; k < 4; ++k) {
            p.v[k] = V::load_unaligned(d + k * W);
            logitkit::detail::simd::store(alone + k * W, f(p.v[k]));
        }
        const P e = f(p);
        for (int k = 0; k < 4; ++k) logitkit::detail::simd::store(together + k * W, e.v[k]);
        return std::memcmp(alone, together, sizeof(alone)) == 0;
    };
    long differ = 0, differ_checked = 0, slow = 0;
    for (long i = 0; i < count; ++i) {
        T d[4 * W];
        for (T& v : d) v = dist(gen);
        differ += !same_bits(d, [](const auto& v) { return logitkit::detail::exp_of_in_range(v); });

        for (T& v : d) v = wide(gen);
        if (i % 3 == 0) {
            d[gen() % (4 * W)] = specials[gen() % std::size(specials)];
            ++slow;
        }
        differ_checked += !same_bits(d, [](const auto& v) { return logitkit::detail::exp_of(v); });
    }
    CHECK(slow > count / 4);
    CHECK(differ == 0);
    CHECK(differ_checked == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("a pack of batches gets from the exponential the bits each batch gets alone", "[exp]", float,
                   double) {
    SECTION("compiled architecture") { check_pack_bits<default_arch, TestType>(20000); }
    SECTION("scalar path") { check_pack_bits<scalar_arch, TestType>(20000); }
}
