#include "api/printer.h"

#include <pthread.h>

namespace ticketd::api {

Printer::Printer(size_t max_queued) : max_queued_(max_queued) {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "printer");
    run();
  });
}

Printer::~Printer() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

bool Printer::submit(std::function<void()> job) {
  {
    std::lock_guard lk(mu_);
    if (jobs_.size() >= max_queued_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void Printer::run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return !jobs_.empty() || stopping_; });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace ticketd::api
