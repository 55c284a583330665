#include "tools/load/thread_cpu.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace ticketd::tools {
namespace {

TEST(ThreadCpu, AStatLineGivesTheNameToItsLastParenthesisAndUserPlusSystemTicks) {
  // The kernel's format: a name is whatever the thread set, spaces and parentheses included.
  const char* line =
      "4242 (http io (2)) S 1 4242 4242 0 -1 4194368 1375 0 0 0 731 269 0 0 20 0 9 0 "
      "1803 1048576000 4096 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  std::string name;
  uint64_t ticks = 0;
  ASSERT_TRUE(parse_task_stat(line, &name, &ticks));
  EXPECT_EQ(name, "http io (2)");
  EXPECT_EQ(ticks, 731u + 269u);
}

TEST(ThreadCpu, ATruncatedOrMangledLineIsNotRead) {
  std::string name = "kept";
  uint64_t ticks = 7;
  EXPECT_FALSE(parse_task_stat("", &name, &ticks));
  EXPECT_FALSE(parse_task_stat("4242 (log-writer S 1 4242", &name, &ticks));
  EXPECT_FALSE(
      parse_task_stat("4242 (log-writer) S 1 4242 4242 0 -1 4194368 1375 0 0 0", &name, &ticks));
  EXPECT_FALSE(parse_task_stat(
      "4242 (log-writer) S 1 4242 4242 0 -1 4194368 1375 0 0 0 7x1 269 0 0 20", &name, &ticks));
  EXPECT_EQ(name, "kept");
  EXPECT_EQ(ticks, 7u);
}

TEST(ThreadCpu, ANamedThreadThatSpinsShowsItsTimeUnderItsName) {
  std::atomic<bool> stop{false};
  std::thread spinner([&] {
    pthread_setname_np(pthread_self(), "cpu-spinner");
    while (!stop.load(std::memory_order_relaxed)) {
    }
  });
  std::map<std::string, double> seconds;
  std::string error;
  // Polled with a deadline: the spinner's ticks show once the kernel has charged a few.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < give_up) {
    ASSERT_TRUE(thread_cpu_seconds(getpid(), &seconds, &error)) << error;
    seen = seconds.count("cpu-spinner") && seconds["cpu-spinner"] >= 0.05;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop = true;
  spinner.join();
  EXPECT_TRUE(seen);
  EXPECT_TRUE(seconds.count("tools_tests"));  // the main thread, by the program's name
}

TEST(ThreadCpu, AProcessThatIsNotThereIsAnError) {
  std::map<std::string, double> seconds;
  std::string error;
  EXPECT_FALSE(thread_cpu_seconds(999999999, &seconds, &error));
  EXPECT_NE(error.find("/proc/999999999/task"), std::string::npos) << error;
}

}  // namespace
}  // namespace ticketd::tools
