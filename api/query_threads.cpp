#include "api/query_threads.h"

#include <mutex>
#include <utility>

namespace ticketd::api {

QueryThreads::QueryThreads(QueryThreadsOptions options) : options_(options) {
  threads_.start(options_.threads, "query", [this](bool) {
    std::unique_lock lk(threads_.mu);
    for (;;) {
      threads_.cv.wait(lk, [&] { return threads_.stopping || !waiting_.empty(); });
      if (waiting_.empty()) return;  // stopping, and nothing is left to answer
      std::function<void()> query = std::move(waiting_.front().query);
      if (auto it = waiting_of_.find(waiting_.front().caller); --it->second == 0)
        waiting_of_.erase(it);
      waiting_.pop_front();
      lk.unlock();
      query();
      lk.lock();
    }
  });
}

QueryThreads::~QueryThreads() { threads_.stop(); }

QueryThreads::Posted QueryThreads::post(const std::string& caller, std::function<void()> query) {
  {
    std::lock_guard lk(threads_.mu);
    if (threads_.stopping || waiting_.size() >= options_.max_waiting) return Posted::kBusy;
    size_t& of_caller = waiting_of_[caller];
    if (of_caller >= options_.max_waiting_per_caller) return Posted::kCallerBusy;
    ++of_caller;
    waiting_.push_back({caller, std::move(query)});
  }
  threads_.cv.notify_one();
  return Posted::kYes;
}

}  // namespace ticketd::api
