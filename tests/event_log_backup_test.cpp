// A copy of the log taken while it is written: every event acknowledged before the copy is in
// it, the chain verifies, uploads come along, and the live log goes on as before.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <thread>
#include <vector>

#include "storage/event_log.h"
#include "tests/open_log.h"
#include "tests/temp_dir.h"
#include "tests/wal_files.h"

namespace ticketd::storage {
namespace {

using ticketd::testing::open_log;
using ticketd::testing::TempDir;

NewEvent event(std::mt19937_64& rng) {
  NewEvent e;
  e.id = EventId::random_v4(rng(), rng());
  e.type = "TicketSubmitted";
  e.payload = R"({"客户名称":"华东"})";
  e.actor = "li";
  return e;
}

TEST(EventLogBackup, ACopyTakenUnderLoadHoldsEveryAcknowledgedEvent) {
  TempDir dir;
  auto log = open_log(dir / "log");
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->put_attachment("A-1", std::string(300000, 'p')).ok());

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> acknowledged{0};
  std::thread writer([&] {
    std::mt19937_64 rng(7);
    for (int i = 0; !stop.load(); ++i) {
      auto r = log->append("s-" + std::to_string(i % 50), ExpectedVersion::Any(), {event(rng)});
      ASSERT_TRUE(r.status.ok()) << r.status.ToString();
      acknowledged.store(r.last_position);
    }
  });
  while (acknowledged.load() < 2000) std::this_thread::yield();
  const uint64_t before = acknowledged.load();
  const std::string copy = dir / "backup/log";
  std::filesystem::create_directories(dir / "backup");
  Status s = log->backup(copy);
  const uint64_t after = acknowledged.load();
  stop = true;
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();

  // A second copy into the same place is refused, not merged.
  EXPECT_FALSE(log->backup(copy).ok());

  auto restored = open_log(copy, /*read_only=*/true);
  ASSERT_TRUE(restored);
  EXPECT_GE(restored->last_position(), before);
  EXPECT_LE(restored->last_position(), log->last_position());
  EventLog::VerifyReport report = restored->verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, restored->last_position());
  std::string bytes;
  ASSERT_TRUE(restored->get_attachment("A-1", &bytes).ok());
  EXPECT_EQ(bytes, std::string(300000, 'p'));
  EXPECT_GT(after, before);  // the writer went on during the copy

  // The live log still fills its WAL ahead: the copy's WAL files did not end that.
  std::mt19937_64 rng(9);
  ASSERT_TRUE(log->append("s-x", ExpectedVersion::Any(), {event(rng)}).status.ok());
  // (The fill thread's first step may still be on its way on a busy machine.)
  auto newest_wal_size = [&] {
    auto wals = ticketd::testing::wal_files(dir / "log");
    return wals.empty() ? uintmax_t{0} : std::filesystem::file_size(wals.back());
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (newest_wal_size() <= 100000u && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(newest_wal_size(), 100000u) << "the live WAL lost its fill";
}

// The checkpoint's flush starts a WAL that holds nothing but fill, and RocksDB then reads the
// first record of every WAL: the newest must read as empty, not as a corrupt record.
TEST(EventLogBackup, AnIdleLogIsBackedUp) {
  TempDir dir;
  auto log = open_log(dir / "log");
  ASSERT_TRUE(log);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(log->append("s", ExpectedVersion::Any(), {event(rng)}).status.ok());
  }
  for (const char* name : {"first", "second"}) {  // the second starts from a fill-only WAL
    Status s = log->backup(dir / name);
    ASSERT_TRUE(s.ok()) << name << ": " << s.ToString();
    auto copy = open_log(dir / name, /*read_only=*/true);
    ASSERT_TRUE(copy);
    EXPECT_EQ(copy->last_position(), 10u);
    EXPECT_TRUE(copy->verify().ok);
  }
}

}  // namespace
}  // namespace ticketd::storage
