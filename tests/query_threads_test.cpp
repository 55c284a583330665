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
    QueryThreads queries({.threads = 1, .max_waiting = 64, .max_waiting_per_caller = 64});
    for (int i = 0; i < 20; ++i) {
      ASSERT_EQ(queries.post("zhang",
                             [&, i] {
                               std::lock_guard lk(mu);
                               order.push_back(i);
                               ran_on.push_back(std::this_thread::get_id());
                             }),
                QueryThreads::Posted::kYes);
    }
  }  // answers what was posted, then joins
  ASSERT_EQ(order.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(order[static_cast<size_t>(i)], i);
  for (auto id : ran_on) EXPECT_NE(id, std::this_thread::get_id());
}

TEST(QueryThreads, RefuseQueriesBeyondThoseThatMayWaitAndAnswerEveryOneTaken) {
  using Posted = QueryThreads::Posted;
  std::atomic<bool> started{false}, release{false};
  std::atomic<int> answered{0};
  {
    QueryThreads queries({.threads = 1, .max_waiting = 5, .max_waiting_per_caller = 2});
    ASSERT_EQ(queries.post("zhang",
                           [&] {
                             started = true;
                             while (!release) std::this_thread::yield();
                             ++answered;
                           }),
              Posted::kYes);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!started && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    ASSERT_TRUE(started);  // running: no longer waiting
    auto count = [&] { ++answered; };
    EXPECT_EQ(queries.post("zhang", count), Posted::kYes);
    EXPECT_EQ(queries.post("zhang", count), Posted::kYes);
    EXPECT_EQ(queries.post("zhang", count), Posted::kCallerBusy);  // two of zhang's wait
    EXPECT_EQ(queries.post("li", count), Posted::kYes);            // others still get turns
    EXPECT_EQ(queries.post("wang", count), Posted::kYes);
    EXPECT_EQ(queries.post("wang", count), Posted::kYes);
    EXPECT_EQ(queries.post("zhao", count), Posted::kBusy);  // five wait in all
    release = true;
  }
  EXPECT_EQ(answered, 6);  // each taken, none refused
}

TEST(QueryThreads, ACallersTurnsComeBackAsTheirQueriesStart) {
  std::atomic<int> answered{0};
  QueryThreads queries({.threads = 1, .max_waiting = 64, .max_waiting_per_caller = 1});
  for (int i = 0; i < 50; ++i) {
    // One waiting at most: each post waits for the one before to start.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (queries.post("zhang", [&] { ++answered; }) != QueryThreads::Posted::kYes) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline);
      std::this_thread::yield();
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (answered < 50 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(answered, 50);
}

}  // namespace
}  // namespace ticketd::api
