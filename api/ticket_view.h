#pragma once
// JSON views of API.md: ticket, portal, user, definition.
#include "domain/catalog.h"
#include "domain/json_writer.h"
#include "domain/ticket.h"

namespace ticketd::api {

// The ticket view, with only the fields `actor` may read at the current node.
void write_ticket_view(JsonWriter& w, const TicketState& t, const Catalog& catalog,
                       const Actor& actor, int64_t now_us);
// What the customer sees in the portal: progress, timeline, customer-readable fields.
void write_portal_view(JsonWriter& w, const TicketState& t, const Catalog& catalog);
void write_user(JsonWriter& w, const User& u);
void write_definition(JsonWriter& w, std::string_view id, uint64_t version, const Value& document);

}  // namespace ticketd::api
