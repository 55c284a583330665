// verify() must catch every kind of tampering with stored events and name where it happened.
#include <gtest/gtest.h>

#include <random>

#include "storage/event_log.h"
#include "storage/layout.h"
#include "tests/raw_db.h"
#include "tests/temp_dir.h"

namespace ticketd::storage {
namespace {

using ticketd::testing::RawDb;
using ticketd::testing::TempDir;

void write_log(const std::string& path, int events) {
  EventLogOptions options;
  options.path = path;
  std::unique_ptr<EventLog> log;
  ASSERT_TRUE(EventLog::Open(options, &log).ok());
  std::mt19937_64 rng(7);
  for (int i = 0; i < events; ++i) {
    NewEvent e;
    e.id = EventId::random_v4(rng(), rng());
    e.type = "FieldsChanged";
    e.payload = R"({"问题类型":"功能故障","i":)" + std::to_string(i) + "}";
    ASSERT_TRUE(
        log->append("ticket-" + std::to_string(i % 4), ExpectedVersion::Any(), {e}).status.ok());
  }
}

EventLog::VerifyReport verify(const std::string& path) {
  EventLogOptions options;
  options.path = path;
  options.read_only = true;
  std::unique_ptr<EventLog> log;
  EXPECT_TRUE(EventLog::Open(options, &log).ok());
  return log->verify();
}

TEST(Verify, IntactLogVerifies) {
  TempDir dir;
  write_log(dir / "log", 20);
  auto report = verify(dir / "log");
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, 20u);
}

TEST(Verify, DetectsAChangedValue) {
  TempDir dir;
  write_log(dir / "log", 20);
  {
    RawDb raw(dir / "log");
    std::string v = raw.get(7);
    auto at = v.find("功能故障");
    ASSERT_NE(at, std::string::npos);
    v.replace(at, std::string("功能故障").size(), "安装指导");  // same length, still valid
    raw.put(7, v);
  }
  auto report = verify(dir / "log");
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_position, 7u);
  EXPECT_NE(report.problem.find("changed"), std::string::npos) << report.problem;
}

TEST(Verify, DetectsARemovedEvent) {
  TempDir dir;
  write_log(dir / "log", 20);
  RawDb(dir / "log").remove(12);
  auto report = verify(dir / "log");
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_position, 12u);
  EXPECT_NE(report.problem.find("missing"), std::string::npos) << report.problem;
}

TEST(Verify, DetectsARemovedLastEvent) {
  TempDir dir;
  write_log(dir / "log", 20);
  RawDb(dir / "log").remove(20);
  auto report = verify(dir / "log");
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_position, 20u);
}

TEST(Verify, DetectsTwoSwappedEvents) {
  TempDir dir;
  write_log(dir / "log", 20);
  {
    RawDb raw(dir / "log");
    std::string a = raw.get(5), b = raw.get(6);
    raw.put(5, b);
    raw.put(6, a);
  }
  auto report = verify(dir / "log");
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_position, 5u);
}

TEST(Verify, DetectsGarbageBytes) {
  TempDir dir;
  write_log(dir / "log", 5);
  RawDb(dir / "log").put(3, "not an envelope");
  auto report = verify(dir / "log");
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_position, 3u);
}

}  // namespace
}  // namespace ticketd::storage
