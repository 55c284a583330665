// GET /api/v1/tickets/{id}/notifications: each notification the ticket's rules requested (every
// one, or a page with limit= and cursor=) and what became of it: its outcomes, found by the ids
// they are recorded under (projections/notification_outcomes.h), and whether the outbox worker
// still holds it.
#include <ranges>

#include "api/api.h"
#include "api/call.h"
#include "api/outbox_worker.h"
#include "api/ticket_view.h"
#include "domain/notifications.h"
#include "domain/permissions.h"
#include "domain/time_format.h"
#include "projections/notification_outcomes.h"

namespace ticketd::api {
namespace {

// The option that gives this server a channel's transport, for the reason a request is not sent.
std::string_view transport_option(std::string_view channel) {
  if (channel == "sms") return "--sms-gateway";
  if (channel == "email") return "--smtp-url";
  return "--webhook-url";
}

// Role and user recipients are names from the rule; the other kinds are the phone number or
// address itself, taken from the ticket's fields.
bool names_an_address(const Value& request) {
  std::string recipient = request.string_or("recipient");
  return recipient != "role" && recipient != "user";
}

void write_outcome(JsonWriter& w, const projections::NotificationOutcome& o, bool full) {
  const Value& d = o.event.data;
  w.begin_object();
  w.key("position").number(o.position).key("type").string(o.event.type);
  w.key("time").string(format_rfc3339(o.event.at_us));
  w.key("attempt").number(static_cast<int64_t>(d["attempt"].as_number()));
  if (o.event.type == event_types::kNotificationFailed) {
    if (full) w.key("error").string(d.string_or("error"));
    w.key("final").boolean(d["final"].as_bool());
    if (d.find("retry_at")) w.key("retry_at").string(d.string_or("retry_at"));
  } else if (full) {
    w.key("to");
    d["to"].write(w);
  }
  w.end_object();
}

}  // namespace

void Api::set_outbox(const OutboxWorker* outbox) { outbox_ = outbox; }

void Api::get_ticket_notifications(const CallPtr& call, const std::string& id) {
  PositionPage page;
  if (!page.parse(*call)) return;
  TicketState ticket;
  struct Request {
    uint64_t position;
    uint64_t version;  // in the ticket's stream: a to-do's id
    DomainEvent event;
  };
  std::vector<Request> requests;
  auto s = read_ticket_until(id, UINT64_MAX, INT64_MAX,
                             [&](const storage::RecordedEvent& e, DomainEvent&& d) {
                               evolve_in_place(ticket, d);
                               if (d.type == event_types::kNotificationRequested) {
                                 requests.push_back({e.position(), ticket.version, std::move(d)});
                               }
                             });
  if (!s.ok()) return call->fail(503, "unavailable", s.ToString());
  if (!ticket.exists()) return call->fail(404, codes::kNotFound, "no ticket " + id);
  // Texts and addresses are made of the ticket's fields: shown to whoever may read them all.
  const bool full = model_.read([&](const projections::ReadModel::View& v) {
    const FlowDef* flow = v.catalog.flow(ticket.flow_id, ticket.flow_version);
    return flow && readable_fields(ticket, *flow, call->actor).size() == ticket.fields.size();
  });

  JsonWriter w;
  w.begin_object().key("items").begin_array();
  auto position_of = [](const Request& r) { return r.position; };
  auto [first, last] = page.slice(requests, position_of);
  for (const auto& [request, version, requested] : std::ranges::subrange(first, last)) {
    const Value& d = requested.data;
    const std::string channel = d.string_or("channel");
    std::vector<projections::NotificationOutcome> outcomes;
    if (channel != "todo") {
      auto found = projections::read_notification_outcomes(log_, request, &outcomes);
      if (!found.ok()) return call->fail(503, "unavailable", found.ToString());
    }
    const NotificationState state =
        notification_state(channel, outcomes.empty() ? nullptr : &outcomes.back().event,
                           outbox_ && outbox_->will_send(request, channel));

    w.begin_object();
    w.key("request").number(request);
    w.key("requested_at").string(format_rfc3339(requested.at_us));
    w.key("rule").string(d.string_or("rule")).key("channel").string(channel);
    w.key("recipient").string(d.string_or("recipient"));
    if (full || !names_an_address(d)) w.key("to").string(d.string_or("to"));
    if (full) {
      // A message may carry the customer's portal code (its link in an SMS): that key is the
      // customer's, and an administrator's, who may do anything anyway; staff or an auditor
      // could act as the customer with it.
      w.key("text").string(call->actor.admin
                               ? d.string_or("text")
                               : without_portal_code(d.string_or("text"), ticket.portal_code));
    }
    w.key("status").string(to_string(state));
    // A to-do it opened: its id, and whether it is still open (or done).
    if (opens_todo(d)) {
      w.key("todo").begin_object().key("id").number(version);
      w.key("open")
          .boolean(ticket.open_request(OpenRequest::Kind::kTodo, version) != nullptr)
          .end_object();
    }
    w.key("attempts").number(static_cast<uint64_t>(outcomes.size()));
    if (!outcomes.empty()) {
      const auto& last = outcomes.back();
      if (state == NotificationState::kDelivered) {
        w.key("delivered_at").string(format_rfc3339(last.event.at_us));
      } else if (full) {
        w.key("error").string(last.event.data.string_or("error"));
      }
      if (state == NotificationState::kPending && last.event.data.find("retry_at")) {
        w.key("retry_at").string(last.event.data.string_or("retry_at"));
      }
    }
    if (state == NotificationState::kNotSent) {
      const bool sends = outbox_ && outbox_->sends(channel);
      w.key("reason").string(sends ? "requested before this server first had a transport for " +
                                         channel
                                   : "this server has no transport for " + channel + " (" +
                                         std::string(transport_option(channel)) + ")");
    }
    w.key("outcomes").begin_array();
    for (const auto& o : outcomes) write_outcome(w, o, full);
    w.end_array();
    w.end_object();
  }
  PositionPage::close(w, requests, last, position_of);
  call->ok(200, w.take());
}

}  // namespace ticketd::api
