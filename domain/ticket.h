#pragma once
// The ticket lifecycle as pure functions: decide(state, command, context) -> events | error and
// evolve(state, event) -> state. The clock, the actor and the definitions come in the context, so
// every decision is deterministic and replayable.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "domain/catalog.h"
#include "domain/error.h"
#include "domain/event.h"
#include "domain/flow.h"
#include "domain/form.h"
#include "domain/sla.h"
#include "domain/value.h"

namespace ticketd {

namespace event_types {
inline constexpr char kTicketSubmitted[] = "TicketSubmitted";
inline constexpr char kFieldsChanged[] = "FieldsChanged";
inline constexpr char kNodeEntered[] = "NodeEntered";
inline constexpr char kApproved[] = "Approved";
inline constexpr char kRejected[] = "Rejected";
inline constexpr char kTransferred[] = "Transferred";
inline constexpr char kFilled[] = "Filled";
inline constexpr char kCustomerConfirmed[] = "CustomerConfirmed";
inline constexpr char kCommentAdded[] = "CommentAdded";
inline constexpr char kAttachmentAdded[] = "AttachmentAdded";
inline constexpr char kRated[] = "Rated";
inline constexpr char kNotificationRequested[] = "NotificationRequested";
inline constexpr char kTimerFired[] = "TimerFired";
inline constexpr char kFlowEnded[] = "FlowEnded";
inline constexpr char kTicketClosed[] = "TicketClosed";
inline constexpr char kTicketReopened[] = "TicketReopened";
inline constexpr char kSlaWarning[] = "SlaWarning";
inline constexpr char kSlaBreached[] = "SlaBreached";
inline constexpr char kSlaFinalized[] = "SlaFinalized";
inline constexpr char kLookupRequested[] = "LookupRequested";
inline constexpr char kLookupCompleted[] = "LookupCompleted";
inline constexpr char kLookupFailed[] = "LookupFailed";
inline constexpr char kTodoDone[] = "TodoDone";
}  // namespace event_types

// The actor of rule-made events, and of the customer acting through the portal.
inline constexpr char kSystemActor[] = "system";
inline constexpr char kPortalActor[] = "portal";

struct Actor {
  std::string id;
  std::vector<std::string> roles;
  bool admin = false;
  bool auditor = false;
  // Acting through the customer portal of this ticket (holds its portal code).
  bool portal_customer = false;

  bool has_role(std::string_view role) const;
  // Auditors read everything and change nothing (unless also administrators).
  bool reads_only() const { return auditor && !admin; }
  bool operator==(const Actor&) const = default;
};

// The refusal of any change an auditor asks for (Actor::reads_only()).
DomainError reads_only_refusal();

// What a rule asked for that still waits on someone, by its event's stream version: a lookup the
// other system has not answered (LookupRequested), or a to-do its recipient has not done (a
// NotificationRequested on the todo channel). One list for both: few tickets hold either, and a
// second list would take the state past its size class (see ticket.cpp).
struct OpenRequest {
  enum class Kind : uint8_t { kLookup, kTodo };
  Kind kind = Kind::kLookup;
  uint64_t version = 0;
  // A to-do's: whom it is for (a role or a user), what it says, and when the rule gave it.
  AssigneeSpec to;
  std::string text;
  int64_t given_at = 0;
};

struct TimelineEntry {
  std::string node;
  int64_t entered_at = 0;
  int64_t left_at = 0;  // 0 while the ticket is still there
};

// What SLA clocks need of a ticket's history, whatever the policy: the submission, field changes,
// nodes entered, customer replies (portal comments), responses by staff, and the close.
struct SlaMark {
  enum class Kind : uint8_t {
    kSubmitted,
    kFields,
    kNode,
    kCustomerReply,
    kResponse,
    kClosed,
    kReopened  // the clocks the close stopped run on; the time closed does not count
  };
  Kind kind = Kind::kFields;
  int64_t at_us = 0;
  std::string node;  // kNode
  Object fields;     // kFields: what the changed fields were before (null: absent), so the fields
                     // at any mark are the current ones with the later changes undone — a
                     // ticket's fields are kept once, not copied into its history
};

struct TicketState {
  std::string id;
  uint64_t version = 0;  // stream version: one per event
  std::string form_id;
  uint64_t form_version = 0;
  std::string flow_id;
  uint64_t flow_version = 0;
  std::string creator;
  std::string portal_code;
  std::string node;
  std::vector<AssigneeSpec> assignees;  // resolved: roles and users
  uint64_t node_entered_version = 0;    // stream version of the NodeEntered event
  int64_t node_entered_at = 0;
  std::vector<std::string> timers_fired;  // idle rules fired since entering the current node
  Object fields;
  int64_t created_at = 0;
  int64_t updated_at = 0;
  int64_t first_response_at = 0;
  int64_t closed_at = 0;
  std::vector<TimelineEntry> timeline;
  // The small members together, so that padding does not push the state (with make_shared's
  // control block) past tcmalloc's 576-byte size class into the 640-byte one: 64 bytes a ticket.
  uint32_t reopens = 0;
  uint32_t comments = 0;
  std::optional<int> rating;  // of the latest close: a reopen takes it back
  bool closed = false;
  bool flow_ended = false;
  bool rejected = false;
  bool transferred = false;
  bool reentered = false;
  uint16_t customer_files = 0;  // sent by the customer through the portal (kMaxCustomerFiles)
  int64_t rated_at = 0;
  std::string rating_comment;
  std::vector<std::string> attachments;
  std::vector<SlaMark> sla_marks;
  std::vector<std::string> sla_fired;  // SLA timer names whose SlaWarning/SlaBreached is recorded
  Value sla_final;                     // the figures the ticket closed with (SlaFinalized)
  std::vector<OpenRequest> open_requests;

  bool exists() const { return version > 0; }
  // Lookups asked for and not answered yet, by their LookupRequested events' stream versions.
  std::vector<uint64_t> lookups_pending() const;
  // The open request of this kind asked at `version` (its event's stream version), if any.
  const OpenRequest* open_request(OpenRequest::Kind kind, uint64_t version) const;
  const Value& field(std::string_view key) const;
  // First-contact resolution: closed without a reject, a transfer, coming back to a node, or
  // being reopened.
  bool first_contact_resolution() const {
    return closed && !rejected && !transferred && !reentered && reopens == 0;
  }
};

struct SubmitTicket {
  std::string form_id;
  std::string flow_id;
  Object fields;
};
struct ChangeFields {
  Object fields;
  std::optional<uint64_t> expected_version;
};
struct TakeAction {
  std::string action;  // approve | reject | transfer | submit | confirm
  Object fields;
  std::string comment;
  std::string to;  // transfer
};
struct AddComment {
  std::string text;
  // A reply the customer reads in the portal; else a note among staff. (The customer's own
  // comments, through the portal, are the customer's side of that conversation.)
  bool is_public = false;
};
struct AddAttachment {
  std::string attachment_id;
  std::string filename;
  std::string content_type;
  uint64_t size = 0;
  bool is_public = false;  // staff send it to the customer, who reads it in the portal
};
struct RateTicket {
  int score = 0;
  std::string comment;
};
struct CloseTicket {
  std::string reason;
};
// Takes a closed ticket back into its flow: the customer calls again, the fix did not hold. The
// ticket enters `node` (empty: the node its flow leads to from the start, where it was first
// accepted) and counts as not resolved at first contact; its rating and SLA figures are taken
// back, and its clocks run on from where the close stopped them.
struct ReopenTicket {
  std::string reason;
  std::string node;
};
// Fires a timer by its name: an idle rule's id, or an sla_timer_name().
struct FireTimer {
  std::string timer;
  uint64_t entered_version = 0;  // idle rules: the node entry the timer belongs to
};
// Marks an open to-do done: one of those it is for (its user, a member of its role) or an
// administrator. (A recipient who acts on the ticket at its node settles their to-dos too.)
struct FinishTodo {
  uint64_t todo = 0;  // the stream version of the NotificationRequested that gave it
};
// The answer to a lookup (the lookup worker's command): the fields it fills, or why it failed for
// good.
struct ApplyLookup {
  uint64_t lookup = 0;  // the LookupRequested event's stream version
  std::string rule;     // the rule that asked
  Object fields;        // lookup_fill() of the answer
  std::string error;    // non-empty: failed
};
using Command =
    std::variant<SubmitTicket, ChangeFields, TakeAction, AddComment, AddAttachment, RateTicket,
                 CloseTicket, ReopenTicket, FireTimer, ApplyLookup, FinishTodo>;

struct Context {
  Actor actor;
  int64_t now_us = 0;
  const Catalog* catalog = nullptr;
  Lookups lookups;
  // For nodes that pick an assignee among a role: the member picked last for that role (empty:
  // none yet), and how many open tickets wait on a user. Unset: no picking (the role is assigned).
  std::function<std::string(std::string_view role)> last_pick;
  std::function<size_t(std::string_view user)> open_load;
  // For SubmitTicket: the new ticket's id and portal code, chosen by the caller.
  std::string new_ticket_id;
  std::string new_portal_code;
};

// The flow a submission of `form` starts: the one named, or, with none named, the one flow whose
// latest version takes the form. Refused when the named flow is unknown or takes another form,
// or when none is named and no flow or several take the form (the refusal names them).
Result<const FlowDef*> flow_for_submission(const Catalog& catalog, const FormDef& form,
                                           std::string_view flow_id);

// What a command does to a ticket, rules included: the events to append, in order.
Result<std::vector<DomainEvent>> decide(const TicketState& state, const Command& command,
                                        const Context& context);
TicketState evolve(TicketState state, const DomainEvent& event);
// The same step on a state the caller owns, for folds over many events (a projection, a command's
// rules): a ticket's state is a few hundred bytes of strings and vectors, and moving it in and out
// of evolve() for every event cost a projection a tenth of its time.
void evolve_in_place(TicketState& state, const DomainEvent& event);
// As many files as the customer sends one ticket: enough for the photos of any fault, and a
// bound on what one portal code can store.
inline constexpr uint16_t kMaxCustomerFiles = 20;
// Why the portal's customer may not send a file to the ticket now, if they may not: it is closed,
// and no one works on it to read the file, or it holds kMaxCustomerFiles of theirs. Asked by
// decide() and, before the bytes are stored, by the upload.
std::optional<DomainError> customer_file_refused(const TicketState& state);
// Until when the customer may reopen the closed ticket in the portal: the company's reopen_days
// after its close. 0: not at all (open, or the company takes no reopens there).
int64_t portal_reopen_until(const TicketState& state, const CompanySettings& settings);
// Whether evolve() reads an event's data, beyond its type, actor and time. A projection may leave
// the data of the other events unparsed (held to it by tests/ticket_property_test.cpp). By type,
// but for notifications, about half of a busy log's events, only the few that open a to-do
// ("todo":true) are read: told from the payload as Value::to_json writes it, or from the data.
bool evolve_reads_data(std::string_view type, std::string_view payload);
bool evolve_reads_data(const DomainEvent& event);
// Whether a NotificationRequested's data opens a to-do ("todo": true; see OpenRequest).
inline bool opens_todo(const Value& notification) {
  const Value& todo = notification["todo"];
  return todo.is_bool() && todo.as_bool();
}

// Timers the ticket is waiting on, from its state alone (no polling per timer needed): idle rules
// (named by the rule's id) and SLA warnings and breaches (named by sla_timer_name()).
struct PendingTimer {
  std::string timer;
  int64_t due_at = 0;
  uint64_t entered_version = 0;
};
// The ticket's pending timers and its SLA outlook (domain/sla.h), from one count of its clocks.
struct TicketDeadlines {
  std::vector<PendingTimer> timers;
  SlaOutlook sla;
};
TicketDeadlines ticket_deadlines(const TicketState& state, const Catalog& catalog);

// The member a picking node handed the ticket to, as its NodeEntered event records it: the role
// and the user. Nothing for any other event.
struct PickedMember {
  std::string role;
  std::string user;
};
std::optional<PickedMember> picked_member(const DomainEvent& e);
// The idle-rule timers alone (no SLA clocks computed).
std::vector<PendingTimer> pending_idle_timers(const TicketState& state, const Catalog& catalog);

// What a rule would have done on one ticket's recorded events, for a dry-run: each time it would
// have fired with `at_us` in [from_us, to_us], the event that triggered it (or the idle deadline)
// and the events its actions make. First-order: the rule's effects are not fed back into the
// history, and events that a version of the same rule made are not triggers, as live.
struct RuleDryRunHit {
  int64_t at_us = 0;
  uint64_t version = 0;  // the ticket's stream version of the trigger (the last event before an
                         // idle deadline)
  std::string trigger;   // the triggering event's type, or "idle"
  std::vector<DomainEvent> actions;
};
std::vector<RuleDryRunHit> dry_run_rule(const RuleDef& rule, const std::vector<DomainEvent>& events,
                                        const Catalog& catalog, int64_t from_us, int64_t to_us);

// The stable id of the event recording that a timer fired.
EventId timer_event_id(std::string_view ticket, std::string_view rule, uint64_t entered_version);
// The stable id of the event recording a lookup's answer.
EventId lookup_event_id(std::string_view ticket, uint64_t lookup);

// A ticket's events are the stream "ticket-<id>".
inline constexpr std::string_view kTicketStreamPrefix = "ticket-";
inline std::string ticket_stream(std::string_view id) {
  return std::string(kTicketStreamPrefix).append(id);
}
inline bool is_ticket_stream(std::string_view stream) {
  return stream.starts_with(kTicketStreamPrefix);
}
// The ticket id of a stream for which is_ticket_stream() holds.
inline std::string_view ticket_id_of(std::string_view stream) {
  return stream.substr(kTicketStreamPrefix.size());
}

}  // namespace ticketd
