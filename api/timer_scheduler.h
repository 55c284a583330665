#pragma once
// Fires due idle timers (API.md's "idle" rules). One thread sleeps until the earliest due time
// in the read model's schedule, or until the schedule moves; thousands of pending timers cost one
// sleeping thread, not a poll each. Firing is a FireTimer command whose events have ids derived
// from the timer, so a timer fires once even across crashes and restarts.
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "projections/read_model.h"

namespace ticketd::api {

class Api;

class TimerScheduler {
 public:
  TimerScheduler(Api& api, projections::ReadModel& model, std::function<int64_t()> now_us);
  ~TimerScheduler();
  void stop();

 private:
  void run();
  void wake();

  Api& api_;
  projections::ReadModel& model_;
  std::function<int64_t()> now_us_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::set<std::string> in_flight_;  // "ticket/rule/version@due" being fired now
  std::set<std::string> spent_;      // fired already: skipped if still listed as due
  std::thread thread_;
};

}  // namespace ticketd::api
