#include "storage/event_log.h"

#include <pthread.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <simdjson.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <future>

#include "storage/event_log_impl.h"
#include "storage/hash_chain.h"
#include "storage/layout.h"
#include "storage/prefilled_wal.h"

namespace ticketd::storage {

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(std::move(m));
  if (s.IsCorruption()) return Status::Corruption(std::move(m));
  if (s.IsInvalidArgument()) return Status::InvalidArgument(std::move(m));
  return Status::IOError(std::move(m));
}

namespace {

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The streams column family's prefix is the stream id with its 0x00 separator: the key minus its
// 8-byte version. Prefix bloom filters then answer "does this stream have keys here" per SST file.
class StreamPrefix : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "ticketd.StreamPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - 8);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() >= 9; }
};

rocksdb::ColumnFamilyOptions base_cf_options(const std::shared_ptr<rocksdb::Cache>& cache,
                                             bool bloom) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  if (bloom) table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.compression = rocksdb::kLZ4Compression;  // at every level: see below
  return cf;
}

// Options per column family, chosen for an append-only log:
//  - events: keys only ever grow and are read by scans, so no bloom filter (it would only cost
//    memory); larger blocks help scans; LZ4 keeps JSON payloads small at little CPU. LZ4 at the
//    bottom level too, where old events settle: zstd there saved 13% of the disk and cost a
//    rebuild or a replay 7% of its time (decompressing was an eighth of the reading thread's
//    work), and every old event is read whole again by each of them.
//  - streams: read by prefix (one stream), so a prefix extractor with prefix blooms in SST files
//    and in the memtable lets reads skip files that hold nothing of the stream.
//  - ids: derived ids only (an Idempotency-Key's, a timer's, an outcome's; fresh ones are not
//    indexed). Almost every lookup is a miss (a first submission with its key), which whole-key
//    bloom filters, also in the memtable, answer without reading blocks. Ids are only ever looked
//    up, never scanned, so the memtable is a hash table (buckets of short lists, by the first 8
//    bytes) rather than a skiplist: inserting random keys into a skiplist searched it from the
//    top every time, 12% of the server's CPU under a submit load whose every id was indexed.
//  - snapshots and attachments: large values go to blob files so compaction does not rewrite
//    them.
std::vector<rocksdb::ColumnFamilyDescriptor> column_families(
    const std::shared_ptr<rocksdb::Cache>& cache) {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, base_cf_options(cache, false));

  rocksdb::ColumnFamilyOptions events = base_cf_options(cache, false);
  {
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache;
    table.block_size = 32 << 10;
    events.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    events.write_buffer_size = 128 << 20;
  }
  // Positions only grow, so each insert lands after the last one: with a hint (one prefix for
  // every key) the memtable's skiplist inserts there instead of searching down from its top
  // level each time, ~10 µs less of the synced write for a group commit of 64 appends.
  events.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(0));
  cfs.emplace_back(layout::kEvents, events);

  // Stream ids grow too where it matters: a new ticket's stream sorts after every earlier
  // ticket's, so the index's inserts mostly land just after the one before. A hint for each first
  // byte of a key keeps the "indexed through" marks (which start with a NUL) and each kind of
  // stream apart. Without hints each insert searched its skiplist from the top; with them only
  // the check of every level after the insert is left (Debian's RocksDB keeps its assertions).
  auto hint_by_first_byte =
      std::shared_ptr<const rocksdb::SliceTransform>(rocksdb::NewFixedPrefixTransform(1));
  rocksdb::ColumnFamilyOptions streams = base_cf_options(cache, true);
  streams.prefix_extractor = std::make_shared<StreamPrefix>();
  streams.memtable_prefix_bloom_size_ratio = 0.05;
  streams.memtable_insert_with_hint_prefix_extractor = hint_by_first_byte;
  cfs.emplace_back(layout::kStreams, streams);

  rocksdb::ColumnFamilyOptions heads = base_cf_options(cache, true);
  heads.memtable_insert_with_hint_prefix_extractor = hint_by_first_byte;
  cfs.emplace_back(layout::kStreamHeads, heads);

  rocksdb::ColumnFamilyOptions ids = base_cf_options(cache, true);
  ids.memtable_prefix_bloom_size_ratio = 0.05;
  ids.memtable_whole_key_filtering = true;
  ids.compression = rocksdb::kNoCompression;  // random 16-byte keys do not compress
  ids.prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(8));
  ids.memtable_factory.reset(rocksdb::NewHashLinkListRepFactory(1 << 20));
  cfs.emplace_back(layout::kIds, ids);

  cfs.emplace_back(layout::kCheckpoints, base_cf_options(cache, false));
  // Snapshots are as large as the read model (a GB at a million tickets): in blob files, a
  // compaction moves a reference instead of holding old and new snapshots in memory to rewrite
  // them, and a superseded snapshot's file is deleted whole.
  rocksdb::ColumnFamilyOptions snapshots = base_cf_options(cache, false);
  snapshots.enable_blob_files = true;
  snapshots.min_blob_size = 0;
  snapshots.blob_compression_type = rocksdb::kLZ4Compression;
  cfs.emplace_back(layout::kSnapshots, snapshots);

  rocksdb::ColumnFamilyOptions attachments = base_cf_options(cache, false);
  attachments.enable_blob_files = true;
  attachments.min_blob_size = 4096;
  attachments.compression = rocksdb::kNoCompression;  // images and PDFs are compressed already
  cfs.emplace_back(layout::kAttachments, attachments);
  return cfs;
}

}  // namespace

std::string Status::ToString() const {
  static constexpr const char* kNames[] = {"OK",   "Conflict", "NotFound",   "InvalidArgument",
                                           "Busy", "IOError",  "Corruption", "ShuttingDown"};
  std::string s = kNames[static_cast<int>(code_)];
  if (!message_.empty()) s += ": " + message_;
  return s;
}

EventId RecordedEvent::id() const {
  EventId id;
  if (const fb::Uuid* u = e_->id()) std::copy_n(u->bytes()->data(), 16, id.bytes.begin());
  return id;
}

std::string_view RecordedEvent::payload() const {
  const auto* p = e_->payload();
  return p ? std::string_view(reinterpret_cast<const char*>(p->data()), p->size())
           : std::string_view();
}

Hash RecordedEvent::copy_hash(const fb::Sha256* h) {
  Hash out{};
  if (h) std::copy_n(h->bytes()->data(), 32, out.begin());
  return out;
}

EventLog::EventLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Status EventLog::Open(const EventLogOptions& options, std::unique_ptr<EventLog>* out) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->cache = rocksdb::NewLRUCache(options.block_cache_bytes);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // Point-in-time recovery: after a crash, the WAL is replayed up to the first torn record, and
  // every batch acknowledged (synced) before it is there.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.bytes_per_sync = 1 << 20;
  // The indexer's writes then go into the memtables while the writer's next batch is in the WAL
  // and its fsync: the two threads overlap instead of queueing behind each other.
  db_options.enable_pipelined_write = true;
  // Required by the hash memtable of the ids; with one writer and one indexer, concurrent inserts
  // into a memtable had nothing to overlap anyway.
  db_options.allow_concurrent_memtable_write = false;
  // Opening replays the WAL that is not yet in SST files, at ~5 ms a MB. RocksDB's default bound
  // (four times all write buffers, ~4.6 GB here) keeps WAL files alive as long as any column
  // family's memtable still refers to them: a start after a million tickets had been written
  // replayed 2.2 GB of WAL in 10.8 s. Past this bound the column families holding the oldest WAL
  // are flushed, so a start after a crash replays at most about this much.
  db_options.max_total_wal_size = 256 << 20;
  if (options.prefill_wal && !options.read_only) {
    PrefilledWalOptions wal;
    wal.direct_writes = options.direct_wal;
    wal.directory = options.path;
    impl->env =
        rocksdb::NewCompositeEnv(NewPrefilledWalFileSystem(rocksdb::FileSystem::Default(), wal));
    db_options.env = impl->env.get();
  }

  rocksdb::DB* raw = nullptr;
  auto cfs = column_families(impl->cache);
  if (options.defer_compactions && !options.read_only) {
    for (auto& cf : cfs) cf.options.disable_auto_compactions = true;
  }
  rocksdb::Status s =
      options.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, options.path, cfs, &impl->handles, &raw)
          : rocksdb::DB::Open(db_options, options.path, cfs, &impl->handles, &raw);
  if (!s.ok()) return from_rocks(s, "open " + options.path);
  impl->db.reset(raw);
  impl->events = impl->handles[1];
  impl->streams = impl->handles[2];
  impl->heads_cf = impl->handles[3];
  impl->ids = impl->handles[4];
  impl->checkpoints = impl->handles[5];
  impl->snapshots = impl->handles[6];
  impl->attachments = impl->handles[7];

  if (Status st = impl->recover(); !st.ok()) return st;
  {
    Impl* p = impl.get();
    impl->heads_loader = std::thread([p] {
      pthread_setname_np(pthread_self(), "log-heads");
      p->load_heads();
    });
  }
  if (!options.read_only) {
    Impl* p = impl.get();
    impl->indexer = std::thread([p] {
      pthread_setname_np(pthread_self(), "log-indexer");
      p->run_indexer();
    });
    impl->writer = std::thread([p] {
      pthread_setname_np(pthread_self(), "log-writer");
      p->run_writer();
    });
  }
  out->reset(new EventLog(std::move(impl)));
  return Status::Ok();
}

Status EventLog::Impl::load_tail() {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), events));
  it->SeekToLast();
  if (it->Valid()) {
    EnvelopeScratch scratch;
    RecordedEvent last = event_of(it->value(), scratch);
    committed.store(last.position(), std::memory_order_release);
    last_hash = last.hash();
  } else {
    committed.store(0, std::memory_order_release);
    last_hash = Hash{};
  }
  return from_rocks(it->status(), "load last event");
}

EventLog::~EventLog() {
  if (impl_->heads_loader.joinable()) impl_->heads_loader.join();
  if (impl_->writer.joinable()) {
    {
      std::lock_guard lk(impl_->queue_mu);
      impl_->stopping = true;
    }
    impl_->queue_cv.notify_all();
    impl_->writer.join();
    {
      std::lock_guard lk(impl_->index_mu);
      impl_->index_stopping = true;
    }
    impl_->index_cv.notify_all();
    impl_->indexer.join();
    // A clean close leaves no WAL to replay: the next start opens in milliseconds, not seconds.
    // Should the flush fail, nothing is lost (the WAL stays, and the next open replays it).
    rocksdb::FlushOptions fo;
    fo.allow_write_stall = true;
    impl_->db->Flush(fo, impl_->handles).PermitUncheckedError();
  }
  std::unordered_set<Subscription*> subs;
  {
    std::lock_guard lk(impl_->subscriptions_mu);
    subs.swap(impl_->subscriptions);
  }
  for (Subscription* s : subs) {
    s->stop();
    s->log_ = nullptr;
  }
}

uint64_t EventLog::last_position() const {
  return impl_->committed.load(std::memory_order_acquire);
}

AppendResult EventLog::append(std::string_view stream, ExpectedVersion expected,
                              std::vector<NewEvent> events) {
  std::promise<AppendResult> promise;
  auto future = promise.get_future();
  append_async(stream, expected, std::move(events),
               [&promise](AppendResult r) { promise.set_value(std::move(r)); });
  return future.get();
}

void EventLog::append_async(std::string_view stream, ExpectedVersion expected,
                            std::vector<NewEvent> events, AppendCallback done) {
  AppendResult refused;
  // Payloads are embedded verbatim in JSON answers, so the log holds only valid JSON. Checked here,
  // on the caller's thread, to keep the single writer's work small.
  thread_local simdjson::dom::parser parser;
  for (const NewEvent& e : events) {
    if (!e.payload_written_by_json_writer && parser.parse(e.payload).error()) {
      refused.status = Status::InvalidArgument("payload of " + e.type + " is not valid JSON");
      done(std::move(refused));
      return;
    }
  }
  {
    std::lock_guard lk(impl_->queue_mu);
    if (impl_->options.read_only) {
      refused.status = Status::InvalidArgument("the log was opened read-only");
    } else if (impl_->stopping) {
      refused.status = Status::ShuttingDown("the log is closing");
    } else if (impl_->queue.size() >= impl_->options.max_queued_requests) {
      refused.status = Status::Busy("append queue full");
    } else {
      impl_->queue.push_back(
          {std::string(stream), expected.value, std::move(events), std::move(done)});
    }
  }
  if (!refused.status.ok()) {
    done(std::move(refused));
    return;
  }
  impl_->queue_cv.notify_one();
}

void EventLog::Impl::run_writer() {
  std::vector<AppendRequest> batch;
  for (;;) {
    {
      std::unique_lock lk(queue_mu);
      queue_cv.wait(lk, [&] { return !queue.empty() || stopping; });
      if (queue.empty()) return;  // stopping, and everything queued has been written
      size_t n = std::min(queue.size(), options.max_batch_requests);
      batch.assign(std::make_move_iterator(queue.begin()),
                   std::make_move_iterator(queue.begin() + n));
      queue.erase(queue.begin(), queue.begin() + n);
    }
    commit(batch);
    batch.clear();
  }
}

namespace {

Status validate(const AppendRequest& r) {
  if (r.stream.empty()) return Status::InvalidArgument("stream id is empty");
  if (r.stream.find('\0') != std::string::npos) {
    return Status::InvalidArgument("stream id contains a NUL byte");
  }
  if (r.events.empty()) return Status::InvalidArgument("no events to append");
  if (r.expected < ExpectedVersion::kAny) return Status::InvalidArgument("bad expected version");
  // Appends carry a few events (a command's): comparing each id with those before it beats
  // building a set, up to a point.
  constexpr size_t kCompareAll = 32;
  std::unordered_set<EventId, EventIdHash> seen;
  for (size_t i = 0; i < r.events.size(); ++i) {
    const NewEvent& e = r.events[i];
    if (e.type.empty()) return Status::InvalidArgument("event type is empty");
    bool repeated = r.events.size() <= kCompareAll
                        ? std::any_of(r.events.begin(), r.events.begin() + i,
                                      [&](const NewEvent& before) { return before.id == e.id; })
                        : !seen.insert(e.id).second;
    if (repeated) {
      return Status::InvalidArgument("event id " + e.id.to_string() + " repeats in one append");
    }
  }
  return Status::Ok();
}

flatbuffers::Offset<fb::Envelope> build_envelope(flatbuffers::FlatBufferBuilder& fbb,
                                                 const EventContent& c, const Hash& prev,
                                                 const Hash& hash) {
  auto stream = fbb.CreateString(c.stream.data(), c.stream.size());
  auto type = fbb.CreateString(c.type.data(), c.type.size());
  auto payload =
      fbb.CreateVector(reinterpret_cast<const uint8_t*>(c.payload.data()), c.payload.size());
  auto actor = fbb.CreateString(c.actor.data(), c.actor.size());
  auto correlation = fbb.CreateString(c.correlation_id.data(), c.correlation_id.size());
  auto causation = fbb.CreateString(c.causation_id.data(), c.causation_id.size());
  fb::Uuid id(flatbuffers::span<const uint8_t, 16>(c.id.bytes.data(), 16));
  fb::Sha256 prev_hash(flatbuffers::span<const uint8_t, 32>(prev.data(), 32));
  fb::Sha256 own_hash(flatbuffers::span<const uint8_t, 32>(hash.data(), 32));
  fb::EnvelopeBuilder b(fbb);
  b.add_position(c.position);
  b.add_stream(stream);
  b.add_version(c.version);
  b.add_id(&id);
  b.add_type(type);
  b.add_payload(payload);
  b.add_recorded_at_us(c.recorded_at_us);
  b.add_actor(actor);
  b.add_correlation_id(correlation);
  b.add_causation_id(causation);
  b.add_schema_version(c.schema_version);
  b.add_prev_hash(&prev_hash);
  b.add_hash(&own_hash);
  return b.Finish();
}

}  // namespace

namespace {

// IOError while the log's file system has less than `min_free` bytes free for us.
Status check_free_space(const std::string& path, uint64_t min_free) {
  struct statvfs fs;
  if (min_free == 0 || ::statvfs(path.c_str(), &fs) != 0) return Status::Ok();
  uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  if (free >= min_free) return Status::Ok();
  return Status::IOError("no space left for the event log: " + std::to_string(free >> 20) +
                         " MiB free on its disk, " + std::to_string(min_free >> 20) +
                         " MiB needed; nothing was written");
}

}  // namespace

void EventLog::Impl::commit(std::vector<AppendRequest>& batch) {
  Status refused = wait_heads_loaded();  // expected versions are checked against every head
  if (refused.ok()) refused = check_free_space(options.path, options.min_free_bytes);
  if (!refused.ok()) {
    stat_requests.fetch_add(batch.size(), std::memory_order_relaxed);
    for (auto& r : batch) r.done(AppendResult{refused});
    return;
  }
  rocksdb::WriteBatch wb;
  std::vector<AppendResult> results(batch.size());
  absl::flat_hash_map<std::string, uint64_t> touched;  // stream -> version after this batch
  touched.reserve(batch.size());
  IdMap batch_ids = find_ids(batch);
  IndexWork index;
  std::vector<Value> payload_values;
  // Batches no longer kept for subscribers: freed on the way out, after the callers are answered.
  std::vector<std::shared_ptr<const CommittedBatch>> dropped;
  uint64_t position = committed.load(std::memory_order_relaxed);
  Hash hash = last_hash;
  const int64_t stamp = now_us();
  flatbuffers::FlatBufferBuilder fbb(1024);

  for (size_t i = 0; i < batch.size(); ++i) {
    AppendRequest& r = batch[i];
    AppendResult& res = results[i];
    if (res.status = validate(r); !res.status.ok()) continue;

    // Idempotency: a request whose ids are all stored already is answered with the originals.
    size_t known = 0;
    for (const NewEvent& e : r.events) {
      if (e.fresh_id) continue;  // taken at its word, as find_ids takes it
      auto found = batch_ids.find(e.id);
      if (found == batch_ids.end()) continue;
      if (known++ == 0) res.first_position = found->second.position;
      res.last_position = found->second.position;
      res.stream_version = found->second.version;
    }
    if (known == r.events.size()) {
      res.duplicate = true;
      continue;
    }
    if (known > 0) {
      res = AppendResult{};
      res.status = Status::InvalidArgument("some but not all event ids of the append are stored");
      continue;
    }

    uint64_t current = 0;
    if (auto it = touched.find(r.stream); it != touched.end()) {
      current = it->second;
    } else {
      std::shared_lock lk(heads_mu);
      if (auto h = heads.find(r.stream); h != heads.end()) current = h->second;
    }
    if (r.expected != ExpectedVersion::kAny && static_cast<uint64_t>(r.expected) != current) {
      res.status =
          Status::Conflict("stream " + r.stream + " is at version " + std::to_string(current) +
                           ", expected " + std::to_string(r.expected));
      res.stream_version = current;
      continue;
    }

    res.first_position = position + 1;
    for (NewEvent& e : r.events) {
      EventContent c{++position,
                     r.stream,
                     ++current,
                     e.id,
                     e.type,
                     e.payload,
                     e.recorded_at_us ? e.recorded_at_us : stamp,
                     e.actor,
                     e.correlation_id,
                     e.causation_id,
                     e.schema_version};
      Hash prev = hash;
      hash = chain_hash(prev, c);
      fbb.Clear();
      fbb.Finish(build_envelope(fbb, c, prev, hash));
      wb.Put(events, layout::position_key(position),
             rocksdb::Slice(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize()));
      payload_values.push_back(std::move(e.payload_value));
      index.entries.push_back(
          {layout::stream_key(r.stream, current), e.id, {position, current}, e.fresh_id});
      if (!e.fresh_id) batch_ids[e.id] = {position, current};
    }
    touched[r.stream] = current;
    res.last_position = position;
    res.stream_version = current;
  }

  if (wb.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    auto started = std::chrono::steady_clock::now();
    rocksdb::Status s = db->Write(wo, &wb);
    stat_sync_micros.fetch_add(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - started)
                                   .count(),
                               std::memory_order_relaxed);
    if (!s.ok()) {
      // Nothing of this batch is acknowledged. RocksDB stops accepting writes after a failed WAL
      // write; try to resume, and reload what we keep in memory from what is really on disk.
      Status failed = from_rocks(s, "append");
      for (AppendResult& res : results) {
        if (res.status.ok() && !res.duplicate) res = AppendResult{failed};
      }
      db->Resume();
      uint64_t before = committed.load(std::memory_order_relaxed);
      load_tail();
      // Should the batch have reached the log after all, it is indexed like any other tail.
      if (committed.load(std::memory_order_relaxed) > before) {
        derive_index(before, [this](IndexWork&& w) {
          publish(std::move(w));
          return Status::Ok();
        });
      }
    } else {
      index.through = position;
      index.heads.assign(touched.begin(), touched.end());
      // In key order, so each head's memtable insert lands by the one before (column_families).
      std::sort(index.heads.begin(), index.heads.end());
      {
        std::unique_lock lk(heads_mu);
        for (auto& [stream, version] : touched) heads[stream] = version;
      }
      publish(std::move(index));
      last_hash = hash;
      const uint64_t first = committed.load(std::memory_order_relaxed) + 1;
      stat_batches.fetch_add(1, std::memory_order_relaxed);
      stat_events.fetch_add(position - first + 1, std::memory_order_relaxed);
      auto kept = std::make_shared<CommittedBatch>();
      kept->first = first;
      kept->last = position;
      kept->writes = std::move(wb);
      kept->payload_values = std::move(payload_values);
      {
        std::lock_guard lk(commit_mu);
        keep_recent(std::move(kept), &dropped);
        committed.store(position, std::memory_order_release);
      }
      commit_cv.notify_all();
    }
  }
  stat_requests.fetch_add(batch.size(), std::memory_order_relaxed);
  for (size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
}

EventLog::Stats EventLog::stats() const {
  Stats s;
  s.batches = impl_->stat_batches.load(std::memory_order_relaxed);
  s.events = impl_->stat_events.load(std::memory_order_relaxed);
  s.requests = impl_->stat_requests.load(std::memory_order_relaxed);
  s.sync_micros = impl_->stat_sync_micros.load(std::memory_order_relaxed);
  s.delivered_from_memory = impl_->stat_delivered_from_memory.load(std::memory_order_relaxed);
  std::lock_guard lk(impl_->queue_mu);
  s.queued = impl_->queue.size();
  return s;
}

uint64_t EventLog::stream_head(std::string_view stream) const {
  impl_->wait_heads_loaded();
  std::shared_lock lk(impl_->heads_mu);
  // Debian builds Abseil with its own string_view, not std::string_view.
  auto it = impl_->heads.find(absl::string_view(stream.data(), stream.size()));
  return it == impl_->heads.end() ? 0 : it->second;
}

bool EventLog::wait_for_position(uint64_t position, std::chrono::milliseconds timeout) const {
  std::unique_lock lk(impl_->commit_mu);
  return impl_->commit_cv.wait_for(lk, timeout, [&] { return last_position() >= position; });
}

void EventLog::Impl::keep_recent(std::shared_ptr<const CommittedBatch> batch,
                                 std::vector<std::shared_ptr<const CommittedBatch>>* dropped) {
  // A batch that does not follow the last one (the log reloaded its tail after a failed write)
  // starts the kept run again.
  if (!recent.empty() && recent.back()->last + 1 != batch->first) {
    dropped->insert(dropped->end(), recent.begin(), recent.end());
    recent.clear();
    recent_bytes = 0;
  }
  recent_bytes += batch->writes.GetDataSize();
  recent.push_back(std::move(batch));
  while (recent.size() > 1 && (recent.size() > kRecentBatches || recent_bytes > kRecentBytes)) {
    recent_bytes -= recent.front()->writes.GetDataSize();
    dropped->push_back(std::move(recent.front()));
    recent.pop_front();
  }
}

namespace {

// Visits the events of a kept batch after a position, until told to stop or max_count are given.
class RecentEvents : public rocksdb::WriteBatch::Handler {
 public:
  RecentEvents(uint64_t after, size_t max_count, const EventVisitor& visit)
      : after_(after), max_count_(max_count), visit_(visit) {}

  void start(const CommittedBatch& batch) { batch_ = &batch; }

  rocksdb::Status PutCF(uint32_t, const rocksdb::Slice& key, const rocksdb::Slice& value) override {
    const uint64_t position = layout::get_be64(std::string_view(key.data(), key.size()));
    if (position <= after_) return rocksdb::Status::OK();
    ++delivered_;
    const uint64_t i = position - batch_->first;
    const Value* payload_value =
        i < batch_->payload_values.size() && !batch_->payload_values[i].is_null()
            ? &batch_->payload_values[i]
            : nullptr;
    if (!visit_(event_of(value, scratch_, payload_value))) stopped_ = true;
    return rocksdb::Status::OK();
  }
  bool Continue() override { return !done(); }
  bool done() const { return stopped_ || delivered_ == max_count_; }
  size_t delivered() const { return delivered_; }

 private:
  uint64_t after_;
  size_t max_count_;
  const EventVisitor& visit_;
  const CommittedBatch* batch_ = nullptr;
  EnvelopeScratch scratch_;
  size_t delivered_ = 0;
  bool stopped_ = false;
};

}  // namespace

bool EventLog::Impl::read_recent(uint64_t after, size_t max_count,
                                 const EventVisitor& visit) const {
  std::vector<std::shared_ptr<const CommittedBatch>> batches;
  {
    std::lock_guard lk(commit_mu);
    if (recent.empty() || recent.front()->first > after + 1 || recent.back()->last <= after) {
      return false;
    }
    for (const auto& b : recent) {
      if (b->last > after) batches.push_back(b);
    }
  }
  RecentEvents events(after, max_count, visit);
  bool read = true;
  for (const auto& b : batches) {
    // The batch's own bytes, written from it a moment ago: should they not read back, storage
    // still has them.
    events.start(*b);
    if (!b->writes.Iterate(&events).ok()) {
      read = false;
      break;
    }
    if (events.done()) break;
  }
  stat_delivered_from_memory.fetch_add(events.delivered(), std::memory_order_relaxed);
  return read;
}

Status EventLog::read_all(uint64_t after, size_t max_count, const EventVisitor& visit) const {
  uint64_t end = last_position();
  if (after >= end || max_count == 0) return Status::Ok();
  std::string lower = layout::position_key(after + 1);
  std::string upper = layout::position_key(end + 1);
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  // Readers of the global log scan it once, in order (catch-up, replay, rebuild): its blocks
  // would only push what point reads need out of the block cache, and fill it to its limit.
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->events));
  size_t n = 0;
  EnvelopeScratch scratch;
  for (it->Seek(lower); it->Valid() && n < max_count; it->Next(), ++n) {
    if (!visit(event_of(it->value(), scratch))) break;
  }
  return from_rocks(it->status(), "read log");
}

Status EventLog::read_at(uint64_t position, const EventVisitor& visit) const {
  if (position == 0 || position > last_position()) {
    return Status::NotFound("no event at position " + std::to_string(position));
  }
  rocksdb::PinnableSlice value;
  rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->events, layout::position_key(position), &value);
  if (!s.ok()) return from_rocks(s, "read event " + std::to_string(position));
  EnvelopeScratch scratch;
  visit(event_of(value, scratch));
  return Status::Ok();
}

Status EventLog::read_event(const EventId& id, const EventVisitor& visit) const {
  if (!impl_->wait_indexed(last_position())) {
    return Status::IOError("the id index is behind the log; nothing was read");
  }
  uint64_t position = 0;
  if (Status s = impl_->indexed_id(id, &position); !s.ok()) return s;
  return read_at(position, visit);
}

// A read-only handle finds the log's tail in tail_streams, the rest in the streams column family.
// A stream's positions grow with its versions, so the two merge as plain positions.
Status EventLog::read_stream(std::string_view stream, uint64_t from_version, size_t max_count,
                             const EventVisitor& visit) const {
  if (!impl_->wait_indexed(last_position())) {
    return Status::IOError("the stream index is behind the log; nothing was read");
  }
  std::string lower = layout::stream_key(stream, std::max<uint64_t>(from_version, 1));
  std::string upper = layout::id_upper_bound(stream);
  std::vector<uint64_t> positions;
  rocksdb::Slice upper_slice(upper);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper_slice;
  ro.prefix_same_as_start = true;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->streams));
  for (it->Seek(lower); it->Valid() && positions.size() < max_count; it->Next()) {
    positions.push_back(layout::get_be64(it->value().ToStringView()));
  }
  if (!it->status().ok()) return from_rocks(it->status(), "read stream");
  it.reset();
  if (!impl_->tail_streams.empty()) {
    std::vector<uint64_t> indexed;
    indexed.swap(positions);
    std::vector<uint64_t> tail;
    for (auto t = impl_->tail_streams.lower_bound(lower);
         t != impl_->tail_streams.end() && t->first < upper && tail.size() < max_count; ++t) {
      tail.push_back(t->second);
    }
    std::set_union(indexed.begin(), indexed.end(), tail.begin(), tail.end(),
                   std::back_inserter(positions));
    if (positions.size() > max_count) positions.resize(max_count);
  }
  rocksdb::PinnableSlice value;
  EnvelopeScratch scratch;
  for (uint64_t position : positions) {
    value.Reset();
    rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->events,
                                       layout::position_key(position), &value);
    if (!s.ok()) return from_rocks(s, "read stream event");
    if (!visit(event_of(value, scratch))) break;
  }
  return Status::Ok();
}

Status EventLog::save_checkpoint(std::string_view name, uint64_t position) {
  std::string v;
  layout::put_be64(v, position);
  return from_rocks(impl_->db->Put(rocksdb::WriteOptions(), impl_->checkpoints, name, v),
                    "save checkpoint");
}

Status EventLog::load_checkpoint(std::string_view name, uint64_t* position) const {
  std::string v;
  rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->checkpoints, name, &v);
  if (!s.ok()) return from_rocks(s, "load checkpoint");
  *position = layout::get_be64(v);
  return Status::Ok();
}

Status EventLog::backup(const std::string& dir) const {
  if (impl_->options.read_only) return Status::InvalidArgument("the log was opened read-only");
  rocksdb::Checkpoint* raw = nullptr;
  if (auto s = rocksdb::Checkpoint::Create(impl_->db.get(), &raw); !s.ok()) {
    return from_rocks(s, "back up");
  }
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // 0: always flush first, so that the index column families, written without the WAL, are in
  // the copy's table files and not only in memtables.
  return from_rocks(checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0),
                    "back up to " + dir);
}

Status EventLog::resume_compactions() {
  if (!impl_->options.defer_compactions || impl_->options.read_only) return Status::Ok();
  for (auto* cf : impl_->handles) {
    if (auto s = impl_->db->SetOptions(cf, {{"disable_auto_compactions", "false"}}); !s.ok()) {
      return from_rocks(s, "resume compactions");
    }
  }
  return Status::Ok();
}

Status EventLog::put_attachment(std::string_view id, std::string_view bytes) {
  if (impl_->options.read_only) return Status::InvalidArgument("the log was opened read-only");
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return from_rocks(impl_->db->Put(wo, impl_->attachments, id, bytes), "store attachment");
}

Status EventLog::get_attachment(std::string_view id, std::string* bytes) const {
  return from_rocks(impl_->db->Get(rocksdb::ReadOptions(), impl_->attachments, id, bytes),
                    "read attachment");
}

EventLog::VerifyReport EventLog::verify() const {
  VerifyReport report;
  auto fail = [&](uint64_t position, std::string problem) {
    report.ok = false;
    report.bad_position = position;
    report.problem = std::move(problem);
    return report;
  };
  if (!impl_->wait_indexed(last_position())) {
    return fail(impl_->indexed.load() + 1, "the stream index is behind the log");
  }
  std::unordered_map<std::string, uint64_t> stream_versions;
  Hash prev{};
  uint64_t expected = 1;
  std::unique_ptr<rocksdb::Iterator> it(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->events));
  EnvelopeScratch scratch;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++expected) {
    uint64_t key_position = layout::get_be64(it->key().ToStringView());
    flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(it->value().data()),
                                   it->value().size(), 64, 1000000, /*check_alignment=*/false);
    if (it->key().size() != 8 || !fb::VerifyEnvelopeBuffer(verifier)) {
      return fail(key_position, "stored bytes are not an event envelope");
    }
    if (key_position != expected) {
      return fail(expected, "event at position " + std::to_string(expected) +
                                " is missing (the next stored is " + std::to_string(key_position) +
                                ")");
    }
    RecordedEvent e = event_of(it->value(), scratch);
    if (e.position() != key_position) {
      return fail(key_position, "event stored at position " + std::to_string(key_position) +
                                    " says it is at position " + std::to_string(e.position()));
    }
    if (e.prev_hash() != prev) {
      return fail(key_position, "previous hash does not match the event before it");
    }
    if (chain_hash(prev, content_of(e)) != e.hash()) {
      return fail(key_position, "content does not match its hash (the event was changed)");
    }
    if (impl_->indexed_position(layout::stream_key(e.stream(), e.version())) != key_position) {
      return fail(key_position, "stream index does not point at this event");
    }
    uint64_t& version = stream_versions[std::string(e.stream())];
    if (e.version() != version + 1) {
      return fail(key_position, "stream version " + std::to_string(e.version()) + " follows " +
                                    std::to_string(version));
    }
    version = e.version();
    prev = e.hash();
    report.events = key_position;
  }
  if (!it->status().ok()) return fail(expected, it->status().ToString());
  // Events removed from the end leave stream heads pointing past them.
  if (Status s = impl_->wait_heads_loaded(); !s.ok()) return fail(report.events + 1, s.ToString());
  std::shared_lock lk(impl_->heads_mu);
  for (const auto& [stream, head] : impl_->heads) {
    auto found = stream_versions.find(stream);
    uint64_t seen = found == stream_versions.end() ? 0 : found->second;
    if (seen != head) {
      return fail(report.events + 1, "stream " + stream + " has version " + std::to_string(head) +
                                         " but the log holds " + std::to_string(seen) +
                                         " of its events");
    }
  }
  report.head = prev;
  return report;
}

std::unique_ptr<Subscription> EventLog::subscribe(uint64_t after,
                                                  std::function<void(const RecordedEvent&)> handler,
                                                  std::function<void()> after_run) {
  std::unique_ptr<Subscription> sub(
      new Subscription(this, after, std::move(handler), std::move(after_run)));
  {
    std::lock_guard lk(impl_->subscriptions_mu);
    impl_->subscriptions.insert(sub.get());
  }
  sub->thread_ = std::thread([s = sub.get()] {
    pthread_setname_np(pthread_self(), "log-subscriber");
    s->run();
  });
  return sub;
}

Subscription::Subscription(const EventLog* log, uint64_t after,
                           std::function<void(const RecordedEvent&)> handler,
                           std::function<void()> after_run)
    : log_(log), handler_(std::move(handler)), after_run_(std::move(after_run)), position_(after) {}

Subscription::~Subscription() {
  stop();
  if (log_) {
    std::lock_guard lk(log_->impl_->subscriptions_mu);
    log_->impl_->subscriptions.erase(this);
  }
}

void Subscription::stop() {
  stopping_.store(true, std::memory_order_release);
  if (log_) log_->impl_->wake_readers();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

// Catch-up and live are one loop: deliver everything durable after the last delivered position,
// then sleep until the writer commits more. Both sources, the batches kept in memory and
// storage, are read from that one position, so the seam between catch-up and live (and between
// memory and storage) cannot lose or repeat an event.
void Subscription::run() {
  constexpr size_t kChunk = 4096;
  const EventLog::Impl& impl = *log_->impl_;
  uint64_t position = position_.load();
  while (!stopping_.load(std::memory_order_acquire)) {
    size_t delivered = 0;
    const EventVisitor deliver = [&](const RecordedEvent& e) {
      if (stopping_.load(std::memory_order_relaxed)) return false;
      handler_(e);
      position = e.position();
      position_.store(position, std::memory_order_release);
      ++delivered;
      return true;
    };
    // Up to date, it reads what just committed from memory; behind, from storage.
    Status s;
    if (!impl.read_recent(position, kChunk, deliver)) {
      s = log_->read_all(position, kChunk - delivered, deliver);
    }
    if (delivered > 0) {
      if (after_run_) after_run_();
      continue;
    }
    std::unique_lock lk(impl.commit_mu);
    if (!s.ok()) {
      // Storage refused the read (e.g. an I/O error): try again shortly rather than spin.
      impl.commit_cv.wait_for(lk, std::chrono::milliseconds(100),
                              [&] { return stopping_.load(std::memory_order_acquire); });
      continue;
    }
    impl.commit_cv.wait(lk, [&] {
      return stopping_.load(std::memory_order_acquire) ||
             impl.committed.load(std::memory_order_acquire) > position;
    });
  }
}

}  // namespace ticketd::storage
