#pragma once
// EventLog's insides, shared by its translation units: event_log.cpp (opening, appending, reading,
// subscriptions) and event_log_index.cpp (the derived stream, id and head indexes). Not for use
// outside storage/.
#include <absl/container/flat_hash_map.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "storage/event_log.h"

namespace ticketd::storage {

// A RocksDB status as ours, prefixed with what was being done.
Status from_rocks(const rocksdb::Status& s, std::string_view what);

// Where event_of() copies an envelope that RocksDB holds at an unaligned address. It grows to the
// largest envelope read and is never cleared: each copy overwrites what it uses.
struct EnvelopeScratch {
  std::unique_ptr<uint64_t[]> words;
  size_t capacity = 0;  // in words
};

// The event stored in `value`. FlatBuffers reads its scalars in place, so the buffer must start on
// the envelope's widest scalar (8 bytes); RocksDB keeps a value wherever it falls in its block, so
// most are copied to `scratch` first (an unaligned read would be undefined behaviour, which
// UBSan reports). The event is valid as long as both the value and the scratch are unchanged.
inline RecordedEvent event_of(const rocksdb::Slice& value, EnvelopeScratch& scratch,
                              const Value* payload_value = nullptr) {
  const char* bytes = value.data();
  if (reinterpret_cast<uintptr_t>(bytes) % alignof(uint64_t) != 0) {
    size_t words = (value.size() + sizeof(uint64_t) - 1) / sizeof(uint64_t);
    if (words > scratch.capacity) {
      scratch.words = std::make_unique_for_overwrite<uint64_t[]>(words);
      scratch.capacity = words;
    }
    std::memcpy(scratch.words.get(), bytes, value.size());
    bytes = reinterpret_cast<const char*>(scratch.words.get());
  }
  return RecordedEvent(flatbuffers::GetRoot<fb::Envelope>(bytes),
                       std::string_view(bytes, value.size()), payload_value);
}

struct AppendRequest {
  std::string stream;
  int64_t expected;
  std::vector<NewEvent> events;
  AppendCallback done;
};

struct StoredId {
  uint64_t position;
  uint64_t version;
};

// Event ids and where they are stored; looked up and filled for every event the writer writes.
using IdMap = absl::flat_hash_map<EventId, StoredId, EventIdHash>;

// What one committed event adds to the index column families.
struct IndexEntry {
  std::string stream_key;  // layout::stream_key(stream, version)
  EventId id;
  StoredId stored;
  bool fresh_id = false;  // then not in the ids' index
};

// The index entries of committed batches, waiting for the indexer.
struct IndexWork {
  uint64_t through = 0;  // the batch's last position
  std::vector<IndexEntry> entries;
  std::vector<std::pair<std::string, uint64_t>> heads;  // stream -> version after the batch
};

// A batch the writer committed, kept whole for live subscribers (EventLog::Impl::read_recent):
// its events' Puts in position order, as they were written.
struct CommittedBatch {
  uint64_t first = 0, last = 0;  // positions
  rocksdb::WriteBatch writes;
  // By position - first: each event's NewEvent::payload_value (null where it had none).
  std::vector<Value> payload_values;
};

struct EventLog::Impl {
  EventLogOptions options;
  std::shared_ptr<rocksdb::Cache> cache;
  std::unique_ptr<rocksdb::Env> env;  // with prefilled WAL files; outlives db
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* streams = nullptr;
  rocksdb::ColumnFamilyHandle* heads_cf = nullptr;
  rocksdb::ColumnFamilyHandle* ids = nullptr;
  rocksdb::ColumnFamilyHandle* checkpoints = nullptr;
  rocksdb::ColumnFamilyHandle* snapshots = nullptr;
  rocksdb::ColumnFamilyHandle* attachments = nullptr;

  // Stream heads: written by the writer thread only, read by anyone. One per stream ever written,
  // looked up at random for every append: an open-addressing table costs one cache miss where
  // std::unordered_map's buckets and nodes cost three.
  mutable std::shared_mutex heads_mu;
  absl::flat_hash_map<std::string, uint64_t> heads;
  // Opening reads a million stream heads on a thread of its own, beside the projections' own
  // start-up; whoever needs every head (the writer, stream_head(), verify()) waits for it.
  std::thread heads_loader;
  std::atomic<bool> heads_loaded{false};
  Status heads_status;  // set by the loader before heads_loaded
  mutable std::mutex heads_loaded_mu;
  mutable std::condition_variable heads_loaded_cv;

  // The last position the index column families hold: moved on by the indexer after each write.
  // read_stream waits for it to reach what was committed when it was called.
  std::atomic<uint64_t> indexed{0};
  mutable std::mutex indexed_mu;
  mutable std::condition_variable indexed_cv;
  // A read-only handle's index of the events after `indexed` (fixed once open): stream key ->
  // position,
  std::map<std::string, uint64_t, std::less<>> tail_streams;
  absl::flat_hash_map<EventId, uint64_t, EventIdHash> tail_ids;  // and event id -> position
  // Writer thread only: ids of the events it committed that the index may not hold yet, with
  // their positions in commit order so that the indexed ones can be dropped.
  IdMap recent_ids;
  std::deque<std::pair<uint64_t, EventId>> recent_order;

  std::mutex index_mu;
  std::condition_variable index_cv;
  std::deque<IndexWork> index_queue;
  bool index_stopping = false;
  std::thread indexer;
  Hash last_hash{};  // writer thread only
  std::atomic<uint64_t> committed{0};

  std::mutex queue_mu;
  std::condition_variable queue_cv;
  std::deque<AppendRequest> queue;
  bool stopping = false;
  std::thread writer;

  mutable std::mutex commit_mu;
  mutable std::condition_variable commit_cv;
  // The last batches committed, oldest first and with no gap between them (guarded by
  // commit_mu): a subscriber that is up to date reads what follows from here rather than
  // from RocksDB, where a new iterator, its seek and its steps were an eighth of the read
  // model's thread. At most kRecentBatches of them and kRecentBytes of their writes.
  static constexpr size_t kRecentBatches = 64, kRecentBytes = 16 << 20;
  std::deque<std::shared_ptr<const CommittedBatch>> recent;
  size_t recent_bytes = 0;

  std::mutex snapshot_mu;  // held by a SnapshotWriter from begin to end

  std::mutex subscriptions_mu;
  std::unordered_set<Subscription*> subscriptions;

  std::atomic<uint64_t> stat_batches{0}, stat_events{0}, stat_requests{0}, stat_sync_micros{0};
  mutable std::atomic<uint64_t> stat_delivered_from_memory{0};

  ~Impl() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }

  Status recover();
  void load_heads();
  Status wait_heads_loaded() const;
  Status load_tail();
  Status derive_index(uint64_t after, const std::function<Status(IndexWork&&)>& sink);
  void publish(IndexWork&& work);
  void run_writer();
  void commit(std::vector<AppendRequest>& batch);
  void run_indexer();
  Status write_index(const std::vector<IndexWork>& works, bool logged);
  IdMap find_ids(const std::vector<AppendRequest>& batch);
  bool wait_indexed(uint64_t position) const;
  // commit_mu held. The batches no longer kept are moved to `dropped`, to be freed after the
  // lock is let go (their writes and payload values are thousands of allocations).
  void keep_recent(std::shared_ptr<const CommittedBatch> batch,
                   std::vector<std::shared_ptr<const CommittedBatch>>* dropped);
  // Delivers the events after `after` (up to max_count) from the batches kept in memory.
  // Returns false when they do not reach back to `after` + 1 (nothing delivered) or cannot be
  // read: the caller then reads storage from the last event delivered.
  bool read_recent(uint64_t after, size_t max_count, const EventVisitor& visit) const;
  std::optional<uint64_t> indexed_position(std::string_view stream_key) const;
  Status indexed_id(const EventId& id, uint64_t* position) const;
  void wake_readers() {
    { std::lock_guard lk(commit_mu); }
    commit_cv.notify_all();
  }
};

}  // namespace ticketd::storage
