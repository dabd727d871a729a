// Bad-input catalogue: argument errors that test_errors.cpp does not already cover, for all five
// kernels: outputs whose strides map several indices to one element, logsumexp's refusal of
// out == x, bad arguments on empty tensors (still reported) next to empty tensors with null data
// (accepted), temperatures that are only bad once rounded to the element type, the axis bounds of
// every rank 1..4, the masks and causal options of the masked overloads, and the error handler,
// which is not used while exceptions are enabled.
// Every rejected call must throw the documented type, start its message with
// "logitkit::<function>: ", name the argument, and leave every buffer as it was.
#include <catch2/catch.hpp>

#include <logitkit/logitkit.hpp>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

enum class kern { softmax, log_softmax, logsumexp, softmax_backward, log_softmax_backward };
constexpr kern catalogue_kernels[] = {kern::softmax, kern::log_softmax, kern::logsumexp, kern::softmax_backward,
                                kern::log_softmax_backward};

const char* name_of(kern k) {
    switch (k) {
        case kern::softmax: return "softmax";
        case kern::log_softmax: return "log_softmax";
        case kern::logsumexp: return "logsumexp";
        case kern::softmax_backward: return "softmax_backward";
        case kern::log_softmax_backward: return "log_softmax_backward";
    }
    return "?";
}
const char* output_name(kern k) {
    return k == kern::logsumexp ? "out" : (k == kern::softmax || k == kern::log_softmax) ? "y" : "dx";
}

/// Calls kernel k with input view `a` (x, or y for the backward kernels), `b` (dy; ignored by
/// the forward kernels) and output `out`.
template <class T, std::size_t R>
void call(kern k, logitkit::tensor_view<const T, R> a, logitkit::tensor_view<const T, R> b,
          logitkit::tensor_view<T, R> out, int axis, double temperature = 1.0) {
    logitkit::softmax_options o;
    o.temperature = temperature;
    switch (k) {
        case kern::softmax: logitkit::softmax(a, out, axis, o); break;
        case kern::log_softmax: logitkit::log_softmax(a, out, axis, o); break;
        case kern::logsumexp: logitkit::logsumexp(a, out, axis); break;
        case kern::softmax_backward: logitkit::softmax_backward(a, b, out, axis); break;
        case kern::log_softmax_backward: logitkit::log_softmax_backward(a, b, out, axis); break;
    }
}

enum class outcome { none, invalid_argument, out_of_range, other };

struct result {
    outcome kind = outcome::none;
    std::string message;
};

template <class F>
result run(F&& f) {
    result r;
    try {
        f();
    } catch (const std::out_of_range& e) {
        r = {outcome::out_of_range, e.what()};
    } catch (const std::invalid_argument& e) {
        r = {outcome::invalid_argument, e.what()};
    } catch (const std::exception& e) {
        r = {outcome::other, e.what()};
    }
    return r;
}

bool has_word(const std::string& s, const std::string& w) {
    auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; };
    for (std::size_t p = s.find(w); p != std::string::npos; p = s.find(w, p + 1)) {
        const bool left = p == 0 || !word_char(s[p - 1]);
        const bool right = p + w.size() >= s.size() || !word_char(s[p + w.size()]);
        if (left && right) return true;
    }
    return false;
}

/// The checks of every rejected call.
void check_rejected(const result& r, outcome expected, kern k, std::initializer_list<std::string> words) {
    INFO("function " << name_of(k) << ", message: " << r.message);
    REQUIRE(r.kind == expected);
    CHECK(r.message.compare(0, std::strlen("logitkit::") + std::strlen(name_of(k)) + 2,
                            std::string("logitkit::") + name_of(k) + ": ") == 0);
    for (const std::string& w : words) {
        INFO("expected the message to name `" << w << "`");
        CHECK(has_word(r.message, w));
    }
}

template <class T>
std::vector<T> ramp(std::size_t n, T start) {
    std::vector<T> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = start + static_cast<T>(i) * T(0.125);
    return v;
}

template <class T>
bool bitwise_same(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("bad-input catalogue: an output whose strides map several indices to one element",
                   "[errors][catalogue]", float, double) {
    using T = TestType;
    const std::vector<T> a = ramp<T>(24, T(-1)), b = ramp<T>(24, T(0.5));
    struct bad_layout {
        const char* what;
        logitkit::extents_type<3> shape, strides;
    };
    // Shapes of the forward/backward outputs (logsumexp's output is reduced on the last axis).
    for (const bad_layout& L : {bad_layout{"stride 0 on an extent-2 dimension", {2, 3, 4}, {0, 4, 1}},
                                bad_layout{"stride 0 on the last dimension", {2, 3, 4}, {12, 4, 0}},
                                bad_layout{"rows overlapping (stride 1 on two dimensions)", {2, 3, 4}, {12, 1, 1}},
                                bad_layout{"interleaved in reverse", {2, 3, 4}, {12, -1, 1}}}) {
        for (kern k : catalogue_kernels) {
            INFO(L.what << "; function " << name_of(k));
            logitkit::extents_type<3> out_shape = L.shape, out_strides = L.strides;
            if (k == kern::logsumexp) {
                out_shape[2] = 1;
                out_strides[2] = 1;  // harmless on an extent-1 dimension
                if (L.strides[0] != 0 && L.strides[1] != 0) out_strides = {3, 0, 1};  // extent 3 on stride 0
            }
            std::vector<T> buf(64, T(77.5));
            const std::vector<T> before = buf;
            T* const base = buf.data() + 16;  // room for the negative stride
            const logitkit::tensor_view<const T, 3> av(a.data(), L.shape), bv(b.data(), L.shape);
            const logitkit::tensor_view<T, 3> out(base, out_shape, out_strides);
            const result r = run([&] { call<T, 3>(k, av, bv, out, -1); });
            check_rejected(r, outcome::invalid_argument, k, {output_name(k), "strides"});
            CHECK(bitwise_same(buf, before));
        }
    }
    // A zero stride on an extent-1 dimension repeats nothing: accepted.
    for (kern k : catalogue_kernels) {
        INFO("function " << name_of(k));
        std::vector<T> buf(64, T(0));
        const logitkit::tensor_view<const T, 3> av(a.data(), {1, 3, 4}), bv(b.data(), {1, 3, 4});
        const logitkit::extents_type<3> out_shape = k == kern::logsumexp ? logitkit::extents_type<3>{1, 3, 1}
                                                                         : logitkit::extents_type<3>{1, 3, 4};
        const logitkit::extents_type<3> out_strides = k == kern::logsumexp ? logitkit::extents_type<3>{0, 1, 0}
                                                                           : logitkit::extents_type<3>{0, 4, 1};
        CHECK_NOTHROW(call<T, 3>(k, av, bv, logitkit::tensor_view<T, 3>(buf.data(), out_shape, out_strides), -1));
    }
}

TEMPLATE_TEST_CASE("bad-input catalogue: logsumexp never runs in place, even when out has x's shape",
                   "[errors][catalogue]", float, double) {
    using T = TestType;
    std::vector<T> buf = ramp<T>(8, T(-2));
    const std::vector<T> before = buf;
    // Axis extent 1: out's shape equals x's, and out is exactly x.
    const logitkit::tensor_view<T, 2> v(buf.data(), {3, 1});
    const result r = run([&] { logitkit::logsumexp(logitkit::tensor_view<const T, 2>(v), v, 1); });
    check_rejected(r, outcome::invalid_argument, kern::logsumexp, {"out", "x"});
    CHECK(bitwise_same(buf, before));
    // Same memory, out covering x's first column only.
    const logitkit::tensor_view<const T, 2> x(buf.data(), {2, 3});
    const result r2 = run([&] { logitkit::logsumexp(x, logitkit::tensor_view<T, 2>(buf.data(), {2, 1}, {3, 1}), 1); });
    check_rejected(r2, outcome::invalid_argument, kern::logsumexp, {"out", "x"});
    CHECK(bitwise_same(buf, before));
}

TEMPLATE_TEST_CASE("bad-input catalogue: empty tensors", "[errors][catalogue]", float, double) {
    using T = TestType;
    std::vector<T> sink(8, T(77.5));
    const std::vector<T> before = sink;
    for (kern k : catalogue_kernels) {
        INFO("function " << name_of(k));
        const logitkit::tensor_view<const T, 2> empty_null(nullptr, {0, 3});
        const logitkit::extents_type<2> out_shape = k == kern::logsumexp ? logitkit::extents_type<2>{0, 1}
                                                                         : logitkit::extents_type<2>{0, 3};
        // Null data is fine for an empty tensor, and nothing is written.
        CHECK_NOTHROW(call<T, 2>(k, empty_null, empty_null, logitkit::tensor_view<T, 2>(nullptr, out_shape), -1));
        if (k != kern::logsumexp)  // along axis 0 logsumexp's out is [1, 3], not empty: below
            CHECK_NOTHROW(call<T, 2>(k, empty_null, empty_null, logitkit::tensor_view<T, 2>(sink.data(), out_shape), 0));
        CHECK(bitwise_same(sink, before));
        // Bad arguments are reported all the same.
        check_rejected(run([&] {
                           call<T, 2>(k, empty_null, empty_null, logitkit::tensor_view<T, 2>(sink.data(), out_shape), 2);
                       }),
                       outcome::out_of_range, k, {"axis"});
        check_rejected(run([&] {
                           call<T, 2>(k, empty_null, empty_null, logitkit::tensor_view<T, 2>(sink.data(), {3, 0}), -1);
                       }),
                       outcome::invalid_argument, k, {output_name(k)});
        if (k == kern::softmax || k == kern::log_softmax)
            check_rejected(run([&] {
                               call<T, 2>(k, empty_null, empty_null, logitkit::tensor_view<T, 2>(sink.data(), out_shape),
                                          -1, 0.0);
                           }),
                           outcome::invalid_argument, k, {"temperature"});
        CHECK(bitwise_same(sink, before));
    }
    // logsumexp over an empty axis: -inf, with or without x's data (null x once made the kernel
    // offset a null pointer; the fuzzer's seed corpus keeps that case too).
    const std::vector<T> x(4, T(1));
    for (const T* data : {x.data(), static_cast<const T*>(nullptr)}) {
        INFO("x.data() " << (data ? "non-null" : "null"));
        std::vector<T> out(3, T(0));
        logitkit::logsumexp(logitkit::tensor_view<const T, 2>(data, {2, 0}),
                            logitkit::tensor_view<T, 2>(out.data(), {2, 1}), 1);
        CHECK(out[0] == -std::numeric_limits<T>::infinity());
        CHECK(out[1] == -std::numeric_limits<T>::infinity());
        CHECK(out[2] == T(0));
        logitkit::logsumexp(logitkit::tensor_view<const T, 2>(data, {0, 3}),
                            logitkit::tensor_view<T, 2>(out.data(), {1, 3}), 0);
        CHECK(out[0] == -std::numeric_limits<T>::infinity());
        CHECK(out[2] == -std::numeric_limits<T>::infinity());
    }
}

TEMPLATE_TEST_CASE("bad-input catalogue: temperatures that are bad only in the element type", "[errors][catalogue]",
                   float, double) {
    using T = TestType;
    const std::vector<T> x = ramp<T>(6, T(-1));
    const logitkit::tensor_view<const T, 2> xv(x.data(), {2, 3});
    struct tcase {
        double t;
        bool valid_float, valid_double;
    };
    for (const tcase& c : {tcase{1e-50, false, true},      // 0 as a float
                           tcase{1e300, false, true},      // inf as a float
                           tcase{1e-40, true, true},       // subnormal as a float: still > 0
                           tcase{std::numeric_limits<double>::denorm_min(), false, true},
                           tcase{std::numeric_limits<double>::max(), false, true}}) {
        const bool valid = sizeof(T) == sizeof(float) ? c.valid_float : c.valid_double;
        for (kern k : {kern::softmax, kern::log_softmax}) {
            INFO("function " << name_of(k) << ", temperature " << c.t);
            std::vector<T> y(6, T(77.5));
            const std::vector<T> before = y;
            const result r = run([&] { call<T, 2>(k, xv, xv, logitkit::tensor_view<T, 2>(y.data(), {2, 3}), -1, c.t); });
            if (valid) {
                CHECK(r.kind == outcome::none);
            } else {
                check_rejected(r, outcome::invalid_argument, k, {"temperature", "representable"});
                CHECK(bitwise_same(y, before));
            }
        }
    }
}

TEMPLATE_TEST_CASE("bad-input catalogue: axis bounds of every rank 1..4", "[errors][catalogue]", float, double) {
    using T = TestType;
    const std::vector<T> a = ramp<T>(16, T(-1)), b = ramp<T>(16, T(0.25));
    auto check_rank = [&](auto rank_tag) {
        constexpr std::size_t R = decltype(rank_tag)::value;
        const int r = static_cast<int>(R);
        logitkit::extents_type<R> shape{};
        for (auto& e : shape) e = 2;
        const logitkit::tensor_view<const T, R> av(a.data(), shape), bv(b.data(), shape);
        for (kern k : catalogue_kernels) {
            for (int axis : {-r - 1, r, r + 3, -r - 9}) {
                INFO("rank " << R << ", function " << name_of(k) << ", axis " << axis);
                std::vector<T> buf(16, T(77.5));
                const std::vector<T> before = buf;
                logitkit::extents_type<R> out_shape = shape;
                if (k == kern::logsumexp) out_shape[R - 1] = 1;
                const result res = run([&] { call<T, R>(k, av, bv, logitkit::tensor_view<T, R>(buf.data(), out_shape), axis); });
                check_rejected(res, outcome::out_of_range, k,
                               {"axis", std::to_string(axis), std::to_string(-r), std::to_string(r)});
                CHECK(bitwise_same(buf, before));
            }
            for (int axis : {-r, r - 1}) {
                INFO("rank " << R << ", function " << name_of(k) << ", valid axis " << axis);
                std::vector<T> buf(16, T(0));
                logitkit::extents_type<R> out_shape = shape;
                if (k == kern::logsumexp) out_shape[static_cast<std::size_t>(axis < 0 ? axis + r : axis)] = 1;
                CHECK_NOTHROW(call<T, R>(k, av, bv, logitkit::tensor_view<T, R>(buf.data(), out_shape), axis));
            }
        }
    };
    check_rank(std::integral_constant<std::size_t, 1>{});
    check_rank(std::integral_constant<std::size_t, 2>{});
    check_rank(std::integral_constant<std::size_t, 3>{});
    check_rank(std::integral_constant<std::size_t, 4>{});
}

namespace {
int handler_calls = 0;
void counting_handler(const char*, const char*) { ++handler_calls; }
}  // namespace

TEST_CASE("bad-input catalogue: with exceptions enabled, errors throw and the handler is not called",
          "[errors][catalogue][error_handler]") {
    STATIC_REQUIRE(!logitkit::errors_use_handler());
    const logitkit::error_handler original = logitkit::get_error_handler();
    REQUIRE(original != nullptr);

    const logitkit::error_handler previous = logitkit::set_error_handler(&counting_handler);
    CHECK(previous == original);
    CHECK(logitkit::get_error_handler() == &counting_handler);
    handler_calls = 0;
    const std::vector<float> x(6, 1.0f);
    std::vector<float> y(6, 77.5f);
    const logitkit::tensor_view<const float, 2> xv(x.data(), {2, 3});
    CHECK_THROWS_AS(logitkit::softmax(xv, logitkit::tensor_view<float, 2>(y.data(), {2, 3}), 5), std::out_of_range);
    CHECK_THROWS_AS(logitkit::softmax(xv, logitkit::tensor_view<float, 2>(y.data(), {3, 2})), std::invalid_argument);
    CHECK_THROWS_AS((logitkit::tensor_view<float, 2>(y.data(), {-1, 2})), std::invalid_argument);
    CHECK(handler_calls == 0);
    CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 77.5f; }));

    // nullptr restores the default; set_error_handler returns the handler that was in use.
    CHECK(logitkit::set_error_handler(nullptr) == &counting_handler);
    CHECK(logitkit::get_error_handler() == original);
    CHECK(logitkit::set_error_handler(original) == original);
}

TEMPLATE_TEST_CASE("bad-input catalogue: masks and causal options of the four maskable kernels", "[errors][catalogue]",
                   float, double) {
    using T = TestType;
    const std::vector<T> a = ramp<T>(24, T(-1)), b = ramp<T>(24, T(0.25));
    const logitkit::tensor_view<const T, 3> av(a.data(), {2, 3, 4}), bv(b.data(), {2, 3, 4});
    bool keep[64] = {};
    const kern maskable[] = {kern::softmax, kern::log_softmax, kern::softmax_backward, kern::log_softmax_backward};
    auto call_masked = [&](kern k, const auto& mask, const logitkit::tensor_view<T, 3>& out, int axis,
                           const logitkit::softmax_options& o) {
        switch (k) {
            case kern::softmax: logitkit::softmax(av, out, mask, axis, o); break;
            case kern::log_softmax: logitkit::log_softmax(av, out, mask, axis, o); break;
            case kern::softmax_backward: logitkit::softmax_backward(av, bv, out, mask, axis, o); break;
            case kern::log_softmax_backward: logitkit::log_softmax_backward(av, bv, out, mask, axis, o); break;
            case kern::logsumexp: break;
        }
    };
    for (kern k : maskable) {
        std::vector<T> sink(32, T(-7.5));
        const std::vector<T> before = sink;
        const logitkit::tensor_view<T, 3> out(sink.data(), {2, 3, 4});
        const logitkit::softmax_options plain;
        // An extent that is neither 1 nor the input's, at every aligned position.
        for (const auto& bad : {logitkit::extents_type<2>{3, 5}, logitkit::extents_type<2>{2, 4},
                                logitkit::extents_type<2>{0, 4}}) {
            const logitkit::tensor_view<const bool, 2> m(keep, bad);
            check_rejected(run([&] { call_masked(k, m, out, -1, plain); }), outcome::invalid_argument, k,
                           {"mask"});
        }
        const logitkit::tensor_view<const bool, 3> m3(keep, {3, 3, 4});
        check_rejected(run([&] { call_masked(k, m3, out, -1, plain); }), outcome::invalid_argument, k, {"mask"});
        // Null mask data with a non-zero size.
        const logitkit::tensor_view<const bool, 1> null_mask(nullptr, {4});
        check_rejected(run([&] { call_masked(k, null_mask, out, -1, plain); }), outcome::invalid_argument, k,
                       {"mask"});
        // An additive mask that shares memory with the output.
        std::vector<T> shared(40, T(0));
        const logitkit::tensor_view<const T, 1> add(shared.data() + 30, {4});
        const logitkit::tensor_view<T, 3> out_over(shared.data() + 10, {2, 3, 4});
        const std::vector<T> shared_before = shared;
        check_rejected(run([&] { call_masked(k, add, out_over, -1, plain); }), outcome::invalid_argument, k,
                       {"mask", output_name(k)});
        CHECK(bitwise_same(shared, shared_before));
        // options.causal with axis 0, masked and not; a bad temperature.
        logitkit::softmax_options causal;
        causal.causal = true;
        const logitkit::tensor_view<const bool, 1> m1(keep, {4});
        check_rejected(run([&] { call_masked(k, m1, out, 0, causal); }), outcome::invalid_argument, k,
                       {"options.causal", "axis"});
        logitkit::softmax_options cold;
        cold.temperature = -1;
        check_rejected(run([&] { call_masked(k, m1, out, -1, cold); }), outcome::invalid_argument, k,
                       {"temperature"});
        CHECK(bitwise_same(sink, before));
    }
}
