// Snapshots in pieces: read back as written, replaced atomically, left whole by an abandoned or
// failed save, and damage reported rather than misread.
#include "storage/snapshot_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "open_log.h"
#include "raw_db.h"
#include "temp_dir.h"

namespace ticketd::storage {
namespace {

using testing::open_log;
using testing::RawDb;
using testing::TempDir;

Status save(EventLog& log, const std::string& name, uint64_t position,
            const std::vector<std::string>& pieces) {
  std::unique_ptr<SnapshotWriter> w;
  if (auto s = log.begin_snapshot(name, &w); !s.ok()) return s;
  for (const auto& p : pieces) {
    if (auto s = w->add(p); !s.ok()) return s;
  }
  return w->finish(position);
}

// The pieces of the named snapshot, its position in *position; fails the test on any error.
std::vector<std::string> load(const EventLog& log, const std::string& name, uint64_t* position) {
  std::unique_ptr<SnapshotReader> r;
  Status s = log.open_snapshot(name, &r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return {};
  *position = r->position();
  std::vector<std::string> pieces;
  std::string_view piece;
  while (r->next(&piece)) pieces.emplace_back(piece);
  EXPECT_TRUE(r->status().ok()) << r->status().ToString();
  EXPECT_EQ(pieces.size(), r->pieces());
  return pieces;
}

TEST(SnapshotStore, PiecesComeBackAsWritten) {
  TempDir dir;
  auto log = open_log(dir / "log");
  std::unique_ptr<SnapshotReader> none;
  EXPECT_EQ(log->open_snapshot("views", &none).code(), Status::Code::kNotFound);

  std::vector<std::string> pieces = {"{\"format\":6}", std::string("\0snap\xff", 6), "",
                                     std::string(3 << 20, 'x')};
  ASSERT_TRUE(save(*log, "views", 40, pieces).ok());
  uint64_t position = 0;
  EXPECT_EQ(load(*log, "views", &position), pieces);
  EXPECT_EQ(position, 40u);

  log.reset();  // and after a reopen
  log = open_log(dir / "log");
  EXPECT_EQ(load(*log, "views", &position), pieces);
  EXPECT_EQ(position, 40u);
}

TEST(SnapshotStore, ASaveReplacesThePreviousOneWhole) {
  TempDir dir;
  auto log = open_log(dir / "log");
  ASSERT_TRUE(save(*log, "views", 10, {"a", "b", "c", "d"}).ok());
  ASSERT_TRUE(save(*log, "other", 5, {"o"}).ok());
  ASSERT_TRUE(save(*log, "views", 20, {"e", "f"}).ok());
  uint64_t position = 0;
  EXPECT_EQ(load(*log, "views", &position), (std::vector<std::string>{"e", "f"}));
  EXPECT_EQ(position, 20u);
  EXPECT_EQ(load(*log, "other", &position), (std::vector<std::string>{"o"}));
  EXPECT_EQ(position, 5u);
}

TEST(SnapshotStore, AReaderKeepsItsSnapshotWhileASaveReplacesIt) {
  TempDir dir;
  auto log = open_log(dir / "log");
  ASSERT_TRUE(save(*log, "views", 10, {"a", "b", "c"}).ok());
  std::unique_ptr<SnapshotReader> r;
  ASSERT_TRUE(log->open_snapshot("views", &r).ok());
  std::string_view piece;
  ASSERT_TRUE(r->next(&piece));
  EXPECT_EQ(piece, "a");
  ASSERT_TRUE(save(*log, "views", 20, {"x"}).ok());  // drops generation 1's pieces
  ASSERT_TRUE(r->next(&piece));
  EXPECT_EQ(piece, "b");
  ASSERT_TRUE(r->next(&piece));
  EXPECT_EQ(piece, "c");
  EXPECT_FALSE(r->next(&piece));
  EXPECT_TRUE(r->status().ok()) << r->status().ToString();
  uint64_t position = 0;
  EXPECT_EQ(load(*log, "views", &position), (std::vector<std::string>{"x"}));
  EXPECT_EQ(position, 20u);
}

TEST(SnapshotStore, AnAbandonedSaveLeavesThePreviousSnapshot) {
  TempDir dir;
  auto log = open_log(dir / "log");
  ASSERT_TRUE(save(*log, "views", 10, {"a", "b"}).ok());
  {
    std::unique_ptr<SnapshotWriter> w;
    ASSERT_TRUE(log->begin_snapshot("views", &w).ok());
    ASSERT_TRUE(w->add("half").ok());
    ASSERT_TRUE(w->add("done").ok());
    ASSERT_TRUE(w->add("more").ok());
  }  // never finished
  uint64_t position = 0;
  EXPECT_EQ(load(*log, "views", &position), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(position, 10u);
  // The next save reuses the abandoned generation; its leftovers must not show.
  ASSERT_TRUE(save(*log, "views", 30, {"z"}).ok());
  EXPECT_EQ(load(*log, "views", &position), (std::vector<std::string>{"z"}));
  EXPECT_EQ(position, 30u);

  std::unique_ptr<SnapshotWriter> w;
  ASSERT_TRUE(log->begin_snapshot("views", &w).ok());
  ASSERT_TRUE(w->finish(31).ok());
  EXPECT_EQ(w->add("late").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(w->finish(32).code(), Status::Code::kInvalidArgument);
}

TEST(SnapshotStore, BadNamesAndReadOnlyHandlesAreRefused) {
  TempDir dir;
  {
    auto log = open_log(dir / "log");
    std::unique_ptr<SnapshotWriter> w;
    EXPECT_EQ(log->begin_snapshot("", &w).code(), Status::Code::kInvalidArgument);
    EXPECT_EQ(log->begin_snapshot(std::string("a\0b", 3), &w).code(),
              Status::Code::kInvalidArgument);
    ASSERT_TRUE(save(*log, "views", 7, {"p"}).ok());
  }
  auto ro = open_log(dir / "log", /*read_only=*/true);
  std::unique_ptr<SnapshotWriter> w;
  EXPECT_EQ(ro->begin_snapshot("views", &w).code(), Status::Code::kInvalidArgument);
  uint64_t position = 0;
  EXPECT_EQ(load(*ro, "views", &position), (std::vector<std::string>{"p"}));
}

TEST(SnapshotStore, AMissingPieceIsCorruptionNamingIt) {
  TempDir dir;
  {
    auto log = open_log(dir / "log");
    ASSERT_TRUE(save(*log, "views", 10, {"a", "b", "c"}).ok());
  }
  {
    RawDb raw(dir / "log");
    ASSERT_TRUE(raw.db()
                    .Delete(rocksdb::WriteOptions(), raw.cf(layout::kSnapshots),
                            layout::snapshot_piece_key("views", 1, 1))
                    .ok());
  }
  auto log = open_log(dir / "log");
  std::unique_ptr<SnapshotReader> r;
  ASSERT_TRUE(log->open_snapshot("views", &r).ok());
  std::string_view piece;
  ASSERT_TRUE(r->next(&piece));
  EXPECT_EQ(piece, "a");
  EXPECT_FALSE(r->next(&piece));
  EXPECT_EQ(r->status().code(), Status::Code::kCorruption);
  EXPECT_NE(r->status().message().find("piece 2 of 3"), std::string::npos)
      << r->status().ToString();
  EXPECT_FALSE(r->next(&piece));
}

TEST(SnapshotStore, ASnapshotSavedWholeBeforePiecesReadsAsOnePiece) {
  TempDir dir;
  open_log(dir / "log");  // creates the column families
  {
    RawDb raw(dir / "log");
    std::string v = layout::position_key(99) + "{\"format\":4}\n{}";
    ASSERT_TRUE(raw.db().Put(rocksdb::WriteOptions(), raw.cf(layout::kSnapshots), "views", v).ok());
  }
  auto log = open_log(dir / "log");
  uint64_t position = 0;
  EXPECT_EQ(load(*log, "views", &position), (std::vector<std::string>{"{\"format\":4}\n{}"}));
  EXPECT_EQ(position, 99u);
}

}  // namespace
}  // namespace ticketd::storage
