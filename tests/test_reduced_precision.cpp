// bfloat16 and float16: the conversions against an independent nearest-value search (every
// two-byte pattern, edge cases and a million random floats; the F16C instructions against the
// portable code where both are compiled; the SIMD path's batch loads and stores against the scalar
// conversions), and every softmax-family kernel on bfloat16 / float16
// tensors (and float <-> bfloat16 / float16 mixes) against a long double reference: each output
// is within the float kernel's bound plus half an ulp of its storage type (one rounding of the
// float result).
#include <algorithm>
#include <memory>

#include "test_support.hpp"

namespace logitkit {
// strided_buffer's diagnostics print elements.
inline std::ostream& operator<<(std::ostream& os, bfloat16 v) { return os << static_cast<float>(v); }
inline std::ostream& operator<<(std::ostream& os, float16 v) { return os << static_cast<float>(v); }
}  // namespace logitkit

using namespace lk_test;
using logitkit::bfloat16;
using logitkit::float16;

namespace {

template <class S>
struct format;
template <>
struct format<bfloat16> {
    static constexpr int precision = 8;  // significant bits
    static constexpr int min_exponent = -126;
    static constexpr double max_finite = 3.3895313892515355e38;
    static constexpr double overflow_value = 0x1p128;  // where inf sits for rounding
    static const char* name() { return "bfloat16"; }
    static std::uint16_t from(float f) { return logitkit::detail::bfloat16_from_float(f); }
    static float to(std::uint16_t b) { return logitkit::detail::float_from_bfloat16(b); }
};
template <>
struct format<float16> {
    static constexpr int precision = 11;
    static constexpr int min_exponent = -14;
    static constexpr double max_finite = 65504.0;
    static constexpr double overflow_value = 65536.0;
    static const char* name() { return "float16"; }
    static std::uint16_t from(float f) { return logitkit::detail::float16_from_float(f); }
    static float to(std::uint16_t b) { return logitkit::detail::float_from_float16(b); }
};

/// The value of a two-byte pattern, decoded by hand (sign, exponent, fraction), as a double.
template <class S>
double decode(std::uint16_t b) {
    constexpr int frac_bits = format<S>::precision - 1;
    constexpr int exp_bits = 15 - frac_bits;
    const int e = (b >> frac_bits) & ((1 << exp_bits) - 1);
    const int f = b & ((1 << frac_bits) - 1);
    const double sign = (b & 0x8000) ? -1.0 : 1.0;
    const int bias = (1 << (exp_bits - 1)) - 1;
    if (e == (1 << exp_bits) - 1) return f ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
    if (e == 0) return sign * std::ldexp(static_cast<double>(f), 1 - bias - frac_bits);
    return sign * std::ldexp(static_cast<double>(f + (1 << frac_bits)), e - bias - frac_bits);
}

/// The nearest pattern to x (ties to the even pattern; beyond max + half an ulp: inf), by binary
/// search over the sorted non-negative finite values.
template <class S>
std::uint16_t nearest(double x) {
    static const std::vector<double> values = [] {
        std::vector<double> v;
        for (std::uint32_t b = 0; b < 0x8000; ++b) {
            const double d = decode<S>(static_cast<std::uint16_t>(b));
            if (!std::isfinite(d)) break;
            v.push_back(d);
        }
        v.push_back(format<S>::overflow_value);  // the pattern after max is inf
        return v;
    }();
    const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
    const double a = std::fabs(x);
    if (a >= format<S>::overflow_value) return static_cast<std::uint16_t>(sign | (values.size() - 1));
    const auto it = std::lower_bound(values.begin(), values.end(), a);
    std::size_t hi = static_cast<std::size_t>(it - values.begin());
    if (values[hi] == a) return static_cast<std::uint16_t>(sign | hi);
    const std::size_t lo = hi - 1;
    const double dl = a - values[lo], dh = values[hi] - a;
    const std::size_t pick = dl < dh ? lo : dh < dl ? hi : (lo % 2 == 0 ? lo : hi);
    return static_cast<std::uint16_t>(sign | pick);
}

template <class S>
void check_conversions() {
    INFO(format<S>::name());
    // Every pattern widens to its decoded value and rounds back to itself; NaN stays NaN.
    for (std::uint32_t b = 0; b <= 0xffff; ++b) {
        const auto p = static_cast<std::uint16_t>(b);
        const double want = decode<S>(p);
        const float got = format<S>::to(p);
        if (std::isnan(want)) {
            REQUIRE(std::isnan(got));
            const std::uint16_t back = format<S>::from(got);
            REQUIRE(std::isnan(decode<S>(back)));
            REQUIRE((back & 0x8000) == (p & 0x8000));
            continue;
        }
        REQUIRE(static_cast<double>(got) == want);
        REQUIRE(std::signbit(got) == std::signbit(want));
        REQUIRE(format<S>::from(got) == p);
    }
    // Rounding: halfway points and their neighbours, and random floats of every magnitude.
    std::vector<float> xs = {0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(),
                             std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                             static_cast<float>(format<S>::max_finite), 65519.996f, 65520.0f, 5.9604645e-8f,
                             2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f};
    for (std::uint32_t b = 0; b < 0x7f80; b += 3) {  // midpoints between consecutive patterns
        const double lo = decode<S>(static_cast<std::uint16_t>(b)), hi = decode<S>(static_cast<std::uint16_t>(b + 1));
        if (!std::isfinite(hi)) break;
        const float mid = static_cast<float>((lo + hi) / 2);
        if (static_cast<double>(mid) == (lo + hi) / 2) {
            xs.push_back(mid);
            xs.push_back(std::nextafter(mid, 0.0f));
            xs.push_back(std::nextafter(mid, HUGE_VALF));
        }
    }
    rng r(seed_for(960));
    for (int i = 0; i < 300000; ++i) {
        std::uint32_t u = static_cast<std::uint32_t>(r.next());
        if ((u & 0x7f800000u) == 0x7f800000u) u ^= 0x40000000u;  // keep it finite
        float f;
        std::memcpy(&f, &u, 4);
        xs.push_back(f);
    }
    for (float f : xs) {
        for (float v : {f, -f}) {
            INFO("x = " << std::hexfloat << v);
            REQUIRE(format<S>::from(v) == nearest<S>(static_cast<double>(v)));
        }
    }
    REQUIRE(format<S>::from(HUGE_VALF) == nearest<S>(HUGE_VAL));
    REQUIRE(format<S>::from(-HUGE_VALF) == nearest<S>(-HUGE_VAL));
}

}  // namespace

TEST_CASE("bfloat16: conversions round to nearest even, are exact back, keep NaN", "[reduced]") {
    check_conversions<bfloat16>();
    CHECK(sizeof(bfloat16) == 2);
    CHECK(static_cast<float>(bfloat16(1.0f)) == 1.0f);
    CHECK(bfloat16::from_bits(0x3f80).bits == bfloat16(1.0f).bits);
    // Widening is the bits themselves, as the high half: a signalling NaN stays signalling.
    std::uint32_t wrong = 0;
    for (std::uint32_t b = 0; b < 0x10000u; ++b) {
        const float f = static_cast<float>(bfloat16::from_bits(static_cast<std::uint16_t>(b)));
        std::uint32_t u;
        std::memcpy(&u, &f, sizeof u);
        wrong += u != b << 16;
    }
    CHECK(wrong == 0);
}

TEST_CASE("float16: conversions round to nearest even, are exact back, keep NaN", "[reduced]") {
    check_conversions<float16>();
    CHECK(static_cast<float>(float16(65504.0f)) == 65504.0f);
    CHECK(std::isinf(static_cast<float>(float16(65520.0f))));
    // The compiled conversion (F16C where the target has it) and the portable one agree.
    rng r(seed_for(961));
    for (std::uint32_t b = 0; b <= 0xffff; ++b) {
        const float a = logitkit::detail::float_from_float16(static_cast<std::uint16_t>(b));
        const float p = logitkit::detail::float_from_float16_portable(static_cast<std::uint16_t>(b));
        REQUIRE(std::memcmp(&a, &p, 4) == 0);
    }
    for (int i = 0; i < 200000; ++i) {
        const auto u = static_cast<std::uint32_t>(r.next());
        float f;
        std::memcpy(&f, &u, 4);
        REQUIRE(logitkit::detail::float16_from_float(f) == logitkit::detail::float16_from_float_portable(f));
    }
}

TEMPLATE_TEST_CASE("bfloat16 / float16: the batch loads and stores of this build's SIMD path convert bit for bit as "
                   "the scalar conversions",
                   "[reduced]", bfloat16, float16) {
    using S = TestType;
    using V = logitkit::detail::batch<float, logitkit::detail::default_arch>;
    namespace simd = logitkit::detail::simd;
    constexpr std::size_t W = V::size;
    INFO(format<S>::name() << " on " << logitkit::simd_arch_name() << ", " << W << " lanes");
    // Widening: every two-byte pattern (NaN included: quieted alike).
    std::vector<S> all(0x10000);
    for (std::uint32_t b = 0; b <= 0xffff; ++b) all[b] = S::from_bits(static_cast<std::uint16_t>(b));
    std::size_t wrong = 0, first = 0;
    for (std::size_t i = 0; i < all.size(); i += W) {
        float got[W];
        simd::load<V>(all.data() + i).store_unaligned(got);
        for (std::size_t j = 0; j < W; ++j) {
            const float want = static_cast<float>(all[i + j]);
            if (std::memcmp(&got[j], &want, 4) != 0 && wrong++ == 0) first = i + j;
        }
    }
    INFO("first pattern widened wrongly: " << first);
    CHECK(wrong == 0);
    // Rounding: floats at and beside every rounding boundary of both formats (ties to even and
    // away, halfway between subnormals, overflow to infinity), NaN and infinities, zeros.
    std::vector<float> f;
    for (std::uint32_t high = 0; high <= 0xffff; ++high)
        for (std::uint32_t low : {0x0u, 0x1u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu, 0x0fffu, 0x1000u, 0x1001u, 0x3000u}) {
            const std::uint32_t u = (high << 16) | low;
            float v;
            std::memcpy(&v, &u, 4);
            f.push_back(v);
        }
    rng r(seed_for(962));
    while (f.size() % W != 0 || f.size() < 700000) {
        const auto u = static_cast<std::uint32_t>(r.next());
        float v;
        std::memcpy(&v, &u, 4);
        f.push_back(v);
    }
    wrong = 0;
    for (std::size_t i = 0; i < f.size(); i += W) {
        S got[W];
        simd::store(got, V::load_unaligned(f.data() + i));
        for (std::size_t j = 0; j < W; ++j)
            if (got[j].bits != S(f[i + j]).bits && wrong++ == 0) first = i + j;
    }
    INFO("first float rounded wrongly: " << (wrong ? f[first] : 0.0f));
    CHECK(wrong == 0);
}

namespace {

/// One ulp of the storage type S at the magnitude of v (the subnormal spacing below the normals).
template <class S>
ld storage_ulp(ld v) {
    const ld a = std::fabs(v);
    int e = format<S>::min_exponent;
    if (a >= std::ldexp(ld(1), format<S>::min_exponent)) e = std::ilogb(a);
    return std::ldexp(ld(1), e - (format<S>::precision - 1));
}

template <class S>
dense<S> to_storage(const dense<float>& d) {
    dense<S> out(d.shape);
    for (index_t i = 0; i < d.size(); ++i) out[i] = S(d[i]);
    return out;
}
template <class S>
dense<float> to_float(const dense<S>& d) {
    dense<float> out(d.shape);
    for (index_t i = 0; i < d.size(); ++i) out[i] = static_cast<float>(d[i]);
    return out;
}

enum class kernel { softmax, log_softmax, logsumexp, softmax_backward, log_softmax_backward };
constexpr kernel all_kernels[] = {kernel::softmax, kernel::log_softmax, kernel::logsumexp, kernel::softmax_backward,
                                  kernel::log_softmax_backward};
const char* name_of(kernel k) {
    switch (k) {
        case kernel::softmax: return "softmax";
        case kernel::log_softmax: return "log_softmax";
        case kernel::logsumexp: return "logsumexp";
        case kernel::softmax_backward: return "softmax_backward";
        case kernel::log_softmax_backward: return "log_softmax_backward";
    }
    return "?";
}

/// Runs kernel k on S tensors laid out as `lay` and checks every output against the long double
/// reference of the (exactly widened) inputs: within the float kernel's bound plus half an ulp
/// of S.
template <class S>
bool run_kernel(kernel k, const shape_t& shape, int axis, const layout& lay, std::uint64_t seed, double temperature) {
    rng r(seed);
    const auto ext = to_extents<2>(shape);
    const dense<S> a = to_storage<S>(random_dense<float>(shape, 6.0, r));
    const dense<S> b = to_storage<S>(random_dense<float>(shape, 1.0, r));
    const dense<float> af = to_float(a), bf = to_float(b);
    std::ostringstream os;
    os << name_of(k) << "<" << format<S>::name() << "> shape " << lk_ref::shape_string(shape) << " axis " << axis
       << " temperature " << temperature << " layout " << lay.describe();
    const std::string what = os.str();
    const S sentinel = S(-4242.0f);
    strided_buffer<S, 2> ab(ext, lay, sentinel), bb(ext, lay, sentinel);
    ab.fill(a);
    bb.fill(b);
    logitkit::softmax_options o;
    o.temperature = temperature;
    dense<ld> ref, scale;
    dense<float> got;
    bool ok = true;
    if (k == kernel::logsumexp) {
        auto rshape = shape;
        rshape[lk_ref::normalize_axis(axis, 2)] = 1;
        strided_buffer<S, 2> out(to_extents<2>(rshape), lay, sentinel);
        logitkit::logsumexp(ab.cview(), out.view(), axis);
        ok &= expect_empty(out.outside_changes(), what + "\n  out buffer");
        got = to_float(out.read());
        ref = lk_ref::logsumexp(af, axis);
    } else {
        strided_buffer<S, 2> out(ext, lay, sentinel);
        switch (k) {
            case kernel::softmax: logitkit::softmax(ab.cview(), out.view(), axis, o); break;
            case kernel::log_softmax: logitkit::log_softmax(ab.cview(), out.view(), axis, o); break;
            case kernel::softmax_backward: logitkit::softmax_backward(ab.cview(), bb.cview(), out.view(), axis, o); break;
            case kernel::log_softmax_backward:
                logitkit::log_softmax_backward(ab.cview(), bb.cview(), out.view(), axis, o);
                break;
            case kernel::logsumexp: break;
        }
        ok &= expect_empty(out.outside_changes(), what + "\n  out buffer");
        got = to_float(out.read());
        const ld t = static_cast<ld>(static_cast<float>(temperature));
        switch (k) {
            case kernel::softmax: ref = lk_ref::softmax(af, axis, temperature); break;
            case kernel::log_softmax: ref = lk_ref::log_softmax(af, axis, temperature); break;
            case kernel::softmax_backward:
                ref = lk_ref::softmax_backward(af, bf, axis);
                scale = lk_ref::softmax_backward_scale(af, bf, axis);
                break;
            case kernel::log_softmax_backward:
                ref = lk_ref::log_softmax_backward(af, bf, axis);
                scale = lk_ref::log_softmax_backward_scale(af, bf, axis);
                break;
            case kernel::logsumexp: break;
        }
        if (k == kernel::softmax_backward || k == kernel::log_softmax_backward)
            for (index_t i = 0; i < ref.size(); ++i) {
                ref[i] /= t;
                scale[i] /= t;
            }
    }
    ok &= expect_bitwise_equal(to_float(ab.read()), af, what + "\n  input modified");
    // The float kernel's own bound, then half an ulp of S for the one rounding.
    ok &= check_close(got, ref,
                      [&](index_t i, ld rv) {
                          const ld own = k == kernel::softmax   ? softmax_allowed<float>(rv)
                                         : scale.size() != 0 ? bounds<float>::backward_coef * scale[i] +
                                                                    4 * static_cast<ld>(vals<float>::true_min())
                                                              : log_allowed<float>(rv);
                          return storage_ulp<S>(rv) / 2 + own;
                      },
                      what);
    return ok;
}

template <class S>
void kernel_suite() {
    failure_budget budget;
    std::uint64_t case_id = 0;
    rng lr(seed_for(970));
    for (kernel k : all_kernels) {
        for (index_t n : {1, 7, 16, 17, 33, 67, 1000}) {
            for (int axis : {-1, 0}) {
                const shape_t shape = axis == -1 ? shape_t{3, n} : shape_t{n, 5};
                const auto lays = standard_layouts(2, lk_ref::normalize_axis(axis, 2), lr);
                for (std::size_t li : {std::size_t(0), std::size_t(1), std::size_t(5), std::size_t(6)}) {
                    const double t = li == 5 ? 0.7 : 1.0;
                    if (!budget.record(run_kernel<S>(k, shape, axis, lays[li], seed_for(971, ++case_id), t))) return;
                }
            }
        }
    }
}

}  // namespace

TEST_CASE("bfloat16 tensors: every softmax-family kernel, float bound + 1/2 ulp of bfloat16", "[reduced]") {
    kernel_suite<bfloat16>();
}

TEST_CASE("float16 tensors: every softmax-family kernel, float bound + 1/2 ulp of float16", "[reduced]") {
    kernel_suite<float16>();
}

namespace {

/// float <-> S: softmax / log_softmax with one side stored as S.
template <class S>
void mixed_suite() {
    for (index_t n : {1, 17, 1000}) {
        rng r(seed_for(980, static_cast<std::uint64_t>(n)));
        const shape_t shape{4, n};
        const dense<float> xf = random_dense<float>(shape, 8.0, r);
        const dense<S> xs = to_storage<S>(xf);
        for (bool log : {false, true}) {
            const std::string what = std::string(log ? "log_softmax " : "softmax ") + format<S>::name() + " n " +
                                     std::to_string(n);
            auto run = [&](auto x, auto y) {
                if (log)
                    logitkit::log_softmax(x, y);
                else
                    logitkit::softmax(x, y);
            };
            // float in, S out: the float result rounded once.
            dense<S> ys(shape);
            run(logitkit::tensor_view<const float, 2>(xf.data.data(), {4, n}),
                logitkit::tensor_view<S, 2>(ys.data.data(), {4, n}));
            const dense<ld> ref_f = log ? lk_ref::log_softmax(xf, -1) : lk_ref::softmax(xf, -1);
            CHECK(check_close(to_float(ys), ref_f,
                              [&](index_t, ld rv) {
                                  return storage_ulp<S>(rv) / 2 + (log ? log_allowed<float>(rv) : softmax_allowed<float>(rv));
                              },
                              what + ", float input, output stored as S"));
            // S in, float out: float's own bound on the widened input.
            dense<float> yf(shape);
            run(logitkit::tensor_view<const S, 2>(xs.data.data(), {4, n}),
                logitkit::tensor_view<float, 2>(yf.data.data(), {4, n}));
            const dense<float> xw = to_float(xs);
            const dense<ld> ref_s = log ? lk_ref::log_softmax(xw, -1) : lk_ref::softmax(xw, -1);
            if (log)
                CHECK(check_close(yf, ref_s, [](index_t, ld rv) { return log_allowed<float>(rv); },
                                  what + ", input stored as S, float output"));
            else
                CHECK(check_close(yf, ref_s, [](index_t, ld rv) { return softmax_allowed<float>(rv); },
                                  what + ", input stored as S, float output"));
        }
    }
}

}  // namespace

TEST_CASE("float input with bfloat16 / float16 output, and the reverse", "[reduced]") {
    mixed_suite<bfloat16>();
    mixed_suite<float16>();
}

TEMPLATE_TEST_CASE("bfloat16 / float16: masks, causal rows and special values", "[reduced][mask]", bfloat16, float16) {
    using S = TestType;
    const float inf = HUGE_VALF, nan = std::numeric_limits<float>::quiet_NaN();
    const index_t q = 3, n = 19;
    rng r(seed_for(990));
    dense<float> xf = random_dense<float>({q, n}, 5.0, r);
    xf[5] = inf;  // row 0 holds +inf: NaN on its kept elements
    xf[n + 2] = nan;  // row 1 holds a NaN, masked by the first mask, kept by the prefix
    std::unique_ptr<bool[]> keep(new bool[n]);
    const dense<S> xs = to_storage<S>(xf);
    logitkit::softmax_options o;
    o.causal = true;
    o.causal_offset = 8;
    // Every fourth element masked, then a mask that keeps a prefix (padding: the lines run as
    // the causal rule's do).
    for (int pass = 0; pass < 4; ++pass) {
        const bool prefix = pass >= 2, log = pass % 2 == 1;
        for (index_t j = 0; j < n; ++j) keep[static_cast<std::size_t>(j)] = prefix ? j < 10 : j % 4 != 2;
        dense<S> ys(xf.shape);
        const logitkit::tensor_view<const S, 2> xv(xs.data.data(), {q, n});
        const logitkit::tensor_view<S, 2> yv(ys.data.data(), {q, n});
        const logitkit::tensor_view<const bool, 1> mv(keep.get(), {n});
        if (log)
            logitkit::log_softmax(xv, yv, mv, -1, o);
        else
            logitkit::softmax(xv, yv, mv, -1, o);
        const dense<float> y = to_float(ys);
        const dense<float> xw = to_float(xs);
        for (index_t i = 0; i < q; ++i) {
            // Kept: j <= i + 8 and the mask; the reference over those alone.
            std::vector<index_t> kept;
            for (index_t j = 0; j < n; ++j)
                if (j <= i + 8 && keep[static_cast<std::size_t>(j)]) kept.push_back(j);
            bool special = false;
            ld m = -HUGE_VALL, s = 0;
            for (index_t j : kept) {
                special = special || !std::isfinite(xw[i * n + j]);
                m = std::max<ld>(m, xw[i * n + j]);
            }
            for (index_t j : kept) s += std::exp(static_cast<ld>(xw[i * n + j]) - m);
            for (index_t j = 0; j < n; ++j) {
                const float g = y[i * n + j];
                INFO((log ? "log_softmax " : "softmax ") << format<S>::name() << (prefix ? ", prefix mask" : "")
                                                         << " row " << i << " element " << j);
                if (std::find(kept.begin(), kept.end(), j) == kept.end()) {
                    CHECK(g == (log ? -inf : 0.0f));
                } else if (special) {
                    CHECK(std::isnan(g));
                } else {
                    const ld d = static_cast<ld>(xw[i * n + j]) - m;
                    const ld want = log ? d - std::log(s) : std::exp(d) / s;
                    CHECK(std::fabs(static_cast<ld>(g) - want) <=
                          storage_ulp<S>(want) / 2 + (log ? log_allowed<float>(want) : softmax_allowed<float>(want)));
                }
            }
        }
    }
}

namespace {

template <class S, std::size_t R>
void expect_rounded_from(const std::vector<S>& got, const std::vector<float>& from, const std::string& what) {
    REQUIRE(got.size() == from.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        INFO(what << ", element " << i << ": " << from[i]);
        REQUIRE(got[i].bits == S(from[i]).bits);
    }
}

}  // namespace

TEMPLATE_TEST_CASE("bfloat16 / float16: cross_entropy is the float kernel on the widened logits, rounded once",
                   "[reduced][cross_entropy]", bfloat16, float16) {
    using S = TestType;
    const index_t n = 6, c = 37;
    rng r(seed_for(1000));
    std::vector<S> x(static_cast<std::size_t>(n * c)), w(static_cast<std::size_t>(c)), up(static_cast<std::size_t>(n));
    for (auto& v : x) v = S(static_cast<float>(r.uniform(-6, 6)));
    for (auto& v : w) v = S(static_cast<float>(r.uniform(0.2, 2)));
    for (auto& v : up) v = S(static_cast<float>(r.uniform(-1, 1)));
    std::vector<std::int64_t> t(static_cast<std::size_t>(n));
    for (auto& v : t) v = static_cast<std::int64_t>(r.below(c));
    t[2] = -100;
    auto widen = [](const std::vector<S>& v) {
        std::vector<float> f(v.size());
        for (std::size_t i = 0; i < v.size(); ++i) f[i] = static_cast<float>(v[i]);
        return f;
    };
    const std::vector<float> xf = widen(x), wf = widen(w), upf = widen(up);
    for (auto red : {logitkit::reduction::mean, logitkit::reduction::sum, logitkit::reduction::none}) {
        for (bool soft_targets : {false, true}) {
            INFO("reduction " << static_cast<int>(red) << (soft_targets ? ", probability targets" : ", class indices"));
            logitkit::cross_entropy_options<S> o;
            o.weight = logitkit::tensor_view<const S, 1>(w.data(), {c});
            o.label_smoothing = 0.1;
            o.z_loss = 1e-3;
            o.reduction = red;
            logitkit::cross_entropy_options<float> of;
            of.weight = logitkit::tensor_view<const float, 1>(wf.data(), {c});
            of.label_smoothing = 0.1;
            of.z_loss = 1e-3;
            of.reduction = red;
            std::vector<S> grad(x.size()), losses(static_cast<std::size_t>(n));
            std::vector<float> gradf(x.size()), lossesf(static_cast<std::size_t>(n));
            logitkit::loss_outputs<S, 2> out;
            out.grad = logitkit::tensor_view<S, 2>(grad.data(), {n, c});
            out.losses = logitkit::tensor_view<S, 1>(losses.data(), {n});
            logitkit::loss_outputs<float, 2> outf;
            outf.grad = logitkit::tensor_view<float, 2>(gradf.data(), {n, c});
            outf.losses = logitkit::tensor_view<float, 1>(lossesf.data(), {n});
            if (red == logitkit::reduction::none) {
                out.upstream = logitkit::tensor_view<const S, 1>(up.data(), {n});
                outf.upstream = logitkit::tensor_view<const float, 1>(upf.data(), {n});
            }
            const logitkit::tensor_view<const S, 2> xv(x.data(), {n, c});
            const logitkit::tensor_view<const float, 2> xfv(xf.data(), {n, c});
            double got, want;
            if (soft_targets) {
                std::vector<S> q(x.size());
                for (auto& v : q) v = S(static_cast<float>(r.uniform(0, 1)));
                const std::vector<float> qf = widen(q);
                got = logitkit::cross_entropy(xv, logitkit::tensor_view<const S, 2>(q.data(), {n, c}), o, out);
                want = logitkit::cross_entropy(xfv, logitkit::tensor_view<const float, 2>(qf.data(), {n, c}), of, outf);
            } else {
                const logitkit::tensor_view<const std::int64_t, 1> tv(t.data(), {n});
                got = logitkit::cross_entropy(xv, tv, o, out);
                want = logitkit::cross_entropy(xfv, tv, of, outf);
            }
            CHECK(std::memcmp(&got, &want, sizeof got) == 0);
            expect_rounded_from<S, 2>(grad, gradf, "grad");
            expect_rounded_from<S, 1>(losses, lossesf, "losses");
        }
    }
    SECTION("in place: the gradient replaces the logits") {
        std::vector<S> z = x;
        logitkit::loss_outputs<S, 2> out;
        out.grad = logitkit::tensor_view<S, 2>(z.data(), {n, c});
        std::vector<float> gradf(x.size());
        logitkit::loss_outputs<float, 2> outf;
        outf.grad = logitkit::tensor_view<float, 2>(gradf.data(), {n, c});
        const logitkit::tensor_view<const std::int64_t, 1> tv(t.data(), {n});
        const double got = logitkit::cross_entropy(logitkit::tensor_view<const S, 2>(z.data(), {n, c}), tv, {}, out);
        const double want = logitkit::cross_entropy(logitkit::tensor_view<const float, 2>(xf.data(), {n, c}), tv, {}, outf);
        CHECK(got == want);
        expect_rounded_from<S, 2>(z, gradf, "in-place grad");
    }
    SECTION("errors are reported on the caller's views, before anything is written") {
        std::vector<S> buf(x.size() + 10);
        logitkit::loss_outputs<S, 2> out;
        out.grad = logitkit::tensor_view<S, 2>(buf.data() + 3, {n, c});
        out.losses = logitkit::tensor_view<S, 1>(buf.data(), {n});  // overlaps grad
        const std::vector<S> before = buf;
        const logitkit::tensor_view<const std::int64_t, 1> tv(t.data(), {n});
        CHECK_THROWS_WITH(logitkit::cross_entropy(logitkit::tensor_view<const S, 2>(x.data(), {n, c}), tv, {}, out),
                          Catch::Matchers::Contains("outputs.losses") && Catch::Matchers::Contains("outputs.grad"));
        CHECK(std::memcmp(buf.data(), before.data(), buf.size() * sizeof(S)) == 0);
        std::vector<std::int64_t> bad = t;
        bad[4] = c;
        std::vector<S> g(x.size(), S(7.0f));
        logitkit::loss_outputs<S, 2> og;
        og.grad = logitkit::tensor_view<S, 2>(g.data(), {n, c});
        CHECK_THROWS_WITH(logitkit::cross_entropy(logitkit::tensor_view<const S, 2>(x.data(), {n, c}),
                                                  logitkit::tensor_view<const std::int64_t, 1>(bad.data(), {n}), {}, og),
                          Catch::Matchers::Contains("target"));
        for (S v : g) CHECK(v.bits == S(7.0f).bits);
    }
}

TEMPLATE_TEST_CASE("bfloat16 / float16: softmax and log_softmax are the float kernels on the widened input, "
                   "rounded once, for contiguous and strided lines",
                   "[reduced]", bfloat16, float16) {
    // The loads and stores that convert in registers, the scratch of a line's exponentials and
    // the widening of strided lines must not change a bit of the float kernel's result: lines of
    // every length class (one batch, short, long, several pieces of the group), groups of 8 and
    // a partial group, lines of each exp_mode (unshifted, shifted, -inf, NaN, all equal), and
    // causal prefixes of every length.
    using S = TestType;
    const index_t lines = 19;
    rng r(seed_for(1010));
    for (index_t n : {1, 3, 16, 17, 100, 256, 257, 600, 1000, 4099}) {
        const auto count = static_cast<std::size_t>(lines * n);
        std::vector<float> xw(count);
        std::vector<S> xs(count), xt(count);
        for (index_t l = 0; l < lines; ++l)
            for (index_t j = 0; j < n; ++j) {
                const double spread = l % 4 == 1 ? 200 : 6;
                float v = l == 5 ? 1.5f : static_cast<float>(r.uniform(-spread, spread));
                if (l % 7 == 3 && j == n / 2) v = -std::numeric_limits<float>::infinity();
                if (l == 9 && j == n - 1) v = std::numeric_limits<float>::quiet_NaN();
                const auto i = static_cast<std::size_t>(l * n + j);
                xs[i] = S(v);
                xw[i] = static_cast<float>(xs[i]);
                xt[static_cast<std::size_t>(j * lines + l)] = xs[i];
            }
        const logitkit::tensor_view<const float, 2>::extents shape{lines, n}, transposed{1, lines};
        using in_f = logitkit::tensor_view<const float, 2>;
        using in_s = logitkit::tensor_view<const S, 2>;
        using out_f = logitkit::tensor_view<float, 2>;
        using out_s = logitkit::tensor_view<S, 2>;
        for (int c = 0; c < 8; ++c) {
            const bool log = c & 1, causal = c & 4;
            logitkit::softmax_options o;
            o.temperature = c & 2 ? 0.7 : 1.0;
            // Causal lines keep prefixes of every length, none in the first lines when n < 19.
            o.causal = causal;
            o.causal_offset = n - lines;
            INFO((log ? "log_softmax" : "softmax") << " n " << n << " temperature " << o.temperature
                                                   << (causal ? " causal" : ""));
            const auto run = [&](auto x, auto y) {
                if (log)
                    logitkit::log_softmax(x, y, -1, o);
                else
                    logitkit::softmax(x, y, -1, o);
            };
            std::vector<float> want(count), got_f(count);
            std::vector<S> got(count);
            run(in_f(xw.data(), shape), out_f(want.data(), shape));

            run(in_s(xs.data(), shape), out_s(got.data(), shape));
            expect_rounded_from<S, 2>(got, want, "stored as S, contiguous");

            // In place: each line is read before its output overwrites it (softmax's exponentials
            // go to scratch).
            std::vector<S> z = xs;
            run(in_s(z.data(), shape), out_s(z.data(), shape));
            expect_rounded_from<S, 2>(z, want, "stored as S, in place");

            run(in_f(xw.data(), shape), out_s(got.data(), shape));
            expect_rounded_from<S, 2>(got, want, "float input, output stored as S");

            run(in_s(xs.data(), shape), out_f(got_f.data(), shape));
            CHECK(std::memcmp(got_f.data(), want.data(), count * sizeof(float)) == 0);

            // A float NaN whose payload fills its low half too: rounded without the NaN test it
            // would carry into the sign bit, so its line's outputs (NaN, with its payload) show
            // whether each store tested for NaN. Inside the line, where the line's maximum and
            // minimum may drop it, so that only the line's NaN sum tells.
            std::vector<float> xn = xw, want_n(count);
            const std::uint32_t full_payload = 0x7fffffffu;
            std::memcpy(&xn[static_cast<std::size_t>(11 * n + n / 3)], &full_payload, sizeof full_payload);
            run(in_f(xn.data(), shape), out_f(want_n.data(), shape));
            run(in_f(xn.data(), shape), out_s(got.data(), shape));
            expect_rounded_from<S, 2>(got, want_n, "float input with a NaN of full payload, output stored as S");

            // Strided causal lines run in place on a masked line's scratch, where float's
            // contiguous lines run out of place: other bits, within the bound tested above.
            if (causal) continue;
            std::vector<S> got_t(count);
            run(in_s(xt.data(), shape, transposed), out_s(got_t.data(), shape, transposed));
            for (index_t l = 0; l < lines; ++l)
                for (index_t j = 0; j < n; ++j)
                    got[static_cast<std::size_t>(l * n + j)] = got_t[static_cast<std::size_t>(j * lines + l)];
            expect_rounded_from<S, 2>(got, want, "stored as S, strided lines");
        }
    }
}

TEMPLATE_TEST_CASE("bfloat16 / float16: gumbel_softmax and its backward are the float kernels, rounded once",
                   "[reduced][gumbel]", bfloat16, float16) {
    using S = TestType;
    const index_t n = 5, c = 33;
    rng r(seed_for(1010));
    std::vector<S> x(static_cast<std::size_t>(n * c)), dy(x.size());
    for (auto& v : x) v = S(static_cast<float>(r.uniform(-4, 4)));
    for (auto& v : dy) v = S(static_cast<float>(r.uniform(-1, 1)));
    std::vector<float> xf(x.size()), dyf(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        xf[i] = static_cast<float>(x[i]);
        dyf[i] = static_cast<float>(dy[i]);
    }
    for (bool hard : {false, true}) {
        logitkit::gumbel_softmax_options o;
        o.tau = 0.7;
        o.hard = hard;
        std::vector<S> y(x.size()), ys(x.size()), dx(x.size()), noise(x.size());
        std::vector<float> yf(x.size()), ysf(x.size()), dxf(x.size()), noisef(x.size());
        logitkit::gumbel_softmax(logitkit::tensor_view<const S, 2>(x.data(), {n, c}), logitkit::tensor_view<S, 2>(y.data(), {n, c}),
                                 logitkit::tensor_view<S, 2>(ys.data(), {n, c}), logitkit::philox4x32(42, 0), o);
        logitkit::gumbel_softmax(logitkit::tensor_view<const float, 2>(xf.data(), {n, c}),
                                 logitkit::tensor_view<float, 2>(yf.data(), {n, c}),
                                 logitkit::tensor_view<float, 2>(ysf.data(), {n, c}), logitkit::philox4x32(42, 0), o);
        expect_rounded_from<S, 2>(y, yf, hard ? "hard y" : "y");
        expect_rounded_from<S, 2>(ys, ysf, "y_soft");
        // The backward on the rounded soft sample against the float kernel on the same values.
        std::vector<float> ysw(x.size());
        for (std::size_t i = 0; i < x.size(); ++i) ysw[i] = static_cast<float>(ys[i]);
        logitkit::gumbel_softmax_backward(logitkit::tensor_view<const S, 2>(ys.data(), {n, c}),
                                          logitkit::tensor_view<const S, 2>(dy.data(), {n, c}),
                                          logitkit::tensor_view<S, 2>(dx.data(), {n, c}), o);
        logitkit::gumbel_softmax_backward(logitkit::tensor_view<const float, 2>(ysw.data(), {n, c}),
                                          logitkit::tensor_view<const float, 2>(dyf.data(), {n, c}),
                                          logitkit::tensor_view<float, 2>(dxf.data(), {n, c}), o);
        expect_rounded_from<S, 2>(dx, dxf, "dx");
        logitkit::gumbel_noise(logitkit::tensor_view<S, 2>(noise.data(), {n, c}), logitkit::philox4x32(7, 0));
        logitkit::gumbel_noise(logitkit::tensor_view<float, 2>(noisef.data(), {n, c}), logitkit::philox4x32(7, 0));
        expect_rounded_from<S, 2>(noise, noisef, "noise");
    }
    std::vector<S> y(x.size(), S(3.0f));
    logitkit::gumbel_softmax_options bad;
    bad.tau = 0;
    CHECK_THROWS_WITH(logitkit::gumbel_softmax(logitkit::tensor_view<const S, 2>(x.data(), {n, c}),
                                               logitkit::tensor_view<S, 2>(y.data(), {n, c}), logitkit::philox4x32(1, 0), bad),
                      Catch::Matchers::Contains("tau"));
    for (S v : y) CHECK(v.bits == S(3.0f).bits);
}
