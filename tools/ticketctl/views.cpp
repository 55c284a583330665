#include "tools/ticketctl/views.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <system_error>

#include "projections/read_model.h"
#include "projections/snapshots.h"
#include "storage/event_log.h"
#include "tools/ticketctl/raw_scan.h"

namespace ticketd::tools {
int open_log(const Args& args, bool read_only, std::unique_ptr<storage::EventLog>* log) {
  if (!args.has("data-dir")) {
    std::cerr << "ticketctl: --data-dir is required\n";
    return 2;
  }
  storage::EventLogOptions options;
  options.path = args.get("data-dir") + "/log";
  options.read_only = read_only;
  // Every verb works on a log a server wrote: a mistyped directory must not become a new, empty
  // log that a rebuild then reports on.
  if (std::error_code ec; !std::filesystem::exists(options.path + "/CURRENT", ec)) {
    std::cerr << "ticketctl: no event log in " << args.get("data-dir") << " (" << options.path
              << " holds none): start ticketd on that data directory first (--demo loads the "
                 "reference application)\n";
    return 1;
  }
  if (auto s = storage::EventLog::Open(options, log); !s.ok()) {
    std::cerr << "ticketctl: " << s.ToString()
              << (read_only ? "" : " (is a ticketd server running on this data directory?)")
              << "\n";
    return 1;
  }
  return 0;
}

int dump_views(const Args& args) {
  std::unique_ptr<storage::EventLog> log;
  if (int rc = open_log(args, true, &log)) return rc;
  projections::ReadModel model;
  std::string note = "replaying the log from the start (--replay)";
  uint64_t from = args.has("replay") ? 0 : projections::restore_snapshot(*log, model, &note);
  std::cerr << "ticketctl: " << note << "\n";
  if (auto s = projections::replay(*log, model, from); !s.ok()) {
    std::cerr << "ticketctl: " << s.ToString() << "\n";
    return 1;
  }
  std::string dump = model.dump();
  std::fwrite(dump.data(), 1, dump.size(), stdout);
  return 0;
}

int rebuild(const Args& args) {
  std::unique_ptr<storage::EventLog> log;
  if (int rc = open_log(args, false, &log)) return rc;
  projections::ReadModel model;
  auto started = std::chrono::steady_clock::now();
  // Every ticket's pending timers are computed once, after its last event, not at each batch.
  projections::ReplayStats shared;
  if (auto s = projections::replay(*log, model, 0, projections::ReadModel::Timers::kLater, &shared);
      !s.ok()) {
    std::cerr << "ticketctl: " << s.ToString() << "\n";
    return 1;
  }
  auto replayed = std::chrono::steady_clock::now();
  model.complete_schedule();
  auto finished = std::chrono::steady_clock::now();
  double seconds = std::chrono::duration<double>(finished - started).count();
  double schedule_seconds = std::chrono::duration<double>(finished - replayed).count();
  if (auto s = projections::save_snapshot(*log, model); !s.ok()) {
    std::cerr << "ticketctl: " << s.ToString() << "\n";
    return 1;
  }
  uint64_t events = log->last_position();
  double rate = seconds > 0 ? static_cast<double>(events) / seconds : 0.0;
  std::printf(
      "rebuilt events=%llu seconds=%.3f events_per_s=%.0f schedule_seconds=%.3f"
      " replay_seconds=%.3f reader_cpu_seconds=%.3f applier_cpu_seconds=%.3f batches=%llu"
      " batches_parsed_by_reader=%llu",
      static_cast<unsigned long long>(events), seconds, rate, schedule_seconds,
      std::chrono::duration<double>(replayed - started).count(), shared.reader_cpu_seconds,
      shared.applier_cpu_seconds, static_cast<unsigned long long>(shared.batches),
      static_cast<unsigned long long>(shared.batches_parsed_by_reader));
  // The baseline, in the same run and after the rebuild (so with the page cache as warm for it
  // as for the rebuild's second half): the same column family scanned raw, once the log is
  // closed (a read-only open beside a writer can race its compactions' file deletions).
  log.reset();
  RawScan raw = raw_scan_events(args.get("data-dir") + "/log");
  if (!raw.error.empty()) {
    std::printf("\n");
    std::cerr << "ticketctl: raw scan baseline failed: " << raw.error << "\n";
    return 1;
  }
  double raw_rate = raw.seconds > 0 ? static_cast<double>(raw.events) / raw.seconds : 0.0;
  std::printf(
      " raw_scan_events=%llu raw_scan_seconds=%.3f raw_scan_events_per_s=%.0f"
      " ratio_vs_raw_scan=%.3f\n",
      static_cast<unsigned long long>(raw.events), raw.seconds, raw_rate,
      raw_rate > 0 ? rate / raw_rate : 0.0);
  return 0;
}

}  // namespace ticketd::tools
