#pragma once
// TicketState <-> JSON, for read-model snapshots. Every member round-trips exactly.
#include "domain/ticket.h"
#include "domain/value.h"

namespace ticketd::projections {

Value ticket_to_value(const TicketState& t);
bool ticket_from_value(const Value& v, TicketState* out);

}  // namespace ticketd::projections
