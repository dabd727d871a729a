// softmax_backward and log_softmax_backward: values against the long double reference over
// ranks 1..4, every axis, strided, transposed and negative-stride views, the permitted aliasing
// (dx is y, dx is dy), and IEEE propagation of non-finite inputs.
#include "test_support.hpp"

using namespace lk_test;

namespace {

enum class bwd_op { softmax_backward, log_softmax_backward };
enum class alias { none, dx_is_y, dx_is_dy };

const char* name_of(bwd_op op) {
    return op == bwd_op::softmax_backward ? "softmax_backward" : "log_softmax_backward";
}
const char* name_of(alias a) {
    return a == alias::none ? "separate dx" : a == alias::dx_is_y ? "dx is y" : "dx is dy";
}

struct bwd_case {
    bwd_op op = bwd_op::softmax_backward;
    int axis = -1;
    layout y_layout, dy_layout, dx_layout;
    alias al = alias::none;
    bool const_inputs = true;
    bool default_axis = false;
    std::string data = "?";
};

template <class Y, class DY, class DX>
void call_bwd(bwd_op op, Y y, DY dy, DX dx, int axis, bool default_axis) {
    if (op == bwd_op::softmax_backward) {
        if (default_axis)
            logitkit::softmax_backward(y, dy, dx);
        else
            logitkit::softmax_backward(y, dy, dx, axis);
    } else {
        if (default_axis)
            logitkit::log_softmax_backward(y, dy, dx);
        else
            logitkit::log_softmax_backward(y, dy, dx, axis);
    }
}

template <class T>
std::string describe(const bwd_case& c, const shape_t& shape) {
    std::ostringstream os;
    os << name_of(c.op) << "<" << vals<T>::name() << "> shape " << lk_ref::shape_string(shape) << " axis " << c.axis
       << " data " << c.data << ", " << name_of(c.al) << "\n  y layout " << c.y_layout.describe() << "\n  dy layout "
       << c.dy_layout.describe();
    if (c.al == alias::none) os << "\n  dx layout " << c.dx_layout.describe();
    os << (c.const_inputs ? "" : ", inputs passed as mutable views") << (c.default_axis ? ", default axis" : "");
    return os.str();
}

template <class T, std::size_t R>
bool run_bwd(const bwd_case& c, const dense<T>& y, const dense<T>& dy) {
    const std::string what = describe<T>(c, y.shape);
    const auto ext = to_extents<R>(y.shape);
    const bool soft = c.op == bwd_op::softmax_backward;
    const dense<ld> ref = soft ? lk_ref::softmax_backward(y, dy, c.axis) : lk_ref::log_softmax_backward(y, dy, c.axis);
    const dense<ld> scale =
        soft ? lk_ref::softmax_backward_scale(y, dy, c.axis) : lk_ref::log_softmax_backward_scale(y, dy, c.axis);
    strided_buffer<T, R> yb(ext, c.y_layout, static_cast<T>(-4242.125));
    strided_buffer<T, R> dyb(ext, c.dy_layout, static_cast<T>(-2121.0625));
    strided_buffer<T, R> dxb(ext, c.dx_layout, static_cast<T>(31337.5));
    yb.fill(y);
    dyb.fill(dy);
    strided_buffer<T, R>& out = c.al == alias::dx_is_y ? yb : c.al == alias::dx_is_dy ? dyb : dxb;
    if (c.const_inputs)
        call_bwd(c.op, yb.cview(), dyb.cview(), out.view(), c.axis, c.default_axis);
    else
        call_bwd(c.op, yb.view(), dyb.view(), out.view(), c.axis, c.default_axis);
    bool ok = true;
    ok &= expect_empty(yb.outside_changes(), what + "\n  y buffer");
    ok &= expect_empty(dyb.outside_changes(), what + "\n  dy buffer");
    ok &= expect_empty(dxb.outside_changes(), what + "\n  dx buffer");
    if (c.al != alias::dx_is_y) ok &= expect_bitwise_equal(yb.read(), y, what + "\n  y modified");
    if (c.al != alias::dx_is_dy) ok &= expect_bitwise_equal(dyb.read(), dy, what + "\n  dy modified");
    const ld tiny = 4 * static_cast<ld>(vals<T>::true_min());
    ok &= check_close(out.read(), ref,
                      [&](index_t i, ld) { return bounds<T>::backward_coef * scale[i] + tiny; }, what);
    return ok;
}

template <class T>
bool run_bwd_any(const bwd_case& c, const dense<T>& y, const dense<T>& dy) {
    bool ok = false;
    dispatch_rank(y.rank(), [&](auto rank) { ok = run_bwd<T, decltype(rank)::value>(c, y, dy); });
    return ok;
}

/// Kinds of (y, dy) data.
enum class bwd_data { realistic_small, realistic_large, arbitrary };
constexpr bwd_data all_bwd_data[] = {bwd_data::realistic_small, bwd_data::realistic_large, bwd_data::arbitrary};

/// y: the (log_)softmax of random logits (rounded to T) or arbitrary values; dy: random.
template <class T>
std::pair<dense<T>, dense<T>> make_bwd_data(bwd_op op, bwd_data kind, const shape_t& shape, int axis, rng& r,
                                            std::string& name) {
    dense<T> y(shape), dy(shape);
    const bool soft = op == bwd_op::softmax_backward;
    if (kind == bwd_data::arbitrary) {
        for (auto& v : y.data) v = static_cast<T>(soft ? r.uniform(-1, 1) : r.uniform(-20, 2));
        dy = random_dense<T>(shape, 10.0, r);
        name = soft ? "y uniform(-1,1), dy uniform(-10,10)" : "y uniform(-20,2), dy uniform(-10,10)";
    } else {
        const double mag = kind == bwd_data::realistic_small ? 5.0 : 50.0;
        const dense<T> logits = random_dense<T>(shape, mag, r);
        const dense<ld> yl = soft ? lk_ref::softmax(logits, axis) : lk_ref::log_softmax(logits, axis);
        for (index_t i = 0; i < y.size(); ++i) y[i] = static_cast<T>(yl[i]);
        dy = random_dense<T>(shape, kind == bwd_data::realistic_small ? 1.0 : 1e3, r);
        name = kind == bwd_data::realistic_small ? "y from logits uniform(-5,5), dy uniform(-1,1)"
                                                 : "y from logits uniform(-50,50), dy uniform(-1e3,1e3)";
    }
    return {y, dy};
}

template <class T>
void bwd_rank1_suite(bwd_op op) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    layout step3, neg, step2;
    step3.name = "step-3";
    step3.inner_step = 3;
    neg.name = "negative";
    neg.neg_mask = 1;
    step2.name = "step-2";
    step2.inner_step = 2;
    for (index_t n : long_axis_extents()) {
        for (bwd_data kind : all_bwd_data) {
            rng r(seed_for(50, ++case_id));
            std::string name;
            const int axis = n % 2 == 0 ? 0 : -1;
            const auto d = make_bwd_data<T>(op, kind, {n}, axis, r, name);
            std::vector<bwd_case> cases(5);
            for (auto& c : cases) {
                c.op = op;
                c.axis = axis;
                c.data = name;
            }
            cases[0].default_axis = axis == -1;
            cases[1].y_layout = step3;
            cases[1].dy_layout = neg;
            cases[1].dx_layout = step2;
            cases[1].const_inputs = false;
            cases[2].y_layout = neg;
            cases[2].dy_layout = step2;
            cases[2].dx_layout = neg;
            cases[3].al = alias::dx_is_y;
            cases[3].y_layout = neg;
            cases[4].al = alias::dx_is_dy;
            cases[4].dy_layout = step3;
            cases[4].const_inputs = false;
            for (const auto& c : cases)
                if (!budget.record(run_bwd<T, 1>(c, d.first, d.second))) return;
        }
    }
}

template <class T>
void bwd_rank_suite(bwd_op op, std::size_t rank, const std::vector<index_t>& axis_extents,
                    const std::vector<index_t>& others) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    const auto axes = axis_spellings(rank);
    for (index_t n : axis_extents) {
        for (std::size_t ai = 0; ai < axes.size(); ++ai) {
            const int axis = axes[ai];
            const std::size_t a = lk_ref::normalize_axis(axis, rank);
            const std::vector<index_t> oth = n >= 1000 ? std::vector<index_t>{2, 3, 1} : others;
            const shape_t shape = shape_with_axis(rank, a, n, oth, static_cast<std::size_t>(n) + ai);
            rng r(seed_for(60 + rank, ++case_id));
            const auto layouts = standard_layouts(rank, a, r);
            const std::size_t L = layouts.size();
            for (std::size_t li = 0; li < L + 2; ++li) {
                const std::size_t k = static_cast<std::size_t>(n) + ai + li;
                std::string name;
                const auto d = make_bwd_data<T>(op, all_bwd_data[k % 3], shape, axis, r, name);
                bwd_case c;
                c.op = op;
                c.axis = axis;
                c.data = name;
                c.const_inputs = li % 2 == 0;
                c.y_layout = layouts[li % L];
                c.dy_layout = layouts[(li + 3 + static_cast<std::size_t>(n)) % L];
                c.dx_layout = layouts[(2 * li + static_cast<std::size_t>(n) + ai) % L];
                if (li == L) c.al = alias::dx_is_y;
                if (li == L + 1) c.al = alias::dx_is_dy;
                if (!budget.record(run_bwd_any<T>(c, d.first, d.second))) return;
            }
        }
    }
}

/// wide_column_cases with every kind of data, dx separate and dx aliasing y.
template <class T>
void bwd_wide_columns_suite(bwd_op op) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (const auto& w : wide_column_cases()) {
        for (bwd_data kind : all_bwd_data) {
            rng r(seed_for(62, ++case_id));
            std::string name;
            const auto d = make_bwd_data<T>(op, kind, w.shape, w.axis, r, name);
            bwd_case c;
            c.op = op;
            c.axis = w.axis;
            c.data = name;
            if (case_id % 2 == 0) c.al = alias::dx_is_y;
            if (!budget.record(run_bwd_any<T>(c, d.first, d.second))) return;
        }
    }
}

/// Non-finite values in y and dy: the result must follow IEEE arithmetic of the formula.
template <class T>
void bwd_special_suite(bwd_op op) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    const bool soft = op == bwd_op::softmax_backward;
    for (index_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 100}) {
        for (int which : {0, 1, 2}) {
            rng r(seed_for(70, ++case_id));
            std::string name;
            auto d = make_bwd_data<T>(op, bwd_data::realistic_small, {n, n}, 1, r, name);
            // One non-finite value per row, at every position (row p, column p).
            const T s = which == 0 ? vals<T>::nan() : which == 1 ? vals<T>::inf() : -vals<T>::inf();
            for (index_t p = 0; p < n; ++p) d.second[p * n + p] = s;
            bwd_case c;
            c.op = op;
            c.axis = 1;
            std::ostringstream os;
            os << name << ", dy[p, p] = " << s;
            c.data = os.str();
            if (!budget.record(run_bwd<T, 2>(c, d.first, d.second))) return;
            // The same value in y instead (log_softmax_backward: exp(-inf) = 0 and exp(inf) = inf).
            auto e = make_bwd_data<T>(op, bwd_data::realistic_small, {n, n}, 1, r, name);
            for (index_t p = 0; p < n; ++p) e.first[p * n + p] = s;
            std::ostringstream os2;
            os2 << name << ", y[p, p] = " << s;
            c.data = os2.str();
            c.axis = 0;
            c.y_layout.name = "transposed";
            c.y_layout.order = {1, 0};
            if (!budget.record(run_bwd<T, 2>(c, e.first, e.second))) return;
        }
        // log_softmax outputs of -inf logits: y = -inf where the probability is 0.
        if (!soft) {
            rng r(seed_for(71, static_cast<std::uint64_t>(n)));
            dense<T> y = random_dense<T>({3, n}, 3.0, r);
            for (index_t i = 0; i < y.size(); i += 3) y[i] = -vals<T>::inf();
            const dense<T> dy = random_dense<T>({3, n}, 1.0, r);
            bwd_case c;
            c.op = op;
            c.data = "y with -inf entries (zero probability), finite dy";
            if (!budget.record(run_bwd<T, 2>(c, y, dy))) return;
        }
    }
}

template <class T>
void bwd_empty_suite(bwd_op op) {
    for (const shape_t& s : std::vector<shape_t>{{0}, {0, 5}, {5, 0}, {3, 0, 4}, {2, 3, 4, 0}}) {
        for (int axis : axis_spellings(s.size())) {
            dispatch_rank(s.size(), [&](auto rank) {
                constexpr std::size_t R = decltype(rank)::value;
                INFO(name_of(op) << " empty shape " << lk_ref::shape_string(s) << " axis " << axis);
                logitkit::tensor_view<const T, R> y(nullptr, to_extents<R>(s));
                logitkit::tensor_view<const T, R> dy(nullptr, to_extents<R>(s));
                logitkit::tensor_view<T, R> dx(nullptr, to_extents<R>(s));
                CHECK_NOTHROW(call_bwd(op, y, dy, dx, axis, false));
            });
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("softmax_backward: rank 1, extents 1..67, 96..129, 1000 and 4097", "[backward]", float, double) {
    bwd_rank1_suite<TestType>(bwd_op::softmax_backward);
}
TEMPLATE_TEST_CASE("log_softmax_backward: rank 1, extents 1..67, 96..129, 1000 and 4097", "[backward]", float, double) {
    bwd_rank1_suite<TestType>(bwd_op::log_softmax_backward);
}

TEMPLATE_TEST_CASE("softmax_backward: rank 2, every axis and layout", "[backward]", float, double) {
    bwd_rank_suite<TestType>(bwd_op::softmax_backward, 2, long_axis_extents(), {1, 2, 3, 5, 7, 8, 9, 16, 17, 33});
}
TEMPLATE_TEST_CASE("log_softmax_backward: rank 2, every axis and layout", "[backward]", float, double) {
    bwd_rank_suite<TestType>(bwd_op::log_softmax_backward, 2, long_axis_extents(), {1, 2, 3, 5, 7, 8, 9, 16, 17, 33});
}

TEMPLATE_TEST_CASE("softmax_backward: ranks 3 and 4, every axis and layout", "[backward]", float, double) {
    bwd_rank_suite<TestType>(bwd_op::softmax_backward, 3, {1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 33, 64, 67, 1000}, {1, 2, 3, 5});
    bwd_rank_suite<TestType>(bwd_op::softmax_backward, 4, {1, 2, 3, 8, 9, 17, 33, 67}, {1, 2, 3, 2});
}
TEMPLATE_TEST_CASE("log_softmax_backward: ranks 3 and 4, every axis and layout", "[backward]", float, double) {
    bwd_rank_suite<TestType>(bwd_op::log_softmax_backward, 3, {1, 2, 3, 5, 7, 8, 9, 16, 17, 31, 33, 64, 67, 1000},
                             {1, 2, 3, 5});
    bwd_rank_suite<TestType>(bwd_op::log_softmax_backward, 4, {1, 2, 3, 8, 9, 17, 33, 67}, {1, 2, 3, 2});
}

TEMPLATE_TEST_CASE("softmax_backward: columns in blocks of every width, up to a page of each row", "[backward]", float, double) {
    bwd_wide_columns_suite<TestType>(bwd_op::softmax_backward);
}
TEMPLATE_TEST_CASE("log_softmax_backward: columns in blocks of every width, up to a page of each row", "[backward]", float, double) {
    bwd_wide_columns_suite<TestType>(bwd_op::log_softmax_backward);
}

TEMPLATE_TEST_CASE("softmax_backward: non-finite inputs propagate", "[backward][special]", float, double) {
    bwd_special_suite<TestType>(bwd_op::softmax_backward);
}
TEMPLATE_TEST_CASE("log_softmax_backward: non-finite inputs propagate", "[backward][special]", float, double) {
    bwd_special_suite<TestType>(bwd_op::log_softmax_backward);
}

TEMPLATE_TEST_CASE("backward kernels: empty tensors are a no-op", "[backward][empty]", float, double) {
    bwd_empty_suite<TestType>(bwd_op::softmax_backward);
    bwd_empty_suite<TestType>(bwd_op::log_softmax_backward);
}

TEMPLATE_TEST_CASE("backward kernels: hand-checked values", "[backward]", float, double) {
    using T = TestType;
    // y = [0.25, 0.75], dy = [1, 0]: sum(dy * y) = 0.25, dx = [0.25 * 0.75, 0.75 * -0.25].
    std::vector<T> y = {T(0.25), T(0.75)}, dy = {T(1), T(0)}, dx(2, T(-7));
    logitkit::tensor_view<const T, 1> yv(y.data(), {2}), dyv(dy.data(), {2});
    logitkit::tensor_view<T, 1> dxv(dx.data(), {2});
    logitkit::softmax_backward(yv, dyv, dxv);
    CHECK(dx[0] == T(0.1875));
    CHECK(dx[1] == T(-0.1875));
    // log_softmax_backward: y = log([0.25, 0.75]), dy = [1, 1]: dx = dy - p * 2 = [0.5, -0.5].
    std::vector<T> ly = {static_cast<T>(std::log(0.25L)), static_cast<T>(std::log(0.75L))}, ldy = {T(1), T(1)};
    logitkit::tensor_view<const T, 1> lyv(ly.data(), {2}), ldyv(ldy.data(), {2});
    logitkit::log_softmax_backward(lyv, ldyv, dxv);
    CHECK(std::fabs(static_cast<ld>(dx[0]) - 0.5L) <= 4 * bounds<T>::backward_coef);
    CHECK(std::fabs(static_cast<ld>(dx[1]) + 0.5L) <= 4 * bounds<T>::backward_coef);
    // A row of one: softmax_backward with y = 1 gives dy - dy = 0.
    T one = T(1), g = T(3.5), out = T(-7);
    logitkit::softmax_backward(logitkit::tensor_view<const T, 1>(&one, {1}), logitkit::tensor_view<const T, 1>(&g, {1}),
                               logitkit::tensor_view<T, 1>(&out, {1}));
    CHECK(out == T(0));
}
