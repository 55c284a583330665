#pragma once
// The server's read side: every event of the log applied, in position order, to in-memory views —
// the catalog of definitions and users, each ticket's state, accounts (password and token hashes),
// idempotency keys and attachment metadata. Commands decide against it; queries read it.
//
// One thread applies (the log subscription); any number read under a shared lock. Callers that
// wrote position P can wait until P is applied (read-your-writes) without blocking a thread.
#include <absl/container/btree_map.h>
#include <absl/container/btree_set.h>
#include <absl/container/flat_hash_map.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "domain/catalog.h"
#include "domain/event.h"
#include "domain/ticket.h"
#include "projections/reports.h"
#include "projections/timer_schedule.h"
#include "storage/event_log.h"
#include "storage/recorded_event.h"
#include "storage/snapshot_store.h"

namespace ticketd::projections {

namespace event_types {
inline constexpr char kSessionStarted[] = "SessionStarted";
inline constexpr char kSessionEnded[] = "SessionEnded";  // signed out
inline constexpr char kAttachmentUploaded[] = "AttachmentUploaded";
}  // namespace event_types

// What a submission with an Idempotency-Key made: the ticket, and the digest of the request
// (empty for submissions recorded before digests were), which a repeat must match.
struct IdempotentSubmission {
  std::string ticket;
  std::string request_digest;
};

// A signed-in token: whose, since when, until when, and signed in from where (the client's
// address, "" for sessions started before it was recorded).
struct Session {
  std::string user;
  int64_t started_at = 0;
  std::string client;
  // The expiry the sign-in recorded (api/ may also cut a session shorter); 0 for none: signed in
  // with no expiry, or before expiries were recorded.
  int64_t expires_at = 0;
};

// Where a ticket has held an attachment: in a field, or ("" field) among its own attachments.
// Places are kept when the value changes, so that whoever may read the field can still open
// what its history shows.
struct AttachmentPlace {
  std::string ticket;
  std::string field;
  friend bool operator==(const AttachmentPlace&, const AttachmentPlace&) = default;
};

struct AttachmentInfo {
  std::string id;
  std::string filename;
  std::string content_type;
  uint64_t size = 0;
  std::string uploader;
  std::vector<AttachmentPlace> places;
  // Staff sent it to the customer (uploaded to a ticket with ?public=true): the portal lists it.
  bool shown_to_customer = false;
};
using AttachmentMap = std::unordered_map<std::string, AttachmentInfo>;  // by id

// Orders ticket ids by their number (T-999999 before T-1000000).
struct TicketIdOrder {
  bool operator()(const std::string& a, const std::string& b) const {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  }
};
// A ticket as the indexes hold it: the number of an id as ticket_id_for() makes it ("T-000042":
// 42), which orders as TicketIdOrder does; any other id (the server makes none) is kOddTicketKey
// plus its place among the model's other ids, after every numbered one (View::ticket_id()).
using TicketKey = uint64_t;
inline constexpr TicketKey kOddTicketKey = TicketKey{1} << 63;
// A B-tree of 8-byte keys: a million tickets sit in several of these sets each, where ids as
// strings took 32 bytes an entry.
using TicketIdSet = absl::btree_set<TicketKey>;

// A ticket's SLA outlook (domain/sla.h) as computed with its timers, and the ticket version it
// holds for. The timers and the outlooks are recomputed together, whenever an event or a
// definition may move them (a rule, policy or calendar edit reschedules the open tickets it
// covers), so an outlook whose version is the ticket's is current.
struct KeptSlaOutlook {
  uint64_t version = 0;  // 0: none kept
  SlaOutlook outlook;
};

// A decided event in the form the log stores: its own id when it has one (a derived id), else
// `fresh_id`, which must be drawn for this append (the log neither looks it up nor indexes it;
// see NewEvent::fresh_id).
storage::NewEvent to_new_event(const DomainEvent& e, const EventId& fresh_id,
                               std::string correlation_id);

// Turns a stored event into the domain's form (payload parsed). False for an unparsable payload.
bool to_domain_event(const storage::RecordedEvent& e, DomainEvent* out);

// Tickets by id. Shared so a snapshot can hold every ticket's state at one position for as long
// as it takes to write them out: the projection copies a state before changing it while a
// snapshot still holds it (copy on write), instead of the snapshot copying them all under the lock.
// A B-tree too: ids of a few bytes sit inline in its nodes, so a lookup compares within a node
// where a red-black tree chases a pointer per comparison.
using TicketMap = absl::btree_map<std::string, std::shared_ptr<TicketState>, TicketIdOrder>;

// A stored event taken out of its buffer and parsed, ready to apply. Parsing needs no lock, so a
// replay parses beside applying.
struct ParsedEvent {
  // Takes the envelope and, now or later, parses what of the payload the model reads. Later: a
  // replay copies the payloads out of the log's buffer and parses them on whichever of its
  // threads is free; the event is not applied until then.
  enum class Parse { kNow, kLater };
  explicit ParsedEvent(const storage::RecordedEvent& e, Parse when = Parse::kNow);
  // Parse::kLater: parses the payload's bytes, when awaits_payload says the model reads them.
  void parse(std::string_view payload);

  uint64_t position;
  std::string stream;
  bool parsed = true;  // false for an unparsable payload: the event then only moves the position
  bool awaits_payload = false;
  DomainEvent event;
};

class ReadModel {
 public:
  // Applies events in position order; called by one thread at a time (the projection's). A batch
  // is applied under one lock, and the views derived from a ticket (indexes, timers, report
  // facts) are brought up to date once for it, after its last event in the batch, rather than
  // after each event: the events of one command arrive together.
  void apply(std::vector<ParsedEvent> batch);
  void apply(const storage::RecordedEvent& e) { apply({ParsedEvent(e)}); }

  uint64_t applied_position() const;
  // Runs `fn` once position `p` is applied: now (on this thread) if it is, else on the projection
  // thread right after. `fn` must be quick.
  void when_applied(uint64_t p, std::function<void()> fn);

  // Everything below is read under a shared lock held by the caller through `read()`.
  struct View {
    const Catalog& catalog;
    const TicketMap& tickets;  // in submission order
    // Secondary indexes: "form:<id>", "node:<id>", "state:open|closed", "priority:<value>",
    // "role:<role>" and "user:<id>" (open tickets waiting on them), "todo-role:<role>" and
    // "todo-user:<id>" (tickets holding open to-dos for them) -> tickets, by TicketKey.
    const std::unordered_map<std::string, TicketIdSet>& index;
    const std::vector<std::string>& odd_ticket_ids;                            // see TicketKey
    const std::unordered_map<std::string, TicketKey>& odd_ticket_keys;         // their keys
    const std::unordered_map<std::string, std::string>& password_hashes;       // user -> hash
    const std::unordered_map<std::string, Session>& sessions;                  // by token hash
    const std::unordered_map<std::string, IdempotentSubmission>& idempotency;  // by caller/key
    const AttachmentMap& attachments;
    const Reports& reports;
    // Role -> the member a picking node handed a ticket to last (round-robin's turn).
    const std::map<std::string, std::string>& last_picks;
    uint64_t max_ticket_number;
    uint64_t applied_position;
    const std::vector<KeptSlaOutlook>& sla_outlooks;  // by ticket number
    const TicketState* ticket(std::string_view id) const;
    // The ticket's SLA standing at now_us, as ticketd::sla_standing() counts it: read off the
    // outlook kept with its timers where that is current, else counted (a ticket whose timers a
    // restore has not computed yet, one with an id that is no number's).
    SlaStanding sla_standing(const TicketState& t, int64_t now_us) const;
    std::string ticket_id(TicketKey key) const;
    TicketKey ticket_key(const std::string& id) const;  // of a ticket in `tickets`
    const TicketState* ticket_by_key(TicketKey key) const { return ticket(ticket_id(key)); }
    // The index sets of the tickets waiting on, or holding a to-do for, each role or user that
    // `pick` picks ("role:", "user:", "todo-role:", "todo-user:").
    std::vector<const TicketIdSet*> sets_waiting_on(
        const std::function<bool(const AssigneeSpec&)>& pick) const;
  };
  // Calls fn(view) under the shared lock.
  template <typename Fn>
  auto read(Fn&& fn) const {
    std::shared_lock lk(mu_);
    return fn(view());
  }
  // For a reader that reads in many short steps (a scan of every ticket), between two steps:
  // returns once no one waits to change the model. The lock favours readers, so without this
  // the steps of two such readers in turn could keep the projection out for as long as they run.
  void let_writers_in() const;
  bool writer_waiting() const { return writers_waiting_.load() > 0; }

  // Idle timers of open tickets, earliest first: (due time, ticket, timer). The scheduler reads
  // the front; applying events keeps it exact (a ticket that moves on drops its timers).
  struct DueTimer {
    int64_t due_at;
    std::string ticket;
    std::string timer;  // see PendingTimer
    uint64_t entered_version;
  };
  std::vector<DueTimer> due_timers(int64_t now_us, size_t max) const;
  // The earliest due time of any pending timer, or INT64_MAX.
  int64_t next_due() const;
  // Called (outside locks) whenever the earliest due time may have moved earlier.
  void on_schedule_change(std::function<void()> fn);
  // Called (outside locks) after applying events that changed the catalog: numbers computed with
  // it (a dashboard republished, the company's zone) may read differently now.
  void on_catalog_change(std::function<void()> fn);
  // Called (outside locks) after applying events that end sessions or change an account: a
  // sign-out, a password reset, a user disabled or given other roles. Open streams ask about
  // their tokens at once rather than at their next periodic check.
  void on_access_change(std::function<void()> fn);
  // Called (outside locks, on the projection thread, in position order) after each ticket event:
  // the position, the event type, the assignees before it and the ticket after it. Also after
  // each outcome of a ticket's notification (on the outbox stream), with the ticket as it is and
  // the last argument saying what became of the notification: {"request", "channel", "attempt",
  // "status"}, status as domain/notifications.h's NotificationState; null for ticket events.
  using TicketListener = std::function<void(uint64_t, const std::string&, std::vector<AssigneeSpec>,
                                            const TicketState&, const Value&)>;
  // `listening`, when given, says whether the listener wants events at all: a batch applied while
  // it says no copies no ticket for it. It is asked under the model's lock at the start of each
  // batch, so a listener that starts listening and then reads applied_position() gets every event
  // after that position.
  void on_ticket_applied(TicketListener fn, std::function<bool()> listening = nullptr);

  // A deterministic text dump of every view (ticketctl dump-views): equal logs, equal dumps.
  std::string dump() const;

  // Writes the whole model to `out` as a snapshot's pieces and sets the position it holds (the
  // caller finishes the snapshot with it); and back. restore() is for a fresh model and refuses a
  // snapshot of another format (the caller then replays the log from zero).
  //
  // Pending timers are not in a snapshot: they are recomputed from each ticket (SLA clocks), a
  // fifth of a restore's CPU at a million tickets. With Timers::kLater the restore leaves them
  // out: until complete_schedule() has run, due_timers() and next_due() know only the timers of
  // tickets applied since, and everything else the model answers is whole. Timers::kNow runs
  // complete_schedule() before returning.
  enum class Timers { kNow, kLater };
  storage::Status snapshot(storage::SnapshotWriter& out, uint64_t* position) const;
  bool restore(storage::SnapshotReader& in, std::string* error, Timers timers = Timers::kNow);
  // Computes the timers a Timers::kLater restore left out and puts them in the schedule. Any
  // thread, while the model is in use: the tickets are shared copy-on-write, so the computing
  // is done without the lock, which is then taken only to bring the tickets changed meanwhile up
  // to date. Returns false, doing nothing, if there was nothing left out. `meanwhile` (for tests)
  // runs after the computing, before the lock is taken again.
  bool complete_schedule(const std::function<void()>& meanwhile = {});
  // Timers::kLater while applying events (a replay before serving): the schedule is emptied and
  // the applied tickets' timers are left out, as a restore leaves them, for complete_schedule()
  // to compute once per ticket rather than at every batch that changes it. Timers::kNow (the
  // default): tickets are rescheduled as they change; those left out stay out until
  // complete_schedule().
  void set_timers(Timers timers);

 private:
  class HeldTickets;
  mutable std::shared_mutex mu_;
  // Those waiting for mu_ to change the model (see let_writers_in()).
  mutable std::atomic<int> writers_waiting_{0};
  // mu_ taken to change the model, said while waiting.
  std::unique_lock<std::shared_mutex> lock_to_write();
  void apply_ticket(uint64_t position, const std::string& id, const DomainEvent& e);
  // Brings the derived views of the tickets changed since the last call up to date; under the
  // unique lock, before anything reads those views (a definition's effect on open tickets, the
  // end of a batch).
  void settle_changed_tickets();
  void place_attachments(const TicketState& t);  // adds the places it holds attachments in
  void reschedule(const TicketState& t);         // under the unique lock
  // Leaves every ticket's timers out until complete_schedule(); under the unique lock.
  void empty_schedule();
  void apply_definition(const DomainEvent& e);
  // The index key of a ticket id, remembering an id that is no number's; under the unique lock.
  TicketKey ticket_key(const std::string& id);
  View view() const {  // under the lock
    return View{catalog_,         tickets_,         index_,      odd_ticket_ids_,
                odd_ticket_keys_, password_hashes_, sessions_,   idempotency_,
                attachments_,     reports_,         last_picks_, max_ticket_number_,
                applied_,         sla_outlooks_};
  }

  Catalog catalog_;
  std::vector<DomainEvent> definitions_;  // the catalog's events, kept for snapshots
  TicketMap tickets_;
  std::unordered_map<std::string, TicketIdSet> index_;
  // Ids that are no ticket number's (see TicketKey), and their keys.
  std::vector<std::string> odd_ticket_ids_;
  std::unordered_map<std::string, TicketKey> odd_ticket_keys_;
  Reports reports_;
  TimerSchedule schedule_;
  // Kept by reschedule() and complete_schedule() beside the timers, at each ticket's number.
  std::vector<KeptSlaOutlook> sla_outlooks_;
  bool schedule_moved_ = false;
  bool catalog_moved_ = false;
  bool access_moved_ = false;
  // While a restore's timers are left out: the tickets rescheduled since (their entries in
  // schedule_ are current; the others are missing).
  bool schedule_incomplete_ = false;
  bool leaving_timers_out_ = false;  // set_timers(Timers::kLater)
  std::unordered_set<std::string> rescheduled_while_incomplete_;
  std::function<void()> on_schedule_change_;
  std::function<void()> on_catalog_change_;
  std::function<void()> on_access_change_;
  TicketListener on_ticket_applied_;
  std::function<bool()> ticket_listener_listening_;
  bool collect_tickets_ = false;  // for the batch being applied
  // Collected by apply_ticket for the listener, handed over after the lock is released.
  struct AppliedTicket {
    uint64_t position;
    std::string type;
    std::vector<AssigneeSpec> inbox_holders_before;  // whose inboxes it may have left
    TicketState after;
    Value notification;  // for a notification's outcome
  };
  void apply_notification_outcome(uint64_t position, const DomainEvent& e);
  void end_sessions_of(const std::string& user, const std::string& kept = "");
  void start_session(std::string token_hash, Session session);
  std::vector<AppliedTicket> applied_tickets_;
  // What the timer schedule of a ticket depends on; most events (fields, comments) leave it alone.
  using TimerInputs = std::tuple<bool, std::string, uint64_t, size_t>;
  static TimerInputs timer_inputs(const TicketState& t) {
    return {t.closed, t.node, t.node_entered_version, t.timers_fired.size()};
  }
  // A ticket changed since its derived views were last settled, and what they were built from.
  struct ChangedTicket {
    std::string id;      // from its stream's name
    TicketState* state;  // the ticket's state, written by this batch alone
    bool fresh;          // submitted since: no index keys yet
    std::vector<std::string> old_keys;
    TimerInputs timers_before;
  };
  std::vector<ChangedTicket> changed_;  // in the order first changed (mostly id order)
  absl::flat_hash_map<std::string, size_t> changed_at_;  // ticket id -> its place in changed_
  std::unordered_map<std::string, std::string> password_hashes_;
  std::unordered_map<std::string, Session> sessions_;
  // Recorded expiries -> token hashes, soonest first, to drop expired sessions without a scan.
  // Entries of sessions ended before they expired stay until their time comes.
  std::multimap<int64_t, std::string> session_expiries_;
  std::unordered_map<std::string, IdempotentSubmission> idempotency_;
  AttachmentMap attachments_;
  std::map<std::string, std::string> last_picks_;
  uint64_t max_ticket_number_ = 0;
  uint64_t applied_ = 0;

  std::mutex waiters_mu_;
  std::multimap<uint64_t, std::function<void()>> waiters_;
};

// Ticket ids look like T-000042; returns 42, or 0 for anything else.
uint64_t ticket_number(std::string_view id);
std::string ticket_id_for(uint64_t number);
}  // namespace ticketd::projections
