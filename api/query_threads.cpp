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
      std::function<void()> query = std::move(waiting_.front());
      waiting_.pop_front();
      lk.unlock();
      query();
      lk.lock();
    }
  });
}

QueryThreads::~QueryThreads() { threads_.stop(); }

bool QueryThreads::post(std::function<void()> query) {
  {
    std::lock_guard lk(threads_.mu);
    if (threads_.stopping || waiting_.size() >= options_.max_waiting) return false;
    waiting_.push_back(std::move(query));
  }
  threads_.cv.notify_one();
  return true;
}

}  // namespace ticketd::api
