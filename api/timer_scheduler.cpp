#include "api/timer_scheduler.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include "api/api.h"

namespace ticketd::api {

TimerScheduler::TimerScheduler(Api& api, projections::ReadModel& model,
                               std::function<int64_t()> now_us)
    : api_(api), model_(model), now_us_(std::move(now_us)) {
  model_.on_schedule_change([this] { wake(); });
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "timers");
    run();
  });
}

TimerScheduler::~TimerScheduler() { stop(); }

void TimerScheduler::stop() {
  model_.on_schedule_change(nullptr);
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void TimerScheduler::wake() {
  {
    std::lock_guard lk(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void TimerScheduler::run() {
  constexpr auto kLongestSleep = std::chrono::seconds(30);  // a safety net, not a poll per timer
  std::unique_lock lk(mu_);
  while (!stopping_) {
    int64_t now = now_us_();
    bool all_due_in_flight = true;
    for (const auto& t : model_.due_timers(now, 256)) {
      std::string key = t.ticket + "/" + t.timer + "/" + std::to_string(t.entered_version) + "@" +
                        std::to_string(t.due_at);
      if (spent_.count(key) || !in_flight_.insert(key).second) continue;
      all_due_in_flight = false;
      lk.unlock();
      spdlog::info("timer due: ticket={} timer={} due_at={}", t.ticket, t.timer, t.due_at);
      api_.fire_timer(t.ticket, t.timer, t.entered_version, [this, key](bool refused) {
        {
          std::lock_guard g(mu_);
          in_flight_.erase(key);
          // A timer that fired and is still scheduled at the same time did nothing (decide found
          // it not due); it is not fired again until its ticket reschedules it. A refused one
          // (the log full, say) is tried again.
          if (!refused) {
            if (spent_.size() >= 4096) spent_.clear();
            spent_.insert(key);
          }
        }
        wake();
      });
      lk.lock();
    }
    woken_ = false;
    int64_t next = model_.next_due();
    auto deadline = std::chrono::steady_clock::now() + kLongestSleep;
    if (next != INT64_MAX && !(next <= now && all_due_in_flight)) {
      auto until_due = std::chrono::microseconds(std::max<int64_t>(0, next - now_us_()));
      deadline = std::min(deadline, std::chrono::steady_clock::now() + until_due);
    }
    cv_.wait_until(lk, deadline, [&] { return stopping_ || woken_; });
  }
}

}  // namespace ticketd::api
