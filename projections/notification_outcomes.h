#pragma once
// A notification request's outcomes (domain/notifications.h), read from the log by the ids they
// are recorded under: a few point reads, where reading the outbox stream would scan every
// ticket's. For the ticket's notifications list (api/) and its timeline (ticketctl replay).
#include <cstdint>
#include <vector>

#include "domain/event.h"
#include "storage/event_log.h"

namespace ticketd::projections {

struct NotificationOutcome {
  uint64_t position = 0;
  DomainEvent event;  // NotificationDelivered or NotificationFailed
};

// The outcomes of the request whose NotificationRequested is at `request`, in the order they
// were recorded: failures from attempt 1, then the delivery, if any. None for a request that was
// never tried (the todo channel's never are).
storage::Status read_notification_outcomes(const storage::EventLog& log, uint64_t request,
                                           std::vector<NotificationOutcome>* out);

}  // namespace ticketd::projections
