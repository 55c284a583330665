// ticketctl bench pages: what fresh memory costs this machine, written the ways the programs' heap
// could take it (server/heap.h). Anonymous memory only; no data directory.
#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "tools/ticketctl/bench.h"

namespace ticketd::tools {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Timing {
  double prepare_ms = 0;  // the advice, populating
  double write_ms = 0;    // one byte written to every 4 KB page
};

enum class Way { kFaulted, kPopulated, kHugePopulated };

// Maps `bytes` fresh, on a huge page boundary, prepares them as `way` says, writes every page
// once, and unmaps them. False when the kernel refuses the mapping.
bool time_fresh(size_t bytes, Way way, Timing* t) {
  void* raw = ::mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return false;
  auto* p = reinterpret_cast<volatile char*>((reinterpret_cast<uintptr_t>(raw) + kHugePage - 1) &
                                             ~uintptr_t{kHugePage - 1});
  auto started = Clock::now();
  if (way == Way::kHugePopulated) ::madvise(const_cast<char*>(p), bytes, MADV_HUGEPAGE);
  if (way != Way::kFaulted) ::madvise(const_cast<char*>(p), bytes, MADV_POPULATE_WRITE);
  t->prepare_ms = ms_since(started);
  started = Clock::now();
  for (size_t i = 0; i < bytes; i += kPage) p[i] = 1;
  t->write_ms = ms_since(started);
  ::munmap(raw, bytes + kHugePage);
  return true;
}

}  // namespace

int bench_pages(const Args& args) {
  std::string error;
  auto mb = args.number("mb", 1024, &error);
  if (!mb || *mb == 0) {
    std::cerr << "ticketctl: " << (error.empty() ? "--mb must be positive" : error) << "\n";
    return 2;
  }
  const size_t bytes = static_cast<size_t>(*mb) << 20;
  std::string thp;
  std::getline(std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled"), thp);
  std::printf("mb=%llu\ntransparent_hugepage=%s\n", static_cast<unsigned long long>(*mb),
              thp.empty() ? "unknown" : thp.c_str());
  // The huge pages twice: the second run gets the pages the first freed, as a start after a stop
  // does; the first may get memory the machine has not used since it booted.
  const struct {
    const char* name;
    Way way;
  } runs[] = {{"faulted", Way::kFaulted},
              {"populated", Way::kPopulated},
              {"huge", Way::kHugePopulated},
              {"huge_again", Way::kHugePopulated}};
  for (const auto& run : runs) {
    Timing t;
    if (!time_fresh(bytes, run.way, &t)) {
      std::cerr << "ticketctl: no " << *mb << " MB of address space\n";
      return 1;
    }
    std::printf("%s_prepare_ms=%.0f\n%s_write_ms=%.0f\n%s_total_ms=%.0f\n", run.name, t.prepare_ms,
                run.name, t.write_ms, run.name, t.prepare_ms + t.write_ms);
  }
  return 0;
}

}  // namespace ticketd::tools
