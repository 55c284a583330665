// The stream, id and head indexes: derived from the events, written without the WAL by the
// indexer thread after each synced batch, and derived again on open from the events a crash left
// behind the lowest of their indexed-through marks.
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "storage/event_log_impl.h"
#include "storage/layout.h"

namespace ticketd::storage {

// The last event gives the last position and hash; the index's marks say how far each of its
// column families reaches, and the events after the lowest are indexed again. Every other
// stream's head is loaded by load_heads(), on a thread of its own once this returns.
Status EventLog::Impl::recover() {
  if (Status s = load_tail(); !s.ok()) return s;
  std::optional<uint64_t> marks[3];
  const std::pair<rocksdb::ColumnFamilyHandle*, std::string_view> mark_keys[3] = {
      {heads_cf, layout::kIndexedThroughKey},
      {streams, layout::kIndexedThroughKey},
      {ids, layout::kIdsIndexedThroughKey}};
  for (size_t i = 0; i < 3; ++i) {
    std::string mark;
    rocksdb::Status s =
        db->Get(rocksdb::ReadOptions(), mark_keys[i].first, mark_keys[i].second, &mark);
    if (s.ok()) {
      marks[i] = layout::get_be64(mark);
    } else if (!s.IsNotFound()) {
      return from_rocks(s, "read the indexed-through marks");
    }
  }
  uint64_t last = committed.load(std::memory_order_acquire);
  // Logs written before the index was derived have no mark, and their indexes were written in
  // the events' own batches: complete. Logs written before the index left the WAL have the
  // stream_heads mark only, and their column families are as complete as it says. Either way
  // every mark is written through the WAL before the indexer writes anything without it, so from
  // then on a missing mark cannot mean a lost one. A new log gets its marks before its first event.
  uint64_t indexed_through = UINT64_MAX;
  for (const auto& mark : marks) indexed_through = std::min(indexed_through, mark.value_or(last));
  const bool all_marked = marks[0] && marks[1] && marks[2];
  if (!all_marked && !options.read_only) {
    if (Status s = write_index({IndexWork{indexed_through, {}, {}}}, true); !s.ok()) return s;
  }
  // A mark past the last event means events were removed from the log's end: verify says so.
  indexed.store(std::min(indexed_through, last), std::memory_order_release);
  if (indexed_through >= last) return Status::Ok();
  if (options.read_only) {
    Status s = derive_index(indexed_through, [this](IndexWork&& w) {
      for (IndexEntry& e : w.entries) {
        tail_streams.emplace(std::move(e.stream_key), e.stored.position);
        tail_ids.emplace(e.id, e.stored.position);
      }
      return Status::Ok();
    });
    if (s.ok()) indexed.store(last, std::memory_order_release);  // with tail_streams
    return s;
  }
  return derive_index(indexed_through, [this](IndexWork&& w) {
    Status s = write_index({w}, true);
    if (s.ok()) indexed.store(w.through, std::memory_order_release);
    return s;
  });
}

// Indexes the events after `after` as the writer would have, in pieces handed to `sink`, and
// moves the stream heads on.
Status EventLog::Impl::derive_index(uint64_t after,
                                    const std::function<Status(IndexWork&&)>& sink) {
  constexpr size_t kWorkEvents = 8192;
  IndexWork work;
  std::unordered_map<std::string, uint64_t> versions;
  auto flush = [&]() -> Status {
    work.heads.assign(versions.begin(), versions.end());
    versions.clear();
    {
      std::unique_lock lk(heads_mu);
      for (const auto& [stream, version] : work.heads) heads[stream] = version;
    }
    Status s = sink(std::move(work));
    work = IndexWork{};
    return s;
  };
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), events));
  EnvelopeScratch scratch;
  for (it->Seek(layout::position_key(after + 1)); it->Valid(); it->Next()) {
    RecordedEvent e = event_of(it->value(), scratch);
    work.through = e.position();
    work.entries.push_back(
        {layout::stream_key(e.stream(), e.version()), e.id(), {e.position(), e.version()}});
    uint64_t& v = versions[std::string(e.stream())];
    v = std::max(v, e.version());
    if (work.entries.size() == kWorkEvents) {
      if (Status s = flush(); !s.ok()) return s;
    }
  }
  if (!it->status().ok()) return from_rocks(it->status(), "index the log's tail");
  return work.entries.empty() ? Status::Ok() : flush();
}

// Which of the batch's event ids are stored already, and where: the writer's recent ids first,
// then one MultiGet on the ids column family (the indexer writes an entry there before `indexed`
// passes it, so every id is in one place or the other).
IdMap EventLog::Impl::find_ids(const std::vector<AppendRequest>& batch) {
  const uint64_t through = indexed.load(std::memory_order_acquire);
  while (!recent_order.empty() && recent_order.front().first <= through) {
    recent_ids.erase(recent_order.front().second);
    recent_order.pop_front();
  }
  IdMap found;
  std::vector<rocksdb::Slice> keys;
  for (const AppendRequest& r : batch) {
    for (const NewEvent& e : r.events) {
      if (e.fresh_id) continue;
      if (auto it = recent_ids.find(e.id); it != recent_ids.end()) {
        found.emplace(e.id, it->second);
      } else {
        keys.emplace_back(reinterpret_cast<const char*>(e.id.bytes.data()), e.id.bytes.size());
      }
    }
  }
  if (keys.empty()) return found;
  std::vector<rocksdb::PinnableSlice> positions(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  db->MultiGet(rocksdb::ReadOptions(), ids, keys.size(), keys.data(), positions.data(),
               statuses.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!statuses[i].ok()) continue;  // almost always: a new id
    EventId id;
    std::copy_n(keys[i].data(), 16, id.bytes.begin());
    StoredId stored{layout::get_be64(positions[i].ToStringView()), 0};
    rocksdb::PinnableSlice value;
    if (db->Get(rocksdb::ReadOptions(), events, layout::position_key(stored.position), &value)
            .ok()) {
      EnvelopeScratch scratch;
      stored.version = event_of(value, scratch).version();
    }
    found.emplace(id, stored);
  }
  return found;
}

// Makes a committed batch's index entries visible in memory and hands them to the indexer, in
// commit order, so the indexed-through mark only ever covers what RocksDB has.
void EventLog::Impl::publish(IndexWork&& work) {
  for (const IndexEntry& e : work.entries) {
    if (e.fresh_id) continue;
    recent_ids.emplace(e.id, e.stored);
    recent_order.emplace_back(e.stored.position, e.id);
  }
  {
    std::lock_guard lk(index_mu);
    index_queue.push_back(std::move(work));
  }
  index_cv.notify_one();
}

// Adds every stream head the column family holds to the map, keeping what is there already:
// the heads of the tail recover() derived, and of anything committed since, are newer.
void EventLog::Impl::load_heads() {
  // One sequential pass over a million keys: read ahead, and leave the block cache to what is
  // read again.
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;
  scan.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(scan, heads_cf));
  uint64_t estimate = 0;
  if (db->GetIntProperty(heads_cf, "rocksdb.estimate-num-keys", &estimate)) {
    std::unique_lock lk(heads_mu);
    heads.reserve(std::min<uint64_t>(estimate, uint64_t{1} << 26));
  }
  // In runs, so that the writer and readers are not kept out for the whole pass.
  std::vector<std::pair<std::string, uint64_t>> run;
  auto add_run = [&] {
    std::unique_lock lk(heads_mu);
    for (auto& [stream, version] : run) heads.try_emplace(std::move(stream), version);
    run.clear();
  };
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->key() == layout::kIndexedThroughKey) continue;
    run.emplace_back(it->key().ToString(), layout::get_be64(it->value().ToStringView()));
    if (run.size() == 65536) add_run();
  }
  add_run();
  {
    std::lock_guard lk(heads_loaded_mu);
    heads_status = from_rocks(it->status(), "load stream heads");
    heads_loaded.store(true, std::memory_order_release);
  }
  heads_loaded_cv.notify_all();
}

Status EventLog::Impl::wait_heads_loaded() const {
  if (!heads_loaded.load(std::memory_order_acquire)) {
    std::unique_lock lk(heads_loaded_mu);
    heads_loaded_cv.wait(lk, [&] { return heads_loaded.load(std::memory_order_acquire); });
  }
  return heads_status;
}

// Writes whatever batches are waiting in one WriteBatch without the WAL: the index is derived
// state, and writing it to the WAL too cost ~5% of the server's CPU a submit (the WAL's bytes
// and checksum). What a crash loses of it is what the column families had not flushed yet, which
// their marks tell the next open. Stops once the writer has stopped and the queue is empty.
void EventLog::Impl::run_indexer() {
  std::vector<IndexWork> works;
  for (;;) {
    {
      std::unique_lock lk(index_mu);
      index_cv.wait(lk, [&] { return !index_queue.empty() || index_stopping; });
      if (index_queue.empty()) return;
      works.assign(std::make_move_iterator(index_queue.begin()),
                   std::make_move_iterator(index_queue.end()));
      index_queue.clear();
    }
    // A failed write (the disk is failing) is retried: the entries stay served from memory, and
    // whatever is still unwritten at close is derived again at the next open.
    while (!write_index(works, false).ok()) {
      std::unique_lock lk(index_mu);
      if (index_cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return index_stopping; })) {
        return;
      }
    }
    uint64_t through = 0;
    for (const IndexWork& w : works) through = std::max(through, w.through);
    {
      std::lock_guard lk(indexed_mu);
      indexed.store(through, std::memory_order_release);
    }
    indexed_cv.notify_all();
    works.clear();
  }
}

Status EventLog::Impl::write_index(const std::vector<IndexWork>& works, bool logged) {
  rocksdb::WriteBatch wb;
  uint64_t through = 0;
  for (const IndexWork& w : works) {
    for (const IndexEntry& e : w.entries) {
      std::string position = layout::position_key(e.stored.position);
      wb.Put(streams, e.stream_key, position);
      if (e.fresh_id) continue;  // never looked up: see NewEvent::fresh_id
      wb.Put(ids,
             rocksdb::Slice(reinterpret_cast<const char*>(e.id.bytes.data()), e.id.bytes.size()),
             position);
    }
    for (const auto& [stream, version] : w.heads)
      wb.Put(heads_cf, stream, layout::position_key(version));
    through = std::max(through, w.through);
  }
  const std::string mark = layout::position_key(through);
  wb.Put(heads_cf, layout::kIndexedThroughKey, mark);
  wb.Put(streams, layout::kIndexedThroughKey, mark);
  wb.Put(ids, layout::kIdsIndexedThroughKey, mark);
  rocksdb::WriteOptions wo;
  wo.sync = logged;
  wo.disableWAL = !logged;
  return from_rocks(db->Write(wo, &wb), "write the stream index");
}

// Bounded: a stuck indexer (the disk failing) makes readers fail rather than hang.
bool EventLog::Impl::wait_indexed(uint64_t position) const {
  if (indexed.load(std::memory_order_acquire) >= position) return true;
  std::unique_lock lk(indexed_mu);
  return indexed_cv.wait_for(lk, std::chrono::seconds(10),
                             [&] { return indexed.load(std::memory_order_acquire) >= position; });
}

std::optional<uint64_t> EventLog::Impl::indexed_position(std::string_view stream_key) const {
  if (auto it = tail_streams.find(stream_key); it != tail_streams.end()) return it->second;
  std::string value;
  if (!db->Get(rocksdb::ReadOptions(), streams, stream_key, &value).ok()) return std::nullopt;
  return layout::get_be64(value);
}

Status EventLog::Impl::indexed_id(const EventId& id, uint64_t* position) const {
  if (auto it = tail_ids.find(id); it != tail_ids.end()) {
    *position = it->second;
    return Status::Ok();
  }
  rocksdb::PinnableSlice value;
  rocksdb::Slice key(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), ids, key, &value);
  if (s.IsNotFound()) return Status::NotFound("no event with id " + id.to_string());
  if (!s.ok()) return from_rocks(s, "read the id index");
  *position = layout::get_be64(value.ToStringView());
  return Status::Ok();
}

}  // namespace ticketd::storage
