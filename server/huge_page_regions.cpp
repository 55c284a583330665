#include "server/heap.h"

#include <sys/mman.h>

#include <algorithm>

namespace ticketd::server {
namespace {

constexpr uintptr_t kPage = 4096;

uintptr_t round_up(uintptr_t v, uintptr_t to) { return (v + to - 1) & ~(to - 1); }

}  // namespace

HugePageRegions::HugePageRegions(size_t reservation)
    : reservation_(round_up(std::max<size_t>(reservation, 1), kHugePage)) {}

void* HugePageRegions::take(size_t size, size_t alignment, size_t* actual_size) {
  alignment = std::max<size_t>(alignment, kPage);
  size = round_up(std::max<size_t>(size, 1), alignment);
  uintptr_t region = round_up(next_, alignment);
  if (next_ == 0 || region + size > end_) {
    // Reservations start on a huge page: room for a coarser alignment is asked for on top.
    if (!reserve(size + (alignment > kHugePage ? alignment : 0))) return nullptr;
    region = round_up(next_, alignment);
  }
  next_ = region + size;
  if (actual_size != nullptr) *actual_size = size;
  // Advice only: where it fails (an older kernel, no memory for page tables now), the pages
  // fault in when first touched, as without it.
  ::madvise(reinterpret_cast<void*>(region), size, MADV_POPULATE_WRITE);
  return reinterpret_cast<void*>(region);
}

bool HugePageRegions::reserve(size_t size) {
  size_t length = std::max<size_t>(reservation_, round_up(size, kHugePage));
  // One huge page more than needed, to start on a huge page boundary; NORESERVE because the
  // untouched tail of a reservation should not count against overcommit.
  void* raw = ::mmap(nullptr, length + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return false;
  uintptr_t raw_start = reinterpret_cast<uintptr_t>(raw);
  uintptr_t raw_end = raw_start + length + kHugePage;
  uintptr_t start = round_up(raw_start, kHugePage);
  if (start > raw_start) ::munmap(raw, start - raw_start);
  if (raw_end > start + length) {
    ::munmap(reinterpret_cast<void*>(start + length), raw_end - (start + length));
  }
  // Where transparent huge pages are "never", the reservation is plain 4 KB pages.
  ::madvise(reinterpret_cast<void*>(start), length, MADV_HUGEPAGE);
  next_ = start;
  end_ = start + length;
  ++reservations_;
  return true;
}

}  // namespace ticketd::server
