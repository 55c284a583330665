#include "server/heap.h"

#ifndef TICKETD_WITHOUT_TCMALLOC
#include <gperftools/malloc_extension.h>

namespace ticketd::server {
namespace {

// tcmalloc's system allocator: its heap grows by huge-page regions, or by what it took before
// (sbrk, mmap) where the kernel gives no address space for a reservation.
class HugePageSysAllocator : public SysAllocator {
 public:
  explicit HugePageSysAllocator(SysAllocator* fallback) : fallback_(fallback) {}

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    if (void* region = regions_.take(size, alignment, actual_size)) return region;
    return fallback_->Alloc(size, actual_size, alignment);
  }

 private:
  HugePageRegions regions_;
  SysAllocator* fallback_;
};

}  // namespace

void use_huge_page_heap() {
  MallocExtension* tcmalloc = MallocExtension::instance();
  // Never destroyed: threads may still grow the heap while the program exits.
  static auto* huge = new HugePageSysAllocator(tcmalloc->GetSystemAllocator());
  tcmalloc->SetSystemAllocator(huge);
}

}  // namespace ticketd::server

#else

namespace ticketd::server {
void use_huge_page_heap() {}
}  // namespace ticketd::server

#endif
