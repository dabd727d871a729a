// logitkit — opt-in parallelism: the executor interface and a built-in thread pool.
// SPDX-License-Identifier: MIT
//
// Every kernel runs on the calling thread unless it is handed an executor (softmax_options::parallel,
// logsumexp's last argument). With one, the kernel splits its lines (rows, or blocks of columns
// when the axis is not the last dimension) into pieces and gives them to executor::run; a line
// much longer than the others, or a block of columns when they are too few, is split along the
// axis itself, into pieces whose sums are added in order. A line's result never depends on the
// piece it lands in, so the output is bit-identical to the single-threaded call whatever the
// executor, its thread count or its order.
//
// Example:
//   logitkit::thread_pool pool(4);           // 4 threads in all: the caller and 3 workers
//   logitkit::softmax_options o;
//   o.parallel = &pool;
//   logitkit::softmax(x, y, -1, o);
//
// To run on threads of your own (TBB, OpenMP, an engine's job system), derive from executor.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "error_handler.hpp"

namespace logitkit {

/// Runs the independent pieces of one kernel call.
class executor {
public:
    virtual ~executor() = default;
    /// How many pieces can run at once; a kernel splits its work into about this many pieces.
    virtual std::size_t concurrency() const noexcept = 0;
    /// Calls task(i) once for every i in [0, count), in any order and on any threads, and returns
    /// when every call has returned. An exception from a task must reach the caller of run (the
    /// kernel's tasks throw only std::bad_alloc).
    virtual void run(std::size_t count, const std::function<void(std::size_t)>& task) = 0;
};

/// A fixed set of worker threads; the thread calling run() works too. One run() at a time: calls
/// from several threads take turns. The pool must outlive the calls that use it.
///
/// A worker that has finished its pieces polls for the next run() for up to spin_time (yielding
/// the processor between looks) before it sleeps, and run() polls likewise for the pieces still
/// running: a kernel's stages call run() back to back, and a sleeping thread took 50 to 70 us to
/// wake on a 2-core virtual machine, a quarter of a call on a 4 MB tensor.
class thread_pool final : public executor {
public:
    /// threads >= 1 is the number of threads a call runs on, the caller included; 0 is an
    /// std::invalid_argument (or, without exceptions, goes to the error handler).
    explicit thread_pool(std::size_t threads) {
        if (threads == 0)
            detail::raise_error(detail::error_kind::invalid_argument,
                                "logitkit::thread_pool: threads must be >= 1, got 0");
        workers_.reserve(threads - 1);
        for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() override {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
    }

    std::size_t concurrency() const noexcept override { return workers_.size() + 1; }

    void run(std::size_t count, const std::function<void(std::size_t)>& task) override {
        if (count == 0) return;
        std::lock_guard<std::mutex> turn(run_mutex_);
        if (workers_.empty() || count == 1) {
            for (std::size_t i = 0; i < count; ++i) task(i);
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            task_ = &task;
            count_ = count;
            next_.store(0);
            error_ = nullptr;
            busy_.store(workers_.size());
            generation_.store(generation_.load() + 1);
        }
        wake_.notify_all();
        drain();
        poll([this] { return busy_.load() == 0; });
        std::exception_ptr error;
        {
            std::unique_lock<std::mutex> lock(mutex_);
            done_.wait(lock, [this] { return busy_.load() == 0; });
            task_ = nullptr;
            error = error_;
        }
#ifndef LOGITKIT_NO_EXCEPTIONS
        if (error) std::rethrow_exception(error);
#endif
    }

private:
    // Takes pieces until none is left; after an exception the remaining pieces are skipped.
    void drain() {
        for (;;) {
            const std::size_t i = next_.fetch_add(1);
            if (i >= count_) return;
#ifndef LOGITKIT_NO_EXCEPTIONS
            try {
                (*task_)(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(mutex_);
                if (!error_) error_ = std::current_exception();
                next_.store(count_);
            }
#else
            (*task_)(i);
#endif
        }
    }

    void work() {
        std::size_t seen = 0;
        for (;;) {
            poll([&] { return generation_.load() != seen; });
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
                if (stop_) return;
                seen = generation_.load();
            }
            drain();
            std::lock_guard<std::mutex> lock(mutex_);
            if (busy_.fetch_sub(1) == 1) done_.notify_one();
        }
    }

    /// Until ready() or spin_time has passed.
    template <class Ready>
    static void poll(Ready ready) {
        const auto start = std::chrono::steady_clock::now();
        while (!ready() && std::chrono::steady_clock::now() - start < spin_time) std::this_thread::yield();
    }
    static constexpr std::chrono::microseconds spin_time{200};

    std::vector<std::thread> workers_;
    std::mutex run_mutex_;
    std::mutex mutex_;
    std::condition_variable wake_, done_;
    const std::function<void(std::size_t)>* task_ = nullptr;
    std::size_t count_ = 0;
    std::atomic<std::size_t> next_{0};
    std::atomic<std::size_t> busy_{0};
    std::atomic<std::size_t> generation_{0};
    bool stop_ = false;
    std::exception_ptr error_;
};

}  // namespace logitkit
