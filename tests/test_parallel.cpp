// Opt-in parallelism (executor.hpp): every kernel that takes an executor gives, bit for bit, the
// single-threaded result whatever the executor — the built-in pool at several sizes, and
// executors of one's own that run the pieces in reverse order or on std::async threads — on
// rows, long rows split into pieces, columns (non-last axes), gathered strided lines, masks,
// causal rows, bfloat16 and the backward kernels; and it does split the work. The pool's own contract: errors, exceptions.
#include "test_support.hpp"

#include <atomic>
#include <future>
#include <stdexcept>

namespace {

namespace lk = logitkit;
using lk_test::rng;

// Runs the pieces on the calling thread, last first: a result that depended on the order or on
// which piece a line lands in would differ.
class reverse_executor final : public lk::executor {
public:
    explicit reverse_executor(std::size_t concurrency) : concurrency_(concurrency) {}
    std::size_t concurrency() const noexcept override { return concurrency_; }
    void run(std::size_t count, const std::function<void(std::size_t)>& task) override {
        ++calls;
        pieces += count;
        for (std::size_t i = count; i-- > 0;) task(i);
    }
    std::size_t calls = 0, pieces = 0;

private:
    std::size_t concurrency_;
};

// One std::async thread per piece.
class async_executor final : public lk::executor {
public:
    std::size_t concurrency() const noexcept override { return 3; }
    void run(std::size_t count, const std::function<void(std::size_t)>& task) override {
        std::vector<std::future<void>> f;
        for (std::size_t i = 0; i < count; ++i) f.push_back(std::async(std::launch::async, task, i));
        for (auto& x : f) x.get();
    }
};

template <class T>
std::vector<T> random_values(std::size_t n, std::uint64_t seed) {
    rng r(seed);
    std::vector<T> v(n);
    for (auto& e : v) e = static_cast<T>(r.uniform(-8.0, 8.0));
    return v;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Equal bits, except that NaN lanes may differ in sign or payload (which NaN a maximum or a sum
// keeps).
template <class T>
bool same_values(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const bool both_nan = std::isnan(a[i]) && std::isnan(b[i]);
        if (std::memcmp(&a[i], &b[i], sizeof(T)) != 0 && !both_nan) return false;
    }
    return true;
}

// softmax, log_softmax and logsumexp of one row on ex, one after another in one vector.
template <class T>
std::vector<T> row_outputs(const std::vector<T>& x, lk::executor* ex) {
    const auto n = static_cast<lk::index_type>(x.size());
    const lk::tensor_view<const T, 1> xv(x.data(), {n});
    lk::softmax_options o;
    o.parallel = ex;
    std::vector<T> y(x.size()), l(x.size());
    T out = 0;
    lk::softmax(xv, lk::tensor_view<T, 1>(y.data(), {n}), -1, o);
    lk::log_softmax(xv, lk::tensor_view<T, 1>(l.data(), {n}), -1, o);
    lk::logsumexp(xv, lk::tensor_view<T, 1>(&out, {1}), -1, ex);
    y.insert(y.end(), l.begin(), l.end());
    y.push_back(out);
    return y;
}

// A strided 2-D view over a buffer: `transposed` puts the last dimension's stride first, and
// `spread` leaves a gap after each element so that no dimension is contiguous (gather path).
template <class T>
struct view2 {
    std::vector<T> buf;
    lk::extents_type<2> shape, strides;
    view2(lk::index_type rows, lk::index_type cols, bool transposed, lk::index_type spread)
        : buf(static_cast<std::size_t>(rows * cols * spread)), shape{rows, cols} {
        strides = transposed ? lk::extents_type<2>{spread, rows * spread} : lk::extents_type<2>{cols * spread, spread};
    }
    lk::tensor_view<T, 2> view() { return lk::tensor_view<T, 2>(buf.data(), shape, strides); }
    lk::tensor_view<const T, 2> cview() const { return lk::tensor_view<const T, 2>(buf.data(), shape, strides); }
};

struct layout_case {
    lk::index_type rows, cols;
    int axis;
    bool transposed;
    lk::index_type spread;
};

const layout_case cases[] = {
    {300, 1000, -1, false, 1},  // rows
    {10000, 7, -1, false, 1},   // many short rows: pieces of many lines
    {4, 40000, 1, false, 1},    // few long rows
    {1000, 300, 0, false, 1},   // columns: axis 0 walked across the contiguous last dimension
    {999, 131, 0, false, 1},    // columns with a tail band
    {200, 2100, 0, false, 1},   // columns wider than a page: bands narrower than its blocks
    {700, 500, -1, true, 1},    // transposed: the axis has stride 'rows', the other is contiguous
    {400, 300, 1, false, 2},    // gather: nothing contiguous
    {1, 300001, -1, false, 1},  // one long row: its pieces are split over the executor
    {2, 140001, 1, false, 1},   // fewer long rows than threads
};

// Calls kernel(x, y, executor*) with no executor, then with each executor, and checks the bits.
// `splits_one_line`: whether the kernel's runner splits a single long row into pieces (the masked
// and converted runners, and a backward call with a temperature, split lines only).
template <class T, class Kernel>
void check_all_executors(const layout_case& c, Kernel kernel, bool splits_one_line = true) {
    INFO("shape [" << c.rows << ", " << c.cols << "], axis " << c.axis << (c.transposed ? ", transposed" : "")
                   << ", spread " << c.spread);
    view2<T> x(c.rows, c.cols, c.transposed, c.spread);
    x.buf = random_values<T>(x.buf.size(), static_cast<std::uint64_t>(c.rows * 31 + c.cols));
    auto run = [&](lk::executor* ex) {
        view2<T> y(c.rows, c.cols, c.transposed, c.spread);
        kernel(x, y, ex);
        return y.buf;
    };
    const auto expected = run(nullptr);
    lk::thread_pool one(1), two(2), three(3);
    reverse_executor reverse(4);
    async_executor async;
    CHECK(same_bits(run(&one), expected));
    CHECK(same_bits(run(&two), expected));
    CHECK(same_bits(run(&three), expected));
    CHECK(same_bits(run(&async), expected));
    CHECK(same_bits(run(&reverse), expected));
    // Every case holds at least 2 * 2^15 elements: the work is split (one call, or for a split
    // long row one call per pass over it), but a single row only by a runner that splits rows.
    if (c.rows == 1 && !splits_one_line) {
        CHECK(reverse.calls == 0);
        return;
    }
    CHECK(reverse.calls >= 1);
    CHECK(reverse.pieces > reverse.calls);
}

}  // namespace

TEMPLATE_TEST_CASE("softmax and log_softmax with an executor equal the single-threaded call bit for bit", "[parallel]",
                   float, double) {
    using T = TestType;
    for (const auto& c : cases) {
        check_all_executors<T>(c, [&](view2<T>& x, view2<T>& y, lk::executor* ex) {
            lk::softmax_options o;
            o.parallel = ex;
            lk::softmax(x.cview(), y.view(), c.axis, o);
        });
        check_all_executors<T>(c, [&](view2<T>& x, view2<T>& y, lk::executor* ex) {
            lk::softmax_options o;
            o.parallel = ex;
            o.temperature = 0.7;
            lk::log_softmax(x.cview(), y.view(), c.axis, o);
        });
    }
}

TEMPLATE_TEST_CASE("the backward kernels with an executor equal the single-threaded call bit for bit", "[parallel]",
                   float, double) {
    using T = TestType;
    for (const auto& c : cases) {
        // x serves as y, and a second random tensor as dy.
        check_all_executors<T>(c, [&](view2<T>& x, view2<T>& dx, lk::executor* ex) {
            view2<T> dy(c.rows, c.cols, c.transposed, c.spread);
            dy.buf = random_values<T>(dy.buf.size(), 99);
            lk::softmax_options o;
            o.parallel = ex;
            lk::softmax_backward(x.cview(), dy.cview(), dx.view(), c.axis, o);
        });
        check_all_executors<T>(c, [&](view2<T>& x, view2<T>& dx, lk::executor* ex) {
            view2<T> dy(c.rows, c.cols, c.transposed, c.spread);
            dy.buf = random_values<T>(dy.buf.size(), 98);
            lk::softmax_options o;
            o.parallel = ex;
            o.temperature = 2.5;  // the masked/converted runner
            lk::log_softmax_backward(x.cview(), dy.cview(), dx.view(), c.axis, o);
        }, false);
    }
}

TEST_CASE("logsumexp with an executor equals the single-threaded call bit for bit", "[parallel]") {
    for (const auto& c : cases) {
        check_all_executors<float>(c, [&](view2<float>& x, view2<float>& y, lk::executor* ex) {
            // The output keeps a dimension of extent 1 on the axis: use the first line of y's buffer.
            lk::extents_type<2> shape = x.shape;
            const std::size_t a = c.axis < 0 ? 1 : static_cast<std::size_t>(c.axis);
            shape[a] = 1;
            lk::logsumexp(x.cview(), lk::tensor_view<float, 2>(y.buf.data(), shape), c.axis, ex);
        });
    }
}

TEST_CASE("masked, causal and bfloat16 calls with an executor equal the single-threaded call bit for bit",
          "[parallel]") {
    for (const auto& c : cases) {
        if (c.axis == 0) continue;  // causal rows need a query dimension before the axis
        std::vector<char> keep_bytes(static_cast<std::size_t>(c.cols));
        rng r(5);
        for (auto& k : keep_bytes) k = r.chance(0.7) ? 1 : 0;
        std::unique_ptr<bool[]> keep(new bool[keep_bytes.size()]);
        for (std::size_t i = 0; i < keep_bytes.size(); ++i) keep[i] = keep_bytes[i] != 0;
        const lk::tensor_view<const bool, 1> mask(keep.get(), {c.cols});
        check_all_executors<float>(c, [&](view2<float>& x, view2<float>& y, lk::executor* ex) {
            lk::softmax_options o;
            o.parallel = ex;
            lk::softmax(x.cview(), y.view(), mask, c.axis, o);
        }, false);
        check_all_executors<float>(c, [&](view2<float>& x, view2<float>& y, lk::executor* ex) {
            lk::softmax_options o;
            o.parallel = ex;
            o.causal = true;
            o.causal_offset = c.cols - c.rows;
            lk::log_softmax(x.cview(), y.view(), c.axis, o);
        }, false);
        check_all_executors<lk::bfloat16>(c, [&](view2<lk::bfloat16>& x, view2<lk::bfloat16>& y, lk::executor* ex) {
            lk::softmax_options o;
            o.parallel = ex;
            lk::softmax(x.cview(), y.view(), c.axis, o);
        }, false);
    }
}

TEMPLATE_TEST_CASE("a row of many pieces keeps the stated bounds, split or not", "[parallel]", float, double) {
    using T = TestType;
    const lk::index_type n = 4 * 65536 + 33;
    const auto x = random_values<T>(static_cast<std::size_t>(n), 77);
    long double mx = x[0];
    for (const T v : x) mx = std::max<long double>(mx, v);
    long double sum = 0;
    for (const T v : x) sum += std::exp(static_cast<long double>(v) - mx);
    const long double lse = mx + std::log(sum);
    lk::thread_pool pool(3);
    for (lk::executor* ex : {static_cast<lk::executor*>(nullptr), static_cast<lk::executor*>(&pool)}) {
        INFO((ex ? "split over 3 threads" : "one thread"));
        const auto outputs = row_outputs(x, ex);
        const T* y = outputs.data();
        const T* l = y + x.size();
        const T out = outputs.back();
        long double worst_y = 0, worst_l = 0;
        for (std::size_t i = 0; i < x.size(); ++i) {
            const long double ref = std::exp(static_cast<long double>(x[i]) - lse);
            worst_y = std::max(worst_y, std::fabs(y[i] - ref) / ref);
            worst_l = std::max(worst_l, std::fabs(l[i] - (static_cast<long double>(x[i]) - lse)) /
                                            std::max<long double>(1, std::fabs(x[i] - lse)));
        }
        CHECK(worst_y <= lk_test::bounds<T>::softmax_rel);
        CHECK(worst_l <= lk_test::bounds<T>::log_coef);
        CHECK(std::fabs(out - lse) <= lk_test::bounds<T>::log_coef * std::max<long double>(1, std::fabs(lse)));
    }
}

TEST_CASE("a split long row with infinities and NaN gives the single-threaded values", "[parallel]") {
    const lk::index_type n = 3 * 65536 + 5;
    lk::thread_pool pool(3);
    for (const float special : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                                std::numeric_limits<float>::quiet_NaN(), 1e30f}) {
        INFO("special value " << special);
        auto x = random_values<float>(static_cast<std::size_t>(n), 5);
        x[70000] = special;   // in the second piece
        x[190000] = special;  // in the last
        CHECK(same_values(row_outputs(x, &pool), row_outputs(x, nullptr)));
    }
}

TEMPLATE_TEST_CASE("a split long row takes its exponentials in one pass when the whole row allows it", "[parallel]",
                   float, double) {
    // The pieces take exp(x) first, each with its range; the row's verdict (line_shift_for) comes
    // from all of them, as from the single-threaded pass over the whole row: a constant piece in a
    // row that is not constant stays unshifted, and one element past the unshifted limit in any
    // piece sends the whole row to the range's pass.
    using T = TestType;
    const lk::index_type n = 3 * 65536 + 21;
    const T limit = std::is_same<T, float>::value ? T(64) : T(512);
    struct variant {
        const char* name;
        std::size_t at;  // where `value` goes (n: nowhere)
        T value;
        bool constant_first_piece;
        bool one_pass;  // softmax's passes over the row: the exponentials' and the scale's only
    };
    const variant variants[] = {
        {"random", static_cast<std::size_t>(n), T(0), false, true},
        {"constant first piece", static_cast<std::size_t>(n), T(0), true, true},
        {"at the limit in the last piece", 3 * 65536 + 2, limit, false, true},
        {"past the limit in the last piece", 3 * 65536 + 2, limit * T(1.5), false, false},
        {"past the limit in the first piece", 1000, -limit * T(1.5), false, false},
        {"past the limit in a constant first piece", 65535, limit * T(2), true, false},
    };
    for (const variant& v : variants) {
        INFO(v.name);
        auto x = random_values<T>(static_cast<std::size_t>(n), 41);
        if (v.constant_first_piece) std::fill(x.begin(), x.begin() + 65536, T(3));
        if (v.at < x.size()) x[v.at] = v.value;
        const lk::tensor_view<const T, 1> xv(x.data(), {n});
        const auto expected = row_outputs(x, nullptr);
        lk::thread_pool pool(3);
        CHECK(same_bits(row_outputs(x, &pool), expected));
        reverse_executor reverse(4);
        CHECK(same_bits(row_outputs(x, &reverse), expected));
        reverse_executor softmax_only(4);
        lk::softmax_options o;
        o.parallel = &softmax_only;
        std::vector<T> y(x.size());
        lk::softmax(xv, lk::tensor_view<T, 1>(y.data(), {n}), -1, o);
        CHECK(same_bits(y, std::vector<T>(expected.begin(), expected.begin() + n)));
        // One pass of exponentials and the scale; else the attempt, the range, the exponentials
        // again and the scale.
        CHECK(softmax_only.calls == (v.one_pass ? 2u : 4u));
    }
}

TEMPLATE_TEST_CASE("a column block whose rows split over an executor takes the verdicts of all its rows",
                   "[parallel]", float, double) {
    // Axis 0 with few columns: each block's rows go to the executor in pieces of 256, and the
    // pieces' ranges give the block's verdict, as the single-threaded call's do: a column constant
    // in one piece stays unshifted, and one element past the unshifted limit, an infinity or a
    // NaN in any piece sends the block to the range's pass.
    using T = TestType;
    const lk::index_type n = 2 * 256 + 1;  // the last piece holds one row
    const T limit = std::is_same<T, float>::value ? T(64) : T(512);
    struct variant {
        const char* name;
        lk::index_type row;  // where `value` goes in column 0 (-1: nowhere)
        T value;
        bool constant_first_piece;
        bool one_pass;
    };
    const variant variants[] = {
        {"random", -1, T(0), false, true},
        {"column constant in the first piece", -1, T(0), true, true},
        {"at the limit in the last piece", n - 1, -limit, false, true},
        {"past the limit in the last piece", n - 1, -limit * T(1.5), false, false},
        {"past the limit in the middle piece", 300, limit * T(1.5), false, false},
        {"an infinity in the first piece", 7, -std::numeric_limits<T>::infinity(), false, false},
        {"a NaN in the middle piece", 400, std::numeric_limits<T>::quiet_NaN(), false, false},
    };
    for (const lk::index_type width : {lk::index_type(2), lk::index_type(40), lk::index_type(300)}) {
        std::size_t one_pass_calls = 0;
        for (const variant& v : variants) {
            INFO(v.name << ", " << width << " columns");
            auto x = random_values<T>(static_cast<std::size_t>(n * width), static_cast<std::uint64_t>(width));
            if (v.constant_first_piece)
                for (lk::index_type r = 0; r < 256; ++r) x[static_cast<std::size_t>(r * width)] = T(3);
            if (v.row >= 0) x[static_cast<std::size_t>(v.row * width)] = v.value;
            const lk::tensor_view<const T, 2> xv(x.data(), {n, width});
            auto run = [&](lk::executor* ex) {
                lk::softmax_options o;
                o.parallel = ex;
                std::vector<T> y(x.size()), l(x.size()), dx(x.size()), dl(x.size());
                std::vector<T> out(static_cast<std::size_t>(width));
                const lk::tensor_view<T, 2> yv(y.data(), {n, width}), lv(l.data(), {n, width});
                const lk::tensor_view<T, 2> dxv(dx.data(), {n, width}), dlv(dl.data(), {n, width});
                lk::softmax(xv, yv, 0, o);
                lk::log_softmax(xv, lv, 0, o);
                lk::logsumexp(xv, lk::tensor_view<T, 2>(out.data(), {1, width}), 0, ex);
                lk::softmax_backward(lk::tensor_view<const T, 2>(yv), xv, dxv, 0, o);
                lk::log_softmax_backward(lk::tensor_view<const T, 2>(lv), xv, dlv, 0, o);
                for (auto* part : {&l, &dx, &dl, &out}) y.insert(y.end(), part->begin(), part->end());
                return y;
            };
            const auto expected = run(nullptr);
            lk::thread_pool pool(2);
            CHECK(same_values(run(&pool), expected));
            reverse_executor reverse(4);
            CHECK(same_values(run(&reverse), expected));
            // softmax's passes over a block are its exponentials' and its scale's; else the
            // attempt, the range, the exponentials and the scale. Column 0 is in one block, and
            // the "random" variant (the first) gives every block's count of passes.
            reverse_executor softmax_only(4);
            lk::softmax_options o;
            o.parallel = &softmax_only;
            std::vector<T> y(x.size());
            lk::softmax(xv, lk::tensor_view<T, 2>(y.data(), {n, width}), 0, o);
            CHECK(same_values(y, std::vector<T>(expected.begin(), expected.begin() + n * width)));
            if (&v == variants) {
                one_pass_calls = softmax_only.calls;
                CHECK(one_pass_calls % 2 == 0);
            }
            CHECK(softmax_only.calls == one_pass_calls + (v.one_pass ? 0u : 2u));
            CHECK(softmax_only.pieces == 3 * softmax_only.calls);
        }
    }
}

TEST_CASE("a call on a small tensor stays on the calling thread", "[parallel]") {
    std::vector<float> x(1000, 1.0f), y(1000);
    reverse_executor ex(8);
    lk::softmax_options o;
    o.parallel = &ex;
    lk::softmax(lk::tensor_view<const float, 2>(x.data(), {10, 100}), lk::tensor_view<float, 2>(y.data(), {10, 100}), -1,
                o);
    CHECK(ex.calls == 0);
    CHECK(y[0] == 0.01f);
}

TEST_CASE("thread_pool runs every piece once, rethrows a piece's exception and stays usable", "[parallel]") {
    CHECK_THROWS_AS(lk::thread_pool(0), std::invalid_argument);
    CHECK_THROWS_WITH(lk::thread_pool(0), Catch::Matchers::Contains("threads") && Catch::Matchers::Contains("got 0"));
    lk::thread_pool pool(3);
    CHECK(pool.concurrency() == 3);
    for (std::size_t count : {1u, 2u, 3u, 17u, 1000u}) {
        std::vector<std::atomic<int>> hits(count);
        for (auto& h : hits) h = 0;
        pool.run(count, [&](std::size_t i) { ++hits[i]; });
        bool once = true;
        for (auto& h : hits) once = once && h == 1;
        CHECK(once);
    }
    const auto failing = [](std::size_t i) {
        if (i == 7) throw std::runtime_error("piece 7 failed");
    };
    CHECK_THROWS_AS(pool.run(50, failing), std::runtime_error);
    CHECK_THROWS_WITH(pool.run(50, failing), Catch::Matchers::Contains("piece 7"));
    std::atomic<int> after{0};
    pool.run(10, [&](std::size_t) { ++after; });
    CHECK(after == 10);
}
