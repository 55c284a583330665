#pragma once
// The heap's growth faulted in one system call per region instead of one page fault per page.
//
// The read model is built from nothing at every start and every rebuild: hundreds of MB to GBs of
// small objects, each fresh 4 KB page first written when tcmalloc carves it into objects. On these
// virtual machines a page fault is dear: writing 1 GB of fresh pages took 4.3 s page by page, and
// 0.2 s + 2.0 s populated first (the rest is the host's own first touch, which no advice avoids).
// So each region tcmalloc takes from the kernel is populated writable at once
// (MADV_POPULATE_WRITE, Linux 5.14). A region is taken only when tcmalloc is about to carve it, so
// resident memory stays what it was. BENCHMARKS.md (session 29) has the rebuild, start and submit
// figures. On an older kernel the advice is refused and pages fault in as before; a build without
// tcmalloc (the sanitizers') leaves the heap alone.
//
// Header-only, for the two programs' main() (ticketd and ticketctl), which call it first thing.
#ifndef TICKETD_WITHOUT_TCMALLOC
#include <gperftools/malloc_extension.h>
#include <sys/mman.h>

#include <cstdint>
#endif

namespace ticketd::server {

#ifndef TICKETD_WITHOUT_TCMALLOC
class PopulatingSysAllocator : public SysAllocator {
 public:
  explicit PopulatingSysAllocator(SysAllocator* next) : next_(next) {}

  void* Alloc(size_t size, size_t* actual_size, size_t alignment) override {
    void* region = next_->Alloc(size, actual_size, alignment);
    if (region == nullptr) return nullptr;
    constexpr uintptr_t kPage = 4096;
    uintptr_t begin = reinterpret_cast<uintptr_t>(region);
    uintptr_t end = begin + (actual_size != nullptr ? *actual_size : size);
    begin = (begin + kPage - 1) & ~(kPage - 1);
    end &= ~(kPage - 1);
    // Advice only: where it fails (no memory for page tables now, an older kernel), the pages
    // fault in one by one when first touched, as without it.
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
    return region;
  }

 private:
  SysAllocator* next_;
};
#endif

// Call once, before other threads start.
inline void populate_heap_growth() {
#ifndef TICKETD_WITHOUT_TCMALLOC
  MallocExtension* tcmalloc = MallocExtension::instance();
  static PopulatingSysAllocator populating(tcmalloc->GetSystemAllocator());
  tcmalloc->SetSystemAllocator(&populating);
#endif
}

}  // namespace ticketd::server
