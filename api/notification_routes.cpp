// GET /api/v1/tickets/{id}/notifications: each notification the ticket's rules requested and
// what became of it. Recordeds are recorded on the outbox stream under ids derived from the
// request (domain/notifications.h), so they are found by id rather than by reading that stream;
// whether a request is still to be sent is the outbox worker's to say.
#include <algorithm>

#include "api/api.h"
#include "api/call.h"
#include "api/outbox_worker.h"
#include "domain/notifications.h"
#include "domain/permissions.h"
#include "domain/time_format.h"

namespace ticketd::api {
namespace {

// A request or an outcome, with its position in the log.
struct Recorded {
  uint64_t position;
  DomainEvent event;
};

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

void write_outcome(JsonWriter& w, const Recorded& o, bool full) {
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
  TicketState ticket;
  std::vector<Recorded> requests;
  auto s = read_ticket_until(id, UINT64_MAX, INT64_MAX,
                             [&](const storage::RecordedEvent& e, DomainEvent&& d) {
                               evolve_in_place(ticket, d);
                               if (d.type == event_types::kNotificationRequested) {
                                 requests.push_back({e.position(), std::move(d)});
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
  for (const Recorded& r : requests) {
    const Value& d = r.event.data;
    const std::string channel = d.string_or("channel");
    std::vector<Recorded> outcomes;
    auto find = [&](const EventId& outcome_id) {
      return log_.read_event(outcome_id, [&](const storage::RecordedEvent& e) {
        DomainEvent o;
        if (projections::to_domain_event(e, &o)) outcomes.push_back({e.position(), std::move(o)});
        return true;
      });
    };
    // Failures are numbered from 1 without a gap; a delivery ends them. (The todo channel's
    // requests are to-dos, never sent.)
    storage::Status found = storage::Status::NotFound("");
    if (channel != "todo") {
      found = storage::Status::Ok();
      for (int attempt = 1; found.ok(); ++attempt) {
        found = find(failed_event_id(r.position, attempt));
      }
      if (found.code() == storage::Status::Code::kNotFound) {
        found = find(delivered_event_id(r.position));
      }
    }
    if (!found.ok() && found.code() != storage::Status::Code::kNotFound) {
      return call->fail(503, "unavailable", found.ToString());
    }
    std::sort(outcomes.begin(), outcomes.end(),
              [](const Recorded& a, const Recorded& b) { return a.position < b.position; });
    std::vector<DomainEvent> events;
    for (const Recorded& o : outcomes) events.push_back(o.event);
    const NotificationState state =
        notification_state(channel, events, outbox_ && outbox_->will_send(r.position, channel));

    w.begin_object();
    w.key("request").number(r.position);
    w.key("requested_at").string(format_rfc3339(r.event.at_us));
    w.key("rule").string(d.string_or("rule")).key("channel").string(channel);
    w.key("recipient").string(d.string_or("recipient"));
    if (full || !names_an_address(d)) w.key("to").string(d.string_or("to"));
    if (full) w.key("text").string(d.string_or("text"));
    w.key("status").string(to_string(state));
    w.key("attempts").number(static_cast<uint64_t>(outcomes.size()));
    if (!outcomes.empty()) {
      const Recorded& last = outcomes.back();
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
    for (const Recorded& o : outcomes) write_outcome(w, o, full);
    w.end_array();
    w.end_object();
  }
  w.end_array().key("next_cursor").null().end_object();
  call->ok(200, w.take());
}

}  // namespace ticketd::api
