#include "core/threadpool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace kq {
namespace {

class Pool {
public:
    ~Pool() {
        {
            std::lock_guard<std::mutex> lk(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        for (auto& t : workers_) t.join();
    }

    // Runs job(i, nth) for i in [0, nth); index 0 on the calling thread.
    void run(int nth, const std::function<void(int, int)>& job) {
        std::lock_guard<std::mutex> serial(run_mu_);  // one job at a time
        ensure_workers(nth - 1);
        {
            std::lock_guard<std::mutex> lk(mu_);
            job_ = &job;
            nth_ = nth;
            pending_ = nth - 1;
            ++generation_;
        }
        cv_.notify_all();
        std::exception_ptr err;
        try {
            job(0, nth);
        } catch (...) {
            err = std::current_exception();
        }
        std::unique_lock<std::mutex> lk(mu_);
        done_cv_.wait(lk, [&] { return pending_ == 0; });
        job_ = nullptr;
        if (!err) err = worker_err_;
        worker_err_ = nullptr;
        lk.unlock();
        if (err) std::rethrow_exception(err);
    }

private:
    void ensure_workers(int n) {
        while (static_cast<int>(workers_.size()) < n) {
            const int idx = static_cast<int>(workers_.size()) + 1;
            workers_.emplace_back([this, idx] { loop(idx); });
        }
    }

    void loop(int idx) {
        uint64_t seen = 0;
        std::unique_lock<std::mutex> lk(mu_);
        for (;;) {
            cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
            if (stop_) return;
            seen = generation_;
            if (idx >= nth_) continue;  // not part of this job
            const auto* job = job_;
            const int nth = nth_;
            lk.unlock();
            std::exception_ptr err;
            try {
                (*job)(idx, nth);
            } catch (...) {
                err = std::current_exception();
            }
            lk.lock();
            if (err && !worker_err_) worker_err_ = err;
            if (--pending_ == 0) done_cv_.notify_one();
        }
    }

    std::mutex run_mu_;
    std::mutex mu_;
    std::condition_variable cv_, done_cv_;
    std::vector<std::thread> workers_;
    const std::function<void(int, int)>* job_ = nullptr;
    int nth_ = 0;
    int pending_ = 0;
    uint64_t generation_ = 0;
    bool stop_ = false;
    std::exception_ptr worker_err_;
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
