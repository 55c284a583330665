#include "projections/timer_schedule.h"

#include <tuple>

namespace ticketd::projections {

bool TimerSchedule::DueOrder::operator()(const Entry& a, const Entry& b) const {
  return std::tie(a.due_at, a.ticket, *a.timer, a.entered_version) <
         std::tie(b.due_at, b.ticket, *b.timer, b.entered_version);
}

bool TimerSchedule::replace(const std::string& ticket, const std::vector<PendingTimer>& timers) {
  const int64_t before = next_due();
  auto mine = by_ticket_.find(ticket);
  if (mine != by_ticket_.end()) {
    for (Set::const_iterator entry : mine->second) by_due_.erase(entry);
    if (timers.empty()) {
      by_ticket_.erase(mine);
    } else {
      mine->second.clear();
    }
  }
  if (timers.empty()) return false;
  if (mine == by_ticket_.end()) mine = by_ticket_.try_emplace(ticket).first;
  mine->second.reserve(timers.size());
  for (const PendingTimer& p : timers) {
    const std::string* name = &*names_.insert(p.timer).first;
    auto [entry, added] = by_due_.insert({p.due_at, ticket, name, p.entered_version});
    if (added) mine->second.push_back(entry);
  }
  return next_due() < before;
}

void TimerSchedule::for_each(const std::function<bool(const Entry&)>& visit) const {
  for (const Entry& e : by_due_) {
    if (!visit(e)) return;
  }
}

}  // namespace ticketd::projections
