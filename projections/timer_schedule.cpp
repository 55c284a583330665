#include "projections/timer_schedule.h"

#include <tuple>
#include <vector>

namespace ticketd::projections {

bool TimerSchedule::DueOrder::operator()(const Entry& a, const Entry& b) const {
  return std::tie(a.due_at, a.ticket, *a.timer, a.entered_version) <
         std::tie(b.due_at, b.ticket, *b.timer, b.entered_version);
}

bool TimerSchedule::replace(Ticket ticket, const std::vector<PendingTimer>& timers) {
  const int64_t before = next_due();
  auto [first, last] = by_ticket_.equal_range(ticket);
  if (first != last) {
    // Out of the ticket index first: its comparisons look into the entries.
    std::vector<Set::const_iterator> old(first, last);
    by_ticket_.erase(first, last);
    for (Set::const_iterator entry : old) by_due_.erase(entry);
  }
  for (const PendingTimer& p : timers) {
    const std::string* name = &*names_.insert(p.timer).first;
    auto [entry, added] = by_due_.insert({p.due_at, ticket, name, p.entered_version});
    if (added) by_ticket_.insert(entry);
  }
  return next_due() < before;
}

void TimerSchedule::add(Ticket ticket, const std::vector<PendingTimer>& timers) {
  for (const PendingTimer& p : timers) {
    const std::string* name = &*names_.insert(p.timer).first;
    // Tickets in key order were mostly created in that order, so their timers mostly fall due in
    // it too: hinted at the end, such an insert takes one comparison instead of a descent.
    const size_t before = by_due_.size();
    auto entry = by_due_.emplace_hint(by_due_.end(), p.due_at, ticket, name, p.entered_version);
    if (by_due_.size() > before) by_ticket_.insert(by_ticket_.end(), entry);
  }
}

void TimerSchedule::for_each(const std::function<bool(const Entry&)>& visit) const {
  for (const Entry& e : by_due_) {
    if (!visit(e)) return;
  }
}

}  // namespace ticketd::projections
