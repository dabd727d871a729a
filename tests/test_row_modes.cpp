// The row stages' exp modes (detail/stages.hpp): a row's range decides whether exp(x - m) may skip
// the exponential's range test (in_range) and recover x - m's rounding with Fast2Sum instead of
// TwoSum (in_binade). Checked here: the mode each kind of row gets, and that exp_sum in that mode
// stores every exp(x - m) within the exponential's 2 ulp contract of the exact value, on rows and
// on column blocks, on this binary's SIMD path and on scalar_arch.
#include "test_support.hpp"

#include <logitkit/detail/ops.hpp>

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace {

namespace lkd = logitkit::detail;
using lk_test::rng;
using lk_test::ulps;
using lk_test::dense;
using lk_test::index_t;
using lk_test::ld;

enum class row_kind { one_binade, spread, huge_spread, with_inf, with_nan, negative_binade };

template <class T>
std::vector<T> make_row(row_kind k, std::size_t n, rng& r) {
    std::vector<T> x(n);
    for (auto& v : x) {
        switch (k) {
            case row_kind::one_binade: v = static_cast<T>(r.uniform(-3.9, 3.9)); break;  // m ~ 3.9 after the fix below
            case row_kind::spread: v = static_cast<T>(r.uniform(-60.0, 0.7)); break;
            case row_kind::huge_spread:  // beyond the fast range of T's exponential
                v = static_cast<T>(r.uniform(3.0 * lkd::exp_constants<T>::fast_lo, 1.0));
                break;
            case row_kind::with_inf:
            case row_kind::with_nan: v = static_cast<T>(r.uniform(-5.0, 5.0)); break;
            case row_kind::negative_binade: v = static_cast<T>(r.uniform(-1.99, -1.01)); break;
        }
    }
    if (k == row_kind::one_binade) x[n / 2] = T(3.95);
    if (k == row_kind::with_inf) x[n / 3] = -std::numeric_limits<T>::infinity();
    if (k == row_kind::with_nan) x[n / 3] = std::numeric_limits<T>::quiet_NaN();
    return x;
}

template <class Arch, class T>
void check_row_modes() {
    rng r(lk_test::seed_for(91));
    struct expectation {
        row_kind kind;
        lkd::exp_mode mode;
    };
    const expectation cases[] = {
        {row_kind::one_binade, lkd::exp_mode::in_binade},   {row_kind::negative_binade, lkd::exp_mode::in_binade},
        {row_kind::spread, lkd::exp_mode::in_range},        {row_kind::huge_spread, lkd::exp_mode::checked},
        {row_kind::with_inf, lkd::exp_mode::checked},       {row_kind::with_nan, lkd::exp_mode::checked},
    };
    for (const auto& c : cases) {
        for (std::size_t n : {1u, 7u, 8u, 33u, 1000u}) {
            const auto x = make_row<T>(c.kind, n, r);
            const auto range = lkd::row::reduce_range<Arch>(x.data(), static_cast<logitkit::index_type>(n));
            const T m = range.max;
            const lkd::exp_mode mode = lkd::exp_mode_for(range, m, lkd::identity_input{});
            INFO("row kind " << static_cast<int>(c.kind) << ", n = " << n << ", max " << range.max << ", min "
                             << range.min);
            std::vector<T> y(n);
            const auto sum = [&] {
                return lkd::row::exp_sum<Arch, true>(x.data(), y.data(), static_cast<logitkit::index_type>(n), m,
                                                     lkd::identity_input{}, mode);
            };
            if (c.kind == row_kind::with_nan) {
                // The range may drop a NaN (and then picks a faster mode): in any mode the sum,
                // and so every output of the row, is NaN.
                CHECK(std::isnan(sum()));
                continue;
            }
            // A row of one element has no spread: every kind but NaN / inf is then in_binade.
            if (n > 1) CHECK(mode == c.mode);
            if (c.kind == row_kind::with_inf) continue;
            const double s = sum();
            long double worst = 0, ref_sum = 0;
            for (std::size_t i = 0; i < n; ++i) {
                const long double ref = std::exp(static_cast<long double>(x[i]) - static_cast<long double>(m));
                ref_sum += ref;
                if (ref >= std::numeric_limits<T>::min()) worst = std::max(worst, ulps(y[i], ref));
            }
            CHECK(worst <= 2.0L);
            CHECK(std::fabs(static_cast<long double>(s) - ref_sum) <= 1e-6L * ref_sum);
        }
    }
}

template <class Arch, class T>
void check_column_modes() {
    using V = lkd::batch<T, Arch>;
    constexpr int K = 4;
    constexpr logitkit::index_type W = V::size;
    constexpr logitkit::index_type cols = K * W;
    rng r(lk_test::seed_for(92));
    for (row_kind kind : {row_kind::one_binade, row_kind::spread, row_kind::huge_spread}) {
        const logitkit::index_type n = 37;
        std::vector<T> x(static_cast<std::size_t>(n * cols));
        for (logitkit::index_type j = 0; j < cols; ++j) {
            const auto col = make_row<T>(kind, static_cast<std::size_t>(n), r);
            for (logitkit::index_type i = 0; i < n; ++i) x[static_cast<std::size_t>(i * cols + j)] = col[static_cast<std::size_t>(i)];
        }
        T m[cols];
        double sums[cols];
        const lkd::exp_mode mode = lkd::col::reduce_range<Arch, K>(x.data(), cols, n, m, lkd::identity_input{});
        INFO("column kind " << static_cast<int>(kind));
        CHECK(mode == (kind == row_kind::one_binade ? lkd::exp_mode::in_binade
                       : kind == row_kind::spread   ? lkd::exp_mode::in_range
                                                    : lkd::exp_mode::checked));
        std::vector<T> y(x.size());
        lkd::col::exp_sum<Arch, K, true>(x.data(), cols, y.data(), cols, n, m, lkd::identity_input{}, sums, mode);
        long double worst = 0;
        for (logitkit::index_type j = 0; j < cols; ++j)
            for (logitkit::index_type i = 0; i < n; ++i) {
                const auto at = static_cast<std::size_t>(i * cols + j);
                const long double ref = std::exp(static_cast<long double>(x[at]) - static_cast<long double>(m[j]));
                if (ref >= std::numeric_limits<T>::min()) worst = std::max(worst, ulps(y[at], ref));
            }
        CHECK(worst <= 2.0L);

        // Allowed to, a block whose every column is within the unshifted limit goes unshifted
        // (m = 0, exp(x) itself); a block with a column beyond it keeps the modes above.
        T m0[cols];
        const lkd::exp_mode unshifted = lkd::col::reduce_range<Arch, K, true>(x.data(), cols, n, m0, lkd::identity_input{});
        CHECK(unshifted == (kind == row_kind::huge_spread ? mode : lkd::exp_mode::unshifted));
        if (unshifted != lkd::exp_mode::unshifted) continue;
        for (logitkit::index_type j = 0; j < cols; ++j) CHECK(m0[j] == T(0));
        lkd::col::exp_sum<Arch, K, true>(x.data(), cols, y.data(), cols, n, m0, lkd::identity_input{}, sums, unshifted);
        worst = 0;
        for (std::size_t at = 0; at < x.size(); ++at)
            worst = std::max(worst, ulps(y[at], std::exp(static_cast<long double>(x[at]))));
        CHECK(worst <= 2.0L);
    }
}

}  // namespace

TEMPLATE_TEST_CASE("a row's range picks the exp mode, and exp_sum in that mode meets the exp contract", "[stages]",
                   float, double) {
    SECTION("compiled architecture") { check_row_modes<lkd::default_arch, TestType>(); }
    SECTION("scalar path") { check_row_modes<lkd::scalar_arch, TestType>(); }
}

TEMPLATE_TEST_CASE("a column block's range picks the exp mode, and exp_sum in that mode meets the exp contract",
                   "[stages]", float, double) {
    SECTION("compiled architecture") { check_column_modes<lkd::default_arch, TestType>(); }
    SECTION("scalar path") { check_column_modes<lkd::scalar_arch, TestType>(); }
}

TEMPLATE_TEST_CASE("lane sums in registers equal the pairwise sum of the lanes in double", "[row_modes]", float,
                   double) {
    using T = TestType;
    using V = lkd::batch<T, lkd::default_arch>;
    rng r(8);
    const T pick[] = {T(0), -T(0), T(1e30), T(-1e30), std::numeric_limits<T>::denorm_min(),
                      std::numeric_limits<T>::max(), std::numeric_limits<T>::infinity()};
    long differ = 0;
    for (int i = 0; i < 20000; ++i) {
        T lanes[V::size];
        for (auto& l : lanes) l = r.chance(0.1) ? pick[r.below(7)] : static_cast<T>(r.uniform(-1e3, 1e3));
        double d[V::size];
        for (std::size_t k = 0; k < V::size; ++k) d[k] = static_cast<double>(lanes[k]);
        for (std::size_t w = V::size / 2; w > 0; w /= 2)
            for (std::size_t k = 0; k < w; ++k) d[k] += d[k + w];
        const double got = lkd::simd::lanes_sum(V::load_unaligned(lanes));
        differ += std::memcmp(&got, &d[0], sizeof got) != 0 && !(std::isnan(got) && std::isnan(d[0]));
    }
    CHECK(differ == 0);
}

namespace {

// A short line's stored exponentials e (lanes of B batches) against exp(x - m): within the
// contract for the n elements of the line, 0 past it. Returns their sum.
template <class T>
long double check_short_exps(const std::vector<T>& x, logitkit::index_type n, T m, const T* e, logitkit::index_type lanes) {
    long double worst = 0, stored = 0;
    for (logitkit::index_type i = 0; i < lanes; ++i) {
        if (i >= n) {
            CHECK(e[i] == T(0));
            continue;
        }
        const long double ref = std::exp(static_cast<long double>(x[static_cast<std::size_t>(i)]) - m);
        if (ref >= std::numeric_limits<T>::min()) worst = std::max(worst, ulps(e[i], ref));
        stored += e[i];
    }
    CHECK(worst <= 2.0L);
    return stored;
}

// The short-line kernels (stages.hpp): a line of n <= short_line_batches * W elements is held in
// B registers, B the fewest of 1, 2, 4, 8, 16 batches that hold it.
template <class Arch, class T, int B>
void check_short_line(logitkit::index_type n, row_kind kind, rng& r) {
    using V = lkd::batch<T, Arch>;
    constexpr logitkit::index_type W = V::size;
    auto x = make_row<T>(kind, static_cast<std::size_t>(n), r);
    x.resize(x.size() + W * B, T(7));  // past the line: must not change the results
    const auto l = lkd::row::shifted_exp_short<Arch, B>(x.data(), n, lkd::identity_input{});
    T e[W * B];
    for (int b = 0; b < B; ++b) lkd::simd::store(e + b * W, l.e[b]);
    INFO("n = " << n << ", B = " << B << ", row kind " << static_cast<int>(kind));
    const bool has_nan = kind == row_kind::with_nan, has_inf = kind == row_kind::with_inf;
    if (has_nan) {
        CHECK_FALSE(lkd::row::in_fast_range_short(l.v, l.shift.m));
        CHECK(std::isnan(l.sum));
        return;
    }
    T m = -std::numeric_limits<T>::infinity();
    for (logitkit::index_type i = 0; i < n; ++i) m = std::max(m, x[static_cast<std::size_t>(i)]);
    CHECK(l.shift.m == m);
    bool in_range = true;
    for (logitkit::index_type i = 0; i < n; ++i)
        in_range = in_range && static_cast<T>(x[static_cast<std::size_t>(i)] - m) >= lkd::exp_constants<T>::fast_lo;
    CHECK(lkd::row::in_fast_range_short(l.v, l.shift.m) == in_range);
    if (has_inf && n == 1) return;  // the line is just -inf: exp(-inf - -inf) is NaN
    const long double stored = check_short_exps(x, n, m, e, W * B);
    // Each lane's sum of the B batches is rounded log2(B) times, in T; the lanes are added in
    // double (once more rounded per level for double lanes).
    const int levels = B == 16 ? 4 : B == 8 ? 3 : B == 4 ? 2 : B == 2 ? 1 : 0;
    const int lane_levels = sizeof(T) == 8 ? static_cast<int>(std::log2(static_cast<double>(W))) : 0;
    const long double u = std::ldexp(1.0L, -std::numeric_limits<T>::digits);
    CHECK(std::fabs(static_cast<long double>(l.sum) - stored) <= (levels + lane_levels + 0.01L) * u * stored);

    std::vector<T> y(static_cast<std::size_t>(W * B + 1), T(-3));
    lkd::row::store_short(y.data(), n, l.e);
    for (logitkit::index_type i = 0; i <= W * B; ++i) {
        if (i < n)
            CHECK(y[static_cast<std::size_t>(i)] == e[i]);
        else
            CHECK(y[static_cast<std::size_t>(i)] == T(-3));
    }
}

template <class Arch, class T>
void check_short_lines() {
    using V = lkd::batch<T, Arch>;
    constexpr logitkit::index_type W = V::size;
    constexpr int most = lkd::row::short_line_batches<Arch, T>;
    rng r(lk_test::seed_for(93));
    CHECK_FALSE(lkd::row::with_short_line<Arch, T>(0, [](auto) {}));
    CHECK_FALSE(lkd::row::with_short_line<Arch, T>(most * W + 1, [](auto) {}));
    for (logitkit::index_type n = 1; n <= most * W; ++n) {
        int chosen = 0;
        CHECK(lkd::row::with_short_line<Arch, T>(n, [&](auto B) { chosen = decltype(B)::value; }));
        int fewest = 1;
        while (fewest * W < n) fewest *= 2;
        CHECK(chosen == fewest);
        for (row_kind kind : {row_kind::one_binade, row_kind::spread, row_kind::huge_spread, row_kind::with_inf,
                              row_kind::with_nan, row_kind::negative_binade}) {
            lkd::row::with_short_line<Arch, T>(n, [&](auto B) { check_short_line<Arch, T, decltype(B)::value>(n, kind, r); });
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("short lines in registers: B batches, exps within the contract, zero past n, the sum's roundings",
                   "[stages]", float, double) {
    if constexpr (lkd::row::short_line_batches<lkd::default_arch, TestType> == 0) {
        CHECK_FALSE(lkd::row::with_short_line<lkd::default_arch, TestType>(1, [](auto) {}));
    } else {
        check_short_lines<lkd::default_arch, TestType>();
    }
}

namespace {

// exp_mode::unshifted (stages.hpp, line_shift_for): a line whose every |in(x)| is at most
// unshifted_limit takes exp(in(x)) with no shift by its maximum.

template <class T>
std::vector<T> line_within(std::size_t n, T limit, rng& r) {
    std::vector<T> x(n);
    for (auto& v : x) v = static_cast<T>(r.uniform(-static_cast<double>(limit), static_cast<double>(limit)));
    // Both ends of the range, where the terms are largest and smallest.
    x[0] = limit;
    if (n > 1) x[n - 1] = -limit;
    return x;
}

template <class Arch, class T>
void check_unshifted_lines() {
    using C = lkd::exp_constants<T>;
    constexpr T limit = C::unshifted_limit;
    constexpr T inf = std::numeric_limits<T>::infinity();
    rng r(lk_test::seed_for(94));
    // A line of one element, or of equal elements, keeps its shift (its outputs are exact).
    for (std::size_t n : {1u, 2u, 37u}) {
        const std::vector<T> same(n, T(1.5));
        const auto sh = lkd::line_shift_for(lkd::row::reduce_range<Arch>(same.data(), static_cast<logitkit::index_type>(n)),
                                            lkd::identity_input{});
        CHECK(sh.mode != lkd::exp_mode::unshifted);
        CHECK(sh.m == T(1.5));
    }
    for (std::size_t n : {2u, 7u, 33u, 128u, 1000u, 4097u}) {
        INFO("n = " << n);
        const auto x = line_within<T>(n, limit, r);
        const auto idx = static_cast<logitkit::index_type>(n);
        const auto range = lkd::row::reduce_range<Arch>(x.data(), idx);
        const auto sh = lkd::line_shift_for(range, lkd::identity_input{});
        CHECK(sh.mode == lkd::exp_mode::unshifted);
        CHECK(sh.m == T(0));
        std::vector<T> y(n);
        const double s = lkd::row::exp_sum<Arch, true>(x.data(), y.data(), idx, sh.m, lkd::identity_input{}, sh.mode);
        long double worst = 0, ref_sum = 0;
        std::size_t moved = 0;  // elements whose bits depend on where they sit (a tail or not)
        for (std::size_t i = 0; i < n; ++i) {
            const long double ref = std::exp(static_cast<long double>(x[i]));
            ref_sum += ref;
            worst = std::max(worst, ulps(y[i], ref));
            T alone[lkd::batch<T, Arch>::size];
            lkd::simd::store(alone, lkd::exp_of_in_range(lkd::batch<T, Arch>(x[i])));
            moved += std::memcmp(&alone[0], &y[i], sizeof(T)) != 0;
        }
        CHECK(worst <= 2.0L);
        CHECK(moved == 0);
        CHECK(std::fabs(static_cast<long double>(s) - ref_sum) <= 1e-6L * ref_sum);
        // log_softmax's offset: a + b is log(s), a the nearest T; float: a + b within about twice
        // float's digits of it (log in double, split), double: within 4 ulp of 1 (one Newton step).
        const auto o = lkd::log_offset_of(sh, s);
        const long double l = std::log(static_cast<long double>(s));
        CHECK(o.a == static_cast<T>(std::log(s)));
        const long double allowed =
            std::is_same<T, float>::value
                ? std::ldexp(1.0L, -2 * std::numeric_limits<T>::digits + 4) * std::max(1.0L, std::fabs(l))
                : std::ldexp(1.0L, -50);
        CHECK(std::fabs(static_cast<long double>(o.a) + o.b - l) <= allowed);

        // Just past the limit on either side, an infinity, a NaN: shifted (a NaN may pass
        // unseen, and then the sum is NaN).
        for (T bad : {std::nextafter(limit, inf), -std::nextafter(limit, inf), inf, -inf}) {
            auto z = x;
            z[n / 2] = bad;
            const auto zs = lkd::line_shift_for(lkd::row::reduce_range<Arch>(z.data(), idx), lkd::identity_input{});
            INFO("with " << bad);
            CHECK(zs.mode != lkd::exp_mode::unshifted);
            if (std::isfinite(bad)) CHECK(zs.m == std::max(bad, limit));
        }
        auto z = x;
        z[n / 2] = std::numeric_limits<T>::quiet_NaN();
        const auto zs = lkd::line_shift_for(lkd::row::reduce_range<Arch>(z.data(), idx), lkd::identity_input{});
        CHECK(std::isnan(lkd::row::exp_sum<Arch, false>(z.data(), static_cast<T*>(nullptr), idx, zs.m,
                                                         lkd::identity_input{}, zs.mode)));
        // The limit applies to in(x): x / 0.5 doubles every element past it, x / 2 halves it.
        const auto halved = lkd::line_shift_for(range, lkd::divide_input<T>{T(2)});
        CHECK(halved.mode == lkd::exp_mode::unshifted);
        const auto doubled = lkd::line_shift_for(range, lkd::divide_input<T>{T(0.5)});
        CHECK(doubled.mode != lkd::exp_mode::unshifted);
        CHECK(doubled.m == T(2) * limit);
    }
}

// The short-line form: unshifted when every |v| is at most the limit, else shifted by the max.
template <class Arch, class T, int B>
void check_unshifted_short_line(logitkit::index_type n, bool beyond, rng& r) {
    using V = lkd::batch<T, Arch>;
    constexpr logitkit::index_type W = V::size;
    constexpr T limit = lkd::exp_constants<T>::unshifted_limit;
    auto x = line_within<T>(static_cast<std::size_t>(n), limit, r);
    if (beyond) x[static_cast<std::size_t>(n / 2)] = std::nextafter(limit, std::numeric_limits<T>::infinity());
    x.resize(x.size() + W * B, T(1e30));  // past the line: never read into the results
    const auto l = lkd::row::shifted_exp_short<Arch, B, true>(x.data(), n, lkd::identity_input{});
    INFO("n = " << n << ", B = " << B << (beyond ? ", one element past the limit" : ""));
    CHECK((l.shift.mode == lkd::exp_mode::unshifted) == !beyond);
    const T m = beyond ? *std::max_element(x.begin(), x.begin() + n) : T(0);
    CHECK(l.shift.m == m);
    T e[W * B];
    for (int b = 0; b < B; ++b) lkd::simd::store(e + b * W, l.e[b]);
    const long double stored = check_short_exps(x, n, m, e, W * B);
    CHECK(std::fabs(static_cast<long double>(l.sum) - stored) <= 1e-6L * stored);
}

template <class Arch, class T>
void check_unshifted_short_lines() {
    constexpr logitkit::index_type W = lkd::batch<T, Arch>::size;
    constexpr int most = lkd::row::short_line_batches<Arch, T>;
    rng r(lk_test::seed_for(95));
    for (logitkit::index_type n = 2; n <= most * W; ++n)
        for (bool beyond : {false, true})
            lkd::row::with_short_line<Arch, T>(n, [&](auto B) { check_unshifted_short_line<Arch, T, decltype(B)::value>(n, beyond, r); });
}

}  // namespace

TEMPLATE_TEST_CASE("lines within the unshifted limit take exp(x) unshifted, within the exp contract", "[stages]", float,
                   double) {
    SECTION("compiled architecture") { check_unshifted_lines<lkd::default_arch, TestType>(); }
    SECTION("scalar path") { check_unshifted_lines<lkd::scalar_arch, TestType>(); }
    SECTION("short lines") {
        if constexpr (lkd::row::short_line_batches<lkd::default_arch, TestType> > 0)
            check_unshifted_short_lines<lkd::default_arch, TestType>();
    }
}

namespace {

// row::unshifted_exp_sum takes a line's exponentials unshifted before its range is known, and
// must answer exactly when line_shift_for<true> on reduce_range's range would have chosen
// exp_mode::unshifted (and the sum is not NaN), then with exp_sum's bits for the sum and the
// stored exponentials. Lines: within the limit, all equal, and with one element past the limit,
// NaN or an infinity at the start, in the middle or at the end; with and without a temperature
// that moves in(x) across the limit; lengths with tails, and past one line_piece.
template <class Arch, class T, class In>
void check_unshifted_first_line(const std::vector<T>& x, In in, const std::string& what) {
    const auto n = static_cast<logitkit::index_type>(x.size());
    const lkd::line_shift<T> sh = lkd::line_shift_for<true>(lkd::row::reduce_range<Arch>(x.data(), n), in);
    std::vector<T> y_ref(x.size()), y(x.size());
    const double ref = lkd::row::exp_sum<Arch, true, lkd::exp_mode::unshifted>(x.data(), y_ref.data(), n, T(0), in);
    double sum = 0;
    const bool took = lkd::row::unshifted_exp_sum<Arch, true>(x.data(), y.data(), n, in, sum);
    INFO(what << ", n = " << n);
    CHECK(took == (sh.mode == lkd::exp_mode::unshifted && !std::isnan(ref)));
    if (!took) return;
    CHECK(std::memcmp(&sum, &ref, sizeof sum) == 0);
    CHECK(std::memcmp(y.data(), y_ref.data(), x.size() * sizeof(T)) == 0);
}

template <class Arch, class T>
void check_unshifted_first() {
    constexpr T limit = lkd::exp_constants<T>::unshifted_limit;
    rng r(lk_test::seed_for(98));
    for (index_t n : {index_t(2), index_t(3), index_t(17), index_t(64), index_t(100), index_t(129), index_t(1000),
                      index_t(4097), lkd::line_piece + 33}) {
        const auto size = static_cast<std::size_t>(n);
        std::vector<T> base(size);
        for (auto& v : base) v = static_cast<T>(r.uniform(-20.0, 20.0));
        for (const T odd : {std::nextafter(limit, T(1000)), -std::nextafter(limit, T(1000)), T(3 * limit),
                            std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                            -std::numeric_limits<T>::infinity()}) {
            for (const std::size_t at : {std::size_t(0), size / 2, size - 1}) {
                auto x = base;
                x[at] = odd;
                check_unshifted_first_line<Arch>(x, lkd::identity_input{}, "one element " + std::to_string(odd) +
                                                                              " at " + std::to_string(at));
            }
        }
        check_unshifted_first_line<Arch>(base, lkd::identity_input{}, "within the limit");
        check_unshifted_first_line<Arch>(std::vector<T>(size, T(2.5)), lkd::identity_input{}, "all equal");
        auto edge = base;
        edge[0] = limit;
        edge[size - 1] = -limit;
        check_unshifted_first_line<Arch>(edge, lkd::identity_input{}, "at the limit");
        for (const T t : {T(0.25), T(2), T(0.5)})
            check_unshifted_first_line<Arch>(edge, lkd::divide_input<T>{t}, "at the limit, temperature " + std::to_string(t));
    }
}

// The same for a block of K batches of columns (col::unshifted_exp_sum) against col::reduce_range
// and col::exp_sum: the block is taken exactly when every column would be unshifted, with the
// same bits. Rows padded, so that the stride is not the block's width.
template <class Arch, int K, class T, class In>
void check_unshifted_first_block(const std::vector<T>& x, index_t n, index_t stride, In in, const std::string& what) {
    constexpr index_t lanes = lkd::block_lanes<T, Arch, K>;
    std::vector<T> m_ref(lanes), m(lanes, T(7)), y_ref(x.size()), y(x.size());
    std::vector<double> ref(lanes), sums(lanes);
    std::vector<T> max_ref(lanes), max(lanes);
    const lkd::exp_mode mode =
        lkd::col::reduce_range<Arch, K, true>(x.data(), stride, n, m_ref.data(), in, max_ref.data());
    lkd::col::exp_sum<Arch, K, true, lkd::exp_mode::unshifted>(x.data(), stride, y_ref.data(), stride, n,
                                                               m_ref.data(), in, ref.data());
    INFO(what << ", n = " << n << ", " << lanes << " columns");
    const bool expected =
        mode == lkd::exp_mode::unshifted && std::none_of(ref.begin(), ref.end(), [](double v) { return std::isnan(v); });
    // Without and with the columns' maxima (cross-entropy's blocks take them).
    for (const bool maxima : {false, true}) {
        INFO((maxima ? "with" : "without") << " the maxima");
        std::fill(m.begin(), m.end(), T(7));
        const bool took =
            maxima ? lkd::col::unshifted_exp_sum<Arch, K, true, true>(x.data(), stride, y.data(), stride, n, m.data(),
                                                                      in, sums.data(), max.data())
                   : lkd::col::unshifted_exp_sum<Arch, K, true>(x.data(), stride, y.data(), stride, n, m.data(), in,
                                                                sums.data());
        CHECK(took == expected);
        if (!took) continue;
        CHECK(std::memcmp(sums.data(), ref.data(), sums.size() * sizeof(double)) == 0);
        CHECK(std::all_of(m.begin(), m.end(), [](T v) { return v == T(0); }));
        if (maxima) CHECK(std::memcmp(max.data(), max_ref.data(), max.size() * sizeof(T)) == 0);
        for (index_t r = 0; r < n; ++r)
            CHECK(std::memcmp(y.data() + r * stride, y_ref.data() + r * stride,
                              static_cast<std::size_t>(lanes) * sizeof(T)) == 0);
    }
}

template <class Arch, int K, class T>
void check_unshifted_first_blocks() {
    constexpr T limit = lkd::exp_constants<T>::unshifted_limit;
    constexpr index_t lanes = lkd::block_lanes<T, Arch, K>, stride = lanes + 3;
    rng r(lk_test::seed_for(99));
    for (index_t n : {index_t(2), index_t(3), index_t(8), index_t(9), index_t(17), index_t(100)}) {
        std::vector<T> base(static_cast<std::size_t>(n * stride));
        for (auto& v : base) v = static_cast<T>(r.uniform(-20.0, 20.0));
        for (const T odd : {std::nextafter(limit, T(1000)), -std::nextafter(limit, T(1000)), T(3 * limit),
                            std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                            -std::numeric_limits<T>::infinity()}) {
            for (const index_t row : {index_t(0), n / 2, n - 1})
                for (const index_t col : {index_t(0), lanes - 1}) {
                    auto x = base;
                    x[static_cast<std::size_t>(row * stride + col)] = odd;
                    check_unshifted_first_block<Arch, K>(x, n, stride, lkd::identity_input{},
                                                         "one element " + std::to_string(odd) + " at (" +
                                                             std::to_string(row) + ", " + std::to_string(col) + ")");
                }
        }
        check_unshifted_first_block<Arch, K>(base, n, stride, lkd::identity_input{}, "within the limit");
        auto equal = base;
        for (index_t row = 0; row < n; ++row) equal[static_cast<std::size_t>(row * stride + lanes / 2)] = T(2.5);
        check_unshifted_first_block<Arch, K>(equal, n, stride, lkd::identity_input{}, "one column all equal");
        // Equal down to the last row: the verdict's comparison with the first row must reach it.
        for (index_t row = 0; row + 1 < n; ++row) equal[static_cast<std::size_t>(row * stride + lanes - 1)] = T(-3);
        equal[static_cast<std::size_t>(lanes / 2)] = T(1);
        check_unshifted_first_block<Arch, K>(equal, n, stride, lkd::identity_input{},
                                             "one column equal but in its last row");
        auto edge = base;
        edge[0] = limit;
        edge[static_cast<std::size_t>((n - 1) * stride + lanes - 1)] = -limit;
        check_unshifted_first_block<Arch, K>(edge, n, stride, lkd::identity_input{}, "at the limit");
        for (const T t : {T(0.25), T(2), T(0.5)})
            check_unshifted_first_block<Arch, K>(edge, n, stride, lkd::divide_input<T>{t},
                                                 "at the limit, temperature " + std::to_string(t));
    }
}

}  // namespace

TEMPLATE_TEST_CASE("a line's unshifted exponentials taken before its range give exp_sum's bits, or give way",
                   "[stages]", float, double) {
    SECTION("this binary's SIMD path") { check_unshifted_first<lkd::default_arch, TestType>(); }
    SECTION("scalar path") { check_unshifted_first<lkd::scalar_arch, TestType>(); }
}

TEMPLATE_TEST_CASE("a column block's unshifted exponentials taken before its range give exp_sum's bits, or give way",
                   "[stages]", float, double) {
    SECTION("this binary's SIMD path, one batch") { check_unshifted_first_blocks<lkd::default_arch, 1, TestType>(); }
    SECTION("this binary's SIMD path, four batches") { check_unshifted_first_blocks<lkd::default_arch, 4, TestType>(); }
    SECTION("scalar path") { check_unshifted_first_blocks<lkd::scalar_arch, 1, TestType>(); }
}

TEMPLATE_TEST_CASE("softmax, log_softmax and logsumexp at the unshifted limit and just past it", "[stages][softmax]",
                   float, double) {
    using T = TestType;
    constexpr T limit = lkd::exp_constants<T>::unshifted_limit;
    rng r(lk_test::seed_for(96));
    lk_test::failure_budget budget;
    for (index_t n : {index_t(2), index_t(16), index_t(33), index_t(128), index_t(129), index_t(1000), index_t(4097)}) {
        // Rows reaching both ends of the limit (softmax outputs down to e^-2 limit, which
        // underflows), a row one step past it, and the same rows scaled by temperatures that
        // move in(x) across it.
        dense<T> x({3, n});
        for (index_t j = 0; j < n; ++j) {
            x[j] = static_cast<T>(r.uniform(-static_cast<double>(limit), static_cast<double>(limit)));
            x[n + j] = static_cast<T>(r.uniform(-0.1, 0.1) * static_cast<double>(limit));
            x[2 * n + j] = static_cast<T>(r.uniform(-static_cast<double>(limit), static_cast<double>(limit)));
        }
        x[0] = limit;
        x[n - 1] = -limit;
        x[n] = limit;
        x[2 * n + n / 2] = std::nextafter(limit, std::numeric_limits<T>::infinity());
        for (double t : {1.0, 0.5, 2.0, 0.05}) {
            for (lk_test::fwd_op op : {lk_test::fwd_op::softmax, lk_test::fwd_op::log_softmax}) {
                lk_test::fwd_case c;
                c.op = op;
                c.temperature = t;
                c.data = "rows at the unshifted limit";
                if (!budget.record(lk_test::run_forward<T, 2>(c, x))) return;
            }
        }
        dense<T> out({3, 1});
        logitkit::logsumexp(logitkit::tensor_view<const T, 2>(x.data.data(), {3, n}),
                            logitkit::tensor_view<T, 2>(out.data.data(), {3, 1}), -1);
        lk_test::check_close(out, lk_ref::logsumexp(x, -1), [](index_t, ld v) { return lk_test::log_allowed<T>(v); },
                             "logsumexp of rows at the unshifted limit, n = " + std::to_string(n));
    }
}

TEMPLATE_TEST_CASE("lines taken in groups give each line the bits it gets alone", "[stages][determinism]", float,
                   double) {
    // log_softmax and logsumexp take their lines in groups of line_group, softmax its lines
    // longer than a short line: each line's sum first, then the logarithms and outputs (short
    // lines), or each line's output stage beside the next line's exponentials (longer ones). A
    // line's result must not depend on the lines grouped with it: here 3 x 7 lines, two whole
    // groups and a part, of mixed kinds (shifted or not, all equal, with NaN or infinities, or
    // with one element past the unshifted limit, which stops the next line's first pass
    // midway), in a padded buffer so that the lines are not evenly spaced, against each line
    // computed alone.
    using T = TestType;
    rng r(lk_test::seed_for(97));
    constexpr index_t A = 3, B = 7, lines = A * B;
    static_assert(lines > 2 * lkd::log_softmax_op<T, lkd::identity_input>::line_group, "two groups and a part");
    for (index_t n : {index_t(1), index_t(5), index_t(16), index_t(17), index_t(64), index_t(100), index_t(128),
                      index_t(129), index_t(256), index_t(257), index_t(512), index_t(513), index_t(1000),
                      index_t(4097)}) {
        const index_t row_stride = n + 3, plane_stride = B * row_stride + 5;
        std::vector<T> x(static_cast<std::size_t>(A * plane_stride));
        for (index_t a = 0; a < A; ++a)
            for (index_t b = 0; b < B; ++b) {
                T* line = x.data() + a * plane_stride + b * row_stride;
                const auto kind = r.below(7);
                for (index_t j = 0; j < n; ++j) {
                    switch (kind) {
                        case 0: line[j] = static_cast<T>(r.uniform(-1e3, 1e3)); break;  // shifted
                        case 1: line[j] = T(2.5); break;                                 // all equal
                        default: line[j] = static_cast<T>(r.uniform(-20, 20)); break;    // unshifted
                    }
                }
                if (kind == 3) line[r.below(static_cast<std::uint64_t>(n))] = lk_test::vals<T>::nan();
                if (kind == 4) line[r.below(static_cast<std::uint64_t>(n))] = lk_test::vals<T>::inf();
                if (kind == 5) line[r.below(static_cast<std::uint64_t>(n))] = -lk_test::vals<T>::inf();
                if (kind == 6 && n > 1) line[r.below(static_cast<std::uint64_t>(n - 1))] = T(1e3);
            }
        const logitkit::extents_type<3> shape{A, B, n};
        const logitkit::extents_type<3> strides{plane_stride, row_stride, 1};
        const logitkit::tensor_view<const T, 3> xv(x.data(), shape, strides);
        std::vector<T> ls(static_cast<std::size_t>(A * B * n)), sm(ls.size()), lse(static_cast<std::size_t>(lines));
        logitkit::log_softmax(xv, logitkit::tensor_view<T, 3>(ls.data(), shape), -1);
        logitkit::softmax(xv, logitkit::tensor_view<T, 3>(sm.data(), shape), -1);
        logitkit::logsumexp(xv, logitkit::tensor_view<T, 3>(lse.data(), {A, B, 1}), -1);
        for (index_t a = 0; a < A; ++a)
            for (index_t b = 0; b < B; ++b) {
                const T* line = x.data() + a * plane_stride + b * row_stride;
                const index_t k = a * B + b;
                dense<T> alone({n}), grouped({n});
                logitkit::log_softmax(logitkit::tensor_view<const T, 1>(line, {n}),
                                      logitkit::tensor_view<T, 1>(alone.data.data(), {n}), -1);
                std::copy(ls.begin() + k * n, ls.begin() + (k + 1) * n, grouped.data.begin());
                CHECK(lk_test::expect_bitwise_equal(grouped, alone,
                                                    "log_softmax of line " + std::to_string(k) + ", n = " + std::to_string(n)));
                logitkit::softmax(logitkit::tensor_view<const T, 1>(line, {n}),
                                  logitkit::tensor_view<T, 1>(alone.data.data(), {n}), -1);
                std::copy(sm.begin() + k * n, sm.begin() + (k + 1) * n, grouped.data.begin());
                CHECK(lk_test::expect_bitwise_equal(grouped, alone,
                                                    "softmax of line " + std::to_string(k) + ", n = " + std::to_string(n)));
                T one = 0;
                logitkit::logsumexp(logitkit::tensor_view<const T, 1>(line, {n}), logitkit::tensor_view<T, 1>(&one, {1}), -1);
                INFO("logsumexp of line " << k << ", n = " << n);
                CHECK(std::memcmp(&one, &lse[static_cast<std::size_t>(k)], sizeof(T)) == 0);
            }
        // log_softmax_backward takes its longer lines in groups too, each line's output stage
        // beside the next line's sum of dy: y is the log_softmax above (with its NaN and
        // infinities), dy in a padded buffer.
        std::vector<T> dy(x.size()), dx(ls.size());
        for (auto& v : dy) v = static_cast<T>(r.uniform(-1, 1));
        const logitkit::tensor_view<const T, 3> yv(ls.data(), shape), dyv(dy.data(), shape, strides);
        logitkit::log_softmax_backward(yv, dyv, logitkit::tensor_view<T, 3>(dx.data(), shape), -1);
        for (index_t a = 0; a < A; ++a)
            for (index_t b = 0; b < B; ++b) {
                const index_t k = a * B + b;
                dense<T> alone({n}), grouped({n});
                logitkit::log_softmax_backward(logitkit::tensor_view<const T, 1>(ls.data() + k * n, {n}),
                                               logitkit::tensor_view<const T, 1>(dy.data() + a * plane_stride + b * row_stride, {n}),
                                               logitkit::tensor_view<T, 1>(alone.data.data(), {n}), -1);
                std::copy(dx.begin() + k * n, dx.begin() + (k + 1) * n, grouped.data.begin());
                CHECK(lk_test::expect_bitwise_equal(grouped, alone, "log_softmax_backward of line " + std::to_string(k) +
                                                                        ", n = " + std::to_string(n)));
            }
    }
}

namespace {

/// A column block of mixed columns: col::reduce_range's mode must be the least its columns allow,
/// each column's decided on its own by line_shift_for / exp_mode_for from its scalar range, and
/// its shifts in(max) (0 when unshifted).
template <class Arch, class T, bool Unshifted, class In>
void check_mixed_column_modes(In in, rng& r) {
    constexpr int K = 2;
    constexpr logitkit::index_type cols = K * static_cast<logitkit::index_type>(lkd::batch<T, Arch>::size);
    const row_kind kinds[] = {row_kind::one_binade, row_kind::spread, row_kind::huge_spread, row_kind::with_inf,
                              row_kind::negative_binade};
    for (int trial = 0; trial < 200; ++trial) {
        const logitkit::index_type n = 1 + static_cast<logitkit::index_type>(r.below(40));
        // Mostly one kind, a few columns of another (or, for a few, all equal), so that every
        // mode is reached by a block and by the one column that lowers it.
        const row_kind base = kinds[r.below(5)], other = kinds[r.below(5)];
        std::vector<T> x(static_cast<std::size_t>(n * cols));
        for (logitkit::index_type j = 0; j < cols; ++j) {
            const auto pick = r.below(16);
            auto col = make_row<T>(pick == 0 ? other : base, static_cast<std::size_t>(n), r);
            if (pick == 1) std::fill(col.begin(), col.end(), col[0]);
            if (pick == 2) std::fill(col.begin(), col.end(), static_cast<T>(lkd::exp_constants<T>::unshifted_limit));
            for (logitkit::index_type i = 0; i < n; ++i) x[static_cast<std::size_t>(i * cols + j)] = col[static_cast<std::size_t>(i)];
        }
        bool all_unshifted = Unshifted;
        lkd::exp_mode least = lkd::exp_mode::in_binade;
        T expected_m[cols];
        for (logitkit::index_type j = 0; j < cols; ++j) {
            T hi = -std::numeric_limits<T>::infinity(), lo = std::numeric_limits<T>::infinity();
            for (logitkit::index_type i = 0; i < n; ++i) {
                hi = std::max(hi, x[static_cast<std::size_t>(i * cols + j)]);
                lo = std::min(lo, x[static_cast<std::size_t>(i * cols + j)]);
            }
            const lkd::row_range<T> range{hi, lo, std::isfinite(hi) && std::isfinite(lo)};
            all_unshifted = all_unshifted && lkd::line_shift_for<Unshifted>(range, in).mode == lkd::exp_mode::unshifted;
            expected_m[j] = in(hi);
            least = std::min(least, lkd::exp_mode_for(range, expected_m[j], in));
        }
        T m[cols];
        const lkd::exp_mode mode = lkd::col::reduce_range<Arch, K, Unshifted>(x.data(), cols, n, m, in);
        INFO("trial " << trial << ", n = " << n << ", kinds " << static_cast<int>(base) << " / "
                      << static_cast<int>(other));
        CHECK(mode == (all_unshifted ? lkd::exp_mode::unshifted : least));
        for (logitkit::index_type j = 0; j < cols; ++j) {
            INFO("column " << j);
            CHECK(m[j] == (all_unshifted ? T(0) : expected_m[j]));
        }
    }
}

template <class Arch, class T>
void check_mixed_column_modes_all() {
    rng r(lk_test::seed_for(98));
    check_mixed_column_modes<Arch, T, false>(lkd::identity_input{}, r);
    check_mixed_column_modes<Arch, T, true>(lkd::identity_input{}, r);
    check_mixed_column_modes<Arch, T, true>(lkd::divide_input<T>{T(0.37)}, r);
    check_mixed_column_modes<Arch, T, false>(lkd::divide_input<T>{T(3)}, r);
}

}  // namespace

TEMPLATE_TEST_CASE("a column block's mode is the least its columns allow, each column decided alone", "[stages]",
                   float, double) {
    SECTION("compiled architecture") { check_mixed_column_modes_all<lkd::default_arch, TestType>(); }
    SECTION("scalar path") { check_mixed_column_modes_all<lkd::scalar_arch, TestType>(); }
}
