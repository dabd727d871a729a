// tensor_view: construction, strides, sizes, element access, conversions and shape validation.
#include <logitkit/tensor_view.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using logitkit::index_type;
using logitkit::tensor_view;

namespace {

constexpr index_type pmax = std::numeric_limits<index_type>::max();

std::string what_of_invalid(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "<no std::invalid_argument>";
}

}  // namespace

TEST_CASE("tensor_view: default construction is an empty null view", "[tensor_view]") {
    tensor_view<float, 3> v;
    CHECK(v.data() == nullptr);
    CHECK(v.size() == 0);
    CHECK(v.empty());
    for (std::size_t k = 0; k < 3; ++k) CHECK(v.extent(k) == 0);
    CHECK(v.rank() == 3);
    constexpr tensor_view<const double, 1> c;
    static_assert(c.size() == 0, "a default view is empty at compile time");
}

TEST_CASE("tensor_view: row-major contiguous construction", "[tensor_view]") {
    std::vector<float> buf(24);
    std::iota(buf.begin(), buf.end(), 0.0f);
    tensor_view<float, 3> v(buf.data(), {2, 3, 4});
    CHECK(v.data() == buf.data());
    CHECK(v.shape() == logitkit::extents_type<3>{2, 3, 4});
    CHECK(v.strides() == logitkit::extents_type<3>{12, 4, 1});
    CHECK(v.extent(0) == 2);
    CHECK(v.extent(1) == 3);
    CHECK(v.extent(2) == 4);
    CHECK(v.stride(0) == 12);
    CHECK(v.stride(1) == 4);
    CHECK(v.stride(2) == 1);
    CHECK(v.size() == 24);
    CHECK_FALSE(v.empty());
    CHECK(v.is_contiguous());
    for (index_type i = 0; i < 2; ++i)
        for (index_type j = 0; j < 3; ++j)
            for (index_type k = 0; k < 4; ++k) {
                CHECK(v(i, j, k) == static_cast<float>(i * 12 + j * 4 + k));
                CHECK(&v(i, j, k) == buf.data() + i * 12 + j * 4 + k);
                CHECK(v.offset({i, j, k}) == i * 12 + j * 4 + k);
                CHECK(&v[{i, j, k}] == &v(i, j, k));
            }
    // Indices of any integral type.
    CHECK(&v(1, std::size_t{2}, static_cast<short>(3)) == buf.data() + 23);
    CHECK(&v(1L, 0U, static_cast<long long>(1)) == buf.data() + 13);
    // Writes through the view land in the buffer.
    v(1, 2, 3) = -5.0f;
    CHECK(buf[23] == -5.0f);

    std::vector<double> one(1, 3.0);
    tensor_view<double, 1> r1(one.data(), {1});
    CHECK(r1.stride(0) == 1);
    CHECK(r1(0) == 3.0);
}

TEST_CASE("tensor_view: explicit strides, padding and transposition", "[tensor_view]") {
    std::vector<int> buf(64);
    std::iota(buf.begin(), buf.end(), 0);
    // A 3x4 view with rows padded to 10 elements.
    tensor_view<int, 2> padded(buf.data(), {3, 4}, {10, 1});
    CHECK(padded.strides() == logitkit::extents_type<2>{10, 1});
    CHECK(padded.size() == 12);
    CHECK(padded(2, 3) == 23);
    CHECK_FALSE(padded.is_contiguous());
    // The transpose of a contiguous 3x4 array.
    tensor_view<int, 2> t(buf.data(), {4, 3}, {1, 4});
    CHECK(t(3, 2) == 11);
    CHECK(t(1, 2) == 9);
    CHECK_FALSE(t.is_contiguous());
    // Every other element.
    tensor_view<int, 1> step(buf.data() + 1, {5}, {2});
    CHECK(step(4) == 9);
    CHECK_FALSE(step.is_contiguous());
    // Explicit strides equal to the row-major ones: contiguous.
    tensor_view<int, 3> same(buf.data(), {2, 3, 4}, {12, 4, 1});
    CHECK(same.is_contiguous());
    // Strides of extent-1 dimensions do not matter for contiguity.
    tensor_view<int, 3> ones(buf.data(), {1, 3, 1}, {999, 1, -7});
    CHECK(ones.is_contiguous());
    tensor_view<int, 2> col(buf.data(), {4, 1}, {1, 100});
    CHECK(col.is_contiguous());
    // Zero strides (broadcast): all indices along that dimension alias.
    tensor_view<int, 2> bcast(buf.data() + 5, {3, 4}, {0, 1});
    CHECK(bcast(0, 2) == 7);
    CHECK(bcast(2, 2) == 7);
    CHECK(&bcast(1, 3) == &bcast(0, 3));
    CHECK_FALSE(bcast.is_contiguous());
}

TEST_CASE("tensor_view: negative strides", "[tensor_view]") {
    std::vector<int> buf(12);
    std::iota(buf.begin(), buf.end(), 0);
    // A reversed vector: the pointer is at the last element.
    tensor_view<int, 1> rev(buf.data() + 11, {12}, {-1});
    CHECK(rev.stride(0) == -1);
    CHECK(rev(0) == 11);
    CHECK(rev(11) == 0);
    CHECK(rev.offset({11}) == -11);
    CHECK_FALSE(rev.is_contiguous());
    // Rows reversed, columns in order.
    tensor_view<int, 2> flip(buf.data() + 8, {3, 4}, {-4, 1});
    CHECK(flip(0, 0) == 8);
    CHECK(flip(2, 3) == 3);
    CHECK(flip.offset({2, 1}) == -7);
    // Both reversed.
    tensor_view<int, 2> both(buf.data() + 11, {3, 4}, {-4, -1});
    CHECK(both(0, 0) == 11);
    CHECK(both(2, 3) == 0);
    CHECK(both(1, 2) == 5);
    CHECK(both.size() == 12);
}

TEST_CASE("tensor_view: zero-size extents", "[tensor_view]") {
    tensor_view<float, 3> a(nullptr, {3, 0, 4});
    CHECK(a.size() == 0);
    CHECK(a.empty());
    CHECK(a.extent(0) == 3);
    CHECK(a.extent(1) == 0);
    CHECK(a.extent(2) == 4);
    // The row-major strides stay non-zero and finite even with a zero extent.
    for (std::size_t k = 0; k < 3; ++k) CHECK(a.stride(k) != 0);
    CHECK(a.stride(2) == 1);
    tensor_view<double, 1> b(nullptr, {0});
    CHECK(b.empty());
    CHECK(b.size() == 0);
    tensor_view<double, 2> c(nullptr, {0, 5}, {5, 1});
    CHECK(c.empty());
    // A zero extent next to a huge one is not an overflow: the view has no elements.
    tensor_view<double, 3> d(nullptr, {0, pmax, 2}, {0, 0, 0});
    CHECK(d.size() == 0);
    tensor_view<double, 2> e(nullptr, {pmax, 0}, {1, 1});
    CHECK(e.size() == 0);
    // The element count is 0 whatever order the extents come in.
    const index_type big = index_type{1} << 40;
    CHECK_NOTHROW(tensor_view<double, 3>(nullptr, {big, big, 0}, {1, 1, 1}));
    CHECK_NOTHROW(tensor_view<double, 3>(nullptr, {big, 0, big}, {1, 1, 1}));
}

TEST_CASE("tensor_view: converts to a view of const elements", "[tensor_view]") {
    std::vector<double> buf(12, 1.5);
    tensor_view<double, 2> v(buf.data() + 11, {3, 4}, {-4, -1});
    tensor_view<const double, 2> c = v;
    CHECK(c.data() == v.data());
    CHECK(c.shape() == v.shape());
    CHECK(c.strides() == v.strides());
    v(1, 1) = 42.0;
    CHECK(c(1, 1) == 42.0);
    const logitkit::const_tensor_view<double, 2> alias = v;
    CHECK(alias(1, 1) == 42.0);
    // Passing to a function that takes a const view.
    auto sum = [](tensor_view<const double, 2> t) {
        double s = 0;
        for (index_type i = 0; i < t.extent(0); ++i)
            for (index_type j = 0; j < t.extent(1); ++j) s += t(i, j);
        return s;
    };
    CHECK(sum(v) == Approx(1.5 * 11 + 42.0));
}

TEST_CASE("tensor_view: bad shapes throw std::invalid_argument", "[tensor_view]") {
    std::vector<float> buf(8);
    SECTION("negative extent") {
        CHECK_THROWS_AS((tensor_view<float, 1>(buf.data(), {-1})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 2>(buf.data(), {2, -3})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 2>(buf.data(), {-2, 0})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 2>(buf.data(), {2, -1}, {1, 1})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 3>(buf.data(), {1, 1, std::numeric_limits<index_type>::min()}, {1, 1, 1})),
                        std::invalid_argument);
        const std::string msg = what_of_invalid([&] { tensor_view<float, 2> v(buf.data(), {2, -3}); });
        INFO(msg);
        CHECK(msg.find("logitkit::tensor_view") == 0);
        CHECK(msg.find("-3") != std::string::npos);
    }
    SECTION("element count overflows std::ptrdiff_t") {
        const index_type big = index_type{1} << 32;
        CHECK_THROWS_AS((tensor_view<float, 2>(nullptr, {big, big})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 2>(nullptr, {big, big}, {1, 1})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 3>(nullptr, {3, pmax / 2, 1})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 2>(nullptr, {2, pmax / 2 + 1})), std::invalid_argument);
        CHECK_THROWS_AS((tensor_view<float, 4>(nullptr, {1 << 16, 1 << 16, 1 << 16, 1 << 16}, {0, 0, 0, 0})),
                        std::invalid_argument);
        const std::string msg = what_of_invalid([&] { tensor_view<float, 2> v(nullptr, {big, big}); });
        INFO(msg);
        CHECK(msg.find("logitkit::tensor_view") == 0);
        CHECK(msg.find("overflow") != std::string::npos);
    }
    SECTION("the largest representable counts are accepted") {
        CHECK_NOTHROW(tensor_view<float, 1>(nullptr, {pmax}));
        CHECK_NOTHROW(tensor_view<float, 2>(nullptr, {2, pmax / 2}));
        CHECK_NOTHROW(tensor_view<float, 2>(nullptr, {pmax, 1}));
        tensor_view<float, 2> v(nullptr, {2, pmax / 2});
        CHECK(v.size() == 2 * (pmax / 2));
        CHECK(v.stride(0) == pmax / 2);
    }
}

TEST_CASE("tensor_view: offsets beyond 2^31 elements are computed in ptrdiff_t", "[tensor_view]") {
    // Fake views: the data pointer is never dereferenced; only offsets are computed.
    const index_type n20 = index_type{1} << 20;
    tensor_view<float, 3> v(nullptr, {n20, n20, 4});
    CHECK(v.size() == n20 * n20 * 4);
    CHECK(v.stride(0) == n20 * 4);
    CHECK(v.stride(1) == 4);
    CHECK(v.offset({n20 - 1, n20 - 1, 3}) == n20 * n20 * 4 - 1);
    CHECK(v.offset({3, 0, 0}) == 3 * n20 * 4);
    CHECK(v.offset({0, n20 - 1, 0}) == (n20 - 1) * 4);

    // A single stride above 2^31 and a single index above 2^31.
    const index_type s = 3000000000LL;
    tensor_view<double, 2> w(nullptr, {5, 7}, {s, 1});
    CHECK(w.offset({2, 0}) == 6000000000LL);
    CHECK(w.offset({4, 6}) == 4 * s + 6);
    const index_type big_i = 5000000000LL;
    tensor_view<double, 1> x(nullptr, {big_i + 1});
    CHECK(x.offset({big_i}) == big_i);
    // Negative strides below -2^31.
    tensor_view<double, 2> neg(nullptr, {3, 4}, {-s, -(s / 3)});
    CHECK(neg.offset({2, 3}) == -2 * s - 3 * (s / 3));
    // A rank-8 view whose offsets exceed 2^31.
    tensor_view<float, 8> r8(nullptr, {16, 16, 16, 16, 16, 16, 16, 16});
    CHECK(r8.size() == index_type{1} << 32);
    CHECK(r8.stride(0) == index_type{1} << 28);
    CHECK(r8.offset({15, 15, 15, 15, 15, 15, 15, 15}) == (index_type{1} << 32) - 1);
    CHECK(r8.offset({8, 0, 0, 0, 0, 0, 0, 1}) == (index_type{1} << 31) + 1);
}

TEST_CASE("tensor_view: copies are shallow and cheap", "[tensor_view]") {
    std::vector<float> buf(6, 0.0f);
    tensor_view<float, 2> a(buf.data(), {2, 3});
    tensor_view<float, 2> b = a;
    b(1, 2) = 9.0f;
    CHECK(a(1, 2) == 9.0f);
    b = tensor_view<float, 2>(buf.data(), {3, 2});
    CHECK(a.extent(0) == 2);
    CHECK(b.extent(0) == 3);
}
