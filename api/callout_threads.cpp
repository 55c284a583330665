#include "api/callout_threads.h"

#include <pthread.h>

#include <algorithm>

namespace ticketd::api {

void CalloutThreads::start(int count, const char* name,
                           const std::function<void(bool first)>& run) {
  for (int i = 0; i < std::max(1, count); ++i) {
    threads_.emplace_back([name, run, i] {
      pthread_setname_np(pthread_self(), name);
      run(i == 0);
    });
  }
}

bool CalloutThreads::stop() {
  {
    std::lock_guard lk(mu);
    if (stopping) return false;
    stopping = true;
  }
  cancel.store(true);
  cv.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return owed == 0; });
  return true;
}

}  // namespace ticketd::api
