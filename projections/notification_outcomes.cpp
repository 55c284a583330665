#include "projections/notification_outcomes.h"

#include "domain/notifications.h"
#include "projections/read_model.h"

namespace ticketd::projections {

storage::Status read_notification_outcomes(const storage::EventLog& log, uint64_t request,
                                           std::vector<NotificationOutcome>* out) {
  out->clear();
  auto read = [&](const EventId& id) {
    return log.read_event(id, [&](const storage::RecordedEvent& e) {
      NotificationOutcome o{e.position(), {}};
      if (to_domain_event(e, &o.event)) out->push_back(std::move(o));
      return true;
    });
  };
  // Failures are numbered from 1 without a gap (a failure not recorded is tried again as the
  // same attempt), and a delivery ends them.
  storage::Status s;
  for (int attempt = 1; (s = read(failed_event_id(request, attempt))).ok(); ++attempt) {
  }
  if (s.code() == storage::Status::Code::kNotFound) s = read(delivered_event_id(request));
  return s.code() == storage::Status::Code::kNotFound ? storage::Status::Ok() : s;
}

}  // namespace ticketd::projections
