#pragma once
// The baseline for `ticketctl rebuild`: the events column family read straight from RocksDB, every
// value's bytes touched and nothing decoded. A rebuild cannot read the log faster than this.
#include <cstdint>
#include <string>

namespace ticketd::tools {

struct RawScan {
  uint64_t events = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  unsigned char fold = 0;  // a byte of every cache line of every value, xor'd: the reads happen
  std::string error;  // empty when the scan worked
};

// Opens the log's database at `path` read-only (beside any writer) and scans its events.
RawScan raw_scan_events(const std::string& path);

}  // namespace ticketd::tools
