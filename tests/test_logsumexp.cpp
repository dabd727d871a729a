// logsumexp: values against the long double reference over ranks 1..4, every axis, strided,
// transposed and negative-stride views, and the special-value rules.
#include "test_support.hpp"

using namespace lk_test;

namespace {

struct lse_case {
    int axis = -1;
    layout in_layout;
    layout out_layout;
    bool const_input = true;
    bool default_axis = false;
    std::string data = "?";
};

template <class X, class Y>
void call_lse(X x, Y out, int axis, bool default_axis) {
    if (default_axis)
        logitkit::logsumexp(x, out);
    else
        logitkit::logsumexp(x, out, axis);
}

template <class T>
std::string describe(const lse_case& c, const shape_t& shape) {
    std::ostringstream os;
    os << "logsumexp<" << vals<T>::name() << "> shape " << lk_ref::shape_string(shape) << " axis " << c.axis << " data "
       << c.data << "\n  x layout " << c.in_layout.describe() << "\n  out layout " << c.out_layout.describe()
       << (c.const_input ? "" : ", x passed as a mutable view") << (c.default_axis ? ", default axis" : "");
    return os.str();
}

template <class T, std::size_t R>
bool run_lse(const lse_case& c, const dense<T>& x) {
    const std::string what = describe<T>(c, x.shape);
    const dense<ld> ref = lk_ref::logsumexp(x, c.axis);
    strided_buffer<T, R> xb(to_extents<R>(x.shape), c.in_layout, static_cast<T>(-4242.125));
    xb.fill(x);
    strided_buffer<T, R> ob(to_extents<R>(ref.shape), c.out_layout, static_cast<T>(31337.5));
    if (c.const_input)
        call_lse(xb.cview(), ob.view(), c.axis, c.default_axis);
    else
        call_lse(xb.view(), ob.view(), c.axis, c.default_axis);
    bool ok = true;
    ok &= expect_empty(ob.outside_changes(), what + "\n  output buffer");
    ok &= expect_empty(xb.outside_changes(), what + "\n  input buffer");
    ok &= expect_bitwise_equal(xb.read(), x, what + "\n  input modified");
    ok &= check_close(ob.read(), ref, [](index_t, ld r) { return log_allowed<T>(r); }, what);
    return ok;
}

template <class T>
bool run_lse_any(const lse_case& c, const dense<T>& x) {
    bool ok = false;
    dispatch_rank(x.rank(), [&](auto rank) { ok = run_lse<T, decltype(rank)::value>(c, x); });
    return ok;
}

template <class T>
void lse_rank_suite(std::size_t rank, const std::vector<index_t>& axis_extents, const std::vector<index_t>& others) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    const auto axes = axis_spellings(rank);
    for (index_t n : axis_extents) {
        for (std::size_t ai = 0; ai < axes.size(); ++ai) {
            const int axis = axes[ai];
            const std::size_t a = lk_ref::normalize_axis(axis, rank);
            const std::vector<index_t> oth = n >= 1000 ? std::vector<index_t>{2, 3, 1} : others;
            const shape_t shape = shape_with_axis(rank, a, n, oth, static_cast<std::size_t>(n) + ai);
            rng r(seed_for(30 + rank, ++case_id));
            const auto layouts = standard_layouts(rank, a, r);
            for (std::size_t li = 0; li < layouts.size(); ++li) {
                const std::size_t k = static_cast<std::size_t>(n) + ai + li;
                const dist d = all_dists[k % 3];
                lse_case c;
                c.axis = axis;
                c.data = dist_name(d);
                c.in_layout = layouts[li];
                c.out_layout = layouts[(2 * li + static_cast<std::size_t>(n) + ai) % layouts.size()];
                c.const_input = li % 2 == 0;
                c.default_axis = axis == -1 && li % 3 == 0;
                if (!budget.record(run_lse_any<T>(c, random_dense<T>(shape, d, r)))) return;
            }
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("logsumexp: rank 1, extents 1..67, 96..129, 1000 and 4097", "[logsumexp]", float, double) {
    using T = TestType;
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (index_t n : long_axis_extents()) {
        for (dist d : all_dists) {
            rng r(seed_for(40, ++case_id));
            const dense<T> x = random_dense<T>({n}, d, r);
            lse_case c;
            c.axis = n % 2 == 0 ? 0 : -1;
            c.data = dist_name(d);
            c.default_axis = n % 3 == 0 && c.axis == -1;
            if (!budget.record(run_lse<T, 1>(c, x))) return;
            c.in_layout.name = "step-3";
            c.in_layout.inner_step = 3;
            c.out_layout.name = "negative";
            c.out_layout.neg_mask = 1;
            c.const_input = false;
            if (!budget.record(run_lse<T, 1>(c, x))) return;
            c.in_layout.name = "negative";
            c.in_layout.inner_step = 1;
            c.in_layout.neg_mask = 1;
            if (!budget.record(run_lse<T, 1>(c, x))) return;
        }
    }
}

TEMPLATE_TEST_CASE("logsumexp: rank 2, every axis, extents 1..67, 96..129, 1000 and 4097, all layouts", "[logsumexp]", float, double) {
    lse_rank_suite<TestType>(2, long_axis_extents(), {1, 2, 3, 5, 7, 8, 9, 16, 17, 33});
}

TEMPLATE_TEST_CASE("logsumexp: rank 3, every axis and layout", "[logsumexp]", float, double) {
    lse_rank_suite<TestType>(3, {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 67, 1000}, {1, 2, 3, 5, 4});
}

TEMPLATE_TEST_CASE("logsumexp: rank 4, every axis and layout", "[logsumexp]", float, double) {
    lse_rank_suite<TestType>(4, {1, 2, 3, 5, 8, 9, 16, 17, 33, 67, 300}, {1, 2, 3, 2});
}

TEMPLATE_TEST_CASE("logsumexp: columns in blocks of every width, up to a page of each row", "[logsumexp]", float, double) {
    using T = TestType;
    failure_budget budget;
    for_each_wide_column_input<T>(41, [&](const wide_columns_case& w, const dense<T>& x, std::uint64_t,
                                          const char* name) {
        lse_case c;
        c.axis = w.axis;
        c.data = name;
        return budget.record(run_lse_any<T>(c, x));
    });
}

TEMPLATE_TEST_CASE("logsumexp: a special value at every position of the row", "[logsumexp][special]", float, double) {
    using T = TestType;
    failure_budget budget;
    const T specials[] = {vals<T>::nan(), vals<T>::inf(), -vals<T>::inf(), static_cast<T>(1e30), static_cast<T>(-1e30),
                          vals<T>::max(), -vals<T>::max(), vals<T>::denormal()};
    std::vector<index_t> ns;
    for (index_t n = 1; n <= 40; ++n) ns.push_back(n);
    for (index_t n : {47, 63, 64, 65, 129}) ns.push_back(n);
    std::uint64_t case_id = 0;
    for (index_t n : ns) {
        for (T s : specials) {
            rng r(seed_for(41, ++case_id));
            dense<T> x = random_dense<T>({n, n}, 10.0, r);
            for (index_t p = 0; p < n; ++p) x[p * n + p] = s;
            std::ostringstream name;
            name << "random rows with " << s << " on the diagonal";
            const auto layouts = standard_layouts(2, 1, r);
            lse_case c;
            c.axis = 1;
            c.data = name.str();
            if (!budget.record(run_lse<T, 2>(c, x))) return;
            c.axis = 0;  // columns: the special value sits at every position of each column too
            c.in_layout = layouts[case_id % layouts.size()];
            c.out_layout = layouts[(case_id + 4) % layouts.size()];
            if (!budget.record(run_lse<T, 2>(c, x))) return;
        }
        // -inf everywhere except one finite entry per row; all -inf; all +inf; all NaN.
        dense<T> x({n, n}, -vals<T>::inf());
        rng r(seed_for(42, static_cast<std::uint64_t>(n)));
        for (index_t p = 0; p < n; ++p) x[p * n + p] = static_cast<T>(r.uniform(-50, 50));
        lse_case c;
        c.axis = -1;
        c.data = "-inf rows with one finite entry";
        if (!budget.record(run_lse<T, 2>(c, x))) return;
        for (T s : {-vals<T>::inf(), vals<T>::inf(), vals<T>::nan()}) {
            std::ostringstream name;
            name << "rows of all " << s;
            c.data = name.str();
            if (!budget.record(run_lse<T, 2>(c, dense<T>({3, n}, s)))) return;
        }
    }
}

TEMPLATE_TEST_CASE("logsumexp: random mixtures of extreme values", "[logsumexp][special]", float, double) {
    using T = TestType;
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (index_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 100}) {
        for (double p : {0.05, 0.3, 1.0}) {
            for (int axis : {1, 0}) {
                rng r(seed_for(43, ++case_id));
                const shape_t shape = axis == 1 ? shape_t{40, n} : shape_t{n, 40};
                const auto layouts = standard_layouts(2, static_cast<std::size_t>(axis), r);
                lse_case c;
                c.axis = axis;
                c.in_layout = layouts[case_id % layouts.size()];
                c.out_layout = layouts[(case_id * 7 + 1) % layouts.size()];
                std::ostringstream name;
                name << "extreme values with probability " << p;
                c.data = name.str();
                if (!budget.record(run_lse<T, 2>(c, special_dense<T>(shape, p, r)))) return;
            }
        }
    }
    for (index_t n : {1, 2, 3, 8, 17, 64, 257}) {
        rng r(seed_for(44, static_cast<std::uint64_t>(n)));
        lse_case c;
        c.data = "finite extremes (+-FLT_MAX, +-DBL_MAX, +-1e30, denormals)";
        if (!budget.record(run_lse<T, 2>(c, finite_extreme_dense<T>({9, n}, r)))) return;
    }
}

TEMPLATE_TEST_CASE("logsumexp: hand-checked values", "[logsumexp]", float, double) {
    using T = TestType;
    const T inf = vals<T>::inf();
    const T nan = vals<T>::nan();
    auto lse = [](std::vector<T> x) {
        T out = T(-7);
        logitkit::tensor_view<const T, 1> xv(x.data(), {static_cast<index_t>(x.size())});
        logitkit::tensor_view<T, 1> ov(&out, {1});
        logitkit::logsumexp(xv, ov, 0);
        return out;
    };
    const ld ln2 = std::log(2.0L);
    CHECK(std::fabs(static_cast<ld>(lse({T(0), T(0)})) - ln2) <= log_allowed<T>(ln2));
    CHECK(std::fabs(static_cast<ld>(lse({T(10), T(10)})) - (10 + ln2)) <= log_allowed<T>(10 + ln2));
    CHECK(lse({-inf, T(0)}) == T(0));
    CHECK(lse({T(-1e30), T(0)}) == T(0));
    CHECK(lse({-inf, -inf}) == -inf);
    CHECK(lse({-inf}) == -inf);
    CHECK(lse({inf, T(1)}) == inf);
    CHECK(lse({inf, -inf}) == inf);
    CHECK(lse({-inf, inf, inf}) == inf);
    CHECK(std::isnan(lse({inf, nan})));
    CHECK(std::isnan(lse({nan, inf})));
    CHECK(std::isnan(lse({-inf, nan})));
    CHECK(std::isnan(lse({T(1), nan, T(2)})));
    CHECK(lse({vals<T>::max(), vals<T>::max()}) == vals<T>::max());  // no overflow: max + log 2 rounds to max
    CHECK(lse({vals<T>::max(), -vals<T>::max()}) == vals<T>::max());
    CHECK(lse({-vals<T>::max(), -vals<T>::max()}) == -vals<T>::max());
    CHECK(lse({static_cast<T>(1e30), static_cast<T>(1e30)}) == static_cast<T>(1e30));
    for (index_t n = 1; n <= 67; ++n) {
        const ld expected = std::log(static_cast<ld>(n));
        const T got = lse(std::vector<T>(static_cast<std::size_t>(n), T(0)));
        INFO("logsumexp of " << n << " zeros: " << got);
        CHECK(std::fabs(static_cast<ld>(got) - expected) <= log_allowed<T>(expected));
    }
}

TEMPLATE_TEST_CASE("logsumexp: axis extent 1 returns the input", "[logsumexp]", float, double) {
    using T = TestType;
    rng r(seed_for(45));
    for (const shape_t& s : std::vector<shape_t>{{1}, {5, 1}, {1, 5}, {3, 1, 4}, {2, 3, 4, 1}}) {
        for (int axis : axis_spellings(s.size())) {
            if (s[lk_ref::normalize_axis(axis, s.size())] != 1) continue;
            dense<T> x = random_dense<T>(s, 1e4, r);
            const T extremes[] = {vals<T>::max(), -vals<T>::max(), vals<T>::denormal(), -vals<T>::inf(), vals<T>::inf()};
            for (std::size_t i = 0; i < x.data.size() && i < 5; ++i) x.data[i] = extremes[i];
            dispatch_rank(s.size(), [&](auto rank) {
                constexpr std::size_t R = decltype(rank)::value;
                std::vector<T> out(x.data.size(), T(-7));
                logitkit::tensor_view<const T, R> xv(x.data.data(), to_extents<R>(s));
                logitkit::tensor_view<T, R> ov(out.data(), to_extents<R>(s));
                logitkit::logsumexp(xv, ov, axis);
                for (std::size_t i = 0; i < out.size(); ++i) {
                    INFO("shape " << lk_ref::shape_string(s) << " axis " << axis << " x=" << x.data[i] << " out=" << out[i]);
                    CHECK(out[i] == x.data[i]);
                }
            });
        }
    }
}

TEMPLATE_TEST_CASE("logsumexp: empty tensors", "[logsumexp][empty]", float, double) {
    using T = TestType;
    // x and out both empty (a zero extent off the reduction axis): a no-op, null pointers allowed.
    for (const shape_t& s : std::vector<shape_t>{{0, 5}, {5, 0}, {0, 3, 4}, {3, 0, 4}, {2, 3, 4, 0}}) {
        for (int axis : axis_spellings(s.size())) {
            const shape_t os = lk_ref::reduced_shape(s, axis);
            if (lk_ref::numel(os) != 0) continue;
            dispatch_rank(s.size(), [&](auto rank) {
                constexpr std::size_t R = decltype(rank)::value;
                INFO("shape " << lk_ref::shape_string(s) << " axis " << axis);
                logitkit::tensor_view<const T, R> xv(nullptr, to_extents<R>(s));
                logitkit::tensor_view<T, R> ov(nullptr, to_extents<R>(os));
                CHECK_NOTHROW(logitkit::logsumexp(xv, ov, axis));
            });
        }
    }
    // x empty along the reduction axis, out not empty: the sum of no terms is 0, log 0 = -inf
    // (PyTorch: logsumexp(empty(3, 0), 1) = [-inf, -inf, -inf]). docs/api.md also calls empty
    // tensors a no-op, so an untouched output is accepted; anything else is not.
    {
        const T sentinel = T(123.5);
        std::vector<T> out(3, sentinel);
        logitkit::tensor_view<const T, 2> xv(nullptr, {3, 0});
        logitkit::tensor_view<T, 2> ov(out.data(), {3, 1});
        CHECK_NOTHROW(logitkit::logsumexp(xv, ov, 1));
        for (T v : out) {
            INFO("logsumexp over an empty axis wrote " << v);
            CHECK((v == -vals<T>::inf() || v == sentinel));
        }
    }
}
