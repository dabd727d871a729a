// cross_entropy: loss, per-sample losses and gradient against the long double reference of
// reference_loss.hpp for every option and their combinations, on contiguous rows, strided columns
// ([N, C, d1] with the classes on axis 1) and gathered lines; extreme and special values; central
// finite differences in double; argument errors that must leave every output untouched.
#include <logitkit/cross_entropy.hpp>
#include <logitkit/logitkit.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "reference_loss.hpp"
#include "test_support.hpp"

namespace {

namespace lk = logitkit;
namespace ref = lk_loss_ref;
using ref::index_t;
using ref::ld;
using ref::shape_t;

// ---------------------------------------------------------------------------------------------
// Deterministic data.
// ---------------------------------------------------------------------------------------------
using lk_test::rng;
using lk_test::to_extents;

template <class T>
const char* type_name() {
    return std::is_same<T, float>::value ? "float" : "double";
}

std::string shape_string(const shape_t& s) {
    std::ostringstream o;
    o << '[';
    for (std::size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
    return o.str() + "]";
}

// ---------------------------------------------------------------------------------------------
// Strided buffers: a logical row-major tensor stored with a chosen memory layout.
// ---------------------------------------------------------------------------------------------
enum class storage_layout {
    row_major,      // contiguous
    class_swapped,  // the class axis trades its memory position with the innermost other axis
    padded,         // row-major with every stride doubled: no unit stride anywhere (gathered lines)
    reversed,       // row-major with the class axis walked backwards (negative stride)
};

const char* layout_name(storage_layout l) {
    switch (l) {
        case storage_layout::row_major:
            return "row-major";
        case storage_layout::class_swapped:
            return "class-swapped";
        case storage_layout::padded:
            return "padded";
        case storage_layout::reversed:
            return "reversed";
    }
    return "?";
}

template <class T, std::size_t R>
struct strided {
    static constexpr T sentinel = T(-12345.5);
    std::vector<T> buf;
    lk::extents_type<R> shape{}, strides{};
    index_t offset = 0;

    strided(const shape_t& s, storage_layout lay, std::size_t class_axis) {
        std::vector<std::size_t> order(R);
        for (std::size_t k = 0; k < R; ++k) order[k] = k;  // outermost first
        if (lay == storage_layout::class_swapped) {
            const std::size_t other = class_axis == R - 1 ? R - 2 : R - 1;
            std::swap(order[class_axis], order[other]);
        }
        const index_t pad = lay == storage_layout::padded ? 2 : 1;
        index_t stride = 1;
        for (std::size_t i = R; i-- > 0;) {
            const std::size_t d = order[i];
            shape[d] = s[d];
            strides[d] = stride * pad;
            stride *= std::max<index_t>(s[d], 1);
        }
        buf.assign(static_cast<std::size_t>(stride * pad + 1), sentinel);
        if (lay == storage_layout::reversed) {
            offset = (s[class_axis] > 0 ? s[class_axis] - 1 : 0) * strides[class_axis];
            strides[class_axis] = -strides[class_axis];
        }
    }
    lk::tensor_view<T, R> view() { return lk::tensor_view<T, R>(buf.data() + offset, shape, strides); }
    lk::tensor_view<const T, R> cview() const {
        return lk::tensor_view<const T, R>(buf.data() + offset, shape, strides);
    }
    template <class F>
    void each(F f) const {  // f(logical row-major index, buffer position)
        lk::extents_type<R> idx{};
        for (std::size_t k = 0; k < R; ++k)
            if (shape[k] == 0) return;
        index_t linear = 0;
        for (;;) {
            index_t pos = offset;
            for (std::size_t k = 0; k < R; ++k) pos += idx[k] * strides[k];
            f(linear++, static_cast<std::size_t>(pos));
            std::size_t k = R;
            for (;;) {
                if (k == 0) return;
                --k;
                if (++idx[k] < shape[k]) break;
                idx[k] = 0;
            }
        }
    }
    void write(const std::vector<ld>& logical) {
        each([&](index_t i, std::size_t p) { buf[p] = static_cast<T>(logical[static_cast<std::size_t>(i)]); });
    }
    std::vector<ld> read() const {
        std::vector<ld> out;
        each([&](index_t, std::size_t p) { out.push_back(static_cast<ld>(buf[p])); });
        return out;
    }
    /// Number of buffer slots outside the view that no longer hold the sentinel.
    std::size_t stray_writes() const {
        std::vector<char> inside(buf.size(), 0);
        each([&](index_t, std::size_t p) { inside[p] = 1; });
        std::size_t n = 0;
        for (std::size_t i = 0; i < buf.size(); ++i)
            if (!inside[i] && !(buf[i] == sentinel)) ++n;
        return n;
    }
};

shape_t drop(const shape_t& s, std::size_t axis) {
    shape_t out;
    for (std::size_t k = 0; k < s.size(); ++k)
        if (k != axis) out.push_back(s[k]);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Error bounds (cross_entropy.hpp): per-sample float |err| <= 2e-6 * max(1, |ref|), double
// 1e-12; the reduced loss adds 1e-5 (float) / 1e-12 (double) relative; the gradient
// |err| <= tol * |scale| * ((A + 2 z lse) * p_c + a_c), tol = 2e-6 (float) / 1e-12 (double).
// ---------------------------------------------------------------------------------------------
template <class T>
struct tol {
    static constexpr ld sample = std::is_same<T, float>::value ? 2e-6L : 1e-12L;
    static constexpr ld reduced = std::is_same<T, float>::value ? 1e-5L : 1e-12L;
    static constexpr ld grad = std::is_same<T, float>::value ? 2e-6L : 1e-12L;
};

bool same_special(ld got, ld want) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    return false;
}

struct checker {
    std::string what;
    int failures = 0;
    void fail(const std::string& msg) {
        if (failures++ < 5) {
            INFO(what << "\n" << msg);
            CHECK(false);
        }
    }
    void done() {
        INFO(what);
        CHECK(failures == 0);
    }
};

std::string num(ld v) {
    std::ostringstream o;
    o.precision(19);
    o << v;
    return o.str();
}

// ---------------------------------------------------------------------------------------------
// One call of cross_entropy against the reference.
// ---------------------------------------------------------------------------------------------
enum class grad_mode { none, separate, in_place };

const char* grad_name(grad_mode g) {
    switch (g) {
        case grad_mode::none:
            return "no gradient";
        case grad_mode::separate:
            return "gradient";
        case grad_mode::in_place:
            return "in-place gradient";
    }
    return "?";
}

struct options_case {
    bool weighted = false;
    std::int64_t ignore_index = -100;
    double smoothing = 0;
    lk::reduction reduction = lk::reduction::mean;
    double z = 0;
    bool upstream = false;
    bool losses = true;
    grad_mode grad = grad_mode::separate;
    int class_axis = 1;
    storage_layout lay = storage_layout::row_major;

    std::string describe() const {
        std::ostringstream o;
        o << (weighted ? "weighted" : "unweighted") << ", ignore_index " << ignore_index << ", smoothing " << smoothing
          << ", reduction "
          << (reduction == lk::reduction::none   ? "none"
              : reduction == lk::reduction::mean ? "mean"
                                                 : "sum")
          << ", z_loss " << z << (upstream ? ", upstream" : "") << ", " << grad_name(grad) << ", class_axis "
          << class_axis << ", " << layout_name(lay);
        return o.str();
    }
};

ref::red to_ref(lk::reduction r) {
    return r == lk::reduction::none ? ref::red::none : r == lk::reduction::mean ? ref::red::mean : ref::red::sum;
}

/// Compares a call's results with the reference's.
template <class T>
void compare(checker& ck, const ref::result& want, double got_reduced, const std::vector<ld>* got_losses,
             const std::vector<ld>* got_grad, const std::vector<ld>& coef_a_sum_scale) {
    // Reduced value.
    {
        ld allowed = tol<T>::reduced * std::fabs(want.reduced);
        const ld per_sample_scale = std::isfinite(want.reduced) && want.losses.size() > 0 ? 1 : 0;
        ld sum_bounds = 0;
        for (ld l : want.losses) sum_bounds += tol<T>::sample * std::max<ld>(1, std::fabs(l));
        const ld denominator = coef_a_sum_scale.empty() ? 1 : coef_a_sum_scale[0];
        allowed += per_sample_scale * sum_bounds * std::fabs(denominator);
        const ld got = got_reduced;
        if (std::isfinite(want.reduced) ? !(std::fabs(got - want.reduced) <= allowed)
                                        : !same_special(got, want.reduced))
            ck.fail("reduced loss " + num(got) + ", reference " + num(want.reduced) + ", allowed error " +
                    num(allowed));
    }
    if (got_losses) {
        for (std::size_t i = 0; i < want.losses.size(); ++i) {
            // A loss beyond T's range (z_loss with lse ~ 1e30) is stored as infinity.
            const ld w = static_cast<ld>(static_cast<T>(want.losses[i])), g = (*got_losses)[i];
            const ld allowed = tol<T>::sample * std::max<ld>(1, std::fabs(w));
            if (std::isfinite(w) ? !(std::fabs(g - w) <= allowed) : !same_special(g, w))
                ck.fail("loss of sample " + std::to_string(i) + ": " + num(g) + ", reference " + num(w));
        }
    }
    (void)got_grad;
}

/// Gradient check: |err| <= tol * magnitude + a few subnormal ulps, where magnitude is the sum of
/// the absolute values of the two terms of the gradient, computed by the caller per element.
template <class T>
void compare_grad(checker& ck, const std::vector<ld>& want, const std::vector<ld>& got,
                  const std::vector<ld>& magnitude) {
    const ld floor = 4 * static_cast<ld>(std::numeric_limits<T>::denorm_min());
    for (std::size_t i = 0; i < want.size(); ++i) {
        const ld w = want[i], g = got[i];
        const ld allowed = tol<T>::grad * magnitude[i] + floor;
        if (std::isfinite(w) ? !(std::fabs(g - w) <= allowed) : !same_special(g, w))
            ck.fail("gradient element " + std::to_string(i) + ": " + num(g) + ", reference " + num(w) +
                    ", allowed error " + num(allowed));
    }
}

/// Per element of the logits: |scale| * (|A + 2 z lse| * p_c + |a_c|), the size of the two terms
/// of the gradient, from the reference's own quantities.
std::vector<ld> gradient_magnitude(const std::vector<ld>& x, const shape_t& shape, const ref::config& cfg,
                                   const std::vector<ld>& scale_per_sample,
                                   const std::vector<std::vector<ld>>& a_per_sample) {
    const ref::lines L(shape, cfg.class_axis);
    std::vector<ld> mag(x.size(), 0.0L);
    std::vector<ld> line(static_cast<std::size_t>(L.classes));
    for (index_t s = 0; s < L.samples(); ++s) {
        const auto& a = a_per_sample[static_cast<std::size_t>(s)];
        if (a.empty()) continue;
        for (index_t c = 0; c < L.classes; ++c)
            line[static_cast<std::size_t>(c)] = x[static_cast<std::size_t>(L.at(s, c))];
        ld lse = 0;
        const auto lp = ref::log_softmax_line(line, lse);
        ld big_a = 0;
        for (ld v : a) big_a += v;
        const ld b = std::fabs(big_a + 2 * cfg.z * lse);
        for (index_t c = 0; c < L.classes; ++c)
            mag[static_cast<std::size_t>(L.at(s, c))] =
                std::fabs(scale_per_sample[static_cast<std::size_t>(s)]) *
                (b * std::exp(lp[static_cast<std::size_t>(c)]) + std::fabs(a[static_cast<std::size_t>(c)]));
    }
    return mag;
}

/// Runs cross_entropy (class indices when Soft is false, probabilities otherwise) on logical data
/// and checks everything against the reference.
template <class T, std::size_t R, bool Soft>
void run_case(const shape_t& shape, const std::vector<ld>& x_in, const std::vector<std::int64_t>& targets,
              const std::vector<ld>& q_in, const std::vector<ld>& weight_in, const std::vector<ld>& upstream_in,
              const options_case& oc, const std::string& data_name) {
    const std::size_t axis =
        static_cast<std::size_t>(oc.class_axis < 0 ? oc.class_axis + static_cast<int>(R) : oc.class_axis);
    const shape_t sample_shape = drop(shape, axis);
    checker ck;
    ck.what = std::string("cross_entropy<") + type_name<T>() + "> " + (Soft ? "probabilities" : "class indices") +
              ", logits " + shape_string(shape) + ", " + oc.describe() + ", data: " + data_name;

    // Inputs rounded to T, as the library sees them.
    std::vector<ld> x(x_in.size()), q(q_in.size()), weight(weight_in.size()), upstream(upstream_in.size());
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<ld>(static_cast<T>(x_in[i]));
    for (std::size_t i = 0; i < q.size(); ++i) q[i] = static_cast<ld>(static_cast<T>(q_in[i]));
    for (std::size_t i = 0; i < weight.size(); ++i) weight[i] = static_cast<ld>(static_cast<T>(weight_in[i]));
    for (std::size_t i = 0; i < upstream.size(); ++i) upstream[i] = static_cast<ld>(static_cast<T>(upstream_in[i]));

    ref::config cfg;
    cfg.class_axis = axis;
    if (oc.weighted) cfg.weight = weight;
    cfg.ignore_index = oc.ignore_index;
    cfg.smoothing = static_cast<ld>(oc.smoothing);
    cfg.reduction = to_ref(oc.reduction);
    cfg.z = static_cast<ld>(oc.z);
    const std::vector<ld> up = oc.upstream ? upstream : std::vector<ld>{};
    const ref::result want =
        Soft ? ref::cross_entropy_soft(x, shape, q, cfg, up) : ref::cross_entropy(x, shape, targets, cfg, up);

    // The library call.
    strided<T, R> xb(shape, oc.lay, axis);
    xb.write(x);
    strided<T, R> qb(shape, oc.lay, axis);
    if (Soft) qb.write(q);
    std::vector<T> wbuf(weight.size());
    for (std::size_t i = 0; i < weight.size(); ++i) wbuf[i] = static_cast<T>(weight[i]);
    std::vector<T> ubuf(upstream.size());
    for (std::size_t i = 0; i < upstream.size(); ++i) ubuf[i] = static_cast<T>(upstream[i]);
    std::vector<T> lbuf(static_cast<std::size_t>(ref::numel(sample_shape)), T(-7));
    strided<T, R> gb(shape, oc.lay, axis);

    lk::cross_entropy_options<T> o;
    o.class_axis = oc.class_axis;
    if (oc.weighted) o.weight = lk::tensor_view<const T, 1>(wbuf.data(), {static_cast<index_t>(wbuf.size())});
    o.ignore_index = oc.ignore_index;
    o.label_smoothing = oc.smoothing;
    o.reduction = oc.reduction;
    o.z_loss = oc.z;
    lk::loss_outputs<T, R> out;
    if (oc.losses) out.losses = lk::tensor_view<T, R - 1>(lbuf.data(), to_extents<R - 1>(sample_shape));
    if (oc.upstream) out.upstream = lk::tensor_view<const T, R - 1>(ubuf.data(), to_extents<R - 1>(sample_shape));
    if (oc.grad == grad_mode::separate) out.grad = gb.view();
    if (oc.grad == grad_mode::in_place) out.grad = xb.view();

    double got = 0;
    const lk::tensor_view<const std::int64_t, R - 1> tv(targets.data(), to_extents<R - 1>(sample_shape));
    if constexpr (Soft) {
        // Logits given as a mutable view when the gradient is in place, read-only otherwise.
        if (oc.grad == grad_mode::in_place)
            got = lk::cross_entropy(xb.view(), qb.cview(), o, out);
        else
            got = lk::cross_entropy(xb.cview(), qb.cview(), o, out);
    } else {
        if (oc.grad == grad_mode::in_place)
            got = lk::cross_entropy(xb.view(), tv, o, out);
        else
            got = lk::cross_entropy(xb.cview(), tv, o, out);
    }

    // Per-sample coefficients, for the error bounds.
    const ref::lines L(shape, axis);
    std::vector<ld> scale(static_cast<std::size_t>(L.samples()), 0.0L);
    std::vector<std::vector<ld>> a(static_cast<std::size_t>(L.samples()));
    ld denominator = 0;
    if (Soft) {
        denominator = static_cast<ld>(L.samples());
    } else {
        for (std::int64_t t : targets)
            if (t != cfg.ignore_index) denominator += ref::weight_of(cfg, t);
    }
    for (index_t s = 0; s < L.samples(); ++s) {
        ld sc = cfg.reduction == ref::red::mean ? 1.0L / denominator : 1.0L;
        if (oc.upstream) sc *= upstream[static_cast<std::size_t>(s)];
        scale[static_cast<std::size_t>(s)] = sc;
        auto& as = a[static_cast<std::size_t>(s)];
        if (Soft) {
            for (index_t c = 0; c < L.classes; ++c)
                as.push_back(ref::weight_of(cfg, c) * (q[static_cast<std::size_t>(L.at(s, c))] * (1 - cfg.smoothing) +
                                                       cfg.smoothing / L.classes));
        } else {
            const std::int64_t t = targets[static_cast<std::size_t>(s)];
            if (t == cfg.ignore_index) continue;
            for (index_t c = 0; c < L.classes; ++c) as.push_back(cfg.smoothing / L.classes * ref::weight_of(cfg, c));
            as[static_cast<std::size_t>(t)] += (1 - cfg.smoothing) * ref::weight_of(cfg, t);
        }
    }

    std::vector<ld> got_losses(lbuf.size());
    for (std::size_t i = 0; i < lbuf.size(); ++i) got_losses[i] = static_cast<ld>(lbuf[i]);
    const std::vector<ld> reduce_scale = {cfg.reduction == ref::red::mean ? 1.0L / denominator : 1.0L};
    compare<T>(ck, want, got, oc.losses ? &got_losses : nullptr, nullptr, reduce_scale);
    if (!oc.losses) {
        for (T v : lbuf)
            if (v != T(-7)) ck.fail("a per-sample loss was written although outputs.losses was not given");
    }
    if (oc.grad != grad_mode::none) {
        const strided<T, R>& g = oc.grad == grad_mode::in_place ? xb : gb;
        compare_grad<T>(ck, want.grad, g.read(), gradient_magnitude(x, shape, cfg, scale, a));
        if (g.stray_writes() != 0) ck.fail("the gradient wrote outside its view");
    } else if (xb.read() != x) {
        ck.fail("the logits changed although no in-place gradient was asked for");
    }
    ck.done();
}

// ---------------------------------------------------------------------------------------------
// Data generators.
// ---------------------------------------------------------------------------------------------
std::vector<ld> random_values(index_t n, double lo, double hi, rng& r) {
    std::vector<ld> v(static_cast<std::size_t>(n));
    for (auto& e : v) e = static_cast<ld>(r.uniform(lo, hi));
    return v;
}

std::vector<std::int64_t> random_targets(index_t samples, index_t classes, double ignore_fraction,
                                         std::int64_t ignore_index, rng& r) {
    std::vector<std::int64_t> t(static_cast<std::size_t>(samples));
    for (auto& v : t)
        v = (r.chance(ignore_fraction) || classes == 0)
                ? ignore_index
                : static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(classes)));
    return t;
}

/// Probabilities with about a third of exact zeros; rows normalised to sum 1 when `normalise`.
std::vector<ld> random_probabilities(const shape_t& shape, std::size_t axis, bool normalise, rng& r) {
    std::vector<ld> q(static_cast<std::size_t>(ref::numel(shape)));
    for (auto& v : q) v = r.chance(0.3) ? 0.0L : static_cast<ld>(r.uniform(0, 1));
    if (normalise) {
        const ref::lines L(shape, axis);
        for (index_t s = 0; s < L.samples(); ++s) {
            ld sum = 0;
            for (index_t c = 0; c < L.classes; ++c) sum += q[static_cast<std::size_t>(L.at(s, c))];
            if (sum > 0)
                for (index_t c = 0; c < L.classes; ++c) q[static_cast<std::size_t>(L.at(s, c))] /= sum;
        }
    }
    return q;
}

std::vector<ld> random_weights(index_t classes, rng& r) {
    std::vector<ld> w = random_values(classes, 0.25, 2.0, r);
    if (classes > 2) w[1] = 0;  // a class of zero weight
    return w;
}

template <class T, std::size_t R>
void option_sweep(const shape_t& shape, int class_axis, storage_layout lay, std::uint64_t seed) {
    rng r(seed);
    const std::size_t axis = static_cast<std::size_t>(class_axis < 0 ? class_axis + static_cast<int>(R) : class_axis);
    const index_t C = shape[axis];
    const index_t samples = ref::numel(shape) / std::max<index_t>(C, 1);
    const std::vector<ld> x = random_values(ref::numel(shape), -8, 8, r);
    const std::vector<ld> w = random_weights(C, r);
    const std::vector<ld> up = random_values(samples, -2, 2, r);
    const std::vector<ld> q = random_probabilities(shape, axis, true, r);
    const std::vector<ld> q_free = random_probabilities(shape, axis, false, r);

    for (bool weighted : {false, true}) {
        for (int ignore_mode = 0; ignore_mode < 3; ++ignore_mode) {
            // 0: nothing ignored; 1: about a quarter of the targets are -100; 2: ignore_index is a
            // valid class (2), so every target 2 is ignored.
            const std::int64_t ii = ignore_mode == 2 ? std::min<std::int64_t>(2, C - 1) : -100;
            rng tr(seed ^ 0x5151u);
            const std::vector<std::int64_t> t = random_targets(samples, C, ignore_mode == 1 ? 0.25 : 0.0, -100, tr);
            for (double eps : {0.0, 0.3, 1.0}) {
                for (lk::reduction red : {lk::reduction::none, lk::reduction::mean, lk::reduction::sum}) {
                    for (double z : {0.0, 1e-2}) {
                        for (bool upstream : {false, true}) {
                            if (upstream && red != lk::reduction::none) continue;
                            options_case oc;
                            oc.weighted = weighted;
                            oc.ignore_index = ii;
                            oc.smoothing = eps;
                            oc.reduction = red;
                            oc.z = z;
                            oc.upstream = upstream;
                            oc.class_axis = class_axis;
                            oc.lay = lay;
                            // Alternate the gradient modes and the losses output over the sweep.
                            const int k = (weighted ? 1 : 0) + ignore_mode + static_cast<int>(eps * 10) +
                                          static_cast<int>(red) + (z != 0 ? 1 : 0) + (upstream ? 1 : 0);
                            oc.grad = k % 3 == 0   ? grad_mode::separate
                                      : k % 3 == 1 ? grad_mode::in_place
                                                   : grad_mode::none;
                            oc.losses = k % 2 == 0;
                            run_case<T, R, false>(shape, x, t, {}, w, up, oc, "uniform(-8, 8)");
                            if (ignore_mode == 0) {
                                run_case<T, R, true>(shape, x, {}, (k % 2) ? q : q_free, w, up, oc,
                                                     (k % 2) ? "uniform(-8, 8), normalised probabilities"
                                                             : "uniform(-8, 8), unnormalised probabilities");
                            }
                        }
                    }
                }
            }
        }
    }
}

}  // namespace

// =============================================================================================
// Every option and their combinations.
// =============================================================================================

TEMPLATE_TEST_CASE("cross_entropy: every option combination, [N, C] rows", "[cross_entropy]", float, double) {
    option_sweep<TestType, 2>({6, 67}, 1, storage_layout::row_major, 101);
    option_sweep<TestType, 2>({5, 3}, -1, storage_layout::row_major, 102);
    // More samples than a group of the loss alone (8), whose losses are taken after the group's
    // stats passes: two whole groups and a part.
    option_sweep<TestType, 2>({19, 40}, 1, storage_layout::row_major, 103);
}

TEMPLATE_TEST_CASE("cross_entropy: every option combination, [N, C, d1] columns", "[cross_entropy]", float, double) {
    // 299 lanes: blocks of 1 KiB, of 4 batches and of 1, and a scalar tail (256- and 512-bit batches)
    option_sweep<TestType, 3>({2, 7, 299}, 1, storage_layout::row_major, 103);
    option_sweep<TestType, 3>({3, 5, 9}, 1, storage_layout::reversed, 104);    // negative class stride
}

TEMPLATE_TEST_CASE("cross_entropy: every option combination, other layouts", "[cross_entropy]", float, double) {
    option_sweep<TestType, 2>({9, 6}, 1, storage_layout::class_swapped, 105);     // [N, C] column-major: columns
    option_sweep<TestType, 2>({5, 9}, 1, storage_layout::padded, 106);            // gathered lines
    option_sweep<TestType, 3>({4, 5, 3}, -1, storage_layout::row_major, 107);     // TensorFlow's class axis
    option_sweep<TestType, 3>({3, 6, 4}, 1, storage_layout::class_swapped, 108);  // classes contiguous on axis 1
    option_sweep<TestType, 2>({4, 11}, 1, storage_layout::reversed, 109);         // gathered, negative stride
}

// =============================================================================================
// Class counts 1, 3, 67, 1000, 4097.
// =============================================================================================

TEMPLATE_TEST_CASE("cross_entropy: class counts 1, 3, 67, 1000 and 4097", "[cross_entropy]", float, double) {
    using T = TestType;
    rng r(201);
    for (index_t C : {1, 3, 67, 1000, 4097}) {
        for (int variant = 0; variant < 2; ++variant) {
            options_case plain;
            plain.grad = grad_mode::separate;
            options_case all;
            all.weighted = true;
            all.smoothing = 0.1;
            all.z = 1e-3;
            all.reduction = lk::reduction::sum;
            all.grad = grad_mode::in_place;
            const options_case& oc = variant == 0 ? plain : all;
            {
                const shape_t shape = {3, C};
                const auto x = random_values(3 * C, -20, 20, r);
                const auto t = random_targets(3, C, 0.0, -100, r);
                run_case<T, 2, false>(shape, x, t, {}, random_weights(C, r), {}, oc, "uniform(-20, 20)");
                run_case<T, 2, true>(shape, x, {}, random_probabilities(shape, 1, true, r), random_weights(C, r), {},
                                     oc, "uniform(-20, 20), probabilities");
            }
            {
                const shape_t shape = {2, C, 5};
                const auto x = random_values(10 * C, -20, 20, r);
                const auto t = random_targets(10, C, 0.2, -100, r);
                run_case<T, 3, false>(shape, x, t, {}, random_weights(C, r), {}, oc, "uniform(-20, 20)");
                run_case<T, 3, true>(shape, x, {}, random_probabilities(shape, 1, true, r), random_weights(C, r), {},
                                     oc, "uniform(-20, 20), probabilities");
            }
        }
    }
}

// Lines of more than a short line's classes whose every |x| is within the exponential's
// unshifted limit take exp(x) itself in their first pass, the range on the way; so do column
// blocks larger than the L1 cache ([C, 40] with the class axis first). Logits near that limit
// make sum(exp(x)) huge, and a small upstream gradient makes the coefficient of those
// exponentials subnormal: such a line must take its gradient from exp(x - max) instead. Lines
// spanning -limit to +limit have exponentials below the fast range.
TEMPLATE_TEST_CASE("cross_entropy: lines near the unshifted limit, and tiny upstream gradients", "[cross_entropy]",
                   float, double) {
    using T = TestType;
    const double limit = std::is_same<T, float>::value ? 64 : 512;
    const ld tiny = std::is_same<T, float>::value ? 1e-12L : 1e-90L;
    rng r(203);
    for (index_t C : {300, 1000, 4097}) {
        for (const bool columns : {false, true}) {
            const index_t N = columns ? 40 : 4;
            const shape_t shape = columns ? shape_t{C, N} : shape_t{N, C};
            const ref::lines lines(shape, columns ? 0 : 1);
            std::vector<std::pair<std::string, std::vector<ld>>> data;
            data.push_back({"uniform(limit - 10, limit)", random_values(N * C, limit - 10, limit, r)});
            data.push_back({"uniform(-limit, -limit + 10)", random_values(N * C, -limit, -limit + 10, r)});
            data.push_back({"uniform(-limit, limit)", random_values(N * C, -limit, limit, r)});
            {
                auto x = random_values(N * C, -limit, limit, r);
                for (index_t s = 0; s < N; ++s)
                    x[static_cast<std::size_t>(lines.at(s, s))] = static_cast<ld>(s % 2 ? limit : -limit);
                data.push_back({"uniform(-limit, limit), one element at +-limit", x});
            }
            for (const auto& d : data) {
                const auto t = random_targets(N, C, 0.0, -100, r);
                for (int variant = 0; variant < 4; ++variant) {
                    options_case oc;
                    oc.class_axis = columns ? 0 : 1;
                    oc.reduction = lk::reduction::none;
                    oc.upstream = variant < 2;
                    oc.grad = variant % 2 ? grad_mode::in_place : grad_mode::separate;
                    oc.weighted = variant == 1;
                    const std::vector<ld> up(static_cast<std::size_t>(N), variant == 0 ? tiny : 1e-3L);
                    run_case<T, 2, false>(shape, d.second, t, {}, random_weights(C, r), up, oc,
                                          d.first + (columns ? ", columns" : ""));
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("cross_entropy: the sum over many rows", "[cross_entropy]", float, double) {
    using T = TestType;
    rng r(202);
    const shape_t shape = {600, 100};
    const auto x = random_values(600 * 100, -5, 5, r);
    const auto t = random_targets(600, 100, 0.1, -100, r);
    for (lk::reduction red : {lk::reduction::mean, lk::reduction::sum}) {
        options_case oc;
        oc.reduction = red;
        oc.grad = grad_mode::none;
        oc.losses = false;
        run_case<T, 2, false>(shape, x, t, {}, {}, {}, oc, "uniform(-5, 5)");
        oc.smoothing = 0.05;
        run_case<T, 2, false>(shape, x, t, {}, {}, {}, oc, "uniform(-5, 5)");
    }
}

// =============================================================================================
// Extreme and special values.
// =============================================================================================

TEMPLATE_TEST_CASE("cross_entropy: extreme logits", "[cross_entropy][special]", float, double) {
    using T = TestType;
    const ld inf = std::numeric_limits<ld>::infinity();
    rng r(301);
    for (index_t C : {3, 17, 67}) {
        const shape_t shape = {8, C};
        const index_t n = 8 * C;
        std::vector<std::pair<std::string, std::vector<ld>>> data;
        // Huge logits with a spread of order 1: the loss is that of the spread.
        {
            auto x = random_values(n, -3, 3, r);
            for (auto& v : x) v += 1e30L;
            data.push_back({"1e30 + uniform(-3, 3)", x});
        }
        {
            auto x = random_values(n, -3, 3, r);
            for (auto& v : x) v -= 1e30L;
            data.push_back({"-1e30 + uniform(-3, 3)", x});
        }
        // +-1e30 mixed: probabilities 0 or 1.
        {
            std::vector<ld> x(static_cast<std::size_t>(n));
            for (auto& v : x) v = r.chance(0.5) ? 1e30L : -1e30L;
            data.push_back({"+-1e30", x});
        }
        // -inf in many classes (never in the targets, see below).
        {
            auto x = random_values(n, -10, 10, r);
            for (auto& v : x)
                if (r.chance(0.4)) v = -inf;
            data.push_back({"uniform(-10, 10) with -inf", x});
        }
        // Large spreads: exp underflows for most classes.
        data.push_back({"uniform(-1e4, 1e4)", random_values(n, -1e4, 1e4, r)});
        for (const auto& d : data) {
            const std::vector<ld>& x = d.second;
            // Targets on finite logits (a -inf target has an infinite loss; tested separately).
            std::vector<std::int64_t> t(8);
            for (index_t s = 0; s < 8; ++s) {
                auto c = static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(C)));
                while (std::isinf(x[static_cast<std::size_t>(s * C + c)])) c = (c + 1) % C;
                t[static_cast<std::size_t>(s)] = c;
            }
            // Probabilities that are 0 on the -inf classes.
            auto q = random_probabilities(shape, 1, true, r);
            for (std::size_t i = 0; i < q.size(); ++i)
                if (std::isinf(x[i])) q[i] = 0;
            for (int variant = 0; variant < 4; ++variant) {
                options_case oc;
                oc.reduction = lk::reduction::none;
                oc.grad = variant % 2 ? grad_mode::in_place : grad_mode::separate;
                oc.weighted = variant >= 2;
                oc.z = variant == 3 ? 1e-4 : 0;
                // Smoothing spreads weight on every class: with a -inf class the loss is +inf (the
                // reference agrees), and the gradient stays finite.
                oc.smoothing = variant == 1 ? 0.1 : 0;
                run_case<T, 2, false>(shape, x, t, {}, random_weights(C, r), {}, oc, d.first);
                if (variant != 1) run_case<T, 2, true>(shape, x, {}, q, random_weights(C, r), {}, oc, d.first);
                // The same on columns ([N, C, 1] x 3 lanes: samples side by side).
                oc.lay = storage_layout::class_swapped;
                run_case<T, 2, false>(shape, x, t, {}, random_weights(C, r), {}, oc, d.first + ", class-swapped");
            }
        }
    }
}

// A confident line (one logit far above the rest, S = sum(exp(x - max)) down to 1 + 1e-15) under
// a class mass far above 1: the loss is dominated by A * log(S), which needs log(S) to its own
// relative accuracy, far below the ulp of S.
TEMPLATE_TEST_CASE("cross_entropy: a confident line under a large class mass", "[cross_entropy][special]", float,
                   double) {
    using T = TestType;
    const ld mass = std::is_same<T, float>::value ? 1e20L : 1e200L;
    rng r(305);
    for (index_t C : {3, 17, 67, 1000}) {
        const auto check = [&](const shape_t& shape, std::size_t axis, storage_layout lay) {
            const ref::lines L(shape, axis);
            std::vector<ld> x(static_cast<std::size_t>(ref::numel(shape))), q(x.size(), 0.0L);
            std::vector<std::int64_t> t(static_cast<std::size_t>(L.samples()));
            for (index_t s = 0; s < L.samples(); ++s) {
                const auto peak = static_cast<index_t>(r.below(static_cast<std::uint64_t>(C)));
                // A gap of 8 to 40 below the peak: S - 1 from about 3e-1 down to 1e-15.
                const double gap = r.uniform(8, std::is_same<T, float>::value ? 30 : 40);
                for (index_t c = 0; c < C; ++c) {
                    const auto i = static_cast<std::size_t>(L.at(s, c));
                    x[i] = c == peak ? 3.0L : static_cast<ld>(3 - gap - r.uniform(0, 4));
                    q[i] = c == peak ? mass : (r.chance(0.5) ? 0.0L : static_cast<ld>(r.uniform(0, 1)));
                }
                t[static_cast<std::size_t>(s)] = static_cast<std::int64_t>(peak);
            }
            const std::vector<ld> heavy(static_cast<std::size_t>(C), mass);
            for (int variant = 0; variant < 4; ++variant) {
                options_case oc;
                oc.class_axis = static_cast<int>(axis);
                oc.lay = lay;
                oc.reduction = variant == 2 ? lk::reduction::sum : lk::reduction::none;
                oc.grad = variant % 2 ? grad_mode::in_place : grad_mode::separate;
                oc.smoothing = variant == 3 ? 1e-3 : 0;
                oc.weighted = true;
                const std::string what = "confident lines, mass " + num(mass) + ", " + layout_name(lay);
                run_case<T, 2, false>(shape, x, t, {}, heavy, {}, oc, what + ", heavy class weights");
                oc.weighted = false;  // the mass is in the probabilities
                run_case<T, 2, true>(shape, x, {}, q, {}, {}, oc, what + ", heavy probabilities");
            }
        };
        check({6, C}, 1, storage_layout::row_major);      // rows
        check({C, 9}, 0, storage_layout::row_major);      // columns, 9 lanes: blocks and a tail
        check({5, C}, 1, storage_layout::padded);         // gathered lines
    }
}

TEMPLATE_TEST_CASE("cross_entropy: two maxima far above the rest, under a large class mass", "[cross_entropy][special]",
                   float, double) {
    // S is just over 2. The stats pass may round it to just under 2 (a lane's sum brought to the
    // maximum by a rounded factor), which the loss then takes for a confident line: log(S) must
    // still count both maxima.
    using T = TestType;
    const ld mass = std::is_same<T, float>::value ? 1e20L : 1e200L;
    rng r(306);
    for (index_t C : {3, 20, 67}) {
        for (bool far : {false, true}) {
            const auto check = [&](const shape_t& shape, std::size_t axis, storage_layout lay) {
                const ref::lines L(shape, axis);
                std::vector<ld> x(static_cast<std::size_t>(ref::numel(shape))), q(x.size(), 0.0L);
                std::vector<std::int64_t> t(static_cast<std::size_t>(L.samples()));
                for (index_t s = 0; s < L.samples(); ++s) {
                    const auto first = static_cast<index_t>(r.below(static_cast<std::uint64_t>(C)));
                    const index_t second = (first + 1 + static_cast<index_t>(r.below(static_cast<std::uint64_t>(C - 1)))) % C;
                    for (index_t c = 0; c < C; ++c) {
                        const auto i = static_cast<std::size_t>(L.at(s, c));
                        x[i] = c == first || c == second ? 100.0L : static_cast<ld>(r.uniform(55, 65));
                        q[i] = c == first ? mass : (r.chance(0.5) ? 0.0L : static_cast<ld>(r.uniform(0, 1)));
                    }
                    // One element far below the rest takes the line off the two-pass stats path.
                    if (far) x[static_cast<std::size_t>(L.at(s, (second + 1) % C == first ? (second + 2) % C : (second + 1) % C))] = -100.0L;
                    t[static_cast<std::size_t>(s)] = static_cast<std::int64_t>(first);
                }
                const std::vector<ld> heavy(static_cast<std::size_t>(C), mass);
                options_case oc;
                oc.class_axis = static_cast<int>(axis);
                oc.lay = lay;
                oc.reduction = lk::reduction::none;
                oc.grad = grad_mode::separate;
                oc.weighted = true;
                const std::string what = std::string("two maxima, ") + (far ? "one element far below, " : "") + layout_name(lay);
                run_case<T, 2, false>(shape, x, t, {}, heavy, {}, oc, what + ", heavy class weights");
                oc.weighted = false;
                oc.z = 1e30;
                run_case<T, 2, true>(shape, x, {}, q, {}, {}, oc, what + ", heavy probabilities, z-loss 1e30");
            };
            check({6, C}, 1, storage_layout::row_major);  // rows
            check({C, 9}, 0, storage_layout::row_major);  // columns
            check({5, C}, 1, storage_layout::padded);     // gathered lines
        }
    }
}

TEMPLATE_TEST_CASE("cross_entropy: NaN, +inf and all -inf lines give NaN; ignored lines are not read",
                   "[cross_entropy][special]", float, double) {
    using T = TestType;
    const ld inf = std::numeric_limits<ld>::infinity();
    const ld nan = std::numeric_limits<ld>::quiet_NaN();
    rng r(302);
    for (index_t C : {1, 4, 33}) {
        for (int kind = 0; kind < 4; ++kind) {
            // 20 samples: on columns (class-swapped layout) they fill vector lanes.
            const shape_t shape = {20, C};
            auto x = random_values(20 * C, -5, 5, r);
            // Sample 1 holds the special value; sample 2 holds it too but is ignored.
            for (index_t s : {1, 2}) {
                auto c = static_cast<index_t>(r.below(static_cast<std::uint64_t>(C)));
                if (kind == 0) x[static_cast<std::size_t>(s * C + c)] = nan;
                if (kind == 1) x[static_cast<std::size_t>(s * C + c)] = inf;
                if (kind == 2)
                    for (index_t k = 0; k < C; ++k) x[static_cast<std::size_t>(s * C + k)] = -inf;
                if (kind == 3) x[static_cast<std::size_t>(s * C + c)] = -inf;  // only -inf at the target
            }
            std::vector<std::int64_t> t(20, 0);
            t[2] = -100;
            if (kind == 3) {
                for (index_t s : {1, 2})
                    for (index_t k = 0; k < C; ++k)
                        if (std::isinf(x[static_cast<std::size_t>(s * C + k)])) t[static_cast<std::size_t>(s)] = k;
                t[2] = -100;
            }
            const char* names[] = {"NaN", "+inf", "all -inf", "-inf target"};
            for (lk::reduction red : {lk::reduction::none, lk::reduction::sum}) {
                for (storage_layout lay :
                     {storage_layout::row_major, storage_layout::class_swapped, storage_layout::padded}) {
                    options_case oc;
                    oc.reduction = red;
                    oc.grad = grad_mode::separate;
                    oc.lay = lay;
                    run_case<T, 2, false>(shape, x, t, {}, {}, {}, oc, names[kind]);
                    oc.smoothing = 0.2;
                    oc.z = 1e-3;
                    oc.grad = grad_mode::in_place;
                    run_case<T, 2, false>(shape, x, t, {}, {}, {}, oc, names[kind]);
                }
            }
        }
    }
}

TEMPLATE_TEST_CASE("cross_entropy: a NaN or +inf at every position of the line", "[cross_entropy][special]", float,
                   double) {
    using T = TestType;
    const T specials[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity()};
    for (index_t C : {1, 5, 17, 33, 70, 131}) {
        for (index_t pos = 0; pos < C; ++pos) {
            for (T special : specials) {
                // Rows: [2, C], the special value in sample 0. Columns: [C, 2] with the classes on
                // axis 0, the special value in sample 1.
                std::vector<T> x(static_cast<std::size_t>(2 * C));
                for (std::size_t i = 0; i < x.size(); ++i)
                    x[i] = static_cast<T>(std::sin(0.7 * static_cast<double>(i)) * 4);
                std::vector<T> xc = x;
                x[static_cast<std::size_t>(pos)] = special;
                xc[static_cast<std::size_t>(pos * 2 + 1)] = special;
                std::vector<std::int64_t> t = {0, C - 1};
                std::vector<T> losses(2), g(x.size());
                lk::loss_outputs<T, 2> out;
                out.losses = lk::tensor_view<T, 1>(losses.data(), {2});
                const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {2});
                INFO("C = " << C << ", position " << pos << ", value " << special);
                out.grad = lk::tensor_view<T, 2>(g.data(), {2, C});
                lk::cross_entropy(lk::tensor_view<const T, 2>(x.data(), {2, C}), tv, {}, out);
                CHECK(std::isnan(losses[0]));
                CHECK(std::isfinite(losses[1]));
                CHECK(std::isnan(g[static_cast<std::size_t>(C - 1)]));
                lk::cross_entropy_options<T> o;
                o.class_axis = 0;
                out.grad = lk::tensor_view<T, 2>(g.data(), {C, 2});
                lk::cross_entropy(lk::tensor_view<const T, 2>(xc.data(), {C, 2}), tv, o, out);
                CHECK(std::isfinite(losses[0]));
                CHECK(std::isnan(losses[1]));
                CHECK(std::isnan(g[1]));
            }
        }
    }
}

TEMPLATE_TEST_CASE("cross_entropy: a zero-coefficient class with -inf logit adds 0", "[cross_entropy][special]", float,
                   double) {
    using T = TestType;
    const T inf = std::numeric_limits<T>::infinity();
    // Probabilities 0 on the -inf class: PyTorch's (0 * -inf) would be NaN; logitkit gives the limit.
    std::vector<T> x = {T(1), -inf, T(2)};
    std::vector<T> q = {T(0.25), T(0), T(0.75)};
    const lk::tensor_view<const T, 2> xv(x.data(), {1, 3});
    const lk::tensor_view<const T, 2> qv(q.data(), {1, 3});
    const ld lse = std::log(std::exp(1.0L) + std::exp(2.0L));
    const ld want = 0.25L * (lse - 1) + 0.75L * (lse - 2);
    CHECK(std::fabs(lk::cross_entropy(xv, qv) - want) <= 1e-6L);
    // The same with a class weight of 0 on that class and smoothing.
    std::vector<T> w = {T(1), T(0), T(1)};
    std::vector<std::int64_t> t = {2};
    lk::cross_entropy_options<T> o;
    o.weight = lk::tensor_view<const T, 1>(w.data(), {3});
    o.label_smoothing = 0.3;
    const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {1});
    const ld want_h = (0.7L * (lse - 2) + 0.1L * ((lse - 1) + (lse - 2))) / 1;
    CHECK(std::fabs(lk::cross_entropy(xv, tv, o) - want_h) <= 1e-6L);
}

// =============================================================================================
// PyTorch's normalisation, by hand.
// =============================================================================================

TEMPLATE_TEST_CASE("cross_entropy: weighted mean with label smoothing, by hand", "[cross_entropy][pytorch]", float,
                   double) {
    using T = TestType;
    // Two classes, logits 0: every -log p is log 2. Weights [1, 3], smoothing 0.2:
    //   sample with target 0: 0.8 * 1 * log2 + 0.1 * (1 + 3) * log2 = 1.2 log2
    //   sample with target 1: 0.8 * 3 * log2 + 0.1 * (1 + 3) * log2 = 2.8 log2
    //   mean = (1.2 + 2.8) log2 / (1 + 3) = log 2 (PyTorch divides by the targets' weights).
    std::vector<T> x(4, T(0));
    std::vector<T> w = {T(1), T(3)};
    std::vector<std::int64_t> t = {0, 1};
    lk::cross_entropy_options<T> o;
    o.weight = lk::tensor_view<const T, 1>(w.data(), {2});
    o.label_smoothing = 0.2;
    const lk::tensor_view<const T, 2> xv(x.data(), {2, 2});
    const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {2});
    const ld l2 = std::log(2.0L);
    CHECK(std::fabs(lk::cross_entropy(xv, tv, o) - l2) <= 1e-6L);
    o.reduction = lk::reduction::sum;
    CHECK(std::fabs(lk::cross_entropy(xv, tv, o) - 4 * l2) <= 1e-6L);
    // An ignored third sample changes neither.
    std::vector<T> x3(6, T(0));
    std::vector<std::int64_t> t3 = {0, 1, -100};
    const lk::tensor_view<const T, 2> xv3(x3.data(), {3, 2});
    const lk::tensor_view<const std::int64_t, 1> tv3(t3.data(), {3});
    o.reduction = lk::reduction::mean;
    CHECK(std::fabs(lk::cross_entropy(xv3, tv3, o) - l2) <= 1e-6L);
    // Probability targets: the mean divides by the number of samples, whatever the weights.
    std::vector<T> q = {T(1), T(0), T(0), T(1)};
    const lk::tensor_view<const T, 2> qv(q.data(), {2, 2});
    o.label_smoothing = 0;
    CHECK(std::fabs(lk::cross_entropy(xv, qv, o) - (1 + 3) * l2 / 2) <= 1e-6L);
}

TEMPLATE_TEST_CASE("cross_entropy: every target ignored, and no samples", "[cross_entropy][pytorch]", float, double) {
    using T = TestType;
    std::vector<T> x = {T(1), T(2), T(3), T(4), T(5), T(6)};
    std::vector<std::int64_t> t = {-100, -100};
    const lk::tensor_view<T, 2> xv(x.data(), {2, 3});
    const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {2});
    std::vector<T> g(6, T(9)), losses(2, T(9));
    lk::loss_outputs<T, 2> out;
    out.grad = lk::tensor_view<T, 2>(g.data(), {2, 3});
    out.losses = lk::tensor_view<T, 1>(losses.data(), {2});
    for (double eps : {0.0, 0.1}) {
        for (double z : {0.0, 1e-3}) {
            lk::cross_entropy_options<T> o;
            o.label_smoothing = eps;
            o.z_loss = z;
            INFO("smoothing " << eps << ", z_loss " << z);
            CHECK(std::isnan(lk::cross_entropy(xv, tv, o, out)));  // PyTorch: 0 / 0
            for (T v : g) CHECK(v == T(0));
            for (T v : losses) CHECK(v == T(0));
            o.reduction = lk::reduction::sum;
            CHECK(lk::cross_entropy(xv, tv, o, out) == 0.0);
            o.reduction = lk::reduction::none;
            CHECK(lk::cross_entropy(xv, tv, o, out) == 0.0);
        }
    }
    // No samples at all: mean NaN, sum 0 (class indices and probabilities).
    const lk::tensor_view<const T, 2> empty(x.data(), {0, 3});
    const lk::tensor_view<const std::int64_t, 1> tempty(t.data(), {0});
    CHECK(std::isnan(lk::cross_entropy(empty, tempty)));
    CHECK(std::isnan(lk::cross_entropy(empty, empty)));
    lk::cross_entropy_options<T> o;
    o.reduction = lk::reduction::sum;
    CHECK(lk::cross_entropy(empty, tempty, o) == 0.0);
    CHECK(lk::cross_entropy(empty, empty, o) == 0.0);
    // Zero classes: every target must be ignored; probabilities give loss 0 and a NaN mean.
    const lk::tensor_view<const T, 2> no_classes(x.data(), {2, 0});
    CHECK(std::isnan(lk::cross_entropy(no_classes, tv)));
    CHECK(std::isnan(lk::cross_entropy(no_classes, no_classes)));
    CHECK(lk::cross_entropy(no_classes, no_classes, o) == 0.0);
}

TEMPLATE_TEST_CASE("cross_entropy: [C] as [1, C], and the Arch parameter", "[cross_entropy]", float, double) {
    using T = TestType;
    std::vector<T> x = {T(0.5), T(-1), T(2), T(0)};
    std::vector<std::int64_t> t = {2};
    const lk::tensor_view<const T, 2> xv(x.data(), {1, 4});
    const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {1});
    ld s = 0;
    for (T v : x) s += std::exp(static_cast<ld>(v));
    const ld want = std::log(s) - 2;
    CHECK(std::fabs(lk::cross_entropy(xv, tv) - want) <= 1e-6L);
    CHECK(std::fabs(lk::cross_entropy<lk::detail::scalar_arch>(xv, tv) - want) <= 1e-6L);
}

// =============================================================================================
// Central finite differences (double).
// =============================================================================================

namespace {

template <std::size_t R, bool Soft>
void finite_difference_case(const shape_t& shape, int class_axis, storage_layout lay, const options_case& oc,
                            std::uint64_t seed) {
    rng r(seed);
    const std::size_t axis = static_cast<std::size_t>(class_axis < 0 ? class_axis + static_cast<int>(R) : class_axis);
    const shape_t sample_shape = drop(shape, axis);
    const index_t C = shape[axis];
    const index_t samples = ref::numel(sample_shape);
    std::vector<ld> x = random_values(ref::numel(shape), -3, 3, r);
    std::vector<std::int64_t> t = random_targets(samples, C, oc.ignore_index == -100 ? 0.2 : 0.0, -100, r);
    std::vector<double> w(static_cast<std::size_t>(C)), up(static_cast<std::size_t>(samples));
    for (auto& v : w) v = r.uniform(0.25, 2);
    for (auto& v : up) v = r.uniform(-2, 2);
    std::vector<ld> q = random_probabilities(shape, axis, false, r);

    strided<double, R> xb(shape, lay, axis), qb(shape, lay, axis), gb(shape, lay, axis);
    xb.write(x);
    qb.write(q);
    lk::cross_entropy_options<double> o;
    o.class_axis = class_axis;
    if (oc.weighted) o.weight = lk::tensor_view<const double, 1>(w.data(), {C});
    o.ignore_index = oc.ignore_index;
    o.label_smoothing = oc.smoothing;
    o.reduction = oc.reduction;
    o.z_loss = oc.z;
    std::vector<double> losses(static_cast<std::size_t>(samples));
    lk::loss_outputs<double, R> out;
    out.losses = lk::tensor_view<double, R - 1>(losses.data(), to_extents<R - 1>(sample_shape));
    if (oc.upstream) out.upstream = lk::tensor_view<const double, R - 1>(up.data(), to_extents<R - 1>(sample_shape));
    const lk::tensor_view<const std::int64_t, R - 1> tv(t.data(), to_extents<R - 1>(sample_shape));

    // The objective whose gradient is written: the reduced loss, or sum_i upstream_i * loss_i.
    auto objective = [&]() {
        lk::loss_outputs<double, R> o2 = out;
        o2.grad = {};
        const double v =
            Soft ? lk::cross_entropy(xb.cview(), qb.cview(), o, o2) : lk::cross_entropy(xb.cview(), tv, o, o2);
        if (oc.reduction != lk::reduction::none) return v;
        double s = 0;
        for (std::size_t i = 0; i < losses.size(); ++i) s += (oc.upstream ? up[i] : 1.0) * losses[i];
        return s;
    };
    out.grad = gb.view();
    if (Soft)
        lk::cross_entropy(xb.cview(), qb.cview(), o, out);
    else
        lk::cross_entropy(xb.cview(), tv, o, out);
    const std::vector<ld> g = gb.read();

    checker ck;
    ck.what = std::string("finite differences, ") + (Soft ? "probabilities" : "class indices") + ", logits " +
              shape_string(shape) + ", " + oc.describe();
    std::vector<std::size_t> positions;
    xb.each([&](index_t, std::size_t p) { positions.push_back(p); });
    for (std::size_t i = 0; i < positions.size(); ++i) {
        double& xi = xb.buf[positions[i]];
        const double saved = xi;
        const double h = 1e-5 * std::max(1.0, std::fabs(saved));
        xi = saved + h;
        const double fp = objective();
        xi = saved - h;
        const double fm = objective();
        xi = saved;
        const double fd = (fp - fm) / (2 * h);
        if (!(std::fabs(fd - static_cast<double>(g[i])) <= 1e-7 * std::max(1.0, std::fabs(fd))))
            ck.fail("element " + std::to_string(i) + ": gradient " + num(g[i]) + ", central difference " + num(fd));
    }
    ck.done();
}

}  // namespace

TEST_CASE("cross_entropy: gradient against central finite differences (double)", "[cross_entropy][gradient]") {
    std::uint64_t seed = 400;
    for (bool weighted : {false, true}) {
        for (std::int64_t ii : {std::int64_t(-100), std::int64_t(1)}) {
            for (double eps : {0.0, 0.25}) {
                for (double z : {0.0, 0.05}) {
                    for (lk::reduction red : {lk::reduction::none, lk::reduction::mean, lk::reduction::sum}) {
                        options_case oc;
                        oc.weighted = weighted;
                        oc.ignore_index = ii;
                        oc.smoothing = eps;
                        oc.z = z;
                        oc.reduction = red;
                        oc.upstream = red == lk::reduction::none;
                        finite_difference_case<2, false>({3, 5}, 1, storage_layout::row_major, oc, ++seed);
                        finite_difference_case<3, false>({2, 4, 3}, 1, storage_layout::row_major, oc, ++seed);
                        finite_difference_case<3, false>({2, 3, 4}, -1, storage_layout::padded, oc, ++seed);
                        if (ii == -100) {
                            finite_difference_case<2, true>({3, 5}, 1, storage_layout::row_major, oc, ++seed);
                            finite_difference_case<3, true>({2, 4, 3}, 1, storage_layout::row_major, oc, ++seed);
                        }
                    }
                }
            }
        }
    }
}

// =============================================================================================
// Argument errors: a clear message, and nothing written.
// =============================================================================================

namespace {

template <class F>
std::string invalid_argument_message(F f) {
    try {
        f();
    } catch (const std::invalid_argument& e) {
        return e.what();
    } catch (...) {
        return "<another exception>";
    }
    return "<no exception>";
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

}  // namespace

TEMPLATE_TEST_CASE("cross_entropy: bad arguments throw and write nothing", "[cross_entropy][errors]", float, double) {
    using T = TestType;
    const T sentinel = T(42);
    std::vector<T> x = {T(1), T(2), T(3), T(4), T(5), T(6), T(7), T(8)};  // [2, 4]
    std::vector<T> g(8, sentinel), losses(2, sentinel), up(2, T(1));
    std::vector<T> w = {T(1), T(1), T(1), T(1)};
    std::vector<std::int64_t> t = {1, 3};
    const lk::tensor_view<const T, 2> xv(x.data(), {2, 4});
    lk::loss_outputs<T, 2> out;
    out.grad = lk::tensor_view<T, 2>(g.data(), {2, 4});
    out.losses = lk::tensor_view<T, 1>(losses.data(), {2});
    auto untouched = [&] {
        for (T v : g)
            if (v != sentinel) return false;
        for (T v : losses)
            if (v != sentinel) return false;
        return true;
    };
    auto call = [&](std::vector<std::int64_t> tt, lk::cross_entropy_options<T> o, lk::loss_outputs<T, 2> oo) {
        return [=]() {
            const lk::tensor_view<const std::int64_t, 1> tv(tt.data(), {static_cast<index_t>(tt.size())});
            lk::cross_entropy(xv, tv, o, oo);
        };
    };
    const lk::cross_entropy_options<T> defaults;

    SECTION("a target outside [0, C) names its value and position") {
        for (std::int64_t bad : {std::int64_t(4), std::int64_t(-1), std::int64_t(1000)}) {
            const std::string m = invalid_argument_message(call({1, bad}, defaults, out));
            INFO(m);
            CHECK(contains(m, "logitkit::cross_entropy: targets[1] = " + std::to_string(bad)));
            CHECK(contains(m, "[0, 4)"));
            CHECK(untouched());
        }
        // ignore_index set elsewhere: -100 is then an ordinary (bad) target.
        lk::cross_entropy_options<T> o;
        o.ignore_index = -1;
        const std::string m = invalid_argument_message(call({-100, 1}, o, out));
        CHECK(contains(m, "targets[0] = -100"));
        CHECK(untouched());
    }
    SECTION("the position of a bad target in [N, d1]") {
        std::vector<T> x3(2 * 3 * 2, T(0));
        std::vector<std::int64_t> t3 = {0, 1, 2, 0};
        t3[3] = 3;  // targets[1, 1]
        const lk::tensor_view<const T, 3> xv3(x3.data(), {2, 3, 2});
        const lk::tensor_view<const std::int64_t, 2> tv3(t3.data(), {2, 2});
        const std::string m = invalid_argument_message([&] { lk::cross_entropy(xv3, tv3); });
        CHECK(contains(m, "targets[1, 1] = 3"));
    }
    SECTION("shape mismatches") {
        CHECK(contains(invalid_argument_message(call({1, 2, 3}, defaults, out)), "targets.shape = [3]"));
        auto bad_grad = out;
        bad_grad.grad = lk::tensor_view<T, 2>(g.data(), {4, 2});
        CHECK(contains(invalid_argument_message(call({1, 2}, defaults, bad_grad)), "outputs.grad.shape = [4, 2]"));
        auto bad_losses = out;
        bad_losses.losses = lk::tensor_view<T, 1>(losses.data(), {1});
        CHECK(contains(invalid_argument_message(call({1, 2}, defaults, bad_losses)), "outputs.losses.shape = [1]"));
        lk::cross_entropy_options<T> none;
        none.reduction = lk::reduction::none;
        auto bad_up = out;
        bad_up.upstream = lk::tensor_view<const T, 1>(up.data(), {1});
        CHECK(contains(invalid_argument_message(call({1, 2}, none, bad_up)), "outputs.upstream.shape = [1]"));
        // Probabilities must have the logits' shape.
        std::vector<T> q(8, T(0.25));
        const lk::tensor_view<const T, 2> qv(q.data(), {4, 2});
        CHECK(contains(invalid_argument_message([&] { lk::cross_entropy(xv, qv, defaults, out); }),
                       "targets.shape = [4, 2]"));
        CHECK(untouched());
    }
    SECTION("a weight vector of the wrong length") {
        lk::cross_entropy_options<T> o;
        o.weight = lk::tensor_view<const T, 1>(w.data(), {3});
        const std::string m = invalid_argument_message(call({1, 2}, o, out));
        CHECK(contains(m, "options.weight.shape = [3]"));
        CHECK(contains(m, "[4]"));
        CHECK(untouched());
    }
    SECTION("label smoothing outside [0, 1], a bad z_loss") {
        for (double eps : {-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}) {
            lk::cross_entropy_options<T> o;
            o.label_smoothing = eps;
            CHECK(contains(invalid_argument_message(call({1, 2}, o, out)), "options.label_smoothing"));
        }
        for (double z : {-1.0, std::numeric_limits<double>::infinity()}) {
            lk::cross_entropy_options<T> o;
            o.z_loss = z;
            CHECK(contains(invalid_argument_message(call({1, 2}, o, out)), "options.z_loss"));
        }
        CHECK(untouched());
    }
    SECTION("negative or NaN probabilities name their position") {
        for (T bad : {T(-0.5), std::numeric_limits<T>::quiet_NaN()}) {
            std::vector<T> q(8, T(0.25));
            q[6] = bad;  // targets[1, 2]
            const lk::tensor_view<const T, 2> qv(q.data(), {2, 4});
            const std::string m = invalid_argument_message([&] { lk::cross_entropy(xv, qv, defaults, out); });
            INFO(m);
            CHECK(contains(m, "targets[1, 2] = "));
            CHECK(contains(m, "probabilities >= 0"));
            // Strided probabilities are checked too.
            const lk::tensor_view<const T, 2> qt(q.data(), {2, 4}, {1, 2});
            CHECK(contains(invalid_argument_message([&] { lk::cross_entropy(xv, qt, defaults, out); }), "targets["));
        }
        lk::cross_entropy_options<T> o;
        o.ignore_index = 0;
        std::vector<T> q(8, T(0.25));
        const lk::tensor_view<const T, 2> qv(q.data(), {2, 4});
        CHECK(
            contains(invalid_argument_message([&] { lk::cross_entropy(xv, qv, o, out); }), "options.ignore_index = 0"));
        CHECK(untouched());
    }
    SECTION("an upstream gradient with a mean or a sum") {
        auto with_up = out;
        with_up.upstream = lk::tensor_view<const T, 1>(up.data(), {2});
        CHECK(contains(invalid_argument_message(call({1, 2}, defaults, with_up)), "outputs.upstream"));
        CHECK(untouched());
    }
    SECTION("overlapping outputs") {
        auto o1 = out;
        o1.losses = lk::tensor_view<T, 1>(g.data() + 3, {2});  // inside the gradient
        CHECK(contains(invalid_argument_message(call({1, 2}, defaults, o1)), "overlaps"));
        auto o2 = out;
        o2.grad = lk::tensor_view<T, 2>(x.data() + 1, {2, 4}, {4, 1});  // shifted logits
        CHECK(contains(invalid_argument_message(call({1, 2}, defaults, o2)), "overlaps logits"));
        auto o3 = out;
        o3.grad = lk::tensor_view<T, 2>(g.data(), {2, 4}, {0, 1});  // two samples on one row
        CHECK(contains(invalid_argument_message(call({1, 2}, defaults, o3)), "several indices"));
        CHECK(untouched());
    }
    SECTION("a class axis out of range") {
        lk::cross_entropy_options<T> o;
        o.class_axis = 2;
        const lk::tensor_view<const std::int64_t, 1> tv(t.data(), {2});
        CHECK_THROWS_AS(lk::cross_entropy(xv, tv, o, out), std::out_of_range);
        CHECK(untouched());
    }
}
