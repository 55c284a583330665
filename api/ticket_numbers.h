#pragma once
// Ticket numbers (T-000001, …) for submissions, without gaps: every number a customer or an
// auditor sees belongs to a ticket. A submission takes its number before it is decided (its events
// carry the id); one that is refused, or never written, gives the number back, and the next
// submission takes the smallest number given back before a new one.
#include <cstdint>
#include <mutex>
#include <set>

namespace ticketd::api {

class TicketNumbers {
 public:
  // `floor`: the first number the log has not used (the read model's highest plus one).
  uint64_t take(uint64_t floor) {
    std::lock_guard lk(mu_);
    if (!returned_.empty()) {
      uint64_t n = *returned_.begin();
      returned_.erase(returned_.begin());
      return n;
    }
    if (next_ < floor) next_ = floor;
    return next_++;
  }

  void give_back(uint64_t n) {
    std::lock_guard lk(mu_);
    returned_.insert(n);
  }

 private:
  std::mutex mu_;
  uint64_t next_ = 0;
  std::set<uint64_t> returned_;
};

}  // namespace ticketd::api
