// logitkit differential fuzzer for the losses and the Gumbel kernels (libFuzzer).
//
// Each input decodes one call of cross_entropy (class-index or class-probability targets),
// nll_loss, gumbel_softmax (soft or hard, with or without y_soft), gumbel_softmax_backward or
// sample_categorical: an element type, a shape, an axis, the options (valid and invalid ones), a
// memory layout per operand (permuted, padded, negative and, for inputs, zero strides), how the
// outputs relate to the inputs (separate, exactly in place, shifted into another operand's memory,
// a zero stride, a mismatched shape, null data) and the values (several magnitudes, +-inf, NaN,
// +-0, subnormals, huge and raw bit patterns). The call runs on the SIMD path these flags compile
// and on logitkit::detail::scalar_arch, each on its own copy of the memory and, for the sampling
// kernels, with its own philox4x32 generator of the same seed and offset. Checked:
//
//  * invalid calls: the documented exception type (std::out_of_range for the axis,
//    std::invalid_argument otherwise), a message starting "logitkit::<function>: ", the same on
//    both paths, a bad target named with its position, no byte of memory changed and no random
//    word drawn;
//  * valid calls: no byte outside the output elements changes; the losses, their gradients and
//    the reduced value are within the bounds the unit tests apply (tests/test_cross_entropy.cpp,
//    tests/test_nll_loss.cpp) of the long double reference of tests/reference_loss.hpp, NaN and
//    infinities exactly where it has them;
//  * the Gumbel noise is the same, bit for bit, on both paths and -log(-log(u)) of the documented
//    uniform of each element; gumbel_softmax is softmax((x + g) / tau) within softmax's bound and
//    bit for bit the softmax kernel of the same path on x + g; a hard sample is exactly the one-hot
//    of the first maximum of (x + g) / tau, where the soft sample is largest; the backward kernel
//    is within its stated bound; sample_categorical draws the same indices on both paths, each a
//    class the filters keep and a maximum of z + g among them.
//
// Every operand lives in its own exactly sized heap allocation (shared only where the case asks
// for aliasing), so AddressSanitizer sees any access past a view's memory. A violation prints the
// case and aborts, which libFuzzer reports as a crash and saves as an artifact.
// SPDX-License-Identifier: MIT
#include "fuzz_common.hpp"

#include "reference_loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

namespace {

using namespace lk_fuzz;
namespace ref = lk_loss_ref;

constexpr index_type max_elements = 1024;  // per operand, logical

std::string type_name(float) { return "float"; }
std::string type_name(double) { return "double"; }

/// A value of the first set most of the time, of the second now and then.
template <class V, std::size_t N, std::size_t M>
V pick_mostly(FuzzedDataProvider& f, const V (&usual)[N], const V (&rare)[M], int rare_in_16) {
    return f.ConsumeIntegralInRange<int>(0, 15) < rare_in_16 ? f.PickValueInArray(rare) : f.PickValueInArray(usual);
}

/// A uniform value in [0, 1] from 16 bits.
double unit(FuzzedDataProvider& f) { return static_cast<double>(f.ConsumeIntegral<std::uint16_t>()) / 65535.0; }

/// The shape without dimension `axis`.
shape_t drop_axis(const shape_t& s, std::size_t axis) {
    shape_t out;
    for (std::size_t k = 0; k < s.size(); ++k)
        if (k != axis) out.push_back(s[k]);
    return out;
}

/// A view counts as given unless it is default-constructed (null data, every extent 0).
bool is_given(const operand& o) {
    return o.alloc != none || std::any_of(o.shape.begin(), o.shape.end(), [](index_type e) { return e != 0; });
}

/// The operand of a default-constructed view of rank r.
operand absent_operand(const char* name, std::size_t r) {
    operand o;
    o.name = name;
    o.shape.assign(r, 0);
    o.strides.assign(r, 0);
    return o;
}

/// The index of element `row_major` of a row-major tensor of `shape`, written as the library's
/// messages write positions: "[i, j]".
std::string index_string(const shape_t& shape, index_type row_major) {
    shape_t idx(shape.size());
    for (std::size_t k = shape.size(); k-- > 0;) {
        idx[k] = shape[k] == 0 ? 0 : row_major % shape[k];
        row_major = shape[k] == 0 ? 0 : row_major / shape[k];
    }
    return format(idx);
}

/// "name (row-major): v0 v1 ..." of a view, for LOGITKIT_FUZZ_VERBOSE.
template <class V>
std::string dump(const operand& o, const std::vector<std::vector<V>>& mem) {
    std::string s = std::string("\n  ") + o.name + " (row-major):";
    if (o.alloc == none) return s + " (null)";
    for (V v : gather(o, mem).v) s += " " + show(v);
    return s;
}

/// Compares the outputs of one path with their expected values.
template <class T>
void check_values(const std::string& what, const char* name, const char* path, const std::vector<T>& got,
                  const std::vector<T>& other, const std::vector<expected_value>& ex, const shape_t& shape) {
    for (std::size_t i = 0; i < ex.size(); ++i)
        if (const char* why = mismatch(got[i], ex[i]))
            fail(what + "\n" + mismatch_report(name, i, path, why, got[i], other[i], ex[i]) + " at index " +
                 index_string(shape, static_cast<index_type>(i)));
}

// =============================================================================================
// cross_entropy and nll_loss.
// =============================================================================================

enum class loss_fn { cross_entropy_indices, cross_entropy_probabilities, nll_loss };
constexpr loss_fn all_loss_fns[] = {loss_fn::cross_entropy_indices, loss_fn::cross_entropy_probabilities,
                                    loss_fn::nll_loss};

/// How an optional operand is given.
enum class mode { absent, separate, in_place, shifted, repeated, mismatch, null_data };

const char* mode_name(mode m) {
    switch (m) {
        case mode::absent: return "absent";
        case mode::separate: return "separate";
        case mode::in_place: return "exactly the input (in place)";
        case mode::shifted: return "shifted into another operand's memory";
        case mode::repeated: return "with a zero stride";
        case mode::mismatch: return "mismatched shape";
        case mode::null_data: return "null data";
    }
    return "?";
}

// The operands of a loss call, in this order in loss_case::ops.
enum { logits_op, targets_op, weight_op, upstream_op, grad_op, losses_op, loss_operands };

/// What the values of an allocation are drawn from.
enum class filling { logits, probabilities, weights, any };

template <class T>
struct loss_case {
    loss_fn fn = loss_fn::cross_entropy_indices;
    shape_t shape;  // the logits' (log-probabilities') shape
    int class_axis = 1;
    std::int64_t ignore_index = -100;
    double smoothing = 0, z = 0;
    int reduction = 1;  // the value of logitkit::reduction; 3 and -1 are not valid
    bool wild_weights = false;
    mode weight = mode::absent, upstream = mode::absent, grad = mode::absent, losses = mode::absent;
    std::vector<operand> ops;
    std::vector<std::vector<T>> allocs;
    std::vector<filling> fills;                           // per allocation
    std::vector<std::vector<std::int64_t>> index_allocs;  // class-index targets

    bool probabilities() const { return fn == loss_fn::cross_entropy_probabilities; }
    bool is_nll() const { return fn == loss_fn::nll_loss; }
    const char* name() const { return is_nll() ? "nll_loss" : "cross_entropy"; }

    std::string describe() const {
        static const char* reductions[] = {"none", "mean", "sum"};
        std::string s = std::string("logitkit::") + name() + "<" + type_name(T()) + ">" +
                        (fn == loss_fn::cross_entropy_indices         ? " with class indices"
                         : fn == loss_fn::cross_entropy_probabilities ? " with class probabilities"
                                                                      : "") +
                        ", logits shape " + format(shape) + ", class_axis " + std::to_string(class_axis) +
                        ", ignore_index " + std::to_string(ignore_index);
        if (!is_nll()) s += ", label_smoothing " + show(smoothing) + ", z_loss " + show(z);
        s += ", reduction " + (reduction >= 0 && reduction <= 2 ? std::string(reductions[reduction])
                                                                : "invalid (" + std::to_string(reduction) + ")");
        s += "; weight " + std::string(mode_name(weight)) + ", upstream " + mode_name(upstream) + ", grad " +
             mode_name(grad) + ", losses " + mode_name(losses) + "; SIMD path " + logitkit::simd_arch_name();
        for (std::size_t i = 0; i < ops.size(); ++i) {
            const operand& o = ops[i];
            const bool indices = i == targets_op && !probabilities();
            const std::size_t n = o.alloc == none ? 0 : indices ? index_allocs[o.alloc].size() : allocs[o.alloc].size();
            s += "\n  " + describe_operand(o, n) + (indices ? " (class indices)" : "");
        }
        return s;
    }
};

/// One class index: mostly a class, now and then ignore_index, and at `bad_in_64` out of 64 a
/// value outside [0, C).
std::int64_t decode_target(FuzzedDataProvider& f, index_type classes, std::int64_t ignore_index, int bad_in_64) {
    const int r = f.ConsumeIntegralInRange<int>(0, 63);
    if (r < bad_in_64)
        return f.PickValueInArray<std::int64_t>({-1, classes, classes + 1, -100,
                                                 std::numeric_limits<std::int64_t>::min(),
                                                 std::numeric_limits<std::int64_t>::max()});
    if (r < bad_in_64 + 6 || classes == 0) return ignore_index;
    return f.ConsumeIntegralInRange<std::int64_t>(0, classes - 1);
}

/// A class probability: in [0, 1], often exactly 0, now and then huge, subnormal or +inf, and
/// (when `negatives`) a value the library must reject.
template <class T>
T decode_probability(FuzzedDataProvider& f, bool negatives) {
    using L = std::numeric_limits<T>;
    const int r = f.ConsumeIntegralInRange<int>(0, 63);
    if (r < 16) return T(0);
    if (r < 58) return static_cast<T>(unit(f));
    switch (r) {
        case 58: return L::denorm_min();
        case 59: return T(1e30f);
        case 60: return L::infinity();
        case 61: return T(1);
        default:
            if (!negatives) return T(0.5);
            return r == 62 ? -static_cast<T>(unit(f)) - L::denorm_min() : L::quiet_NaN();
    }
}

/// A class weight >= 0: mostly ordinary, 0 now and then; with `wild`, also subnormal, huge, +inf
/// or NaN (which docs/api.md does not rule out).
template <class T>
T decode_weight(FuzzedDataProvider& f, bool wild) {
    using L = std::numeric_limits<T>;
    const int r = f.ConsumeIntegralInRange<int>(0, wild ? 31 : 24);
    if (r < 20) return static_cast<T>(2 * unit(f));
    if (r < 24) return T(0);
    switch (r) {
        case 24: return T(1);
        case 25: return L::denorm_min() * static_cast<T>(f.ConsumeIntegralInRange<int>(1, 1000));
        case 26: return T(1e-30f);
        case 27: return T(1e10f);
        case 28: return T(1e30f);
        case 29: return L::max();
        case 30: return L::infinity();
        default: return L::quiet_NaN();
    }
}

/// The errors the documented rules predict (computed independently of the library), and, when
/// the only error is a bad target, the start of the message that names it.
template <class T>
void predict_loss_errors(const loss_case<T>& c, bool& out_of_range, bool& invalid, std::string& target_message) {
    const std::vector<operand>& ops = c.ops;
    out_of_range = !axis_in_range(c.class_axis, c.shape.size());
    invalid = false;
    target_message.clear();
    if (out_of_range) return;
    const std::size_t a = lk_ref::normalize_axis(c.class_axis, c.shape.size());
    const index_type classes = c.shape[a];
    const shape_t samples = drop_axis(c.shape, a);
    bool inv = c.reduction < 0 || c.reduction > 2;
    if (!c.is_nll()) {
        inv = inv || !(c.smoothing >= 0 && c.smoothing <= 1);
        inv = inv || !(std::isfinite(c.z) && c.z >= 0);
    }
    if (c.probabilities()) inv = inv || c.ignore_index >= 0;
    const operand &x = ops[logits_op], &t = ops[targets_op], &w = ops[weight_op], &up = ops[upstream_op],
                  &g = ops[grad_op], &l = ops[losses_op];
    inv = inv || t.shape != (c.probabilities() ? c.shape : samples);
    inv = inv || null_with_elements(x) || null_with_elements(t);
    if (count(w.shape) != 0) inv = inv || w.shape != shape_t{classes} || null_with_elements(w);
    if (is_given(up)) inv = inv || c.reduction != 0 || up.shape != samples || null_with_elements(up);
    if (is_given(g)) {
        inv = inv || g.shape != c.shape || null_with_elements(g) || repeats_elements(g);
        inv = inv || (!same_view(g, x) && spans_intersect(g, x));
        // The probabilities share the logits' element type, so an output may overlap them.
        if (c.probabilities()) inv = inv || spans_intersect(g, t);
        inv = inv || spans_intersect(g, w) || spans_intersect(g, up);
    }
    if (is_given(l)) {
        inv = inv || l.shape != samples || null_with_elements(l) || repeats_elements(l);
        inv = inv || spans_intersect(l, x) || spans_intersect(l, w) || spans_intersect(l, up);
        if (c.probabilities()) inv = inv || spans_intersect(l, t);
        if (is_given(g)) inv = inv || spans_intersect(l, g);
    }
    if (inv || t.alloc == none) {
        invalid = inv;
        return;
    }
    // The targets, in row-major order: the first bad one is reported with its position.
    if (c.probabilities()) {
        const dense<T> q = gather(t, c.allocs);
        for (std::size_t i = 0; i < q.v.size(); ++i)
            if (!(q.v[i] >= T(0))) {
                invalid = true;
                target_message = std::string("logitkit::") + c.name() + ": targets" +
                                 index_string(t.shape, static_cast<index_type>(i)) + " = ";
                return;
            }
    } else {
        const dense<std::int64_t> tv = gather(t, c.index_allocs);
        for (std::size_t i = 0; i < tv.v.size(); ++i) {
            const std::int64_t v = tv.v[i];
            if (v != c.ignore_index && (v < 0 || v >= classes)) {
                invalid = true;
                target_message = std::string("logitkit::") + c.name() + ": targets" +
                                 index_string(t.shape, static_cast<index_type>(i)) + " = " + std::to_string(v) +
                                 " is not a class index in [0, " + std::to_string(classes) + ")";
                return;
            }
        }
    }
}

struct loss_result {
    outcome thrown;
    double value = 0;
};

template <class Arch, class T, std::size_t R>
loss_result run_loss(const loss_case<T>& c, std::vector<std::vector<T>>& mem,
                     std::vector<std::vector<std::int64_t>>& index_mem) {
    const std::vector<operand>& ops = c.ops;
    loss_result r;
    r.thrown = capture([&] {
        const logitkit::tensor_view<const T, R> x = view_of<T, R>(ops[logits_op], mem);
        const logitkit::tensor_view<const T, 1> weight = view_of<T, 1>(ops[weight_op], mem);
        logitkit::loss_outputs<T, R> out;
        if (is_given(ops[grad_op])) out.grad = view_of<T, R>(ops[grad_op], mem);
        if (is_given(ops[losses_op])) out.losses = view_of<T, R - 1>(ops[losses_op], mem);
        if (is_given(ops[upstream_op])) out.upstream = view_of<T, R - 1>(ops[upstream_op], mem);
        const auto red = static_cast<logitkit::reduction>(c.reduction);
        if (c.is_nll()) {
            logitkit::nll_loss_options<T> o;
            o.class_axis = c.class_axis;
            o.weight = weight;
            o.ignore_index = c.ignore_index;
            o.reduction = red;
            const logitkit::tensor_view<const std::int64_t, R - 1> t =
                view_of<std::int64_t, R - 1>(ops[targets_op], index_mem);
            r.value = logitkit::nll_loss<Arch>(x, t, o, out);
            return;
        }
        logitkit::cross_entropy_options<T> o;
        o.class_axis = c.class_axis;
        o.weight = weight;
        o.ignore_index = c.ignore_index;
        o.label_smoothing = c.smoothing;
        o.reduction = red;
        o.z_loss = c.z;
        if (c.probabilities()) {
            const logitkit::tensor_view<const T, R> q = view_of<T, R>(ops[targets_op], mem);
            r.value = logitkit::cross_entropy<Arch>(x, q, o, out);
        } else {
            const logitkit::tensor_view<const std::int64_t, R - 1> t =
                view_of<std::int64_t, R - 1>(ops[targets_op], index_mem);
            r.value = logitkit::cross_entropy<Arch>(x, t, o, out);
        }
    });
    return r;
}

/// The unit tests' tolerances: cross_entropy (tests/test_cross_entropy.cpp) and nll_loss
/// (tests/test_nll_loss.cpp).
template <class T>
struct loss_tol {
    static constexpr bool is_float = std::is_same<T, float>::value;
    static constexpr ld sample = is_float ? 2e-6L : 1e-12L;
    static constexpr ld reduced = is_float ? 1e-5L : 1e-12L;
    static constexpr ld grad = is_float ? 2e-6L : 1e-12L;
    static constexpr ld nll = is_float ? 1e-6L : 1e-14L;
};

expected_value expect(ld ref, ld allowed) {
    expected_value e;
    e.nan = std::isnan(ref);
    e.ref = ref;
    e.allowed = allowed;
    return e;
}

/// What a valid loss call must produce: the reduced value, the per-sample losses and the gradient.
struct loss_expectation {
    expected_value reduced;
    std::vector<expected_value> losses, grad;
};

template <class T>
loss_expectation expected_loss(const loss_case<T>& c) {
    const std::size_t R = c.shape.size();
    const std::size_t a = lk_ref::normalize_axis(c.class_axis, R);
    const std::vector<operand>& ops = c.ops;
    const dense<T> xt = gather(ops[logits_op], c.allocs);
    std::vector<ld> x(xt.v.begin(), xt.v.end());

    ref::config cfg;
    cfg.class_axis = a;
    if (count(ops[weight_op].shape) != 0)
        for (T v : gather(ops[weight_op], c.allocs).v) cfg.weight.push_back(static_cast<ld>(v));
    cfg.ignore_index = c.ignore_index;
    cfg.smoothing = static_cast<ld>(c.smoothing);
    cfg.reduction = c.reduction == 0 ? ref::red::none : c.reduction == 1 ? ref::red::mean : ref::red::sum;
    cfg.z = static_cast<ld>(c.z);
    std::vector<ld> up;
    if (is_given(ops[upstream_op]))
        for (T v : gather(ops[upstream_op], c.allocs).v) up.push_back(static_cast<ld>(v));
    std::vector<std::int64_t> t;
    std::vector<ld> q;
    if (c.probabilities())
        for (T v : gather(ops[targets_op], c.allocs).v) q.push_back(static_cast<ld>(v));
    else
        t = gather(ops[targets_op], c.index_allocs).v;

    const ref::result want = c.is_nll()          ? ref::nll_loss(x, c.shape, t, cfg, up)
                             : c.probabilities() ? ref::cross_entropy_soft(x, c.shape, q, cfg, up)
                                                 : ref::cross_entropy(x, c.shape, t, cfg, up);
    loss_expectation ex;
    using tol = loss_tol<T>;
    const ref::lines L(c.shape, a);
    const index_type samples = L.samples();
    if (c.is_nll()) {
        // relative_gap of tests/test_nll_loss.cpp: |got - want| <= tol * max(1, |want|).
        auto nll = [](ld want) { return expect(want, tol::nll * std::max<ld>(1, std::fabs(want))); };
        ex.reduced = nll(want.reduced);
        // The reduction sums in double: past double's range the result is IEEE arithmetic (inf).
        ld total = 0;
        for (ld v : want.losses) total += std::fabs(v);
        ld weights = 0;
        if (cfg.reduction == ref::red::mean)
            for (std::int64_t v : t)
                if (v != cfg.ignore_index) weights += std::fabs(ref::weight_of(cfg, v));
        const ld big = static_cast<ld>(std::numeric_limits<double>::max()) / 2;
        if (!(total < big) || !(weights < big)) ex.reduced.check = false;
        for (ld v : want.losses) ex.losses.push_back(nll(v));
        for (ld v : want.grad) {
            ex.grad.push_back(nll(v));
            if (!(weights < big)) ex.grad.back().check = false;  // the mean's gradient scale is 0
        }
        return ex;
    }

    // cross_entropy: the bounds of tests/test_cross_entropy.cpp.
    ld denominator = 0;
    if (c.probabilities()) {
        denominator = static_cast<ld>(samples);
    } else {
        for (std::int64_t v : t)
            if (v != cfg.ignore_index) denominator += ref::weight_of(cfg, v);
    }
    const ld mean_scale = cfg.reduction == ref::red::mean ? 1.0L / denominator : 1.0L;
    // The reductions sum in double (docs/api.md): past double's range, the sum of the losses or
    // of the mean's target weights, the result is IEEE arithmetic (inf, or inf / inf), and with the
    // weights' sum the mean's gradient scale too (0).
    const ld double_big = static_cast<ld>(std::numeric_limits<double>::max()) / 2;
    const bool denominator_overflow = cfg.reduction == ref::red::mean && !(denominator < double_big);
    ld loss_total = 0;
    for (ld v : want.losses)
        if (std::isfinite(v)) loss_total += std::fabs(v);
    const bool reduction_overflow = denominator_overflow || !(loss_total < double_big);
    // Per-sample loss bound: tol * max(1, |loss|) + z (2 |lse| + d) d with d = tol * max(1, |lse|):
    // lse is known to d, and z lse^2 carries that error (docs/api.md).
    std::vector<ld> sample_bound(want.losses.size(), 0);
    {
        std::vector<ld> line(static_cast<std::size_t>(L.classes));
        for (index_type s = 0; s < samples && s < static_cast<index_type>(sample_bound.size()); ++s) {
            for (index_type k = 0; k < L.classes; ++k)
                line[static_cast<std::size_t>(k)] = x[static_cast<std::size_t>(L.at(s, k))];
            ld lse = 0;
            if (cfg.z != 0 && L.classes > 0) (void)ref::log_softmax_line(line, lse);
            const ld d = tol::sample * std::max<ld>(1, std::fabs(lse));
            const ld lse_term = cfg.z != 0 && std::isfinite(lse) ? cfg.z * (2 * std::fabs(lse) + d) * d : 0;
            sample_bound[static_cast<std::size_t>(s)] =
                tol::sample * std::max<ld>(1, std::fabs(want.losses[static_cast<std::size_t>(s)])) + lse_term;
        }
    }
    {
        ld allowed = tol::reduced * std::fabs(want.reduced);
        if (std::isfinite(want.reduced) && samples > 0) {
            ld sum_bounds = 0;
            for (ld b : sample_bound) sum_bounds += b;
            allowed += sum_bounds * std::fabs(mean_scale);
        }
        ex.reduced = expect(want.reduced, allowed);
        if (reduction_overflow) ex.reduced.check = false;
    }
    for (std::size_t i = 0; i < want.losses.size(); ++i) {
        // A loss beyond T's range is stored as infinity.
        const ld w = static_cast<ld>(static_cast<T>(want.losses[i]));
        ex.losses.push_back(expect(w, std::max(sample_bound[i], tol::sample * std::max<ld>(1, std::fabs(w)))));
    }
    // Gradient: |err| <= tol * |scale| * (|A + 2 z lse| * p_c + |a_c|) + 4 subnormal ulps.
    const ld floor = 4 * static_cast<ld>(std::numeric_limits<T>::denorm_min());
    ex.grad.resize(want.grad.size());
    std::vector<ld> line(static_cast<std::size_t>(L.classes)), coef(line.size());
    for (index_type s = 0; s < samples; ++s) {
        for (index_type k = 0; k < L.classes; ++k) {
            const std::size_t i = static_cast<std::size_t>(L.at(s, k));
            ex.grad[i] = expect(want.grad[i], floor);
            line[static_cast<std::size_t>(k)] = x[i];
        }
        const ld eps = cfg.smoothing, C = static_cast<ld>(L.classes);
        if (c.probabilities()) {
            for (index_type k = 0; k < L.classes; ++k)
                coef[static_cast<std::size_t>(k)] =
                    ref::weight_of(cfg, k) * (q[static_cast<std::size_t>(L.at(s, k))] * (1 - eps) + eps / C);
        } else {
            const std::int64_t target = t[static_cast<std::size_t>(s)];
            if (target == cfg.ignore_index) continue;  // gradient 0
            for (index_type k = 0; k < L.classes; ++k)
                coef[static_cast<std::size_t>(k)] = eps / C * ref::weight_of(cfg, k);
            coef[static_cast<std::size_t>(target)] += (1 - eps) * ref::weight_of(cfg, target);
        }
        ld scale = mean_scale;
        if (!up.empty()) scale *= up[static_cast<std::size_t>(s)];
        ld lse = 0;
        const std::vector<ld> lp = ref::log_softmax_line(line, lse);
        ld big_a = 0;
        for (ld v : coef) big_a += v;
        const ld b = std::fabs(big_a + 2 * cfg.z * lse);
        // The limits docs/api.md states for cross_entropy: no bound where an intermediate of the
        // element type overflows (the gradient coefficient scale * (A + 2 z lse) / S, a coefficient
        // a_c, or the terms w_c (M - x_c), a_c (M - x_c) summed in T); lse is known to
        // max(1, |lse|) absolute accuracy; a subnormal exp(x_c - M) loses up to a subnormal unit,
        // which the coefficient multiplies.
        const ld big = static_cast<ld>(std::numeric_limits<T>::max()) / 2;
        const ld m = line.empty() ? 0 : *std::max_element(line.begin(), line.end());
        bool loss_overflow = false, grad_overflow = !(b < big && std::fabs(scale) * b < big);
        ld terms = 0, mass = 0;
        for (index_type k = 0; k < L.classes && std::isfinite(m); ++k) {
            const std::size_t j = static_cast<std::size_t>(k);
            grad_overflow = grad_overflow || !(std::fabs(coef[j]) < big && std::fabs(scale * coef[j]) < big);
            // The terms the kernels sum in T: w_c (M - x_c) for class indices with smoothing,
            // a_c (M - x_c) and w_c q_c for probabilities.
            const ld w = ref::weight_of(cfg, k), factor = c.probabilities() ? coef[j] : eps != 0 ? w : 0;
            if (c.probabilities()) mass += std::fabs(w * q[static_cast<std::size_t>(L.at(s, k))]);
            if (factor == 0 || !std::isfinite(line[j])) continue;
            terms += std::fabs(factor * (m - line[j]));
            loss_overflow = loss_overflow || m - line[j] >= big;
        }
        loss_overflow = loss_overflow || terms >= big || mass >= big;
        if (loss_overflow) ex.losses[static_cast<std::size_t>(s)].check = ex.reduced.check = false;
        const ld lse_error = 2 * cfg.z * std::max<ld>(1, std::fabs(lse));
        const ld underflow = 2 * static_cast<ld>(std::numeric_limits<T>::denorm_min()) * std::fabs(scale) * b;
        for (index_type k = 0; k < L.classes; ++k) {
            const std::size_t i = static_cast<std::size_t>(L.at(s, k));
            const ld magnitude = std::fabs(scale) * ((b + lse_error) * std::exp(lp[static_cast<std::size_t>(k)]) +
                                                     std::fabs(coef[static_cast<std::size_t>(k)]));
            ex.grad[i].allowed = tol::grad * magnitude + floor + underflow;
            // docs/api.md says nothing of an infinite upstream gradient; its products are not checked.
            if (!std::isfinite(scale) || grad_overflow || denominator_overflow) ex.grad[i].check = false;
        }
    }
    return ex;
}

template <class T, std::size_t R>
void run_loss_case(const loss_case<T>& c) {
    bool want_oor = false, want_inv = false;
    std::string target_message;
    predict_loss_errors(c, want_oor, want_inv, target_message);
    const std::string what = c.describe();
    if (verbose()) {
        std::string values;
        for (std::size_t i = 0; i < c.ops.size(); ++i)
            if (count(c.ops[i].shape) != 0 && !c.ops[i].is_output)
                values +=
                    i == targets_op && !c.probabilities() ? dump(c.ops[i], c.index_allocs) : dump(c.ops[i], c.allocs);
        std::fprintf(stderr, "logitkit fuzz: case %s%s\n  expected: %s\n", what.c_str(), values.c_str(),
                     expected_error_name(want_oor, want_inv));
    }

    std::vector<std::vector<T>> simd_mem = c.allocs, scalar_mem = c.allocs;
    std::vector<std::vector<std::int64_t>> simd_index = c.index_allocs, scalar_index = c.index_allocs;
    const loss_result simd = run_loss<logitkit::detail::default_arch, T, R>(c, simd_mem, simd_index);
    const loss_result scalar = run_loss<logitkit::detail::scalar_arch, T, R>(c, scalar_mem, scalar_index);
    check_outcomes(what, c.name(), simd.thrown, scalar.thrown, want_oor, want_inv);
    if (!target_message.empty() && simd.thrown.message.compare(0, target_message.size(), target_message) != 0)
        fail(what + "\n  the message does not name the first bad target; expected it to start with \"" +
             target_message + "\", got \"" + simd.thrown.message + "\"");

    const bool threw = simd.thrown.thrown != outcome::none;
    write_mask written = no_writes(c.allocs);
    if (!threw) {
        allow_writes(written, c.ops[grad_op]);
        allow_writes(written, c.ops[losses_op]);
    }
    check_unchanged(what, "SIMD", c.allocs, simd_mem, written, threw);
    check_unchanged(what, "scalar", c.allocs, scalar_mem, written, threw);
    const write_mask index_written = no_writes(c.index_allocs);
    check_unchanged(what, "SIMD", c.index_allocs, simd_index, index_written, threw);
    check_unchanged(what, "scalar", c.index_allocs, scalar_index, index_written, threw);
    if (threw) return;

    // docs/api.md leaves non-finite class weights unspecified: only memory safety is checked.
    if (count(c.ops[weight_op].shape) != 0)
        for (T v : gather(c.ops[weight_op], c.allocs).v)
            if (!std::isfinite(v)) return;
    const loss_expectation ex = expected_loss(c);
    const std::string reduced = "\n  reduced value: SIMD " + show(simd.value) + ", scalar " + show(scalar.value);
    for (const loss_result* r : {&simd, &scalar})
        if (const char* why = mismatch(r->value, ex.reduced))
            fail(what + reduced + "\n" +
                 mismatch_report("returned value", 0, r == &simd ? "SIMD" : "scalar", why, r->value,
                                 (r == &simd ? scalar : simd).value, ex.reduced));
    const auto check_output = [&](const char* name, const operand& o, const std::vector<expected_value>& e) {
        if (count(o.shape) == 0 || o.alloc == none) return;
        const dense<T> s = gather(o, simd_mem), v = gather(o, scalar_mem);
        check_values(what + reduced, name, "SIMD", s.v, v.v, e, o.shape);
        check_values(what + reduced, name, "scalar", v.v, s.v, e, o.shape);
    };
    if (is_given(c.ops[losses_op])) check_output("losses", c.ops[losses_op], ex.losses);
    if (is_given(c.ops[grad_op])) check_output("grad", c.ops[grad_op], ex.grad);
}

template <class T, std::size_t R>
void fuzz_loss(FuzzedDataProvider& f) {
    loss_case<T> c;
    c.fn = f.PickValueInArray(all_loss_fns);
    c.shape = decode_shape(f, R, max_elements);
    c.class_axis = f.ConsumeIntegralInRange<int>(0, 3) == 0 ? decode_axis(f, static_cast<int>(R)) : 1;
    const std::size_t a = axis_or(c.class_axis, R, 1);
    const index_type classes = c.shape[a];
    const shape_t samples = drop_axis(c.shape, a);

    // Options.
    switch (f.ConsumeIntegralInRange<int>(0, 15)) {
        case 12: c.ignore_index = -1; break;
        case 13: c.ignore_index = 0; break;
        case 14: c.ignore_index = classes > 0 ? f.ConsumeIntegralInRange<std::int64_t>(0, classes - 1) : 0; break;
        case 15: c.ignore_index = std::numeric_limits<std::int64_t>::min(); break;
        default: break;
    }
    if (!c.is_nll()) {
        const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
        c.smoothing = pick_mostly(f, {0.0, 0.0, 0.0, 0.1, 0.3, 1.0, -0.0, 0.05, 1e-30}, {-0.1, 1.5, nan, inf, -inf}, 1);
        if (c.smoothing == 0.3) c.smoothing = unit(f);
        c.z = pick_mostly(f, {0.0, 0.0, 0.0, 0.0, 1e-4, 1e-2, 0.5, 1.0, 1e30}, {-1.0, inf, nan, -1e-300}, 1);
    }
    c.reduction = f.ConsumeIntegralInRange<int>(0, 31);
    c.reduction = c.reduction < 30 ? c.reduction / 10 : c.reduction == 30 ? 3 : -1;
    c.weight = f.PickValueInArray({mode::absent, mode::absent, mode::absent, mode::absent, mode::absent, mode::separate,
                                   mode::separate, mode::separate, mode::mismatch, mode::null_data});
    c.wild_weights = f.ConsumeIntegralInRange<int>(0, 3) == 0;
    const bool none_reduction = c.reduction == 0;
    c.upstream = f.ConsumeIntegralInRange<int>(0, 15) < (none_reduction ? 8 : 1) ? mode::separate : mode::absent;
    if (c.upstream == mode::separate && f.ConsumeIntegralInRange<int>(0, 15) == 0)
        c.upstream = f.ConsumeBool() ? mode::mismatch : mode::null_data;
    const int g = f.ConsumeIntegralInRange<int>(0, 31);
    c.grad = g < 10   ? mode::absent
             : g < 20 ? mode::separate
             : g < 26 ? mode::in_place
             : g < 30 ? f.PickValueInArray({mode::shifted, mode::repeated, mode::mismatch, mode::null_data})
                      : mode::separate;
    const int l = f.ConsumeIntegralInRange<int>(0, 31);
    c.losses = l < 14   ? mode::absent
               : l < 28 ? mode::separate
                        : f.PickValueInArray({mode::shifted, mode::repeated, mode::mismatch, mode::null_data});
    const int target_layout = f.ConsumeIntegralInRange<int>(0, 31);  // 0: mismatched shape, 1: null
    const bool null_logits = f.ConsumeIntegralInRange<int>(0, 63) == 0;
    const int bad_targets = f.ConsumeIntegralInRange<int>(0, 3) == 0 ? f.ConsumeIntegralInRange<int>(1, 2) : 0;

    // Operands: shapes and strides.
    c.ops.resize(loss_operands);
    std::vector<operand>& ops = c.ops;
    ops[logits_op] = absent_operand(c.is_nll() ? "log_probs" : "logits", R);
    ops[logits_op].shape = c.shape;
    ops[targets_op] = absent_operand("targets", c.probabilities() ? R : R - 1);
    ops[targets_op].shape = c.probabilities() ? c.shape : samples;
    if (target_layout == 0) mismatch_shape(f, ops[targets_op].shape);
    ops[weight_op] = absent_operand("options.weight", 1);
    if (c.weight != mode::absent) ops[weight_op].shape = {classes};
    if (c.weight == mode::mismatch)
        ops[weight_op].shape = {f.PickValueInArray({index_type(0), classes + 1, classes + 2})};
    ops[upstream_op] = absent_operand("outputs.upstream", R - 1);
    ops[grad_op] = absent_operand("outputs.grad", R);
    ops[losses_op] = absent_operand("outputs.losses", R - 1);
    ops[grad_op].is_output = ops[losses_op].is_output = true;
    if (c.upstream != mode::absent) ops[upstream_op].shape = samples;
    if (c.upstream == mode::mismatch) mismatch_shape(f, ops[upstream_op].shape);
    if (c.grad != mode::absent) ops[grad_op].shape = c.shape;
    if (c.grad == mode::mismatch) mismatch_shape(f, ops[grad_op].shape);
    if (c.losses != mode::absent) ops[losses_op].shape = samples;
    if (c.losses == mode::mismatch) mismatch_shape(f, ops[losses_op].shape);
    for (std::size_t i = 0; i < ops.size(); ++i)
        if (is_given(ops[i]) || i == logits_op || i == targets_op)
            ops[i].strides = decode_strides(f, ops[i].shape, !ops[i].is_output);
    if (c.grad == mode::repeated) make_repeated(f, ops[grad_op]);
    if (c.losses == mode::repeated) make_repeated(f, ops[losses_op]);

    // Allocations.
    auto alone = [&](std::size_t i, filling what) {
        place_alone(f, ops[i], c.allocs);
        c.fills.push_back(what);
    };
    if (!null_logits) alone(logits_op, c.is_nll() ? filling::any : filling::logits);
    if (target_layout != 1) {
        if (c.probabilities())
            alone(targets_op, filling::probabilities);
        else
            place_alone(f, ops[targets_op], c.index_allocs);
    }
    if (c.weight != mode::absent && c.weight != mode::null_data) alone(weight_op, filling::weights);
    if (c.upstream != mode::absent && c.upstream != mode::null_data) alone(upstream_op, filling::any);
    std::vector<operand*> sharing;
    for (std::size_t i :
         {std::size_t(logits_op), std::size_t(weight_op), std::size_t(upstream_op), std::size_t(grad_op)})
        sharing.push_back(&ops[i]);
    if (c.probabilities()) sharing.push_back(&ops[targets_op]);
    // Shifts an output into the memory of one of the operands placed so far.
    auto shift_into_another = [&](std::size_t out) {
        std::vector<operand*> sources;
        for (operand* o : sharing)
            if (o != &ops[out] && o->alloc != none) sources.push_back(o);
        if (sources.empty()) {
            alone(out, filling::any);
            return;
        }
        place_shifted(f, *sources[f.ConsumeIntegralInRange<std::size_t>(0, sources.size() - 1)], ops[out], c.allocs,
                      sharing);
    };
    for (std::size_t out : {std::size_t(grad_op), std::size_t(losses_op)}) {
        const mode m = out == grad_op ? c.grad : c.losses;
        if (m == mode::absent || m == mode::null_data) continue;
        if (m == mode::in_place && ops[logits_op].alloc != none) {
            ops[out].strides = ops[logits_op].strides;
            ops[out].alloc = ops[logits_op].alloc;
            ops[out].offset = ops[logits_op].offset;
        } else if (m == mode::shifted) {
            shift_into_another(out);
        } else {
            alone(out, filling::any);
        }
    }

    // Values: every element of every allocation, spare elements included.
    for (std::size_t i = 0; i < c.allocs.size(); ++i) {
        switch (c.fills[i]) {
            case filling::probabilities: {
                const bool negatives = f.ConsumeIntegralInRange<int>(0, 7) == 0;
                for (T& v : c.allocs[i]) v = decode_probability<T>(f, negatives);
                break;
            }
            case filling::weights:
                for (T& v : c.allocs[i]) v = decode_weight<T>(f, c.wild_weights);
                break;
            default: {
                const value_source<T> src = decode_source<T>(f);
                for (T& v : c.allocs[i]) v = decode_value<T>(f, src);
            }
        }
    }
    for (auto& alloc : c.index_allocs)
        for (std::int64_t& v : alloc) v = decode_target(f, classes, c.ignore_index, bad_targets);

    run_loss_case<T, R>(c);
}

// =============================================================================================
// gumbel_softmax, gumbel_softmax_backward and the noise.
// =============================================================================================

/// The philox4x32 generator both paths start from.
struct generator_start {
    std::uint64_t seed = 0, offset = 0;
};

generator_start decode_generator(FuzzedDataProvider& f) {
    generator_start g;
    g.seed = f.ConsumeIntegral<std::uint64_t>();
    switch (f.ConsumeIntegralInRange<int>(0, 7)) {
        case 0: g.offset = 0; break;
        case 1: {
            // Within a few thousand words of the end of the stream, where positions wrap.
            g.offset = std::uint64_t(0) - 1 - f.ConsumeIntegralInRange<std::uint64_t>(0, 5000);
            break;
        }
        default: g.offset = f.ConsumeIntegralInRange<std::uint64_t>(0, std::uint64_t(1) << 40); break;
    }
    return g;
}

/// The documented uniform of the element whose words start at `position` (philox.hpp,
/// detail/gumbel_noise.hpp): (w + 1/2) 2^-32 for float, (k + 1/2) 2^-52 with k the top 52 of the
/// 64 bits (first word high) for double.
template <class T>
ld documented_uniform(std::uint64_t seed, std::uint64_t position) {
    const std::uint32_t w0 = logitkit::philox4x32::word_at(seed, position);
    if (std::is_same<T, float>::value) return (static_cast<ld>(w0) + 0.5L) * std::ldexp(1.0L, -32);
    const std::uint32_t w1 = logitkit::philox4x32::word_at(seed, position + 1);
    const std::uint64_t bits = (std::uint64_t(w0) << 32) | w1;
    return (static_cast<ld>(bits >> 12) + 0.5L) * std::ldexp(1.0L, -52);
}

/// -log(-log(u)) in long double for element i (row-major) of a call starting at `g`.
template <class T>
ld documented_noise(const generator_start& g, std::uint64_t i) {
    const ld u = documented_uniform<T>(g.seed, g.offset + i * logitkit::philox_words_per_element<T>);
    return -std::log(-std::log(u));
}

/// The noise gumbel_noise draws for a row-major tensor of `shape` on path Arch.
template <class Arch, class T, std::size_t R>
std::vector<T> noise_of(const shape_t& shape, const generator_start& g) {
    std::vector<T> noise(static_cast<std::size_t>(count(shape)));
    logitkit::philox4x32 gen(g.seed, g.offset);
    logitkit::gumbel_noise<Arch>(logitkit::tensor_view<T, R>(noise.data(), to_extents<R>(shape)), gen);
    return noise;
}

/// gumbel_noise: the same bits on both paths, within the unit test's bound of the documented
/// -log(-log(u)) (float: one rounding of a double value; double: a few ulps of max(1, |g|)).
template <class T, std::size_t R>
std::vector<T> checked_noise(const std::string& what, const shape_t& shape, const generator_start& g) {
    const std::vector<T> simd = noise_of<logitkit::detail::default_arch, T, R>(shape, g);
    const std::vector<T> scalar = noise_of<logitkit::detail::scalar_arch, T, R>(shape, g);
    for (std::size_t i = 0; i < simd.size(); ++i) {
        if (std::memcmp(&simd[i], &scalar[i], sizeof(T)) != 0)
            fail(what + "\n  gumbel_noise element " + std::to_string(i) + " differs between the paths: SIMD " +
                 show(simd[i]) + ", scalar " + show(scalar[i]));
        const ld want = documented_noise<T>(g, i);
        const ld allowed = std::is_same<T, double>::value ? 2e-15L * std::max<ld>(1, std::fabs(want))
                                                          : std::ldexp(std::fabs(want), -24) + 1e-14L;
        if (!(std::fabs(static_cast<ld>(simd[i]) - want) <= allowed))
            fail(what + "\n  gumbel_noise element " + std::to_string(i) + " = " + show(simd[i]) +
                 " is not -log(-log(u)) of its documented uniform: " + std::to_string(static_cast<double>(want)) +
                 " (words at " + std::to_string(g.offset + i * logitkit::philox_words_per_element<T>) + ")");
    }
    return simd;
}

enum class gumbel_fn { forward, forward_with_soft, backward };

// The operands of a Gumbel call: forward x, y, y_soft; backward y_soft, dy, dx.
enum { g_in0, g_in1, g_out, gumbel_operands };

enum class gumbel_place {
    separate,
    in_place,
    soft_in_place,
    soft_is_y,
    shifted,
    repeated,
    mismatch,
    null_input,
    null_output
};

const char* gumbel_place_name(gumbel_place p) {
    switch (p) {
        case gumbel_place::separate: return "separate";
        case gumbel_place::in_place: return "output exactly an input (in place)";
        case gumbel_place::soft_in_place: return "y_soft exactly x";
        case gumbel_place::soft_is_y: return "y_soft exactly y";
        case gumbel_place::shifted: return "an output shifted into another operand's memory";
        case gumbel_place::repeated: return "an output with a zero stride";
        case gumbel_place::mismatch: return "shape mismatch";
        case gumbel_place::null_input: return "null input";
        case gumbel_place::null_output: return "null output";
    }
    return "?";
}

template <class T>
struct gumbel_case {
    gumbel_fn fn = gumbel_fn::forward;
    shape_t shape;
    int axis = -1;
    double tau = 1.0;
    bool hard = false;
    gumbel_place place = gumbel_place::separate;
    generator_start gen;
    // Forward: x, y, y_soft (y_soft unused by the plain overload). Backward: y_soft, dy, dx.
    std::vector<operand> ops;
    std::vector<std::vector<T>> allocs;

    bool backward() const { return fn == gumbel_fn::backward; }
    bool with_soft() const { return fn == gumbel_fn::forward_with_soft; }
    const char* name() const { return backward() ? "gumbel_softmax_backward" : "gumbel_softmax"; }
    /// The forward outputs: y, and y_soft when given.
    std::vector<std::size_t> outputs() const {
        if (backward()) return {g_out};
        if (with_soft()) return {g_in1, g_out};
        return {g_in1};
    }

    std::string describe() const {
        std::string s = std::string("logitkit::") + name() + "<" + type_name(T()) + ">" +
                        (with_soft() ? " (the overload with y_soft)" : "") + " shape " + format(shape) + " axis " +
                        std::to_string(axis) + " tau " + show(tau) + (hard ? " hard" : " soft") +
                        "; placement: " + gumbel_place_name(place);
        if (!backward()) s += "; philox4x32(" + std::to_string(gen.seed) + ", " + std::to_string(gen.offset) + ")";
        s += std::string("; SIMD path ") + logitkit::simd_arch_name();
        for (std::size_t i = 0; i < ops.size(); ++i)
            if (!(fn == gumbel_fn::forward && i == g_out))
                s += "\n  " + describe_operand(ops[i], ops[i].alloc == none ? 0 : allocs[ops[i].alloc].size());
        return s;
    }
};

template <class T>
void predict_gumbel_errors(const gumbel_case<T>& c, bool& out_of_range, bool& invalid) {
    out_of_range = !axis_in_range(c.axis, c.shape.size());
    const std::vector<operand>& ops = c.ops;
    bool inv = !valid_temperature<T>(c.tau);
    std::vector<std::size_t> used = {g_in0, g_in1};
    if (c.backward() || c.with_soft()) used.push_back(g_out);
    for (std::size_t i : used) inv = inv || ops[i].shape != c.shape || null_with_elements(ops[i]);
    if (c.backward()) {
        const operand& dx = ops[g_out];
        inv = inv || repeats_elements(dx);
        for (std::size_t i : {std::size_t(g_in0), std::size_t(g_in1)})
            inv = inv || (!same_view(dx, ops[i]) && spans_intersect(dx, ops[i]));
    } else {
        const operand &x = ops[g_in0], &y = ops[g_in1], &soft = ops[g_out];
        inv = inv || repeats_elements(y) || (!same_view(y, x) && spans_intersect(y, x));
        if (c.with_soft()) {
            inv = inv || repeats_elements(soft) || (!same_view(soft, x) && spans_intersect(soft, x));
            inv = inv || spans_intersect(soft, y);
        }
    }
    invalid = inv;
}

struct gumbel_result {
    outcome thrown;
    logitkit::philox4x32 gen;
};

template <class Arch, class T, std::size_t R>
gumbel_result run_gumbel(const gumbel_case<T>& c, std::vector<std::vector<T>>& mem) {
    gumbel_result r;
    r.gen = logitkit::philox4x32(c.gen.seed, c.gen.offset);
    const std::vector<operand>& ops = c.ops;
    r.thrown = capture([&] {
        logitkit::gumbel_softmax_options o;
        o.tau = c.tau;
        o.hard = c.hard;
        const logitkit::tensor_view<const T, R> in0 = view_of<T, R>(ops[g_in0], mem);
        const logitkit::tensor_view<T, R> out1 = view_of<T, R>(ops[g_in1], mem), out2 = view_of<T, R>(ops[g_out], mem);
        switch (c.fn) {
            case gumbel_fn::forward: logitkit::gumbel_softmax<Arch>(in0, out1, r.gen, o, c.axis); break;
            case gumbel_fn::forward_with_soft: logitkit::gumbel_softmax<Arch>(in0, out1, out2, r.gen, o, c.axis); break;
            case gumbel_fn::backward:
                logitkit::gumbel_softmax_backward<Arch>(in0, logitkit::tensor_view<const T, R>(out1), out2, o, c.axis);
                break;
        }
    });
    return r;
}

/// softmax<Arch> on x + g laid out as `like`, in place: what gumbel_softmax's soft output must
/// equal bit for bit (gumbel_softmax.hpp).
template <class Arch, class T, std::size_t R>
std::vector<T> softmax_of_perturbed(const gumbel_case<T>& c, const operand& like, const std::vector<T>& x,
                                    const std::vector<T>& noise) {
    operand o = like;
    o.alloc = 0;
    std::vector<std::vector<T>> mem(1, std::vector<T>(c.allocs[like.alloc].size(), T(0)));
    std::size_t i = 0;
    for_each_offset(o.shape, o.strides, [&](index_type off) {
        mem[0][static_cast<std::size_t>(o.offset + off)] = x[i] + noise[i];
        ++i;
    });
    const logitkit::tensor_view<T, R> v = view_of<T, R>(o, mem);
    logitkit::softmax_options so;
    so.temperature = c.tau;
    logitkit::softmax<Arch>(logitkit::tensor_view<const T, R>(v), v, c.axis, so);
    return gather(o, mem).v;
}

template <class T, std::size_t R>
void check_gumbel_forward(const gumbel_case<T>& c, const std::string& what, const std::vector<std::vector<T>>& simd_mem,
                          const std::vector<std::vector<T>>& scalar_mem) {
    if (count(c.shape) == 0) return;
    const std::size_t axis = lk_ref::normalize_axis(c.axis, R);
    const std::vector<T> x = gather(c.ops[g_in0], c.allocs).v;
    const std::vector<T> noise = checked_noise<T, R>(what, c.shape, c.gen);
    // z = fl(fl(x + g) / tau), tau rounded to T: the perturbed logits softmax sees.
    const T tau = static_cast<T>(c.tau);
    std::vector<T> z(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
        z[i] = tau != T(1) ? static_cast<T>(x[i] + noise[i]) / tau : x[i] + noise[i];
    std::vector<expected_value> soft(x.size());
    std::vector<index_type> first_max;  // per line, -1 when its maximum is not finite
    for_each_line(c.shape, axis, [&](index_type base, index_type stride, index_type n) {
        std::vector<ld> line(static_cast<std::size_t>(n));
        index_type at = -1;
        bool finite = true;
        for (index_type i = 0; i < n; ++i) {
            const T v = z[static_cast<std::size_t>(base + i * stride)];
            line[static_cast<std::size_t>(i)] = static_cast<ld>(v);
            finite = finite && !std::isnan(v) && v != std::numeric_limits<T>::infinity();
            if (v > -std::numeric_limits<T>::infinity() &&
                (at < 0 || v > z[static_cast<std::size_t>(base + at * stride)]))
                at = i;
        }
        first_max.push_back(finite ? at : -1);
        softmax_line_reference<T>(line, false, soft.data() + base, stride);
    });

    const char* paths[] = {"SIMD", "scalar"};
    const std::vector<std::vector<T>>* mems[] = {&simd_mem, &scalar_mem};
    for (int p = 0; p < 2; ++p) {
        const std::vector<T> y = gather(c.ops[g_in1], *mems[p]).v;
        const std::size_t soft_op = c.with_soft() ? g_out : c.hard ? none : g_in1;
        std::vector<T> ys;
        if (soft_op != none) {
            ys = gather(c.ops[soft_op], *mems[p]).v;
            check_values(what, soft_op == g_out ? "y_soft" : "y", paths[p], ys, gather(c.ops[soft_op], *mems[1 - p]).v,
                         soft, c.shape);
            const std::vector<T> same =
                p == 0 ? softmax_of_perturbed<logitkit::detail::default_arch, T, R>(c, c.ops[soft_op], x, noise)
                       : softmax_of_perturbed<logitkit::detail::scalar_arch, T, R>(c, c.ops[soft_op], x, noise);
            for (std::size_t i = 0; i < ys.size(); ++i)
                if (std::memcmp(&ys[i], &same[i], sizeof(T)) != 0)
                    fail(what + "\n  soft sample element " + std::to_string(i) + " on the " + paths[p] + " path is " +
                         show(ys[i]) + ", softmax of x + gumbel_noise on that path " + show(same[i]) +
                         "; documented to be equal bit for bit");
            if (!c.hard && c.with_soft())
                for (std::size_t i = 0; i < y.size(); ++i)
                    if (std::memcmp(&y[i], &ys[i], sizeof(T)) != 0)
                        fail(what + "\n  y element " + std::to_string(i) + " on the " + paths[p] + " path is " +
                             show(y[i]) + " but y_soft is " + show(ys[i]) + "; without hard they are equal");
        }
        if (!c.hard) continue;
        // Hard: the exact one-hot of the first maximum of z, NaN on lines without a finite one.
        std::size_t line = 0;
        for_each_line(c.shape, axis, [&](index_type base, index_type stride, index_type n) {
            const index_type at = first_max[line++];
            for (index_type i = 0; i < n; ++i) {
                const std::size_t k = static_cast<std::size_t>(base + i * stride);
                const bool ok = at < 0    ? std::isnan(y[k])
                                : i == at ? y[k] == T(1)
                                          : (y[k] == T(0) && !std::signbit(y[k]));
                if (!ok)
                    fail(what + "\n  hard output element " + std::to_string(k) + " on the " + paths[p] + " path is " +
                         show(y[k]) + "; expected " +
                         (at < 0    ? "NaN (no finite maximum)"
                          : i == at ? "1"
                                    : "+0") +
                         ", the one-hot of the first maximum of (x + g) / tau at " + std::to_string(at) +
                         "\n  z along the axis:" + [&] {
                             std::string s;
                             for (index_type q = 0; q < n && q < 64; ++q)
                                 s += " " + show(z[static_cast<std::size_t>(base + q * stride)]);
                             return s;
                         }());
                // The soft sample is largest where the hard one is 1.
                if (at >= 0 && !ys.empty() && ys[k] > ys[static_cast<std::size_t>(base + at * stride)])
                    fail(what + "\n  the soft sample on the " + paths[p] + " path is larger at element " +
                         std::to_string(k) + " (" + show(ys[k]) + ") than where the hard sample is 1 (" +
                         show(ys[static_cast<std::size_t>(base + at * stride)]) + ")");
            }
        });
    }
}

template <class T, std::size_t R>
void check_gumbel_backward(const gumbel_case<T>& c, const std::string& what,
                           const std::vector<std::vector<T>>& simd_mem, const std::vector<std::vector<T>>& scalar_mem) {
    const std::size_t axis = lk_ref::normalize_axis(c.axis, R);
    const std::vector<T> y = gather(c.ops[g_in0], c.allocs).v, dy = gather(c.ops[g_in1], c.allocs).v;
    std::vector<expected_value> ex(y.size());
    // Evaluated as (y (dy - s)) * fl(1 / tau): where fl(1 / tau) overflows T the bound does not apply.
    const bool finite_inverse = std::isfinite(static_cast<T>(1.0 / c.tau));
    const ld true_min = static_cast<ld>(std::numeric_limits<T>::denorm_min());
    for_each_line(c.shape, axis, [&](index_type base, index_type stride, index_type n) {
        std::vector<ld> yl(static_cast<std::size_t>(n)), dyl(yl.size());
        for (index_type i = 0; i < n; ++i) {
            yl[static_cast<std::size_t>(i)] = static_cast<ld>(y[static_cast<std::size_t>(base + i * stride)]);
            dyl[static_cast<std::size_t>(i)] = static_cast<ld>(dy[static_cast<std::size_t>(base + i * stride)]);
        }
        backward_line_reference<T>(yl, dyl, true, static_cast<ld>(c.tau), ex.data() + base, stride);
        for (index_type i = 0; i < n; ++i) {
            expected_value& e = ex[static_cast<std::size_t>(base + i * stride)];
            // The unit test's extra subnormal unit: the product by fl(1 / tau) rounds once more.
            e.allowed += true_min;
            if (!finite_inverse) e.check = false;
        }
    });
    const std::vector<T> s = gather(c.ops[g_out], simd_mem).v, v = gather(c.ops[g_out], scalar_mem).v;
    check_values(what, "dx", "SIMD", s, v, ex, c.shape);
    check_values(what, "dx", "scalar", v, s, ex, c.shape);
}

template <class T, std::size_t R>
void run_gumbel_case(const gumbel_case<T>& c) {
    bool want_oor = false, want_inv = false;
    predict_gumbel_errors(c, want_oor, want_inv);
    const std::string what = c.describe();
    if (verbose()) {
        std::string values;
        for (std::size_t i : {std::size_t(g_in0), std::size_t(g_in1)})
            if (!c.ops[i].is_output) values += dump(c.ops[i], c.allocs);
        std::fprintf(stderr, "logitkit fuzz: case %s%s\n  expected: %s\n", what.c_str(), values.c_str(),
                     expected_error_name(want_oor, want_inv));
    }
    std::vector<std::vector<T>> simd_mem = c.allocs, scalar_mem = c.allocs;
    const gumbel_result simd = run_gumbel<logitkit::detail::default_arch, T, R>(c, simd_mem);
    const gumbel_result scalar = run_gumbel<logitkit::detail::scalar_arch, T, R>(c, scalar_mem);
    check_outcomes(what, c.name(), simd.thrown, scalar.thrown, want_oor, want_inv);
    const bool threw = simd.thrown.thrown != outcome::none;

    // The generator: advanced past x.size() elements' words by a call that draws, untouched otherwise.
    const std::uint64_t drawn =
        threw || c.backward() ? 0 : static_cast<std::uint64_t>(count(c.shape)) * logitkit::philox_words_per_element<T>;
    for (const gumbel_result* r : {&simd, &scalar})
        if (r->gen.seed_value() != c.gen.seed || r->gen.offset() != c.gen.offset + drawn)
            fail(what + "\n  the " + (r == &simd ? "SIMD" : "scalar") + " path left the generator at offset " +
                 std::to_string(r->gen.offset()) + "; expected " + std::to_string(c.gen.offset + drawn));

    write_mask written = no_writes(c.allocs);
    if (!threw)
        for (std::size_t i : c.outputs()) allow_writes(written, c.ops[i]);
    check_unchanged(what, "SIMD", c.allocs, simd_mem, written, threw);
    check_unchanged(what, "scalar", c.allocs, scalar_mem, written, threw);
    if (threw) return;
    if (c.backward())
        check_gumbel_backward<T, R>(c, what, simd_mem, scalar_mem);
    else
        check_gumbel_forward<T, R>(c, what, simd_mem, scalar_mem);
}

template <class T, std::size_t R>
void fuzz_gumbel(FuzzedDataProvider& f) {
    gumbel_case<T> c;
    c.fn = f.PickValueInArray({gumbel_fn::forward, gumbel_fn::forward_with_soft, gumbel_fn::backward});
    c.shape = decode_shape(f, R, max_elements);
    c.axis = decode_axis(f, static_cast<int>(R));
    if (f.ConsumeBool()) c.tau = decode_temperature(f);
    c.hard = f.ConsumeBool();
    const int pl = f.ConsumeIntegralInRange<int>(0, 31);
    c.place = pl < 16
                  ? gumbel_place::separate
                  : f.PickValueInArray({gumbel_place::in_place, gumbel_place::soft_in_place, gumbel_place::soft_is_y,
                                        gumbel_place::shifted, gumbel_place::repeated, gumbel_place::mismatch,
                                        gumbel_place::null_input, gumbel_place::null_output});
    if (!c.backward()) c.gen = decode_generator(f);

    static const char* forward_names[] = {"x", "y", "y_soft"};
    static const char* backward_names[] = {"y_soft", "dy", "dx"};
    c.ops.resize(gumbel_operands);
    std::vector<operand>& ops = c.ops;
    // The outputs: y (and y_soft) forward, dx backward; the plain forward overload has one.
    std::vector<std::size_t> outs = c.outputs();
    for (std::size_t i = 0; i < gumbel_operands; ++i) {
        ops[i].name = (c.backward() ? backward_names : forward_names)[i];
        ops[i].shape = c.shape;
        ops[i].is_output = std::find(outs.begin(), outs.end(), i) != outs.end();
    }
    const std::size_t out = outs[f.ConsumeIntegralInRange<std::size_t>(0, outs.size() - 1)];
    const std::vector<std::size_t> ins =
        c.backward() ? std::vector<std::size_t>{g_in0, g_in1} : std::vector<std::size_t>{g_in0};
    if (c.place == gumbel_place::mismatch) {
        std::vector<std::size_t> shaped = outs;
        if (c.backward()) shaped.push_back(g_in1);
        mismatch_shape(f, ops[shaped[f.ConsumeIntegralInRange<std::size_t>(0, shaped.size() - 1)]].shape);
    }
    for (operand& o : ops) o.strides = decode_strides(f, o.shape, !o.is_output);
    if (c.place == gumbel_place::repeated) make_repeated(f, ops[out]);

    for (std::size_t i : ins) place_alone(f, ops[i], c.allocs);
    std::vector<operand*> sharing;
    for (operand& o : ops) sharing.push_back(&o);
    for (std::size_t o : outs) {
        const bool chosen = o == out;
        switch (chosen ? c.place : gumbel_place::separate) {
            case gumbel_place::in_place:
            case gumbel_place::soft_in_place:
            case gumbel_place::soft_is_y: {
                const std::size_t src = c.place == gumbel_place::soft_is_y && c.with_soft() && o == g_out
                                            ? std::size_t(g_in1)
                                            : ins[f.ConsumeIntegralInRange<std::size_t>(0, ins.size() - 1)];
                if (ops[src].alloc == none || ops[src].shape != ops[o].shape) {
                    place_alone(f, ops[o], c.allocs);
                    break;
                }
                ops[o].strides = ops[src].strides;
                ops[o].alloc = ops[src].alloc;
                ops[o].offset = ops[src].offset;
                break;
            }
            case gumbel_place::shifted: {
                std::vector<operand*> sources;
                for (operand* s : sharing)
                    if (s != &ops[o] && s->alloc != none) sources.push_back(s);
                if (sources.empty())
                    place_alone(f, ops[o], c.allocs);
                else
                    place_shifted(f, *sources[f.ConsumeIntegralInRange<std::size_t>(0, sources.size() - 1)], ops[o],
                                  c.allocs, sharing);
                break;
            }
            case gumbel_place::null_output: break;
            default: place_alone(f, ops[o], c.allocs); break;
        }
    }
    if (c.place == gumbel_place::null_input)
        ops[ins[f.ConsumeIntegralInRange<std::size_t>(0, ins.size() - 1)]].alloc = none;
    fill_values(f, c.allocs);
    run_gumbel_case<T, R>(c);
}

// =============================================================================================
// sample_categorical.
// =============================================================================================

enum class sample_place { separate, single_line, repeated, mismatch, null_input, null_output };

template <class T>
struct sample_case {
    shape_t shape;
    int axis = -1;
    double temperature = 1.0;
    std::int64_t top_k = 0;
    double top_p = 1.0;
    sample_place place = sample_place::separate;
    generator_start gen;
    operand x, out;
    std::vector<std::vector<T>> allocs;
    std::vector<std::vector<std::int64_t>> index_allocs;

    std::string describe() const {
        static const char* places[] = {"separate",       "the one-line overload", "out_indices with a zero stride",
                                       "shape mismatch", "null logits",           "null out_indices"};
        return std::string("logitkit::sample_categorical<") + type_name(T()) + "> shape " + format(shape) + " axis " +
               std::to_string(axis) + " temperature " + show(temperature) + " top_k " + std::to_string(top_k) +
               " top_p " + show(top_p) + "; placement: " + places[static_cast<int>(place)] + "; philox4x32(" +
               std::to_string(gen.seed) + ", " + std::to_string(gen.offset) + "); SIMD path " +
               logitkit::simd_arch_name() + "\n  " + describe_operand(x, x.alloc == none ? 0 : allocs[x.alloc].size()) +
               "\n  " + describe_operand(out, out.alloc == none ? 0 : index_allocs[out.alloc].size());
    }
};

/// z = x / temperature in double (no division for 1), as sample_categorical.hpp defines it.
double z_of(double x, double temperature) { return temperature != 1.0 ? x / temperature : x; }

template <class T>
void predict_sample_errors(const sample_case<T>& c, bool& out_of_range, bool& invalid) {
    out_of_range = !axis_in_range(c.axis, c.shape.size());
    invalid = false;
    if (out_of_range) return;
    const std::size_t a = lk_ref::normalize_axis(c.axis, c.shape.size());
    shape_t expected = c.shape;
    expected[a] = 1;
    bool inv = c.out.shape != expected;
    inv = inv || !valid_temperature<double>(c.temperature) || c.top_k < 0 || !(c.top_p >= 0 && c.top_p <= 1);
    inv = inv || null_with_elements(c.x) || null_with_elements(c.out) || repeats_elements(c.out);
    if (inv || count(c.out.shape) == 0) {
        invalid = inv;
        return;
    }
    if (c.shape[a] == 0) {
        invalid = true;
        return;
    }
    // Every line needs no NaN, no +inf and a finite maximum once divided by the temperature.
    const std::vector<T> x = gather(c.x, c.allocs).v;
    for_each_line(c.shape, a, [&](index_type base, index_type stride, index_type n) {
        T m = -std::numeric_limits<T>::infinity();
        bool ok = true;
        for (index_type i = 0; i < n; ++i) {
            const T v = x[static_cast<std::size_t>(base + i * stride)];
            ok = ok && v < std::numeric_limits<T>::infinity();
            m = std::max(m, v);
        }
        const double zm = z_of(static_cast<double>(m), c.temperature);
        if (!ok || !(m > -std::numeric_limits<T>::infinity()) || !std::isfinite(zm)) invalid = true;
    });
}

struct sample_result {
    outcome thrown;
    logitkit::philox4x32 gen;
};

template <class Arch, class T, std::size_t R>
sample_result run_sample(const sample_case<T>& c, std::vector<std::vector<T>>& mem,
                         std::vector<std::vector<std::int64_t>>& index_mem) {
    sample_result r;
    r.gen = logitkit::philox4x32(c.gen.seed, c.gen.offset);
    r.thrown = capture([&] {
        logitkit::sample_categorical_options o;
        o.temperature = c.temperature;
        o.top_k = c.top_k;
        o.top_p = c.top_p;
        const logitkit::tensor_view<const T, R> x = view_of<T, R>(c.x, mem);
        if constexpr (R == 1) {
            if (c.place == sample_place::single_line) {
                const std::int64_t drawn = logitkit::sample_categorical<Arch>(x, r.gen, o);
                index_mem[c.out.alloc][static_cast<std::size_t>(c.out.offset)] = drawn;
                return;
            }
        }
        logitkit::sample_categorical<Arch>(x, view_of<std::int64_t, R>(c.out, index_mem), r.gen, o, c.axis);
    });
    return r;
}

/// The indices must be the same on both paths, each a class the filters keep, and a maximum of
/// z + g over the kept classes (g in long double from the documented uniforms, so within a few
/// ulps; the nucleus is known up to the rounding of its probabilities).
template <class T>
void check_samples(const sample_case<T>& c, const std::string& what, const std::vector<std::int64_t>& got,
                   const std::vector<std::int64_t>& other) {
    const std::size_t a = lk_ref::normalize_axis(c.axis, c.shape.size());
    const std::vector<T> x = gather(c.x, c.allocs).v;
    const ld minus_inf = -std::numeric_limits<ld>::infinity();
    std::size_t line = 0;
    for_each_line(c.shape, a, [&](index_type base, index_type stride, index_type n) {
        const std::size_t l = line++;
        const std::int64_t drawn = got[l];
        std::string why;
        std::vector<double> z(static_cast<std::size_t>(n));
        for (index_type i = 0; i < n; ++i)
            z[static_cast<std::size_t>(i)] =
                z_of(static_cast<double>(x[static_cast<std::size_t>(base + i * stride)]), c.temperature);
        // Top-k: z >= the k-th largest z that is > -inf (every class when fewer are).
        double threshold = -std::numeric_limits<double>::infinity();
        if (c.top_k > 0 && c.top_k < n) {
            std::vector<double> finite;
            for (double v : z)
                if (v > -std::numeric_limits<double>::infinity()) finite.push_back(v);
            if (static_cast<std::int64_t>(finite.size()) >= c.top_k) {
                std::nth_element(finite.begin(), finite.begin() + (c.top_k - 1), finite.end(), std::greater<double>());
                threshold = finite[static_cast<std::size_t>(c.top_k - 1)];
            }
        }
        std::vector<index_type> order;  // the candidates in (z desc, index asc) order
        for (index_type i = 0; i < n; ++i)
            if (z[static_cast<std::size_t>(i)] >= threshold &&
                z[static_cast<std::size_t>(i)] > -std::numeric_limits<double>::infinity())
                order.push_back(i);
        std::stable_sort(order.begin(), order.end(), [&](index_type p, index_type q) {
            return z[static_cast<std::size_t>(p)] > z[static_cast<std::size_t>(q)];
        });
        // Nucleus: a class is kept while the probability of the classes before it is below top_p.
        std::vector<char> surely(static_cast<std::size_t>(n), 0), maybe(static_cast<std::size_t>(n), 0);
        ld total = 0;
        const ld zmax = order.empty() ? 0 : static_cast<ld>(z[static_cast<std::size_t>(order[0])]);
        for (index_type i : order) total += std::exp(static_cast<ld>(z[static_cast<std::size_t>(i)]) - zmax);
        const bool nucleus = c.top_p < 1;
        const ld target = static_cast<ld>(c.top_p) * total;
        ld before = 0;
        for (std::size_t j = 0; j < order.size(); ++j) {
            const std::size_t i = static_cast<std::size_t>(order[j]);
            surely[i] = !nucleus || j == 0 || before < target * (1 - 1e-9L);
            maybe[i] = !nucleus || j == 0 || before < target * (1 + 1e-9L);
            before += std::exp(static_cast<ld>(z[i]) - zmax);
        }
        if (drawn != other[l])
            why = "the paths draw different classes (" + std::to_string(other[l]) + " on the other)";
        else if (drawn < 0 || drawn >= n)
            why = "not a class index";
        else if (!maybe[static_cast<std::size_t>(drawn)])
            why = "a class the filters drop";
        else {
            // Row-major index of the line's elements: base + i * stride.
            auto value = [&](index_type i) {
                return static_cast<ld>(z[static_cast<std::size_t>(i)]) +
                       documented_noise<T>(c.gen, static_cast<std::uint64_t>(base + i * stride));
            };
            auto slack = [&](index_type i) {
                return 1e-13L * (1 + std::fabs(static_cast<ld>(z[static_cast<std::size_t>(i)])) + 40);
            };
            const ld v = value(drawn);
            for (index_type i = 0; i < n && why.empty(); ++i)
                if (surely[static_cast<std::size_t>(i)] && value(i) > v + slack(i) + slack(drawn) &&
                    value(i) > minus_inf)
                    why = "not a maximum of z + g among the kept classes: class " + std::to_string(i) + " has " +
                          std::to_string(static_cast<double>(value(i))) + ", the drawn one " +
                          std::to_string(static_cast<double>(v));
        }
        if (!why.empty()) {
            std::string s = what + "\n  line " + std::to_string(l) + ": drew " + std::to_string(drawn) + ", " + why +
                            "\n  x along the axis:";
            for (index_type i = 0; i < n && i < 64; ++i)
                s += " " + show(x[static_cast<std::size_t>(base + i * stride)]);
            fail(s);
        }
    });
}

template <class T, std::size_t R>
void run_sample_case(const sample_case<T>& c) {
    bool want_oor = false, want_inv = false;
    predict_sample_errors(c, want_oor, want_inv);
    const std::string what = c.describe();
    if (verbose())
        std::fprintf(stderr, "logitkit fuzz: case %s%s\n  expected: %s\n", what.c_str(), dump(c.x, c.allocs).c_str(),
                     expected_error_name(want_oor, want_inv));
    std::vector<std::vector<T>> simd_mem = c.allocs, scalar_mem = c.allocs;
    std::vector<std::vector<std::int64_t>> simd_index = c.index_allocs, scalar_index = c.index_allocs;
    const sample_result simd = run_sample<logitkit::detail::default_arch, T, R>(c, simd_mem, simd_index);
    const sample_result scalar = run_sample<logitkit::detail::scalar_arch, T, R>(c, scalar_mem, scalar_index);
    check_outcomes(what, "sample_categorical", simd.thrown, scalar.thrown, want_oor, want_inv);
    const bool threw = simd.thrown.thrown != outcome::none;
    const std::uint64_t drawn =
        threw ? 0 : static_cast<std::uint64_t>(count(c.shape)) * logitkit::philox_words_per_element<T>;
    for (const sample_result* r : {&simd, &scalar})
        if (r->gen.seed_value() != c.gen.seed || r->gen.offset() != c.gen.offset + drawn)
            fail(what + "\n  the " + (r == &simd ? "SIMD" : "scalar") + " path left the generator at offset " +
                 std::to_string(r->gen.offset()) + "; expected " + std::to_string(c.gen.offset + drawn));
    check_unchanged(what, "SIMD", c.allocs, simd_mem, no_writes(c.allocs), threw);
    check_unchanged(what, "scalar", c.allocs, scalar_mem, no_writes(c.allocs), threw);
    write_mask written = no_writes(c.index_allocs);
    if (!threw) allow_writes(written, c.out);
    check_unchanged(what, "SIMD", c.index_allocs, simd_index, written, threw);
    check_unchanged(what, "scalar", c.index_allocs, scalar_index, written, threw);
    if (threw || count(c.out.shape) == 0) return;
    check_samples(c, what, gather(c.out, simd_index).v, gather(c.out, scalar_index).v);
}

template <class T, std::size_t R>
void fuzz_sample(FuzzedDataProvider& f) {
    sample_case<T> c;
    c.shape = decode_shape(f, R, max_elements);
    c.axis = decode_axis(f, static_cast<int>(R));
    if (f.ConsumeBool()) c.temperature = decode_temperature(f);
    switch (f.ConsumeIntegralInRange<int>(0, 7)) {
        case 0: c.top_k = f.ConsumeIntegralInRange<std::int64_t>(1, 12); break;
        case 1: c.top_k = f.ConsumeIntegralInRange<std::int64_t>(1, 3); break;
        case 2: c.top_k = f.ConsumeBool() ? -1 : std::numeric_limits<std::int64_t>::min(); break;
        default: break;
    }
    switch (f.ConsumeIntegralInRange<int>(0, 7)) {
        case 0: c.top_p = unit(f); break;
        case 1: c.top_p = f.PickValueInArray({0.0, 0.5, 0.9, 0.999}); break;
        case 2: c.top_p = f.PickValueInArray({-0.1, 1.5, std::numeric_limits<double>::quiet_NaN()}); break;
        default: break;
    }
    const int pl = f.ConsumeIntegralInRange<int>(0, 31);
    c.place = pl < 20 ? sample_place::separate
              : pl < 24 && R == 1
                  ? sample_place::single_line
                  : f.PickValueInArray({sample_place::separate, sample_place::repeated, sample_place::mismatch,
                                        sample_place::null_input, sample_place::null_output});
    if (c.place == sample_place::single_line) c.axis = 0;
    c.gen = decode_generator(f);
    const std::size_t a = axis_or(c.axis, R, 0);
    c.x.name = "logits";
    c.x.shape = c.shape;
    c.out.name = "out_indices";
    c.out.is_output = true;
    c.out.shape = c.shape;
    c.out.shape[a] = 1;
    if (c.place == sample_place::mismatch) mismatch_shape(f, c.out.shape);
    c.x.strides = decode_strides(f, c.x.shape, true);
    c.out.strides = decode_strides(f, c.out.shape, false);
    if (c.place == sample_place::repeated) make_repeated(f, c.out);
    if (c.place != sample_place::null_input) place_alone(f, c.x, c.allocs);
    if (c.place != sample_place::null_output) place_alone(f, c.out, c.index_allocs);
    fill_values(f, c.allocs);
    for (auto& alloc : c.index_allocs)
        for (std::int64_t& v : alloc) v = f.ConsumeIntegral<std::int64_t>();
    run_sample_case<T, R>(c);
}

// =============================================================================================

/// One call of one of the functions: a loss (ranks 2 to 4), a Gumbel kernel or a sample (1 to 3).
template <class T>
void fuzz_type(FuzzedDataProvider& f) {
    const int family = f.ConsumeIntegralInRange<int>(0, 9);
    if (family < 5)
        with_rank<2, 4>(f, [&](auto r) { fuzz_loss<T, decltype(r)::value>(f); });
    else if (family < 8)
        with_rank<1, 3>(f, [&](auto r) { fuzz_gumbel<T, decltype(r)::value>(f); });
    else
        with_rank<1, 3>(f, [&](auto r) { fuzz_sample<T, decltype(r)::value>(f); });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider f(data, size);
    with_element_type(f, [&](auto t) { fuzz_type<decltype(t)>(f); });
    return 0;
}
