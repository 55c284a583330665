#pragma once
// The PostgreSQL peer of the benchmarks (../shared/bench/pg-event-store-peer.sh), run in the same
// process's run so every figure comes with its baseline.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

namespace ticketd::tools {

// Runs the peer script and returns its appends/s, or 0 when it could not run.
inline double run_postgres_peer() {
  std::vector<std::string> candidates = {
      "../shared/bench/pg-event-store-peer.sh",
      std::string(TICKETD_SOURCE_DIR) + "/../shared/bench/pg-event-store-peer.sh"};
  for (const auto& script : candidates) {
    if (!std::filesystem::exists(script)) continue;
    std::string cmd = "bash '" + script + "' 2>&1";
    FILE* pipe = popen(cmd.c_str(), "r");
    if (!pipe) return 0;
    char line[512];
    double rate = 0;
    while (fgets(line, sizeof line, pipe)) {
      std::string l(line);
      if (l.rfind("peer_postgres_appends_per_s=", 0) == 0)
        rate = std::stod(l.substr(28));
      else
        std::cerr << "peer: " << l;
    }
    int status = pclose(pipe);
    // The script prints its rate last; without it the reason is in its exit status (pgbench's
    // own output is not shown: a failed run must not pass for a rate of zero in silence).
    if (rate <= 0) {
      std::cerr << "peer: " << script << " printed no rate (exit status "
                << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "); no peer figure\n";
    }
    return rate;
  }
  std::cerr << "peer: pg-event-store-peer.sh not found\n";
  return 0;
}

}  // namespace ticketd::tools
