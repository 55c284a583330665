#pragma once
// The PostgreSQL peer of the benchmarks (../shared/bench/pg-event-store-peer.sh), run in the same
// process's run so every figure comes with its baseline.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace ticketd::tools {

// Runs the peer script once: its appends/s, or 0 (saying why on stderr) when it printed none.
inline double run_postgres_peer_once(const std::string& script) {
  std::string cmd = "bash '" + script + "' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return 0;
  char line[512];
  double rate = 0;
  while (fgets(line, sizeof line, pipe)) {
    std::string l(line);
    if (l.rfind("peer_postgres_appends_per_s=", 0) == 0 && l.size() > 29)
      rate = std::strtod(l.c_str() + 28, nullptr);
    else
      std::cerr << "peer: " << l;
  }
  int status = pclose(pipe);
  if (rate <= 0) {
    std::cerr << "peer: " << script << " printed no rate (exit status "
              << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << ")\n";
  }
  return rate;
}

// Runs the peer script and returns its appends/s, or 0 when it could not run. A run without a
// rate is tried again, up to three runs: the script draws each stream name at random from 1e9
// per client, so in about one run of four some pgbench client repeats one, hits the unique
// (stream, position) constraint and aborts, pgbench exits 2 and the script prints nothing.
inline double run_postgres_peer() {
  std::vector<std::string> candidates = {
      "../shared/bench/pg-event-store-peer.sh",
      std::string(TICKETD_SOURCE_DIR) + "/../shared/bench/pg-event-store-peer.sh"};
  for (const auto& script : candidates) {
    if (!std::filesystem::exists(script)) continue;
    for (int run = 1; run <= 3; ++run) {
      if (double rate = run_postgres_peer_once(script); rate > 0) return rate;
      if (run < 3) std::cerr << "peer: running it again\n";
    }
    std::cerr << "peer: no peer figure\n";
    return 0;
  }
  std::cerr << "peer: pg-event-store-peer.sh not found\n";
  return 0;
}

}  // namespace ticketd::tools
