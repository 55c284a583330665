#pragma once
// Read-model snapshots in the log's snapshot store, with the projection's checkpoint beside them.
// A start restores the latest usable snapshot and replays only the log's tail after it.
#include <string>

#include "projections/read_model.h"
#include "storage/event_log.h"

namespace ticketd::projections {

inline constexpr char kReadModelName[] = "read_model";

// Restores `model` from the stored snapshot when there is a usable one and returns the position it
// holds (0: none, replay everything). `note` says what happened, for the log. `timers` as for
// ReadModel::restore.
uint64_t restore_snapshot(const storage::EventLog& log, ReadModel& model, std::string* note,
                          ReadModel::Timers timers = ReadModel::Timers::kNow);
// Saves the model's snapshot and checkpoint at its applied position.
storage::Status save_snapshot(storage::EventLog& log, const ReadModel& model);

// When a running server saves its read model again. A save costs in proportion to the whole
// model (about two seconds for a million tickets), so saving after a fixed number of events took
// a share of the time that grew with the model: at a million tickets under a steady load, a save
// every 10 s, a fifth of a core. Saves are spaced so that they take a bounded share instead.
struct SnapshotPolicy {
  // Fewer events since the last save than this are not worth a save: a start replays them in
  // a twentieth of a second.
  uint64_t min_events = 50000;
  // At most this share of one core's time goes to saving: after a save that took d seconds the
  // next waits until 1/max_share × d seconds have passed since it began.
  double max_share = 0.05;
};
// Whether to save now, `events` and `seconds` after the last save began, which took
// `last_save_seconds` (0 when there was none).
bool snapshot_due(const SnapshotPolicy& policy, uint64_t events, double seconds,
                  double last_save_seconds);
// How a replay's two threads shared its work, for benchmarks: whether the one that reads the log
// or the one that applies it is the wall time, and how the parsing fell between them.
struct ReplayStats {
  uint64_t batches = 0;
  uint64_t batches_parsed_by_reader = 0;  // the others by the applying thread
  double reader_cpu_seconds = 0;
  double applier_cpu_seconds = 0;
};

// Applies every event after `after` synchronously (tools and start-up catch-up). With
// Timers::kLater the replayed tickets' pending timers are left out (ReadModel::set_timers) for
// the caller to complete_schedule(). `stats`, when given, is filled in.
storage::Status replay(const storage::EventLog& log, ReadModel& model, uint64_t after,
                       ReadModel::Timers timers = ReadModel::Timers::kNow,
                       ReplayStats* stats = nullptr);

}  // namespace ticketd::projections
