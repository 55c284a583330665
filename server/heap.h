#pragma once
// How the programs' heap takes memory from the kernel.
//
// The read model is built from nothing at every start and every rebuild: hundreds of MB to GBs of
// small objects on fresh pages. On these virtual machines a fresh 4 KB page is dear: writing 1 GB
// of them took 4.3 s page by page, and still 2.0 s after the kernel had populated them (the
// host's cost per page-table entry, which no advice avoids). A huge page has one entry per 2 MB.
// So tcmalloc's memory is taken in 2 MB-aligned reservations advised MADV_HUGEPAGE, and each
// region it carves is populated at once (MADV_POPULATE_WRITE, Linux 5.14) rather than faulted in
// page by page. Where huge pages have been used on the machine before (a start after a stop, a
// rebuild after the server ran), a rebuild runs 1.7x as fast as on populated 4 KB pages and a
// start from a 1M-ticket snapshot takes 6 s rather than 10; memory never used since the machine
// booted costs the host more on its first use as huge pages (that rebuild was 15% slower).
// Resident memory grows by under 1%, and by the 32 MB populated ahead. The figures: BENCHMARKS.md,
// sessions 29 and 30. The host takes back memory the machine has left free for a few seconds
// (virtio-balloon's free page reporting, in 2 MB blocks), so a page freed long ago is as dear as
// one never used.
//
// Where the kernel gives no huge pages (transparent_hugepage "never"), regions are only
// populated; where it refuses the advice (an older kernel), pages fault in as before. A build
// without tcmalloc (the sanitizers') leaves the heap alone.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace ticketd::server {

struct HugePageRegionsOptions {
  // Bytes reserved at a time, rounded up to huge pages. Address space is cheap; memory is not: a
  // reservation's last huge page is resident whole once any of it is used, so fewer, larger
  // reservations waste less (at most 2 MB each, under 1%). Smaller only in tests.
  size_t reservation = size_t{256} << 20;
  // Bytes past the last region taken that a helper thread populates before they are asked for,
  // so that the thread growing the heap finds its pages ready. A start decodes the snapshot's
  // tickets on one thread and inserts them on another, which waited half the time; clearing
  // fresh pages was two thirds of the decoding thread's time (BENCHMARKS.md, session 30). Up to
  // this much is resident and not yet used. 0: no helper; each region is populated when taken.
  size_t populate_ahead = size_t{32} << 20;
};

// Regions of memory cut in order from 2 MB-aligned reservations advised MADV_HUGEPAGE, each
// populated by the time it is taken. What tcmalloc grows its heap by (use_huge_page_heap); on its
// own for tests. take() is for one caller at a time: tcmalloc calls it under its page heap lock,
// which a thread growing the heap so holds while it populates what the helper has not (about a
// MB at a time); past a start, growth is rare. It never allocates, nor waits while the helper
// populates.
class HugePageRegions {
 public:
  static constexpr uintptr_t kHugePage = uintptr_t{2} << 20;

  explicit HugePageRegions(HugePageRegionsOptions options = {});
  ~HugePageRegions();  // stops the helper; the regions stay mapped
  HugePageRegions(const HugePageRegions&) = delete;
  HugePageRegions& operator=(const HugePageRegions&) = delete;

  // At least `size` bytes (rounded up to whole 4 KB pages and to `alignment`, a power of two),
  // aligned to `alignment`, readable and writable; *actual_size (if not null) is how many. Null
  // when the kernel gives no address space. Regions are never given back: the caller releases
  // what it no longer needs with madvise inside them.
  void* take(size_t size, size_t alignment, size_t* actual_size);

  size_t reservations() const { return reservations_; }
  // The end of what the helper has populated in the current reservation (0: nothing yet).
  uintptr_t populated_ahead_to() const;

 private:
  struct Helper;

  bool reserve(size_t size);

  const HugePageRegionsOptions options_;
  uintptr_t next_ = 0;  // what is left of the current reservation: [next_, end_)
  uintptr_t end_ = 0;
  size_t reservations_ = 0;
  std::unique_ptr<Helper> helper_;  // null without populate_ahead
};

// Call once, first thing in main(), before other threads start.
void use_huge_page_heap();

}  // namespace ticketd::server
