// kill -9 in the middle of a concurrent append load loses no acknowledged event and leaves a chain
// that verifies. The child prints each id only after its append was acknowledged.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <set>
#include <string>

#include "storage/event_log.h"
#include "tests/temp_dir.h"

namespace ticketd::storage {
namespace {

using ticketd::testing::TempDir;
using Clock = std::chrono::steady_clock;

// Runs the child on `path`, kills it with SIGKILL once it has acknowledged `kill_after` events (or
// the deadline passes), and returns every id it acknowledged.
std::set<std::string> run_and_kill(const std::string& path, size_t kill_after) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(LOG_CRASH_CHILD, LOG_CRASH_CHILD, path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::set<std::string> acked;
  std::string buffer;
  char chunk[4096];
  bool killed = false;
  auto deadline = Clock::now() + std::chrono::seconds(60);
  for (;;) {
    ssize_t n = read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;  // EOF once the child is dead and the pipe drained
    buffer.append(chunk, n);
    size_t nl;
    while ((nl = buffer.find('\n')) != std::string::npos) {
      acked.insert(buffer.substr(0, nl));
      buffer.erase(0, nl + 1);
    }
    if (!killed && (acked.size() >= kill_after || Clock::now() > deadline)) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exited " << status;
  return acked;
}

TEST(CrashTest, KillNineLosesNoAcknowledgedEvent) {
  TempDir dir;
  const std::string path = dir / "log";
  std::set<std::string> all_acked;
  uint64_t last_position = 0;
  for (int round = 0; round < 4; ++round) {
    auto acked = run_and_kill(path, 1500 + 700 * round);
    ASSERT_GT(acked.size(), 0u) << "round " << round << ": the child acknowledged nothing";
    all_acked.insert(acked.begin(), acked.end());

    EventLogOptions options;
    options.path = path;
    std::unique_ptr<EventLog> log;
    ASSERT_TRUE(EventLog::Open(options, &log).ok());
    std::set<std::string> stored;
    ASSERT_TRUE(log->read_all(0, SIZE_MAX,
                              [&](const RecordedEvent& e) {
                                stored.insert(e.id().to_string());
                                return true;
                              })
                    .ok());
    for (const auto& id : all_acked) {
      ASSERT_TRUE(stored.count(id)) << "round " << round << ": acknowledged " << id << " lost";
    }
    auto report = log->verify();
    ASSERT_TRUE(report.ok) << "round " << round << ": " << report.problem;
    EXPECT_GE(log->last_position(), last_position);
    last_position = log->last_position();
  }
}

}  // namespace
}  // namespace ticketd::storage
