// Old events stay readable forever (DESIGN.md): logs that earlier builds wrote, kept as fixtures
// (tests/fixtures/stored_events_*.jsonl, as `ticketctl dump` printed them; made by
// tests/blackbox/make_stored_events.py), are appended again through today's log and read by today's
// projections. Their hash chain must come out the same, byte for byte, and their views as the
// fixture's .views file says. A deliberate change of what views hold or how dump() prints them
// rewrites the .views files with TICKETD_UPDATE_FIXTURES=1, to be reviewed in the diff like code.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "domain/event_id.h"
#include "domain/time_format.h"
#include "domain/value.h"
#include "projections/read_model.h"
#include "projections/snapshots.h"
#include "storage/hash_chain.h"
#include "tests/open_log.h"
#include "tests/temp_dir.h"

namespace ticketd {
namespace {

using testing::open_log;
using testing::TempDir;

const std::filesystem::path kFixtures =
    std::filesystem::path(TICKETD_SOURCE_DIR) / "tests/fixtures";

std::string read_text(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The payload in a line `ticketctl dump` wrote, exactly as stored (the hash covers its bytes): the
// "data" member's text, which the "prev_hash" member follows.
std::string raw_data(const std::string& line) {
  size_t begin = line.find(",\"data\":");
  size_t end = line.rfind(",\"prev_hash\":");
  if (begin == std::string::npos || end == std::string::npos || end < begin) return "";
  begin += 8;
  return line.substr(begin, end - begin);
}

class StoredEvents : public ::testing::TestWithParam<std::string> {};

TEST_P(StoredEvents, AppendAgainWithTheSameChainAndReadToTheSameViews) {
  const std::filesystem::path events_file = kFixtures / (GetParam() + ".jsonl");
  const std::filesystem::path views_file = kFixtures / (GetParam() + ".views");
  std::ifstream in(events_file);
  ASSERT_TRUE(in) << "cannot read " << events_file;
  TempDir dir;
  auto log = open_log(dir / "log");
  std::vector<std::string> hashes;
  size_t lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    Value e;
    std::string error;
    ASSERT_TRUE(parse_json(line, &e, &error)) << "line " << lines + 1 << ": " << error;
    auto id = EventId::parse(e.string_or("id"));
    auto time = parse_rfc3339(e.string_or("time"));
    ASSERT_TRUE(id && time) << "line " << lines + 1;
    storage::NewEvent event;
    event.id = *id;
    event.type = e.string_or("type");
    event.payload = raw_data(line);
    event.actor = e.string_or("actor");
    event.correlation_id = e.string_or("correlation_id");
    event.causation_id = e.string_or("causation_id");
    event.schema_version = static_cast<uint32_t>(e["schema_version"].as_number());
    event.recorded_at_us = *time;
    const auto version = static_cast<uint64_t>(e["version"].as_number());
    storage::AppendResult r = log->append(
        e.string_or("stream"), storage::ExpectedVersion::Exact(version - 1), {std::move(event)});
    ASSERT_TRUE(r.status.ok()) << "line " << lines + 1 << ": " << r.status.ToString();
    ASSERT_EQ(r.last_position, static_cast<uint64_t>(e["position"].as_number()));
    hashes.push_back(e.string_or("hash"));
  }
  ASSERT_GT(lines, 0u);

  // The chain: each event's hash as the earlier build computed it.
  size_t at = 0;
  ASSERT_TRUE(log->read_all(0, SIZE_MAX,
                            [&](const storage::RecordedEvent& e) {
                              EXPECT_EQ(storage::to_hex(e.hash()), hashes[at])
                                  << "position " << e.position();
                              ++at;
                              return true;
                            })
                  .ok());
  EXPECT_EQ(at, hashes.size());

  // The views, from a replay by today's projections.
  projections::ReadModel model;
  ASSERT_TRUE(projections::replay(*log, model, 0).ok());
  const std::string views = model.dump();
  if (const char* update = std::getenv("TICKETD_UPDATE_FIXTURES"); update && *update == '1') {
    std::ofstream(views_file, std::ios::binary) << views;
  }
  const std::string expected = read_text(views_file);
  ASSERT_FALSE(expected.empty()) << "no " << views_file
                                 << " (TICKETD_UPDATE_FIXTURES=1 writes it from this build)";
  EXPECT_TRUE(views == expected) << "the views of " << events_file << " differ from " << views_file
                                 << "; if that is meant, TICKETD_UPDATE_FIXTURES=1 rewrites it";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, StoredEvents, ::testing::Values("stored_events_2026_11"));

}  // namespace
}  // namespace ticketd
