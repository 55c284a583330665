#include "projections/snapshots.h"

#include <chrono>
#include <cstdio>

namespace ticketd::projections {

uint64_t restore_snapshot(const storage::EventLog& log, ReadModel& model, std::string* note) {
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  auto started = Clock::now();
  uint64_t position = 0;
  std::string bytes;
  storage::Status s = log.load_snapshot(kReadModelName, &position, &bytes);
  double load_s = seconds_since(started);
  if (s.code() == storage::Status::Code::kNotFound) {
    *note = "no snapshot; replaying the log from the start";
    return 0;
  }
  if (!s.ok()) {
    *note = "snapshot unreadable (" + s.ToString() + "); replaying the log from the start";
    return 0;
  }
  if (position > log.last_position()) {
    *note = "snapshot is ahead of the log; replaying the log from the start";
    return 0;
  }
  std::string error;
  auto restoring = Clock::now();
  if (!model.restore(bytes, &error)) {
    *note = "snapshot not used (" + error + "); replaying the log from the start";
    return 0;
  }
  char figures[96];
  std::snprintf(figures, sizeof figures, " (%zu MiB read in %.2fs, restored in %.2fs)",
                bytes.size() >> 20, load_s, seconds_since(restoring));
  *note = "restored snapshot at position " + std::to_string(position) + figures;
  return position;
}

storage::Status save_snapshot(storage::EventLog& log, const ReadModel& model) {
  uint64_t position = 0;
  std::string bytes = model.snapshot(&position);
  if (auto s = log.save_snapshot(kReadModelName, position, bytes); !s.ok()) return s;
  return log.save_checkpoint(kReadModelName, position);
}

storage::Status replay(const storage::EventLog& log, ReadModel& model, uint64_t after) {
  uint64_t end = log.last_position();
  while (after < end) {
    storage::Status s = log.read_all(after, 65536, [&](const storage::RecordedEvent& e) {
      model.apply(e);
      after = e.position();
      return true;
    });
    if (!s.ok()) return s;
  }
  return storage::Status::Ok();
}

}  // namespace ticketd::projections
