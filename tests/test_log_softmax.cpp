// log_softmax: values against the long double reference over ranks 1..4, every axis, strided,
// transposed, negative-stride and in-place views, temperatures and extreme inputs.
#include "test_support.hpp"

using namespace lk_test;

TEMPLATE_TEST_CASE("log_softmax: rank 1, extents 1..67, 96..129, 1000 and 4097", "[log_softmax]", float, double) {
    forward_rank1_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: rank 2, every axis, extents 1..67, 96..129, 1000 and 4097, all layouts", "[log_softmax]", float,
                   double) {
    forward_rank2_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: rank 3, every axis and layout", "[log_softmax]", float, double) {
    forward_rank3_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: rank 4, every axis and layout", "[log_softmax]", float, double) {
    forward_rank4_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: columns in blocks of every width, up to a page of each row", "[log_softmax]", float, double) {
    forward_wide_columns_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: a special value at every position of the row", "[log_softmax][special]", float, double) {
    forward_special_positions_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: random mixtures of extreme values", "[log_softmax][special]", float, double) {
    forward_special_random_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: finite extremes do not overflow", "[log_softmax][special]", float, double) {
    forward_finite_extremes_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: empty tensors are a no-op", "[log_softmax][empty]", float, double) {
    forward_empty_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: axis extent 1 gives exactly 0", "[log_softmax]", float, double) {
    forward_extent_one_suite<TestType>(fwd_op::log_softmax);
}

TEMPLATE_TEST_CASE("log_softmax: broadcast input with a zero stride", "[log_softmax]", float, double) {
    forward_broadcast_suite<TestType>(fwd_op::log_softmax);
}

namespace {

template <class T>
std::vector<T> log_softmax_row(std::vector<T> x, double temperature = 1.0) {
    std::vector<T> y(x.size(), T(-7));
    logitkit::tensor_view<const T, 1> xv(x.data(), {static_cast<index_t>(x.size())});
    logitkit::tensor_view<T, 1> yv(y.data(), {static_cast<index_t>(y.size())});
    logitkit::softmax_options o;
    o.temperature = temperature;
    logitkit::log_softmax(xv, yv, 0, o);
    return y;
}

}  // namespace

TEMPLATE_TEST_CASE("log_softmax: hand-checked values", "[log_softmax]", float, double) {
    using T = TestType;
    const T inf = vals<T>::inf();
    const T nan = vals<T>::nan();
    const ld ln2 = std::log(2.0L);

    SECTION("[-inf, 0] gives [-inf, 0]") {
        const auto y = log_softmax_row<T>({-inf, T(0)});
        CHECK(y[0] == -inf);
        CHECK(y[1] == T(0));
    }
    SECTION("[0, -inf, 0] gives [-log 2, -inf, -log 2]") {
        const auto y = log_softmax_row<T>({T(0), -inf, T(0)});
        CHECK(y[1] == -inf);
        CHECK(std::fabs(static_cast<ld>(y[0]) + ln2) <= bounds<T>::log_coef);
        CHECK(std::fabs(static_cast<ld>(y[2]) + ln2) <= bounds<T>::log_coef);
    }
    SECTION("a +inf or NaN anywhere, or all -inf, gives a NaN row") {
        for (const auto& row : std::vector<std::vector<T>>{{T(1), inf}, {inf, T(1)}, {inf, inf}, {-inf, inf},
                                                            {nan, T(1)}, {T(1), T(2), nan}, {-inf, -inf},
                                                            {-inf}, {nan}, {inf}, {-inf, nan}}) {
            const auto y = log_softmax_row<T>(row);
            for (std::size_t i = 0; i < y.size(); ++i) {
                INFO("row element " << i << " of a row of " << row.size() << " starting with " << row[0]);
                CHECK(std::isnan(y[i]));
            }
        }
    }
    SECTION("constant rows give -log(n)") {
        for (index_t n = 1; n <= 67; ++n) {
            for (T c : {T(0), T(-3.5), static_cast<T>(1e30), -vals<T>::max(), vals<T>::max()}) {
                const auto y = log_softmax_row<T>(std::vector<T>(static_cast<std::size_t>(n), c));
                const ld expected = -std::log(static_cast<ld>(n));
                for (std::size_t i = 0; i < y.size(); ++i) {
                    INFO("n=" << n << " c=" << c << " i=" << i << " y=" << y[i]);
                    CHECK(std::fabs(static_cast<ld>(y[i]) - expected) <= log_allowed<T>(expected));
                }
            }
        }
    }
    SECTION("large gaps are exact differences: [0, -1e30] gives [0, -1e30]") {
        const auto y = log_softmax_row<T>({T(0), static_cast<T>(-1e30)});
        CHECK(y[0] == T(0));
        CHECK(y[1] == static_cast<T>(-1e30));
    }
    SECTION("[max, -max] gives [0, -inf]: the exact result is beyond the range of T") {
        const auto y = log_softmax_row<T>({vals<T>::max(), -vals<T>::max()});
        CHECK(y[0] == T(0));
        CHECK(y[1] == -inf);
    }
    SECTION("temperature: log_softmax([2, 4] / 2) = log_softmax([1, 2])") {
        const auto y = log_softmax_row<T>({T(2), T(4)}, 2.0);
        const ld l = std::log(1 + std::exp(-1.0L));
        CHECK(std::fabs(static_cast<ld>(y[1]) + l) <= log_allowed<T>(l));
        CHECK(std::fabs(static_cast<ld>(y[0]) + 1 + l) <= log_allowed<T>(1 + l));
    }
}
