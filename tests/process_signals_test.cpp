// The process's signals (server/process_signals.h): taken on their own thread whatever thread is
// running, handed to the handler of the moment, never given their default action but by a stop
// before any handler, which ends the process as that signal.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <future>
#include <thread>

#include "server/process_signals.h"

namespace ticketd::server {
namespace {

constexpr auto kDeadline = std::chrono::seconds(20);

// Whether `signal` is pending for the process, and takes it if so (a test leaves none behind).
bool take_pending(int signal) {
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, signal);
  const timespec none{0, 0};
  return sigtimedwait(&one, nullptr, &none) == signal;
}

TEST(ProcessSignals, AHangupIsTakenOnTheSignalsThreadWhileOtherThreadsRun) {
  ProcessSignals signals;
  std::promise<std::thread::id> taken_on;
  signals.on_hangup([&](int signal) {
    EXPECT_EQ(signal, SIGHUP);
    taken_on.set_value(std::this_thread::get_id());
  });
  // Started after the signals were blocked, as every thread of the server is: it does not take
  // the signal (it would end the process), it only runs meanwhile.
  std::promise<void> stop_running;
  std::thread other([done = stop_running.get_future()] { done.wait(); });
  ASSERT_EQ(kill(getpid(), SIGHUP), 0);
  auto taken = taken_on.get_future();
  ASSERT_EQ(taken.wait_for(kDeadline), std::future_status::ready);
  const std::thread::id by = taken.get();
  EXPECT_NE(by, std::this_thread::get_id());
  EXPECT_NE(by, other.get_id());
  stop_running.set_value();
  other.join();
}

TEST(ProcessSignals, StopsGoToTheHandlerOfTheMomentAndAHangupWithoutOneDoesNothing) {
  ProcessSignals signals;
  std::promise<int> first, second;
  signals.on_stop([&](int signal) { first.set_value(signal); });
  ASSERT_EQ(kill(getpid(), SIGTERM), 0);
  auto got_first = first.get_future();
  ASSERT_EQ(got_first.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(got_first.get(), SIGTERM);

  signals.on_stop([&](int signal) { second.set_value(signal); });
  // No hangup handler: the SIGHUP is taken and dropped, and the process goes on to the SIGINT.
  ASSERT_EQ(kill(getpid(), SIGHUP), 0);
  ASSERT_EQ(kill(getpid(), SIGINT), 0);
  auto got_second = second.get_future();
  ASSERT_EQ(got_second.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(got_second.get(), SIGINT);
}

TEST(ProcessSignals, AfterItsEndASignalWaitsUnseenInsteadOfEndingTheProcess) {
  { ProcessSignals signals; }
  ASSERT_EQ(kill(getpid(), SIGHUP), 0);
  // Process-directed and blocked in the only thread: pending, not acted on.
  EXPECT_TRUE(take_pending(SIGHUP));
}

TEST(ProcessSignals, AWriteToAPipeNobodyReadsFailsInsteadOfEndingTheProcess) {
  ProcessSignals signals;
  int ends[2];
  ASSERT_EQ(pipe(ends), 0);
  close(ends[0]);
  errno = 0;
  EXPECT_EQ(write(ends[1], "x", 1), -1);
  EXPECT_EQ(errno, EPIPE);
  close(ends[1]);
}

TEST(ProcessSignalsDeathTest, AStopBeforeAnyHandlerEndsTheProcessAsThatSignal) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        dup2(STDERR_FILENO, STDOUT_FILENO);  // the warning, on the default logger's stdout
        ProcessSignals signals;
        kill(getpid(), SIGTERM);
        // Bounds a failure only: the signals' thread ends the process long before.
        std::this_thread::sleep_for(std::chrono::seconds(60));
        std::_Exit(0);
      },
      testing::KilledBySignal(SIGTERM), "signal 15 before the server was ready");
}

}  // namespace
}  // namespace ticketd::server
