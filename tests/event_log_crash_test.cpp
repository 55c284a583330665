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
#include "storage/snapshot_store.h"
#include "tests/snapshot_piece.h"
#include "tests/temp_dir.h"

namespace ticketd::storage {
namespace {

using ticketd::testing::TempDir;
using Clock = std::chrono::steady_clock;

// Runs the child on `path` (in `mode`, if any), kills it with SIGKILL once it has acknowledged
// `kill_after` things (or the deadline passes), and returns every line it acknowledged.
std::set<std::string> run_and_kill(const std::string& path, size_t kill_after,
                                   const char* mode = nullptr) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(LOG_CRASH_CHILD, LOG_CRASH_CHILD, path.c_str(), mode, static_cast<char*>(nullptr));
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

// A save acknowledged (finish() returned) is never lost, and a save cut off at any point leaves
// the previous one: after each kill the snapshot read back is exactly one save's pieces.
TEST(CrashTest, KillNineLeavesOneWholeSnapshot) {
  TempDir dir;
  const std::string path = dir / "log";
  uint64_t last_acked = 0;
  for (int round = 0; round < 5; ++round) {
    auto acked = run_and_kill(path, 2 + round, "snapshots");
    for (const auto& line : acked) last_acked = std::max<uint64_t>(last_acked, std::stoull(line));
    ASSERT_GT(last_acked, 0u) << "round " << round << ": the child finished no save";

    EventLogOptions options;
    options.path = path;
    std::unique_ptr<EventLog> log;
    ASSERT_TRUE(EventLog::Open(options, &log).ok());
    std::unique_ptr<SnapshotReader> reader;
    ASSERT_TRUE(log->open_snapshot("views", &reader).ok()) << "round " << round;
    uint64_t save = reader->position();  // the child saves save n at position n
    // The save after the last acknowledged one may have finished before the kill, unprinted.
    EXPECT_TRUE(save == last_acked || save == last_acked + 1)
        << "round " << round << ": snapshot of save " << save << ", last acknowledged "
        << last_acked;
    ASSERT_EQ(reader->pieces(), testing::snapshot_pieces(save));
    std::string_view piece;
    for (uint64_t i = 0; i < reader->pieces(); ++i) {
      ASSERT_TRUE(reader->next(&piece)) << reader->status().ToString();
      ASSERT_TRUE(piece == testing::snapshot_piece(save, i))
          << "round " << round << ": piece " << i << " of save " << save << " is not its own";
    }
    EXPECT_FALSE(reader->next(&piece));
    EXPECT_TRUE(reader->status().ok()) << reader->status().ToString();
    last_acked = save;  // the next round's saves are numbered on from here
  }
}

}  // namespace
}  // namespace ticketd::storage
