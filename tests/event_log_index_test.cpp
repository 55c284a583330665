// The stream, id and head indexes are derived from the events and written after them without the
// WAL, so a crash may lose the newest part of each, each to its own point. Opening the log must
// derive that part again, and every read and idempotency check must behave as if nothing had been
// lost.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string_view>

#include "storage/event_log.h"
#include "storage/layout.h"
#include "tests/open_log.h"
#include "tests/raw_db.h"
#include "tests/temp_dir.h"

namespace ticketd::storage {
namespace {

using ticketd::testing::open_log;
using ticketd::testing::RawDb;
using ticketd::testing::TempDir;

struct Written {
  EventId id;
  std::string stream;
  uint64_t version;
  uint64_t position;
};

NewEvent fields_changed(EventId id, std::string payload = "{}") {
  NewEvent e;
  e.id = id;
  e.type = "FieldsChanged";
  e.payload = std::move(payload);
  return e;
}

std::vector<Written> write_log(const std::string& path, int events) {
  auto log = open_log(path);
  std::mt19937_64 rng(11);
  std::vector<Written> written;
  for (int i = 0; i < events; ++i) {
    NewEvent e =
        fields_changed(EventId::random_v4(rng(), rng()), R"({"i":)" + std::to_string(i) + "}");
    std::string stream = "ticket-" + std::to_string(i % 7);
    AppendResult r = log->append(stream, ExpectedVersion::Any(), {e});
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    written.push_back({e.id, stream, r.stream_version, r.last_position});
  }
  return written;
}

// How far each of the index's column families kept its writes through a crash.
struct Kept {
  uint64_t heads, streams, ids;
};

// Leaves the indexes as a crash would that lost each column family's writes after its own point
// (the indexer writes them without the WAL, and RocksDB flushes each on its own).
void lose_index_after(const std::string& path, const std::vector<Written>& written, Kept kept) {
  RawDb raw(path);
  rocksdb::WriteBatch wb;
  std::map<std::string, uint64_t> heads;
  for (const Written& w : written) {
    if (w.position <= kept.heads) {
      heads[w.stream] = w.version;
    } else if (!heads.count(w.stream)) {
      wb.Delete(raw.cf(layout::kStreamHeads), w.stream);
    }
    if (w.position > kept.streams) {
      wb.Delete(raw.cf(layout::kStreams), layout::stream_key(w.stream, w.version));
    }
    if (w.position > kept.ids) {
      wb.Delete(raw.cf(layout::kIds),
                rocksdb::Slice(reinterpret_cast<const char*>(w.id.bytes.data()), 16));
    }
  }
  for (const auto& [stream, version] : heads) {
    wb.Put(raw.cf(layout::kStreamHeads), stream, layout::position_key(version));
  }
  wb.Put(raw.cf(layout::kStreamHeads), layout::kIndexedThroughKey,
         layout::position_key(kept.heads));
  wb.Put(raw.cf(layout::kStreams), layout::kIndexedThroughKey, layout::position_key(kept.streams));
  wb.Put(raw.cf(layout::kIds), layout::kIdsIndexedThroughKey, layout::position_key(kept.ids));
  ASSERT_TRUE(raw.db().Write(rocksdb::WriteOptions(), &wb).ok());
}

void lose_index_after(const std::string& path, const std::vector<Written>& written,
                      uint64_t through) {
  lose_index_after(path, written, Kept{through, through, through});
}

std::optional<uint64_t> mark_in(const std::string& path, const char* column_family,
                                std::string_view key) {
  RawDb raw(path);
  std::string v;
  if (!raw.db().Get(rocksdb::ReadOptions(), raw.cf(column_family), key, &v).ok()) {
    return std::nullopt;
  }
  return layout::get_be64(v);
}

uint64_t indexed_through(const std::string& path) {
  std::optional<uint64_t> heads = mark_in(path, layout::kStreamHeads, layout::kIndexedThroughKey);
  EXPECT_EQ(mark_in(path, layout::kStreams, layout::kIndexedThroughKey), heads);
  EXPECT_EQ(mark_in(path, layout::kIds, layout::kIdsIndexedThroughKey), heads);
  return heads.value_or(0);
}

// Ids on both sides of where the index stopped are known: repeats are answered with the
// original positions and nothing is written.
void expect_ids_known(EventLog& log, const std::vector<Written>& written) {
  const uint64_t last = log.last_position();
  for (size_t at = 0; at < written.size(); at += 13) {
    const Written& w = written[at];
    AppendResult r = log.append(w.stream, ExpectedVersion::Any(), {fields_changed(w.id)});
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_TRUE(r.duplicate) << "event " << at;
    EXPECT_EQ(r.first_position, w.position);
    EXPECT_EQ(r.stream_version, w.version);
  }
  EXPECT_EQ(log.last_position(), last);
}

// Every stream reads back whole and in order, also from the middle and in pieces that straddle
// the point where the index stopped.
void expect_streams_whole(const EventLog& log, const std::vector<Written>& written) {
  std::map<std::string, std::vector<const Written*>> by_stream;
  for (const Written& w : written) by_stream[w.stream].push_back(&w);
  for (const auto& [stream, events] : by_stream) {
    EXPECT_EQ(log.stream_head(stream), events.size()) << stream;
    for (uint64_t from : {uint64_t{1}, uint64_t{events.size() / 2}, uint64_t{events.size()}}) {
      std::vector<uint64_t> positions;
      ASSERT_TRUE(log.read_stream(stream, from, 1000,
                                  [&](const RecordedEvent& e) {
                                    positions.push_back(e.position());
                                    return true;
                                  })
                      .ok());
      ASSERT_EQ(positions.size(), events.size() - from + 1) << stream << " from " << from;
      for (size_t i = 0; i < positions.size(); ++i) {
        EXPECT_EQ(positions[i], events[from - 1 + i]->position);
      }
    }
    std::vector<uint64_t> versions;
    ASSERT_TRUE(log.read_stream(stream, 3, 5,
                                [&](const RecordedEvent& e) {
                                  versions.push_back(e.version());
                                  return true;
                                })
                    .ok());
    EXPECT_EQ(versions, (std::vector<uint64_t>{3, 4, 5, 6, 7})) << stream;
  }
}

// Every event is found by its id, on both sides of where the index stopped; an id never stored
// is not.
void expect_ids_found(const EventLog& log, const std::vector<Written>& written) {
  for (const Written& w : written) {
    uint64_t position = 0;
    std::string stream;
    Status s = log.read_event(w.id, [&](const RecordedEvent& e) {
      position = e.position();
      stream = std::string(e.stream());
      return true;
    });
    ASSERT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(position, w.position);
    EXPECT_EQ(stream, w.stream);
  }
  EXPECT_EQ(
      log.read_event(EventId::random_v4(7, 7), [](const RecordedEvent&) { return true; }).code(),
      Status::Code::kNotFound);
}

TEST(DerivedIndex, ReadOnlyHandleDerivesTheLostTail) {
  TempDir dir;
  auto written = write_log(dir / "log", 210);
  lose_index_after(dir / "log", written, 120);
  auto log = open_log(dir / "log", /*read_only=*/true);
  expect_streams_whole(*log, written);
  expect_ids_found(*log, written);
  auto report = log->verify();
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, 210u);
  log.reset();
  EXPECT_EQ(indexed_through(dir / "log"), 120u);  // a read-only handle writes nothing
}

TEST(DerivedIndex, WritingHandleIndexesTheLostTailAgainAndStaysIdempotent) {
  TempDir dir;
  auto written = write_log(dir / "log", 210);
  lose_index_after(dir / "log", written, 120);
  auto log = open_log(dir / "log");
  expect_streams_whole(*log, written);
  expect_ids_found(*log, written);
  expect_ids_known(*log, written);

  // Expected versions are checked against the derived heads.
  NewEvent next = fields_changed(EventId::random_v4(1, 2));
  EXPECT_EQ(log->append("ticket-3", ExpectedVersion::NoStream(), {next}).status.code(),
            Status::Code::kConflict);
  AppendResult r = log->append("ticket-3", ExpectedVersion::Exact(30), {next});
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.stream_version, 31u);
  EXPECT_EQ(r.last_position, 211u);
  written.push_back({next.id, "ticket-3", 31, 211});
  auto report = log->verify();
  EXPECT_TRUE(report.ok) << report.problem;
  log.reset();

  EXPECT_EQ(indexed_through(dir / "log"), 211u);
  expect_streams_whole(*open_log(dir / "log", true), written);
}

TEST(DerivedIndex, EveryAppendIsReadableFromItsStreamAndByItsIdAtOnce) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::mt19937_64 rng(5);
  for (int i = 1; i <= 300; ++i) {
    NewEvent e;
    e.id = EventId::random_v4(rng(), rng());
    e.type = "Noted";
    e.payload = "{}";
    std::string stream = "s-" + std::to_string(i % 3);
    AppendResult r = log->append(stream, ExpectedVersion::Any(), {e});
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(log->stream_head(stream), r.stream_version);
    uint64_t last_seen = 0;
    ASSERT_TRUE(log->read_stream(stream, r.stream_version, 10,
                                 [&](const RecordedEvent& got) {
                                   last_seen = got.position();
                                   return true;
                                 })
                    .ok());
    ASSERT_EQ(last_seen, r.last_position) << "append " << i;
    uint64_t found = 0;
    ASSERT_TRUE(log->read_event(e.id,
                                [&](const RecordedEvent& got) {
                                  found = got.position();
                                  return true;
                                })
                    .ok());
    ASSERT_EQ(found, r.last_position) << "append " << i;
  }
}

// Each of the index's column families flushes on its own, so a crash leaves each at its own
// point; whichever order they stand in, the open derives from the lowest and every mark ends at
// the log's end.
TEST(DerivedIndex, ColumnFamiliesLostToDifferentPointsAreDerivedFromTheLowest) {
  const Kept orders[] = {{90, 150, 180}, {90, 180, 150}, {150, 90, 180},
                         {180, 90, 150}, {150, 180, 90}, {180, 150, 90}};
  for (const Kept& kept : orders) {
    SCOPED_TRACE(::testing::Message()
                 << "heads " << kept.heads << ", streams " << kept.streams << ", ids " << kept.ids);
    TempDir dir;
    auto written = write_log(dir / "log", 210);
    lose_index_after(dir / "log", written, kept);
    auto log = open_log(dir / "log");
    expect_streams_whole(*log, written);
    expect_ids_known(*log, written);
    NewEvent next = fields_changed(EventId::random_v4(3, 4));
    AppendResult r = log->append("ticket-5", ExpectedVersion::Exact(30), {next});
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(r.last_position, 211u);
    auto report = log->verify();
    EXPECT_TRUE(report.ok) << report.problem;
    log.reset();
    EXPECT_EQ(indexed_through(dir / "log"), 211u);
  }
}

// A log written while the index still went through the WAL has the stream_heads mark only, and
// its column families are as complete as that mark says: the first open marks all three.
TEST(DerivedIndex, LogWithTheHeadsMarkOnlyIsMarkedEverywhereOnOpen) {
  TempDir dir;
  auto written = write_log(dir / "log", 210);
  lose_index_after(dir / "log", written, 120);
  {
    RawDb raw(dir / "log");
    rocksdb::WriteBatch wb;
    wb.Delete(raw.cf(layout::kStreams), layout::kIndexedThroughKey);
    wb.Delete(raw.cf(layout::kIds), layout::kIdsIndexedThroughKey);
    ASSERT_TRUE(raw.db().Write(rocksdb::WriteOptions(), &wb).ok());
  }
  {
    auto log = open_log(dir / "log", /*read_only=*/true);
    expect_streams_whole(*log, written);
  }
  EXPECT_EQ(mark_in(dir / "log", layout::kIds, layout::kIdsIndexedThroughKey), std::nullopt);
  auto log = open_log(dir / "log");
  expect_streams_whole(*log, written);
  expect_ids_known(*log, written);
  log.reset();
  EXPECT_EQ(indexed_through(dir / "log"), 210u);
}

// A log written before the indexes were derived has no mark; its indexes are complete.
TEST(DerivedIndex, LogWithoutAMarkIsTakenAsFullyIndexed) {
  TempDir dir;
  auto written = write_log(dir / "log", 70);
  {
    RawDb raw(dir / "log");
    rocksdb::WriteBatch wb;
    wb.Delete(raw.cf(layout::kStreamHeads), layout::kIndexedThroughKey);
    wb.Delete(raw.cf(layout::kStreams), layout::kIndexedThroughKey);
    wb.Delete(raw.cf(layout::kIds), layout::kIdsIndexedThroughKey);
    ASSERT_TRUE(raw.db().Write(rocksdb::WriteOptions(), &wb).ok());
  }
  expect_streams_whole(*open_log(dir / "log"), written);
  EXPECT_EQ(indexed_through(dir / "log"), 70u);
}

}  // namespace
}  // namespace ticketd::storage
