#include "storage/snapshot_store.h"

#include <rocksdb/db.h>

#include "storage/event_log_impl.h"
#include "storage/layout.h"

namespace ticketd::storage {
namespace {

struct Manifest {
  uint64_t position = 0;
  uint64_t generation = 0;
  uint64_t pieces = 0;
};

bool parse_manifest(std::string_view v, Manifest* out) {
  if (v.size() != layout::kSnapshotManifestMagic.size() + 24 ||
      v.substr(0, layout::kSnapshotManifestMagic.size()) != layout::kSnapshotManifestMagic) {
    return false;
  }
  v.remove_prefix(layout::kSnapshotManifestMagic.size());
  out->position = layout::get_be64(v.substr(0, 8));
  out->generation = layout::get_be64(v.substr(8, 8));
  out->pieces = layout::get_be64(v.substr(16, 8));
  return true;
}

rocksdb::WriteOptions unlogged() {
  rocksdb::WriteOptions wo;
  wo.disableWAL = true;
  return wo;
}

// A save flushes its pieces itself every this many bytes, well under the column family's write
// buffer (64 MB), and waits for each flush. Left to RocksDB, a gigabyte written faster than it
// flushes piles up immutable memtables, and at two RocksDB stops every write to the database,
// appends included, until the flushes catch up.
constexpr uint64_t kFlushEveryBytes = 32 << 20;

Status flush(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* snapshots) {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  return from_rocks(db.Flush(fo, snapshots), "flush snapshot");
}

}  // namespace

Status EventLog::begin_snapshot(std::string_view name, std::unique_ptr<SnapshotWriter>* out) {
  if (impl_->options.read_only) return Status::InvalidArgument("the log was opened read-only");
  if (name.empty() || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("a snapshot name is not empty and holds no NUL byte");
  }
  std::unique_lock lock(impl_->snapshot_mu);
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->snapshots, name, &v);
  if (!s.ok() && !s.IsNotFound()) return from_rocks(s, "read snapshot manifest");
  Manifest previous;
  uint64_t generation = s.ok() && parse_manifest(v, &previous) ? previous.generation + 1 : 1;
  out->reset(new SnapshotWriter(impl_.get(), std::string(name), generation, std::move(lock)));
  return Status::Ok();
}

SnapshotWriter::SnapshotWriter(EventLog::Impl* log, std::string name, uint64_t generation,
                               std::unique_lock<std::mutex> lock)
    : log_(log), name_(std::move(name)), generation_(generation), lock_(std::move(lock)) {}

SnapshotWriter::~SnapshotWriter() = default;

Status SnapshotWriter::add(std::string_view piece) {
  if (finished_) return Status::InvalidArgument("the snapshot is finished");
  if (auto s = log_->db->Put(unlogged(), log_->snapshots,
                             layout::snapshot_piece_key(name_, generation_, pieces_++), piece);
      !s.ok()) {
    return from_rocks(s, "write snapshot piece");
  }
  unflushed_bytes_ += piece.size();
  if (unflushed_bytes_ < kFlushEveryBytes) return Status::Ok();
  unflushed_bytes_ = 0;
  return flush(*log_->db, log_->snapshots);
}

Status SnapshotWriter::finish(uint64_t position) {
  if (finished_) return Status::InvalidArgument("the snapshot is finished");
  finished_ = true;
  std::string manifest(layout::kSnapshotManifestMagic);
  layout::put_be64(manifest, position);
  layout::put_be64(manifest, generation_);
  layout::put_be64(manifest, pieces_);
  if (auto s = log_->db->Put(unlogged(), log_->snapshots, name_, manifest); !s.ok()) {
    return from_rocks(s, "write snapshot manifest");
  }
  // The manifest is flushed with (or after) every piece it names: a column family's memtables
  // reach disk in order, so no crash can leave it pointing at pieces that are not there.
  if (Status s = flush(*log_->db, log_->snapshots); !s.ok()) return s;
  // Older generations' pieces (and any an abandoned save left) are garbage now. A delete lost
  // in a crash is repeated by the next save.
  rocksdb::WriteBatch garbage;
  garbage.DeleteRange(log_->snapshots, layout::snapshot_piece_key(name_, 0, 0),
                      layout::snapshot_piece_key(name_, generation_, 0));
  garbage.DeleteRange(log_->snapshots, layout::snapshot_piece_key(name_, generation_, pieces_),
                      layout::id_upper_bound(name_));
  return from_rocks(log_->db->Write(unlogged(), &garbage), "drop old snapshot pieces");
}

struct SnapshotReader::Rocks {
  explicit Rocks(rocksdb::DB* db) : view(db) {}
  // The manifest and the pieces are read as of one moment, so a save finishing meanwhile (and
  // dropping the pieces this reader is after) cannot pull them away.
  rocksdb::ManagedSnapshot view;
  std::unique_ptr<rocksdb::Iterator> it;
  std::string upper_bound;
  rocksdb::Slice upper;
};

SnapshotReader::SnapshotReader() = default;
SnapshotReader::~SnapshotReader() = default;

Status EventLog::open_snapshot(std::string_view name, std::unique_ptr<SnapshotReader>* out) const {
  auto rocks = std::make_unique<SnapshotReader::Rocks>(impl_->db.get());
  rocksdb::ReadOptions at_view;
  at_view.snapshot = rocks->view.snapshot();
  std::string v;
  rocksdb::Status s = impl_->db->Get(at_view, impl_->snapshots, name, &v);
  if (!s.ok()) return from_rocks(s, "read snapshot manifest");
  std::unique_ptr<SnapshotReader> r(new SnapshotReader());
  r->name_ = std::string(name);
  Manifest m;
  if (parse_manifest(v, &m)) {
    r->position_ = m.position;
    r->generation_ = m.generation;
    r->pieces_ = m.pieces;
    r->rocks_ = std::move(rocks);
    r->rocks_->upper_bound = layout::snapshot_piece_key(name, m.generation, m.pieces);
    r->rocks_->upper = r->rocks_->upper_bound;
    rocksdb::ReadOptions ro = at_view;
    ro.fill_cache = false;  // read once, at start-up: keep the cache for the log
    ro.iterate_upper_bound = &r->rocks_->upper;
    r->rocks_->it.reset(impl_->db->NewIterator(ro, impl_->snapshots));
    r->rocks_->it->Seek(layout::snapshot_piece_key(name, m.generation, 0));
  } else {
    if (v.size() < 8) return Status::Corruption("snapshot " + std::string(name) + " is truncated");
    r->position_ = layout::get_be64(v);
    r->legacy_ = v.substr(8);
    r->pieces_ = 1;
  }
  *out = std::move(r);
  return Status::Ok();
}

bool SnapshotReader::next(std::string_view* piece) {
  if (!status_.ok() || index_ == pieces_) return false;
  if (!rocks_) {
    *piece = legacy_;
  } else {
    rocksdb::Iterator& it = *rocks_->it;
    if (index_ > 0) it.Next();
    if (!it.Valid() || it.key() != layout::snapshot_piece_key(name_, generation_, index_)) {
      status_ = it.status().ok() ? Status::Corruption("snapshot " + name_ + " lacks piece " +
                                                      std::to_string(index_ + 1) + " of " +
                                                      std::to_string(pieces_))
                                 : from_rocks(it.status(), "read snapshot piece");
      return false;
    }
    *piece = it.value().ToStringView();
  }
  ++index_;
  bytes_read_ += piece->size();
  return true;
}

}  // namespace ticketd::storage
