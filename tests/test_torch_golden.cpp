// Special-value semantics checked against results recorded once from PyTorch
// (tests/data/gen_torch_special.py writes tests/data/torch_special_cases.inc). PyTorch is not
// needed to run this test. Both logitkit and the test reference (reference.hpp) are compared, so
// the reference's special-value rules are themselves confirmed against PyTorch.
#include "test_support.hpp"

using namespace lk_test;

#define LK_INF (std::numeric_limits<double>::infinity())
#define LK_NAN (std::numeric_limits<double>::quiet_NaN())

namespace {

struct golden_case {
    const char* op;
    int bits;
    double temperature;
    std::vector<double> x;  // y for the backward ops
    std::vector<double> dy;
    std::vector<double> expected;
};

const std::vector<golden_case>& golden_cases() {
    static const std::vector<golden_case> cases = {
#include "data/torch_special_cases.inc"
    };
    return cases;
}

/// Both sides are approximations: allow 16 ulp of T plus the documented bound, and a few
/// subnormal spacings; NaN and infinities must match exactly.
template <class T>
bool agrees(ld got_wide, double expected, bool log_like, std::string& why) {
    // The reference is long double: compare what it gives once rounded to T, as logitkit must.
    const ld got = static_cast<ld>(static_cast<T>(got_wide));
    std::ostringstream os;
    os << "got " << fmt<T>(got) << ", PyTorch " << fmt<T>(expected);
    why = os.str();
    if (std::isnan(expected)) return std::isnan(got);
    if (std::isnan(got)) return false;
    if (std::isinf(expected)) return got == static_cast<ld>(expected);
    if (std::isinf(static_cast<T>(got))) return false;
    const ld e = static_cast<ld>(expected);
    ld tol = 16 * ulp_of<T>(e) + 4 * static_cast<ld>(vals<T>::true_min());
    tol += log_like ? 2 * log_allowed<T>(e) : 2 * softmax_allowed<T>(e);
    return std::fabs(got - e) <= tol;
}

template <class T>
void check_case(const golden_case& c, std::size_t index) {
    const std::string op = c.op;
    const index_t n = static_cast<index_t>(c.x.size());
    std::vector<T> x(c.x.begin(), c.x.end()), dy(c.dy.begin(), c.dy.end());
    dense<T> xd({n});
    xd.data = x;
    dense<T> dyd({static_cast<index_t>(dy.size())});
    dyd.data = dy;
    std::vector<T> out(op == "logsumexp" ? 1 : x.size(), T(-12345));
    logitkit::tensor_view<const T, 1> xv(x.data(), {n});
    logitkit::tensor_view<T, 1> ov(out.data(), {static_cast<index_t>(out.size())});
    dense<ld> ref;
    logitkit::softmax_options opts;
    opts.temperature = c.temperature;
    bool log_like = true;
    if (op == "softmax") {
        logitkit::softmax(xv, ov, 0, opts);
        ref = lk_ref::softmax(xd, 0, c.temperature);
        log_like = false;
    } else if (op == "log_softmax") {
        logitkit::log_softmax(xv, ov, 0, opts);
        ref = lk_ref::log_softmax(xd, 0, c.temperature);
    } else if (op == "logsumexp") {
        logitkit::logsumexp(xv, ov, 0);
        ref = lk_ref::logsumexp(xd, 0);
    } else if (op == "softmax_backward") {
        logitkit::tensor_view<const T, 1> dyv(dy.data(), {n});
        logitkit::softmax_backward(xv, dyv, ov, 0);
        ref = lk_ref::softmax_backward(xd, dyd, 0);
    } else if (op == "log_softmax_backward") {
        logitkit::tensor_view<const T, 1> dyv(dy.data(), {n});
        logitkit::log_softmax_backward(xv, dyv, ov, 0);
        ref = lk_ref::log_softmax_backward(xd, dyd, 0);
    } else {
        FAIL("unknown op in the golden data: " << op);
    }
    REQUIRE(c.expected.size() == out.size());
    REQUIRE(static_cast<std::size_t>(ref.size()) == out.size());
    std::ostringstream desc;
    desc << "golden case " << index << ": " << op << "<" << vals<T>::name() << "> T=" << c.temperature << " x = [";
    for (std::size_t i = 0; i < x.size(); ++i) desc << (i ? ", " : "") << x[i];
    desc << "]";
    if (!dy.empty()) {
        desc << " dy = [";
        for (std::size_t i = 0; i < dy.size(); ++i) desc << (i ? ", " : "") << dy[i];
        desc << "]";
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
        std::string why;
        const bool lib_ok = agrees<T>(static_cast<ld>(out[i]), c.expected[i], log_like, why);
        if (!lib_ok) FAIL_CHECK(desc.str() << "\n  logitkit element " << i << ": " << why);
        const bool ref_ok = agrees<T>(ref.data[i], c.expected[i], log_like, why);
        if (!ref_ok) FAIL_CHECK(desc.str() << "\n  test reference element " << i << ": " << why);
    }
}

}  // namespace

TEST_CASE("special values agree with PyTorch", "[golden][special]") {
    const auto& cases = golden_cases();
    REQUIRE(cases.size() > 100);
    std::size_t f32 = 0, f64 = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        if (cases[i].bits == 32) {
            check_case<float>(cases[i], i);
            ++f32;
        } else {
            check_case<double>(cases[i], i);
            ++f64;
        }
    }
    CHECK(f32 > 0);
    CHECK(f64 > 0);
}
