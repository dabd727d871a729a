// logitkit — pieces shared by the loss functions (nll_loss, cross_entropy): argument checks,
// target validation and sample iteration.
// SPDX-License-Identifier: MIT
//
// Every check here runs before any output is written, so a call that throws leaves its outputs as
// they were.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../tensor_view.hpp"
#include "checks.hpp"
#include "simd.hpp"

namespace logitkit {
namespace detail {

/// The shape of a tensor with dimension `axis` removed.
template <std::size_t R>
extents_type<R - 1> drop_axis(const extents_type<R>& e, std::size_t axis) noexcept {
    extents_type<R - 1> out{};
    for (std::size_t k = 0, j = 0; k < R; ++k)
        if (k != axis) out[j++] = e[k];
    return out;
}

/// Strides of a per-sample view (rank R-1) seen as a rank-R view with stride 0 on `axis`.
template <std::size_t R>
extents_type<R> insert_axis(const extents_type<R - 1>& e, std::size_t axis) noexcept {
    extents_type<R> out{};
    for (std::size_t k = 0, j = 0; k < R; ++k) out[k] = (k == axis) ? index_type(0) : e[j++];
    return out;
}

/// A view counts as given unless it is default-constructed (null data, every extent 0).
template <class T, std::size_t R>
bool is_given(const tensor_view<T, R>& v) noexcept {
    return v.data() != nullptr || v.shape() != extents_type<R>{};
}

/// Calls f(idx) for every index of `shape` in row-major order; nothing when the shape is empty.
template <std::size_t R, class F>
void for_each_index(const extents_type<R>& shape, F&& f) {
    for (std::size_t k = 0; k < R; ++k)
        if (shape[k] == 0) return;
    extents_type<R> idx{};
    for (;;) {
        f(static_cast<const extents_type<R>&>(idx));
        std::size_t k = R;
        for (;;) {
            if (k == 0) return;
            --k;
            if (++idx[k] < shape[k]) break;
            idx[k] = 0;
        }
    }
}

/// Sets every element of v to `value`.
template <class T, std::size_t R>
void fill(const tensor_view<T, R>& v, T value) {
    if (v.size() == 0) return;
    if (v.is_contiguous()) {
        std::fill(v.data(), v.data() + v.size(), value);
        return;
    }
    for_each_index<R>(v.shape(), [&](const extents_type<R>& idx) { v[idx] = value; });
}

/// Sum of doubles with Neumaier's compensation; an infinite or NaN term makes the sum that value.
struct neumaier_sum {
    double s = 0, c = 0;
    void add(double v) noexcept {
        const double t = s + v;
        if (!std::isfinite(t)) {
            s = t;
            c = 0;
            return;
        }
        c += std::fabs(s) >= std::fabs(v) ? (s - t) + v : (v - t) + s;
        s = t;
    }
    double value() const noexcept { return std::isfinite(s) ? s + c : s; }
};

template <class V>
std::string value_string(V v) {
    std::ostringstream s;
    s.precision(17);
    s << v;
    return s.str();
}

inline void check_label_smoothing(const char* fn, double eps) {
    if (!(eps >= 0 && eps <= 1))
        fail_argument(fn, "options.label_smoothing = " + value_string(eps) + "; expected a value in [0, 1]");
}

inline void check_z_loss(const char* fn, double z) {
    if (!(std::isfinite(z) && z >= 0))
        fail_argument(fn, "options.z_loss = " + value_string(z) + "; expected a finite coefficient >= 0");
}

/// Per-class weights copied to contiguous memory (empty when none were given), with their sum.
template <class T>
struct class_weights {
    std::vector<T> w;
    double sum = 0;
    const T* data() const noexcept { return w.empty() ? nullptr : w.data(); }
    bool given() const noexcept { return !w.empty(); }
    double at(std::int64_t c) const noexcept {
        return w.empty() ? 1.0 : static_cast<double>(w[static_cast<std::size_t>(c)]);
    }
};

/// Checks options.weight (empty, or one weight per class) and copies it. Without weights the sum
/// is the number of classes.
template <class T>
class_weights<T> read_weights(const char* fn, const tensor_view<const T, 1>& weight, index_type classes) {
    class_weights<T> cw;
    if (weight.size() == 0) {
        cw.sum = static_cast<double>(classes);
        return cw;
    }
    check_shape<1>(fn, "options.weight", weight.shape(), "the number of classes (one weight per class)",
                   extents_type<1>{classes});
    check_data(fn, "options.weight", weight);
    cw.w.resize(static_cast<std::size_t>(classes));
    for (index_type c = 0; c < classes; ++c) {
        cw.w[static_cast<std::size_t>(c)] = weight(c);
        cw.sum += static_cast<double>(weight(c));
    }
    return cw;
}

/// What the mean reduction divides by, from the class-index targets: the sum of the weights of the
/// targets that are not ignored (their count without weights), as PyTorch's nll_loss.
struct target_scan {
    double weight_total = 0;
    index_type valid = 0;
};

/// Whether c is in [0, classes): one comparison, without a branch, so that a loop of them takes
/// vectors.
inline bool is_class_index(std::int64_t c, index_type classes) noexcept {
    return static_cast<std::uint64_t>(c) < static_cast<std::uint64_t>(classes);
}

/// Checks every class index: each is in [0, classes) or equals ignore_index. Reports the first
/// offending target (in row-major order) with its position.
template <class TT, std::size_t S, class T>
target_scan scan_class_targets(const char* fn, const tensor_view<TT, S>& targets, index_type classes,
                               std::int64_t ignore_index, const class_weights<T>& cw) {
    target_scan r;
    neumaier_sum total;
    // Contiguous targets in one loop over memory; at a bad one, the indexed loop below (the same
    // row-major order) starts again and reports it. Without weights the total is the count, and
    // the loop has no branch, so that it takes vectors (8x21x4096: 3% of the time, one target
    // after another); with weights it stops at the first bad target.
    if (targets.is_contiguous() && !cw.given()) {
        const std::int64_t* t = targets.data();
        const index_type n = targets.size();
        index_type valid = 0;
        int bad = 0;
        for (index_type i = 0; i < n; ++i) {
            const std::int64_t c = t[i];
            const int counted = c != ignore_index;
            valid += counted;
            bad |= counted & static_cast<int>(!is_class_index(c, classes));
        }
        if (bad == 0) {
            r.valid = valid;
            r.weight_total = static_cast<double>(valid);
            return r;
        }
    } else if (targets.is_contiguous()) {
        const std::int64_t* t = targets.data();
        const index_type n = targets.size();
        index_type i = 0;
        for (; i < n; ++i) {
            const std::int64_t c = t[i];
            if (c == ignore_index) continue;
            if (!is_class_index(c, classes)) break;
            ++r.valid;
            total.add(cw.at(c));
        }
        if (i == n) {
            r.weight_total = total.value();
            return r;
        }
        r = target_scan{};
        total = neumaier_sum{};
    }
    for_each_index<S>(targets.shape(), [&](const extents_type<S>& idx) {
        const std::int64_t t = targets[idx];
        if (t == ignore_index) return;
        if (!is_class_index(t, classes))
            fail_argument(
                fn, "targets" + format_extents(idx) + " = " + std::to_string(t) + " is not a class index in [0, " +
                        std::to_string(classes) + ") nor options.ignore_index (" + std::to_string(ignore_index) +
                        "); expected 0 <= target < " + std::to_string(classes) + " or target == options.ignore_index");
        ++r.valid;
        total.add(cw.at(t));
    });
    r.weight_total = cw.given() ? total.value() : static_cast<double>(r.valid);
    return r;
}

/// Checks that every class probability is >= 0 (NaN is rejected too).
template <class Arch, class T, std::size_t R>
void scan_probabilities(const char* fn, const tensor_view<const T, R>& q) {
    if (q.size() == 0) return;
    bool ok = true;
    if (q.is_contiguous()) {
        using V = batch<T, Arch>;
        constexpr index_type W = V::size;
        const T* p = q.data();
        const index_type n = q.size();
        const V zero(T(0));
        auto all_ok = zero >= zero;  // every lane true
        index_type i = 0;
        for (; i + W <= n; i += W) all_ok = all_ok & (simd::load<V>(p + i) >= zero);
        if (i < n) all_ok = all_ok & (simd::load_partial<V>(p + i, static_cast<std::size_t>(n - i), T(0)) >= zero);
        ok = simd::all(all_ok);
    } else {
        for_each_index<R>(q.shape(), [&](const extents_type<R>& idx) { ok = ok && q[idx] >= T(0); });
    }
    if (ok) return;
    for_each_index<R>(q.shape(), [&](const extents_type<R>& idx) {
        const T v = q[idx];
        if (!(v >= T(0)))
            fail_argument(fn, "targets" + format_extents(idx) + " = " + value_string(v) +
                                  " is not a probability; expected class probabilities >= 0");
    });
}

/// Turns the pointer of a view into the byte pointer the sample iteration (for_each_outer) uses.
template <class T>
char* byte_pointer(T* p) noexcept {
    return reinterpret_cast<char*>(const_cast<std::remove_const_t<T>*>(p));
}

}  // namespace detail
}  // namespace logitkit
