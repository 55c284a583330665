// Failed sign-ins lock a name for a while, longer each time, and a success clears it.
#include "api/sign_in_guard.h"

#include <gtest/gtest.h>

namespace ticketd::api {
namespace {

using std::chrono::seconds;

TEST(SignInGuard, LocksAfterFreeFailuresThenDoublesUpToTheCap) {
  SignInGuard guard({3, seconds(30), seconds(100), 1000});
  const auto t0 = SignInGuard::Clock::now();
  guard.failed("li", t0);
  guard.failed("li", t0);
  EXPECT_EQ(guard.retry_after("li", t0), 0);
  guard.failed("li", t0);  // the third: locked
  EXPECT_EQ(guard.retry_after("li", t0), 30);
  EXPECT_EQ(guard.retry_after("li", t0 + seconds(29)), 1);
  EXPECT_EQ(guard.retry_after("li", t0 + seconds(30)), 0);
  EXPECT_EQ(guard.retry_after("zhang", t0), 0);  // other names go on

  const auto t1 = t0 + seconds(30);
  guard.failed("li", t1);
  EXPECT_EQ(guard.retry_after("li", t1), 60);
  guard.failed("li", t1 + seconds(60));
  EXPECT_EQ(guard.retry_after("li", t1 + seconds(60)), 100);  // 120, capped

  guard.succeeded("li");
  EXPECT_EQ(guard.retry_after("li", t1 + seconds(60)), 0);
  guard.failed("li", t1 + seconds(60));
  EXPECT_EQ(guard.retry_after("li", t1 + seconds(60)), 0);  // counting from zero again
}

// The per-address guard: failures spread over an hour never add up, a steady stream of them does.
TEST(SignInGuard, FailuresAreForgottenAfterAQuietSpell) {
  SignInGuardOptions options;
  options.free_failures = 3;
  options.forget_after = seconds(3600);
  SignInGuard guard(options);
  const auto t0 = SignInGuard::Clock::now();
  guard.failed("10.0.0.7", t0);
  guard.failed("10.0.0.7", t0 + seconds(1800));
  guard.failed("10.0.0.7", t0 + seconds(5400));  // an hour after the last: the first again
  EXPECT_EQ(guard.retry_after("10.0.0.7", t0 + seconds(5400)), 0);
  guard.failed("10.0.0.7", t0 + seconds(5401));
  guard.failed("10.0.0.7", t0 + seconds(5402));
  EXPECT_EQ(guard.retry_after("10.0.0.7", t0 + seconds(5402)), 30);
  // A lock's failures are not forgotten while it lasts, nor before the quiet hour after it.
  guard.failed("10.0.0.7", t0 + seconds(5432));
  EXPECT_EQ(guard.retry_after("10.0.0.7", t0 + seconds(5432)), 60);
}

TEST(SignInGuard, MemoryIsBounded) {
  SignInGuard guard({1, seconds(30), seconds(60), 10});
  const auto t0 = SignInGuard::Clock::now();
  for (int i = 0; i < 10; ++i) guard.failed("user" + std::to_string(i), t0);
  EXPECT_GT(guard.retry_after("user0", t0), 0);
  guard.failed("one-more", t0);  // forgets the rest
  EXPECT_EQ(guard.retry_after("user0", t0), 0);
  EXPECT_GT(guard.retry_after("one-more", t0), 0);
}

}  // namespace
}  // namespace ticketd::api
