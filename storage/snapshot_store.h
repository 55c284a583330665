#pragma once
// Projection snapshots in the event log's database: a projection's state at a log position, as a
// sequence of pieces of any size. Pieces are written as they are made and read back one at a
// time, so a snapshot as large as a million-ticket read model is never held whole in memory, and
// its reader can start working on the first piece while the rest are still on disk.
//
// A save writes its pieces under a new generation and finishes with a manifest naming that
// generation, so it replaces the previous snapshot atomically: a crash or an abandoned writer
// leaves the previous snapshot whole. Snapshots bypass the WAL (each finish flushes), because a
// lost snapshot only means a longer replay; the position a snapshot holds is durable already,
// as projections only ever apply durable events.
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "storage/event_log.h"

namespace ticketd::storage {

class SnapshotWriter {
 public:
  ~SnapshotWriter();  // unfinished: abandoned, the previous snapshot stays

  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Appends a piece. The reader gets the same pieces, in order, with the same bytes.
  Status add(std::string_view piece);
  // Makes the pieces added so far the snapshot at `position`, durably. Nothing may follow.
  Status finish(uint64_t position);

 private:
  friend class EventLog;
  SnapshotWriter(EventLog::Impl* log, std::string name, uint64_t generation,
                 std::unique_lock<std::mutex> lock);

  EventLog::Impl* log_;
  std::string name_;
  uint64_t generation_;
  uint64_t pieces_ = 0;
  uint64_t unflushed_bytes_ = 0;
  bool finished_ = false;
  std::unique_lock<std::mutex> lock_;  // one save at a time per log
};

class SnapshotReader {
 public:
  ~SnapshotReader();

  SnapshotReader(const SnapshotReader&) = delete;
  SnapshotReader& operator=(const SnapshotReader&) = delete;

  uint64_t position() const { return position_; }
  uint64_t pieces() const { return pieces_; }
  uint64_t bytes_read() const { return bytes_read_; }

  // The next piece, valid until the following call; false at the end or on an error (status()).
  // May be called from any one thread at a time.
  bool next(std::string_view* piece);
  Status status() const { return status_; }

 private:
  friend class EventLog;
  struct Rocks;
  SnapshotReader();

  uint64_t position_ = 0;
  uint64_t generation_ = 0;
  uint64_t pieces_ = 0;
  uint64_t index_ = 0;
  uint64_t bytes_read_ = 0;
  std::string name_;
  std::string legacy_;  // a snapshot saved whole, before pieces: its one piece
  Status status_;
  std::unique_ptr<Rocks> rocks_;
};

}  // namespace ticketd::storage
