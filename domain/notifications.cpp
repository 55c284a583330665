#include "domain/notifications.h"

#include <algorithm>

#include "domain/time_format.h"

namespace ticketd {
namespace {

namespace et = event_types;

Object outcome_data(const PendingNotification& n) {
  return {{"request", Value(static_cast<int64_t>(n.request))},
          {"ticket", Value(n.ticket)},
          {"rule", Value(n.rule)},
          {"channel", Value(n.channel)},
          {"attempt", Value(n.attempts + 1)}};
}

}  // namespace

uint64_t NotificationQueue::apply(std::string_view stream, uint64_t position,
                                  const DomainEvent& e) {
  const Value& d = e.data;
  if (e.type == et::kNotificationRequested) {
    std::string channel = d.string_or("channel");
    if (!channels_.count(channel) || !is_ticket_stream(stream)) return 0;
    PendingNotification n;
    n.request = position;
    n.ticket = std::string(ticket_id_of(stream));
    n.rule = d.string_or("rule");
    n.channel = std::move(channel);
    n.to = d.string_or("to");
    n.recipient = d.string_or("recipient");
    n.text = d.string_or("text");
    n.requested_at = e.at_us;
    pending_.emplace(position, std::move(n));
    return 0;
  }
  bool delivered = e.type == et::kNotificationDelivered;
  if ((!delivered && e.type != et::kNotificationFailed) || stream != kOutboxStream) return 0;
  auto request = static_cast<uint64_t>(d["request"].as_number());
  auto it = pending_.find(request);
  if (it == pending_.end()) return request;
  if (delivered || d["final"].as_bool()) {
    pending_.erase(it);
  } else {
    it->second.attempts = static_cast<int>(d["attempt"].as_number());
    it->second.next_at = parse_rfc3339(d.string_or("retry_at")).value_or(0);
  }
  return request;
}

const PendingNotification* NotificationQueue::next_due(int64_t now_us,
                                                       const std::set<uint64_t>& busy) const {
  const PendingNotification* best = nullptr;
  for (const auto& [request, n] : pending_) {
    if (n.next_at > now_us || busy.count(request)) continue;
    if (!best || n.next_at < best->next_at) best = &n;
  }
  return best;
}

int64_t NotificationQueue::earliest(const std::set<uint64_t>& busy) const {
  int64_t at = 0;
  for (const auto& [request, n] : pending_) {
    if (busy.count(request)) continue;
    int64_t due = std::max<int64_t>(n.next_at, 1);
    if (at == 0 || due < at) at = due;
  }
  return at;
}

Value NotificationQueue::to_value() const {
  Array items;
  for (const auto& [request, n] : pending_) {
    items.emplace_back(Object{{"request", Value(static_cast<int64_t>(n.request))},
                              {"ticket", Value(n.ticket)},
                              {"rule", Value(n.rule)},
                              {"channel", Value(n.channel)},
                              {"to", Value(n.to)},
                              {"recipient", Value(n.recipient)},
                              {"text", Value(n.text)},
                              {"requested_at", Value(n.requested_at)},
                              {"attempts", Value(n.attempts)},
                              {"next_at", Value(n.next_at)}});
  }
  return Value(Object{{"pending", Value(std::move(items))}});
}

bool NotificationQueue::from_value(const Value& v) {
  const Value& items = v["pending"];
  if (!items.is_array()) return false;
  pending_.clear();
  for (const Value& item : items.as_array()) {
    PendingNotification n;
    n.request = static_cast<uint64_t>(item["request"].as_number());
    n.ticket = item.string_or("ticket");
    n.rule = item.string_or("rule");
    n.channel = item.string_or("channel");
    n.to = item.string_or("to");
    n.recipient = item.string_or("recipient");
    n.text = item.string_or("text");
    n.requested_at = static_cast<int64_t>(item["requested_at"].as_number());
    n.attempts = static_cast<int>(item["attempts"].as_number());
    n.next_at = static_cast<int64_t>(item["next_at"].as_number());
    if (n.request == 0) return false;
    pending_.emplace(n.request, std::move(n));
  }
  return true;
}

DomainEvent delivered_event(const PendingNotification& n, const std::vector<std::string>& sent_to,
                            int64_t now_us) {
  Object data = outcome_data(n);
  Array to;
  for (const auto& r : sent_to) to.emplace_back(r);
  data.emplace_back("to", Value(std::move(to)));
  return {et::kNotificationDelivered, Value(std::move(data)), kSystemActor, now_us,
          delivered_event_id(n.request)};
}

DomainEvent failed_event(const PendingNotification& n, const std::string& error, bool permanent,
                         const RetryPolicy& policy, int64_t now_us) {
  const int attempt = n.attempts + 1;
  const bool final = permanent || attempt >= policy.max_attempts;
  Object data = outcome_data(n);
  data.emplace_back("error", Value(error));
  data.emplace_back("final", Value(final));
  if (!final) {
    int64_t delay = policy.first_delay_us;
    for (int i = 1; i < attempt && delay < policy.max_delay_us; ++i) delay *= 2;
    data.emplace_back("retry_at",
                      Value(format_rfc3339(now_us + std::min(delay, policy.max_delay_us))));
  }
  return {et::kNotificationFailed, Value(std::move(data)), kSystemActor, now_us,
          failed_event_id(n.request, attempt)};
}

EventId delivered_event_id(uint64_t request) {
  return EventId::derived("ticketd/notification/" + std::to_string(request) + "/delivered");
}

EventId failed_event_id(uint64_t request, int attempt) {
  return EventId::derived("ticketd/notification/" + std::to_string(request) + "/failed/" +
                          std::to_string(attempt));
}

std::string_view to_string(NotificationState state) {
  switch (state) {
    case NotificationState::kInbox:
      return "inbox";
    case NotificationState::kPending:
      return "pending";
    case NotificationState::kDelivered:
      return "delivered";
    case NotificationState::kFailed:
      return "failed";
    case NotificationState::kNotSent:
      return "not_sent";
  }
  return "";
}

NotificationState notification_state(std::string_view channel, const DomainEvent* last_outcome,
                                     bool queued) {
  if (channel == "todo") return NotificationState::kInbox;
  if (last_outcome && last_outcome->type == et::kNotificationDelivered) {
    return NotificationState::kDelivered;
  }
  if (last_outcome && last_outcome->data["final"].as_bool()) return NotificationState::kFailed;
  return queued ? NotificationState::kPending : NotificationState::kNotSent;
}

Value notification_outcome(const DomainEvent& outcome) {
  const Value& d = outcome.data;
  std::string channel = d.string_or("channel");
  // Recorded by an outbox at work: one that is not final is to be tried again.
  NotificationState state = notification_state(channel, &outcome, /*queued=*/true);
  return Value(Object{{"request", d["request"]},
                      {"channel", Value(std::move(channel))},
                      {"attempt", d["attempt"]},
                      {"status", Value(to_string(state))}});
}

Result<std::vector<std::string>> resolve_recipients(const PendingNotification& n,
                                                    const Catalog& catalog) {
  const bool sms = n.channel == "sms";
  auto address_of = [&](const User& u) { return sms ? u.phone : u.email; };
  const char* what = sms ? "phone number" : "e-mail address";
  std::vector<std::string> out;
  if (n.recipient == "user") {
    const User* u = catalog.user(n.to);
    if (!u) return error(codes::kNotFound, "no user \"" + n.to + "\"");
    if (u->disabled) return error(codes::kInvalidValue, "user " + n.to + " is disabled");
    if (address_of(*u).empty())
      return error(codes::kInvalidValue, "user " + n.to + " has no " + what);
    out.push_back(address_of(*u));
  } else if (n.recipient == "role") {
    for (const User* u : catalog.users()) {
      bool member =
          !u->disabled && std::find(u->roles.begin(), u->roles.end(), n.to) != u->roles.end();
      if (member && !address_of(*u).empty()) out.push_back(address_of(*u));
    }
    if (out.empty()) return error(codes::kNotFound, "no member of role " + n.to + " has a " + what);
  } else {
    if (n.to.empty()) return error(codes::kInvalidValue, std::string("no ") + what + " given");
    out.push_back(n.to);
  }
  return out;
}

}  // namespace ticketd
