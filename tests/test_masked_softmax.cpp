// Masked and causal softmax / log_softmax and their backward kernels: against a long double
// reference that applies the documented mask rules itself (broadcasting from the last
// dimension, -inf in an additive mask masks, fully masked lines are 0 / -inf, masked elements of
// the inputs are never read), over broadcast mask shapes, strided views, causal offsets,
// temperatures and extreme values.
#include <memory>

#include "test_support.hpp"

using namespace lk_test;

namespace {

/// A mask tensor with its own strides (row-major unless transposed), stored without vector<bool>.
template <class M>
struct mask_tensor {
    shape_t shape;
    shape_t strides;
    std::unique_ptr<M[]> storage;
    index_t stored = 0;

    mask_tensor(const shape_t& s, bool transposed = false) : shape(s), strides(s.size()) {
        index_t run = 1;
        for (std::size_t i = 0; i < s.size(); ++i) {
            const std::size_t k = transposed ? i : s.size() - 1 - i;
            strides[k] = run;
            run *= std::max<index_t>(s[k], 1);
        }
        stored = run;
        storage.reset(new M[static_cast<std::size_t>(run)]());
    }
    M& at(const std::vector<index_t>& idx) {
        index_t off = 0;
        for (std::size_t k = 0; k < idx.size(); ++k) off += idx[k] * strides[k];
        return storage[static_cast<std::size_t>(off)];
    }
    template <std::size_t S>
    logitkit::tensor_view<const M, S> view() const {
        return logitkit::tensor_view<const M, S>(storage.get(), to_extents<S>(shape), to_extents<S>(strides));
    }
};

std::vector<index_t> unravel(const shape_t& shape, index_t lin) {
    std::vector<index_t> idx(shape.size());
    for (std::size_t k = shape.size(); k-- > 0;) {
        idx[k] = lin % shape[k];
        lin /= shape[k];
    }
    return idx;
}

/// The mask element that broadcasting assigns to input index `idx` (NumPy's rule, written out).
template <class M>
M mask_at(mask_tensor<M>& m, const std::vector<index_t>& idx) {
    const std::size_t lead = idx.size() - m.shape.size();
    std::vector<index_t> mi(m.shape.size());
    for (std::size_t k = 0; k < mi.size(); ++k) mi[k] = m.shape[k] == 1 ? 0 : idx[lead + k];
    return m.at(mi);
}

struct causal_spec {
    bool on = false;
    std::int64_t offset = 0;
};

/// Keep flags and masked inputs (fl(fl(x / T) + add)) of the whole tensor, per the documented rules.
template <class T, class M>
std::vector<char> keep_flags(const dense<T>& x, mask_tensor<M>* mask, int axis, causal_spec causal, double temperature,
                             std::vector<ld>* z) {
    const std::size_t a = lk_ref::normalize_axis(axis, x.shape.size());
    std::vector<char> keep(static_cast<std::size_t>(x.size()), 1);
    if (z) z->assign(static_cast<std::size_t>(x.size()), 0);
    for (index_t i = 0; i < x.size(); ++i) {
        const auto idx = unravel(x.shape, i);
        bool k = true;
        T v = static_cast<T>(x[i] / static_cast<T>(temperature));
        if (mask) {
            const M mv = mask_at(*mask, idx);
            if constexpr (std::is_same<M, bool>::value) {
                k = mv;
            } else {
                k = !(std::isinf(mv) && mv < 0);
                v = static_cast<T>(v + mv);
            }
        }
        if (causal.on) k = k && static_cast<ld>(idx[a]) <= static_cast<ld>(idx[a - 1]) + static_cast<ld>(causal.offset);
        keep[static_cast<std::size_t>(i)] = k;
        if (z) (*z)[static_cast<std::size_t>(i)] = static_cast<ld>(v);
    }
    return keep;
}

/// Masked softmax / log_softmax in long double: the unmasked rules over the kept elements.
template <class T, class M>
dense<ld> masked_reference(const dense<T>& x, mask_tensor<M>* mask, int axis, causal_spec causal, double temperature,
                           bool log) {
    std::vector<ld> z;
    const auto keep = keep_flags(x, mask, axis, causal, temperature, &z);
    const ld fill = log ? -lk_ref::detail::ld_inf() : 0;
    dense<ld> y(x.shape, fill);
    lk_ref::for_each_row(x.shape, axis, [&](index_t base, index_t stride, index_t n) {
        bool any = false, nan = false;
        ld m = -lk_ref::detail::ld_inf();
        for (index_t i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(base + i * stride);
            if (!keep[k]) continue;
            any = true;
            if (std::isnan(z[k])) nan = true;
            else if (z[k] > m) m = z[k];
        }
        if (!any) return;
        if (nan || !std::isfinite(m)) {
            for (index_t i = 0; i < n; ++i)
                if (keep[static_cast<std::size_t>(base + i * stride)]) y[base + i * stride] = lk_ref::detail::ld_nan();
            return;
        }
        ld s = 0;
        for (index_t i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(base + i * stride);
            if (keep[k]) s += std::exp(z[k] - m);
        }
        for (index_t i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(base + i * stride);
            if (keep[k]) y[base + i * stride] = log ? (z[k] - m) - std::log(s) : std::exp(z[k] - m) / s;
        }
    });
    return y;
}

/// Masked backward in long double (plain IEEE arithmetic over the kept elements), divided by T,
/// and its error scale.
template <class T, class M>
std::pair<dense<ld>, dense<ld>> masked_backward_reference(const dense<T>& y, const dense<T>& dy, mask_tensor<M>* mask,
                                                          int axis, causal_spec causal, double temperature, bool log) {
    const auto keep = keep_flags(y, mask, axis, causal, 1.0, nullptr);
    dense<ld> dx(y.shape, ld(0)), scale(y.shape, ld(0));
    const ld t = static_cast<ld>(static_cast<T>(temperature));
    lk_ref::for_each_row(y.shape, axis, [&](index_t base, index_t stride, index_t n) {
        ld s = 0, sabs = 0;
        for (index_t i = 0; i < n; ++i) {
            const index_t k = base + i * stride;
            if (!keep[static_cast<std::size_t>(k)]) continue;
            const ld term = log ? static_cast<ld>(dy[k]) : static_cast<ld>(dy[k]) * static_cast<ld>(y[k]);
            s += term;
            sabs += std::fabs(term);
        }
        for (index_t i = 0; i < n; ++i) {
            const index_t k = base + i * stride;
            if (!keep[static_cast<std::size_t>(k)]) continue;
            const ld yv = static_cast<ld>(y[k]), dyv = static_cast<ld>(dy[k]);
            dx[k] = (log ? dyv - std::exp(yv) * s : yv * (dyv - s)) / t;
            scale[k] = (log ? std::fabs(dyv) + std::exp(yv) * sabs : std::fabs(yv) * (std::fabs(dyv) + sabs)) / t;
        }
    });
    return {dx, scale};
}

template <class T>
bool check_forward_values(const dense<T>& got, const dense<ld>& ref, bool log, const std::string& what) {
    if (log) return check_close(got, ref, [](index_t, ld r) { return log_allowed<T>(r); }, what);
    return check_close(got, ref, [](index_t, ld r) { return softmax_allowed<T>(r); }, what);
}

struct fwd_setup {
    bool log = false;
    int axis = -1;
    causal_spec causal;
    double temperature = 1.0;
    layout x_layout, y_layout;
    bool in_place = false;
};

logitkit::softmax_options options_of(const fwd_setup& s) {
    logitkit::softmax_options o;
    o.temperature = s.temperature;
    o.causal = s.causal.on;
    o.causal_offset = s.causal.offset;
    return o;
}

std::string describe(const fwd_setup& s, const shape_t& shape, const std::string& mask) {
    std::ostringstream os;
    os << (s.log ? "log_softmax" : "softmax") << " shape " << lk_ref::shape_string(shape) << " axis " << s.axis
       << " mask " << mask << " temperature " << s.temperature;
    if (s.causal.on) os << " causal offset " << s.causal.offset;
    os << "\n  x layout " << s.x_layout.describe() << (s.in_place ? ", in place" : "\n  y layout " + s.y_layout.describe());
    return os.str();
}

/// Runs one masked forward call (mask may be null: options.causal only) and checks it.
template <class T, std::size_t R, class M, std::size_t S>
bool run_forward(const fwd_setup& s, const dense<T>& x, mask_tensor<M>* mask, const std::string& mask_name) {
    const std::string what = std::string(vals<T>::name()) + " " + describe(s, x.shape, mask_name);
    const auto ext = to_extents<R>(x.shape);
    strided_buffer<T, R> xb(ext, s.x_layout, static_cast<T>(-4242.125));
    strided_buffer<T, R> yb(ext, s.y_layout, static_cast<T>(31337.5));
    xb.fill(x);
    strided_buffer<T, R>& out = s.in_place ? xb : yb;
    const auto o = options_of(s);
    auto xin = s.in_place ? xb.view() : xb.view();
    const logitkit::tensor_view<const T, R> xc = xin;
    if (mask) {
        if (s.log)
            logitkit::log_softmax(xc, out.view(), mask->template view<S>(), s.axis, o);
        else
            logitkit::softmax(xc, out.view(), mask->template view<S>(), s.axis, o);
    } else {
        if (s.log)
            logitkit::log_softmax(xc, out.view(), s.axis, o);
        else
            logitkit::softmax(xc, out.view(), s.axis, o);
    }
    bool ok = expect_empty(xb.outside_changes(), what + "\n  x buffer");
    ok &= expect_empty(yb.outside_changes(), what + "\n  y buffer");
    if (!s.in_place) ok &= expect_bitwise_equal(xb.read(), x, what + "\n  x modified");
    const dense<ld> ref = masked_reference(x, mask, s.axis, s.causal, s.temperature, s.log);
    ok &= check_forward_values(out.read(), ref, s.log, what);
    return ok;
}

template <class M>
void fill_bool(mask_tensor<M>& m, double keep_p, rng& r) {
    for (index_t i = 0; i < m.stored; ++i) m.storage[static_cast<std::size_t>(i)] = r.chance(keep_p);
}

template <class T>
void fill_additive(mask_tensor<T>& m, double masked_p, rng& r, bool specials) {
    for (index_t i = 0; i < m.stored; ++i) {
        T v = static_cast<T>(r.uniform(-5, 5));
        if (r.chance(masked_p)) v = -vals<T>::inf();
        if (specials && r.chance(0.05)) v = r.chance(0.5) ? vals<T>::nan() : vals<T>::inf();
        m.storage[static_cast<std::size_t>(i)] = v;
    }
}

/// Input data: random logits, some extreme values at masked and kept positions when asked.
template <class T>
dense<T> logits(const shape_t& shape, rng& r, bool specials) {
    return specials ? special_dense<T>(shape, 0.15, r) : random_dense<T>(shape, 8.0, r);
}

constexpr index_t key_extents[] = {1, 7, 16, 17, 33, 67};

std::vector<layout> some_layouts(std::size_t rank, std::size_t axis, rng& r) {
    auto all = standard_layouts(rank, axis, r);
    return {all[0], all[1], all[5], all[6]};  // contiguous, transposed, fully strided, negative
}

template <class T, class M>
void broadcast_suite(bool additive) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (index_t K : key_extents) {
        const shape_t shape{2, 3, 5, K};
        const std::vector<std::pair<shape_t, bool>> masks = {
            {{K}, false}, {{5, K}, false}, {{5, K}, true}, {{2, 1, 1, K}, false}, {{2, 3, 5, K}, false},
            {{1, 1, 5, 1}, false}, {{3, 1, K}, false}};
        for (const auto& [mshape, transposed] : masks) {
            for (int axis : {-1, 2, 0}) {
                rng r(seed_for(900 + (additive ? 1 : 0), ++case_id));
                mask_tensor<M> mask(mshape, transposed);
                const double p = r.chance(0.5) ? 0.5 : 0.15;
                if constexpr (std::is_same<M, bool>::value)
                    fill_bool(mask, p, r);
                else
                    fill_additive(mask, 1 - p, r, case_id % 3 == 0);
                const dense<T> x = logits<T>(shape, r, case_id % 4 == 0);
                const std::string mname = lk_ref::shape_string(mshape) + (transposed ? " transposed" : "") +
                                          (additive ? " additive" : " bool");
                const auto lay = some_layouts(4, lk_ref::normalize_axis(axis, 4), r);
                for (bool log : {false, true}) {
                    for (std::size_t li = 0; li < lay.size(); ++li) {
                        fwd_setup s;
                        s.log = log;
                        s.axis = axis;
                        s.x_layout = lay[li];
                        s.y_layout = lay[(li + 1) % lay.size()];
                        s.temperature = li == 2 ? 0.7 : 1.0;
                        s.in_place = li == 3;
                        bool ok = true;
                        if (mshape.size() == 1)
                            ok = run_forward<T, 4, M, 1>(s, x, &mask, mname);
                        else if (mshape.size() == 2)
                            ok = run_forward<T, 4, M, 2>(s, x, &mask, mname);
                        else if (mshape.size() == 3)
                            ok = run_forward<T, 4, M, 3>(s, x, &mask, mname);
                        else
                            ok = run_forward<T, 4, M, 4>(s, x, &mask, mname);
                        if (!budget.record(ok)) return;
                    }
                }
            }
        }
    }
}

}  // namespace

TEMPLATE_TEST_CASE("masked softmax / log_softmax: bool masks broadcast from every rank and shape", "[mask]", float,
                   double) {
    broadcast_suite<TestType, bool>(false);
}

TEMPLATE_TEST_CASE("masked softmax / log_softmax: additive masks, -inf masks", "[mask]", float, double) {
    broadcast_suite<TestType, TestType>(true);
}

TEMPLATE_TEST_CASE("masked softmax / log_softmax: causal tiles with offsets, alone and with a padding mask", "[mask]",
                   float, double) {
    using T = TestType;
    failure_budget budget;
    std::uint64_t case_id = 0;
    const std::vector<std::pair<index_t, index_t>> tiles = {{5, 5}, {7, 19}, {19, 7}, {1, 33}, {33, 1}, {17, 1000}};
    for (const auto& [Q, K] : tiles) {
        const shape_t shape{2, Q, K};
        for (std::int64_t offset : {std::int64_t(0), std::int64_t(K - Q), std::int64_t(-1), std::int64_t(-3),
                                    std::int64_t(2), std::numeric_limits<std::int64_t>::max(),
                                    std::numeric_limits<std::int64_t>::min()}) {
            rng r(seed_for(910, ++case_id));
            const dense<T> x = logits<T>(shape, r, case_id % 5 == 0);
            const auto lay = some_layouts(3, 2, r);
            mask_tensor<bool> pad({K});
            fill_bool(pad, 0.7, r);
            for (bool log : {false, true}) {
                for (std::size_t li = 0; li < lay.size(); ++li) {
                    fwd_setup s;
                    s.log = log;
                    s.causal = {true, offset};
                    s.x_layout = lay[li];
                    s.y_layout = li == 0 ? lay[0] : lay[(li + 1) % lay.size()];
                    // Every layout, the contiguous one included, with and without a temperature.
                    s.temperature = (li + case_id) % 2 == 1 ? 2.5 : 1.0;
                    s.in_place = li == 3;
                    if (!budget.record(run_forward<T, 3, bool, 1>(s, x, nullptr, "none"))) return;
                    if (!budget.record(run_forward<T, 3, bool, 1>(s, x, &pad, "[K] bool"))) return;
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("masked softmax / log_softmax: bool masks that keep a prefix of each line, alone and with the "
                   "causal rule",
                   "[mask]", float, double) {
    // A line whose bool mask keeps a prefix (keys padded at the end) runs as the causal rule's
    // lines do, the prefix an unmasked row. Per-query prefixes of every kind (none, all,
    // one key, any length), a broadcast [K] padding row, a mask constant along the line (stride
    // 0: all or nothing kept), and a mask whose kept run resumes after its masked run (not a
    // prefix: the general path); every layout, with and without a temperature.
    using T = TestType;
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (const auto& [Q, K] : std::vector<std::pair<index_t, index_t>>{{5, 17}, {9, 1000}, {4, 300}}) {
        const shape_t shape{2, Q, K};
        rng r(seed_for(935, ++case_id));
        const dense<T> x = logits<T>(shape, r, case_id == 2);
        mask_tensor<bool> prefixes({Q, K});
        for (index_t q = 0; q < Q; ++q) {
            const index_t p = q == 0 ? 0 : q == 1 ? K : q == 2 ? 1 : static_cast<index_t>(r.below(static_cast<std::uint64_t>(K + 1)));
            for (index_t k = 0; k < K; ++k) prefixes.at({q, k}) = k < p;
        }
        mask_tensor<bool> padding({K}), gap({K}), per_query({Q, 1});
        for (index_t k = 0; k < K; ++k) {
            padding.at({k}) = k < K - K / 3;
            gap.at({k}) = k < K / 3 || k >= 2 * K / 3;
        }
        for (index_t q = 0; q < Q; ++q) per_query.at({q, 0}) = q % 2 == 1;
        const auto lay = some_layouts(3, 2, r);
        for (bool log : {false, true})
            for (bool causal : {false, true})
                for (std::size_t li = 0; li < lay.size(); ++li) {
                    fwd_setup s;
                    s.log = log;
                    s.causal = {causal, 0};
                    s.x_layout = lay[li];
                    s.y_layout = lay[li];
                    s.temperature = li % 2 == 1 ? 2.5 : 1.0;
                    if (!budget.record(run_forward<T, 3, bool, 2>(s, x, &prefixes, "[Q, K] prefixes"))) return;
                    if (!budget.record(run_forward<T, 3, bool, 1>(s, x, &padding, "[K] prefix"))) return;
                    if (!budget.record(run_forward<T, 3, bool, 1>(s, x, &gap, "[K] kept, masked, kept"))) return;
                    if (!budget.record(run_forward<T, 3, bool, 2>(s, x, &per_query, "[Q, 1] all or none"))) return;
                }
    }
}

TEMPLATE_TEST_CASE("masked softmax: exact values of the mask rules", "[mask]", float, double) {
    using T = TestType;
    const T inf = vals<T>::inf(), nan = vals<T>::nan();
    auto run = [](std::vector<T> x, std::vector<int> keep, bool log) {
        const auto n = static_cast<index_t>(x.size());
        std::unique_ptr<bool[]> m(new bool[x.size()]);
        for (std::size_t i = 0; i < x.size(); ++i) m[i] = keep[i] != 0;
        std::vector<T> y(x.size(), T(-7));
        logitkit::tensor_view<const T, 1> xv(x.data(), {n});
        logitkit::tensor_view<T, 1> yv(y.data(), {n});
        logitkit::tensor_view<const bool, 1> mv(m.get(), {n});
        if (log)
            logitkit::log_softmax(xv, yv, mv);
        else
            logitkit::softmax(xv, yv, mv);
        return y;
    };
    SECTION("a fully masked line is all 0 (softmax) or all -inf (log_softmax), whatever x holds") {
        for (const auto& x : std::vector<std::vector<T>>{{T(1), T(2), T(3)}, {nan, inf, -inf}}) {
            for (T v : run(x, {0, 0, 0}, false)) CHECK(v == T(0));
            for (T v : run(x, {0, 0, 0}, true)) CHECK(v == -inf);
        }
    }
    SECTION("masked NaN and +inf inputs are not read") {
        const auto y = run({nan, T(0), inf, T(0)}, {0, 1, 0, 1}, false);
        CHECK(y[0] == T(0));
        CHECK(y[1] == T(0.5));
        CHECK(y[2] == T(0));
        CHECK(y[3] == T(0.5));
    }
    SECTION("a kept NaN makes the kept elements NaN; masked elements keep their value") {
        const auto y = run({T(1), nan, T(2)}, {1, 1, 0}, false);
        CHECK(std::isnan(y[0]));
        CHECK(std::isnan(y[1]));
        CHECK(y[2] == T(0));
        const auto l = run({-inf, -inf, T(2)}, {1, 1, 0}, true);  // kept elements all -inf: NaN
        CHECK(std::isnan(l[0]));
        CHECK(std::isnan(l[1]));
        CHECK(l[2] == -inf);
    }
    SECTION("a single kept element is exactly 1 (softmax) and 0 (log_softmax)") {
        const auto y = run({T(5), T(-3), T(100)}, {0, 1, 0}, false);
        CHECK(y[1] == T(1));
        const auto l = run({T(5), T(-3), T(100)}, {0, 1, 0}, true);
        CHECK(l[1] == T(0));
    }
}

TEMPLATE_TEST_CASE("masked softmax: an all-true mask and a zero additive mask match the unmasked call bit for bit",
                   "[mask]", float, double) {
    using T = TestType;
    for (index_t n : {1, 15, 16, 17, 1000}) {
        rng r(seed_for(920, static_cast<std::uint64_t>(n)));
        const shape_t shape{3, n};
        const dense<T> x = random_dense<T>(shape, 20.0, r);
        for (bool log : {false, true}) {
            dense<T> plain(shape), keep_all(shape), zero_add(shape);
            logitkit::tensor_view<const T, 2> xv(x.data.data(), {3, n});
            mask_tensor<bool> mb({n});
            for (index_t i = 0; i < n; ++i) mb.storage[static_cast<std::size_t>(i)] = true;
            mask_tensor<T> ma({1, n});
            auto call = [&](dense<T>& y, auto... mask) {
                logitkit::tensor_view<T, 2> yv(y.data.data(), {3, n});
                if (log)
                    logitkit::log_softmax(xv, yv, mask..., -1);
                else
                    logitkit::softmax(xv, yv, mask..., -1);
            };
            call(plain);
            call(keep_all, mb.template view<1>());
            call(zero_add, ma.template view<2>());
            const std::string what = std::string(log ? "log_softmax" : "softmax") + " n " + std::to_string(n);
            CHECK(expect_bitwise_equal(keep_all, plain, what + ", all-true mask"));
            CHECK(expect_bitwise_equal(zero_add, plain, what + ", zero additive mask"));
        }
    }
}

namespace {

struct bwd_setup {
    bool log = false;
    int axis = -1;
    causal_spec causal;
    double temperature = 1.0;
    layout y_layout, dy_layout, dx_layout;
    int alias = 0;  // 0: separate dx, 1: dx is y, 2: dx is dy
};

template <class T, std::size_t R, class M, std::size_t S>
bool run_backward(const bwd_setup& s, const dense<T>& y, const dense<T>& dy, mask_tensor<M>* mask,
                  const std::string& mask_name) {
    std::ostringstream os;
    os << vals<T>::name() << (s.log ? " log_softmax_backward" : " softmax_backward") << " shape "
       << lk_ref::shape_string(y.shape) << " axis " << s.axis << " mask " << mask_name << " temperature "
       << s.temperature;
    if (s.causal.on) os << " causal offset " << s.causal.offset;
    os << "\n  y layout " << s.y_layout.describe() << "\n  dy layout " << s.dy_layout.describe() << "\n  dx "
       << (s.alias == 1 ? "is y" : s.alias == 2 ? "is dy" : s.dx_layout.describe());
    const std::string what = os.str();
    const auto ext = to_extents<R>(y.shape);
    strided_buffer<T, R> yb(ext, s.y_layout, static_cast<T>(-4242.125));
    strided_buffer<T, R> dyb(ext, s.dy_layout, static_cast<T>(-2121.0625));
    strided_buffer<T, R> dxb(ext, s.dx_layout, static_cast<T>(31337.5));
    yb.fill(y);
    dyb.fill(dy);
    strided_buffer<T, R>& out = s.alias == 1 ? yb : s.alias == 2 ? dyb : dxb;
    logitkit::softmax_options o;
    o.temperature = s.temperature;
    o.causal = s.causal.on;
    o.causal_offset = s.causal.offset;
    const logitkit::tensor_view<const T, R> yv = yb.view(), dyv = dyb.view();
    if (mask) {
        if (s.log)
            logitkit::log_softmax_backward(yv, dyv, out.view(), mask->template view<S>(), s.axis, o);
        else
            logitkit::softmax_backward(yv, dyv, out.view(), mask->template view<S>(), s.axis, o);
    } else {
        if (s.log)
            logitkit::log_softmax_backward(yv, dyv, out.view(), s.axis, o);
        else
            logitkit::softmax_backward(yv, dyv, out.view(), s.axis, o);
    }
    bool ok = expect_empty(yb.outside_changes(), what + "\n  y buffer");
    ok &= expect_empty(dyb.outside_changes(), what + "\n  dy buffer");
    ok &= expect_empty(dxb.outside_changes(), what + "\n  dx buffer");
    const auto ref = masked_backward_reference(y, dy, mask, s.axis, s.causal, s.temperature, s.log);
    const ld tiny = 4 * static_cast<ld>(vals<T>::true_min());
    ok &= check_close(out.read(), ref.first,
                      [&](index_t i, ld) { return bounds<T>::backward_coef * ref.second[i] + tiny; }, what);
    return ok;
}

}  // namespace

TEMPLATE_TEST_CASE("masked backward kernels: bool, additive and causal masks, temperature, garbage at masked elements",
                   "[mask][backward]", float, double) {
    using T = TestType;
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (index_t K : key_extents) {
        const shape_t shape{2, 5, K};
        // bool [K], bool [5, K] transposed, additive [2, 1, K], causal only, bool [5, K] whose
        // lines keep prefixes (none, all, one, any: they only shorten the line)
        for (int kind = 0; kind < 5; ++kind) {
            for (bool log : {false, true}) {
                rng r(seed_for(930, ++case_id));
                mask_tensor<bool> mb(kind == 0 ? shape_t{K} : shape_t{5, K}, kind == 1);
                fill_bool(mb, 0.6, r);
                if (kind == 4)
                    for (index_t q = 0; q < 5; ++q) {
                        const index_t p = q == 0 ? 0 : q == 1 ? K : q == 2 ? 1 : static_cast<index_t>(r.below(static_cast<std::uint64_t>(K + 1)));
                        for (index_t k = 0; k < K; ++k) mb.at({q, k}) = k < p;
                    }
                mask_tensor<T> ma({2, 1, K});
                fill_additive(ma, 0.4, r, false);
                const causal_spec causal{kind == 3 || case_id % 3 == 0, kind == 3 ? std::int64_t(K - 5) : 1};
                // y: the masked forward of random logits (0 / -inf at masked elements), then garbage
                // written at masked elements, which the kernels must not read.
                const dense<T> x = random_dense<T>(shape, 6.0, r);
                dense<T> y(shape), dy = random_dense<T>(shape, 2.0, r);
                std::vector<char> keep;
                dense<ld> yl;
                if (kind == 2) {
                    yl = masked_reference(x, &ma, -1, causal, 1.0, log);
                    keep = keep_flags(x, &ma, -1, causal, 1.0, nullptr);
                } else if (kind == 3) {
                    yl = masked_reference(x, static_cast<mask_tensor<bool>*>(nullptr), -1, causal, 1.0, log);
                    keep = keep_flags(x, static_cast<mask_tensor<bool>*>(nullptr), -1, causal, 1.0, nullptr);
                } else {
                    yl = masked_reference(x, &mb, -1, causal, 1.0, log);
                    keep = keep_flags(x, &mb, -1, causal, 1.0, nullptr);
                }
                for (index_t i = 0; i < y.size(); ++i) {
                    y[i] = static_cast<T>(yl[i]);
                    if (!keep[static_cast<std::size_t>(i)] && r.chance(0.5)) {
                        y[i] = special_value<T>(r);
                        dy[i] = special_value<T>(r);
                    }
                }
                auto lay = some_layouts(3, 2, r);
                for (std::size_t li = 0; li < lay.size(); ++li) {
                    bwd_setup s;
                    s.log = log;
                    s.causal = causal;
                    s.y_layout = lay[li];
                    s.dy_layout = lay[(li + 1) % lay.size()];
                    s.dx_layout = lay[(li + 2) % lay.size()];
                    s.temperature = li == 1 ? 0.5 : 1.0;
                    s.alias = li == 2 ? 2 : li == 3 ? 1 : 0;
                    if (s.alias == 2) s.dy_layout = s.dx_layout;
                    bool ok;
                    if (kind == 2)
                        ok = run_backward<T, 3, T, 3>(s, y, dy, &ma, "[2, 1, K] additive");
                    else if (kind == 3)
                        ok = run_backward<T, 3, bool, 1>(s, y, dy, nullptr, "none");
                    else if (kind == 0)
                        ok = run_backward<T, 3, bool, 1>(s, y, dy, &mb, "[K] bool");
                    else if (kind == 1)
                        ok = run_backward<T, 3, bool, 2>(s, y, dy, &mb, "[5, K] bool transposed");
                    else
                        ok = run_backward<T, 3, bool, 2>(s, y, dy, &mb, "[5, K] bool prefixes");
                    if (!budget.record(ok)) return;
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("backward kernels: options.temperature divides the unmasked gradient", "[backward]", float, double) {
    using T = TestType;
    for (index_t n : {1, 17, 1000}) {
        rng r(seed_for(940, static_cast<std::uint64_t>(n)));
        const shape_t shape{4, n};
        const dense<T> x = random_dense<T>(shape, 5.0, r);
        for (bool log : {false, true}) {
            const dense<ld> yl = log ? lk_ref::log_softmax(x, -1) : lk_ref::softmax(x, -1);
            dense<T> y(shape);
            for (index_t i = 0; i < y.size(); ++i) y[i] = static_cast<T>(yl[i]);
            const dense<T> dy = random_dense<T>(shape, 1.0, r);
            bwd_setup s;
            s.log = log;
            s.temperature = 3.0;
            CHECK(run_backward<T, 2, bool, 1>(s, y, dy, nullptr, "none"));
        }
    }
}

TEMPLATE_TEST_CASE("masked softmax: bad masks and causal options are rejected before anything is written", "[mask][errors]",
                   float, double) {
    using T = TestType;
    std::vector<T> x(2 * 3 * 4, T(1)), y(x.size(), T(-7));
    std::unique_ptr<bool[]> m(new bool[64]());
    logitkit::tensor_view<const T, 3> xv(x.data(), {2, 3, 4});
    logitkit::tensor_view<T, 3> yv(y.data(), {2, 3, 4});
    auto nothing_written = [&] {
        for (T v : y) REQUIRE(v == T(-7));
    };
    auto expect_message = [&](auto&& call, const std::vector<std::string>& words) {
        try {
            call();
            FAIL("no exception");
        } catch (const std::invalid_argument& e) {
            const std::string msg = e.what();
            for (const auto& w : words) CHECK_THAT(msg, Catch::Matchers::Contains(w));
        }
        nothing_written();
    };
    SECTION("a mask extent that is neither 1 nor the input's") {
        logitkit::tensor_view<const bool, 2> bad(m.get(), {3, 5});
        expect_message([&] { logitkit::softmax(xv, yv, bad); }, {"logitkit::softmax", "mask.shape", "[3, 5]", "[2, 3, 4]"});
        logitkit::tensor_view<const bool, 3> bad3(m.get(), {2, 2, 4});
        expect_message([&] { logitkit::log_softmax(xv, yv, bad3); }, {"logitkit::log_softmax", "mask.shape"});
    }
    SECTION("null mask data with a non-zero size") {
        logitkit::tensor_view<const bool, 1> null_mask(nullptr, {4});
        expect_message([&] { logitkit::softmax(xv, yv, null_mask); }, {"mask.data()", "null"});
    }
    SECTION("options.causal on axis 0") {
        logitkit::softmax_options o;
        o.causal = true;
        expect_message([&] { logitkit::softmax(xv, yv, 0, o); }, {"options.causal", "axis"});
        expect_message([&] { logitkit::softmax(xv, yv, -3, o); }, {"options.causal", "axis"});
        std::vector<T> dx(x.size(), T(-7));
        logitkit::tensor_view<T, 3> dxv(dx.data(), {2, 3, 4});
        CHECK_THROWS_WITH(logitkit::softmax_backward(xv, xv, dxv, 0, o), Catch::Matchers::Contains("options.causal"));
    }
    SECTION("an output that overlaps an additive mask") {
        std::vector<T> buf(x.size() + 4, T(0));
        logitkit::tensor_view<const T, 1> add(buf.data(), {4});
        logitkit::tensor_view<T, 3> y_over(buf.data() + 2, {2, 3, 4});
        CHECK_THROWS_WITH(logitkit::softmax(xv, y_over, add), Catch::Matchers::Contains("mask"));
    }
    SECTION("a bad temperature in a backward call") {
        logitkit::softmax_options o;
        o.temperature = 0;
        std::vector<T> dx(x.size(), T(-7));
        logitkit::tensor_view<T, 3> dxv(dx.data(), {2, 3, 4});
        CHECK_THROWS_WITH(logitkit::log_softmax_backward(xv, xv, dxv, -1, o),
                          Catch::Matchers::Contains("options.temperature"));
    }
}
