#pragma once
// JSON views of API.md: ticket, portal, user, definition.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "domain/catalog.h"
#include "domain/json_writer.h"
#include "domain/sla.h"
#include "domain/ticket.h"
#include "domain/ticket_notes.h"
#include "domain/time_format.h"
#include "projections/read_model.h"
#include "projections/reports.h"

namespace ticketd::api {

// The ticket view, with only the fields `actor` may read at the current node, what `actor` may
// do there now ("you"), which is nothing for a `past` state (a view as of an earlier time), and
// the files attached to the ticket itself (`attachments` names them).
void write_ticket_view(JsonWriter& w, const TicketState& t, const Catalog& catalog,
                       const projections::AttachmentMap& attachments, const Actor& actor,
                       int64_t now_us, bool past = false);
// The columns a TicketTable starts with, before the form fields'.
const std::vector<std::string>& ticket_table_columns();

// Tickets as a table for a spreadsheet (CSV, projections::report_csv): one row each with what
// the list's views say of it (id, state, node, who holds it, times, SLA, rating), then one column
// per form field that `actor` may read on some of them, headed by its label in form order;
// a field it may not read on a ticket is an empty cell there. Times (and date-time fields) are
// RFC 3339 UTC, or with `zone` that zone's "2026-12-01 05:20:07", which a spreadsheet reads as a
// date and time. Built a ticket at a time, each taking what its row needs of the ticket and the
// catalog when added, so a long export can read the views a few tickets per hold of their lock.
class TicketTable {
 public:
  explicit TicketTable(Actor actor, const date::time_zone* zone = nullptr)
      : actor_(std::move(actor)), zone_(zone) {}
  // `sla`: the ticket's standing now (as sla_standing() counts it).
  void add(const TicketState& t, const Catalog& catalog, const SlaStanding& sla);
  projections::ReportTable finish() &&;

 private:
  struct FormFields {  // a form version's fields, keys and labels, in its order
    std::string id;
    uint64_t version = 0;
    std::vector<std::pair<std::string, std::string>> fields;
  };
  struct Row {
    std::vector<Value> cells;                         // the fixed columns'
    std::vector<std::pair<std::string, Value>> read;  // the readable fields' cells, by key
  };
  Actor actor_;
  const date::time_zone* zone_;
  std::vector<FormFields> forms_;  // of the tickets, in order of first appearance
  std::set<std::string> read_somewhere_;
  std::vector<Row> rows_;
};
// A note on a ticket (domain/ticket_notes.h) with where, when and by whom it was written.
struct WrittenNote {
  uint64_t position = 0;
  int64_t at_us = 0;
  std::string author;  // a user id, or kPortalActor for the customer
  std::string event;   // the event type it came with
  TicketNote note;
};

// What the customer sees in the portal: progress, timeline, customer-readable fields, the
// conversation (those of `notes` the customer reads), and the files the customer sent and staff
// sent them.
// `now_us` says whether a closed ticket may still be reopened.
void write_portal_view(JsonWriter& w, const TicketState& t, const Catalog& catalog,
                       const projections::AttachmentMap& attachments,
                       const std::vector<WrittenNote>& notes, int64_t now_us);
void write_user(JsonWriter& w, const User& u);
// The same members, into an object the caller opened (and closes, after members of its own).
void write_user_members(JsonWriter& w, const User& u);
// How staff appear to the customer (the portal, their printed copy): by name alone, never by
// user id ("客服" for one without a name).
// `text` with the customer's portal code (a ticket's key to the portal) masked wherever it
// appears, for readers who must not act as the customer.
std::string without_portal_code(std::string text, const std::string& code);
std::string name_for_customer(const Catalog& catalog, const std::string& user);
void write_definition(JsonWriter& w, std::string_view id, uint64_t version, const Value& document);

}  // namespace ticketd::api
