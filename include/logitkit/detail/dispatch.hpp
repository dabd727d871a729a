// logitkit — running a per-axis operation over a strided tensor.
// SPDX-License-Identifier: MIT
//
// An operation sees its operands (inputs first, then outputs) as pointers plus strides. It
// provides row<Arch>(p, n), for operands contiguous along the axis, and cols<Arch, K>(p, s, n),
// for K batches of adjacent columns that are contiguous in some other dimension and step by s
// along the axis. The dispatcher picks, in this order:
//   1. rows    — every operand has stride 1 on the axis: the contiguous fast path;
//   2. columns — every operand has stride 1 on another dimension: the axis is walked with vector
//                loads across that dimension (no gathering);
//   3. gather  — anything else: each line is copied to a contiguous buffer, processed as a row,
//                and the outputs are copied back.
// An operation with `reduces = true` has one output whose extent along the axis is 1 (its axis
// stride is ignored). One with `line_group` also has rows<Arch>(lines, count, n), taking up to
// line_group rows at once where groups<Arch>(n) says so, each row's result the same as alone.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "../executor.hpp"
#include "../reduced_precision.hpp"
#include "../tensor_view.hpp"
#include "simd.hpp"
#include "stages.hpp"

namespace logitkit {
namespace detail {

template <std::size_t N>
using pointers = std::array<char*, N>;

template <std::size_t R, std::size_t N>
struct axis_layout {
    extents_type<R> shape;                   // the inputs' shape
    std::array<extents_type<R>, N> strides;  // per operand, in elements
    pointers<N> base;                        // per operand, as bytes
};

/// The number of indices of the dimensions listed in `dims` (count of them).
template <std::size_t R>
index_type outer_count(const extents_type<R>& shape, const std::array<std::size_t, R>& dims, std::size_t count) {
    index_type total = 1;
    for (std::size_t k = 0; k < count; ++k) total *= shape[dims[k]];
    return total;
}

/// Calls f(offsets) for the indices [begin, end) of the dimensions listed in `dims` (count of
/// them, the last one varying fastest), where offsets[i] is operand i's element offset.
template <std::size_t R, std::size_t N, class F>
void for_each_outer_range(const axis_layout<R, N>& L, const std::array<std::size_t, R>& dims, std::size_t count,
                          index_type begin, index_type end, F f) {
    if (begin >= end) return;
    std::array<index_type, R> idx{};
    std::array<index_type, N> off{};
    for (std::size_t k = count, rest = static_cast<std::size_t>(begin); k-- > 0;) {
        const std::size_t d = dims[k];
        const auto extent = static_cast<std::size_t>(L.shape[d]);
        idx[k] = static_cast<index_type>(rest % extent);
        rest /= extent;
        for (std::size_t i = 0; i < N; ++i) off[i] += L.strides[i][d] * idx[k];
    }
    for (index_type left = end - begin;;) {
        f(off);
        if (--left == 0) return;
        for (std::size_t k = count; k-- > 0;) {
            const std::size_t d = dims[k];
            ++idx[k];
            for (std::size_t i = 0; i < N; ++i) off[i] += L.strides[i][d];
            if (idx[k] < L.shape[d]) break;
            for (std::size_t i = 0; i < N; ++i) off[i] -= L.strides[i][d] * idx[k];
            idx[k] = 0;
        }
    }
}

/// for_each_outer_range over all the indices.
template <std::size_t R, std::size_t N, class F>
void for_each_outer(const axis_layout<R, N>& L, const std::array<std::size_t, R>& dims, std::size_t count, F f) {
    for_each_outer_range(L, dims, count, 0, outer_count<R>(L.shape, dims, count), f);
}

/// True when a dimension other than the axis is empty: there is no line to run.
template <std::size_t R>
bool has_empty_outer(const extents_type<R>& shape, std::size_t axis) {
    for (std::size_t k = 0; k < R; ++k)
        if (k != axis && shape[k] == 0) return true;
    return false;
}

/// The lines along `axis`: every dimension but the axis, in order.
template <std::size_t R>
struct line_dims {
    std::array<std::size_t, R> dims{};
    std::size_t count = 0;
    index_type lines = 1;
    line_dims(const extents_type<R>& shape, std::size_t axis) {
        for (std::size_t k = 0; k < R; ++k)
            if (k != axis) dims[count++] = k;
        lines = outer_count<R>(shape, dims, count);
    }
};

/// The last of `dims` (count of them; the line walk varies it fastest) of extent > 1: a step
/// along it from one line reaches the next line. R when there is none.
template <std::size_t R>
std::size_t fastest_outer(const extents_type<R>& shape, const std::array<std::size_t, R>& dims, std::size_t count) {
    for (std::size_t k = count; k-- > 0;)
        if (shape[dims[k]] > 1) return dims[k];
    return R;
}

/// Calls run(begin, end) on pieces covering the items [0, items): at once on the calling thread
/// without an executor, else split into about ex->concurrency() pieces of at least `grain` items
/// (a piece's output must not depend on the split: see executor.hpp).
template <class F>
void run_pieces(executor* ex, index_type items, index_type grain, F run) {
    const index_type most = grain > 0 ? items / grain : items;
    const index_type parts = ex == nullptr ? 1 : std::min<index_type>(static_cast<index_type>(ex->concurrency()), most);
    if (parts <= 1) {
        run(index_type(0), items);
        return;
    }
    ex->run(static_cast<std::size_t>(parts), [&](std::size_t i) {
        const auto k = static_cast<index_type>(i);
        run(items * k / parts, items * (k + 1) / parts);
    });
}

/// Items [0, n) in pieces of piece_size items (at least one piece, empty when n is 0), taken one
/// by one: as tasks on ex when given, else in order on the calling thread. A stage that sums over
/// the items sums each piece on its own and adds the pieces' sums in order, so that the bits do
/// not depend on the executor.
struct pieces {
    index_type n;
    index_type piece_size;
    executor* ex = nullptr;

    std::size_t count() const noexcept {
        return n > piece_size ? static_cast<std::size_t>((n + piece_size - 1) / piece_size) : 1;
    }
    /// f(k, begin, end) for each piece k of items [begin, end).
    template <class F>
    void each(F f) const {
        const std::size_t c = count();
        const auto piece = [&](std::size_t k) {
            const index_type b = static_cast<index_type>(k) * piece_size;
            f(k, b, std::min(n, b + piece_size));
        };
        if (ex == nullptr || c < 2) {
            for (std::size_t k = 0; k < c; ++k) piece(k);
            return;
        }
        ex->run(c, piece);
    }
    /// `lanes` sums into out: sum(k, begin, end, part) sums piece k's items into part, and the
    /// pieces' parts are added in order to 0 (a single piece sums into out itself).
    template <class F>
    void sums(std::size_t lanes, double* out, F sum) const {
        const std::size_t c = count();
        if (c <= 1) return sum(std::size_t(0), index_type(0), n, out);
        std::vector<double> part(c * lanes);
        each([&](std::size_t k, index_type b, index_type e) { sum(k, b, e, part.data() + k * lanes); });
        std::fill(out, out + lanes, 0.0);
        for (std::size_t k = 0; k < c; ++k)
            for (std::size_t l = 0; l < lanes; ++l) out[l] += part[k * lanes + l];
    }
};

// A column block's rows, along the axis, in pieces of column_piece_rows: the stages that sum down
// the columns take the pieces one by one, so that an executor can take a block's pieces and the
// bits are those of the single-threaded call. A block of at most that many rows is one piece,
// taken as a whole. Blocks split so when they are too few for the executor (axis 0 of 1000x1024
// on 2 threads: one block), where splitting their columns instead would leave each thread part of
// every page (see column_block_batches), at a cost near that of the whole page.
constexpr index_type column_piece_rows = 256;

/// The pieces of a column block of n rows.
inline pieces row_pieces(index_type n, executor* ex) noexcept { return {n, column_piece_rows, ex}; }

/// The pieces of a line of n elements (line_piece, the pieces accumulate sums separately).
inline pieces line_pieces(index_type n, executor& ex) noexcept { return {n, line_piece, &ex}; }

/// Elements a piece of work should hold at least, so that handing it to a thread pays off.
constexpr index_type parallel_grain_elements = index_type(1) << 15;

/// Lines of n elements per piece.
inline index_type line_grain(index_type n) noexcept {
    return std::max<index_type>(1, parallel_grain_elements / std::max<index_type>(n, 1));
}

/// The lines along the axis in pieces of work (split over `ex` when given): piece(scratch, lines)
/// once per piece, with a scratch vector of `scratch_size` elements of T of its own, where
/// lines(f) calls f(offsets) for each of the piece's lines in order.
template <class T, std::size_t R, std::size_t N, class F>
void for_each_piece_of_lines(const axis_layout<R, N>& L, std::size_t axis, executor* ex, std::size_t scratch_size,
                             F piece) {
    const line_dims<R> D(L.shape, axis);
    run_pieces(ex, D.lines, line_grain(L.shape[axis]), [&](index_type b, index_type e) {
        std::vector<T> scratch(scratch_size);
        piece(scratch.data(), [&](auto f) { for_each_outer_range(L, D.dims, D.count, b, e, f); });
    });
}

/// f(offsets) once per line along the axis, the lines split over `ex` when given.
template <std::size_t R, std::size_t N, class F>
void for_each_line(const axis_layout<R, N>& L, std::size_t axis, executor* ex, F f) {
    for_each_piece_of_lines<char>(L, axis, ex, 0, [&](char*, auto lines) { lines(f); });
}

/// As for_each_line, with f(offsets, scratch) given a scratch vector of `scratch_size` elements of
/// T per piece of work.
template <class T, std::size_t R, std::size_t N, class F>
void for_each_line_with_scratch(const axis_layout<R, N>& L, std::size_t axis, executor* ex, std::size_t scratch_size,
                                F f) {
    for_each_piece_of_lines<T>(L, axis, ex, scratch_size, [&](T* scratch, auto lines) {
        lines([&](const std::array<index_type, N>& off) { f(off, scratch); });
    });
}

template <class T, std::size_t N>
LOGITKIT_INLINE std::array<T*, N> at(const pointers<N>& base, const std::array<index_type, N>& off) noexcept {
    std::array<T*, N> p;
    // An empty input (e.g. logsumexp over an axis of extent 0) may have null data: no offset.
    for (std::size_t i = 0; i < N; ++i) p[i] = base[i] ? reinterpret_cast<T*>(base[i]) + off[i] : nullptr;
    return p;
}

/// The widths, in batches, of the column blocks: one of 4 KiB of each row, one of 1 KiB, then 4
/// and 1 batches. A block walks the axis once per stage, and each step down the axis is a new
/// page for every operand once the axis stride is a page or more: the widest block uses all of
/// each page it touches, so the walk costs a page (and a TLB entry, and a prefetch stream that
/// ends at the page) per 4 KiB rather than per 1 KiB (on 1000x1024 float columns the backward
/// kernels take about 40% less time, softmax a quarter less). A block's per-column state lives on
/// the stack: at most about 45 KB, in the widest blocks.
template <class T, class Arch>
constexpr int column_block_batches(index_type bytes) noexcept {
    return static_cast<int>(bytes / static_cast<index_type>(batch<T, Arch>::size * sizeof(T)));
}

/// Whether Op can split one line over an executor (see ops.hpp): it declares splits_lines.
template <class Op, class = void>
struct splits_lines : std::false_type {};
template <class Op>
struct splits_lines<Op, std::void_t<decltype(Op::splits_lines)>> : std::true_type {};

/// Whether Op can split a column block's rows over an executor (row_pieces): it declares
/// splits_blocks, and its cols take the executor.
template <class Op, class = void>
struct splits_blocks : std::false_type {};
template <class Op>
struct splits_blocks<Op, std::void_t<decltype(Op::splits_blocks)>> : std::true_type {};

/// The blocks of K batches of columns in [j, width), each block's rows split over ex when given.
template <class Arch, class T, int K, class Op, std::size_t N>
LOGITKIT_INLINE index_type run_column_blocks(const Op& op, std::array<T*, N> p, const std::array<index_type, N>& s,
                                             index_type n, index_type width, index_type j, executor* ex = nullptr) {
    constexpr index_type W = batch<T, Arch>::size * K;
    for (; j + W <= width; j += W) {
        std::array<T*, N> q = p;
        for (auto& ptr : q) ptr += j;
        if constexpr (splits_blocks<Op>::value)
            op.template cols<Arch, K>(q, s, n, ex);
        else
            op.template cols<Arch, K>(q, s, n);
    }
    return j;
}

/// Whether Op can stream its output (see ops.hpp): it declares stream_scratch.
template <class Op, class = void>
struct streams_output : std::false_type {};
template <class Op>
struct streams_output<Op, std::void_t<decltype(Op::stream_scratch)>> : std::true_type {};

/// The streamed path over a run of lines, in order: row<Arch, true> line by line, for an
/// operation without a streamer<Arch> of its own (see ops.hpp), and on an architecture without
/// non-temporal stores.
template <class Arch, class T, class Op>
struct line_streamer {
    const Op& op;
    index_type n;
    T* scratch;
    template <std::size_t N>
    void line(const std::array<T*, N>& p, const next_line<T>& next) {
        op.template row<Arch, true>(p, n, scratch, next);
    }
    void finish() noexcept {}
};

/// Whether Op has a streamer<Arch> of its own.
template <class Op, class Arch, class = void>
struct has_streamer : std::false_type {};
template <class Op, class Arch>
struct has_streamer<Op, Arch, std::void_t<typename Op::template streamer<Arch>>> : std::true_type {};
template <class Arch, class T, class Op>
auto streamer_of(const Op& op, index_type n, T* scratch) {
    if constexpr (has_streamer<Op, Arch>::value && simd::streams<batch<T, Arch>>)
        return typename Op::template streamer<Arch>(op, n, scratch);
    else
        return line_streamer<Arch, T, Op>{op, n, scratch};
}

/// Whether Op takes contiguous lines in groups (see ops.hpp): it declares line_group.
template <class Op, class = void>
struct groups_lines : std::false_type {};
template <class Op>
struct groups_lines<Op, std::void_t<decltype(Op::line_group)>> : std::true_type {};

/// f(lines, count, scratch) for the lines along the axis, count <= G at a time, in line order,
/// each line make(offsets); the lines split over `ex` when given, each piece of work with
/// `scratch_size` elements of S of scratch of its own.
template <std::size_t G, class S, std::size_t R, std::size_t N, class Make, class F>
void for_each_line_group(const axis_layout<R, N>& L, std::size_t axis, executor* ex, std::size_t scratch_size,
                         Make make, F f) {
    for_each_piece_of_lines<S>(L, axis, ex, scratch_size, [&](S* scratch, auto lines) {
        std::array<decltype(make(std::array<index_type, N>{})), G> group;
        std::size_t count = 0;
        lines([&](const std::array<index_type, N>& off) {
            group[count++] = make(off);
            if (count == G) {
                f(group.data(), count, scratch);
                count = 0;
            }
        });
        if (count > 0) f(group.data(), count, scratch);
    });
}
/// The same without scratch, f(lines, count), each line its operands' pointers.
template <class T, std::size_t G, std::size_t R, std::size_t N, class F>
void for_each_line_group(const axis_layout<R, N>& L, std::size_t axis, executor* ex, F f) {
    for_each_line_group<G, char>(
        L, axis, ex, 0, [&](const std::array<index_type, N>& off) { return at<T>(L.base, off); },
        [&](const std::array<T*, N>* lines, std::size_t count, char*) { f(lines, count); });
}

/// Outputs (for a reduction, inputs) of at least this many bytes, in lines of at least
/// stream_min_line elements, take the operation's streamed path: written with non-temporal
/// stores (far larger than a core's share of the cache, they would only evict the input), the
/// next line prefetched. Measured on a 2 MB-L2 Xeon: streaming 4 MB of softmax output is 25%
/// slower (it stays in L3 otherwise), 32 MB and more 25-35% faster. Tests lower them to reach
/// the streamed path on small tensors (a call reads them once, on the calling thread; they are
/// not meant to change while calls run).
inline std::size_t stream_min_bytes = std::size_t(16) << 20;
inline index_type stream_min_line = 2048;
/// An operation that streams through a scratch line (softmax) does so only for lines up to this
/// long: a longer scratch line would not stay in cache, and would cost a write and a read more.
constexpr index_type stream_max_scratch_line = index_type(1) << 18;

/// Whether `lines` lines of n elements of T are large enough for the streamed path.
template <class Arch, class T>
bool stream_lines(index_type lines, index_type n) {
    return simd::streams<batch<T, Arch>> && n >= stream_min_line &&
           static_cast<std::size_t>(lines) * static_cast<std::size_t>(n) * sizeof(T) >= stream_min_bytes;
}

template <class Arch, class T, class Op, std::size_t R, std::size_t N>
bool stream_rows(const axis_layout<R, N>& L, std::size_t axis, index_type lines) {
    if (!stream_lines<Arch, T>(lines, L.shape[axis])) return false;
    if (Op::stream_scratch > 0 && L.shape[axis] > stream_max_scratch_line) return false;
    // In place the output's lines are in cache already (and are read as they are written).
    if (!Op::reduces)
        for (std::size_t i = 0; i < Op::inputs; ++i)
            if (L.base[i] == L.base[N - 1]) return false;
    return true;
}

template <class Arch, class T, class Op, std::size_t R, std::size_t N>
void run_along_axis(const Op& op, const axis_layout<R, N>& L, std::size_t axis, executor* ex = nullptr) {
    constexpr std::size_t last = N - 1;
    const index_type n = L.shape[axis];
    if (has_empty_outer<R>(L.shape, axis)) return;
    if (n == 0 && !Op::reduces) return;

    auto on_axis = [&](std::size_t i) { return (Op::reduces && i == last) ? index_type(1) : L.strides[i][axis]; };
    bool rows = true;
    for (std::size_t i = 0; i < N; ++i) rows = rows && (on_axis(i) == 1 || n <= 1);

    if (rows) {
        [[maybe_unused]] const line_dims<R> D(L.shape, axis);
        if constexpr (splits_lines<Op>::value) {
            // Lines long enough that splitting each (lines one after another) keeps more threads
            // busy than giving each thread lines: each line's pieces go to the executor.
            const index_type threads = ex != nullptr ? static_cast<index_type>(ex->concurrency()) : 1;
            if (ex != nullptr &&
                std::min(static_cast<index_type>(line_pieces(n, *ex).count()), threads) > std::min(D.lines, threads)) {
                for_each_outer(L, D.dims, D.count, [&](const std::array<index_type, N>& off) {
                    op.template row_split<Arch>(at<T>(L.base, off), n, *ex);
                });
                return;
            }
        }
        if constexpr (streams_output<Op>::value) {
            if (stream_rows<Arch, T, Op>(L, axis, D.lines)) {
                // The next line is where a contiguous tensor's next line starts (past the last
                // line, the prefetch is of nothing useful).
                std::array<index_type, N> step{};
                const std::size_t along = fastest_outer<R>(L.shape, D.dims, D.count);
                const bool has_next = along != R;
                if (has_next)
                    for (std::size_t i = 0; i < N; ++i) step[i] = L.strides[i][along];
                // Each piece of work has its own streamer, which finishes the piece's last line.
                for_each_piece_of_lines<T>(L, axis, ex, Op::stream_scratch * static_cast<std::size_t>(n),
                                           [&](T* scratch, auto lines) {
                    auto streamer = streamer_of<Arch>(op, n, scratch);
                    lines([&](const std::array<index_type, N>& off) {
                        const auto p = at<T>(L.base, off);
                        next_line<T> next;
                        if (has_next) {
                            next.a = prefetch_address<T>(p[0], step[0]);
                            if (Op::inputs > 1) next.b = prefetch_address<T>(p[1], step[1]);
                        }
                        streamer.line(p, next);
                    });
                    streamer.finish();
                });
                return;
            }
        }
        if constexpr (groups_lines<Op>::value) {
            if (Op::template groups<Arch>(n)) {
                for_each_line_group<T, Op::line_group>(L, axis, ex, [&](const std::array<T*, N>* lines, std::size_t count) {
                    op.template rows<Arch>(lines, count, n);
                });
                return;
            }
        }
        for_each_line(L, axis, ex,
                      [&](const std::array<index_type, N>& off) { op.template row<Arch>(at<T>(L.base, off), n); });
        return;
    }

    // The innermost dimension (other than the axis) along which every operand is contiguous.
    std::size_t inner = R;
    for (std::size_t k = R; k-- > 0;) {
        if (k == axis || L.shape[k] <= 1) continue;
        bool unit = true;
        for (std::size_t i = 0; i < N; ++i) unit = unit && L.strides[i][k] == 1;
        if (unit) {
            inner = k;
            break;
        }
    }
    if (inner != R) {
        std::array<std::size_t, R> dims{};
        std::size_t count = 0;
        for (std::size_t k = 0; k < R; ++k)
            if (k != axis && k != inner) dims[count++] = k;
        std::array<index_type, N> s;
        for (std::size_t i = 0; i < N; ++i) s[i] = (Op::reduces && i == last) ? 0 : L.strides[i][axis];
        const index_type width = L.shape[inner];
        // Page-wide blocks (column_block_batches) take what they can and narrower blocks the
        // rest. The work items are bands of columns of one outer index, a multiple of the batch
        // width so that the last (width mod batch) columns always take the scalar path. A
        // column's result does not depend on the size of the block it is computed in (the
        // stages work lane by lane, and every exp mode gives the same bits on lanes it allows),
        // so any band gives the single-threaded bits; bands narrower than a page are used only
        // to make enough pieces for the executor, and never narrower than one batch (a band of
        // fewer columns would send them all down the scalar path, whose exponential rounds
        // differently).
        constexpr index_type W = batch<T, Arch>::size;
        constexpr int K_page = column_block_batches<T, Arch>(4096), K_kib = column_block_batches<T, Arch>(1024);
        const index_type outer = outer_count<R>(L.shape, dims, count);
        index_type band = W * K_page;
        // Too few page-wide bands for the executor: each block's rows split over it instead
        // (row_pieces), when there are rows enough.
        executor* block_ex = nullptr;
        if (splits_blocks<Op>::value && ex != nullptr && n >= 2 * column_piece_rows &&
            outer * ((width + band - 1) / band) < static_cast<index_type>(ex->concurrency())) {
            block_ex = ex;
            ex = nullptr;
        }
        if (ex != nullptr)
            while (band > W && outer * ((width + band - 1) / band) < 2 * static_cast<index_type>(ex->concurrency()))
                band = std::max(W, band / 4);
        const index_type bands = (width + band - 1) / band;
        run_pieces(ex, outer * bands, std::max<index_type>(1, parallel_grain_elements / (band * std::max<index_type>(n, 1))),
                   [&](index_type b, index_type e) {
                       const index_type o_begin = b / bands, o_end = (e + bands - 1) / bands;
                       index_type o = o_begin;
                       for_each_outer_range(L, dims, count, o_begin, o_end, [&](const std::array<index_type, N>& off) {
                           const auto p = at<T>(L.base, off);
                           const index_type from = std::max(b, o * bands) - o * bands;
                           const index_type to = std::min(e, (o + 1) * bands) - o * bands;
                           const index_type stop = std::min(width, to * band);
                           index_type j = run_column_blocks<Arch, T, K_page>(op, p, s, n, stop, from * band, block_ex);
                           j = run_column_blocks<Arch, T, K_kib>(op, p, s, n, stop, j, block_ex);
                           j = run_column_blocks<Arch, T, 4>(op, p, s, n, stop, j, block_ex);
                           j = run_column_blocks<Arch, T, 1>(op, p, s, n, stop, j, block_ex);
                           run_column_blocks<scalar_arch, T, 1>(op, p, s, n, stop, j, block_ex);
                           ++o;
                       });
                   });
        return;
    }

    // Gather: copy each line into contiguous scratch, run the row kernel, scatter the outputs.
    for_each_line_with_scratch<T>(L, axis, ex, static_cast<std::size_t>(n) * N + 1,
                                  [&](const std::array<index_type, N>& off, T* scratch) {
        const auto p = at<T>(L.base, off);
        std::array<T*, N> q;
        for (std::size_t i = 0; i < N; ++i) q[i] = scratch + static_cast<std::size_t>(n) * i;
        for (std::size_t i = 0; i < Op::inputs; ++i)
            for (index_type r = 0; r < n; ++r) q[i][r] = p[i][r * L.strides[i][axis]];
        op.template row<Arch>(q, n);
        for (std::size_t i = Op::inputs; i < N; ++i) {
            if (Op::reduces && i == last) {
                *p[i] = *q[i];
                continue;
            }
            for (index_type r = 0; r < n; ++r) p[i][r * L.strides[i][axis]] = q[i][r];
        }
    });
}

/// dst[j * ds] = src[j * ss] for j < n, from or to a storage type (widen, narrow); contiguous
/// lines a batch at a time, the loads and stores converting (simd::load, simd::store).
template <class Arch, class From, class To>
void convert_line(const From* src, index_type ss, To* dst, index_type ds, index_type n) noexcept {
    using T = compute_type_t<From>;
    using V = batch<T, Arch>;
    constexpr index_type W = V::size;
    if (ss != 1 || ds != 1) {
        for (index_type j = 0; j < n; ++j) dst[j * ds] = narrow<To>(widen(src[j * ss]));
        return;
    }
    index_type j = 0;
    for (; j + W <= n; j += W) simd::store(dst + j, simd::load<V>(src + j));
    if (j < n) {
        const auto rem = static_cast<std::size_t>(n - j);
        simd::store_partial(dst + j, simd::load_partial<V>(src + j, rem, T(0)), rem);
    }
}

/// run_along_axis for operands stored as S (bfloat16, float16) while the operation computes in
/// T (float): each line is widened into contiguous scratch, processed as a row, and its outputs
/// are rounded back once.
template <class Arch, class T, class S, class Op, std::size_t R, std::size_t N>
void run_converted(const Op& op, const axis_layout<R, N>& L, std::size_t axis, executor* ex = nullptr) {
    constexpr std::size_t last = N - 1;
    const index_type n = L.shape[axis];
    if (has_empty_outer<R>(L.shape, axis)) return;
    if (n == 0 && !Op::reduces) return;
    for_each_line_with_scratch<T>(L, axis, ex, static_cast<std::size_t>(n) * N + 1,
                                  [&](const std::array<index_type, N>& off, T* scratch) {
        const auto p = at<S>(L.base, off);
        std::array<T*, N> q;
        for (std::size_t i = 0; i < N; ++i) q[i] = scratch + static_cast<std::size_t>(n) * i;
        for (std::size_t i = 0; i < Op::inputs; ++i) convert_line<Arch>(p[i], L.strides[i][axis], q[i], 1, n);
        op.template row<Arch>(q, n);
        for (std::size_t i = Op::inputs; i < N; ++i) {
            if (Op::reduces && i == last)
                *p[i] = narrow<S>(*q[i]);
            else
                convert_line<Arch>(q[i], 1, p[i], L.strides[i][axis], n);
        }
    });
}

/// A line of run_converted_forward read and written where it is stored.
template <class SX, class SY>
using converted_line = std::pair<const SX*, SY*>;

/// Scratch a piece of work of run_converted_forward widens a group of strided lines into (both
/// halves, in and out). Measured on 8x16x512x512 bfloat16 scores, out of cache: groups of 2
/// lines of 512 cost nothing, groups of 4 or 8 take 1.4x the time of single lines; 4096x128
/// gains 15% from groups of 8 over groups of 4.
constexpr std::size_t converted_group_bytes = std::size_t(16) << 10;

/// softmax or log_softmax (Op, computing in T, line_group and rows<Arch> as in ops.hpp) along
/// `axis` with x stored as SX and y as SY, one of them not T (bfloat16, float16). Lines go in
/// groups, as run_along_axis takes T's contiguous lines. Contiguous lines go to rows as
/// converted_line: the loads and stores convert, in registers, and softmax's exponentials of a
/// line whose y is not T go to Op::stream_scratch elements of scratch per element. Strided lines
/// are widened into scratch (x itself where it is T and contiguous), run out of place into
/// scratch (y itself where it is T and contiguous), and rounded once into y. Either way a line
/// gets the bits of its widened line run as T and rounded once, whatever its group; out of
/// place, a long line takes its exponentials first (line_exp_sum), sparing it the range's pass.
template <class Arch, class T, class SX, class SY, class Op, std::size_t R>
void run_converted_forward(const Op& op, const axis_layout<R, 2>& L, std::size_t axis, executor* ex) {
    const index_type n = L.shape[axis];
    if (n == 0 || has_empty_outer<R>(L.shape, axis)) return;
    const index_type xs = L.strides[0][axis], ys = L.strides[1][axis];
    constexpr std::size_t G = Op::line_group;
    if (xs == 1 && ys == 1) {
        const std::size_t scratch = std::is_same<SY, T>::value ? 0 : Op::stream_scratch * static_cast<std::size_t>(n);
        // Lines out of cache (as many bytes of y as take the streamed path): each line's first
        // pass prefetches the next line's x, a step along the fastest outer dimension, as the
        // streamed path does (1024x32000 bfloat16: softmax 23% less time, log_softmax 13%).
        index_type ahead = 0;
        const line_dims<R> D(L.shape, axis);
        if (n >= stream_min_line &&
            static_cast<std::size_t>(D.lines) * static_cast<std::size_t>(n) * sizeof(SY) >= stream_min_bytes) {
            const std::size_t along = fastest_outer<R>(L.shape, D.dims, D.count);
            if (along != R) ahead = L.strides[0][along];
        }
        for_each_line_group<G, T>(
            L, axis, ex, scratch,
            [&](const std::array<index_type, 2>& off) {
                return converted_line<SX, SY>{reinterpret_cast<const SX*>(L.base[0]) + off[0],
                                              reinterpret_cast<SY*>(L.base[1]) + off[1]};
            },
            [&](const converted_line<SX, SY>* lines, std::size_t count, T* s) {
                op.template rows<Arch>(lines, count, n, s, ahead);
            });
        return;
    }
    const bool x_in_place = std::is_same<SX, T>::value && xs == 1;
    const bool y_in_place = std::is_same<SY, T>::value && ys == 1;
    const std::size_t line_elements = static_cast<std::size_t>(n) * 2;
    const std::size_t group = Op::template groups<Arch>(n)
                                  ? std::max<std::size_t>(1, std::min(G, converted_group_bytes / (line_elements * sizeof(T))))
                                  : 1;
    for_each_piece_of_lines<T>(L, axis, ex, group * line_elements, [&](T* scratch, auto lines) {
        std::array<std::array<T*, 2>, G> rows;
        std::array<SY*, G> out;
        std::size_t count = 0;
        const auto run = [&]() {
            if (count > 1)
                op.template rows<Arch>(rows.data(), count, n);
            else
                op.template row<Arch>(rows[0], n);
            if (!y_in_place)
                for (std::size_t k = 0; k < count; ++k) convert_line<Arch>(rows[k][1], 1, out[k], ys, n);
            count = 0;
        };
        lines([&](const std::array<index_type, 2>& off) {
            const SX* x = reinterpret_cast<const SX*>(L.base[0]) + off[0];
            SY* y = reinterpret_cast<SY*>(L.base[1]) + off[1];
            T* line_scratch = scratch + count * line_elements;
            T* in = x_in_place ? reinterpret_cast<T*>(const_cast<SX*>(x)) : line_scratch;
            if (!x_in_place) convert_line<Arch>(x, xs, in, 1, n);
            rows[count] = {in, y_in_place ? reinterpret_cast<T*>(y) : line_scratch + n};
            out[count] = y;
            if (++count == group) run();
        });
        if (count > 0) run();
    });
}

}  // namespace detail
}  // namespace logitkit
