// softmax: values against the long double reference over ranks 1..4, every axis, strided,
// transposed, negative-stride and in-place views, temperatures and extreme inputs.
#include "test_support.hpp"

using namespace lk_test;

TEMPLATE_TEST_CASE("softmax: rank 1, extents 1..67, 96..129, 1000 and 4097", "[softmax]", float, double) {
    forward_rank1_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: rank 2, every axis, extents 1..67, 96..129, 1000 and 4097, all layouts", "[softmax]", float, double) {
    forward_rank2_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: rank 3, every axis and layout", "[softmax]", float, double) {
    forward_rank3_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: rank 4, every axis and layout", "[softmax]", float, double) {
    forward_rank4_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: columns in blocks of every width, up to a page of each row", "[softmax]", float, double) {
    forward_wide_columns_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: a special value at every position of the row", "[softmax][special]", float, double) {
    forward_special_positions_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: random mixtures of extreme values", "[softmax][special]", float, double) {
    forward_special_random_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: finite extremes do not overflow", "[softmax][special]", float, double) {
    forward_finite_extremes_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: empty tensors are a no-op", "[softmax][empty]", float, double) {
    forward_empty_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: axis extent 1 gives exactly 1", "[softmax]", float, double) {
    forward_extent_one_suite<TestType>(fwd_op::softmax);
}

TEMPLATE_TEST_CASE("softmax: broadcast input with a zero stride", "[softmax]", float, double) {
    forward_broadcast_suite<TestType>(fwd_op::softmax);
}

namespace {

template <class T>
std::vector<T> softmax_row(std::vector<T> x, double temperature = 1.0) {
    std::vector<T> y(x.size(), T(-7));
    logitkit::tensor_view<const T, 1> xv(x.data(), {static_cast<index_t>(x.size())});
    logitkit::tensor_view<T, 1> yv(y.data(), {static_cast<index_t>(y.size())});
    logitkit::softmax_options o;
    o.temperature = temperature;
    logitkit::softmax(xv, yv, -1, o);
    return y;
}

}  // namespace

TEMPLATE_TEST_CASE("softmax: hand-checked values", "[softmax]", float, double) {
    using T = TestType;
    const T inf = vals<T>::inf();
    const T nan = vals<T>::nan();

    SECTION("a -inf entry gives exactly 0, the rest renormalizes") {
        const auto y = softmax_row<T>({-inf, T(0)});
        CHECK(y[0] == T(0));
        CHECK(y[1] == T(1));
        const auto z = softmax_row<T>({T(3), -inf, T(3), -inf});
        CHECK(z[1] == T(0));
        CHECK(z[3] == T(0));
        CHECK(z[0] == Approx(0.5).epsilon(1e-6));
        CHECK(z[2] == Approx(0.5).epsilon(1e-6));
    }
    SECTION("a +inf or NaN anywhere, or all -inf, gives a NaN row") {
        for (const auto& row : std::vector<std::vector<T>>{{T(1), inf}, {inf, T(1)}, {inf, inf}, {-inf, inf},
                                                            {nan, T(1)}, {T(1), T(2), nan}, {-inf, -inf},
                                                            {-inf}, {nan}, {inf}, {-inf, nan}}) {
            const auto y = softmax_row<T>(row);
            for (std::size_t i = 0; i < y.size(); ++i) {
                INFO("row element " << i << " of a row of " << row.size() << " starting with " << row[0]);
                CHECK(std::isnan(y[i]));
            }
        }
    }
    SECTION("constant rows give 1/n") {
        for (index_t n = 1; n <= 67; ++n) {
            for (T c : {T(0), T(-3.5), static_cast<T>(1e30), -vals<T>::max(), vals<T>::max()}) {
                const auto y = softmax_row<T>(std::vector<T>(static_cast<std::size_t>(n), c));
                const ld expected = 1.0L / static_cast<ld>(n);
                for (std::size_t i = 0; i < y.size(); ++i) {
                    INFO("n=" << n << " c=" << c << " i=" << i << " y=" << y[i]);
                    CHECK(std::fabs(static_cast<ld>(y[i]) - expected) <= bounds<T>::softmax_rel * expected);
                }
            }
        }
    }
    SECTION("two-element rows: [0, log(3)] gives [1/4, 3/4]") {
        const T l3 = static_cast<T>(std::log(3.0L));
        const auto y = softmax_row<T>({T(0), l3});
        // With l3 = log(3) + d: y0 = 1 / (1 + 3 e^d), |d| <= half an ulp of log(3).
        const ld d = static_cast<ld>(l3) - std::log(3.0L);
        CHECK(std::fabs(static_cast<ld>(y[0]) - 1 / (1 + 3 * std::exp(d))) <= bounds<T>::softmax_rel * 0.25L);
        CHECK(std::fabs(static_cast<ld>(y[1]) - 3 * std::exp(d) / (1 + 3 * std::exp(d))) <= bounds<T>::softmax_rel * 0.75L);
    }
    SECTION("the largest finite spread: [max, -max] gives [1, 0]") {
        const auto y = softmax_row<T>({vals<T>::max(), -vals<T>::max()});
        CHECK(y[0] == T(1));
        CHECK(y[1] == T(0));
    }
    SECTION("subnormal outputs are not flushed to zero") {
        // softmax([0, -100]) in float: the second output is about 3.7e-44, a subnormal.
        const T gap = std::is_same<T, float>::value ? T(100) : T(720);
        const auto y = softmax_row<T>({T(0), -gap});
        const ld expected = std::exp(-static_cast<ld>(gap)) / (1 + std::exp(-static_cast<ld>(gap)));
        INFO("got " << y[1] << ", expected " << fmt_ld(expected));
        CHECK(y[1] > T(0));
        CHECK(std::fabs(static_cast<ld>(y[1]) - expected) <= softmax_allowed<T>(expected));
    }
}

TEMPLATE_TEST_CASE("softmax: temperature divides in the element type, fl(x / T)", "[softmax][temperature]", float, double) {
    using T = TestType;
    // Pick inputs for which fl(x / T) differs from x * fl(1 / T) and from rounding x / (double)T,
    // in a range where one ulp of the scaled input changes the small output by more than the bound.
    for (double t : {1e-3, 0.1, 0.3, 3.0, 7.0, 2.5, 0.5}) {
        rng r(seed_for(20, static_cast<std::uint64_t>(t * 1000)));
        const T tt = static_cast<T>(t);
        std::vector<T> row;
        row.push_back(T(0));
        int differing = 0;
        for (int tries = 0; tries < 100000 && row.size() < 24; ++tries) {
            const T x = static_cast<T>(r.uniform(20, 60) * t);
            const T q = static_cast<T>(x / tt);
            const T q_recip = static_cast<T>(x * static_cast<T>(T(1) / tt));
            const T q_wide = static_cast<T>(static_cast<long double>(x) / static_cast<long double>(t));
            if (q != q_recip || q != q_wide) ++differing;
            if (q != q_recip || q != q_wide || row.size() < 4) row.push_back(-x);
        }
        // The reference: softmax of fl(x / T).
        dense<T> xd({static_cast<index_t>(row.size())});
        xd.data = row;
        fwd_case c;
        c.op = fwd_op::softmax;
        c.axis = 0;
        c.temperature = t;
        c.data = "inputs where fl(x / T) differs from x * fl(1 / T) or from x / T rounded once";
        INFO(differing << " inputs where the rounding matters");
        CHECK(run_forward<T, 1>(c, xd));
        c.op = fwd_op::log_softmax;
        CHECK(run_forward<T, 1>(c, xd));
    }
}

TEMPLATE_TEST_CASE("softmax: shifting the input by a constant does not change the output", "[softmax]", float, double) {
    using T = TestType;
    rng r(seed_for(21));
    for (index_t n : {5, 16, 33, 100}) {
        std::vector<T> x(static_cast<std::size_t>(n)), xs(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) {
            x[i] = static_cast<T>(std::round(r.uniform(-20, 20) * 64) / 64);  // exact after the shift
            xs[i] = x[i] + T(1024);
        }
        const auto y = softmax_row<T>(x);
        const auto ys = softmax_row<T>(xs);
        for (std::size_t i = 0; i < x.size(); ++i) {
            const ld ref = static_cast<ld>(y[i]);
            INFO("n=" << n << " i=" << i << " y=" << y[i] << " shifted " << ys[i]);
            CHECK(std::fabs(static_cast<ld>(ys[i]) - ref) <= 2 * softmax_allowed<T>(ref));
        }
    }
}

TEMPLATE_TEST_CASE("softmax and log_softmax: rank 8 views", "[softmax][log_softmax][rank8]", float, double) {
    using T = TestType;
    const shape_t shape = {2, 1, 3, 1, 2, 5, 1, 3};
    for (int axis : axis_spellings(8)) {
        rng r(seed_for(22, static_cast<std::uint64_t>(axis + 8)));
        const dense<T> x = random_dense<T>(shape, 10.0, r);
        const auto layouts = standard_layouts(8, lk_ref::normalize_axis(axis, 8), r);
        for (std::size_t li = 0; li < layouts.size(); ++li) {
            fwd_case c;
            c.op = li % 2 == 0 ? fwd_op::softmax : fwd_op::log_softmax;
            c.axis = axis;
            c.in_layout = layouts[li];
            c.out_layout = layouts[(li + 3) % layouts.size()];
            c.temperature = test_temperatures[li % 4];
            c.data = "uniform(-10,10)";
            CHECK(run_forward<T, 8>(c, x));
        }
    }
}
