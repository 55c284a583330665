// The threads listings run on: in the order posted, off the caller's thread, a bounded queue,
// and every query taken answered before they go.
#include "api/query_threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

namespace ticketd::api {
namespace {

TEST(QueryThreads, RunQueriesInTheOrderPostedOffTheCallersThread) {
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread::id> ran_on;
  {
    QueryThreads queries({.threads = 1, .max_waiting = 64});
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(queries.post([&, i] {
        std::lock_guard lk(mu);
        order.push_back(i);
        ran_on.push_back(std::this_thread::get_id());
      }));
    }
  }  // answers what was posted, then joins
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  for (auto id : ran_on) EXPECT_NE(id, std::this_thread::get_id());
}

TEST(QueryThreads, RefuseQueriesBeyondThoseThatMayWaitAndAnswerEveryOneTaken) {
  std::atomic<bool> started{false}, release{false};
  std::atomic<int> answered{0};
  {
    QueryThreads queries({.threads = 1, .max_waiting = 3});
    ASSERT_TRUE(queries.post([&] {
      started = true;
      while (!release) std::this_thread::yield();
      ++answered;
    }));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!started && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    ASSERT_TRUE(started);  // running: no longer waiting
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(queries.post([&] { ++answered; }));
    EXPECT_FALSE(queries.post([&] { ++answered; }));  // a fourth would wait: refused, never run
    release = true;
  }
  EXPECT_EQ(answered, 4);
}

}  // namespace
}  // namespace ticketd::api
