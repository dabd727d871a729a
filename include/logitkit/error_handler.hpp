// logitkit — where argument errors go: exceptions, or a handler in builds without exceptions.
// SPDX-License-Identifier: MIT
//
// With exceptions enabled (the default), a bad argument throws std::invalid_argument or
// std::out_of_range, as documented for each function; the handler below is not used.
//
// Without exceptions (-fno-exceptions, detected from the compiler; or LOGITKIT_NO_EXCEPTIONS
// defined before the first logitkit include, to get this behaviour in a build with exceptions),
// the error goes to the error handler instead:
//
//   handler(kind, message)
//     kind     "invalid_argument" or "out_of_range": the exception that would have been thrown
//     message  the exception's what(), e.g. "logitkit::softmax: axis = 2 is out of range ..."
//
// The default handler prints "logitkit: <kind>: <message>" to stderr and calls std::abort().
// logitkit::set_error_handler() replaces it for the whole program. A handler must not return
// (it may abort, exit, or terminate the thread's work some other way); if it returns anyway,
// logitkit prints a note and calls std::abort(), so that no kernel ever runs on arguments that
// failed a check. As with exceptions, nothing has been written to any output when it is called.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#if !defined(LOGITKIT_NO_EXCEPTIONS) && !defined(__cpp_exceptions) && !defined(__EXCEPTIONS) && !defined(_CPPUNWIND)
#define LOGITKIT_NO_EXCEPTIONS 1
#endif

#ifndef LOGITKIT_NO_EXCEPTIONS
#include <stdexcept>
#endif

namespace logitkit {

/// An error handler: receives the kind ("invalid_argument" or "out_of_range") and the message.
/// It must not return.
using error_handler = void (*)(const char* kind, const char* message);

namespace detail {

/// Prints "logitkit: <kind>: <message>" to stderr and aborts.
[[noreturn]] inline void default_error_handler(const char* kind, const char* message) noexcept {
    std::fprintf(stderr, "logitkit: %s: %s\n", kind, message);
    std::fflush(stderr);
    std::abort();
}

/// The installed handler; null means the default. One object per program (an inline variable),
/// constant-initialised, so it may be set before main() and read from any thread.
inline std::atomic<error_handler> installed_error_handler{nullptr};

}  // namespace detail

/// Installs `handler` for the whole program and returns the previous one. nullptr restores the
/// default handler. Thread-safe. Only used when exceptions are disabled (see above).
inline error_handler set_error_handler(error_handler handler) noexcept {
    const error_handler previous = detail::installed_error_handler.exchange(handler, std::memory_order_acq_rel);
    return previous != nullptr ? previous : &detail::default_error_handler;
}

/// The handler in use: the installed one, or the default. Never null. Thread-safe.
inline error_handler get_error_handler() noexcept {
    const error_handler h = detail::installed_error_handler.load(std::memory_order_acquire);
    return h != nullptr ? h : &detail::default_error_handler;
}

/// True when errors go to the handler (no exceptions), false when they are thrown.
constexpr bool errors_use_handler() noexcept {
#ifdef LOGITKIT_NO_EXCEPTIONS
    return true;
#else
    return false;
#endif
}

namespace detail {

enum class error_kind { invalid_argument, out_of_range };

/// Every argument error of logitkit ends here: throws std::invalid_argument / std::out_of_range,
/// or, without exceptions, calls the error handler.
[[noreturn]] inline void raise_error(error_kind kind, const std::string& message) {
#ifndef LOGITKIT_NO_EXCEPTIONS
    if (kind == error_kind::out_of_range) throw std::out_of_range(message);
    throw std::invalid_argument(message);
#else
    const char* const name = kind == error_kind::out_of_range ? "out_of_range" : "invalid_argument";
    get_error_handler()(name, message.c_str());
    std::fprintf(stderr, "logitkit: the error handler returned after \"%s: %s\"; aborting\n", name, message.c_str());
    std::fflush(stderr);
    std::abort();
#endif
}

}  // namespace detail
}  // namespace logitkit
