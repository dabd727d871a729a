// logitkit — the kernels of sample_categorical: filters and the Gumbel-max draw of one line.
// SPDX-License-Identifier: MIT
//
// A line of logits x (contiguous, n classes) is sampled in double precision:
//   z_i = x_i / T                  (T = 1: z_i = x_i), correctly rounded;
//   top-k:  keep z_i >= the k-th largest z (every class tied with it is kept, as HF transformers'
//           TopKLogitsWarper);
//   top-p:  among those, order by (z desc, index asc) and keep the shortest prefix whose
//           probability reaches top_p: class j is kept when the classes before it hold less than
//           top_p (so the first always is), as HF transformers' TopPLogitsWarper. Probabilities are
//           det_exp(z - max z) / S, S summed in double in an order that does not depend on the
//           vector width (element i in accumulator i % 8; after top-k, the survivors in index
//           order), so the nucleus is the same on every path;
//   draw:   argmax over the kept classes of z_i + g_i (g_i the Gumbel noise of element i; the
//           lowest index among equal values), an exact sample of softmax(z) restricted to them.
// No probability tensor is written. Noise is computed only for the chunks of 256 classes holding a
// kept class, and with philox4x32 only for the kept classes themselves when they are few (the
// other generators draw, and drop, the words of every element).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "../tensor_view.hpp"
#include "gumbel_noise.hpp"
#include "simd.hpp"
#include "stages.hpp"

namespace logitkit {
namespace detail {

/// Validated options of one sample_categorical call.
struct sampling_plan {
    double temperature = 1.0;
    std::int64_t top_k = 0;  // 0: off
    double top_p = 1.0;      // >= 1: off
    bool divide() const noexcept { return temperature != 1.0; }
    bool nucleus() const noexcept { return top_p < 1.0; }
};

/// Noise of a line from a generator: one chunk at a time, in order. With philox4x32, the noise
/// of one element of the next chunk can also be computed alone (random_access).
template <class Arch, int K, class Source>
class stream_noise {
public:
    static constexpr bool random_access = std::is_same<Source, philox_source>::value;

    explicit stream_noise(Source& src) noexcept : src_(src) {}
    const double* get(std::size_t n) {
        src_.template fill<Arch, K>(words_, n);
        gumbel_of_words<Arch, K>(words_, n, g_);
        return g_;
    }
    void skip(std::size_t n) { src_.template skip<K>(n); }
    /// The noise of element j of the next chunk (the same bits as get() gives it).
    double at(std::size_t j) const noexcept {
        if constexpr (random_access) {
            std::uint32_t w[K];
            philox_words<scalar_arch>(src_.seed(), src_.position() + K * j, K, w);
            double g;
            gumbel_of_words<scalar_arch, K>(w, 1, &g);
            return g;
        } else {
            (void)j;
            return 0;
        }
    }

private:
    Source& src_;
    std::uint32_t words_[K * noise_chunk];
    double g_[noise_chunk];
};

/// Noise of a line computed beforehand.
class array_noise {
public:
    static constexpr bool random_access = true;

    explicit array_noise(const double* g) noexcept : g_(g) {}
    double at(std::size_t j) const noexcept { return g_[j]; }
    const double* get(std::size_t n) noexcept {
        const double* p = g_;
        g_ += n;
        return p;
    }
    void skip(std::size_t n) noexcept { g_ += n; }

private:
    const double* g_;
};

/// Sum of e[i] over consecutive calls, element i going to accumulator i % 8 whatever the vector
/// width, the accumulators added in order at the end: the same bits on every path.
template <class Arch>
struct fixed_order_sum {
    using V = batch<double, Arch>;
    static constexpr std::size_t W = V::size;
    static_assert(8 % W == 0, "logitkit: fixed_order_sum needs a vector width that divides 8");
    static constexpr std::size_t A = 8 / W;
    V acc[A];

    fixed_order_sum() noexcept {
        for (auto& a : acc) a = V(0.0);
    }
    /// Adds n values; every call but the last must add a multiple of 8.
    void add(const double* e, std::size_t n) noexcept {
        std::size_t j = 0;
        for (; j + 8 <= n; j += 8)
            for (std::size_t a = 0; a < A; ++a) acc[a] = acc[a] + simd::load<V>(e + j + a * W);
        for (std::size_t a = 0; a < A && j + a * W < n; ++a) {
            const std::size_t rem = std::min(W, n - (j + a * W));
            double t[W];
            for (std::size_t l = 0; l < W; ++l) t[l] = l < rem ? e[j + a * W + l] : 0.0;
            acc[a] = acc[a] + simd::load<V>(t);
        }
    }
    double total() const noexcept {
        double lanes[8];
        for (std::size_t a = 0; a < A; ++a) simd::store(lanes + a * W, acc[a]);
        double t = 0;
        for (double l : lanes) t += l;
        return t;
    }
};

template <class Arch, class T>
class line_sampler {
public:
    explicit line_sampler(const sampling_plan& p) : p_(p) {}

    double z_of(T v) const noexcept {
        return p_.divide() ? static_cast<double>(v) / p_.temperature : static_cast<double>(v);
    }

    /// The maximum of z over the line when every z is < +inf (no NaN) and one is > -inf.
    bool line_max(const T* x, index_type n, double& m) const noexcept {
        using V = batch<T, Arch>;
        constexpr index_type W = V::size;
        const V inf(std::numeric_limits<T>::infinity());
        auto ok = V(T(0)) < inf;
        index_type i = 0;
        for (; i + W <= n; i += W) ok = ok & (simd::load<V>(x + i) < inf);
        if (i < n) ok = ok & (simd::load_partial<V>(x + i, static_cast<std::size_t>(n - i), T(0)) < inf);
        if (!simd::all(ok)) return false;
        const T mx = row::reduce_max<Arch>(x, n);
        if (!(mx > -std::numeric_limits<T>::infinity())) return false;
        m = z_of(mx);
        return m < std::numeric_limits<double>::infinity() && m > -std::numeric_limits<double>::infinity();
    }

    /// The class drawn from line x of n classes whose maximum z is m, with noise from `noise`
    /// (n elements, in order).
    template <class Noise>
    index_type sample(const T* x, index_type n, double m, Noise& noise) {
        filter f;
        if (p_.top_k > 0 && p_.top_k < n) {
            f.active = true;
            f.threshold = z_of(kth_largest(x, n, static_cast<std::size_t>(p_.top_k)));
        }
        if (p_.nucleus()) {
            const bool top_k = f.active;
            f.active = true;
            f.nucleus = true;
            find_nucleus(x, n, m, top_k, f);
        }
        // Per lane, the first maximum of z + g and its index (an exact integer in a double);
        // then the lanes' maximum, the lowest index among equal values: the sequential argmax.
        using V = batch<double, Arch>;
        constexpr std::size_t W = V::size;
        static constexpr double iota[8] = {0, 1, 2, 3, 4, 5, 6, 7};
        static_assert(W <= 8, "logitkit: at most 8 double lanes");
        const double minus_inf = -std::numeric_limits<double>::infinity();
        const V lane = simd::load<V>(iota);
        V best(minus_inf), best_at(-1.0);
        double few_best = minus_inf, few_at = -1;
        double z[noise_chunk];
        for (index_type first = 0; first < n; first += index_type(noise_chunk)) {
            const std::size_t len = static_cast<std::size_t>(std::min<index_type>(n - first, index_type(noise_chunk)));
            const std::size_t kept = load_z(x + first, first, len, f, z);
            if (kept == 0) {
                noise.skip(len);
                continue;
            }
            if (Noise::random_access && kept * 8 <= len) {
                // A few kept classes (top-k): their noise alone.
                for (std::size_t j = 0; j < len; ++j) {
                    if (!(z[j] > minus_inf)) continue;
                    const double v = z[j] + noise.at(j);
                    const double i = static_cast<double>(first) + static_cast<double>(j);
                    if (v > few_best || (v == few_best && i < few_at)) {
                        few_best = v;
                        few_at = i;
                    }
                }
                noise.skip(len);
                continue;
            }
            const double* g = noise.get(len);
            auto step = [&](const V& v, std::size_t j) {
                const auto greater = v > best;
                best = simd::select(greater, v, best);
                best_at = simd::select(greater, V(static_cast<double>(first) + static_cast<double>(j)) + lane, best_at);
            };
            std::size_t j = 0;
            for (; j + W <= len; j += W) step(simd::load<V>(z + j) + simd::load<V>(g + j), j);
            if (j < len) {
                double t[W];
                for (std::size_t l = 0; l < W; ++l) t[l] = j + l < len ? z[j + l] + g[j + l] : minus_inf;
                step(simd::load<V>(t), j);
            }
        }
        double bv[W], bi[W];
        simd::store(bv, best);
        simd::store(bi, best_at);
        double v = few_best, at = few_at;
        for (std::size_t l = 0; l < W; ++l)
            if (bv[l] > v || (bv[l] == v && bv[l] > minus_inf && bi[l] < at)) {
                v = bv[l];
                at = bi[l];
            }
        return static_cast<index_type>(at);
    }

private:
    struct filter {
        bool active = false;
        double threshold = -std::numeric_limits<double>::infinity();  // top-k: keep z >= threshold
        bool nucleus = false;  // top-p: keep (z, i) <= (last_z, last_i) in (z desc, i asc) order
        double last_z = std::numeric_limits<double>::infinity();
        index_type last_i = 0;
        bool keeps(double z, index_type i) const noexcept {
            return z >= threshold && (!nucleus || z > last_z || (z == last_z && i <= last_i));
        }
    };

    /// z of x[0..len) (the line's elements first, ...) in z, -inf for the classes the filter
    /// drops; the number of classes kept.
    std::size_t load_z(const T* x, index_type first, std::size_t len, const filter& f, double* z) const noexcept {
        for (std::size_t j = 0; j < len; ++j) z[j] = static_cast<double>(x[j]);
        if (p_.divide()) {
            using V = batch<double, Arch>;
            const V t(p_.temperature);
            std::size_t j = 0;
            for (; j + V::size <= len; j += V::size) simd::store(z + j, simd::load<V>(z + j) / t);
            if (j < len) apply_tail<V>(z + j, len - j, 1.0, [&](const V& v) { return v / t; });
        }
        if (!f.active) return len;
        std::size_t kept = 0;
        for (std::size_t j = 0; j < len; ++j) {
            const bool keep = f.keeps(z[j], first + static_cast<index_type>(j));
            kept += keep ? 1 : 0;
            if (!keep) z[j] = -std::numeric_limits<double>::infinity();
        }
        return kept;
    }

    /// The k-th largest x (k < n), or -inf when fewer than k are > -inf.
    T kth_largest(const T* x, index_type n, std::size_t k) {
        std::vector<T>& buf = kbuf_;
        buf.clear();
        const std::size_t cap = std::max<std::size_t>(2 * k, k + 256);
        T bound = -std::numeric_limits<T>::infinity();
        for (index_type i = 0; i < n; ++i) {
            const T v = x[i];
            if (!(v > bound)) continue;
            buf.push_back(v);
            if (buf.size() >= cap) {
                std::nth_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k - 1), buf.end(),
                                 std::greater<T>());
                buf.resize(k);
                bound = buf[k - 1];
            }
        }
        if (buf.size() < k) return -std::numeric_limits<T>::infinity();
        std::nth_element(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(k - 1), buf.end(), std::greater<T>());
        return buf[k - 1];
    }

    using candidate = std::pair<double, index_type>;  // (z, index)

    /// The classes with lim <= z > -inf, in index order.
    void collect(const T* x, index_type n, double lim, std::vector<candidate>& cand) const {
        const double minus_inf = -std::numeric_limits<double>::infinity();
        // z = fl(x / T) is non-decreasing in x: a loose bound on x skips most divisions.
        const double xt = p_.divide() ? lim * p_.temperature : lim;
        const double xlo = lim == minus_inf ? minus_inf : xt - std::fabs(xt) * 1e-12 - 1e-300;
        cand.clear();
        for (index_type i = 0; i < n; ++i) {
            if (!(static_cast<double>(x[i]) >= xlo)) continue;
            const double z = z_of(x[i]);
            if (z >= lim && z > minus_inf) cand.emplace_back(z, i);
        }
    }

    /// Walks cand, a prefix of the (z desc, i asc) order of the classes, in that order (block by
    /// block: nth_element, then sort) until the probability before a class reaches `target`; sets
    /// the last class kept in f and returns true, or returns false when cand holds less than
    /// `target` (then the last class of cand is set when `all`).
    bool scan(std::vector<candidate>& cand, double m, double target, bool all, filter& f) const {
        const auto before = [](const candidate& a, const candidate& b) {
            return a.first > b.first || (a.first == b.first && a.second < b.second);
        };
        double c = 0;
        std::size_t last = 0, begin = 0, block = 64;
        bool reached = false;
        while (!reached && begin < cand.size()) {
            const std::size_t end = std::min(cand.size(), begin + block);
            const auto b = cand.begin() + static_cast<std::ptrdiff_t>(begin);
            const auto e = cand.begin() + static_cast<std::ptrdiff_t>(end);
            if (end < cand.size()) std::nth_element(b, e, cand.end(), before);
            std::sort(b, e, before);
            for (std::size_t j = begin; j < end; ++j) {
                if (j > 0 && !(c < target)) {
                    reached = true;
                    break;
                }
                last = j;
                c += det_exp(scalar_batch<double>(cand[j].first - m)).v;
            }
            begin = end;
            block *= 4;
        }
        if (!(reached || !(c < target) || all)) return false;
        f.last_z = cand[last].first;
        f.last_i = cand[last].second;
        return true;
    }

    /// Sets f.last_z / f.last_i: the last class of the nucleus among those with z >= f.threshold.
    /// The probabilities are det_exp(z - m) / S, S summed in an order that does not depend on the
    /// vector width.
    void find_nucleus(const T* x, index_type n, double m, bool top_k, filter& f) {
        auto& cand = cand_;
        if (top_k) {
            // Few classes survive top-k: S is their sum in index order.
            collect(x, n, f.threshold, cand);
            double s = 0;
            for (const candidate& c : cand) s += det_exp(scalar_batch<double>(c.first - m)).v;
            scan(cand, m, p_.top_p * s, true, f);
            return;
        }
        // S over the whole line, element i in accumulator i % 8.
        fixed_order_sum<Arch> sum;
        {
            using V = batch<double, Arch>;
            double z[noise_chunk];
            const V vm(m);
            for (index_type first = 0; first < n; first += index_type(noise_chunk)) {
                const std::size_t len =
                    static_cast<std::size_t>(std::min<index_type>(n - first, index_type(noise_chunk)));
                load_z(x + first, first, len, filter{}, z);
                std::size_t j = 0;
                for (; j + V::size <= len; j += V::size) simd::store(z + j, det_exp(simd::load<V>(z + j) - vm));
                if (j < len)
                    apply_tail<V>(z + j, len - j, -std::numeric_limits<double>::infinity(),
                                  [&](const V& v) { return det_exp(v - vm); });
                sum.add(z, len);
            }
        }
        const double target = p_.top_p * sum.total();
        // Candidates: the classes within delta of the maximum (a prefix of the (z desc, i asc)
        // order), widened until their probability reaches the target.
        for (const double delta : {12.0, 48.0, std::numeric_limits<double>::infinity()}) {
            const bool all = delta == std::numeric_limits<double>::infinity();
            collect(x, n, all ? -std::numeric_limits<double>::infinity() : m - delta, cand);
            if (scan(cand, m, target, all, f)) return;
        }
    }

    sampling_plan p_;
    std::vector<T> kbuf_;
    std::vector<std::pair<double, index_type>> cand_;
};

/// Calls f(x_offset, out_offset, idx) for every line along `axis`, in row-major order of the other
/// dimensions; idx is the line's index with 0 on the axis.
template <std::size_t R, class F>
void for_each_line(const extents_type<R>& shape, std::size_t axis, const extents_type<R>& xs, const extents_type<R>& os,
                   F&& f) {
    for (std::size_t k = 0; k < R; ++k)
        if (k != axis && shape[k] == 0) return;
    extents_type<R> idx{};
    index_type xo = 0, oo = 0;
    for (;;) {
        f(xo, oo, static_cast<const extents_type<R>&>(idx));
        std::size_t k = R;
        for (;;) {
            if (k == 0) return;
            --k;
            if (k == axis) continue;
            ++idx[k];
            xo += xs[k];
            oo += os[k];
            if (idx[k] < shape[k]) break;
            xo -= xs[k] * idx[k];
            oo -= os[k] * idx[k];
            idx[k] = 0;
        }
    }
}

}  // namespace detail
}  // namespace logitkit
