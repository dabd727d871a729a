// nll_loss: loss, per-sample losses and gradient against the long double reference of
// reference_loss.hpp, for every option, on [N, C] and [N, C, d1] with strided and in-place views;
// PyTorch's NaN for an all-ignored mean; argument errors that leave the outputs untouched; and the
// composition log_softmax + nll_loss == cross_entropy.
#include <logitkit/logitkit.hpp>
#include <logitkit/nll_loss.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "reference_loss.hpp"

namespace {

namespace lk = logitkit;
namespace ref = lk_loss_ref;
using ref::index_t;
using ref::ld;
using ref::shape_t;

class nll_rng {
public:
    explicit nll_rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    double uniform(double a, double b) { return a + (b - a) * (static_cast<double>(next() >> 11) * 0x1.0p-53); }
    std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(next() % static_cast<std::uint64_t>(n)); }

private:
    std::uint64_t state_;
};

template <class T>
struct nll_tol {
    static constexpr ld value = std::is_same<T, float>::value ? 1e-6L : 1e-14L;
};

ld relative_gap(ld got, ld want) {
    if (std::isnan(want)) return std::isnan(got) ? 0 : 1;
    if (std::isinf(want)) return got == want ? 0 : 1;
    return std::fabs(got - want) / std::max<ld>(1, std::fabs(want));
}

/// A [d0, d1, ...] tensor of T in a buffer with the given strides (any sign), read and written in
/// logical row-major order.
template <class T, std::size_t R>
struct buffer {
    std::vector<T> data;
    lk::extents_type<R> shape{}, strides{};
    index_t offset = 0;
    /// transpose: reverse the memory order of the dimensions; step: multiply every stride.
    buffer(const shape_t& s, bool transpose, index_t step, T fill) {
        index_t stride = 1;
        for (std::size_t i = 0; i < R; ++i) {
            const std::size_t d = transpose ? i : R - 1 - i;
            shape[d] = s[d];
            strides[d] = stride * step;
            stride *= std::max<index_t>(1, s[d]);
        }
        data.assign(static_cast<std::size_t>(stride * step), fill);
    }
    lk::tensor_view<T, R> view() { return lk::tensor_view<T, R>(data.data() + offset, shape, strides); }
    template <class F>
    void each(F f) {
        for (std::size_t k = 0; k < R; ++k)
            if (shape[k] == 0) return;
        lk::extents_type<R> idx{};
        index_t linear = 0;
        for (;;) {
            index_t pos = offset;
            for (std::size_t k = 0; k < R; ++k) pos += idx[k] * strides[k];
            f(linear++, data[static_cast<std::size_t>(pos)]);
            std::size_t k = R;
            for (;;) {
                if (k == 0) return;
                --k;
                if (++idx[k] < shape[k]) break;
                idx[k] = 0;
            }
        }
    }
};

template <std::size_t R>
lk::extents_type<R> extents_of(const shape_t& s) {
    lk::extents_type<R> e{};
    for (std::size_t k = 0; k < R; ++k) e[k] = s[k];
    return e;
}

template <class T, std::size_t R>
void nll_case(const shape_t& shape, int class_axis, bool transpose, index_t step, bool weighted,
              std::int64_t ignore_index, lk::reduction red, bool upstream, int grad_mode, std::uint64_t seed) {
    nll_rng r(seed);
    const std::size_t axis = static_cast<std::size_t>(class_axis < 0 ? class_axis + static_cast<int>(R) : class_axis);
    shape_t sample_shape;
    for (std::size_t k = 0; k < R; ++k)
        if (k != axis) sample_shape.push_back(shape[k]);
    const index_t C = shape[axis];
    const index_t samples = ref::numel(sample_shape);

    std::vector<ld> lp(static_cast<std::size_t>(ref::numel(shape)));
    for (auto& v : lp) v = static_cast<ld>(static_cast<T>(r.uniform(-12, 0)));
    std::vector<std::int64_t> t(static_cast<std::size_t>(samples));
    for (auto& v : t) v = (r.below(4) == 0) ? ignore_index : r.below(C);
    std::vector<T> w(static_cast<std::size_t>(C)), up(static_cast<std::size_t>(samples));
    for (auto& v : w) v = static_cast<T>(r.uniform(0.25, 2));
    for (auto& v : up) v = static_cast<T>(r.uniform(-2, 2));

    ref::config cfg;
    cfg.class_axis = axis;
    if (weighted)
        for (T v : w) cfg.weight.push_back(static_cast<ld>(v));
    cfg.ignore_index = ignore_index;
    cfg.reduction = red == lk::reduction::none   ? ref::red::none
                    : red == lk::reduction::mean ? ref::red::mean
                                                 : ref::red::sum;
    std::vector<ld> up_ld;
    if (upstream)
        for (T v : up) up_ld.push_back(static_cast<ld>(v));
    const ref::result want = ref::nll_loss(lp, shape, t, cfg, up_ld);

    buffer<T, R> x(shape, transpose, step, T(0));
    x.each([&](index_t i, T& v) { v = static_cast<T>(lp[static_cast<std::size_t>(i)]); });
    buffer<T, R> g(shape, !transpose, 1, T(5));
    std::vector<T> losses(static_cast<std::size_t>(samples), T(-3));
    lk::nll_loss_options<T> o;
    o.class_axis = class_axis;
    if (weighted) o.weight = lk::tensor_view<const T, 1>(w.data(), {C});
    o.ignore_index = ignore_index;
    o.reduction = red;
    lk::loss_outputs<T, R> out;
    out.losses = lk::tensor_view<T, R - 1>(losses.data(), extents_of<R - 1>(sample_shape));
    if (upstream) out.upstream = lk::tensor_view<const T, R - 1>(up.data(), extents_of<R - 1>(sample_shape));
    if (grad_mode == 1) out.grad = g.view();
    if (grad_mode == 2) out.grad = x.view();  // in place
    const lk::tensor_view<const std::int64_t, R - 1> tv(t.data(), extents_of<R - 1>(sample_shape));
    const double got = lk::nll_loss(x.view(), tv, o, out);

    std::ostringstream what;
    what << "nll_loss<" << (std::is_same<T, float>::value ? "float" : "double") << "> rank " << R << " class_axis "
         << class_axis << (transpose ? " transposed" : "") << " step " << step << (weighted ? " weighted" : "")
         << " ignore_index " << ignore_index << " reduction " << static_cast<int>(red) << (upstream ? " upstream" : "")
         << " grad mode " << grad_mode;
    INFO(what.str());
    INFO("got " << got << ", reference " << static_cast<double>(want.reduced));
    CHECK(relative_gap(got, want.reduced) <= nll_tol<T>::value);
    for (std::size_t i = 0; i < losses.size(); ++i) {
        INFO("sample " << i);
        CHECK(relative_gap(losses[i], want.losses[i]) <= nll_tol<T>::value);
    }
    if (grad_mode != 0) {
        buffer<T, R>& gb = grad_mode == 1 ? g : x;
        int bad = 0;
        gb.each([&](index_t i, T& v) {
            if (relative_gap(v, want.grad[static_cast<std::size_t>(i)]) > nll_tol<T>::value && bad++ < 3) {
                INFO("gradient element " << i << ": " << v << ", reference "
                                         << static_cast<double>(want.grad[static_cast<std::size_t>(i)]));
                CHECK(false);
            }
        });
        CHECK(bad == 0);
    }
}

}  // namespace

TEMPLATE_TEST_CASE("nll_loss: every option, against the reference", "[nll_loss]", float, double) {
    using T = TestType;
    std::uint64_t seed = 900;
    for (bool weighted : {false, true}) {
        for (std::int64_t ii : {std::int64_t(-100), std::int64_t(2)}) {
            for (lk::reduction red : {lk::reduction::none, lk::reduction::mean, lk::reduction::sum}) {
                for (bool upstream : {false, true}) {
                    if (upstream && red != lk::reduction::none) continue;
                    for (int gm = 0; gm < 3; ++gm) {
                        nll_case<T, 2>({7, 5}, 1, false, 1, weighted, ii, red, upstream, gm, ++seed);
                        nll_case<T, 2>({6, 9}, -1, true, 2, weighted, ii, red, upstream, gm, ++seed);
                        nll_case<T, 3>({3, 4, 5}, 1, false, 1, weighted, ii, red, upstream, gm, ++seed);
                        nll_case<T, 3>({2, 3, 6}, -1, true, 1, weighted, ii, red, upstream, gm, ++seed);
                        nll_case<T, 2>({3, 1000}, 1, false, 1, weighted, ii, red, upstream, gm, ++seed);
                    }
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("nll_loss: every target ignored gives NaN for the mean, as PyTorch", "[nll_loss][pytorch]", float,
                   double) {
    using T = TestType;
    std::vector<T> lp = {T(-1), T(-2), T(-3), T(-4)};
    std::vector<std::int64_t> t = {-100, -100};
    const lk::tensor_view<T, 2> lv(lp.data(), {2, 2});
    const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {2});
    std::vector<T> g(4, T(3));
    lk::loss_outputs<T, 2> out;
    out.grad = lk::tensor_view<T, 2>(g.data(), {2, 2});
    CHECK(std::isnan(lk::nll_loss(lv, tv, {}, out)));
    for (T v : g) CHECK(v == T(0));
    lk::nll_loss_options<T> o;
    o.reduction = lk::reduction::sum;
    CHECK(lk::nll_loss(lv, tv, o) == 0.0);
    // No samples: NaN mean, as PyTorch.
    const lk::tensor_view<const T, 2> empty(lp.data(), {0, 2});
    const lk::tensor_view<const std::int64_t, 1> tempty(t.data(), {0});
    CHECK(std::isnan(lk::nll_loss(empty, tempty)));
    // Weighted mean by hand: targets 0 and 1, weights [2, 3]: (2 * 1 + 3 * 4) / 5.
    std::vector<T> w = {T(2), T(3)};
    std::vector<std::int64_t> t2 = {0, 1};
    lk::nll_loss_options<T> ow;
    ow.weight = lk::tensor_view<const T, 1>(w.data(), {2});
    const lk::tensor_view<const std::int64_t, 1> tv2(t2.data(), {2});
    CHECK(std::fabs(lk::nll_loss(lv, tv2, ow) - 14.0 / 5.0) <= 1e-6);
    // A zero weight on a -inf log-probability adds 0 (PyTorch: 0 * inf = NaN).
    lp[0] = -std::numeric_limits<T>::infinity();
    w[0] = T(0);
    CHECK(lk::nll_loss(lv, tv2, ow) == Approx(3.0 * 4.0 / 3.0));
}

TEMPLATE_TEST_CASE("nll_loss: bad arguments throw and write nothing", "[nll_loss][errors]", float, double) {
    using T = TestType;
    std::vector<T> lp(6, T(-1));
    std::vector<T> g(6, T(8)), losses(2, T(8));
    std::vector<std::int64_t> t = {0, 3};
    const lk::tensor_view<const T, 2> lv(lp.data(), {2, 3});
    lk::loss_outputs<T, 2> out;
    out.grad = lk::tensor_view<T, 2>(g.data(), {2, 3});
    out.losses = lk::tensor_view<T, 1>(losses.data(), {2});
    auto message = [&](auto f) -> std::string {
        try {
            f();
        } catch (const std::invalid_argument& e) {
            return e.what();
        }
        return "<no std::invalid_argument>";
    };
    const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {2});
    std::string m = message([&] { lk::nll_loss(lv, tv, {}, out); });
    CHECK(m.find("logitkit::nll_loss: targets[1] = 3") != std::string::npos);
    std::vector<T> w = {T(1), T(1)};
    lk::nll_loss_options<T> o;
    o.weight = lk::tensor_view<const T, 1>(w.data(), {2});
    t[1] = 1;
    m = message([&] { lk::nll_loss(lv, tv, o, out); });
    CHECK(m.find("options.weight.shape = [2]") != std::string::npos);
    const lk::tensor_view<const std::int64_t, 1> tv3(t.data(), {1});
    m = message([&] { lk::nll_loss(lv, tv3, {}, out); });
    CHECK(m.find("targets.shape = [1]") != std::string::npos);
    for (T v : g) CHECK(v == T(8));
    for (T v : losses) CHECK(v == T(8));
}

TEMPLATE_TEST_CASE("nll_loss of log_softmax equals cross_entropy", "[nll_loss][cross_entropy]", float, double) {
    using T = TestType;
    nll_rng r(77);
    const index_t N = 7, C = 13;
    std::vector<T> x(static_cast<std::size_t>(N * C)), y(x.size());
    for (auto& v : x) v = static_cast<T>(r.uniform(-6, 6));
    std::vector<std::int64_t> t(static_cast<std::size_t>(N));
    for (auto& v : t) v = r.below(C);
    t[4] = -100;
    // Classes on axis 0 (a [C, N] tensor): columns for both functions.
    const lk::tensor_view<const T, 2> xv(x.data(), {C, N});
    lk::log_softmax(xv, lk::tensor_view<T, 2>(y.data(), {C, N}), 0);
    const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {N});
    lk::nll_loss_options<T> on;
    on.class_axis = 0;
    lk::cross_entropy_options<T> oc;
    oc.class_axis = 0;
    const double a = lk::nll_loss(lk::tensor_view<const T, 2>(y.data(), {C, N}), tv, on);
    const double b = lk::cross_entropy(xv, tv, oc);
    CHECK(std::fabs(a - b) <= (std::is_same<T, float>::value ? 4e-6 : 1e-13) * std::max(1.0, std::fabs(b)));
}
