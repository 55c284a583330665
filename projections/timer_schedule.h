#pragma once
// The read model's pending timers (idle rules, SLA warnings and breaches) in due order, replaced
// a ticket at a time as its state changes.
//
// A million open tickets carry one or two timers each, so the entries are kept small: a ticket is
// its 8-byte key in the read model (TicketKey, read_model.h), timer names (a few dozen distinct
// ones) are interned, and a ticket's entries are found through iterators into the due-ordered set
// instead of through copies of them.
#include <absl/container/btree_set.h>

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "domain/ticket.h"

namespace ticketd::projections {

class TimerSchedule {
 public:
  using Ticket = uint64_t;
  struct Entry {
    int64_t due_at;
    Ticket ticket;
    const std::string* timer;  // interned: lives as long as the schedule
    uint64_t entered_version;
  };

  TimerSchedule() = default;
  // Moves keep the entries' nodes, so the iterators into them stay valid; copies would not.
  TimerSchedule(TimerSchedule&&) = default;
  TimerSchedule& operator=(TimerSchedule&&) = default;
  TimerSchedule(const TimerSchedule&) = delete;
  TimerSchedule& operator=(const TimerSchedule&) = delete;

  // Makes `timers` the ticket's pending timers. Returns whether the earliest due time moved
  // earlier (the scheduler must then wake sooner than it planned).
  bool replace(Ticket ticket, const std::vector<PendingTimer>& timers);
  // The same for a ticket that has no timers here yet, cheapest when tickets come in increasing
  // key order (a restore): no lookup of old entries, and the ticket index grows at its end.
  void add(Ticket ticket, const std::vector<PendingTimer>& timers);

  // Entries in due order (then ticket key, timer, version); stops when `visit` returns false.
  void for_each(const std::function<bool(const Entry&)>& visit) const;
  // INT64_MAX when nothing is pending.
  int64_t next_due() const { return by_due_.empty() ? INT64_MAX : by_due_.begin()->due_at; }
  size_t size() const { return by_due_.size(); }

 private:
  struct DueOrder {
    bool operator()(const Entry& a, const Entry& b) const;
  };
  using Set = std::set<Entry, DueOrder>;

  // A ticket's entries, found by its id: iterators into by_due_ (stable until their entry is
  // erased), ordered by ticket, packed in a B-tree at 8 bytes an entry.
  struct TicketOrder {
    using is_transparent = void;
    bool operator()(Set::const_iterator a, Set::const_iterator b) const {
      if (a->ticket != b->ticket) return a->ticket < b->ticket;
      return std::less<const Entry*>()(&*a, &*b);
    }
    bool operator()(Set::const_iterator a, Ticket ticket) const { return a->ticket < ticket; }
    bool operator()(Ticket ticket, Set::const_iterator b) const { return ticket < b->ticket; }
  };

  Set by_due_;
  absl::btree_set<Set::const_iterator, TicketOrder> by_ticket_;
  std::unordered_set<std::string> names_;
};

}  // namespace ticketd::projections
