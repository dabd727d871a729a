// Argument validation of every kernel: shape mismatches, axis out of range, bad temperatures,
// null data, and overlap of an output with an input. Each case checks the exception type, that
// the message starts with "logitkit::<function>: " and names the argument, and that no output
// element was written.
#include "test_support.hpp"

#include <climits>
#include <functional>

using namespace lk_test;

namespace {

/// Runs f, which must throw E; returns the message. Any other outcome fails the check.
template <class E, class F>
std::string thrown_message(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL_CHECK("threw an exception of the wrong type: " << e.what());
        return "<wrong exception type>";
    } catch (...) {
        FAIL_CHECK("threw something that is not a std::exception");
        return "<unknown exception>";
    }
    FAIL_CHECK("no exception was thrown");
    return "<no exception>";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

enum class fwd_fn { softmax, log_softmax };
const char* fn_name(fwd_fn f) { return f == fwd_fn::softmax ? "softmax" : "log_softmax"; }

template <class X, class Y>
void call_fwd(fwd_fn f, X x, Y y, int axis = -1, double temperature = 1.0) {
    logitkit::softmax_options o;
    o.temperature = temperature;
    if (f == fwd_fn::softmax)
        logitkit::softmax(x, y, axis, o);
    else
        logitkit::log_softmax(x, y, axis, o);
}

enum class bwd_fn { softmax_backward, log_softmax_backward };
const char* fn_name(bwd_fn f) { return f == bwd_fn::softmax_backward ? "softmax_backward" : "log_softmax_backward"; }

template <class Y, class DY, class DX>
void call_bwd(bwd_fn f, Y y, DY dy, DX dx, int axis = -1) {
    if (f == bwd_fn::softmax_backward)
        logitkit::softmax_backward(y, dy, dx, axis);
    else
        logitkit::log_softmax_backward(y, dy, dx, axis);
}

template <class T>
std::vector<T> filled(std::size_t n, T first) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = first + static_cast<T>(i) * T(0.25);
    return v;
}

/// The checks shared by every error: prefix and named arguments.
void check_message(const std::string& msg, const std::string& fn, std::initializer_list<const char*> words) {
    INFO("message: " << msg);
    CHECK(starts_with(msg, "logitkit::" + fn + ": "));
    for (const char* w : words) {
        INFO("expected the message to name `" << w << "`");
        CHECK(contains_word(msg, w));
    }
}

const std::vector<int> bad_axes_rank2 = {2, 3, -3, -4, 100, -100, INT_MAX, INT_MIN};

void check_axis_message(const std::string& msg, const std::string& fn, int axis, int rank) {
    check_message(msg, fn, {"axis"});
    INFO("message: " << msg);
    CHECK(contains_word(msg, std::to_string(axis)));
    // The valid range [-rank, rank) is shown.
    CHECK(contains_word(msg, std::to_string(-rank)));
}

}  // namespace

TEMPLATE_TEST_CASE("softmax and log_softmax: argument errors", "[errors]", float, double) {
    using T = TestType;
    for (fwd_fn f : {fwd_fn::softmax, fwd_fn::log_softmax}) {
        const std::string fn = fn_name(f);
        INFO("function " << fn);
        const std::vector<T> xs = filled<T>(6, T(-1));
        logitkit::tensor_view<const T, 2> x(xs.data(), {2, 3});
        const T sentinel = T(77.5);

        SECTION("y shape differs from x shape") {
            for (const shape_t& ys : std::vector<shape_t>{{3, 2}, {2, 4}, {1, 3}, {2, 0}, {0, 3}}) {
                std::vector<T> yb(12, sentinel);
                logitkit::tensor_view<T, 2> y(yb.data(), to_extents<2>(ys));
                const auto msg = thrown_message<std::invalid_argument>([&] { call_fwd(f, x, y); });
                check_message(msg, fn, {"y"});
                INFO("message: " << msg);
                CHECK(contains_shape(msg, {2, 3}));
                CHECK(contains_shape(msg, ys));
                CHECK(std::all_of(yb.begin(), yb.end(), [&](T v) { return v == sentinel; }));
            }
        }
        SECTION("axis out of range") {
            for (int axis : bad_axes_rank2) {
                std::vector<T> yb(6, sentinel);
                logitkit::tensor_view<T, 2> y(yb.data(), {2, 3});
                const auto msg = thrown_message<std::out_of_range>([&] { call_fwd(f, x, y, axis); });
                check_axis_message(msg, fn, axis, 2);
                CHECK(std::all_of(yb.begin(), yb.end(), [&](T v) { return v == sentinel; }));
            }
            // Rank 1 and rank 4 bounds.
            std::vector<T> yb(6, sentinel);
            logitkit::tensor_view<const T, 1> x1(xs.data(), {6});
            logitkit::tensor_view<T, 1> y1(yb.data(), {6});
            check_axis_message(thrown_message<std::out_of_range>([&] { call_fwd(f, x1, y1, 1); }), fn, 1, 1);
            check_axis_message(thrown_message<std::out_of_range>([&] { call_fwd(f, x1, y1, -2); }), fn, -2, 1);
            logitkit::tensor_view<const T, 4> x4(xs.data(), {1, 2, 3, 1});
            logitkit::tensor_view<T, 4> y4(yb.data(), {1, 2, 3, 1});
            check_axis_message(thrown_message<std::out_of_range>([&] { call_fwd(f, x4, y4, 4); }), fn, 4, 4);
            check_axis_message(thrown_message<std::out_of_range>([&] { call_fwd(f, x4, y4, -5); }), fn, -5, 4);
            CHECK(std::all_of(yb.begin(), yb.end(), [&](T v) { return v == sentinel; }));
            // Every valid spelling is accepted.
            for (int axis : {0, 1, -1, -2}) {
                logitkit::tensor_view<T, 2> y(yb.data(), {2, 3});
                CHECK_NOTHROW(call_fwd(f, x, y, axis));
            }
        }
        SECTION("temperature not finite or not positive") {
            struct bad {
                double t;
                const char* shown;
            };
            for (const bad& b : {bad{0.0, "0"}, bad{-0.0, "0"}, bad{-1.0, "-1"}, bad{-2.5, "-2.5"},
                                 bad{std::numeric_limits<double>::infinity(), "inf"},
                                 bad{-std::numeric_limits<double>::infinity(), "-inf"},
                                 bad{std::numeric_limits<double>::quiet_NaN(), "nan"},
                                 bad{-std::numeric_limits<double>::max(), "-"}}) {
                std::vector<T> yb(6, sentinel);
                logitkit::tensor_view<T, 2> y(yb.data(), {2, 3});
                const auto msg = thrown_message<std::invalid_argument>([&] { call_fwd(f, x, y, -1, b.t); });
                check_message(msg, fn, {"temperature"});
                INFO("message: " << msg << "; expected it to show " << b.shown);
                CHECK(lower(msg).find(b.shown) != std::string::npos);
                CHECK(std::all_of(yb.begin(), yb.end(), [&](T v) { return v == sentinel; }));
                // Also in place.
                std::vector<T> zb = xs;
                logitkit::tensor_view<T, 2> z(zb.data(), {2, 3});
                CHECK_THROWS_AS(call_fwd(f, z, z, -1, b.t), std::invalid_argument);
                CHECK(zb == xs);
            }
            // Tiny and huge positive temperatures are valid arguments.
            std::vector<T> yb(6, sentinel);
            logitkit::tensor_view<T, 2> y(yb.data(), {2, 3});
            CHECK_NOTHROW(call_fwd(f, x, y, -1, 1e-3));
            CHECK_NOTHROW(call_fwd(f, x, y, -1, 1e6));
        }
        SECTION("null data with a non-zero size") {
            std::vector<T> yb(6, sentinel);
            logitkit::tensor_view<T, 2> y(yb.data(), {2, 3});
            logitkit::tensor_view<const T, 2> xnull(nullptr, {2, 3});
            const auto mx = thrown_message<std::invalid_argument>([&] { call_fwd(f, xnull, y); });
            check_message(mx, fn, {"x"});
            CHECK(std::all_of(yb.begin(), yb.end(), [&](T v) { return v == sentinel; }));
            logitkit::tensor_view<T, 2> ynull(nullptr, {2, 3});
            const auto my = thrown_message<std::invalid_argument>([&] { call_fwd(f, x, ynull); });
            check_message(my, fn, {"y"});
        }
        SECTION("partial overlap of y with x") {
            std::vector<T> buf = filled<T>(40, T(-3));
            const std::vector<T> before = buf;
            struct ov {
                const char* what;
                logitkit::extents_type<2> xshape, xstr;
                index_t xoff;
                logitkit::extents_type<2> yshape, ystr;
                index_t yoff;
            };
            const std::vector<ov> overlaps = {
                {"y is x shifted by one element", {2, 3}, {3, 1}, 0, {2, 3}, {3, 1}, 1},
                {"y is x shifted back by one element", {2, 3}, {3, 1}, 1, {2, 3}, {3, 1}, 0},
                {"y is x shifted by a row", {2, 3}, {3, 1}, 0, {2, 3}, {3, 1}, 3},
                {"y is x transposed in the same memory", {3, 3}, {3, 1}, 0, {3, 3}, {1, 3}, 0},
                {"same pointer, different strides", {2, 3}, {3, 1}, 0, {2, 3}, {6, 2}, 0},
                {"y interleaved with x (disjoint elements, overlapping spans)", {2, 3}, {6, 2}, 0, {2, 3}, {6, 2}, 1},
                {"y inside the padding of x", {2, 3}, {10, 1}, 0, {2, 3}, {3, 1}, 4},
                {"y with negative strides covering x", {2, 3}, {3, 1}, 0, {2, 3}, {-3, -1}, 6},
                {"y ends where x starts", {2, 3}, {3, 1}, 5, {2, 3}, {3, 1}, 0},
            };
            for (const ov& o : overlaps) {
                INFO(o.what);
                logitkit::tensor_view<const T, 2> xv(buf.data() + o.xoff + 10, o.xshape, o.xstr);
                logitkit::tensor_view<T, 2> yv(buf.data() + o.yoff + 10, o.yshape, o.ystr);
                const auto msg = thrown_message<std::invalid_argument>([&] { call_fwd(f, xv, yv); });
                check_message(msg, fn, {"x", "y"});
                CHECK(buf == before);
            }
        }
        SECTION("non-overlapping neighbours and exact in-place are accepted") {
            std::vector<T> buf = filled<T>(40, T(-3));
            // y right after x in the same buffer.
            logitkit::tensor_view<const T, 2> xv(buf.data(), {2, 3});
            logitkit::tensor_view<T, 2> yv(buf.data() + 6, {2, 3});
            CHECK_NOTHROW(call_fwd(f, xv, yv));
            // Exact in place, with x as a const view and as a mutable view, and with strides.
            std::vector<T> a = filled<T>(6, T(-1)), b = a, c(20, T(0));
            logitkit::tensor_view<T, 2> av(a.data(), {2, 3});
            logitkit::tensor_view<const T, 2> acv(a.data(), {2, 3});
            logitkit::tensor_view<T, 2> bv(b.data(), {2, 3});
            CHECK_NOTHROW(call_fwd(f, acv, av));
            CHECK_NOTHROW(call_fwd(f, bv, bv));
            CHECK(a == b);
            logitkit::tensor_view<T, 2> cv(c.data() + 19, {2, 3}, {-9, -2});
            CHECK_NOTHROW(call_fwd(f, cv, cv, 0));
        }
    }
}

TEMPLATE_TEST_CASE("logsumexp: argument errors", "[errors]", float, double) {
    using T = TestType;
    const std::string fn = "logsumexp";
    const std::vector<T> xs = filled<T>(6, T(-1));
    logitkit::tensor_view<const T, 2> x(xs.data(), {2, 3});
    const T sentinel = T(77.5);

    SECTION("out shape differs from x's shape with extent 1 on the axis") {
        struct bad {
            int axis;
            shape_t out;
        };
        for (const bad& b : {bad{1, {2, 3}}, bad{1, {1, 3}}, bad{1, {2, 2}}, bad{0, {2, 1}}, bad{0, {2, 3}},
                             bad{-1, {1, 1}}, bad{-2, {1, 2}}, bad{1, {0, 1}}}) {
            std::vector<T> ob(12, sentinel);
            logitkit::tensor_view<T, 2> out(ob.data(), to_extents<2>(b.out));
            const auto msg = thrown_message<std::invalid_argument>([&] { logitkit::logsumexp(x, out, b.axis); });
            check_message(msg, fn, {"out"});
            INFO("message: " << msg);
            CHECK(contains_shape(msg, b.out));
            CHECK((contains_shape(msg, lk_ref::reduced_shape({2, 3}, b.axis)) || contains_shape(msg, {2, 3})));
            CHECK(std::all_of(ob.begin(), ob.end(), [&](T v) { return v == sentinel; }));
        }
    }
    SECTION("axis out of range") {
        std::vector<T> ob(6, sentinel);
        for (int axis : bad_axes_rank2) {
            logitkit::tensor_view<T, 2> out(ob.data(), {2, 1});
            const auto msg = thrown_message<std::out_of_range>([&] { logitkit::logsumexp(x, out, axis); });
            check_axis_message(msg, fn, axis, 2);
        }
        logitkit::tensor_view<const T, 3> x3(xs.data(), {1, 2, 3});
        logitkit::tensor_view<T, 3> o3(ob.data(), {1, 2, 1});
        check_axis_message(thrown_message<std::out_of_range>([&] { logitkit::logsumexp(x3, o3, 3); }), fn, 3, 3);
        check_axis_message(thrown_message<std::out_of_range>([&] { logitkit::logsumexp(x3, o3, -4); }), fn, -4, 3);
        CHECK(std::all_of(ob.begin(), ob.end(), [&](T v) { return v == sentinel; }));
    }
    SECTION("null data with a non-zero size") {
        std::vector<T> ob(2, sentinel);
        logitkit::tensor_view<T, 2> out(ob.data(), {2, 1});
        logitkit::tensor_view<const T, 2> xnull(nullptr, {2, 3});
        check_message(thrown_message<std::invalid_argument>([&] { logitkit::logsumexp(xnull, out, 1); }), fn, {"x"});
        CHECK(std::all_of(ob.begin(), ob.end(), [&](T v) { return v == sentinel; }));
        logitkit::tensor_view<T, 2> onull(nullptr, {2, 1});
        check_message(thrown_message<std::invalid_argument>([&] { logitkit::logsumexp(x, onull, 1); }), fn, {"out"});
    }
    SECTION("out overlapping x") {
        std::vector<T> buf = filled<T>(20, T(-2));
        const std::vector<T> before = buf;
        logitkit::tensor_view<const T, 2> xv(buf.data() + 2, {2, 3});
        for (index_t off : {1, 2, 4, 6, 7}) {
            INFO("out covers [" << off << ", " << off + 1 << "] of a buffer where x covers [2, 7]");
            logitkit::tensor_view<T, 2> out(buf.data() + off, {2, 1});
            const auto msg = thrown_message<std::invalid_argument>([&] { logitkit::logsumexp(xv, out, 1); });
            check_message(msg, fn, {"x", "out"});
            CHECK(buf == before);
        }
        // Right after x: accepted.
        logitkit::tensor_view<T, 2> out(buf.data() + 8, {2, 1});
        CHECK_NOTHROW(logitkit::logsumexp(xv, out, 1));
    }
}

TEMPLATE_TEST_CASE("softmax_backward and log_softmax_backward: argument errors", "[errors]", float, double) {
    using T = TestType;
    for (bwd_fn f : {bwd_fn::softmax_backward, bwd_fn::log_softmax_backward}) {
        const std::string fn = fn_name(f);
        INFO("function " << fn);
        const std::vector<T> ys = filled<T>(6, T(0.01)), dys = filled<T>(6, T(-0.5));
        logitkit::tensor_view<const T, 2> y(ys.data(), {2, 3});
        logitkit::tensor_view<const T, 2> dy(dys.data(), {2, 3});
        const T sentinel = T(77.5);

        SECTION("dy or dx shape differs from y shape") {
            for (const shape_t& s : std::vector<shape_t>{{3, 2}, {2, 4}, {1, 3}, {0, 3}}) {
                std::vector<T> db = filled<T>(12, T(1)), xb(12, sentinel);
                logitkit::tensor_view<const T, 2> dyb(db.data(), to_extents<2>(s));
                logitkit::tensor_view<T, 2> dx(xb.data(), {2, 3});
                auto msg = thrown_message<std::invalid_argument>([&] { call_bwd(f, y, dyb, dx); });
                check_message(msg, fn, {"dy"});
                {
                    INFO("message: " << msg);
                    CHECK(contains_shape(msg, s));
                    CHECK(contains_shape(msg, {2, 3}));
                }
                CHECK(std::all_of(xb.begin(), xb.end(), [&](T v) { return v == sentinel; }));
                logitkit::tensor_view<T, 2> dxb(xb.data(), to_extents<2>(s));
                msg = thrown_message<std::invalid_argument>([&] { call_bwd(f, y, dy, dxb); });
                check_message(msg, fn, {"dx"});
                {
                    INFO("message: " << msg);
                    CHECK(contains_shape(msg, s));
                    CHECK(contains_shape(msg, {2, 3}));
                }
                CHECK(std::all_of(xb.begin(), xb.end(), [&](T v) { return v == sentinel; }));
            }
        }
        SECTION("axis out of range") {
            std::vector<T> xb(6, sentinel);
            logitkit::tensor_view<T, 2> dx(xb.data(), {2, 3});
            for (int axis : bad_axes_rank2)
                check_axis_message(thrown_message<std::out_of_range>([&] { call_bwd(f, y, dy, dx, axis); }), fn, axis, 2);
            CHECK(std::all_of(xb.begin(), xb.end(), [&](T v) { return v == sentinel; }));
            for (int axis : {0, 1, -1, -2}) CHECK_NOTHROW(call_bwd(f, y, dy, dx, axis));
        }
        SECTION("null data with a non-zero size") {
            std::vector<T> xb(6, sentinel);
            logitkit::tensor_view<T, 2> dx(xb.data(), {2, 3});
            logitkit::tensor_view<const T, 2> null2(nullptr, {2, 3});
            check_message(thrown_message<std::invalid_argument>([&] { call_bwd(f, null2, dy, dx); }), fn, {"y"});
            check_message(thrown_message<std::invalid_argument>([&] { call_bwd(f, y, null2, dx); }), fn, {"dy"});
            CHECK(std::all_of(xb.begin(), xb.end(), [&](T v) { return v == sentinel; }));
            logitkit::tensor_view<T, 2> dxnull(nullptr, {2, 3});
            check_message(thrown_message<std::invalid_argument>([&] { call_bwd(f, y, dy, dxnull); }), fn, {"dx"});
        }
        SECTION("partial overlap of dx with y or dy") {
            std::vector<T> buf = filled<T>(30, T(-0.75));
            const std::vector<T> before = buf;
            logitkit::tensor_view<const T, 2> yv(buf.data() + 5, {2, 3});
            logitkit::tensor_view<const T, 2> dyv(buf.data() + 15, {2, 3});
            struct ov {
                const char* what;
                index_t off;
                logitkit::extents_type<2> str;
                const char* other;
            };
            for (const ov& o : {ov{"dx is y shifted by one", 6, {3, 1}, "y"}, ov{"dx is y shifted back by one", 4, {3, 1}, "y"},
                                ov{"dx is y transposed", 5, {1, 2}, "y"}, ov{"dx is dy shifted by one", 16, {3, 1}, "dy"},
                                ov{"dx ends inside dy", 13, {3, 1}, "dy"}, ov{"dx interleaved with dy", 16, {6, 2}, "dy"}}) {
                INFO(o.what);
                logitkit::tensor_view<T, 2> dx(buf.data() + o.off, {2, 3}, o.str);
                const auto msg = thrown_message<std::invalid_argument>([&] { call_bwd(f, yv, dyv, dx); });
                check_message(msg, fn, {"dx", o.other});
                CHECK(buf == before);
            }
        }
        SECTION("dx exactly y, dx exactly dy, and y exactly dy are accepted and correct") {
            const dense<ld> ref_sep = [&] {
                dense<T> yd({2, 3}), dyd({2, 3});
                yd.data = ys;
                dyd.data = dys;
                return f == bwd_fn::softmax_backward ? lk_ref::softmax_backward(yd, dyd, -1)
                                                     : lk_ref::log_softmax_backward(yd, dyd, -1);
            }();
            const dense<ld> ref_same = [&] {
                dense<T> yd({2, 3});
                yd.data = ys;
                return f == bwd_fn::softmax_backward ? lk_ref::softmax_backward(yd, yd, -1)
                                                     : lk_ref::log_softmax_backward(yd, yd, -1);
            }();
            auto close = [&](const std::vector<T>& got, const dense<ld>& ref) {
                for (std::size_t i = 0; i < got.size(); ++i) {
                    INFO("element " << i << ": got " << got[i] << ", expected " << fmt_ld(ref.data[i]));
                    CHECK(std::fabs(static_cast<ld>(got[i]) - ref.data[i]) <= 1e-5L);
                }
            };
            std::vector<T> a = ys;
            logitkit::tensor_view<T, 2> av(a.data(), {2, 3});
            CHECK_NOTHROW(call_bwd(f, logitkit::tensor_view<const T, 2>(av), dy, av));
            close(a, ref_sep);
            std::vector<T> b = dys;
            logitkit::tensor_view<T, 2> bv(b.data(), {2, 3});
            CHECK_NOTHROW(call_bwd(f, y, bv, bv));
            close(b, ref_sep);
            std::vector<T> c = ys;
            logitkit::tensor_view<T, 2> cv(c.data(), {2, 3});
            std::vector<T> out(6, sentinel);
            logitkit::tensor_view<T, 2> ov(out.data(), {2, 3});
            CHECK_NOTHROW(call_bwd(f, cv, cv, ov));  // y and dy the same input
            close(out, ref_same);
            CHECK_NOTHROW(call_bwd(f, cv, cv, cv));  // all three the same
            close(c, ref_same);
        }
    }
}

TEST_CASE("simd_arch_name names the instruction set chosen at compile time", "[arch]") {
    const char* name = logitkit::simd_arch_name();
    REQUIRE(name != nullptr);
    const std::string s = name;
    INFO("simd_arch_name() = " << s);
    CHECK(!s.empty());
#if defined(LOGITKIT_NO_SIMD)
    CHECK(s == "scalar");
#elif defined(__AVX512BW__)
    CHECK(s.find("avx512") != std::string::npos);
#elif defined(__AVX2__)
    CHECK(s.find("avx2") != std::string::npos);
#elif defined(__SSE4_2__)
    CHECK(s.find("sse4") != std::string::npos);
#endif
}
