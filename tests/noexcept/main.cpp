// logitkit built with -fno-exceptions: argument errors go to the error handler.
//
//   logitkit_noexcept <case>
//
// Each case installs a handler (except "default" and "returns"), makes one bad call, and the
// handler checks the kind and the exact message it receives and that no output was written, then
// exits: 0 when everything matched, 3 when not. Reaching the end of main() means no error was
// reported (exit code 2). tests/noexcept/run_noexcept.cmake runs every case and also checks the
// default handler (message on stderr, then abort) and a handler that returns (logitkit aborts).
// SPDX-License-Identifier: MIT
#include <logitkit/logitkit.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__cpp_exceptions) || defined(__EXCEPTIONS)
#error "this test must be compiled with -fno-exceptions"
#endif
static_assert(logitkit::errors_use_handler(), "without exceptions, errors must go to the handler");

namespace {

const char* g_case = "";
const char* g_expected_kind = "";
const char* g_expected_message = "";
const float* g_watch = nullptr;  // output that must be untouched when the handler runs
std::size_t g_watch_size = 0;
constexpr float sentinel = 77.5f;

void checking_handler(const char* kind, const char* message) {
    std::printf("handler called: kind=%s message=%s\n", kind, message);
    bool ok = true;
    if (std::strcmp(kind, g_expected_kind) != 0) {
        std::printf("FAILED [%s]: kind is \"%s\", expected \"%s\"\n", g_case, kind, g_expected_kind);
        ok = false;
    }
    if (std::strcmp(message, g_expected_message) != 0) {
        std::printf("FAILED [%s]: message is\n  \"%s\"\nexpected\n  \"%s\"\n", g_case, message, g_expected_message);
        ok = false;
    }
    for (std::size_t i = 0; i < g_watch_size; ++i)
        if (g_watch[i] != sentinel) {
            std::printf("FAILED [%s]: output element %zu was written before the error was reported\n", g_case, i);
            ok = false;
            break;
        }
    if (ok) std::printf("PASSED [%s]\n", g_case);
    std::fflush(stdout);
    std::exit(ok ? 0 : 3);
}

void returning_handler(const char* kind, const char* message) {
    std::printf("returning handler called: kind=%s message=%s\n", kind, message);
    std::fflush(stdout);
}

void expect(const char* kind, const char* message) {
    g_expected_kind = kind;
    g_expected_message = message;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s <case>\n", argv[0]);
        return 1;
    }
    g_case = argv[1];
    const std::string c = g_case;

    // The default handler until one is installed; set_error_handler returns the previous one.
    if (logitkit::get_error_handler() == nullptr) {
        std::printf("FAILED: get_error_handler() returned null\n");
        return 3;
    }
    if (c != "default") {
        const logitkit::error_handler previous =
            logitkit::set_error_handler(c == "returns" ? &returning_handler : &checking_handler);
        const logitkit::error_handler now = logitkit::get_error_handler();
        if (previous == nullptr || now != (c == "returns" ? &returning_handler : &checking_handler)) {
            std::printf("FAILED: set_error_handler / get_error_handler do not round-trip\n");
            return 3;
        }
    }

    float x[6] = {1, 2, 3, 4, 5, 6};
    float y[12];
    for (float& v : y) v = sentinel;
    g_watch = y;
    g_watch_size = 12;
    const logitkit::tensor_view<const float, 2> xv(x, {2, 3});

    if (c == "axis" || c == "default" || c == "returns") {
        expect("out_of_range",
               "logitkit::softmax: axis = 2 is out of range for a tensor of rank 2; expected -2 <= axis < 2");
        logitkit::softmax(xv, logitkit::tensor_view<float, 2>(y, {2, 3}), 2);
    } else if (c == "shape") {
        expect("invalid_argument",
               "logitkit::log_softmax: y.shape = [3, 2] does not match x.shape; expected [2, 3]");
        logitkit::log_softmax(xv, logitkit::tensor_view<float, 2>(y, {3, 2}));
    } else if (c == "temperature") {
        expect("invalid_argument",
               "logitkit::softmax: options.temperature = -1; expected a finite temperature > 0");
        logitkit::softmax_options o;
        o.temperature = -1.0;
        logitkit::softmax(xv, logitkit::tensor_view<float, 2>(y, {2, 3}), -1, o);
    } else if (c == "overlap") {
        expect("invalid_argument",
               "logitkit::softmax: y overlaps x; expected y to be exactly x (in place) or to share no memory "
               "with x");
        const logitkit::tensor_view<const float, 2> in(y, {2, 3});
        g_watch_size = 0;  // y is also the input here
        logitkit::softmax(in, logitkit::tensor_view<float, 2>(y + 1, {2, 3}));
    } else if (c == "logsumexp") {
        expect("invalid_argument",
               "logitkit::logsumexp: out.shape = [2, 3] does not match x.shape with extent 1 on the axis; "
               "expected [2, 1]");
        logitkit::logsumexp(xv, logitkit::tensor_view<float, 2>(y, {2, 3}), 1);
    } else if (c == "backward") {
        expect("out_of_range",
               "logitkit::log_softmax_backward: axis = -3 is out of range for a tensor of rank 2; expected -2 "
               "<= axis < 2");
        logitkit::log_softmax_backward(xv, xv, logitkit::tensor_view<float, 2>(y, {2, 3}), -3);
    } else if (c == "null") {
        expect("invalid_argument",
               "logitkit::softmax_backward: dy.data() is null but dy.size() = 6; expected non-null data for a "
               "non-empty tensor");
        logitkit::softmax_backward(xv, logitkit::tensor_view<const float, 2>(nullptr, {2, 3}),
                                   logitkit::tensor_view<float, 2>(y, {2, 3}));
    } else if (c == "view") {
        expect("invalid_argument", "logitkit::tensor_view: shape[1] = -3; expected >= 0");
        const logitkit::tensor_view<float, 2> bad(y, {2, -3});
        (void)bad;
    } else if (c == "pool") {
        expect("invalid_argument", "logitkit::thread_pool: threads must be >= 1, got 0");
        logitkit::thread_pool bad(0);
        (void)bad;
    } else if (c == "valid") {
        // A valid call must not reach the handler.
        logitkit::softmax(xv, logitkit::tensor_view<float, 2>(y, {2, 3}));
        std::printf("PASSED [valid]: no error reported, y[0] = %.6f\n", static_cast<double>(y[0]));
        return y[0] > 0.0900f && y[0] < 0.0901f ? 0 : 3;  // softmax([1, 2, 3])[0] = 0.090031
    } else {
        std::fprintf(stderr, "unknown case '%s'\n", g_case);
        return 1;
    }
    std::printf("FAILED [%s]: the bad call returned without reporting an error\n", g_case);
    return 2;
}
