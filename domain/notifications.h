#pragma once
// The outbox (DESIGN.md): rules record NotificationRequested on a ticket's stream; a delivery
// worker sends the sms, email and webhook ones and records each attempt's outcome on the
// "outbox" stream, as NotificationDelivered or NotificationFailed. This is the pure part: which
// requests are pending, whom they go to, and when a failed one is tried again. Sending is
// api/callout_transport.h; the worker api/outbox_worker.h.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "domain/catalog.h"
#include "domain/error.h"
#include "domain/event.h"
#include "domain/ticket.h"

namespace ticketd {

namespace event_types {
inline constexpr char kNotificationDelivered[] = "NotificationDelivered";
inline constexpr char kNotificationFailed[] = "NotificationFailed";
}  // namespace event_types

inline constexpr char kOutboxStream[] = "outbox";

struct PendingNotification {
  uint64_t request = 0;  // the log position of its NotificationRequested
  std::string ticket;
  std::string rule;
  std::string channel;    // sms | email | webhook
  std::string to;         // a role, a user, a phone number, an e-mail address (see recipient)
  std::string recipient;  // role | user | phone | email | address
  std::string text;
  int64_t requested_at = 0;
  int attempts = 0;     // failed so far
  int64_t next_at = 0;  // not to be tried before (microseconds)

  bool operator==(const PendingNotification&) const = default;
};

struct RetryPolicy {
  int max_attempts = 6;
  int64_t first_delay_us = 5'000'000;  // doubled after each failure: 5 s, 10 s, 20 s, …
  int64_t max_delay_us = 3'600'000'000;
  // A request still unsent this long after it was made is given up ("expired"), not sent late.
  int64_t max_age_us = 86'400'000'000;
};

// The requests of the delivered channels that have no final outcome yet, built only from events.
class NotificationQueue {
 public:
  explicit NotificationQueue(std::set<std::string> channels) : channels_(std::move(channels)) {}

  // Applies an event of the log at `position` (others than the three notification types are
  // ignored). Returns the request an outcome event settled or rescheduled, 0 for none.
  uint64_t apply(std::string_view stream, uint64_t position, const DomainEvent& e);

  const std::map<uint64_t, PendingNotification>& pending() const { return pending_; }
  // The one due first, if any is due at `now_us` and not in `busy`.
  const PendingNotification* next_due(int64_t now_us, const std::set<uint64_t>& busy) const;
  // When the earliest pending request not in `busy` falls due; 0 when there is none.
  int64_t earliest(const std::set<uint64_t>& busy) const;

  // For the worker's snapshot: the pending requests as JSON, and back.
  Value to_value() const;
  bool from_value(const Value& v);

 private:
  std::set<std::string> channels_;
  std::map<uint64_t, PendingNotification> pending_;
};

// The attempt's outcome as the event that records it. Ids derive from the request and the
// attempt, so a worker that records an outcome twice (after a crash) writes it once.
DomainEvent delivered_event(const PendingNotification& n, const std::vector<std::string>& sent_to,
                            int64_t now_us);
// `permanent`: retrying cannot help (no such recipient, the request expired, a 4xx answer).
DomainEvent failed_event(const PendingNotification& n, const std::string& error, bool permanent,
                         const RetryPolicy& policy, int64_t now_us);

// The ids those events are recorded under: one delivery, and failures numbered from 1 without a
// gap (a failure not recorded is tried again as the same attempt). A request's outcomes are
// found by these ids, without reading the outbox stream.
EventId delivered_event_id(uint64_t request);
EventId failed_event_id(uint64_t request, int attempt);

// Where one request stands, as a ticket's list of its notifications says.
enum class NotificationState {
  kInbox,      // the todo channel: a to-do in the assignee's inbox, nothing to send
  kPending,    // the outbox holds it: not tried yet, or failed and to be tried again
  kDelivered,  // the gateway or mail server accepted it
  kFailed,     // given up: a failure retrying cannot help, or the last attempt
  kNotSent,    // no outbox of this server holds it: no transport for its channel, or none yet
               // when it was requested
};
std::string_view to_string(NotificationState state);
// `last_outcome` is the request's last NotificationDelivered / NotificationFailed event (a
// delivery or a final failure is always the last); `queued` says whether this server's outbox
// holds the request (or has not yet read it).
NotificationState notification_state(std::string_view channel, const DomainEvent* last_outcome,
                                     bool queued);

// What an outcome event says of its notification, for those watching the ticket live:
// {"request", "channel", "attempt", "status"} (no address, no error: those are the ticket's
// fields, which a watcher may not be allowed to read).
Value notification_outcome(const DomainEvent& outcome);

// The phone numbers (sms) or e-mail addresses (email) a request goes to: its own address, its
// user's, or every member of its role's; an error when that is nobody. Webhooks have no
// recipients of their own: the configured URL gets every one.
Result<std::vector<std::string>> resolve_recipients(const PendingNotification& n,
                                                    const Catalog& catalog);

}  // namespace ticketd
