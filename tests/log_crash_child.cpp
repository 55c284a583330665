// Child process of the crash tests, run until it is killed:
//   log_crash_child PATH            appends from many threads and writes the id of every event
//                                   acknowledged to stdout, one line each, after the
//                                   acknowledgement;
//   log_crash_child PATH snapshots  saves snapshot after snapshot (see snapshot_piece below) and
//                                   writes the number of each save once finish() has returned.
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/event_log.h"
#include "storage/snapshot_store.h"
#include "tests/snapshot_piece.h"

namespace {

int save_snapshots(ticketd::storage::EventLog& log) {
  // Numbering goes on from the save a previous run left, so every save has its own number.
  uint64_t first = 1;
  std::unique_ptr<ticketd::storage::SnapshotReader> previous;
  if (log.open_snapshot("views", &previous).ok()) first = previous->position() + 1;
  for (uint64_t save = first;; ++save) {
    std::unique_ptr<ticketd::storage::SnapshotWriter> writer;
    if (!log.begin_snapshot("views", &writer).ok()) return 1;
    uint64_t pieces = ticketd::testing::snapshot_pieces(save);
    for (uint64_t i = 0; i < pieces; ++i) {
      if (!writer->add(ticketd::testing::snapshot_piece(save, i)).ok()) return 1;
    }
    if (!writer->finish(save).ok()) return 1;
    std::string line = std::to_string(save) + "\n";
    if (write(1, line.data(), line.size()) < 0) return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  ticketd::storage::EventLogOptions options;
  options.path = argv[1];
  std::unique_ptr<ticketd::storage::EventLog> log;
  if (!ticketd::storage::EventLog::Open(options, &log).ok()) return 1;
  if (argc > 2 && std::string(argv[2]) == "snapshots") return save_snapshots(*log);
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(std::random_device{}() + t);
      for (;;) {
        std::vector<ticketd::storage::NewEvent> events(1 + rng() % 3);
        for (auto& e : events) {
          e.id = ticketd::EventId::random_v4(rng(), rng());
          e.type = "TicketSubmitted";
          e.payload = R"({"customer_name":"华东精密机械"})";
        }
        std::string stream = "ticket-" + std::to_string(rng() % 50);
        auto r = log->append(stream, ticketd::storage::ExpectedVersion::Any(), events);
        if (!r.status.ok()) continue;
        for (auto& e : events) {
          std::string line = e.id.to_string() + "\n";
          if (write(1, line.data(), line.size()) < 0) return;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
}
