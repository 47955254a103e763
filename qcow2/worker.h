// One background thread that runs posted tasks in order, started on first
// use. The engine keeps slow host work off the I/O paths with it: punching
// freed clusters (ImageImpl), starting write-back (PosixFile).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace zqfs::qcow2 {

class Worker {
public:
    Worker() = default;
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;
    ~Worker() { stop(); }

    // After stop(), runs the task on the caller's thread instead.
    void post(std::function<void()> task) {
        {
            std::lock_guard lk(mu_);
            if (!stopped_) {
                queue_.push_back(std::move(task));
                if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
                cv_.notify_all();
                return;
            }
        }
        task();
    }

    // Returns once every task posted before the call has finished.
    void drain() {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return queue_.empty() && !busy_; });
    }

    // Runs what is still queued, then ends the thread. Idempotent.
    void stop() {
        {
            std::lock_guard lk(mu_);
            stopped_ = true;
            cv_.notify_all();
        }
        if (thread_.joinable()) thread_.join();
    }

private:
    void loop() {
        std::unique_lock lk(mu_);
        for (;;) {
            cv_.wait(lk, [&] { return stopped_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, nothing left
            auto task = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
            lk.unlock();
            task();
            lk.lock();
            busy_ = false;
            cv_.notify_all();
        }
    }

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool busy_ = false;
    bool stopped_ = false;
    std::thread thread_;
};

}  // namespace zqfs::qcow2
