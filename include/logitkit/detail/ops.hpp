// logitkit — the softmax-family operations, assembled from the stages for rows and columns.
// SPDX-License-Identifier: MIT
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "dispatch.hpp"
#include "stages.hpp"

namespace logitkit {
namespace detail {

template <class T, class Arch, int K>
constexpr std::size_t block_lanes = batch<T, Arch>::size * K;

// One long line on an executor: its pieces (line_pieces: line_piece elements, the pieces that
// accumulate sums separately) run as tasks, and their results combine exactly as the
// single-threaded pass combines them, so the line's bits do not depend on the executor. An
// operation with `splits_lines` has row_split<Arch>(p, n, ex), built from these.

/// The line's sum as accumulate forms it, from piece_sum(k, begin, end) of each piece k.
template <class F>
double sum_of_pieces(executor& ex, index_type n, F piece_sum) {
    double total;
    line_pieces(n, ex).sums(1, &total, [&](std::size_t k, index_type b, index_type e, double* part) {
        *part = piece_sum(k, b, e);
    });
    return total;
}

/// The line's range from its pieces' ranges: the same maximum and minimum (a NaN, which either
/// may drop, makes the line non-finite), and finite when every piece is.
template <class T>
row_range<T> combined_range(const std::vector<row_range<T>>& r) {
    row_range<T> all = r[0];
    for (const auto& p : r) {
        all.max = p.max > all.max ? p.max : all.max;
        all.min = p.min < all.min ? p.min : all.min;
        all.finite = all.finite && p.finite;
    }
    return all;
}
template <class Arch, class T>
row_range<T> range_of_pieces(executor& ex, const T* x, index_type n) {
    const pieces line = line_pieces(n, ex);
    std::vector<row_range<T>> r(line.count());
    line.each([&](std::size_t k, index_type b, index_type e) { r[k] = row::reduce_range<Arch>(x + b, e - b); });
    return combined_range(r);
}

/// The first two stages of a split line: its shift (line_shift_for) from the pieces' ranges, then
/// the sum of exp(in(x) - m) piece by piece, storing the exponentials to y when Store.
template <class T>
struct shift_and_sum {
    line_shift<T> shift;
    double sum;
};

/// Whether a line with this shift and sum has outputs free of NaN (see simd::store_no_nan): a
/// NaN input makes the sum NaN, which the range may not show, and only exp_mode::checked admits
/// an infinity.
template <class T>
bool no_nan_outputs(const line_shift<T>& shift, double sum) noexcept {
    return shift.mode != exp_mode::checked && !std::isnan(sum);
}
template <class Arch, bool Store, class T, class In>
shift_and_sum<T> split_exp_sum(executor& ex, const T* x, T* y, index_type n, In in) {
    // As line_exp_sum, the exponentials first, each piece's range on the way: the line is
    // unshifted when its range, from the pieces', says so and no piece stopped (a NaN sum). The
    // pieces' sums are accumulate's, so the bits are the single pass's; otherwise the line takes
    // the range's pass and the exponentials' after all.
    if (!Store || y != x) {
        std::vector<row_range<T>> r(line_pieces(n, ex).count());
        const double s = sum_of_pieces(ex, n, [&](std::size_t k, index_type b, index_type e) {
            return row::unshifted_exp_pass<Arch, Store>(x + b, Store ? y + b : nullptr, e - b, in, r[k]);
        });
        if (!std::isnan(s) && line_shift_for(combined_range(r), in).mode == exp_mode::unshifted)
            return {{T(0), exp_mode::unshifted}, s};
    }
    const line_shift<T> sh = line_shift_for(range_of_pieces<Arch>(ex, x, n), in);
    const double s = sum_of_pieces(ex, n, [&](std::size_t, index_type b, index_type e) {
        return row::exp_sum<Arch, Store>(x + b, Store ? y + b : nullptr, e - b, sh.m, in, sh.mode);
    });
    return {sh, s};
}

/// The first two stages of one line: its shift (line_shift_for, from its range), then the sum of
/// exp(in(x) - m), storing the exponentials to y when Store; `next` is prefetched meanwhile.
/// `along` goes to row::unshifted_exp_sum: the caller finishes what it has not done. x may be
/// stored as S (bfloat16, float16) for T = compute_type_t<S>.
template <class Arch, bool Store, class S, class T, class In, class Along = row::along_nothing>
shift_and_sum<T> line_exp_sum(const S* x, T* y, index_type n, In in, const S* next = nullptr,
                              Along&& along = Along{}) noexcept {
    // Most lines of logits are unshifted ones: their exponentials are taken first, with the range
    // on the way, which spares such a line the range's own pass. A line that turns out otherwise
    // takes the two passes after all, the first pass having stopped early. Not in place, where
    // that first pass would have overwritten the line (masked lines, which hold -inf, run in place).
    double s;
    if ((!Store || !same_address(x, y)) && row::unshifted_exp_sum<Arch, Store>(x, y, n, in, s, next, along))
        return {{T(0), exp_mode::unshifted}, s};
    const line_shift<T> sh = line_shift_for(row::reduce_range<Arch>(x, n), in);
    return {sh, row::exp_sum<Arch, Store>(x, y, n, sh.m, in, sh.mode, next)};
}

/// The first two stages of a block of K batches of columns (see col::accumulate): the columns'
/// shifts m and exp_mode (col::reduce_range), then their sums of exp(in(x) - m), storing the
/// exponentials to y when Store. Unshifted blocks take their exponentials first, as lines do
/// (line_exp_sum); not in place. A block of several pieces (row_pieces) takes the same stages
/// piece by piece, its verdict from them all.
template <class Arch, int K, bool Store, class T, class In>
exp_mode block_exp_sum(const T* x, index_type sx, T* y, index_type sy, const pieces& rows, T* m, In in,
                       double* sums) {
    const index_type n = rows.n;
    const std::size_t c = rows.count();
    if (c <= 1) {
        if ((!Store || y != x) && col::unshifted_exp_sum<Arch, K, Store>(x, sx, y, sy, n, m, in, sums))
            return exp_mode::unshifted;
        const exp_mode mode = col::reduce_range<Arch, K, true>(x, sx, n, m, in);
        col::exp_sum<Arch, K, Store>(x, sx, y, sy, n, m, in, sums, mode);
        return mode;
    }
    constexpr std::size_t lanes = block_lanes<T, Arch, K>;
    if (!Store || y != x) {
        std::vector<char> within(c);
        rows.sums(lanes, sums, [&](std::size_t k, index_type b, index_type e, double* part) {
            within[k] = col::unshifted_exp_pass<Arch, K, Store>(x + b * sx, sx, Store ? y + b * sy : nullptr, sy, e - b,
                                                                in, part);
        });
        if (std::find(within.begin(), within.end(), char(0)) == within.end() &&
            col::unshifted_verdict<Arch, K>(x, sx, n, sums, m))
            return exp_mode::unshifted;
    }
    std::vector<T> hi(c * lanes), lo(c * lanes);
    rows.each([&](std::size_t k, index_type b, index_type e) {
        col::range<Arch, K>(x + b * sx, sx, e - b, &hi[k * lanes], &lo[k * lanes]);
    });
    // The block's maxima and minima, into piece 0's.
    for (std::size_t k = 1; k < c; ++k)
        for (std::size_t l = 0; l < lanes; ++l) {
            const T h = hi[k * lanes + l], w = lo[k * lanes + l];
            hi[l] = h > hi[l] ? h : hi[l];
            lo[l] = w < lo[l] ? w : lo[l];
        }
    const exp_mode mode = col::mode_of_stored_range<Arch, K, true>(hi.data(), lo.data(), m, in);
    rows.sums(lanes, sums, [&](std::size_t, index_type b, index_type e, double* part) {
        col::exp_sum<Arch, K, Store>(x + b * sx, sx, Store ? y + b * sy : nullptr, sy, e - b, m, in, part, mode);
    });
    return mode;
}

/// line_exp_sum, without storing, of the first operand of each of `count` lines (std::get<0>), into
/// r[0..count); short lines through their registers (row::shifted_exp_short), one after another
/// so that the exponential's constants stay in registers.
template <class Arch, class Line, class In, class T>
void line_exp_sums(const Line* lines, std::size_t count, index_type n, In in, shift_and_sum<T>* r) noexcept {
    if (row::with_short_line<Arch, T>(n, [&](auto B) {
            for (std::size_t k = 0; k < count; ++k) {
                const auto l =
                    row::shifted_exp_short<Arch, decltype(B)::value, true, false>(std::get<0>(lines[k]), n, in);
                r[k] = {l.shift, l.sum};
            }
        }))
        return;
    for (std::size_t k = 0; k < count; ++k)
        r[k] = line_exp_sum<Arch, false>(std::get<0>(lines[k]), static_cast<T*>(nullptr), n, in);
}

// An operation with `stream_scratch` also has row<Arch, true>(p, n, scratch, next), which writes
// its output with non-temporal stores (see row::write_row) given `stream_scratch` elements of
// scratch per element of the line; the dispatcher uses it for outputs far larger than the cache,
// through the operation's streamer<Arch> (line_streamer: line by line; lagged_streamer). Lines
// whose output is stored as bfloat16 or float16 take as much scratch in rows<Arch>.

/// The streamed path of softmax and log_softmax over a run of lines, in order: each line's output
/// stage (Op::streamed_output, a row::rewrite_along with non-temporal stores) is taken beside the
/// next line's first pass, which meanwhile prefetches the line after. A line's stages alone leave
/// the memory idle while its exponentials are taken and then only write; so, its writes and the
/// next line's reads overlap that arithmetic as in a copy (1024x32000 float: softmax 13% less
/// time, log_softmax 11%). Store: the first pass stores the exponentials, to the halves of the
/// scratch (2 n elements) in turn. A line whose output is not aligned to a batch, or a short
/// line, takes row<Arch, true> alone (the same bits).
template <class Arch, class T, class Op, bool Store>
class lagged_streamer {
public:
    lagged_streamer(const Op& op, index_type n, T* scratch) noexcept : op_(op), n_(n), scratch_(scratch) {}
    void line(const std::array<T*, 2>& p, const next_line<T>& next) {
        if (row::is_short_line<Arch, T>(n_) || reinterpret_cast<std::uintptr_t>(p[1]) % sizeof(batch<T, Arch>) != 0) {
            finish();
            op_.template row<Arch, true>(p, n_, scratch_, next);
            return;
        }
        T* e = nullptr;
        if constexpr (Store) {
            half_ ^= 1;
            e = scratch_ + half_ * n_;
        }
        shift_and_sum<T> r;
        if (before_.y == nullptr) {
            r = line_exp_sum<Arch, Store>(p[0], e, n_, op_.in, next.a);
        } else {
            r = line_exp_sum<Arch, Store>(p[0], e, n_, op_.in, next.a, before_);
            before_.finish();
        }
        before_ = op_.template streamed_output<Arch>(p, n_, e, r);
    }
    void finish() noexcept { before_.finish(); }

private:
    const Op& op_;
    index_type n_;
    T* scratch_;
    int half_ = 0;
    decltype(std::declval<const Op&>().template streamed_output<Arch>(std::array<T*, 2>{}, 0, nullptr,
                                                                          shift_and_sum<T>{})) before_{};
};

/// softmax: max, then exp and its sum (storing exp), then scale by 1 / sum. Streamed, exp goes to
/// a scratch line, so that y is written once.
template <class T, class In>
struct softmax_op {
    static constexpr std::size_t inputs = 1;
    static constexpr bool reduces = false;
    static constexpr T masked_value = T(0);
    static constexpr std::size_t stream_scratch = 2;
    In in;

    template <class Arch, bool Stream = false>
    void row(const std::array<T*, 2>& p, index_type n, T* scratch = nullptr, const next_line<T>& next = {}) const {
        if (row::with_short_line<Arch, T>(n, [&](auto B) { short_row<Arch, decltype(B)::value>(p, n); })) return;
        T* e = Stream ? scratch : p[1];
        const double s = line_exp_sum<Arch, true>(p[0], e, n, in, next.a).sum;
        row::scale<Arch, Stream>(e, p[1], n, static_cast<T>(1.0 / s), next);
    }
    template <class Arch>
    using streamer = lagged_streamer<Arch, T, softmax_op, true>;
    /// The streamed scale of a line, its exponentials at e (see lagged_streamer).
    template <class Arch>
    row::rewrite_along<Arch, T, row::times<batch<T, Arch>>, true> streamed_output(const std::array<T*, 2>& p,
                                                                                   index_type n, const T* e,
                                                                                   const shift_and_sum<T>& r) const {
        return {e, p[1], n, {batch<T, Arch>(static_cast<T>(1.0 / r.sum))}};
    }
    // Lines go in groups, each line's scale taken with the next line's exponentials, so that
    // each overlaps the other's work. Short lines of 2 to 8 batches: a line's scale and store
    // (waiting on its sum and division) after the next line's exponentials, both lines in
    // registers (4096x128 float: 16% less time; 16 batches would not fit in them). Longer
    // lines: the scale's loads and stores a batch at a time beside the next line's exponentials
    // (row::rewrite_along), where they cost little beside the exponential's arithmetic
    // (32x32000 float: 10-14% less time).
    static constexpr std::size_t line_group = 8;
    template <class Arch>
    static constexpr bool groups(index_type n) noexcept {
        constexpr index_type W = batch<T, Arch>::size;
        return n > W && (n <= 8 * W || !row::is_short_line<Arch, T>(n));
    }
    // A Line is std::array<T*, 2> or converted_line<SX, SY>, x or y stored as bfloat16 or
    // float16: the loads and stores convert, which spares such lines the passes that widen them
    // into float scratch and round them back (bfloat16, 4096x128: 8% less time; 128x1000: 9%;
    // 32x32000: 11%; 1024x32000: 20%). A long line whose y is not T takes its exponentials into
    // `scratch`, 2 n elements (stream_scratch per element), the halves in turn: the line before
    // is scaled from the other half meanwhile. A nonzero `ahead`: each long line's first pass
    // prefetches the x `ahead` elements past its own (the next line of lines out of cache).
    template <class Arch, class Line>
    void rows(const Line* lines, std::size_t count, index_type n, T* scratch = nullptr, index_type ahead = 0) const {
        if (row::with_short_line<Arch, T>(n, [&](auto B) { short_rows<Arch, decltype(B)::value>(lines, count, n); }))
            return;
        using V = batch<T, Arch>;
        using X = std::remove_pointer_t<std::tuple_element_t<0, Line>>;
        using Y = std::remove_pointer_t<std::tuple_element_t<1, Line>>;
        row::rewrite_along<Arch, T, row::times<V>, false, T, Y> before;
        for (std::size_t k = 0; k < count; ++k) {
            X* x = std::get<0>(lines[k]);
            Y* y = std::get<1>(lines[k]);
            T* e;
            if constexpr (std::is_same<Y, T>::value)
                e = y;
            else
                e = scratch + (k % 2) * static_cast<std::size_t>(n);
            const X* next = ahead != 0 ? prefetch_address(x, ahead) : nullptr;
            shift_and_sum<T> r;
            if (k == 0) {
                r = line_exp_sum<Arch, true>(x, e, n, in, next);
            } else {
                r = line_exp_sum<Arch, true>(x, e, n, in, next, before);
                before.finish();
            }
            before = {e, y, n, {V(static_cast<T>(1.0 / r.sum))}};
            before.no_nan = no_nan_outputs(r.shift, r.sum);
        }
        before.finish();
    }
    template <class Arch, int B, class Line>
    void short_rows(const Line* lines, std::size_t count, index_type n) const {
        using V = batch<T, Arch>;
        if constexpr (B > 8) {
            for (std::size_t k = 0; k < count; ++k) short_row<Arch, B>(lines[k], n);
        } else {
            // The line before: its exponentials, output and sum.
            V e[B];
            std::decay_t<decltype(std::get<1>(lines[0]))> y = nullptr;
            double s = 1;
            bool no_nan = false;
            const auto finish = [&]() LOGITKIT_LAMBDA_INLINE {
                const V inv(static_cast<T>(1.0 / s));
                row::unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { e[b] = e[b] * inv; });
                row::store_short(y, n, e, no_nan);
            };
            for (std::size_t k = 0; k < count; ++k) {
                const auto l = row::shifted_exp_short<Arch, B, true>(std::get<0>(lines[k]), n, in);
                if (y != nullptr) finish();
                row::unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { e[b] = l.e[b]; });
                y = std::get<1>(lines[k]);
                s = l.sum;
                no_nan = no_nan_outputs(l.shift, l.sum);
            }
            finish();
        }
    }
    template <class Arch, int B, class Line>
    void short_row(const Line& p, index_type n) const {
        auto l = row::shifted_exp_short<Arch, B, true>(std::get<0>(p), n, in);
        const batch<T, Arch> inv(static_cast<T>(1.0 / l.sum));
        row::unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { l.e[b] = l.e[b] * inv; });
        row::store_short(std::get<1>(p), n, l.e, no_nan_outputs(l.shift, l.sum));
    }
    static constexpr bool splits_lines = true;
    template <class Arch>
    void row_split(const std::array<T*, 2>& p, index_type n, executor& ex) const {
        const T inv = static_cast<T>(1.0 / split_exp_sum<Arch, true>(ex, p[0], p[1], n, in).sum);
        line_pieces(n, ex).each(
            [&](std::size_t, index_type b, index_type e) { row::scale<Arch>(p[1] + b, p[1] + b, e - b, inv); });
    }
    static constexpr bool splits_blocks = true;
    template <class Arch, int K>
    void cols(const std::array<T*, 2>& p, const std::array<index_type, 2>& s, index_type n,
              executor* ex = nullptr) const {
        constexpr std::size_t lanes = block_lanes<T, Arch, K>;
        const pieces rows = row_pieces(n, ex);
        T m[lanes], inv[lanes];
        double sums[lanes];
        block_exp_sum<Arch, K, true>(p[0], s[0], p[1], s[1], rows, m, in, sums);
        for (std::size_t l = 0; l < lanes; ++l) inv[l] = static_cast<T>(1.0 / sums[l]);
        rows.each([&](std::size_t, index_type b, index_type e) {
            col::scale<Arch, K>(p[1] + b * s[1], s[1], e - b, inv);
        });
    }
};

/// log_softmax: max, then the sum of exp, then (x - max) - log(sum).
template <class T, class In>
struct log_softmax_op {
    static constexpr std::size_t inputs = 1;
    static constexpr bool reduces = false;
    static constexpr T masked_value = -std::numeric_limits<T>::infinity();
    static constexpr std::size_t stream_scratch = 0;
    In in;

    template <class Arch, bool Stream = false>
    void row(const std::array<T*, 2>& p, index_type n, T* = nullptr, const next_line<T>& next = {}) const {
        // A short line takes its registers' path whether streamed or not, so that both give the same bits.
        if (row::is_short_line<Arch, T>(n) || !Stream) return rows<Arch>(&p, 1, n);
        two_passes<Arch, Stream>(p, n, next);
    }
    template <class Arch, bool Stream = false>
    void two_passes(const std::array<T*, 2>& p, index_type n, const next_line<T>& next = {}) const {
        const auto r = line_exp_sum<Arch, false>(p[0], static_cast<T*>(nullptr), n, in, next.a);
        const log_offset<T> o = log_offset_of(r.shift, r.sum);
        row::shift<Arch, Stream>(p[0], p[1], n, o.a, o.b, in, next);
    }
    template <class Arch>
    using streamer = lagged_streamer<Arch, T, log_softmax_op, false>;
    /// The streamed output stage of a line (see lagged_streamer).
    template <class Arch>
    row::rewrite_along<Arch, T, row::minus_twice<batch<T, Arch>, In>, true> streamed_output(
        const std::array<T*, 2>& p, index_type n, const T*, const shift_and_sum<T>& r) const {
        using V = batch<T, Arch>;
        const log_offset<T> o = log_offset_of(r.shift, r.sum);
        return {p[0], p[1], n, {V(o.a), V(o.b), in}};
    }
    // Lines go in groups. Lines of up to 2 KiB: every line's sum first, then the logarithms and
    // the outputs (the group's lines reread from L1), so that the calls into the C library's log
    // do not stand between the lines' vector work (4096x128 float: 20% less time); longer lines
    // gain nothing so, and a group of them no longer fits in L1 (128x1000 double: 10% more
    // time). Longer lines, not streamed: a line's output stage, reading x and writing y, is taken
    // beside the next line's exponentials (row::rewrite_along, as softmax's scale). Alone, that
    // stage waits on its stores, whose lines of y the cache must first fetch (128x1000 float: 6%
    // less time, double 10%); the first pass, which stores nothing, leaves room for them.
    static constexpr std::size_t line_group = 8;
    template <class Arch>
    static constexpr bool groups(index_type n) noexcept {
        return n > 0;
    }
    // A Line is std::array<T*, 2> or converted_line<SX, SY> (see softmax_op::rows); no scratch.
    template <class Arch, class Line>
    void rows(const Line* lines, std::size_t count, index_type n, T* = nullptr, index_type ahead = 0) const {
        const std::size_t bytes = static_cast<std::size_t>(n) * sizeof(T);
        if (bytes > 2048) return long_rows<Arch>(lines, count, n, ahead);
        using Y = std::remove_pointer_t<std::tuple_element_t<1, Line>>;
        shift_and_sum<T> r[line_group];
        line_exp_sums<Arch>(lines, count, n, in, r);
        for (std::size_t k = 0; k < count; ++k) {
            const log_offset<T> o = log_offset_of(r[k].shift, r[k].sum);
            if (is_reduced_precision<Y>::value && no_nan_outputs(r[k].shift, r[k].sum))
                row::shift<Arch, false, is_reduced_precision<Y>::value>(std::get<0>(lines[k]), std::get<1>(lines[k]),
                                                                        n, o.a, o.b, in);
            else
                row::shift<Arch>(std::get<0>(lines[k]), std::get<1>(lines[k]), n, o.a, o.b, in);
        }
    }
    template <class Arch, class Line>
    void long_rows(const Line* lines, std::size_t count, index_type n, index_type ahead) const {
        using V = batch<T, Arch>;
        using X = std::remove_pointer_t<std::tuple_element_t<0, Line>>;
        using Y = std::remove_pointer_t<std::tuple_element_t<1, Line>>;
        row::rewrite_along<Arch, T, row::minus_twice<V, In>, false, std::remove_const_t<X>, Y> before;
        for (std::size_t k = 0; k < count; ++k) {
            X* x = std::get<0>(lines[k]);
            const X* next = ahead != 0 ? prefetch_address(x, ahead) : nullptr;
            shift_and_sum<T> r;
            if (k == 0) {
                r = line_exp_sum<Arch, false>(x, static_cast<T*>(nullptr), n, in, next);
            } else {
                r = line_exp_sum<Arch, false>(x, static_cast<T*>(nullptr), n, in, next, before);
                before.finish();
            }
            const log_offset<T> o = log_offset_of(r.shift, r.sum);
            before = {x, std::get<1>(lines[k]), n, {V(o.a), V(o.b), in}};
            before.no_nan = no_nan_outputs(r.shift, r.sum);
        }
        before.finish();
    }
    static constexpr bool splits_lines = true;
    template <class Arch>
    void row_split(const std::array<T*, 2>& p, index_type n, executor& ex) const {
        const auto r = split_exp_sum<Arch, false>(ex, p[0], static_cast<T*>(nullptr), n, in);
        const log_offset<T> o = log_offset_of(r.shift, r.sum);
        line_pieces(n, ex).each([&](std::size_t, index_type b, index_type e) {
            row::shift<Arch>(p[0] + b, p[1] + b, e - b, o.a, o.b, in);
        });
    }
    static constexpr bool splits_blocks = true;
    template <class Arch, int K>
    void cols(const std::array<T*, 2>& p, const std::array<index_type, 2>& s, index_type n,
              executor* ex = nullptr) const {
        constexpr std::size_t lanes = block_lanes<T, Arch, K>;
        const pieces rows = row_pieces(n, ex);
        T m[lanes], l[lanes];
        double sums[lanes];
        const exp_mode mode =
            block_exp_sum<Arch, K, false>(p[0], s[0], static_cast<T*>(nullptr), 0, rows, m, in, sums);
        for (std::size_t i = 0; i < lanes; ++i) {
            const log_offset<T> o = log_offset_of(line_shift<T>{m[i], mode}, sums[i]);
            m[i] = o.a;
            l[i] = o.b;
        }
        rows.each([&](std::size_t, index_type b, index_type e) {
            col::shift<Arch, K>(p[0] + b * s[0], s[0], p[1] + b * s[1], s[1], e - b, m, l, in);
        });
    }
};

/// log(sum(exp(x))) from the line's maximum m and sum s = sum(exp(x - m)). Any NaN gives NaN;
/// otherwise an all -inf (or empty) line gives -inf and a line holding +inf gives +inf. The
/// maximum may have skipped a NaN, hence the scan when m is infinite.
template <class T, class HasNan>
T finish_logsumexp(T m, double s, HasNan has_nan) {
    constexpr T inf = std::numeric_limits<T>::infinity();
    if (m == -inf || m == inf) return has_nan() ? std::numeric_limits<T>::quiet_NaN() : m;
    return static_cast<T>(static_cast<double>(m) + std::log(s));
}

/// logsumexp; streamed (it writes one element per line), it prefetches the next line.
template <class T>
struct logsumexp_op {
    static constexpr std::size_t inputs = 1;
    static constexpr bool reduces = true;
    static constexpr std::size_t stream_scratch = 0;

    template <class Arch, bool Stream = false>
    void row(const std::array<T*, 2>& p, index_type n, T* = nullptr, const next_line<T>& next = {}) const {
        if (row::is_short_line<Arch, T>(n)) return rows<Arch>(&p, 1, n);
        finish<Arch>(p, n, line_exp_sum<Arch, false>(p[0], static_cast<T*>(nullptr), n, identity_input{}, next.a));
    }
    // Lines go in groups: every line's sum first, then the logarithms, so that the calls into the
    // C library's log do not stand between the lines' vector work (4096x128 float: 15% less time).
    static constexpr std::size_t line_group = 8;
    template <class Arch>
    static constexpr bool groups(index_type) noexcept {
        return true;
    }
    template <class Arch>
    void rows(const std::array<T*, 2>* lines, std::size_t count, index_type n) const {
        shift_and_sum<T> r[line_group];
        line_exp_sums<Arch>(lines, count, n, identity_input{}, r);
        for (std::size_t k = 0; k < count; ++k) finish<Arch>(lines[k], n, r[k]);
    }
    template <class Arch>
    static void finish(const std::array<T*, 2>& p, index_type n, const shift_and_sum<T>& r) {
        *p[1] = finish_logsumexp(r.shift.m, r.sum, [&] { return has_nan<Arch>(p[0], n); });
    }
    static constexpr bool splits_lines = true;
    template <class Arch>
    void row_split(const std::array<T*, 2>& p, index_type n, executor& ex) const {
        const auto r = split_exp_sum<Arch, false>(ex, p[0], static_cast<T*>(nullptr), n, identity_input{});
        *p[1] = finish_logsumexp(r.shift.m, r.sum, [&] { return has_nan<Arch>(p[0], n); });
    }
    // Templated on Arch like every kernel, so that each instruction set's copy stays its own.
    template <class Arch>
    static bool has_nan(const T* x, index_type n) {
        for (index_type i = 0; i < n; ++i)
            if (std::isnan(x[i])) return true;
        return false;
    }
    static constexpr bool splits_blocks = true;
    template <class Arch, int K>
    void cols(const std::array<T*, 2>& p, const std::array<index_type, 2>& s, index_type n,
              executor* ex = nullptr) const {
        constexpr std::size_t lanes = block_lanes<T, Arch, K>;
        T m[lanes];
        double sums[lanes];
        block_exp_sum<Arch, K, false>(p[0], s[0], static_cast<T*>(nullptr), 0, row_pieces(n, ex), m, identity_input{},
                                      sums);
        for (std::size_t l = 0; l < lanes; ++l)
            p[1][l] = finish_logsumexp(m[l], sums[l], [&] {
                for (index_type r = 0; r < n; ++r)
                    if (std::isnan(p[0][r * s[0] + index_type(l)])) return true;
                return false;
            });
    }
};

/// softmax backward: dx = y * (dy - sum(dy * y)).
template <class T>
struct softmax_backward_op {
    static constexpr std::size_t inputs = 2;
    static constexpr bool reduces = false;
    static constexpr T masked_value = T(0);  // y at a masked element
    static constexpr std::size_t stream_scratch = 0;

    template <class Arch, bool Stream = false>
    void row(const std::array<T*, 3>& p, index_type n, T* = nullptr, const next_line<T>& next = {}) const {
        if (row::with_short_line<Arch, T>(n, [&](auto B) { short_row<Arch, decltype(B)::value>(p, n); })) return;
        const double s = row::dot<Arch>(p[0], p[1], n);
        row::softmax_grad<Arch, Stream>(p[0], p[1], p[2], n, static_cast<T>(s), next);
    }
    template <class Arch, int B>
    void short_row(const std::array<T*, 3>& p, index_type n) const {
        using V = batch<T, Arch>;
        V y[B], dy[B], t[B];
        row::load_short(p[0], n, T(0), y);
        row::load_short(p[1], n, T(0), dy);
        row::unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { t[b] = y[b] * dy[b]; });
        const V s(static_cast<T>(row::sum_short(t)));
        row::unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { t[b] = y[b] * (dy[b] - s); });
        row::store_short(p[2], n, t);
    }
    static constexpr bool splits_lines = true;
    template <class Arch>
    void row_split(const std::array<T*, 3>& p, index_type n, executor& ex) const {
        const T s = static_cast<T>(
            sum_of_pieces(ex, n, [&](std::size_t, index_type b, index_type e) { return row::dot<Arch>(p[0] + b, p[1] + b, e - b); }));
        line_pieces(n, ex).each([&](std::size_t, index_type b, index_type e) {
            row::softmax_grad<Arch>(p[0] + b, p[1] + b, p[2] + b, e - b, s);
        });
    }
    static constexpr bool splits_blocks = true;
    template <class Arch, int K>
    void cols(const std::array<T*, 3>& p, const std::array<index_type, 3>& s, index_type n,
              executor* ex = nullptr) const {
        constexpr std::size_t lanes = block_lanes<T, Arch, K>;
        const pieces rows = row_pieces(n, ex);
        double sums[lanes];
        T st[lanes];
        rows.sums(lanes, sums, [&](std::size_t, index_type b, index_type e, double* part) {
            col::dot<Arch, K>(p[0] + b * s[0], s[0], p[1] + b * s[1], s[1], e - b, part);
        });
        for (std::size_t l = 0; l < lanes; ++l) st[l] = static_cast<T>(sums[l]);
        rows.each([&](std::size_t, index_type b, index_type e) {
            col::softmax_grad<Arch, K>(p[0] + b * s[0], s[0], p[1] + b * s[1], s[1], p[2] + b * s[2], s[2], e - b, st);
        });
    }
};

/// log_softmax backward: dx = dy - exp(y) * sum(dy).
template <class T>
struct log_softmax_backward_op {
    static constexpr std::size_t inputs = 2;
    static constexpr bool reduces = false;
    static constexpr T masked_value = -std::numeric_limits<T>::infinity();  // y at a masked element
    static constexpr std::size_t stream_scratch = 0;

    template <class Arch, bool Stream = false>
    void row(const std::array<T*, 3>& p, index_type n, T* = nullptr, const next_line<T>& next = {}) const {
        if (row::with_short_line<Arch, T>(n, [&](auto B) { short_row<Arch, decltype(B)::value>(p, n); })) return;
        const double s = row::sum<Arch>(p[1], n);
        row::log_softmax_grad<Arch, Stream>(p[0], p[1], p[2], n, static_cast<T>(s), next);
    }
    // Lines longer than a short line go in groups: a line's output stage takes the next line's
    // sum of dy beside it, and the last line's its own dy again (from L1, where it costs little).
    static constexpr std::size_t line_group = 8;
    template <class Arch>
    static constexpr bool groups(index_type n) noexcept {
        return !row::is_short_line<Arch, T>(n);
    }
    template <class Arch>
    void rows(const std::array<T*, 3>* lines, std::size_t count, index_type n) const {
        double s = row::sum<Arch>(lines[0][1], n);
        for (std::size_t k = 0; k < count; ++k) {
            const std::array<T*, 3>& p = lines[k];
            const T* next = k + 1 < count ? lines[k + 1][1] : p[1];
            s = row::log_softmax_grad_and_sum<Arch>(p[0], p[1], p[2], n, static_cast<T>(s), next);
        }
    }
    template <class Arch, int B>
    void short_row(const std::array<T*, 3>& p, index_type n) const {
        using V = batch<T, Arch>;
        V y[B], dy[B];
        row::load_short(p[0], n, T(0), y);
        row::load_short(p[1], n, T(0), dy);
        const V s(static_cast<T>(-row::sum_short(dy)));
        row::unrolled<B>([&](int b) LOGITKIT_LAMBDA_INLINE { y[b] = row::log_softmax_grad_of(y[b], s, dy[b]); });
        row::store_short(p[2], n, y);
    }
    static constexpr bool splits_lines = true;
    template <class Arch>
    void row_split(const std::array<T*, 3>& p, index_type n, executor& ex) const {
        const T s = static_cast<T>(
            sum_of_pieces(ex, n, [&](std::size_t, index_type b, index_type e) { return row::sum<Arch>(p[1] + b, e - b); }));
        line_pieces(n, ex).each([&](std::size_t, index_type b, index_type e) {
            row::log_softmax_grad<Arch>(p[0] + b, p[1] + b, p[2] + b, e - b, s);
        });
    }
    static constexpr bool splits_blocks = true;
    template <class Arch, int K>
    void cols(const std::array<T*, 3>& p, const std::array<index_type, 3>& s, index_type n,
              executor* ex = nullptr) const {
        constexpr std::size_t lanes = block_lanes<T, Arch, K>;
        const pieces rows = row_pieces(n, ex);
        double sums[lanes];
        T st[lanes];
        rows.sums(lanes, sums, [&](std::size_t, index_type b, index_type e, double* part) {
            col::sum<Arch, K>(p[1] + b * s[1], s[1], e - b, part);
        });
        for (std::size_t l = 0; l < lanes; ++l) st[l] = static_cast<T>(sums[l]);
        rows.each([&](std::size_t, index_type b, index_type e) {
            col::log_softmax_grad<Arch, K>(p[0] + b * s[0], s[0], p[1] + b * s[1], s[1], p[2] + b * s[2], s[2], e - b,
                                           st);
        });
    }
};

/// Builds the operand layout: views are given inputs first, outputs last; each may have its own
/// element type.
template <std::size_t R, class... Views>
axis_layout<R, sizeof...(Views)> make_layout(const extents_type<R>& shape, const Views&... views) {
    axis_layout<R, sizeof...(Views)> L;
    L.shape = shape;
    std::size_t i = 0;
    ((L.strides[i] = views.strides(),
      L.base[i] = reinterpret_cast<char*>(const_cast<std::remove_const_t<typename Views::element_type>*>(views.data())),
      ++i),
     ...);
    return L;
}

}  // namespace detail
}  // namespace logitkit
