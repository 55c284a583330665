#include "projections/snapshots.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <thread>
#include <vector>

#include "projections/hand_off.h"

namespace ticketd::projections {

uint64_t restore_snapshot(const storage::EventLog& log, ReadModel& model, std::string* note,
                          ReadModel::Timers timers) {
  auto started = std::chrono::steady_clock::now();
  std::unique_ptr<storage::SnapshotReader> reader;
  storage::Status s = log.open_snapshot(kReadModelName, &reader);
  if (s.code() == storage::Status::Code::kNotFound) {
    *note = "no snapshot; replaying the log from the start";
    return 0;
  }
  if (!s.ok()) {
    *note = "snapshot unreadable (" + s.ToString() + "); replaying the log from the start";
    return 0;
  }
  uint64_t position = reader->position();
  if (position > log.last_position()) {
    *note = "snapshot is ahead of the log; replaying the log from the start";
    return 0;
  }
  std::string error;
  if (!model.restore(*reader, &error, timers)) {
    *note = "snapshot not used (" + error + "); replaying the log from the start";
    return 0;
  }
  char figures[96];
  std::snprintf(figures, sizeof figures, " (%llu MiB in %llu pieces, %.2fs)",
                static_cast<unsigned long long>(reader->bytes_read() >> 20),
                static_cast<unsigned long long>(reader->pieces()),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  *note = "restored snapshot at position " + std::to_string(position) + figures;
  return position;
}

bool snapshot_due(const SnapshotPolicy& policy, uint64_t events, double seconds,
                  double last_save_seconds) {
  return events >= policy.min_events && seconds * policy.max_share >= last_save_seconds;
}

storage::Status save_snapshot(storage::EventLog& log, const ReadModel& model) {
  std::unique_ptr<storage::SnapshotWriter> writer;
  if (auto s = log.begin_snapshot(kReadModelName, &writer); !s.ok()) return s;
  uint64_t position = 0;
  if (auto s = model.snapshot(*writer, &position); !s.ok()) return s;
  if (auto s = writer->finish(position); !s.ok()) return s;
  return log.save_checkpoint(kReadModelName, position);
}

namespace {

// The CPU time of the calling thread.
double thread_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// A replay's batch as the reading thread leaves it: envelopes taken, the payloads the model reads
// copied out of the log's buffer end to end, to be parsed on whichever thread is free.
struct ReplayBatch {
  struct Payload {
    size_t event, offset, size;
  };
  std::vector<ParsedEvent> events;
  std::string payload_bytes;
  std::vector<Payload> payloads;

  void add(const storage::RecordedEvent& e) {
    ParsedEvent& p = events.emplace_back(e, ParsedEvent::Parse::kLater);
    if (!p.awaits_payload) return;
    const std::string_view bytes = e.payload();
    payloads.push_back({events.size() - 1, payload_bytes.size(), bytes.size()});
    payload_bytes.append(bytes);
  }
  void parse() {
    const std::string_view bytes = payload_bytes;
    for (const Payload& p : payloads) events[p.event].parse(bytes.substr(p.offset, p.size));
    payload_bytes = std::string();
    payloads = std::vector<Payload>();
  }
};

}  // namespace

storage::Status replay(const storage::EventLog& log, ReadModel& model, uint64_t after,
                       ReadModel::Timers timers, ReplayStats* stats) {
  // This thread applies while a helper reads the batches after it. Parsing them is shared: the
  // reader parses the oldest batch when more than one waits unparsed, and this thread parses the
  // one it needs next, or a later one, rather than wait. Reading and parsing take more CPU than
  // applying, and a reader that parsed every batch was a replay's whole wall time while this
  // thread waited a third of it. A batch is about as long as a ticket's events take to appear
  // together in the log (one command's, a group commit's) and short enough that a reader of the
  // model waits little for the lock.
  constexpr size_t kBatch = 1024, kBatchesAhead = 8, kUnparsedAhead = 1;
  const uint64_t end = log.last_position();
  SteppedHandOff<ReplayBatch> batches(kBatchesAhead, [](ReplayBatch& b) { b.parse(); });
  storage::Status status = storage::Status::Ok();
  ReplayStats counted;
  std::thread reader([&] {
    // One scan of the whole range: an iterator per batch would seek, and read and decompress
    // the block it starts in again, a thousand times per million events.
    ReplayBatch batch;
    batch.events.reserve(kBatch);
    storage::Status s =
        log.read_all(after, after < end ? end - after : 0, [&](const storage::RecordedEvent& e) {
          batch.add(e);
          if (batch.events.size() == kBatch) {
            batches.put(std::move(batch));
            ++counted.batches;
            batch = ReplayBatch();
            batch.events.reserve(kBatch);
            while (batches.unstepped() > kUnparsedAhead && batches.step_oldest()) {
              ++counted.batches_parsed_by_reader;
            }
          }
          return true;
        });
    if (!s.ok()) status = s;
    if (!batch.events.empty()) {
      batches.put(std::move(batch));
      ++counted.batches;
    }
    batches.close();
    counted.reader_cpu_seconds = thread_cpu_seconds();
  });
  const double applier_cpu_before = thread_cpu_seconds();
  model.set_timers(timers);
  while (std::optional<ReplayBatch> batch = batches.take()) {
    model.apply(std::move(batch->events));
  }
  model.set_timers(ReadModel::Timers::kNow);
  reader.join();
  counted.applier_cpu_seconds = thread_cpu_seconds() - applier_cpu_before;
  if (stats) *stats = counted;
  return status;
}

}  // namespace ticketd::projections
