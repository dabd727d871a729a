// logitkit thread-safety test: every kernel runs from several std::threads at once on shared,
// read-only inputs and thread-private outputs, and each thread's output must be bit-for-bit the
// output of a single-threaded run. Built with -fsanitize=thread (ctest label "tsan"), so a data
// race anywhere in the library (shared scratch buffers, lazily initialised tables, non-atomic
// globals) is reported even when the outputs happen to match.
//
// Cases cover the three dispatch paths (contiguous rows, vectorised columns, gathered lines), in
// place and out of place, float and double, the default SIMD path and scalar_arch, temperatures,
// special values, argument errors thrown concurrently, the error-handler accessors, and calls
// split over a thread_pool shared by all the threads or created inside the call.
// SPDX-License-Identifier: MIT
#include <logitkit/logitkit.hpp>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using bytes = std::vector<unsigned char>;

struct test_case {
    std::string name;
    std::function<bytes()> run;  // runs the kernel into fresh private outputs; returns their bytes
};

template <class T>
bytes to_bytes(const std::vector<T>& v) {
    bytes b(v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
    return b;
}

// Deterministic values in [-8, 8) with a few special entries.
template <class T>
std::vector<T> make_values(std::size_t n, unsigned seed, bool specials) {
    std::vector<T> v(n);
    unsigned s = seed * 2654435761u + 12345u;
    for (std::size_t i = 0; i < n; ++i) {
        s = s * 1664525u + 1013904223u;
        v[i] = static_cast<T>(static_cast<double>(s >> 8) / double(1u << 24) * 16.0 - 8.0);
    }
    if (specials && n > 40) {
        v[3] = -std::numeric_limits<T>::infinity();
        v[17] = std::numeric_limits<T>::quiet_NaN();
        v[29] = std::numeric_limits<T>::infinity();
        v[31] = std::numeric_limits<T>::denorm_min();
        v[37] = std::numeric_limits<T>::max() / T(4);
    }
    return v;
}

/// One operand layout: a view of shape `shape` into a buffer of `buffer` elements at `offset`
/// with `strides`.
template <std::size_t R>
struct operand {
    logitkit::extents_type<R> strides;
    logitkit::index_type offset;
    std::size_t buffer;
};

template <std::size_t R>
struct layout {
    const char* name;
    logitkit::extents_type<R> shape;
    operand<R> in;   // inputs (x, or y and dy)
    operand<R> out;  // outputs
    int axis;
};

template <std::size_t R>
logitkit::extents_type<R> row_major(const logitkit::extents_type<R>& shape) {
    logitkit::extents_type<R> s{};
    logitkit::index_type st = 1;
    for (std::size_t k = R; k-- > 0;) {
        s[k] = st;
        st *= shape[k];
    }
    return s;
}

template <std::size_t R>
std::size_t count(const logitkit::extents_type<R>& shape) {
    std::size_t n = 1;
    for (auto e : shape) n *= static_cast<std::size_t>(e);
    return n;
}

template <std::size_t R>
operand<R> contiguous(const logitkit::extents_type<R>& shape) {
    return {row_major<R>(shape), 0, count<R>(shape)};
}

/// Every other element along the last dimension (stride 2): no dimension is contiguous.
template <std::size_t R>
operand<R> strided2(const logitkit::extents_type<R>& shape) {
    auto s = row_major<R>(shape);
    for (auto& v : s) v *= 2;
    return {s, 0, 2 * count<R>(shape)};
}

/// Row-major, but reversed in every dimension (all strides negative).
template <std::size_t R>
operand<R> reversed(const logitkit::extents_type<R>& shape) {
    auto s = row_major<R>(shape);
    logitkit::index_type last = 0;
    for (std::size_t k = 0; k < R; ++k) {
        last += (shape[k] - 1) * s[k];
        s[k] = -s[k];
    }
    return {s, last, count<R>(shape)};
}

/// Column-major (transposed memory order).
template <std::size_t R>
operand<R> transposed(const logitkit::extents_type<R>& shape) {
    logitkit::extents_type<R> s{};
    logitkit::index_type st = 1;
    for (std::size_t k = 0; k < R; ++k) {
        s[k] = st;
        st *= shape[k];
    }
    return {s, 0, count<R>(shape)};
}

template <std::size_t R>
std::vector<layout<R>> layouts(const logitkit::extents_type<R>& shape) {
    std::vector<layout<R>> v;
    v.push_back({"rows (last axis, contiguous)", shape, contiguous<R>(shape), contiguous<R>(shape), -1});
    v.push_back({"columns (first axis, contiguous)", shape, contiguous<R>(shape), contiguous<R>(shape), 0});
    v.push_back({"gather (strided input)", shape, strided2<R>(shape), contiguous<R>(shape), -1});
    v.push_back({"gather (reversed input, strided output)", shape, reversed<R>(shape), strided2<R>(shape), 0});
    v.push_back({"transposed input, reversed output", shape, transposed<R>(shape), reversed<R>(shape), -1});
    return v;
}

template <class T, std::size_t R>
std::vector<T> fill_operand(const operand<R>& op, const logitkit::extents_type<R>& shape, const std::vector<T>& dense) {
    // dense holds the logical tensor in row-major order; scatter it into the operand's buffer.
    std::vector<T> buf(op.buffer, T(-1234.5));
    logitkit::tensor_view<T, R> v(buf.data() + op.offset, shape, op.strides);
    logitkit::extents_type<R> idx{};
    for (std::size_t i = 0; i < dense.size(); ++i) {
        v[idx] = dense[i];
        for (std::size_t k = R; k-- > 0;) {
            if (++idx[k] < shape[k]) break;
            idx[k] = 0;
        }
    }
    return buf;
}

template <class Arch, class T, std::size_t R>
void add_cases(std::vector<test_case>& cases, const char* arch, const layout<R>& L, unsigned seed) {
    const std::string prefix = std::string(arch) + " " + (sizeof(T) == 4 ? "float" : "double") + " rank " +
                               std::to_string(R) + " " + L.name + ": ";
    const std::size_t n = count<R>(L.shape);
    // Shared inputs: every thread's closures point to the same read-only buffers.
    const auto x = std::make_shared<const std::vector<T>>(fill_operand<T, R>(L.in, L.shape, make_values<T>(n, seed, true)));
    const auto dy = std::make_shared<const std::vector<T>>(fill_operand<T, R>(L.in, L.shape, make_values<T>(n, seed + 1, false)));
    // A softmax output to differentiate: y = softmax(x0) of finite values.
    std::vector<T> ys(n);
    {
        const auto x0 = make_values<T>(n, seed + 2, false);
        logitkit::softmax<logitkit::detail::scalar_arch>(logitkit::tensor_view<const T, R>(x0.data(), L.shape),
                                                         logitkit::tensor_view<T, R>(ys.data(), L.shape), L.axis);
    }
    const auto y = std::make_shared<const std::vector<T>>(fill_operand<T, R>(L.in, L.shape, ys));
    const auto in_view = [L](const std::vector<T>& b) {
        return logitkit::tensor_view<const T, R>(b.data() + L.in.offset, L.shape, L.in.strides);
    };
    const auto out_view = [L](std::vector<T>& b) {
        return logitkit::tensor_view<T, R>(b.data() + L.out.offset, L.shape, L.out.strides);
    };
    const auto out_buffer = [L] { return std::vector<T>(L.out.buffer, T(0)); };

    for (double temperature : {1.0, 0.7}) {
        logitkit::softmax_options o;
        o.temperature = temperature;
        const std::string t = " (T = " + std::to_string(temperature) + ")";
        cases.push_back({prefix + "softmax" + t, [=] {
                             auto out = out_buffer();
                             logitkit::softmax<Arch>(in_view(*x), out_view(out), L.axis, o);
                             return to_bytes(out);
                         }});
        cases.push_back({prefix + "log_softmax" + t, [=] {
                             auto out = out_buffer();
                             logitkit::log_softmax<Arch>(in_view(*x), out_view(out), L.axis, o);
                             return to_bytes(out);
                         }});
        cases.push_back({prefix + "softmax in place" + t, [=] {
                             std::vector<T> z = *x;
                             logitkit::tensor_view<T, R> zv(z.data() + L.in.offset, L.shape, L.in.strides);
                             logitkit::softmax<Arch>(zv, zv, L.axis, o);
                             return to_bytes(z);
                         }});
        cases.push_back({prefix + "log_softmax in place" + t, [=] {
                             std::vector<T> z = *x;
                             logitkit::tensor_view<T, R> zv(z.data() + L.in.offset, L.shape, L.in.strides);
                             logitkit::log_softmax<Arch>(zv, zv, L.axis, o);
                             return to_bytes(z);
                         }});
    }
    cases.push_back({prefix + "logsumexp", [=] {
                         auto reduced = L.shape;
                         const std::size_t a = static_cast<std::size_t>(L.axis < 0 ? L.axis + int(R) : L.axis);
                         reduced[a] = 1;
                         std::vector<T> out(count<R>(reduced), T(0));
                         logitkit::logsumexp<Arch>(in_view(*x), logitkit::tensor_view<T, R>(out.data(), reduced),
                                                   L.axis);
                         return to_bytes(out);
                     }});
    // Masked calls: one shared keep mask over the last dimension, and the causal option (which
    // needs a query dimension before the axis).
    const logitkit::index_type last = L.shape[R - 1];
    const std::shared_ptr<bool[]> keep(new bool[static_cast<std::size_t>(last)]);
    for (logitkit::index_type i = 0; i < last; ++i) keep[static_cast<std::size_t>(i)] = i % 3 != 1;
    const auto mask = [keep, last] { return logitkit::tensor_view<const bool, 1>(keep.get(), {last}); };
    cases.push_back({prefix + "masked softmax", [=] {
                         auto out = out_buffer();
                         logitkit::softmax<Arch>(in_view(*x), out_view(out), mask(), L.axis);
                         return to_bytes(out);
                     }});
    cases.push_back({prefix + "masked log_softmax_backward", [=] {
                         auto out = out_buffer();
                         logitkit::log_softmax_backward<Arch>(in_view(*y), in_view(*dy), out_view(out), mask(), L.axis);
                         return to_bytes(out);
                     }});
    if ((L.axis < 0 ? L.axis + int(R) : L.axis) >= 1) {
        logitkit::softmax_options causal;
        causal.causal = true;
        causal.causal_offset = 1;
        cases.push_back({prefix + "causal log_softmax", [=] {
                             auto out = out_buffer();
                             logitkit::log_softmax<Arch>(in_view(*x), out_view(out), L.axis, causal);
                             return to_bytes(out);
                         }});
        cases.push_back({prefix + "causal softmax_backward", [=] {
                             auto out = out_buffer();
                             logitkit::softmax_backward<Arch>(in_view(*y), in_view(*dy), out_view(out), L.axis, causal);
                             return to_bytes(out);
                         }});
    }
    cases.push_back({prefix + "softmax_backward", [=] {
                         auto out = out_buffer();
                         logitkit::softmax_backward<Arch>(in_view(*y), in_view(*dy), out_view(out), L.axis);
                         return to_bytes(out);
                     }});
    cases.push_back({prefix + "log_softmax_backward", [=] {
                         auto out = out_buffer();
                         // log_softmax's output is log(y).
                         std::vector<T> logy = *y;
                         for (auto& v : logy) v = std::log(v);
                         logitkit::log_softmax_backward<Arch>(in_view(logy), in_view(*dy), out_view(out), L.axis);
                         return to_bytes(out);
                     }});
    cases.push_back({prefix + "softmax_backward in place (dx = dy)", [=] {
                         std::vector<T> g = *dy;
                         logitkit::tensor_view<T, R> gv(g.data() + L.in.offset, L.shape, L.in.strides);
                         logitkit::softmax_backward<Arch>(in_view(*y), gv, gv, L.axis);
                         return to_bytes(g);
                     }});
    cases.push_back({prefix + "log_softmax_backward in place (dx = dy)", [=] {
                         std::vector<T> g = *dy;
                         logitkit::tensor_view<T, R> gv(g.data() + L.in.offset, L.shape, L.in.strides);
                         logitkit::log_softmax_backward<Arch>(in_view(*y), gv, gv, L.axis);
                         return to_bytes(g);
                     }});
}

template <class Arch, class T>
void add_all(std::vector<test_case>& cases, const char* arch) {
    unsigned seed = sizeof(T) == 4 ? 1u : 100u;
    for (const auto& L : layouts<2>({37, 45})) add_cases<Arch, T, 2>(cases, arch, L, seed++);
    for (const auto& L : layouts<3>({5, 19, 11})) add_cases<Arch, T, 3>(cases, arch, L, seed++);
    for (const auto& L : layouts<1>({131})) add_cases<Arch, T, 1>(cases, arch, L, seed++);
}

/// Argument errors raised concurrently: the message must be the single-threaded one.
void add_error_cases(std::vector<test_case>& cases) {
    const auto message = [](auto&& f) {
        try {
            f();
        } catch (const std::exception& e) {
            const std::string m = e.what();
            return bytes(m.begin(), m.end());
        }
        return bytes{'n', 'o', 'n', 'e'};
    };
    cases.push_back({"error: axis out of range", [=] {
                         std::vector<float> x(6, 1.0f), y(6);
                         return message([&] {
                             logitkit::softmax(logitkit::tensor_view<const float, 2>(x.data(), {2, 3}),
                                               logitkit::tensor_view<float, 2>(y.data(), {2, 3}), 7);
                         });
                     }});
    cases.push_back({"error: bad temperature", [=] {
                         std::vector<double> x(6, 1.0), y(6);
                         logitkit::softmax_options o;
                         o.temperature = -0.25;
                         return message([&] {
                             logitkit::log_softmax(logitkit::tensor_view<const double, 2>(x.data(), {2, 3}),
                                                   logitkit::tensor_view<double, 2>(y.data(), {2, 3}), -1, o);
                         });
                     }});
    cases.push_back({"error: partial overlap", [=] {
                         std::vector<float> b(12, 1.0f);
                         return message([&] {
                             logitkit::softmax(logitkit::tensor_view<const float, 2>(b.data(), {2, 3}),
                                               logitkit::tensor_view<float, 2>(b.data() + 1, {2, 3}));
                         });
                     }});
    cases.push_back({"error: negative extent", [=] {
                         std::vector<float> b(12, 1.0f);
                         return message([&] { logitkit::tensor_view<float, 2> v(b.data(), {2, -3}); });
                     }});
    cases.push_back({"error handler: set and get from many threads", [=] {
                         // The handler slot is one atomic shared by the program: installing and
                         // reading it concurrently is race-free, and get never returns null.
                         const logitkit::error_handler previous = logitkit::set_error_handler(nullptr);
                         const logitkit::error_handler now = logitkit::get_error_handler();
                         logitkit::set_error_handler(previous);
                         return bytes{static_cast<unsigned char>(previous != nullptr && now != nullptr)};
                     }});
}

/// Calls split over executors: one thread_pool shared by every test thread (its run() calls take
/// turns), and pools created and destroyed inside a call; the outputs must still match.
void add_pool_cases(std::vector<test_case>& cases, logitkit::thread_pool& shared) {
    // 300 x 300 elements: enough for the kernels to split the work (pieces of >= 2^15 elements).
    const logitkit::extents_type<2> shape{300, 300};
    const auto x = std::make_shared<std::vector<float>>(make_values<float>(90000, 7u, true));
    const auto dy = std::make_shared<std::vector<float>>(make_values<float>(90000, 8u, false));
    logitkit::thread_pool* pool = &shared;
    for (int axis : {-1, 0}) {
        const std::string where = axis == -1 ? " (rows)" : " (columns)";
        cases.push_back({"shared thread_pool: softmax" + where, [=] {
                             std::vector<float> y(x->size());
                             logitkit::softmax_options o;
                             o.parallel = pool;
                             logitkit::softmax(logitkit::tensor_view<const float, 2>(x->data(), shape),
                                               logitkit::tensor_view<float, 2>(y.data(), shape), axis, o);
                             return to_bytes(y);
                         }});
        cases.push_back({"shared thread_pool: log_softmax_backward" + where, [=] {
                             std::vector<float> dx(x->size());
                             logitkit::softmax_options o;
                             o.parallel = pool;
                             logitkit::log_softmax_backward(logitkit::tensor_view<const float, 2>(x->data(), shape),
                                                            logitkit::tensor_view<const float, 2>(dy->data(), shape),
                                                            logitkit::tensor_view<float, 2>(dx.data(), shape), axis, o);
                             return to_bytes(dx);
                         }});
        cases.push_back({"own thread_pool per call: logsumexp" + where, [=] {
                             logitkit::thread_pool own(3);
                             logitkit::extents_type<2> out_shape = shape;
                             out_shape[axis == -1 ? 1 : 0] = 1;
                             std::vector<float> out(300);
                             logitkit::logsumexp(logitkit::tensor_view<const float, 2>(x->data(), shape),
                                                 logitkit::tensor_view<float, 2>(out.data(), out_shape), axis, &own);
                             return to_bytes(out);
                         }});
    }
}

}  // namespace

int main(int argc, char** argv) {
    const int threads = argc > 1 ? std::atoi(argv[1]) : 8;
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 3;

    std::vector<test_case> cases;
    add_all<logitkit::detail::default_arch, float>(cases, logitkit::simd_arch_name());
    add_all<logitkit::detail::default_arch, double>(cases, logitkit::simd_arch_name());
    add_all<logitkit::detail::scalar_arch, float>(cases, "scalar");
    add_all<logitkit::detail::scalar_arch, double>(cases, "scalar");
    add_error_cases(cases);
    logitkit::thread_pool shared_pool(3);
    add_pool_cases(cases, shared_pool);

    // Single-threaded reference outputs.
    std::vector<bytes> expected;
    expected.reserve(cases.size());
    for (const auto& c : cases) expected.push_back(c.run());

    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
    std::atomic<long> mismatches{0};
    std::vector<std::string> first_mismatch(static_cast<std::size_t>(threads));
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
            ready.fetch_add(1);
            while (!go.load()) std::this_thread::yield();
            for (int r = 0; r < rounds; ++r) {
                // Each thread walks the cases from a different starting point, so different
                // kernels and the same kernel both run concurrently.
                for (std::size_t k = 0; k < cases.size(); ++k) {
                    const std::size_t i = (k + static_cast<std::size_t>(t) * 7u) % cases.size();
                    if (cases[i].run() != expected[i]) {
                        mismatches.fetch_add(1);
                        auto& first = first_mismatch[static_cast<std::size_t>(t)];  // this thread's slot
                        if (first.empty()) first = cases[i].name;
                    }
                }
            }
        });
    }
    while (ready.load() < threads) std::this_thread::yield();
    go.store(true);
    for (auto& th : pool) th.join();

    if (mismatches.load() != 0) {
        std::fprintf(stderr, "FAILED: %ld outputs differ from the single-threaded run\n", mismatches.load());
        for (int t = 0; t < threads; ++t)
            if (!first_mismatch[static_cast<std::size_t>(t)].empty())
                std::fprintf(stderr, "  thread %d, first mismatch: %s\n", t, first_mismatch[static_cast<std::size_t>(t)].c_str());
        return 1;
    }
    std::printf("logitkit threads: %zu cases x %d threads x %d rounds (SIMD path %s and scalar): "
                "every output bit-identical to the single-threaded run\n",
                cases.size(), threads, rounds, logitkit::simd_arch_name());
    return 0;
}
