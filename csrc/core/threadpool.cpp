#include "core/threadpool.h"

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#include <immintrin.h>  // _mm_pause (SSE2: baseline x86-64)
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace kq {
namespace {

// A spin-wait hint to the core (x86 PAUSE / ARM YIELD): the sibling
// hyper-thread gets the pipeline, and the loop does not flood the memory
// system with loads.
#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
inline void cpu_relax() { _mm_pause(); }
#elif defined(__aarch64__) || defined(__arm__)
inline void cpu_relax() { asm volatile("yield"); }
#else
inline void cpu_relax() {}
#endif

// How long a worker keeps polling for the next job, and the caller for the
// workers to finish, before sleeping on a condition variable. Decoding one
// token runs ~10 small jobs per layer back to back, 10-100 us apart; a
// futex wake-up costs 5-50 us each, so polling across that gap is what
// makes a second thread pay off for them. After the budget the thread
// sleeps and a long idle pool costs no CPU.
constexpr auto kSpinBudget = std::chrono::microseconds(200);
// Clock reads are ~20 ns: check it every so many relax hints (~2-5 us).
constexpr int kSpinCheckEvery = 64;

template <class Pred>
bool spin_until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + kSpinBudget;
    for (;;) {
        for (int i = 0; i < kSpinCheckEvery; ++i) {
            if (done()) return true;
            cpu_relax();
        }
        if (std::chrono::steady_clock::now() > deadline) return done();
    }
}

// Job hand-off. ticket_ packs the job's generation (high 48 bits) with its
// thread count (low 16 bits), so a worker reads both in one atomic load: a
// worker outside the current job never reads a later job's thread count
// with an earlier generation. job_ is written before ticket_ (release) and
// read after it (acquire); it stays valid until every participant has
// decremented pending_.
constexpr int kNthBits = 16;
constexpr uint64_t kNthMask = (uint64_t{1} << kNthBits) - 1;

class Pool {
public:
    ~Pool() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_.store(true);
        }
        cv_.notify_all();
        for (auto& t : workers_) t.join();
    }

    // Runs job(i, nth) for i in [0, nth); index 0 on the calling thread.
    void run(int nth, const std::function<void(int, int)>& job) {
        std::lock_guard<std::mutex> serial(run_mu_);  // one job at a time
        nth = static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(nth), kNthMask));
        ensure_workers(nth - 1);
        job_ = &job;
        pending_.store(nth - 1, std::memory_order_relaxed);
        {
            // Under the mutex: a worker about to sleep either sees the new
            // ticket in its wait predicate or is already waiting and woken.
            std::lock_guard<std::mutex> lk(mu_);
            const uint64_t gen = (ticket_.load(std::memory_order_relaxed) >> kNthBits) + 1;
            ticket_.store((gen << kNthBits) | static_cast<uint64_t>(nth), std::memory_order_release);
            if (sleepers_ > 0) cv_.notify_all();
        }
        std::exception_ptr err;
        try {
            job(0, nth);
        } catch (...) {
            err = std::current_exception();
        }
        auto finished = [&] { return pending_.load(std::memory_order_acquire) == 0; };
        if (!spin_until(finished)) {
            std::unique_lock<std::mutex> lk(mu_);
            done_cv_.wait(lk, finished);
        }
        job_ = nullptr;
        std::lock_guard<std::mutex> lk(mu_);
        if (!err) err = worker_err_;
        worker_err_ = nullptr;
        if (err) std::rethrow_exception(err);
    }

private:
    void ensure_workers(int n) {
        while (static_cast<int>(workers_.size()) < n) {
            const int idx = static_cast<int>(workers_.size()) + 1;
            // The generation before the job being started: read here, not
            // in the new thread, which may first run after the job's ticket.
            const uint64_t seen = ticket_.load(std::memory_order_relaxed) >> kNthBits;
            workers_.emplace_back([this, idx, seen] { loop(idx, seen); });
        }
    }

    void loop(int idx, uint64_t seen) {
        for (;;) {
            uint64_t t = 0;
            auto next = [&] {
                t = ticket_.load(std::memory_order_acquire);
                return (t >> kNthBits) != seen || stop_.load(std::memory_order_relaxed);
            };
            if (!spin_until(next)) {
                std::unique_lock<std::mutex> lk(mu_);
                ++sleepers_;
                cv_.wait(lk, next);
                --sleepers_;
            }
            if (stop_.load()) return;
            seen = t >> kNthBits;
            const int nth = static_cast<int>(t & kNthMask);
            if (idx >= nth) continue;  // not part of this job
            std::exception_ptr err;
            try {
                (*job_)(idx, nth);
            } catch (...) {
                err = std::current_exception();
            }
            if (err) {
                std::lock_guard<std::mutex> lk(mu_);
                if (!worker_err_) worker_err_ = err;
            }
            if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                // Lock before notifying: the caller checks pending_ under the
                // mutex before it sleeps, so the wake-up cannot be lost.
                std::lock_guard<std::mutex> lk(mu_);
                done_cv_.notify_one();
            }
        }
    }

    std::mutex run_mu_;
    std::mutex mu_;
    std::condition_variable cv_, done_cv_;
    std::vector<std::thread> workers_;
    const std::function<void(int, int)>* job_ = nullptr;
    std::atomic<uint64_t> ticket_{0};
    std::atomic<int> pending_{0};
    std::atomic<bool> stop_{false};
    int sleepers_ = 0;  // guarded by mu_
    std::exception_ptr worker_err_;  // guarded by mu_
};

Pool& pool() {
    static Pool* p = new Pool();  // leaked on purpose: no join at interpreter exit
    return *p;
}

thread_local bool t_in_pool = false;

}  // namespace

int default_threads() {
    if (const char* env = std::getenv("KQUANTS_THREADS")) {
        const int v = std::atoi(env);
        if (v > 0) return v;
    }
    const unsigned hc = std::thread::hardware_concurrency();
    return hc ? static_cast<int>(hc) : 1;
}

int resolve_threads(int threads) { return threads > 0 ? threads : default_threads(); }

void parallel_run(int n_threads, const std::function<void(int, int)>& fn) {
    n_threads = std::max(1, n_threads);
    if (n_threads == 1 || t_in_pool) {
        for (int i = 0; i < n_threads; ++i) fn(i, n_threads);
        return;
    }
    pool().run(n_threads, [&](int ith, int nth) {
        t_in_pool = true;
        struct Reset { ~Reset() { t_in_pool = false; } } reset;
        fn(ith, nth);
    });
}

void parallel_for(int64_t n, int64_t grain, int threads,
                  const std::function<void(int64_t, int64_t)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    const int64_t chunks = (n + grain - 1) / grain;
    const int nth = static_cast<int>(std::min<int64_t>(resolve_threads(threads), chunks));
    if (nth <= 1 || t_in_pool) {
        fn(0, n);
        return;
    }
    std::atomic<int64_t> next{0};
    parallel_run(nth, [&](int, int) {
        for (;;) {
            const int64_t c = next.fetch_add(1, std::memory_order_relaxed);
            if (c >= chunks) break;
            const int64_t b = c * grain;
            fn(b, std::min(n, b + grain));
        }
    });
}

}  // namespace kq
