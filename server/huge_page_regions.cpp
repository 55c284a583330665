#include "server/heap.h"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace ticketd::server {
namespace {

constexpr uintptr_t kPage = 4096;
// What the helper populates at a time: short enough that it soon sees a new reservation.
constexpr uintptr_t kHelperStep = HugePageRegions::kHugePage;

uintptr_t round_up(uintptr_t v, uintptr_t to) { return (v + to - 1) & ~(to - 1); }

}  // namespace

// The helper thread. take() tells it, under `mu`, how far to populate in which reservation; it
// populates a step at a time with `mu` released, so take() never waits for it.
struct HugePageRegions::Helper {
  std::mutex mu;
  std::condition_variable wake;
  size_t reservation = 0;  // which reservation `done` and `target` are in (reservations_)
  uintptr_t done = 0;      // populated up to here, by the helper or by take() itself
  uintptr_t target = 0;    // to populate up to here
  bool stop = false;
  std::thread thread;

  // Started with every signal blocked: the helper may start before main() blocks the ones the
  // process takes on a thread of its own (ProcessSignals), and must never take one itself.
  Helper() {
    sigset_t all, before;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &before);
    thread = std::thread([this] { run(); });
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
  }

  void run() {
    ::pthread_setname_np(::pthread_self(), "heap-populate");
    std::unique_lock lk(mu);
    for (;;) {
      wake.wait(lk, [&] { return stop || done < target; });
      if (stop) return;
      const size_t in = reservation;
      const uintptr_t from = done, to = std::min(target, from + kHelperStep);
      lk.unlock();
      const bool refused =
          ::madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE) != 0 &&
          errno == EINVAL;
      lk.lock();
      // A kernel without MADV_POPULATE_WRITE (before 5.14): nothing to help with.
      if (refused) return;
      if (in == reservation && to > done) done = to;
    }
  }

  // The caller took [from, to) of reservation `in`, and wants [to, ahead_to) populated next.
  // Whether the helper has populated [from, to) already; if not, the caller does it now. When
  // `in` is a new reservation, *left_done is how far the last one was populated.
  bool took(size_t in, uintptr_t from, uintptr_t to, uintptr_t ahead_to, uintptr_t* left_done) {
    std::lock_guard lk(mu);
    if (in != reservation) {
      *left_done = done;
      reservation = in;
      done = target = from;
    }
    const bool ready = done >= to;
    done = std::max(done, to);
    if (ahead_to > target) {
      target = ahead_to;
      wake.notify_one();
    }
    return ready;
  }
};

HugePageRegions::HugePageRegions(HugePageRegionsOptions options)
    : options_{round_up(std::max<size_t>(options.reservation, 1), kHugePage),
               round_up(options.populate_ahead, kPage)} {
  if (options_.populate_ahead > 0) helper_ = std::make_unique<Helper>();
}

HugePageRegions::~HugePageRegions() {
  if (helper_ == nullptr) return;
  {
    std::lock_guard lk(helper_->mu);
    helper_->stop = true;
  }
  helper_->wake.notify_one();
  helper_->thread.join();
}

uintptr_t HugePageRegions::populated_ahead_to() const {
  if (helper_ == nullptr) return 0;
  std::lock_guard lk(helper_->mu);
  return helper_->done;
}

void* HugePageRegions::take(size_t size, size_t alignment, size_t* actual_size) {
  alignment = std::max<size_t>(alignment, kPage);
  size = round_up(std::max<size_t>(size, 1), alignment);
  uintptr_t region = round_up(next_, alignment);
  uintptr_t left_from = 0;  // where the unused rest of a reservation left for a new one starts
  if (next_ == 0 || region + size > end_) {
    left_from = next_;
    // Reservations start on a huge page: room for a coarser alignment is asked for on top.
    if (!reserve(size + (alignment > kHugePage ? alignment : 0))) return nullptr;
    region = round_up(next_, alignment);
  }
  next_ = region + size;
  if (actual_size != nullptr) *actual_size = size;
  uintptr_t left_done = 0;
  const bool ready =
      helper_ != nullptr &&
      helper_->took(reservations_, region, next_,
                    std::min(end_, next_ + static_cast<uintptr_t>(options_.populate_ahead)),
                    &left_done);
  // What the helper populated of the reservation left behind is never used: given back. (A step
  // of it the helper is still populating stays resident: at most kHelperStep.)
  if (left_from != 0 && left_done > left_from) {
    ::madvise(reinterpret_cast<void*>(left_from), left_done - left_from, MADV_DONTNEED);
  }
  // Advice only: where it fails (an older kernel, no memory for page tables now), the pages
  // fault in when first touched, as without it.
  if (!ready) ::madvise(reinterpret_cast<void*>(region), size, MADV_POPULATE_WRITE);
  return reinterpret_cast<void*>(region);
}

bool HugePageRegions::reserve(size_t size) {
  size_t length = std::max<size_t>(options_.reservation, round_up(size, kHugePage));
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
