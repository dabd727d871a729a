// Streamed output (dispatch.hpp, row::write_row): outputs far larger than the cache are written
// with non-temporal stores while the next line's inputs are prefetched. The streamed path must
// give the ordinary path's bits exactly, for every aligned or misaligned start of the output
// line, every tail length, special values (a NaN may differ in sign), and in place (where it
// must not stream), for the softmax family, logsumexp (which only prefetches) and
// cross_entropy's gradient; the thresholds are lowered here so that small tensors take it.
#include "test_support.hpp"

namespace {

namespace lk = logitkit;
namespace lkd = logitkit::detail;
using lk_test::rng;

// Sets the streaming thresholds for the lifetime of the object.
struct stream_thresholds {
    std::size_t bytes = lkd::stream_min_bytes;
    lk::index_type line = lkd::stream_min_line;
    stream_thresholds(std::size_t b, lk::index_type l) {
        lkd::stream_min_bytes = b;
        lkd::stream_min_line = l;
    }
    ~stream_thresholds() {
        lkd::stream_min_bytes = bytes;
        lkd::stream_min_line = line;
    }
};

// Equal bits, but any NaN matches any NaN: which operand's NaN an operation returns (its sign and
// payload) depends on the order the compiler gave a commutative operation's operands.
template <class T>
bool same_bits_nan_equal(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0 && !(std::isnan(a[i]) && std::isnan(b[i]))) return false;
    return true;
}

// Values in [-8, 8), with NaN, +-inf, huge and subnormal values sprinkled in when `special`.
template <class T>
std::vector<T> values(std::size_t n, std::uint64_t seed, bool special) {
    rng r(seed);
    std::vector<T> v(n);
    const T pick[] = {std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::infinity(),
                      -std::numeric_limits<T>::infinity(), T(1e30), T(-1e30), std::numeric_limits<T>::denorm_min()};
    for (auto& e : v) e = special && r.chance(0.02) ? pick[r.below(6)] : static_cast<T>(r.uniform(-8.0, 8.0));
    return v;
}

// A [rows, n] operand whose lines start `pad` elements apart beyond n and whose data starts
// `shift` elements into its buffer, so that lines start at every alignment.
template <class T>
struct operand {
    std::vector<T> buf;
    lk::index_type rows, n, pad, shift;
    operand(lk::index_type r, lk::index_type c, lk::index_type p, lk::index_type s)
        : buf(static_cast<std::size_t>(r * (c + p) + s + 1)), rows(r), n(c), pad(p), shift(s) {}
    lk::tensor_view<T, 2> view() { return {buf.data() + shift, {rows, n}, {n + pad, 1}}; }
    lk::tensor_view<const T, 2> cview() const { return {buf.data() + shift, {rows, n}, {n + pad, 1}}; }
};

enum class streamed_kernel { softmax, log_softmax, softmax_backward, log_softmax_backward };

const char* name(streamed_kernel k) {
    switch (k) {
        case streamed_kernel::softmax: return "softmax";
        case streamed_kernel::log_softmax: return "log_softmax";
        case streamed_kernel::softmax_backward: return "softmax_backward";
        case streamed_kernel::log_softmax_backward: return "log_softmax_backward";
    }
    return "?";
}

// Runs kernel k on x (and dy) into a fresh output of the same layout, under the current
// thresholds; returns the output's whole buffer (padding included: it must stay untouched).
template <class T>
std::vector<T> run(streamed_kernel k, const operand<T>& x, const operand<T>& dy, lk::index_type out_shift,
                   lk::executor* ex = nullptr) {
    operand<T> out(x.rows, x.n, x.pad, out_shift);
    std::fill(out.buf.begin(), out.buf.end(), T(-7));
    lk::softmax_options o;
    o.parallel = ex;
    switch (k) {
        case streamed_kernel::softmax: lk::softmax(x.cview(), out.view(), -1, o); break;
        case streamed_kernel::log_softmax: lk::log_softmax(x.cview(), out.view(), -1, o); break;
        case streamed_kernel::softmax_backward: lk::softmax_backward(x.cview(), dy.cview(), out.view(), -1, o); break;
        case streamed_kernel::log_softmax_backward: lk::log_softmax_backward(x.cview(), dy.cview(), out.view(), -1, o); break;
    }
    return out.buf;
}

// run(executor*) with the streaming thresholds out of reach, then at their lowest without and
// with `pool`: the same bits each time.
template <class Run>
void check_streamed_bits(Run run, lk::executor& pool) {
    decltype(run(nullptr)) plain;
    {
        const stream_thresholds off(std::numeric_limits<std::size_t>::max(), 1);
        plain = run(nullptr);
    }
    const stream_thresholds on(0, 1);
    CHECK(same_bits_nan_equal(run(nullptr), plain));
    CHECK(same_bits_nan_equal(run(&pool), plain));
}

const streamed_kernel kernels[] = {streamed_kernel::softmax, streamed_kernel::log_softmax, streamed_kernel::softmax_backward,
                          streamed_kernel::log_softmax_backward};

}  // namespace

TEMPLATE_TEST_CASE("streamed output gives the ordinary path's bits", "[streaming]", float, double) {
    using T = TestType;
    const lk::index_type lengths[] = {1, 2, 7, 15, 16, 17, 31, 33, 100, 1000, 4097};
    std::uint64_t seed = 1;
    for (const streamed_kernel k : kernels)
        for (const lk::index_type n : lengths)
            for (const lk::index_type pad : {0, 1, 3})
                for (const lk::index_type shift : {0, 1, 5})
                    for (const bool special : {false, true}) {
                        INFO(name(k) << " on [3, " << n << "], pad " << pad << ", output shift " << shift
                                     << (special ? ", special values" : ""));
                        operand<T> x(3, n, pad, 2), dy(3, n, pad, 0);
                        x.buf = values<T>(x.buf.size(), ++seed, special);
                        dy.buf = values<T>(dy.buf.size(), ++seed, false);
                        std::vector<T> plain, streamed;
                        {
                            const stream_thresholds off(std::numeric_limits<std::size_t>::max(), 1);
                            plain = run(k, x, dy, shift);
                        }
                        {
                            const stream_thresholds on(0, 1);
                            streamed = run(k, x, dy, shift);
                        }
                        CHECK(same_bits_nan_equal(streamed, plain));
                    }
}

TEMPLATE_TEST_CASE("logsumexp's streamed path (prefetching the next line) gives the ordinary bits", "[streaming]",
                   float, double) {
    using T = TestType;
    std::uint64_t seed = 100;
    for (const lk::index_type n : {1, 7, 16, 17, 33, 1000, 4097})
        for (const lk::index_type pad : {0, 1, 3})
            for (const bool special : {false, true}) {
                INFO("[4, " << n << "], pad " << pad << (special ? ", special values" : ""));
                operand<T> x(4, n, pad, 1);
                x.buf = values<T>(x.buf.size(), ++seed, special);
                auto run_lse = [&] {
                    std::vector<T> out(4, T(-7));
                    lk::logsumexp(x.cview(), lk::tensor_view<T, 2>(out.data(), {4, 1}), -1);
                    return out;
                };
                std::vector<T> plain, streamed;
                {
                    const stream_thresholds off(std::numeric_limits<std::size_t>::max(), 1);
                    plain = run_lse();
                }
                {
                    const stream_thresholds on(0, 1);
                    streamed = run_lse();
                }
                CHECK(same_bits_nan_equal(streamed, plain));
            }
}

TEMPLATE_TEST_CASE("cross_entropy's streamed gradient gives the ordinary bits", "[streaming]", float, double) {
    using T = TestType;
    std::uint64_t seed = 200;
    for (const lk::index_type n : {2, 7, 17, 33, 1000, 4097})
        for (const lk::index_type pad : {0, 3})
            for (const bool weighted : {false, true})
                for (const bool special : {false, true}) {
                    INFO("[5, " << n << "], pad " << pad << (weighted ? ", weighted" : "")
                                << (special ? ", special values" : ""));
                    operand<T> x(5, n, pad, 2);
                    x.buf = values<T>(x.buf.size(), ++seed, special);
                    rng r(++seed);
                    std::vector<std::int64_t> t(5);
                    for (auto& v : t) v = static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(n)));
                    t[3] = -100;  // ignored: its gradient line is zeroed
                    std::vector<T> w(static_cast<std::size_t>(n));
                    for (auto& v : w) v = static_cast<T>(r.uniform(0.0, 2.0));
                    auto run_ce = [&](std::vector<T>& losses) {
                        operand<T> g(5, n, pad, 1);
                        std::fill(g.buf.begin(), g.buf.end(), T(-7));
                        lk::cross_entropy_options<T> o;
                        if (weighted) o.weight = lk::tensor_view<const T, 1>(w.data(), {n});
                        o.reduction = lk::reduction::none;
                        lk::loss_outputs<T, 2> out;
                        out.grad = g.view();
                        out.losses = lk::tensor_view<T, 1>(losses.data(), {5});
                        lk::cross_entropy(x.cview(), lk::tensor_view<const std::int64_t, 1>(t.data(), {5}), o, out);
                        return g.buf;
                    };
                    std::vector<T> plain_losses(5), streamed_losses(5), plain, streamed;
                    {
                        const stream_thresholds off(std::numeric_limits<std::size_t>::max(), 1);
                        plain = run_ce(plain_losses);
                    }
                    {
                        const stream_thresholds on(0, 1);
                        streamed = run_ce(streamed_losses);
                    }
                    CHECK(same_bits_nan_equal(streamed, plain));
                    CHECK(same_bits_nan_equal(streamed_losses, plain_losses));
                }
}

TEST_CASE("cross_entropy in place or with label smoothing does not stream, and gives the ordinary bits",
          "[streaming]") {
    operand<float> x(6, 5000, 1, 0);
    x.buf = values<float>(x.buf.size(), 31, true);
    std::vector<std::int64_t> t = {0, 4999, 17, 2500, 1, 3};
    for (const bool in_place : {true, false}) {
        INFO((in_place ? "gradient over the logits" : "label smoothing 0.1"));
        auto run_ce = [&] {
            operand<float> xc = x;
            operand<float> g(6, 5000, 1, 0);
            lk::cross_entropy_options<float> o;
            if (!in_place) o.label_smoothing = 0.1;
            lk::loss_outputs<float, 2> out;
            out.grad = in_place ? xc.view() : g.view();
            const double loss =
                lk::cross_entropy(xc.cview(), lk::tensor_view<const std::int64_t, 1>(t.data(), {6}), o, out);
            std::vector<float> r = in_place ? xc.buf : g.buf;
            r.push_back(static_cast<float>(loss));
            return r;
        };
        std::vector<float> plain, streamed;
        {
            const stream_thresholds off(std::numeric_limits<std::size_t>::max(), 1);
            plain = run_ce();
        }
        {
            const stream_thresholds on(0, 1);
            streamed = run_ce();
        }
        CHECK(same_bits_nan_equal(streamed, plain));
    }
}

TEMPLATE_TEST_CASE("streamed softmax and log_softmax, each line's output beside the next line's pass, give the "
                   "ordinary bits",
                   "[streaming]", float, double) {
    // Output lines aligned to 64 bytes one after another, so that every line's output stage goes
    // beside the next line's first pass (lagged_streamer); lines that the first pass finds not
    // unshifted (a large value, or the special values) leave that stage part done, the rest
    // written after. With an executor the lines split into pieces (96 lines: 3 pieces and more),
    // and each piece's lines do the same, its last line's output finished at its end.
    using T = TestType;
    constexpr lk::index_type rows = 96;
    std::uint64_t seed = 300;
    lk::thread_pool pool(3);
    for (const streamed_kernel k : {streamed_kernel::softmax, streamed_kernel::log_softmax})
        for (const lk::index_type n : {1024, 1040, 2064})
            for (const bool special : {false, true}) {
                INFO(name(k) << " on [" << rows << ", " << n << "]" << (special ? ", special values" : ""));
                std::vector<T> x = values<T>(static_cast<std::size_t>(rows * n), ++seed, special);
                x[static_cast<std::size_t>(2 * n + 5)] = T(100);  // line 2 is shifted by its maximum
                std::vector<T> buf(static_cast<std::size_t>(rows * n) + 64);
                T* y = buf.data();
                while (reinterpret_cast<std::uintptr_t>(y) % 64 != 0) ++y;
                const lk::tensor_view<const T, 2> xv(x.data(), {rows, n});
                const lk::tensor_view<T, 2> yv(y, {rows, n});
                const auto run_k = [&](lk::executor* ex) {
                    std::fill(buf.begin(), buf.end(), T(-7));
                    lk::softmax_options o;
                    o.parallel = ex;
                    if (k == streamed_kernel::softmax)
                        lk::softmax(xv, yv, -1, o);
                    else
                        lk::log_softmax(xv, yv, -1, o);
                    return buf;
                };
                check_streamed_bits(run_k, pool);
            }
}

TEMPLATE_TEST_CASE("bfloat16 / float16 lines out of cache, each prefetching the next line's input, give the "
                   "ordinary bits",
                   "[streaming]", lk::bfloat16, lk::float16) {
    // Contiguous lines of x or y stored in reduced precision (converted lines, run_converted_forward)
    // prefetch the next line's x once the output takes the streamed path's bytes and lengths. The
    // next line is a step along the fastest outer dimension of extent > 1: [2, 5, n] and [2, 1, n]
    // (whose step is the first dimension's); a piece of work's last line prefetches past it.
    using S = TestType;
    std::uint64_t seed = 400;
    lk::thread_pool pool(3);
    for (const streamed_kernel k : {streamed_kernel::softmax, streamed_kernel::log_softmax})
        for (const lk::index_type n : {1000, 1040})
            for (const lk::index_type mid : {5, 1})
                for (const bool special : {false, true}) {
                    INFO(name(k) << " on [2, " << mid << ", " << n << "]" << (special ? ", special values" : ""));
                    const std::size_t size = static_cast<std::size_t>(2 * mid * n);
                    const std::vector<float> wide = values<float>(size, ++seed, special);
                    std::vector<S> x(size), y(size);
                    std::vector<float> yf(size);
                    for (std::size_t i = 0; i < size; ++i) x[i] = S(wide[i]);
                    const lk::tensor_view<const S, 3> xv(x.data(), {2, mid, n});
                    const auto run_k = [&](lk::executor* ex) {
                        lk::softmax_options o;
                        o.parallel = ex;
                        std::fill(y.begin(), y.end(), S(-7.0f));
                        std::fill(yf.begin(), yf.end(), -7.0f);
                        // S to S, and float to S (x of float, y converted).
                        const lk::tensor_view<S, 3> yv(y.data(), {2, mid, n});
                        const lk::tensor_view<const float, 3> xw(wide.data(), {2, mid, n});
                        const lk::tensor_view<float, 3> yw(yf.data(), {2, mid, n});
                        if (k == streamed_kernel::softmax) {
                            lk::softmax(xv, yv, -1, o);
                            lk::softmax(xv, yw, -1, o);
                        } else {
                            lk::log_softmax(xv, yv, -1, o);
                            lk::log_softmax(xv, yw, -1, o);
                        }
                        std::vector<float> out(yf);
                        for (const S v : y) out.push_back(static_cast<float>(v));
                        return out;
                    };
                    check_streamed_bits(run_k, pool);
                }
}

TEST_CASE("streamed output with an executor gives the single-threaded bits", "[streaming][parallel]") {
    operand<float> x(64, 3000, 0, 0), dy(64, 3000, 0, 0);
    x.buf = values<float>(x.buf.size(), 11, false);
    dy.buf = values<float>(dy.buf.size(), 12, false);
    lk::thread_pool pool(3);
    for (const streamed_kernel k : kernels) {
        INFO(name(k));
        const auto plain = run(k, x, dy, 0);
        const stream_thresholds on(0, 1);
        CHECK(same_bits_nan_equal(run(k, x, dy, 0, &pool), plain));
    }
}

TEST_CASE("the dispatcher streams only long lines of large outputs, never in place", "[streaming]") {
    using op = lkd::softmax_op<float, lkd::identity_input>;
    using A = lkd::default_arch;
    constexpr bool can = lkd::simd::streams<lkd::batch<float, A>>;
    std::vector<float> a(4096 * 4), b(4096 * 4);
    const lk::tensor_view<const float, 2> x(a.data(), {4, 4096});
    const lk::tensor_view<float, 2> y(b.data(), {4, 4096}), same(a.data(), {4, 4096});
    const auto layout = lkd::make_layout(x.shape(), x, y);
    const auto in_place = lkd::make_layout(x.shape(), x, same);
    {
        const stream_thresholds t(4 * 4096 * sizeof(float), 4096);
        CHECK(lkd::stream_rows<A, float, op>(layout, 1, 4) == can);
        CHECK_FALSE(lkd::stream_rows<A, float, op>(in_place, 1, 4));
    }
    {
        const stream_thresholds t(4 * 4096 * sizeof(float) + 1, 4096);  // output too small
        CHECK_FALSE(lkd::stream_rows<A, float, op>(layout, 1, 4));
    }
    {
        const stream_thresholds t(0, 4097);  // lines too short
        CHECK_FALSE(lkd::stream_rows<A, float, op>(layout, 1, 4));
    }
    {
        // softmax streams through a scratch line, so not for lines too long to stay in cache.
        const stream_thresholds t(0, 1);
        std::vector<float> c(std::size_t(lkd::stream_max_scratch_line) + 1), d(c.size());
        const lk::tensor_view<const float, 1> lx(c.data(), {lkd::stream_max_scratch_line + 1});
        const lk::tensor_view<float, 1> ly(d.data(), {lkd::stream_max_scratch_line + 1});
        CHECK_FALSE(lkd::stream_rows<A, float, op>(lkd::make_layout(lx.shape(), lx, ly), 0, 1));
        using lop = lkd::log_softmax_op<float, lkd::identity_input>;
        CHECK(lkd::stream_rows<A, float, lop>(lkd::make_layout(lx.shape(), lx, ly), 0, 1) == can);
    }
    // The defaults: a 131 MB output of 32000-long lines streams, a 512 KB one does not.
    CHECK(lkd::stream_min_bytes > (std::size_t(1) << 20));
    CHECK(lkd::stream_min_bytes <= std::size_t(1024) * 32000 * sizeof(float));
    CHECK(lkd::stream_min_line <= 32000);
}

TEST_CASE("streamed softmax in place equals the copy", "[streaming]") {
    operand<float> x(5, 2049, 1, 3);
    x.buf = values<float>(x.buf.size(), 21, true);
    const operand<float> dy(5, 2049, 1, 0);
    const stream_thresholds on(0, 1);
    const auto copy = run(streamed_kernel::softmax, x, dy, 3);
    lk::softmax(x.cview(), x.view(), -1);
    // The lines only: the padding of x holds its own values.
    bool same = true;
    for (lk::index_type r = 0; r < x.rows; ++r)
        for (lk::index_type j = 0; j < x.n; ++j) {
            const auto at = static_cast<std::size_t>(x.shift + r * (x.n + x.pad) + j);
            same = same && (std::memcmp(&copy[at], &x.buf[at], sizeof(float)) == 0 ||
                            (std::isnan(copy[at]) && std::isnan(x.buf[at])));
        }
    CHECK(same);
}
