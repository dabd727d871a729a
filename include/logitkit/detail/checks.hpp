// logitkit — argument validation shared by the public functions.
// SPDX-License-Identifier: MIT
//
// Every check runs before any output is written, so a call that throws leaves its outputs as
// they were.
#pragma once

#include <algorithm>
#include <utility>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

#include "../error_handler.hpp"
#include "../tensor_view.hpp"

namespace logitkit {
namespace detail {

// Errors go through raise_error (error_handler.hpp): std::invalid_argument / std::out_of_range
// with exceptions, the error handler without.
[[noreturn]] inline void fail_argument(const char* fn, const std::string& what) {
    raise_error(error_kind::invalid_argument, std::string("logitkit::") + fn + ": " + what);
}

template <std::size_t R>
int normalize_axis(const char* fn, int axis) {
    const int rank = static_cast<int>(R);
    if (axis < -rank || axis >= rank)
        raise_error(error_kind::out_of_range,
                    std::string("logitkit::") + fn + ": axis = " + std::to_string(axis) +
                        " is out of range for a tensor of rank " + std::to_string(rank) + "; expected " +
                        std::to_string(-rank) + " <= axis < " + std::to_string(rank));
    return axis < 0 ? axis + rank : axis;
}

template <std::size_t R>
void check_shape(const char* fn, const char* name, const extents_type<R>& got, const char* ref_name,
                 const extents_type<R>& expected, const char* expectation = nullptr) {
    if (got != expected)
        fail_argument(fn, std::string(name) + ".shape = " + format_extents(got) + " does not match " + ref_name +
                              "; expected " + format_extents(expected) +
                              (expectation ? std::string(" (") + expectation + ")" : std::string()));
}

template <class T, std::size_t R>
void check_data(const char* fn, const char* name, const tensor_view<T, R>& v) {
    if (v.data() == nullptr && v.size() != 0)
        fail_argument(fn, std::string(name) + ".data() is null but " + name + ".size() = " + std::to_string(v.size()) +
                              "; expected non-null data for a non-empty tensor");
}

/// A temperature-like option (temperature, tau) as the element type: finite and > 0 both as
/// given and once rounded.
template <class T>
T checked_temperature(const char* fn, double temperature, const char* name = "temperature") {
    const T t = static_cast<T>(temperature);
    if (!(std::isfinite(temperature) && temperature > 0 && std::isfinite(t) && t > 0)) {
        std::ostringstream s;
        s.precision(17);
        s << "options." << name << " = " << temperature << "; expected a finite " << name << " > 0"
          << (std::isfinite(temperature) && temperature > 0 ? " that is representable in the element type" : "");
        fail_argument(fn, s.str());
    }
    return t;
}

/// First and one-past-last byte a non-empty view touches.
template <class T, std::size_t R>
std::pair<std::uintptr_t, std::uintptr_t> byte_span(const tensor_view<T, R>& v) {
    index_type lo = 0, hi = 0;
    for (std::size_t k = 0; k < R; ++k) {
        const index_type reach = (v.extent(k) - 1) * v.stride(k);
        (reach < 0 ? lo : hi) += reach;
    }
    const auto base = reinterpret_cast<std::uintptr_t>(v.data());
    return {base + static_cast<std::uintptr_t>(lo * index_type(sizeof(T))),
            base + static_cast<std::uintptr_t>((hi + 1) * index_type(sizeof(T)))};
}

/// An output may be exactly an input (in place) when `allow_same`; any other sharing of memory is
/// rejected. Spans are compared conservatively: interleaved views that share a span are rejected.
template <class T, std::size_t R, class U, std::size_t S>
void check_no_overlap(const char* fn, const char* out_name, const tensor_view<T, R>& out, const char* in_name,
                      const tensor_view<U, S>& in, bool allow_same) {
    if (out.size() == 0 || in.size() == 0) return;
    if constexpr (R == S) {
        const bool same = static_cast<const void*>(out.data()) == static_cast<const void*>(in.data()) &&
                          out.shape() == in.shape() && out.strides() == in.strides();
        if (same && allow_same) return;
    }
    const auto a = byte_span(out);
    const auto b = byte_span(in);
    if (a.first < b.second && b.first < a.second)
        fail_argument(fn, std::string(out_name) + " overlaps " + in_name + "; expected " + out_name +
                              (allow_same ? std::string(" to be exactly ") + in_name + " (in place) or" : std::string()) +
                              " to share no memory with " + in_name);
}

/// Rejects an output in which two indices reach the same element (e.g. a zero stride), which
/// would make the result depend on the order of writes.
template <class T, std::size_t R>
void check_distinct_elements(const char* fn, const char* name, const tensor_view<T, R>& v) {
    if (v.size() <= 1) return;
    std::array<std::pair<index_type, index_type>, R> dims{};  // (|stride|, extent)
    std::size_t count = 0;
    for (std::size_t k = 0; k < R; ++k)
        if (v.extent(k) > 1) dims[count++] = {v.stride(k) < 0 ? -v.stride(k) : v.stride(k), v.extent(k)};
    for (std::size_t i = 1; i < count; ++i)  // insertion sort: at most 8 entries
        for (std::size_t j = i; j > 0 && dims[j] < dims[j - 1]; --j) std::swap(dims[j], dims[j - 1]);
    index_type reach = 0;  // largest offset reachable by the dimensions seen so far
    for (std::size_t i = 0; i < count; ++i) {
        if (dims[i].first <= reach)
            fail_argument(fn, std::string(name) + " has strides " + format_extents(v.strides()) + " for shape " +
                                  format_extents(v.shape()) +
                                  " that map several indices to one element; expected an output whose elements are "
                                  "distinct");
        reach += dims[i].first * (dims[i].second - 1);
    }
}

}  // namespace detail
}  // namespace logitkit
