// Shared helpers for the logitkit tests: deterministic random data, strided buffers that build
// views with arbitrary layouts from a dense tensor, and element-wise comparison against the
// long double reference with a readable report of the worst element.
#pragma once

#include <logitkit/logitkit.hpp>
#include <logitkit/tensor_view.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <limits>
#include <numeric>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "reference.hpp"

namespace lk_test {

using lk_ref::dense;
using lk_ref::index_t;
using lk_ref::ld;
using lk_ref::shape_t;

// ---------------------------------------------------------------------------------------------
// Random numbers: splitmix64, fully specified here so the data is identical on every platform.
// ---------------------------------------------------------------------------------------------
class rng {
public:
    explicit rng(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }
    /// Uniform in [0, 1).
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    /// Uniform in [a, b).
    double uniform(double a, double b) { return a + (b - a) * uniform(); }
    /// Uniform integer in [0, n).
    std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next() % n; }
    bool chance(double p) { return uniform() < p; }

private:
    std::uint64_t state_;
};

/// A fixed seed per test, mixed with a case number so that cases differ but runs repeat.
inline std::uint64_t seed_for(std::uint64_t test_id, std::uint64_t case_id = 0) {
    return 0x6C6F676974ull ^ (test_id * 0x100000001B3ull) ^ (case_id * 0x9E3779B97F4A7C15ull);
}

// ---------------------------------------------------------------------------------------------
// Special values per element type.
// ---------------------------------------------------------------------------------------------
template <class T>
struct vals {
    static T inf() { return std::numeric_limits<T>::infinity(); }
    static T nan() { return std::numeric_limits<T>::quiet_NaN(); }
    static T max() { return std::numeric_limits<T>::max(); }
    static T min_normal() { return std::numeric_limits<T>::min(); }
    static T true_min() { return std::numeric_limits<T>::denorm_min(); }
    /// A subnormal input: 1e-40f for float, 5e-324 for double.
    static T denormal() { return std::is_same<T, float>::value ? static_cast<T>(1e-40f) : static_cast<T>(5e-324); }
    static const char* name() { return std::is_same<T, float>::value ? "float" : "double"; }
};

// ---------------------------------------------------------------------------------------------
// Error bounds from docs/api.md.
// ---------------------------------------------------------------------------------------------
template <class T>
struct bounds;
template <>
struct bounds<float> {
    static constexpr ld softmax_rel = 5e-7L;  // relative, outputs >= FLT_MIN
    static constexpr ld log_coef = 1e-6L;     // * max(1, |ref|): log_softmax, logsumexp
    static constexpr ld backward_coef = 1e-6L;  // * |y| * (|dy| + sum|dy*y|) (and the log analogue)
};
template <>
struct bounds<double> {
    static constexpr ld softmax_rel = 1e-14L;
    static constexpr ld log_coef = 1e-14L;
    static constexpr ld backward_coef = 1e-14L;
};

/// Distance of `got` from `ref` in units of the last place of T at ref's binade (normal range);
/// 0 for an exact zero, infinite for anything else where ref is 0.
template <class T>
long double ulps(T got, long double ref) {
    if (ref == 0) return got == 0 ? 0 : std::numeric_limits<long double>::infinity();
    const int e = std::ilogb(static_cast<T>(ref));
    return std::fabs(static_cast<long double>(got) - ref) / std::ldexp(1.0L, e - std::numeric_limits<T>::digits + 1);
}

/// softmax: relative bound for outputs >= the smallest normal; for subnormal outputs
/// |err| <= rel * ref + 2 * (smallest subnormal), i.e. two subnormal ulps on top of the relative
/// bound (the subnormal spacing makes a pure relative bound meaningless there).
template <class T>
ld softmax_allowed(ld ref) {
    ld a = bounds<T>::softmax_rel * std::fabs(ref);
    if (std::fabs(ref) < static_cast<ld>(vals<T>::min_normal())) a += 2 * static_cast<ld>(vals<T>::true_min());
    return a;
}

/// log_softmax and logsumexp: |err| <= coef * max(1, |ref|).
template <class T>
ld log_allowed(ld ref) {
    return bounds<T>::log_coef * std::max<ld>(1, std::fabs(ref));
}

// ---------------------------------------------------------------------------------------------
// Random data.
// ---------------------------------------------------------------------------------------------
enum class dist { mag10, mag100, mag1e4 };

inline const char* dist_name(dist d) {
    switch (d) {
        case dist::mag10: return "uniform(-10,10)";
        case dist::mag100: return "uniform(-100,100)";
        case dist::mag1e4: return "uniform(-1e4,1e4)";
    }
    return "?";
}
inline double dist_mag(dist d) {
    switch (d) {
        case dist::mag10: return 10;
        case dist::mag100: return 100;
        case dist::mag1e4: return 1e4;
    }
    return 1;
}
constexpr dist all_dists[] = {dist::mag10, dist::mag100, dist::mag1e4};

template <class T>
dense<T> random_dense(const shape_t& shape, double magnitude, rng& r) {
    dense<T> d(shape);
    for (auto& v : d.data) v = static_cast<T>(r.uniform(-magnitude, magnitude));
    return d;
}

template <class T>
dense<T> random_dense(const shape_t& shape, dist dd, rng& r) {
    return random_dense<T>(shape, dist_mag(dd), r);
}

/// A value drawn from the palette of extreme values used by the special-value tests.
template <class T>
T special_value(rng& r) {
    switch (r.below(16)) {
        case 0: return vals<T>::inf();
        case 1: return -vals<T>::inf();
        case 2: return vals<T>::nan();
        case 3: return static_cast<T>(1e30);
        case 4: return static_cast<T>(-1e30);
        case 5: return vals<T>::denormal();
        case 6: return -vals<T>::denormal();
        case 7: return std::numeric_limits<float>::max();
        case 8: return -std::numeric_limits<float>::max();
        case 9: return vals<T>::max();
        case 10: return -vals<T>::max();
        case 11: return T(0);
        case 12: return -T(0);
        case 13: return vals<T>::min_normal();
        default: return static_cast<T>(r.uniform(-10, 10));
    }
}

/// Mostly -inf / finite mixtures; each element is extreme with probability p.
template <class T>
dense<T> special_dense(const shape_t& shape, double p, rng& r) {
    dense<T> d(shape);
    for (auto& v : d.data) v = r.chance(p) ? special_value<T>(r) : static_cast<T>(r.uniform(-10, 10));
    return d;
}

/// Finite extremes only (no inf or NaN): the library must not overflow on any finite input.
template <class T>
dense<T> finite_extreme_dense(const shape_t& shape, rng& r) {
    dense<T> d(shape);
    for (auto& v : d.data) {
        switch (r.below(8)) {
            case 0: v = vals<T>::max(); break;
            case 1: v = -vals<T>::max(); break;
            case 2: v = std::numeric_limits<float>::max(); break;
            case 3: v = -std::numeric_limits<float>::max(); break;
            case 4: v = static_cast<T>(1e30); break;
            case 5: v = static_cast<T>(-1e30); break;
            case 6: v = vals<T>::denormal(); break;
            default: v = static_cast<T>(r.uniform(-100, 100)); break;
        }
    }
    return d;
}

// ---------------------------------------------------------------------------------------------
// Shapes, indices and views.
// ---------------------------------------------------------------------------------------------
template <std::size_t R>
logitkit::extents_type<R> to_extents(const shape_t& s) {
    logitkit::extents_type<R> e{};
    for (std::size_t k = 0; k < R; ++k) e[k] = s[k];
    return e;
}

template <std::size_t R>
shape_t to_shape(const logitkit::extents_type<R>& e) {
    return shape_t(e.begin(), e.end());
}

inline std::string index_string(const shape_t& shape, index_t linear) {
    std::vector<index_t> idx(shape.size());
    for (std::size_t k = shape.size(); k-- > 0;) {
        const index_t e = shape[k] == 0 ? 1 : shape[k];
        idx[k] = linear % e;
        linear /= e;
    }
    std::string s = "(";
    for (std::size_t k = 0; k < idx.size(); ++k) {
        if (k != 0) s += ", ";
        s += std::to_string(idx[k]);
    }
    return s + ")";
}

/// All spellings of every axis of a rank-`rank` tensor: 0..rank-1 and -rank..-1.
inline std::vector<int> axis_spellings(std::size_t rank) {
    std::vector<int> a;
    for (int k = 0; k < static_cast<int>(rank); ++k) a.push_back(k);
    for (int k = -static_cast<int>(rank); k < 0; ++k) a.push_back(k);
    return a;
}

/// Calls f(std::integral_constant<std::size_t, R>{}) for a rank known only at run time.
template <class F>
void dispatch_rank(std::size_t rank, F&& f) {
    switch (rank) {
        case 1: f(std::integral_constant<std::size_t, 1>{}); break;
        case 2: f(std::integral_constant<std::size_t, 2>{}); break;
        case 3: f(std::integral_constant<std::size_t, 3>{}); break;
        case 4: f(std::integral_constant<std::size_t, 4>{}); break;
        default: FAIL("unsupported rank in test"); break;
    }
}

/// How a logical tensor is laid out in memory.
struct layout {
    std::string name = "contiguous";
    std::vector<int> order;        // axes from outermost to innermost in memory; empty: 0..R-1
    std::vector<index_t> pad;      // extra elements added to each axis' extent for the strides
    index_t inner_step = 1;        // stride of the innermost axis in memory
    unsigned neg_mask = 0;         // bit k set: axis k has a negative stride

    std::string describe() const {
        std::ostringstream os;
        os << name << " {order";
        for (int o : order) os << ' ' << o;
        os << ", pad";
        for (index_t p : pad) os << ' ' << p;
        os << ", step " << inner_step << ", neg 0x" << std::hex << neg_mask << "}";
        return os.str();
    }
};

inline layout contiguous_layout() { return layout{}; }

/// The layouts used throughout the kernel tests, for a tensor of the given rank whose reduction
/// axis is `axis` (normalized). `r` drives the one random layout.
inline std::vector<layout> standard_layouts(std::size_t rank, std::size_t axis, rng& r) {
    const int R = static_cast<int>(rank);
    std::vector<int> identity(rank);
    std::iota(identity.begin(), identity.end(), 0);
    std::vector<layout> out;

    out.push_back(layout{});  // contiguous

    {
        layout l;
        l.name = "transposed";
        l.order.assign(identity.rbegin(), identity.rend());
        out.push_back(l);
    }
    {
        layout l;  // the reduction axis is the innermost one in memory
        l.name = "axis-innermost";
        for (int k = 0; k < R; ++k)
            if (k != static_cast<int>(axis)) l.order.push_back(k);
        l.order.push_back(static_cast<int>(axis));
        out.push_back(l);
    }
    {
        layout l;  // the reduction axis is the outermost one in memory
        l.name = "axis-outermost";
        l.order.push_back(static_cast<int>(axis));
        for (int k = 0; k < R; ++k)
            if (k != static_cast<int>(axis)) l.order.push_back(k);
        out.push_back(l);
    }
    {
        layout l;  // row padding: each row (innermost axis) is followed by 3 unused elements
        l.name = "row-padded";
        l.pad.assign(rank, 0);
        l.pad[rank - 1] = 3;
        for (std::size_t k = 0; k + 1 < rank; ++k) l.pad[k] = 1;
        out.push_back(l);
    }
    {
        layout l;  // every stride doubled, plus padding: nothing is contiguous
        l.name = "fully-strided";
        l.inner_step = 2;
        l.pad.assign(rank, 1);
        out.push_back(l);
    }
    {
        layout l;
        l.name = "negative-all";
        l.neg_mask = (1u << rank) - 1u;
        out.push_back(l);
    }
    {
        layout l;
        l.name = "negative-axis-padded";
        l.neg_mask = 1u << axis;
        l.pad.assign(rank, 2);
        out.push_back(l);
    }
    {
        layout l;  // random permutation, padding, step and signs
        l.name = "random";
        l.order = identity;
        for (std::size_t k = rank; k > 1; --k) std::swap(l.order[k - 1], l.order[r.below(k)]);
        l.pad.resize(rank);
        for (auto& p : l.pad) p = static_cast<index_t>(r.below(4));
        l.inner_step = 1 + static_cast<index_t>(r.below(3));
        l.neg_mask = static_cast<unsigned>(r.below(1u << rank));
        out.push_back(l);
    }
    return out;
}

/// A buffer holding a strided view of a `shape` tensor with layout `L`. Every element of the
/// storage that is not part of the view (padding, gaps, guard zones at both ends) holds a sentinel,
/// so writes outside the view can be detected. A view of size 0 gets a null data pointer.
template <class T, std::size_t R>
class strided_buffer {
public:
    using extents = logitkit::extents_type<R>;
    static constexpr index_t guard = 9;

    strided_buffer(const extents& shape, const layout& L, T sentinel, bool null_if_empty = true)
        : shape_(shape), sentinel_(sentinel) {
        std::vector<int> order = L.order;
        if (order.empty()) {
            order.resize(R);
            std::iota(order.begin(), order.end(), 0);
        }
        std::vector<index_t> pad = L.pad;
        pad.resize(R, 0);
        index_t running = L.inner_step;
        for (std::size_t k = R; k-- > 0;) {
            const int ax = order[k];
            strides_[static_cast<std::size_t>(ax)] = running;
            running *= std::max<index_t>(shape_[static_cast<std::size_t>(ax)] + pad[static_cast<std::size_t>(ax)], 1);
        }
        origin_ = guard;
        for (std::size_t k = 0; k < R; ++k) {
            if ((L.neg_mask >> k) & 1u) {
                if (shape_[k] > 0) origin_ += (shape_[k] - 1) * strides_[k];
                strides_[k] = -strides_[k];
            }
        }
        storage_.assign(static_cast<std::size_t>(running + 2 * guard), sentinel);
        size_ = 1;
        for (index_t e : shape_) size_ *= e;
        null_ = null_if_empty && size_ == 0;
    }

    T* data() { return null_ ? nullptr : storage_.data() + origin_; }
    const T* data() const { return null_ ? nullptr : storage_.data() + origin_; }
    logitkit::tensor_view<T, R> view() { return logitkit::tensor_view<T, R>(data(), shape_, strides_); }
    logitkit::tensor_view<const T, R> cview() const { return logitkit::tensor_view<const T, R>(data(), shape_, strides_); }
    const extents& strides() const { return strides_; }
    const extents& shape() const { return shape_; }
    index_t size() const { return size_; }
    std::vector<T>& storage() { return storage_; }

    /// Calls f(linear_index, storage_position) for every element of the view, in row-major order.
    template <class F>
    void for_each(F&& f) const {
        if (size_ == 0) return;
        std::array<index_t, R> idx{};
        index_t pos = origin_;
        for (index_t lin = 0; lin < size_; ++lin) {
            f(lin, pos);
            for (std::size_t k = R; k-- > 0;) {
                ++idx[k];
                pos += strides_[k];
                if (idx[k] < shape_[k]) break;
                pos -= idx[k] * strides_[k];
                idx[k] = 0;
            }
        }
    }

    void fill(const dense<T>& d) {
        for_each([&](index_t lin, index_t pos) { storage_[static_cast<std::size_t>(pos)] = d[lin]; });
    }

    dense<T> read() const {
        dense<T> d(to_shape<R>(shape_));
        for_each([&](index_t lin, index_t pos) { d[lin] = storage_[static_cast<std::size_t>(pos)]; });
        return d;
    }

    /// Empty when every storage element outside the view still holds the sentinel (bitwise);
    /// otherwise a description of the first one that changed.
    std::string outside_changes() const {
        std::vector<char> inside(storage_.size(), 0);
        for_each([&](index_t, index_t pos) { inside[static_cast<std::size_t>(pos)] = 1; });
        std::size_t changed = 0, first = 0;
        for (std::size_t i = 0; i < storage_.size(); ++i) {
            if (!inside[i] && std::memcmp(&storage_[i], &sentinel_, sizeof(T)) != 0) {
                if (changed == 0) first = i;
                ++changed;
            }
        }
        if (changed == 0) return {};
        std::ostringstream os;
        os << changed << " storage element(s) outside the view were modified; first at storage position "
           << first << " (view origin " << origin_ << "), value " << storage_[first];
        return os.str();
    }

private:
    extents shape_;
    extents strides_{};
    T sentinel_;
    index_t origin_ = 0;
    index_t size_ = 0;
    bool null_ = false;
    std::vector<T> storage_;
};

// ---------------------------------------------------------------------------------------------
// Comparisons.
// ---------------------------------------------------------------------------------------------
template <class T>
std::string fmt(ld v) {
    std::ostringstream os;
    os << std::setprecision(std::numeric_limits<T>::max_digits10) << static_cast<T>(v);
    if (std::isfinite(v)) os << " (" << std::hexfloat << static_cast<T>(v) << ")";
    return os.str();
}

inline std::string fmt_ld(ld v) {
    std::ostringstream os;
    os << std::setprecision(21) << v;
    return os.str();
}

/// Size of one unit in the last place of the element type at the magnitude of v.
template <class T>
ld ulp_of(ld v) {
    const T a = static_cast<T>(std::fabs(v));
    if (!std::isfinite(a)) return std::numeric_limits<ld>::infinity();
    if (a < vals<T>::min_normal()) return static_cast<ld>(vals<T>::true_min());
    return static_cast<ld>(std::nextafter(a, vals<T>::inf())) - static_cast<ld>(a);
}

/// Bitwise equality of two dense tensors (NaNs with the same payload compare equal).
template <class T>
bool bitwise_equal(const dense<T>& a, const dense<T>& b) {
    return a.shape == b.shape && a.data.size() == b.data.size() &&
           (a.data.empty() || std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(T)) == 0);
}

/// Compares `got` with the long double reference. Rules:
///  - NaN exactly where the reference is NaN;
///  - where the reference rounded to T is infinite (including finite references beyond the range
///    of T), the output must be that infinity exactly;
///  - elsewhere |got - ref| <= allowed(linear_index, ref).
/// Produces one CHECK; on failure the message shows the worst element and the case description.
template <class T, class Allowed>
bool check_close(const dense<T>& got, const dense<ld>& ref, Allowed&& allowed, const std::string& what) {
    REQUIRE(got.shape == ref.shape);
    index_t failures = 0, worst = -1;
    ld worst_ratio = -1, worst_err = 0, worst_allowed = 0;
    const char* worst_reason = "";
    for (index_t i = 0; i < ref.size(); ++i) {
        const ld r = ref[i];
        const ld g = static_cast<ld>(got[i]);
        const T rT = static_cast<T>(r);
        bool ok;
        ld err = 0, lim = 0, ratio = 0;
        const char* reason = "";
        if (std::isnan(r)) {
            ok = std::isnan(g);
            reason = "expected NaN";
            ratio = ok ? 0 : std::numeric_limits<ld>::infinity();
            err = ok ? 0 : std::numeric_limits<ld>::infinity();
        } else if (std::isnan(g)) {
            ok = false;
            reason = "unexpected NaN";
            ratio = err = std::numeric_limits<ld>::infinity();
        } else if (std::isinf(rT)) {
            ok = (g == static_cast<ld>(rT));
            reason = "expected an exact infinity";
            ratio = err = ok ? 0 : std::numeric_limits<ld>::infinity();
        } else if (std::isinf(g)) {
            ok = false;
            reason = "unexpected infinity";
            ratio = err = std::numeric_limits<ld>::infinity();
        } else {
            err = std::fabs(g - r);
            lim = allowed(i, r);
            ok = err <= lim;
            reason = "error above the bound";
            ratio = lim > 0 ? err / lim : (err > 0 ? std::numeric_limits<ld>::infinity() : 0);
        }
        if (!ok) ++failures;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
            worst_err = err;
            worst_allowed = lim;
            worst_reason = reason;
        }
    }
    if (failures != 0) {
        const ld r = ref[worst];
        const ld g = static_cast<ld>(got[worst]);
        std::ostringstream os;
        os << what << "\n  " << failures << " of " << ref.size() << " elements out of bounds (" << vals<T>::name()
           << "); worst at index " << index_string(ref.shape, worst) << " of shape " << lk_ref::shape_string(ref.shape)
           << ": " << worst_reason << "\n  got      " << fmt<T>(g) << "\n  expected " << fmt_ld(r) << " (rounded "
           << fmt<T>(r) << ")";
        if (std::isfinite(worst_err)) {
            os << "\n  |error| " << fmt_ld(worst_err) << " = " << static_cast<double>(worst_err / ulp_of<T>(r))
               << " ulp, relative " << static_cast<double>(r != 0 ? worst_err / std::fabs(r) : worst_err)
               << ", allowed " << fmt_ld(worst_allowed);
        }
        FAIL_CHECK(os.str());
        return false;
    }
    return true;
}

/// Fails the current test (without aborting it) when `msg` is not empty.
inline bool expect_empty(const std::string& msg, const std::string& what) {
    if (!msg.empty()) {
        FAIL_CHECK(what << ": " << msg);
        return false;
    }
    return true;
}

/// Fails unless the two tensors are bitwise identical, naming the first difference.
template <class T>
bool expect_bitwise_equal(const dense<T>& got, const dense<T>& expected, const std::string& what) {
    if (bitwise_equal(got, expected)) return true;
    index_t first = 0;
    for (; first < got.size(); ++first)
        if (std::memcmp(&got[first], &expected[first], sizeof(T)) != 0) break;
    std::ostringstream os;
    os << what << ": changed at index " << index_string(got.shape, first) << ": now " << fmt<T>(got[first])
       << ", was " << fmt<T>(expected[first]);
    FAIL_CHECK(os.str());
    return false;
}

// ---------------------------------------------------------------------------------------------
// Error messages.
// ---------------------------------------------------------------------------------------------
inline bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'; }

/// True when `word` occurs in `text` as a whole word (not inside a longer identifier).
inline bool contains_word(const std::string& text, const std::string& word) {
    for (std::size_t pos = text.find(word); pos != std::string::npos; pos = text.find(word, pos + 1)) {
        const bool left_ok = pos == 0 || !is_word_char(text[pos - 1]);
        const std::size_t end = pos + word.size();
        const bool right_ok = end >= text.size() || !is_word_char(text[end]);
        if (left_ok && right_ok) return true;
    }
    return false;
}

inline std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// True when `text` shows the extents, written as "[2, 3]", "[2,3]", "(2, 3)", "{2, 3}" or "2x3".
inline bool contains_shape(const std::string& text, const shape_t& shape) {
    auto join = [&](const char* sep) {
        std::string s;
        for (std::size_t i = 0; i < shape.size(); ++i) {
            if (i != 0) s += sep;
            s += std::to_string(shape[i]);
        }
        return s;
    };
    const std::string a = join(", "), b = join(","), c = join("x");
    for (const std::string& s : {"[" + a + "]", "[" + b + "]", "(" + a + ")", "(" + b + ")", "{" + a + "}", "{" + b + "}"})
        if (text.find(s) != std::string::npos) return true;
    return shape.size() > 1 && text.find(c) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// softmax / log_softmax case runner (shared by test_softmax.cpp and test_log_softmax.cpp).
// ---------------------------------------------------------------------------------------------
enum class fwd_op { softmax, log_softmax };

inline const char* op_name(fwd_op op) { return op == fwd_op::softmax ? "softmax" : "log_softmax"; }

/// How the kernel is called: with every argument, without options, or with no axis either.
enum class call_style { full, no_options, defaults };

struct fwd_case {
    fwd_op op = fwd_op::softmax;
    int axis = -1;
    layout in_layout;
    layout out_layout;
    bool inplace = false;
    bool const_input = true;  // pass x as tensor_view<const T, R> (else tensor_view<T, R>)
    double temperature = 1.0;
    call_style style = call_style::full;
    std::string data = "?";
};

template <class X, class Y>
void call_forward(fwd_op op, X x, Y y, int axis, double temperature, call_style style) {
    logitkit::softmax_options opts;
    opts.temperature = temperature;
    if (op == fwd_op::softmax) {
        if (style == call_style::defaults)
            logitkit::softmax(x, y);
        else if (style == call_style::no_options)
            logitkit::softmax(x, y, axis);
        else
            logitkit::softmax(x, y, axis, opts);
    } else {
        if (style == call_style::defaults)
            logitkit::log_softmax(x, y);
        else if (style == call_style::no_options)
            logitkit::log_softmax(x, y, axis);
        else
            logitkit::log_softmax(x, y, axis, opts);
    }
}

template <class T>
std::string describe_forward(const fwd_case& c, const shape_t& shape) {
    std::ostringstream os;
    os << op_name(c.op) << "<" << vals<T>::name() << "> shape " << lk_ref::shape_string(shape) << " axis " << c.axis
       << " T=" << c.temperature << " data " << c.data << "\n  x layout " << c.in_layout.describe();
    if (c.inplace)
        os << ", in place";
    else
        os << "\n  y layout " << c.out_layout.describe();
    os << (c.const_input ? "" : ", x passed as a mutable view");
    if (c.style != call_style::full) os << (c.style == call_style::defaults ? ", default axis/options" : ", default options");
    return os.str();
}

/// softmax rows with a finite reference sum to 1 (a consequence of the element-wise bound).
template <class T>
bool check_rows_sum_to_one(const dense<T>& got, const dense<ld>& ref, int axis, const std::string& what) {
    bool ok = true;
    lk_ref::for_each_row(ref.shape, axis, [&](index_t base, index_t stride, index_t n) {
        if (!ok || n == 0 || std::isnan(ref[base])) return;
        ld s = 0;
        for (index_t i = 0; i < n; ++i) s += static_cast<ld>(got[base + i * stride]);
        const ld tol = bounds<T>::softmax_rel + static_cast<ld>(n) * 2 * static_cast<ld>(vals<T>::true_min());
        if (!(std::fabs(s - 1) <= tol)) {
            FAIL_CHECK(what << "\n  row starting at " << index_string(ref.shape, base) << " sums to " << fmt_ld(s)
                            << " (|sum - 1| = " << fmt_ld(std::fabs(s - 1)) << ", allowed " << fmt_ld(tol) << ")");
            ok = false;
        }
    });
    return ok;
}

/// Runs one softmax / log_softmax case on the data `x` and checks everything about it: values,
/// row sums, the input left unchanged, and nothing written outside the output view.
template <class T, std::size_t R>
bool run_forward(const fwd_case& c, const dense<T>& x) {
    const shape_t& shape = x.shape;
    const auto ext = to_extents<R>(shape);
    const std::string what = describe_forward<T>(c, shape);
    const dense<ld> ref = c.op == fwd_op::softmax ? lk_ref::softmax(x, c.axis, c.temperature)
                                                  : lk_ref::log_softmax(x, c.axis, c.temperature);
    const T in_sentinel = static_cast<T>(-4242.125);
    const T out_sentinel = static_cast<T>(31337.5);
    bool ok = true;
    strided_buffer<T, R> xb(ext, c.in_layout, in_sentinel);
    xb.fill(x);
    dense<T> got;
    if (c.inplace) {
        if (c.const_input)
            call_forward(c.op, xb.cview(), xb.view(), c.axis, c.temperature, c.style);
        else
            call_forward(c.op, xb.view(), xb.view(), c.axis, c.temperature, c.style);
        got = xb.read();
        ok &= expect_empty(xb.outside_changes(), what + "\n  in-place buffer");
    } else {
        strided_buffer<T, R> yb(ext, c.out_layout, out_sentinel);
        if (c.const_input)
            call_forward(c.op, xb.cview(), yb.view(), c.axis, c.temperature, c.style);
        else
            call_forward(c.op, xb.view(), yb.view(), c.axis, c.temperature, c.style);
        got = yb.read();
        ok &= expect_empty(yb.outside_changes(), what + "\n  output buffer");
        ok &= expect_empty(xb.outside_changes(), what + "\n  input buffer");
        ok &= expect_bitwise_equal(xb.read(), x, what + "\n  input modified");
    }
    if (c.op == fwd_op::softmax) {
        ok &= check_close(got, ref, [](index_t, ld r) { return softmax_allowed<T>(r); }, what);
        if (ok) ok &= check_rows_sum_to_one(got, ref, c.axis, what);
    } else {
        ok &= check_close(got, ref, [](index_t, ld r) { return log_allowed<T>(r); }, what);
    }
    return ok;
}

/// Runs `run_forward` for a rank known only at run time.
template <class T>
bool run_forward_any(const fwd_case& c, const dense<T>& x) {
    bool ok = false;
    dispatch_rank(x.rank(), [&](auto rank) { ok = run_forward<T, decltype(rank)::value>(c, x); });
    return ok;
}

// ---------------------------------------------------------------------------------------------
// softmax / log_softmax suites. Shapes, axes and layouts are enumerated at run time; only one
// instantiation per (element type, rank) exists.
// ---------------------------------------------------------------------------------------------
constexpr double test_temperatures[] = {1.0, 0.5, 2.5, 1e-3};

/// Stops a suite after this many failing cases, so one bug does not flood the output.
constexpr int max_failing_cases = 20;

struct failure_budget {
    int failures = 0;
    bool record(bool ok) {
        if (!ok && ++failures == max_failing_cases) FAIL_CHECK("too many failing cases; skipping the rest of this suite");
        return failures < max_failing_cases;
    }
};

/// Extents 1..67, the longest short lines held in registers (8 batches of 16 floats) and past
/// them, and two long rows.
inline std::vector<index_t> long_axis_extents() {
    std::vector<index_t> v;
    for (index_t n = 1; n <= 67; ++n) v.push_back(n);
    for (index_t n : {96, 127, 128, 129}) v.push_back(n);
    v.push_back(1000);
    v.push_back(4097);
    return v;
}

/// A shape of the given rank with `n` on `axis` and the other extents taken cyclically from `others`.
inline shape_t shape_with_axis(std::size_t rank, std::size_t axis, index_t n, const std::vector<index_t>& others,
                               std::size_t start) {
    shape_t s(rank);
    std::size_t j = start;
    for (std::size_t k = 0; k < rank; ++k) s[k] = k == axis ? n : others[j++ % others.size()];
    return s;
}

/// Rank 1: every extent of long_axis_extents, every distribution, several layouts, in place,
/// every temperature, both axis spellings and every calling style.
template <class T>
void forward_rank1_suite(fwd_op op) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    layout step3;
    step3.name = "step-3";
    step3.inner_step = 3;
    layout neg;
    neg.name = "negative";
    neg.neg_mask = 1;
    layout step2;
    step2.name = "step-2";
    step2.inner_step = 2;
    for (index_t n : long_axis_extents()) {
        for (dist d : all_dists) {
            rng r(seed_for(1, ++case_id));
            const dense<T> x = random_dense<T>({n}, d, r);
            std::vector<fwd_case> cases;
            for (double t : test_temperatures) {
                fwd_case c;
                c.op = op;
                c.axis = (n % 2 == 0) ? 0 : -1;
                c.temperature = t;
                cases.push_back(c);
            }
            fwd_case c;
            c.op = op;
            c.axis = 0;
            c.in_layout = step3;
            c.out_layout = neg;
            c.style = call_style::no_options;
            cases.push_back(c);
            c.in_layout = neg;
            c.out_layout = step2;
            c.const_input = false;
            c.style = call_style::full;
            c.temperature = test_temperatures[static_cast<std::size_t>(n) % 4];
            cases.push_back(c);
            c = fwd_case{};
            c.op = op;
            c.axis = -1;
            c.inplace = true;
            c.temperature = test_temperatures[static_cast<std::size_t>(n + 1) % 4];
            cases.push_back(c);
            c.in_layout = neg;
            c.const_input = false;
            c.temperature = 1.0;
            c.style = call_style::defaults;
            cases.push_back(c);
            for (auto& cc : cases) {
                cc.data = dist_name(d);
                if (!budget.record(run_forward<T, 1>(cc, x))) return;
            }
        }
    }
}

/// Ranks 2..4: every axis (both spellings), the standard layouts for input and output, one in-place
/// run per (extent, axis), temperatures and distributions cycling with the case.
template <class T>
void forward_rank_suite(fwd_op op, std::size_t rank, const std::vector<index_t>& axis_extents,
                        const std::vector<index_t>& others) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    const auto axes = axis_spellings(rank);
    for (index_t n : axis_extents) {
        for (std::size_t ai = 0; ai < axes.size(); ++ai) {
            const int axis = axes[ai];
            const std::size_t a = lk_ref::normalize_axis(axis, rank);
            // Keep the long rows' tensors small in the other dimensions.
            const std::vector<index_t> oth = n >= 1000 ? std::vector<index_t>{2, 3, 1} : others;
            const shape_t shape = shape_with_axis(rank, a, n, oth, static_cast<std::size_t>(n) + ai);
            rng r(seed_for(2 + rank, ++case_id));
            const auto layouts = standard_layouts(rank, a, r);
            for (std::size_t li = 0; li <= layouts.size(); ++li) {
                const std::size_t k = static_cast<std::size_t>(n) + ai + li;
                const dist d = all_dists[k % 3];
                const dense<T> x = random_dense<T>(shape, d, r);
                fwd_case c;
                c.op = op;
                c.axis = axis;
                c.data = dist_name(d);
                c.temperature = test_temperatures[k % 4];
                c.const_input = (li % 2) == 0;
                if (li == layouts.size()) {
                    c.inplace = true;
                    c.in_layout = layouts[k % layouts.size()];
                } else {
                    c.in_layout = layouts[li];
                    c.out_layout = layouts[(2 * li + static_cast<std::size_t>(n) + ai) % layouts.size()];
                }
                if (!budget.record(run_forward_any<T>(c, x))) return;
            }
        }
    }
}

template <class T>
void forward_rank2_suite(fwd_op op) {
    forward_rank_suite<T>(op, 2, long_axis_extents(), {1, 2, 3, 5, 7, 8, 9, 16, 17, 33});
}

template <class T>
void forward_rank3_suite(fwd_op op) {
    forward_rank_suite<T>(op, 3, {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 67, 1000},
                          {1, 2, 3, 5, 4});
}

template <class T>
void forward_rank4_suite(fwd_op op) {
    forward_rank_suite<T>(op, 4, {1, 2, 3, 5, 8, 9, 16, 17, 33, 67, 300}, {1, 2, 3, 2});
}

/// Lines walked as columns (axis stride > 1, a contiguous dimension beside it) in blocks of every
/// width dispatch.hpp uses: blocks of 4 KiB of each row (1024 floats, 512 doubles), of 1 KiB, of 4
/// batches and of 1, and a scalar tail, for 256- and 512-bit batches.
struct wide_columns_case {
    shape_t shape;
    int axis;
};
inline std::vector<wide_columns_case> wide_column_cases() {
    return {{{7, 1325}, 0}, {{130, 1365}, -2}, {{3, 5, 2100}, 1}};
}

/// Puts special values (NaN, +-inf, +-1e30, a denormal) at one row of a few columns of a shape
/// with the given axis, spread over the column blocks: each block holding one takes the checked
/// exp path, and the other columns of that block must stay within their bounds.
template <class T>
void put_column_specials(dense<T>& x, std::size_t axis) {
    const T specials[] = {vals<T>::nan(), vals<T>::inf(), -vals<T>::inf(), static_cast<T>(1e30),
                          static_cast<T>(-1e30), vals<T>::denormal()};
    const index_t n = x.shape[axis];
    index_t inner = 1;
    for (std::size_t k = axis + 1; k < x.shape.size(); ++k) inner *= x.shape[k];
    const index_t cols[] = {3, 700, 1030, 1300, 1329, inner - 1};
    for (std::size_t i = 0; i < 6; ++i) {
        const index_t c = cols[i] % inner;
        x[((c * 7) % n) * inner + c] = specials[i];
    }
}

/// Calls check(case, x, case number, data name) for each of wide_column_cases, on random data
/// and again with put_column_specials, until it returns false.
template <class T, class Check>
void for_each_wide_column_input(std::uint64_t seed, Check check) {
    std::uint64_t case_id = 0;
    for (const auto& w : wide_column_cases()) {
        for (bool specials : {false, true}) {
            rng r(seed_for(seed, ++case_id));
            dense<T> x = random_dense<T>(w.shape, all_dists[case_id % 3], r);
            if (specials) put_column_specials(x, lk_ref::normalize_axis(w.axis, w.shape.size()));
            const char* name =
                specials ? "random columns, a few holding NaN, +-inf, +-1e30 or a denormal" : "random columns";
            if (!check(w, x, case_id, name)) return;
        }
    }
}

/// softmax / log_softmax over for_each_wide_column_input.
template <class T>
void forward_wide_columns_suite(fwd_op op) {
    failure_budget budget;
    for_each_wide_column_input<T>(12, [&](const wide_columns_case& w, const dense<T>& x, std::uint64_t id,
                                          const char* name) {
        fwd_case c;
        c.op = op;
        c.axis = w.axis;
        c.temperature = test_temperatures[id % 4];
        c.data = name;
        return budget.record(run_forward_any<T>(c, x));
    });
}

/// Rows of length n with one special value at each position p (row p has it at column p), so the
/// special value visits every SIMD lane and the scalar tail. Reduced along axis 1 (contiguous and
/// transposed layouts) and, on the transposed data, along axis 0.
template <class T>
void forward_special_positions_suite(fwd_op op) {
    failure_budget budget;
    const T specials[] = {vals<T>::nan(),
                          vals<T>::inf(),
                          -vals<T>::inf(),
                          static_cast<T>(1e30),
                          static_cast<T>(-1e30),
                          std::numeric_limits<float>::max(),
                          -std::numeric_limits<float>::max(),
                          vals<T>::max(),
                          -vals<T>::max(),
                          vals<T>::denormal()};
    std::vector<index_t> ns;
    for (index_t n = 1; n <= 40; ++n) ns.push_back(n);
    for (index_t n : {47, 63, 64, 65, 127, 128, 129}) ns.push_back(n);
    std::uint64_t case_id = 0;
    for (index_t n : ns) {
        for (T s : specials) {
            rng r(seed_for(10, ++case_id));
            dense<T> x = random_dense<T>({n, n}, 10.0, r);
            dense<T> xt({n, n});
            for (index_t p = 0; p < n; ++p) x[p * n + p] = s;
            for (index_t i = 0; i < n; ++i)
                for (index_t j = 0; j < n; ++j) xt[j * n + i] = x[i * n + j];
            std::ostringstream name;
            name << "random rows with " << s << " on the diagonal";
            const double t = test_temperatures[case_id % 4];
            fwd_case c;
            c.op = op;
            c.axis = 1;
            c.temperature = t;
            c.data = name.str();
            if (!budget.record(run_forward<T, 2>(c, x))) return;
            auto layouts = standard_layouts(2, 1, r);
            c.in_layout = layouts[1];                    // transposed
            c.out_layout = layouts[case_id % layouts.size()];
            if (!budget.record(run_forward<T, 2>(c, x))) return;
            c = fwd_case{};
            c.op = op;
            c.axis = -2;
            c.temperature = t;
            c.data = name.str() + " (transposed, reduced along axis 0)";
            c.in_layout = layouts[(case_id + 3) % layouts.size()];
            c.out_layout = layouts[(case_id + 5) % layouts.size()];
            if (!budget.record(run_forward<T, 2>(c, xt))) return;
        }
        // Every entry -inf but one finite entry at position p: y[p] = 1 (softmax) / 0 (log_softmax).
        {
            dense<T> x({n, n}, -vals<T>::inf());
            rng r(seed_for(11, static_cast<std::uint64_t>(n)));
            for (index_t p = 0; p < n; ++p) x[p * n + p] = static_cast<T>(r.uniform(-50, 50));
            fwd_case c;
            c.op = op;
            c.axis = -1;
            c.data = "-inf rows with one finite entry";
            if (!budget.record(run_forward<T, 2>(c, x))) return;
            // The same with half the entries finite.
            for (index_t i = 0; i < n * n; i += 2) x[i] = static_cast<T>(r.uniform(-5, 5));
            c.data = "rows of alternating -inf and finite entries";
            c.inplace = true;
            if (!budget.record(run_forward<T, 2>(c, x))) return;
        }
        // Whole rows of a single non-finite value.
        for (T s : {-vals<T>::inf(), vals<T>::inf(), vals<T>::nan()}) {
            dense<T> x({3, n}, s);
            fwd_case c;
            c.op = op;
            c.axis = 1;
            std::ostringstream name;
            name << "rows of all " << s;
            c.data = name.str();
            if (!budget.record(run_forward<T, 2>(c, x))) return;
        }
    }
}

/// Random mixtures of extreme values (inf, NaN, 1e30, FLT_MAX, DBL_MAX, denormals, signed zeros)
/// in various densities, shapes, axes, layouts and temperatures.
template <class T>
void forward_special_random_suite(fwd_op op) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (index_t n : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 100, 127, 128}) {
        for (double p : {0.05, 0.3, 1.0}) {
            for (int axis : {1, 0}) {
                rng r(seed_for(12, ++case_id));
                const shape_t shape = axis == 1 ? shape_t{40, n} : shape_t{n, 40};
                const dense<T> x = special_dense<T>(shape, p, r);
                const auto layouts = standard_layouts(2, static_cast<std::size_t>(axis), r);
                fwd_case c;
                c.op = op;
                c.axis = axis;
                c.temperature = test_temperatures[case_id % 4];
                c.in_layout = layouts[case_id % layouts.size()];
                c.out_layout = layouts[(case_id * 7 + 1) % layouts.size()];
                c.inplace = case_id % 5 == 0;
                std::ostringstream name;
                name << "extreme values with probability " << p;
                c.data = name.str();
                if (!budget.record(run_forward<T, 2>(c, x))) return;
            }
        }
    }
}

/// Finite extremes only: no overflow, so (except where x / T itself overflows) no NaN.
template <class T>
void forward_finite_extremes_suite(fwd_op op) {
    failure_budget budget;
    std::uint64_t case_id = 0;
    for (index_t n : {1, 2, 3, 5, 8, 9, 16, 17, 33, 64, 65, 257}) {
        for (double t : test_temperatures) {
            rng r(seed_for(13, ++case_id));
            const dense<T> x = finite_extreme_dense<T>({7, n}, r);
            fwd_case c;
            c.op = op;
            c.axis = -1;
            c.temperature = t;
            c.data = "finite extremes (+-FLT_MAX, +-DBL_MAX, +-1e30, denormals)";
            if (!budget.record(run_forward<T, 2>(c, x))) return;
            if (t == 1.0) {
                // At T = 1 nothing overflows: the result must be NaN-free.
                strided_buffer<T, 2> xb(to_extents<2>(x.shape), layout{}, T(0));
                xb.fill(x);
                strided_buffer<T, 2> yb(to_extents<2>(x.shape), layout{}, T(0));
                call_forward(op, xb.cview(), yb.view(), -1, 1.0, call_style::full);
                const dense<T> y = yb.read();
                const bool any_nan = std::any_of(y.data.begin(), y.data.end(), [](T v) { return std::isnan(v); });
                INFO(describe_forward<T>(c, x.shape));
                CHECK_FALSE(any_nan);
            }
        }
    }
    // Specific rows: the maximum far above the rest, and the difference overflowing T.
    const T M = vals<T>::max();
    const std::vector<std::vector<T>> rows = {
        {M, -M}, {-M, M}, {M, M}, {-M, -M}, {M, M, M}, {-M, -M, -M, -M, -M},
        {M, 0, -M}, {static_cast<T>(1e30), static_cast<T>(-1e30)}, {static_cast<T>(-1e30), static_cast<T>(-1e30)},
        {vals<T>::denormal(), -vals<T>::denormal()}, {vals<T>::denormal(), T(0), -T(0)},
        {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(), T(1)},
    };
    for (const auto& row : rows) {
        dense<T> x({static_cast<index_t>(row.size())});
        x.data = row;
        for (double t : {1.0, 2.5}) {
            fwd_case c;
            c.op = op;
            c.axis = 0;
            c.temperature = t;
            std::ostringstream name;
            name << "row";
            for (T v : row) name << ' ' << v;
            c.data = name.str();
            if (!budget.record(run_forward<T, 1>(c, x))) return;
        }
    }
}

/// Extent 0 anywhere: a no-op that touches no memory (null data pointers), and leaves a real
/// buffer untouched when the data pointer is not null.
template <class T, std::size_t R>
void forward_empty_case(fwd_op op, const shape_t& shape, int axis) {
    const auto ext = to_extents<R>(shape);
    INFO(op_name(op) << "<" << vals<T>::name() << "> empty shape " << lk_ref::shape_string(shape) << " axis " << axis);
    {
        strided_buffer<T, R> xb(ext, layout{}, T(1));
        strided_buffer<T, R> yb(ext, layout{}, T(2));
        REQUIRE(xb.cview().data() == nullptr);
        REQUIRE(yb.view().data() == nullptr);
        CHECK_NOTHROW(call_forward(op, xb.cview(), yb.view(), axis, 1.0, call_style::full));
        CHECK_NOTHROW(call_forward(op, yb.view(), yb.view(), axis, 0.5, call_style::full));
    }
    {
        strided_buffer<T, R> xb(ext, layout{}, T(1), false);
        strided_buffer<T, R> yb(ext, layout{}, T(2), false);
        CHECK_NOTHROW(call_forward(op, xb.cview(), yb.view(), axis, 1.0, call_style::full));
        CHECK(expect_empty(yb.outside_changes(), "output buffer"));
        CHECK(expect_empty(xb.outside_changes(), "input buffer"));
    }
}

template <class T>
void forward_empty_suite(fwd_op op) {
    const std::vector<shape_t> shapes = {{0}, {0, 5}, {5, 0}, {0, 0}, {3, 0, 4}, {0, 2, 3}, {2, 3, 0}, {2, 0, 3, 4}, {2, 3, 4, 0}};
    for (const auto& s : shapes) {
        for (int axis : axis_spellings(s.size())) {
            dispatch_rank(s.size(), [&](auto rank) { forward_empty_case<T, decltype(rank)::value>(op, s, axis); });
        }
    }
}

/// Axis extent 1: softmax gives exactly 1 and log_softmax exactly 0 for finite input, NaN otherwise.
template <class T>
void forward_extent_one_suite(fwd_op op) {
    const std::vector<shape_t> shapes = {{1}, {1, 7}, {7, 1}, {3, 1, 5}, {2, 3, 1}, {1, 4, 3, 2}, {2, 1, 3, 17}};
    rng r(seed_for(14));
    for (const auto& s : shapes) {
        for (int axis : axis_spellings(s.size())) {
            const std::size_t a = lk_ref::normalize_axis(axis, s.size());
            if (s[a] != 1) continue;
            dense<T> x = random_dense<T>(s, 1e4, r);
            const T extremes[] = {vals<T>::max(), -vals<T>::max(), vals<T>::denormal(), T(0), static_cast<T>(-1e30),
                                  vals<T>::inf(), -vals<T>::inf(), vals<T>::nan()};
            for (std::size_t i = 0; i < x.data.size() && i < 8; ++i) x.data[i] = extremes[i];
            for (double t : test_temperatures) {
                dispatch_rank(s.size(), [&](auto rank) {
                    constexpr std::size_t R = decltype(rank)::value;
                    strided_buffer<T, R> xb(to_extents<R>(s), layout{}, T(0));
                    xb.fill(x);
                    strided_buffer<T, R> yb(to_extents<R>(s), layout{}, T(0));
                    call_forward(op, xb.cview(), yb.view(), axis, t, call_style::full);
                    const dense<T> y = yb.read();
                    for (index_t i = 0; i < x.size(); ++i) {
                        const T q = static_cast<T>(x[i] / static_cast<T>(t));
                        INFO(op_name(op) << "<" << vals<T>::name() << "> shape " << lk_ref::shape_string(s) << " axis "
                                         << axis << " T=" << t << " element " << index_string(s, i) << " x=" << x[i]
                                         << " y=" << y[i]);
                        if (std::isfinite(q)) {
                            CHECK(y[i] == (op == fwd_op::softmax ? T(1) : T(0)));
                        } else {
                            CHECK(std::isnan(y[i]));
                        }
                    }
                });
            }
        }
    }
}

/// Inputs with a zero stride (a broadcast view): along the reduction axis and across it.
template <class T>
void forward_broadcast_suite(fwd_op op) {
    rng r(seed_for(15));
    for (index_t n : {1, 3, 8, 17, 64}) {
        // x[i, j] = v[j] for every i: stride 0 on axis 0.
        std::vector<T> v(static_cast<std::size_t>(n));
        for (auto& e : v) e = static_cast<T>(r.uniform(-10, 10));
        dense<T> x({5, n});
        for (index_t i = 0; i < 5; ++i)
            for (index_t j = 0; j < n; ++j) x[i * n + j] = v[static_cast<std::size_t>(j)];
        for (int axis : {1, 0}) {
            const dense<ld> ref = op == fwd_op::softmax ? lk_ref::softmax(x, axis) : lk_ref::log_softmax(x, axis);
            logitkit::tensor_view<const T, 2> xv(v.data(), {5, n}, {0, 1});
            dense<T> out({5, n}, T(0));
            logitkit::tensor_view<T, 2> yv(out.data.data(), {5, n});
            call_forward(op, xv, yv, axis, 1.0, call_style::full);
            std::ostringstream what;
            what << op_name(op) << "<" << vals<T>::name() << "> broadcast input (stride 0 on axis 0), shape [5, " << n
                 << "], axis " << axis;
            if (op == fwd_op::softmax)
                check_close(out, ref, [](index_t, ld rr) { return softmax_allowed<T>(rr); }, what.str());
            else
                check_close(out, ref, [](index_t, ld rr) { return log_allowed<T>(rr); }, what.str());
        }
    }
}

}  // namespace lk_test
