// ticketctl bench append: the log's append throughput against the raw RocksDB ceiling and the
// PostgreSQL peer, all measured in one run.
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <mutex>
#include <random>

#include "storage/event_log.h"
#include "tools/bench_peer.h"
#include "tools/ticketctl/bench.h"

namespace ticketd::tools {
namespace {

using Clock = std::chrono::steady_clock;

// The same event the PostgreSQL peer inserts.
constexpr char kPayload[] =
    R"({"form":"service_ticket","fields":{"customer_name":"华东精密机械有限公司","problem_type":"功能故障","channel":"电话","description":"打印机每打印第二页就卡纸,需要工程师上门检修。","priority":"中"}})";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

uint64_t percentile(std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

}  // namespace

int bench_append(const Args& args) {
  std::string error;
  auto producers = args.number("producers", 64, &error);
  auto total = producers ? args.number("events", 200000, &error) : std::nullopt;
  auto raw_batch = total ? args.number("raw-batch", 1000, &error) : std::nullopt;
  auto prefill = raw_batch ? args.number("prefill-wal", 1, &error) : std::nullopt;
  auto direct = prefill ? args.number("direct-wal", 1, &error) : std::nullopt;
  if (!producers || !total || !raw_batch || !prefill || !direct) {
    std::cerr << "ticketctl: " << error << "\n";
    return 2;
  }
  if (!args.has("data-dir") || *producers == 0 || *total == 0 || *raw_batch == 0) {
    std::cerr << "ticketctl: bench append needs --data-dir and positive counts\n";
    return 2;
  }
  namespace fs = std::filesystem;
  fs::path root = fs::path(args.get("data-dir")) / ("bench-" + std::to_string(getpid()));
  fs::create_directories(root);

  std::unique_ptr<storage::EventLog> log;
  storage::EventLogOptions options;
  options.path = (root / "log").string();
  options.prefill_wal = *prefill != 0;
  options.direct_wal = *direct != 0;
  if (auto s = storage::EventLog::Open(options, &log); !s.ok()) {
    std::cerr << "ticketctl: " << s.ToString() << "\n";
    return 1;
  }

  // Each producer submits its share of single-event commands, each to a new ticket stream, and
  // sends the next only when the previous one is durable: 64 producers = 64 appends in flight.
  // Producers are callback chains, as the server's sessions are, not threads: a thread per producer
  // would measure the scheduler waking 64 threads per sync rather than the log.
  const uint64_t per_producer = *total / *producers;
  const uint64_t events = per_producer * *producers;
  struct Producer {
    uint64_t index = 0;
    uint64_t sent = 0;
    std::mt19937_64 rng;
    std::vector<uint32_t> latencies;
    Clock::time_point t0;
  };
  std::vector<Producer> state(*producers);
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> finished{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::function<void(Producer&)> send = [&](Producer& p) {
    storage::NewEvent e;
    e.id = EventId::random_v4(p.rng(), p.rng());
    e.fresh_id = true;  // as the server's own ids are: drawn for this append, never stored
    e.type = "TicketSubmitted";
    e.payload = kPayload;
    e.actor = "zhang";
    e.correlation_id = "c-1";
    std::vector<storage::NewEvent> batch;
    batch.push_back(std::move(e));
    p.t0 = Clock::now();
    log->append_async(
        "ticket-" + std::to_string(p.index) + "-" + std::to_string(p.sent),
        storage::ExpectedVersion::NoStream(), std::move(batch), [&](storage::AppendResult r) {
          p.latencies.push_back(static_cast<uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - p.t0).count()));
          if (!r.status.ok()) failures.fetch_add(1);
          if (++p.sent < per_producer) return send(p);
          if (finished.fetch_add(1) + 1 == state.size()) {
            std::lock_guard lk(done_mu);
            done_cv.notify_all();
          }
        });
  };
  auto start = Clock::now();
  for (uint64_t i = 0; i < *producers; ++i) {
    state[i].index = i;
    state[i].rng.seed(i * 7919 + 17);
    state[i].latencies.reserve(per_producer);
    send(state[i]);
  }
  {
    std::unique_lock lk(done_mu);
    done_cv.wait(lk, [&] { return finished.load() == state.size(); });
  }
  double log_seconds = seconds_since(start);
  std::vector<uint32_t> all;
  all.reserve(events);
  for (auto& p : state) all.insert(all.end(), p.latencies.begin(), p.latencies.end());
  std::sort(all.begin(), all.end());

  // The raw ceiling: the very envelope bytes the log stored, written to a bare RocksDB in batches
  // (of 1000 unless --raw-batch says otherwise) with sync=true: no queue, checks, indexes or
  // hashing.
  const storage::EventLog::Stats log_stats = log->stats();
  std::vector<std::string> envelopes;
  envelopes.reserve(events);
  log->read_all(0, SIZE_MAX, [&](const storage::RecordedEvent& e) {
    envelopes.emplace_back(e.stored_bytes());
    return true;
  });
  log.reset();

  rocksdb::Options raw_options;
  raw_options.create_if_missing = true;
  rocksdb::DB* raw_db = nullptr;
  if (auto s = rocksdb::DB::Open(raw_options, (root / "raw").string(), &raw_db); !s.ok()) {
    std::cerr << "ticketctl: raw baseline: " << s.ToString() << "\n";
    return 1;
  }
  std::unique_ptr<rocksdb::DB> raw(raw_db);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  auto raw_start = Clock::now();
  for (size_t i = 0; i < envelopes.size(); i += *raw_batch) {
    rocksdb::WriteBatch wb;
    for (size_t j = i; j < std::min<size_t>(envelopes.size(), i + *raw_batch); ++j) {
      char key[8];
      for (int k = 0; k < 8; ++k) key[k] = static_cast<char>(j >> (56 - 8 * k));
      wb.Put(rocksdb::Slice(key, 8), envelopes[j]);
    }
    if (auto s = raw->Write(sync, &wb); !s.ok()) {
      std::cerr << "ticketctl: raw baseline: " << s.ToString() << "\n";
      return 1;
    }
  }
  double raw_seconds = seconds_since(raw_start);
  raw.reset();
  fs::remove_all(root);

  double rate = static_cast<double>(events) / log_seconds;
  double raw_rate = static_cast<double>(envelopes.size()) / raw_seconds;
  std::printf("events=%llu\nproducers=%llu\nfailures=%llu\n", (unsigned long long)events,
              (unsigned long long)*producers, (unsigned long long)failures.load());
  std::printf("appends_per_s=%.0f\np50_us=%llu\np99_us=%llu\n", rate,
              (unsigned long long)percentile(all, 0.50), (unsigned long long)percentile(all, 0.99));
  // How the group commit behaved: events per synced batch, the time each batch spent in
  // RocksDB's synced write (WAL append, fsync, memtable insert), and the rest of a batch's cycle
  // (checks, envelopes, hashing, completing callers, and the producers sending again).
  double sync_bound = 0;
  if (log_stats.batches > 0) {
    double sync_us = static_cast<double>(log_stats.sync_micros) / log_stats.batches;
    std::printf("mean_batch_events=%.1f\nmean_sync_us=%.0f\nmean_rest_of_cycle_us=%.0f\n",
                static_cast<double>(log_stats.events) / log_stats.batches, sync_us,
                log_seconds * 1e6 / log_stats.batches - sync_us);
    // With one append in flight per producer no batch holds more than `producers` events: this
    // disk's synced write alone caps the rate there, whatever the rest of the cycle costs.
    if (sync_us > 0) sync_bound = static_cast<double>(*producers) * 1e6 / sync_us;
  }
  std::printf("raw_batch=%llu\nraw_rocksdb_batched_per_s=%.0f\nratio_vs_raw=%.3f\n",
              static_cast<unsigned long long>(*raw_batch), raw_rate, rate / raw_rate);
  if (sync_bound > 0) {
    std::printf("sync_bound_appends_per_s=%.0f\nsync_bound_ratio_vs_raw=%.3f\n", sync_bound,
                sync_bound / raw_rate);
  }
  if (args.has("peer")) {
    std::fflush(stdout);
    double peer = run_postgres_peer();
    std::printf("peer_postgres_appends_per_s=%.0f\n", peer);
    if (peer > 0) std::printf("ratio_vs_postgres=%.2f\n", rate / peer);
  }
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace ticketd::tools
