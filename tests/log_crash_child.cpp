// Child process of the crash test: appends from many threads until it is killed, and writes the id
// of every event it has seen acknowledged to stdout, one line each, after the acknowledgement.
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "storage/event_log.h"

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  ticketd::storage::EventLogOptions options;
  options.path = argv[1];
  std::unique_ptr<ticketd::storage::EventLog> log;
  if (!ticketd::storage::EventLog::Open(options, &log).ok()) return 1;
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
