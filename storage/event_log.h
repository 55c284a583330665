#pragma once
// The event log: one ordered, durable, hash-chained sequence of immutable events over RocksDB.
//
// Appends go through a single writer thread (group commit): callers enqueue requests, the writer
// drains the queue, checks expected versions against the stream heads it keeps in memory, writes
// one WriteBatch with sync=true and only then completes the callers and wakes readers. Global
// positions are assigned by that writer at commit time, so position P+1 is never visible before P
// is durable.
//
// The synced batch holds only the events. The stream index, the event-id index and the stream
// heads are derived from them by a second thread and written without the WAL, each column family
// with a mark of how far it reaches; opening the log derives whatever a crash lost from the events
// after the lowest mark. Until the indexer catches up, the writer answers idempotency checks from
// the ids it committed recently and read_stream waits for it, so no caller ever sees the index
// behind the log.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "domain/event_id.h"
#include "domain/value.h"
#include "storage/recorded_event.h"
#include "storage/status.h"

namespace ticketd::storage {

struct EventLogOptions {
  // Directory of the RocksDB database; created when missing (unless read_only).
  std::string path;
  // Opens without the writer: appends fail, reads see the log as of opening. Several read-only
  // handles may coexist with one writing process (ticketctl verify on a live server).
  bool read_only = false;
  // Requests waiting for the writer beyond this are refused with Busy rather than queued without
  // bound.
  size_t max_queued_requests = 1 << 16;
  // At most this many requests go into one WriteBatch; more wait for the next sync.
  size_t max_batch_requests = 4096;
  // RocksDB block cache shared by all column families.
  size_t block_cache_bytes = 256 << 20;
  // Appends are refused (IOError "no space left…") while the file system holding the log has less
  // free space than this, and accepted again as soon as it has. RocksDB must never meet a full disk
  // in the middle of a WAL write (it cannot take writes on that WAL again without a restart), and
  // flushing the memtables needs room. Checked before every batch.
  uint64_t min_free_bytes = 256ull << 20;
  // Opens with RocksDB's background compactions paused until resume_compactions(): a server
  // restoring its read model at start-up has both cores busy, and the compaction its last
  // shutdown's flushes set off can wait the seconds until it serves.
  bool defer_compactions = false;
  // Writes each WAL file's space ahead of the log's records (storage/prefilled_wal.h), so that
  // the sync of a group commit overwrites written blocks instead of growing the file: about half
  // the time per sync on ext4. Off only to measure what it gives.
  bool prefill_wal = true;
  // With prefill_wal: writes the WAL's records with O_DIRECT | O_DSYNC, one durable write a
  // group commit instead of a write and an fdatasync that also flushes the fill's dirty pages.
  // Off only to measure what it gives.
  bool direct_wal = true;
};

// Which stream version an append expects to find.
struct ExpectedVersion {
  static constexpr int64_t kAny = -1;
  int64_t value = kAny;

  static ExpectedVersion Any() { return {kAny}; }
  static ExpectedVersion NoStream() { return {0}; }  // version 0: the stream has no events
  static ExpectedVersion Exact(uint64_t v) { return {static_cast<int64_t>(v)}; }
};

struct NewEvent {
  EventId id;
  // `id` was drawn at random for this append (a v4 UUID: 122 random bits) and is never appended
  // again, so the writer does not look it up among the stored ids (no stored event can have it)
  // nor adds it to their index, which then holds only the ids that can come again or be asked
  // for. Leave false for an id derived from something (an Idempotency-Key, a timer, an outcome).
  bool fresh_id = false;
  std::string type;
  std::string payload;  // JSON text; an append with a payload that is not is refused
  // `payload` was made by a writer that emits nothing but valid JSON (ticketd::Value::to_json:
  // malformed UTF-8 replaced, non-finite numbers written as null), so the log does not parse it
  // to check; a submission's four events took 3% of its instructions to check. Leave false for
  // bytes from anywhere else.
  bool payload_written_by_json_writer = false;
  // The value `payload` was written from, when parsing the payload gives back exactly it
  // (to_new_event sets it): kept with the committed batch in memory, it reaches this process's
  // live subscribers with the event (RecordedEvent::payload_value), which then need not parse the
  // payload. Null for none (a payload of null parses as null anyway). Whoever changes `payload`
  // after must reset it.
  Value payload_value;
  std::string actor;
  std::string correlation_id;
  std::string causation_id;
  uint32_t schema_version = 1;
  int64_t recorded_at_us = 0;  // 0: the writer stamps the commit time
};

struct AppendResult {
  Status status;
  // After success: the stream's version after the append. On conflict: the current version.
  uint64_t stream_version = 0;
  uint64_t first_position = 0;
  uint64_t last_position = 0;
  // Every event id was already stored: nothing was written, the positions are the originals.
  bool duplicate = false;
};

using AppendCallback = std::function<void(AppendResult)>;
// Returns false to stop reading.
using EventVisitor = std::function<bool(const RecordedEvent&)>;

class Subscription;
class SnapshotReader;
class SnapshotWriter;

class EventLog {
 public:
  static Status Open(const EventLogOptions& options, std::unique_ptr<EventLog>* out);
  ~EventLog();  // completes queued appends, stops subscriptions, closes the database

  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  // Appends events to one stream atomically; blocks until they are durable or refused. A request
  // whose expected version does not match fails alone: other requests in the same batch commit.
  AppendResult append(std::string_view stream, ExpectedVersion expected,
                      std::vector<NewEvent> events);
  // The same without blocking: `done` runs on the writer thread after the sync, so it must be quick
  // (post to an executor).
  void append_async(std::string_view stream, ExpectedVersion expected, std::vector<NewEvent> events,
                    AppendCallback done);

  // Events of one stream with version >= from_version, in order.
  Status read_stream(std::string_view stream, uint64_t from_version, size_t max_count,
                     const EventVisitor& visit) const;
  // The global log after position `after`, in order, up to the last durable position.
  Status read_all(uint64_t after, size_t max_count, const EventVisitor& visit) const;
  // One event by global position (NotFound past the end).
  Status read_at(uint64_t position, const EventVisitor& visit) const;
  // One event by its id, for ids derived from something (a timer's firing, a notification's
  // outcome): found without scanning their stream. NotFound when no stored event has it; an id
  // appended as fresh (NewEvent::fresh_id) is not indexed and not to be asked for.
  Status read_event(const EventId& id, const EventVisitor& visit) const;

  // The last durable global position (0 for an empty log).
  uint64_t last_position() const;
  // The stream's current version (0 when it has no events).
  uint64_t stream_head(std::string_view stream) const;
  // Blocks until last_position() >= position or the timeout passes; returns whether it got there.
  bool wait_for_position(uint64_t position, std::chrono::milliseconds timeout) const;

  // Delivers every event after `after` to `handler` on a thread of its own, in position order:
  // first what is stored, then live as events commit, with no gap and no duplicate between the two.
  // Up to date, it takes what commits from the last batches the log keeps in memory; a slow
  // handler delays only itself, reading storage until it catches up. `after_run`,
  // when given, is called on the same thread after each run of events read together (up to
  // 4,096: what committed since the last run), so a handler can collect a run and act on it once.
  std::unique_ptr<Subscription> subscribe(uint64_t after,
                                          std::function<void(const RecordedEvent&)> handler,
                                          std::function<void()> after_run = {});

  // A copy of the whole log in `dir` (which must not exist yet), taken while it runs: RocksDB's
  // checkpoint after a flush of the memtables, its table and blob files hard links where `dir` is
  // on the same file system and copies elsewhere. The copy opens as this log would after a crash
  // at that moment: every event acknowledged before the call is in it, and it can be the data
  // directory's `log` of another server or tool.
  Status backup(const std::string& dir) const;

  // Lets compactions run again after EventLogOptions::defer_compactions; otherwise a no-op.
  Status resume_compactions();

  // Projection checkpoints.
  Status save_checkpoint(std::string_view name, uint64_t position);
  Status load_checkpoint(std::string_view name, uint64_t* position) const;  // NotFound when none
  // Projection snapshots (storage/snapshot_store.h): written and read piece by piece.
  Status begin_snapshot(std::string_view name, std::unique_ptr<SnapshotWriter>* out);
  Status open_snapshot(std::string_view name, std::unique_ptr<SnapshotReader>* out) const;

  // Uploaded files, kept in their own column family (RocksDB blob files), synced before return.
  Status put_attachment(std::string_view id, std::string_view bytes);
  Status get_attachment(std::string_view id, std::string* bytes) const;

  struct Stats {
    uint64_t batches = 0;                // synced WriteBatches
    uint64_t events = 0;                 // events appended
    uint64_t requests = 0;               // append requests completed (any outcome)
    uint64_t sync_micros = 0;            // time spent in synced writes
    uint64_t queued = 0;                 // requests waiting for the writer now
    uint64_t delivered_from_memory = 0;  // events subscribers took from the last batches kept
  };
  Stats stats() const;

  // Walks the whole chain from position 1 (see VerifyReport).
  struct VerifyReport {
    bool ok = true;
    uint64_t events = 0;
    Hash head{};
    uint64_t bad_position = 0;  // first position where the chain breaks
    std::string problem;
  };
  VerifyReport verify() const;

 private:
  struct Impl;
  friend class Subscription;
  friend class SnapshotReader;
  friend class SnapshotWriter;
  explicit EventLog(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
};

class Subscription {
 public:
  ~Subscription();  // stops and joins
  void stop();
  // The last position delivered to the handler.
  uint64_t position() const { return position_.load(std::memory_order_acquire); }

 private:
  friend class EventLog;
  Subscription(const EventLog* log, uint64_t after,
               std::function<void(const RecordedEvent&)> handler, std::function<void()> after_run);
  void run();

  const EventLog* log_;
  std::function<void(const RecordedEvent&)> handler_;
  std::function<void()> after_run_;
  std::atomic<uint64_t> position_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace ticketd::storage
