#include "projections/read_model.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <thread>
#include <utility>

#include "domain/json_writer.h"
#include "domain/notifications.h"
#include "domain/permissions.h"
#include "domain/time_format.h"
#include "projections/hand_off.h"
#include "projections/ticket_codec.h"

namespace ticketd::projections {

storage::NewEvent to_new_event(const DomainEvent& e, const EventId& fresh_id,
                               std::string correlation_id) {
  storage::NewEvent n;
  n.id = e.id ? *e.id : fresh_id;
  n.fresh_id = !e.id;
  n.type = e.type;
  // Payloads are 100-450 bytes in the reference application: one allocation, no regrowth.
  // The value goes with the payload for the events whose data the projection reads (ParsedEvent;
  // a notification's stays in its payload), and only when parsing the payload would give back
  // this very value, as a replay will. Shared, not copied: a value's arrays and objects are
  // immutable and counted.
  bool exact = false;
  const bool keep_value = evolve_reads_data(e);
  n.payload = e.data.to_json(512, keep_value ? &exact : nullptr);
  n.payload_written_by_json_writer = true;
  if (exact) n.payload_value = e.data;
  n.actor = e.actor;
  n.correlation_id = std::move(correlation_id);
  n.recorded_at_us = e.at_us;
  return n;
}

namespace {
void take_envelope(const storage::RecordedEvent& e, DomainEvent* out) {
  out->type = std::string(e.type());
  out->actor = std::string(e.actor());
  out->at_us = e.recorded_at_us();
  out->id = e.id();
}
}  // namespace

bool to_domain_event(const storage::RecordedEvent& e, DomainEvent* out) {
  take_envelope(e, out);
  std::string error;
  return parse_json(e.payload(), &out->data, &error);
}

uint64_t ticket_number(std::string_view id) {
  if (id.size() < 3 || id.substr(0, 2) != "T-") return 0;
  uint64_t n = 0;
  for (char c : id.substr(2)) {
    if (c < '0' || c > '9' || n > 1000000000000ULL) return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

std::string ticket_id_for(uint64_t number) {
  // Once per ticket an index lists (TicketKey): no formatting machinery.
  char digits[20];
  const size_t n =
      static_cast<size_t>(std::to_chars(digits, digits + sizeof digits, number).ptr - digits);
  std::string id = "T-";
  if (n < 6) id.append(6 - n, '0');
  id.append(digits, n);
  return id;
}

namespace {

// 2: tickets carry their SLA history (sla_marks, sla_fired, sla_final).
// 3: JSON lines — a header object, then one ticket per line — so a restore parses one ticket at
//    a time instead of building a tree of the whole model (13 GB for a million tickets).
// 4: SLA field marks hold the values they replaced, not the new ones.
// 5: tickets as FlatBuffers (ticket_snapshot.fbs) after the header line, not JSON lines: decoding
//    them needs no text parsing and no intermediate tree.
// 6: in pieces (storage/snapshot_store.h): the header object alone in the first, then tickets
//    laid end to end, each a size-prefixed buffer padded with zero bytes to a multiple of 8 (so
//    every buffer is aligned as FlatBuffers requires), never split across pieces.
// 7: sessions hold when they started ({"user","at"}), for their expiry; a format 6 snapshot is
//    not used (the log is replayed once), so no session's start is ever guessed.
// 8: sessions hold the client address they were started from ({"user","at","client"}).
// 9: an internal note is no longer a response; a format 8 ticket may hold one as its first
//    response and among its SLA marks, so its log is replayed once. Sessions hold the expiry
//    their sign-in recorded, if any ({..., "expires_at"}).
// 10: an attachment lists the places tickets have held it in ({..., "places":[{"ticket",
//    "field"}]}), which decide who may open it; a format 9 snapshot has none, so the log is
//    replayed once. Later in format 10, an idempotency key's value may be {"ticket","digest"}
//    where it was the ticket id alone (still written so for a key with no digest); both read.
// 11: a file between the customer and staff is a reply, and a ticket counts the customer's
//    files: a format 10 ticket lacks the SLA marks, the first response and the count such
//    files give, so its log is replayed once.
constexpr int kSnapshotFormat = 11;
constexpr size_t kTicketAlign = 8;
// Large enough that a piece's overhead (a key, a blob record) is noise, small enough that the
// writer holds little and the reader starts soon.
constexpr size_t kSnapshotPieceBytes = 4 << 20;

void pad_to_alignment(std::string& out) {
  out.append((kTicketAlign - out.size() % kTicketAlign) % kTicketAlign, '\0');
}

std::vector<std::string> index_keys(const TicketState& t) {
  std::vector<std::string> keys = {"form:" + t.form_id, "node:" + t.node,
                                   t.closed ? "state:closed" : "state:open"};
  const Value& priority = t.field("priority");
  if (priority.is_string()) keys.push_back("priority:" + priority.as_string());
  if (!t.closed) {
    for (const auto& a : t.assignees) {
      keys.push_back((a.kind == AssigneeSpec::Kind::kRole ? "role:" : "user:") + a.id);
    }
  }
  // Open to-dos, on closed tickets too: the work they ask for may come after the close.
  for (const OpenRequest& r : t.open_requests) {
    if (r.kind != OpenRequest::Kind::kTodo) continue;
    std::string key =
        (r.to.kind == AssigneeSpec::Kind::kRole ? "todo-role:" : "todo-user:") + r.to.id;
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace

const TicketState* ReadModel::View::ticket(std::string_view id) const {
  auto it = tickets.find(std::string(id));
  return it == tickets.end() ? nullptr : it->second.get();
}

std::string ReadModel::View::ticket_id(TicketKey key) const {
  if (key < kOddTicketKey) return ticket_id_for(key);
  const size_t at = key - kOddTicketKey;
  return at < odd_ticket_ids.size() ? odd_ticket_ids[at] : std::string();
}

namespace {
// The number of an id as ticket_id_for() makes it: six digits, or more without a leading zero;
// 0 for any other id.
uint64_t number_of_made_id(std::string_view id) {
  const uint64_t number = ticket_number(id);
  const size_t digits = id.size() - 2;
  return number > 0 && (digits == 6 || (digits > 6 && id[2] != '0')) ? number : 0;
}

// Keeps `outlook` for `t` as of its version at the ticket's number in `outlooks`, made room for.
// Not for a ticket with an id that is no number's, or with a number far beyond the count of
// tickets (a vector is no place for it): its standing is counted when asked.
void keep_outlook(std::vector<KeptSlaOutlook>& outlooks, const TicketState& t, size_t ticket_count,
                  const SlaOutlook& outlook) {
  const uint64_t number = number_of_made_id(t.id);
  if (!number || number > 2 * ticket_count + 4096) return;
  if (number >= outlooks.size()) outlooks.resize(number + 1);
  outlooks[number] = {t.version, outlook};
}
}  // namespace

SlaStanding ReadModel::View::sla_standing(const TicketState& t, int64_t now_us) const {
  const uint64_t number = number_of_made_id(t.id);
  if (number && number < sla_outlooks.size() && sla_outlooks[number].version == t.version)
    return sla_outlooks[number].outlook.at(now_us);
  return ticketd::sla_standing(t, catalog, now_us);
}

TicketKey ReadModel::View::ticket_key(const std::string& id) const {
  if (const uint64_t number = number_of_made_id(id)) return number;
  auto it = odd_ticket_keys.find(id);
  return it == odd_ticket_keys.end() ? kOddTicketKey + odd_ticket_ids.size() : it->second;
}

std::vector<const TicketIdSet*> ReadModel::View::sets_waiting_on(
    const std::function<bool(const AssigneeSpec&)>& pick) const {
  using Kind = AssigneeSpec::Kind;
  static constexpr std::pair<std::string_view, Kind> kPrefixes[] = {{"role:", Kind::kRole},
                                                                    {"user:", Kind::kUser},
                                                                    {"todo-role:", Kind::kRole},
                                                                    {"todo-user:", Kind::kUser}};
  std::vector<const TicketIdSet*> sets;
  for (const auto& [key, set] : index) {
    for (const auto& [prefix, kind] : kPrefixes) {
      if (key.starts_with(prefix) && pick(AssigneeSpec{kind, key.substr(prefix.size())})) {
        sets.push_back(&set);
        break;
      }
    }
  }
  return sets;
}

void ReadModel::let_writers_in() const {
  for (int waiting; (waiting = writers_waiting_.load()) > 0;) writers_waiting_.wait(waiting);
}

std::unique_lock<std::shared_mutex> ReadModel::lock_to_write() {
  writers_waiting_.fetch_add(1);
  std::unique_lock lk(mu_);
  writers_waiting_.fetch_sub(1);
  writers_waiting_.notify_all();
  return lk;
}

TicketKey ReadModel::ticket_key(const std::string& id) {
  if (const uint64_t number = number_of_made_id(id)) return number;
  auto [it, fresh] = odd_ticket_keys_.try_emplace(id, kOddTicketKey + odd_ticket_ids_.size());
  if (fresh) odd_ticket_ids_.push_back(id);
  return it->second;
}

// An outcome changes no view: it is handed to the ticket listener alone, so that whoever watches
// the ticket learns whether its SMS or e-mail went out.
void ReadModel::apply_notification_outcome(uint64_t position, const DomainEvent& e) {
  auto it = tickets_.find(e.data.string_or("ticket"));
  if (it == tickets_.end()) return;
  applied_tickets_.push_back(
      {position, e.type, it->second->assignees, *it->second, notification_outcome(e)});
}

void ReadModel::apply_ticket(uint64_t position, const std::string& id, const DomainEvent& e) {
  auto [at, first_change] = changed_at_.try_emplace(id, changed_.size());
  if (first_change) {
    auto& slot = tickets_[id];
    if (!slot) {
      slot = std::make_shared<TicketState>();
    } else if (slot.use_count() > 1) {  // a snapshot is writing this state out: leave it be
      slot = std::make_shared<TicketState>(*slot);
    }
    bool fresh = !slot->exists();
    changed_.push_back({id, slot.get(), fresh,
                        fresh ? std::vector<std::string>{} : index_keys(*slot),
                        timer_inputs(*slot)});
  }
  // The events of one command come in one batch: a ticket's later events there find its state
  // in changed_, not in the tree again. It is theirs alone until the batch ends (no snapshot
  // takes a reference while the batch holds the lock), so it needs no second copy either.
  TicketState& t = *changed_[at->second].state;
  std::vector<AssigneeSpec> before;
  if (collect_tickets_) before = inbox_holders(t);
  evolve_in_place(t, e);
  if (collect_tickets_) applied_tickets_.push_back({position, e.type, std::move(before), t, {}});
  if (auto picked = picked_member(e)) {
    last_picks_[picked->role] = picked->user;
  }
  if (e.type == ticketd::event_types::kTicketSubmitted) {
    max_ticket_number_ = std::max(max_ticket_number_, ticket_number(id));
    std::string key = e.data.string_or("idempotency_key");
    if (!key.empty()) idempotency_[key] = {id, e.data.string_or("idempotency_digest")};
  }
}

void ReadModel::settle_changed_tickets() {
  for (ChangedTicket& c : changed_) {
    const TicketState& t = *c.state;
    const TicketKey ticket = ticket_key(c.id);
    std::vector<std::string> new_keys = index_keys(t);
    if (c.old_keys != new_keys) {  // touch only the index entries that changed
      for (const auto& key : c.old_keys) {
        if (std::find(new_keys.begin(), new_keys.end(), key) != new_keys.end()) continue;
        auto it = index_.find(key);
        if (it != index_.end() && it->second.erase(ticket) && it->second.empty()) index_.erase(it);
      }
      for (const auto& key : new_keys) {
        if (std::find(c.old_keys.begin(), c.old_keys.end(), key) == c.old_keys.end()) {
          // Most often the newest ticket: the hint makes that insert O(1), and costs one
          // comparison when it is wrong.
          TicketIdSet& ids = index_[key];
          ids.emplace_hint(ids.end(), ticket);
        }
      }
    }
    // SLA clocks may move with any event (a field that pauses them, a reply, a response).
    bool sla_covered = !catalog_.sla_policies_for_form(t.form_id).empty();
    if (c.fresh || sla_covered || timer_inputs(t) != c.timers_before) reschedule(t);
    reports_.update(ticket, t, catalog_);
    place_attachments(t);
  }
  changed_.clear();
  changed_at_.clear();
}

void ReadModel::place_attachments(const TicketState& t) {
  if (attachments_.empty()) return;
  auto place = [&](const std::string& id, const std::string& field) {
    // Attachment ids are "att-" and 24 hex digits: other texts are not looked up.
    if (!id.starts_with("att-")) return;
    auto it = attachments_.find(id);
    if (it == attachments_.end()) return;
    std::vector<AttachmentPlace>& places = it->second.places;
    AttachmentPlace p{t.id, field};
    if (std::find(places.begin(), places.end(), p) == places.end()) places.push_back(std::move(p));
  };
  for (const auto& id : t.attachments) place(id, "");
  for (const auto& [key, v] : t.fields) {
    place(v.as_string(), key);
    for (const auto& item : v.as_array()) place(item.as_string(), key);
  }
}

// Every ticket's state, referenced under the lock and read outside it (a snapshot writing them
// out, the schedule computing their timers). apply_ticket() changes a state in place when its
// use_count() says nobody else holds it, and that count is read without synchronising (a relaxed
// load): so the references are dropped under the lock too, which orders the holder's last read of
// a state before the projection's next change of it. Dropped on any return.
class ReadModel::HeldTickets {
 public:
  // Under `mu` held (shared or unique) by the caller.
  HeldTickets(const TicketMap& tickets, std::shared_mutex& mu) : mu_(mu) {
    states_.reserve(tickets.size());
    for (const auto& [id, t] : tickets) states_.push_back(t);  // references, not copies
  }
  ~HeldTickets() { release(); }
  HeldTickets(const HeldTickets&) = delete;
  HeldTickets& operator=(const HeldTickets&) = delete;

  const std::vector<std::shared_ptr<const TicketState>>& states() const { return states_; }
  void release() {
    if (states_.empty()) return;
    std::shared_lock lk(mu_);
    states_.clear();
  }

 private:
  std::shared_mutex& mu_;
  std::vector<std::shared_ptr<const TicketState>> states_;
};

void ReadModel::reschedule(const TicketState& t) {
  if (leaving_timers_out_) return;
  TicketDeadlines deadlines = ticket_deadlines(t, catalog_);
  keep_outlook(sla_outlooks_, t, tickets_.size(), deadlines.sla);
  if (schedule_.replace(ticket_key(t.id), deadlines.timers)) schedule_moved_ = true;
  if (schedule_incomplete_) rescheduled_while_incomplete_.insert(t.id);
}

bool ReadModel::complete_schedule(const std::function<void()>& meanwhile) {
  std::optional<HeldTickets> held;
  std::optional<Catalog> catalog;
  std::vector<TicketKey> keys;  // the schedule's, of each held ticket
  {
    std::shared_lock lk(mu_);
    if (!schedule_incomplete_) return false;
    held.emplace(tickets_, mu_);
    catalog.emplace(catalog_);
    keys.reserve(tickets_.size());
    const View v = view();
    for (const auto& [id, t] : tickets_) keys.push_back(v.ticket_key(id));
  }
  const std::vector<std::shared_ptr<const TicketState>>& tickets = held->states();
  // A helper computes the timers (SLA clocks: calendar walks) a chunk at a time while this thread
  // puts the chunks before it into the schedule, in ticket order, as add() wants: at a start or
  // a rebuild the second core is free by now, and the two halves of the work are about equal.
  constexpr size_t kChunk = 4096, kChunksAhead = 16;
  HandOff<std::vector<TicketDeadlines>> chunks(kChunksAhead);
  std::thread computer([&] {
    for (size_t from = 0; from < tickets.size(); from += kChunk) {
      const size_t to = std::min(from + kChunk, tickets.size());
      std::vector<TicketDeadlines> chunk;
      chunk.reserve(to - from);
      for (size_t i = from; i < to; ++i) chunk.push_back(ticket_deadlines(*tickets[i], *catalog));
      chunks.put(std::move(chunk));
    }
    chunks.close();
  });
  TimerSchedule complete;
  std::vector<KeptSlaOutlook> outlooks;
  outlooks.reserve(tickets.size() + 1);  // numbers 1…n mostly: grown once, not copied log n times
  size_t next = 0;
  while (std::optional<std::vector<TicketDeadlines>> chunk = chunks.take()) {
    for (const TicketDeadlines& deadlines : *chunk) {
      const TicketState& t = *tickets[next];
      complete.add(keys[next++], deadlines.timers);
      keep_outlook(outlooks, t, tickets.size(), deadlines.sla);
    }
  }
  computer.join();
  held->release();
  if (meanwhile) meanwhile();
  std::function<void()> moved;
  {
    std::unique_lock lk = lock_to_write();
    // What changed meanwhile was rescheduled (a definition reschedules the open tickets it
    // moves): those tickets' timers are taken again from their state now; every other ticket's
    // are what the references gave.
    sla_outlooks_ = std::move(outlooks);
    for (const auto& id : rescheduled_while_incomplete_) {
      auto it = tickets_.find(id);
      if (it == tickets_.end()) continue;  // (tickets are never taken out: none to drop)
      const TicketState& t = *it->second;
      TicketDeadlines deadlines = ticket_deadlines(t, catalog_);
      keep_outlook(sla_outlooks_, t, tickets_.size(), deadlines.sla);
      complete.replace(ticket_key(id), deadlines.timers);
    }
    schedule_ = std::move(complete);
    schedule_incomplete_ = false;
    rescheduled_while_incomplete_.clear();
    moved = on_schedule_change_;
  }
  if (moved) moved();
  return true;
}

void ReadModel::set_timers(Timers timers) {
  std::unique_lock lk = lock_to_write();
  leaving_timers_out_ = timers == Timers::kLater;
  if (leaving_timers_out_) empty_schedule();
}

void ReadModel::empty_schedule() {
  schedule_ = TimerSchedule();
  schedule_incomplete_ = true;
  rescheduled_while_incomplete_.clear();
  schedule_moved_ = true;
}

std::vector<ReadModel::DueTimer> ReadModel::due_timers(int64_t now_us, size_t max) const {
  std::shared_lock lk(mu_);
  std::vector<DueTimer> out;
  const View v = view();
  schedule_.for_each([&](const TimerSchedule::Entry& e) {
    if (e.due_at > now_us || out.size() >= max) return false;
    out.push_back({e.due_at, v.ticket_id(e.ticket), *e.timer, e.entered_version});
    return true;
  });
  return out;
}

int64_t ReadModel::next_due() const {
  std::shared_lock lk(mu_);
  return schedule_.next_due();
}

void ReadModel::on_ticket_applied(TicketListener fn, std::function<bool()> listening) {
  std::unique_lock lk = lock_to_write();
  on_ticket_applied_ = std::move(fn);
  ticket_listener_listening_ = std::move(listening);
}

void ReadModel::on_schedule_change(std::function<void()> fn) {
  std::unique_lock lk = lock_to_write();
  on_schedule_change_ = std::move(fn);
}

void ReadModel::on_catalog_change(std::function<void()> fn) {
  std::unique_lock lk = lock_to_write();
  on_catalog_change_ = std::move(fn);
}

void ReadModel::on_access_change(std::function<void()> fn) {
  std::unique_lock lk = lock_to_write();
  on_access_change_ = std::move(fn);
}

void ReadModel::apply_definition(const DomainEvent& e) {
  namespace det = ticketd::event_types;
  bool known = e.type == det::kFormPublished || e.type == det::kFlowPublished ||
               e.type == det::kRulePublished || e.type == det::kUserCreated ||
               e.type == det::kCalendarPublished || e.type == det::kSlaPolicyPublished ||
               e.type == det::kPrintTemplatePublished || e.type == det::kDashboardPublished ||
               e.type == det::kUserUpdated || e.type == det::kPasswordChanged ||
               e.type == det::kUserDisabled || e.type == det::kUserEnabled ||
               e.type == det::kSettingsChanged;
  if (!known) return;
  catalog_.apply(e);
  catalog_moved_ = true;
  access_moved_ = access_moved_ || e.type == det::kUserUpdated || e.type == det::kPasswordChanged ||
                  e.type == det::kUserDisabled;
  definitions_.push_back(e);
  // A rule, policy or calendar edit moves the timers of the open tickets it covers: a policy
  // change recomputes their clocks from their events under the new version.
  bool moves_timers = e.type == det::kRulePublished || e.type == det::kSlaPolicyPublished ||
                      e.type == det::kCalendarPublished;
  if (moves_timers) {
    std::string form = e.data["document"].string_or("form");
    auto it = index_.find("state:open");
    if (it != index_.end()) {
      const View v = view();
      for (TicketKey key : it->second) {
        const TicketState& t = *v.ticket_by_key(key);
        if (form.empty() || t.form_id == form) reschedule(t);
      }
    }
  }
  if (e.type == det::kUserCreated || e.type == det::kPasswordChanged) {
    password_hashes_[e.data.string_or("id")] = e.data.string_or("password_hash");
  }
  // A new password signs the user out everywhere else; a disabled user everywhere.
  if (e.type == det::kPasswordChanged) {
    end_sessions_of(e.data.string_or("id"), e.data.string_or("kept_session"));
  } else if (e.type == det::kUserDisabled) {
    end_sessions_of(e.data.string_or("id"));
  }
}

void ReadModel::start_session(std::string token_hash, Session session) {
  // A sign-in drops the sessions that expired before it, in the log's own time: a replay drops
  // the same ones, and neither memory nor snapshots keep every sign-in there ever was.
  for (auto it = session_expiries_.begin();
       it != session_expiries_.end() && it->first < session.started_at;
       it = session_expiries_.erase(it)) {
    auto expired = sessions_.find(it->second);
    if (expired != sessions_.end() && expired->second.expires_at == it->first)
      sessions_.erase(expired);
  }
  if (session.expires_at) session_expiries_.emplace(session.expires_at, token_hash);
  sessions_[std::move(token_hash)] = std::move(session);
}

void ReadModel::end_sessions_of(const std::string& user, const std::string& kept) {
  std::erase_if(sessions_, [&](const auto& s) { return s.second.user == user && s.first != kept; });
}

storage::Status ReadModel::snapshot(storage::SnapshotWriter& out, uint64_t* position) const {
  // Copied under the lock, written out after it: the projection thread (which needs the lock
  // exclusively) waits for the copy only, not for the JSON of every ticket.
  std::vector<DomainEvent> definitions;
  std::unordered_map<std::string, Session> sessions;
  std::unordered_map<std::string, IdempotentSubmission> idempotency;
  std::unordered_map<std::string, AttachmentInfo> attachments;
  std::map<std::string, std::string> last_picks;
  std::optional<HeldTickets> held;
  uint64_t max_ticket_number = 0;
  {
    std::shared_lock lk(mu_);
    *position = applied_;
    max_ticket_number = max_ticket_number_;
    definitions = definitions_;
    sessions = sessions_;
    idempotency = idempotency_;
    attachments = attachments_;
    last_picks = last_picks_;
    held.emplace(tickets_, mu_);
  }
  const std::vector<std::shared_ptr<const TicketState>>& tickets = held->states();
  JsonWriter w;
  w.begin_object();
  w.key("format").number(kSnapshotFormat);
  w.key("position").number(*position);
  w.key("max_ticket_number").number(max_ticket_number);
  w.key("definitions").begin_array();
  for (const auto& d : definitions) {
    w.begin_object().key("type").string(d.type).key("actor").string(d.actor);
    w.key("at").number(d.at_us).key("data").raw(d.data.to_json()).end_object();
  }
  w.end_array();
  w.key("sessions").begin_object();
  for (const auto& [hash, session] : sessions) {
    w.key(hash).begin_object().key("user").string(session.user);
    w.key("at").number(session.started_at).key("client").string(session.client);
    if (session.expires_at) w.key("expires_at").number(session.expires_at);
    w.end_object();
  }
  w.end_object();
  // A key without a digest as its ticket id alone, as snapshots wrote every key before digests.
  w.key("idempotency").begin_object();
  for (const auto& [key, made] : idempotency) {
    w.key(key);
    if (made.request_digest.empty()) {
      w.string(made.ticket);
    } else {
      w.begin_object().key("ticket").string(made.ticket);
      w.key("digest").string(made.request_digest).end_object();
    }
  }
  w.end_object();
  w.key("attachments").begin_array();
  for (const auto& [id, a] : attachments) {
    w.begin_object().key("id").string(a.id).key("filename").string(a.filename);
    w.key("content_type").string(a.content_type).key("size").number(a.size);
    w.key("uploader").string(a.uploader).key("places").begin_array();
    for (const auto& p : a.places) {
      w.begin_object().key("ticket").string(p.ticket).key("field").string(p.field).end_object();
    }
    w.end_array();
    if (a.shown_to_customer) w.key("public").boolean(true);
    w.end_object();
  }
  w.end_array();
  w.key("last_picks").begin_object();
  for (const auto& [role, user] : last_picks) w.key(role).string(user);
  w.end_object();
  w.key("tickets").number(static_cast<uint64_t>(tickets.size()));
  w.end_object();
  if (auto s = out.add(w.take()); !s.ok()) return s;
  std::string piece;
  piece.reserve(kSnapshotPieceBytes + (64 << 10));
  flatbuffers::FlatBufferBuilder fbb(4096);
  for (const auto& t : tickets) {
    encode_ticket(*t, fbb);
    piece.append(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
    pad_to_alignment(piece);
    if (piece.size() >= kSnapshotPieceBytes) {
      if (auto s = out.add(piece); !s.ok()) return s;
      piece.clear();
    }
  }
  if (!piece.empty()) return out.add(piece);
  return storage::Status::Ok();
}

bool ReadModel::restore(storage::SnapshotReader& in, std::string* error, Timers timers) {
  std::string_view first;
  if (!in.next(&first)) {
    *error = in.status().ok() ? "snapshot is empty" : in.status().ToString();
    return false;
  }
  // Snapshots of format 3 to 5 were one piece with the header on its first line.
  std::string_view header = first.substr(0, first.find('\n'));
  Value v;
  if (!parse_json(header, &v, error)) return false;
  if (v["format"].as_number() != kSnapshotFormat) {
    *error =
        "snapshot format " + v["format"].to_json() + " is not " + std::to_string(kSnapshotFormat);
    return false;
  }
  ReadModel fresh;
  for (const auto& d : v["definitions"].as_array()) {
    fresh.apply_definition({d.string_or("type"), d["data"], d.string_or("actor"),
                            static_cast<int64_t>(d["at"].as_number()), std::nullopt});
  }
  for (const auto& [hash, session] : v["sessions"].as_object()) {
    Session s{session.string_or("user"), static_cast<int64_t>(session["at"].as_number()),
              session.string_or("client"), static_cast<int64_t>(session["expires_at"].as_number())};
    if (s.expires_at) fresh.session_expiries_.emplace(s.expires_at, hash);
    fresh.sessions_[hash] = std::move(s);
  }
  for (const auto& [key, made] : v["idempotency"].as_object()) {
    fresh.idempotency_[key] =
        made.is_string() ? IdempotentSubmission{made.as_string(), ""}
                         : IdempotentSubmission{made.string_or("ticket"), made.string_or("digest")};
  }
  for (const auto& a : v["attachments"].as_array()) {
    std::vector<AttachmentPlace> places;
    for (const auto& p : a["places"].as_array())
      places.push_back({p.string_or("ticket"), p.string_or("field")});
    fresh.attachments_[a.string_or("id")] = {
        a.string_or("id"),           a.string_or("filename"),
        a.string_or("content_type"), static_cast<uint64_t>(a["size"].as_number()),
        a.string_or("uploader"),     std::move(places),
        a["public"].as_bool()};
  }
  // A damaged count must not reserve without bound: no piece holds more than 64k tickets.
  if (v["tickets"].is_number()) {
    fresh.reports_.reserve(
        std::min(static_cast<uint64_t>(v["tickets"].as_number()), in.pieces() << 16));
  }
  // One thread decodes tickets; this one adds those decoded before them to the model, with their
  // index keys and report facts. Their pending timers are filled in by complete_schedule().
  constexpr size_t kChunk = 4096, kChunksAhead = 16;
  HandOff<std::vector<std::shared_ptr<TicketState>>> chunks(kChunksAhead);
  std::atomic<bool> unreadable{false};
  std::thread decoder([&] {
    std::vector<std::shared_ptr<TicketState>> chunk;
    // Records are 8-aligned from the start of their piece, as the writer padded them; a piece
    // that is not 8-aligned in memory has each record decoded from an aligned copy.
    std::vector<uint64_t> aligned;
    std::string_view piece;
    bool whole = true;
    while (whole && in.next(&piece)) {
      const auto* base = reinterpret_cast<const uint8_t*>(piece.data());
      size_t at = 0;
      while (at < piece.size()) {
        uint32_t size = 0;
        if (piece.size() - at < sizeof size) break;
        std::memcpy(&size, base + at, sizeof size);  // FlatBuffers' prefix: little-endian
        size_t record = sizeof size + static_cast<size_t>(size);
        if (record > piece.size() - at) break;
        const uint8_t* data = base + at;
        if (reinterpret_cast<uintptr_t>(data) % kTicketAlign != 0) {
          aligned.resize((record + 7) / 8);
          std::memcpy(aligned.data(), data, record);
          data = reinterpret_cast<const uint8_t*>(aligned.data());
        }
        auto t = std::make_shared<TicketState>();
        if (!decode_ticket(data, record, t.get())) break;
        chunk.push_back(std::move(t));
        if (chunk.size() == kChunk) chunks.put(std::exchange(chunk, {}));
        at += record + (kTicketAlign - record % kTicketAlign) % kTicketAlign;
      }
      whole = at == piece.size();
    }
    if (!whole || !in.status().ok()) unreadable = true;
    if (!chunk.empty()) chunks.put(std::move(chunk));
    chunks.close();
  });
  uint64_t count = 0;
  while (std::optional<std::vector<std::shared_ptr<TicketState>>> chunk = chunks.take()) {
    for (std::shared_ptr<TicketState>& t : *chunk) {
      ++count;
      const std::string& id = t->id;
      // Tickets come in id order (they were written from the map): every insert is at the end.
      const TicketKey ticket = fresh.ticket_key(id);
      for (const auto& key : index_keys(*t)) {
        TicketIdSet& ids = fresh.index_[key];
        ids.emplace_hint(ids.end(), ticket);
      }
      fresh.reports_.add(ticket, fresh.reports_.facts_of(*t, fresh.catalog_));
      fresh.tickets_.emplace_hint(fresh.tickets_.end(), id, std::move(t));
    }
  }
  decoder.join();
  if (unreadable) {
    *error = in.status().ok() ? "snapshot holds an unreadable ticket" : in.status().ToString();
    return false;
  }
  if (!v["tickets"].is_number() || count != static_cast<uint64_t>(v["tickets"].as_number())) {
    *error =
        "snapshot is truncated: " + std::to_string(count) + " tickets of " + v["tickets"].to_json();
    return false;
  }
  for (const auto& [role, user] : v["last_picks"].as_object())
    fresh.last_picks_[role] = user.as_string();
  fresh.max_ticket_number_ = static_cast<uint64_t>(v["max_ticket_number"].as_number());
  {
    std::unique_lock lk = lock_to_write();
    catalog_ = std::move(fresh.catalog_);
    definitions_ = std::move(fresh.definitions_);
    tickets_ = std::move(fresh.tickets_);
    index_ = std::move(fresh.index_);
    odd_ticket_ids_ = std::move(fresh.odd_ticket_ids_);
    odd_ticket_keys_ = std::move(fresh.odd_ticket_keys_);
    password_hashes_ = std::move(fresh.password_hashes_);
    sessions_ = std::move(fresh.sessions_);
    session_expiries_ = std::move(fresh.session_expiries_);
    idempotency_ = std::move(fresh.idempotency_);
    attachments_ = std::move(fresh.attachments_);
    last_picks_ = std::move(fresh.last_picks_);
    max_ticket_number_ = fresh.max_ticket_number_;
    applied_ = static_cast<uint64_t>(v["position"].as_number());
    reports_ = std::move(fresh.reports_);
    empty_schedule();
  }
  if (timers == Timers::kNow) complete_schedule();
  return true;
}

uint64_t ReadModel::applied_position() const {
  std::shared_lock lk(mu_);
  return applied_;
}

void ReadModel::when_applied(uint64_t p, std::function<void()> fn) {
  {
    std::lock_guard wl(waiters_mu_);
    std::shared_lock lk(mu_);
    if (applied_ < p) {
      waiters_.emplace(p, std::move(fn));
      return;
    }
  }
  fn();
}

ParsedEvent::ParsedEvent(const storage::RecordedEvent& e, Parse when)
    : position(e.position()), stream(e.stream()) {
  take_envelope(e, &event);
  // A ticket's view reads the data of its events only through evolve(): the others' (what a
  // notification says, a comment's text, an approval's note) are left unparsed. Notifications
  // alone are about half of a busy log's events. The event still counts for its ticket (its
  // version, its last update, who responded).
  awaits_payload = !is_ticket_stream(stream) || evolve_reads_data(event.type, e.payload());
  if (!awaits_payload) return;
  if (const Value* v = e.payload_value()) {  // appended by this process a moment ago
    event.data = *v;
    awaits_payload = false;
  } else if (when == Parse::kNow) {
    parse(e.payload());
  }
}

void ParsedEvent::parse(std::string_view payload) {
  std::string error;
  parsed = parse_json(payload, &event.data, &error);
  awaits_payload = false;
}

void ReadModel::apply(std::vector<ParsedEvent> batch) {
  if (batch.empty()) return;
  const uint64_t last = batch.back().position;
  {
    std::unique_lock lk = lock_to_write();
    collect_tickets_ =
        on_ticket_applied_ && (!ticket_listener_listening_ || ticket_listener_listening_());
    for (const ParsedEvent& p : batch) {
      applied_ = p.position;
      if (!p.parsed) continue;
      const DomainEvent& e = p.event;
      if (is_ticket_stream(p.stream)) {
        apply_ticket(p.position, std::string(ticket_id_of(p.stream)), e);
      } else if (p.stream == kOutboxStream) {
        if (collect_tickets_) apply_notification_outcome(p.position, e);
      } else if (e.type == event_types::kSessionStarted) {
        start_session(e.data.string_or("token_hash"),
                      {e.data.string_or("user"), e.at_us, e.data.string_or("client"),
                       static_cast<int64_t>(e.data["expires_at"].as_number())});
      } else if (e.type == event_types::kSessionEnded) {
        sessions_.erase(e.data.string_or("token_hash"));
        access_moved_ = true;
      } else if (e.type == event_types::kAttachmentUploaded) {
        AttachmentInfo a{e.data.string_or("id"),
                         e.data.string_or("filename"),
                         e.data.string_or("content_type"),
                         static_cast<uint64_t>(e.data["size"].as_number()),
                         e.actor,
                         {},
                         e.data["public"].as_bool()};
        attachments_[a.id] = a;
      } else {
        settle_changed_tickets();  // a definition may reschedule open tickets from the index
        apply_definition(e);
      }
    }
    settle_changed_tickets();
  }
  std::function<void()> moved, catalog_changed, access_changed;
  TicketListener listener;
  std::vector<AppliedTicket> tickets;
  {
    std::unique_lock lk = lock_to_write();
    if (schedule_moved_ && on_schedule_change_) moved = on_schedule_change_;
    schedule_moved_ = false;
    if (catalog_moved_ && on_catalog_change_) catalog_changed = on_catalog_change_;
    catalog_moved_ = false;
    if (access_moved_ && on_access_change_) access_changed = on_access_change_;
    access_moved_ = false;
    tickets.swap(applied_tickets_);
    if (!tickets.empty()) listener = on_ticket_applied_;
  }
  if (moved) moved();
  if (catalog_changed) catalog_changed();
  // Before this batch's ticket events reach the streams: a user disabled in it hears none.
  if (access_changed) access_changed();
  if (listener) {
    for (AppliedTicket& t : tickets) {
      listener(t.position, t.type, std::move(t.inbox_holders_before), t.after, t.notification);
    }
  }
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard wl(waiters_mu_);
    auto end = waiters_.upper_bound(last);
    for (auto it = waiters_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), end);
  }
  for (auto& fn : ready) fn();
}

std::string ReadModel::dump() const {
  std::shared_lock lk(mu_);
  std::string out;
  auto line = [&](JsonWriter& w) {
    out += w.take();
    out.push_back('\n');
  };
  // Every version of every definition, in id then version order.
  auto definitions = [&](const char* kind, const std::vector<std::string>& ids, auto lookup) {
    for (const std::string& id : ids) {
      for (uint64_t v = 1; const auto* def = lookup(id, v); ++v) {
        JsonWriter w;
        w.begin_object().key(kind).string(id).key("version").number(v);
        w.key("document").raw(def->document.to_json()).end_object();
        line(w);
      }
    }
  };
  definitions("form", catalog_.form_ids(),
              [&](const std::string& id, uint64_t v) { return catalog_.form(id, v); });
  definitions("flow", catalog_.flow_ids(),
              [&](const std::string& id, uint64_t v) { return catalog_.flow(id, v); });
  definitions("rule", catalog_.rule_ids(),
              [&](const std::string& id, uint64_t v) { return catalog_.rule(id, v); });
  definitions("calendar", catalog_.calendar_ids(),
              [&](const std::string& id, uint64_t v) { return catalog_.calendar(id, v); });
  definitions("sla_policy", catalog_.sla_policy_ids(),
              [&](const std::string& id, uint64_t v) { return catalog_.sla_policy(id, v); });
  definitions("print_template", catalog_.print_template_ids(),
              [&](const std::string& id, uint64_t v) { return catalog_.print_template(id, v); });
  definitions("dashboard", catalog_.dashboard_ids(),
              [&](const std::string& id, uint64_t v) { return catalog_.dashboard(id, v); });
  for (uint64_t v = 1; const CompanySettings* settings = catalog_.settings_at(v); ++v) {
    JsonWriter w;
    w.begin_object().key("settings").string(kSettingsId).key("version").number(v);
    w.key("document").raw(settings->document.to_json()).end_object();
    line(w);
  }
  for (const User* u : catalog_.users()) {
    JsonWriter w;
    w.begin_object()
        .key("user")
        .string(u->id)
        .key("name")
        .string(u->name)
        .key("roles")
        .begin_array();
    for (const auto& r : u->roles) w.string(r);
    w.end_array();
    if (u->disabled) w.key("disabled").boolean(true);  // (absent: dumps of older logs unchanged)
    w.end_object();
    line(w);
  }
  for (const auto& [id, ticket] : tickets_) {
    const TicketState& t = *ticket;
    JsonWriter w;
    w.begin_object();
    w.key("ticket").string(id);
    w.key("version").number(t.version);
    w.key("form").string(t.form_id).key("form_version").number(t.form_version);
    w.key("flow").string(t.flow_id).key("flow_version").number(t.flow_version);
    w.key("node").string(t.node);
    w.key("closed").boolean(t.closed);
    w.key("creator").string(t.creator);
    w.key("assignees").begin_array();
    for (const auto& a : t.assignees) w.string(a.id);
    w.end_array();
    w.key("fields").raw(Value(t.fields).to_json());
    w.key("created_at").number(t.created_at).key("updated_at").number(t.updated_at);
    w.key("first_response_at").number(t.first_response_at).key("closed_at").number(t.closed_at);
    w.key("timeline").begin_array();
    for (const auto& step : t.timeline) {
      w.begin_array().string(step.node).number(step.entered_at).number(step.left_at).end_array();
    }
    w.end_array();
    w.key("rating").number(static_cast<int64_t>(t.rating.value_or(0)));
    if (t.reopens) w.key("reopens").number(static_cast<uint64_t>(t.reopens));
    w.key("fcr").boolean(t.first_contact_resolution());
    w.key("sla_marks").number(static_cast<uint64_t>(t.sla_marks.size()));
    w.key("sla_fired").begin_array();
    for (const auto& name : t.sla_fired) w.string(name);
    w.end_array();
    w.key("sla_final").raw(t.sla_final.to_json());
    if (!t.open_requests.empty()) {
      w.key("open_requests").begin_array();
      for (const OpenRequest& r : t.open_requests) {
        w.begin_array().number(r.version);
        if (r.kind == OpenRequest::Kind::kTodo) {
          w.string(r.to.kind == AssigneeSpec::Kind::kRole ? "role" : "user").string(r.to.id);
          w.string(r.text).number(r.given_at);
        }
        w.end_array();
      }
      w.end_array();
    }
    w.end_object();
    line(w);
  }
  for (const auto& [role, user] : last_picks_) {
    JsonWriter w;
    w.begin_object().key("last_pick").string(role).key("user").string(user).end_object();
    line(w);
  }
  // The derived structures too, so that a restored model can be compared with a replayed one.
  // Timers in due order, then by ticket id: the schedule orders ties by key, and the keys of ids
  // the server does not make follow the order the model first saw them in.
  const View v = view();
  std::vector<std::tuple<int64_t, std::string, std::string_view, uint64_t>> timers;
  schedule_.for_each([&](const TimerSchedule::Entry& e) {
    timers.emplace_back(e.due_at, v.ticket_id(e.ticket), *e.timer, e.entered_version);
    return true;
  });
  std::sort(timers.begin(), timers.end());
  for (const auto& [due_at, ticket, timer, entered_version] : timers) {
    JsonWriter w;
    w.begin_object().key("timer").string(timer).key("ticket").string(ticket);
    w.key("due_at").number(due_at).key("entered_version").number(entered_version).end_object();
    line(w);
  }
  std::vector<std::string> index_keys_sorted;
  for (const auto& [k, ids] : index_) index_keys_sorted.push_back(k);
  std::sort(index_keys_sorted.begin(), index_keys_sorted.end());
  for (const auto& k : index_keys_sorted) {
    JsonWriter w;
    w.begin_object().key("index").string(k).key("tickets").begin_array();
    // In id order: numbers are in it already, other ids in the order they were first seen in
    // (a replay, a restore), so those are sorted.
    std::vector<std::string> ids;
    for (TicketKey key : index_.at(k)) ids.push_back(v.ticket_id(key));
    if (!odd_ticket_ids_.empty()) std::sort(ids.begin(), ids.end(), TicketIdOrder());
    for (const auto& id : ids) w.string(id);
    w.end_array().end_object();
    line(w);
  }
  std::vector<std::string> keys;
  for (const auto& [k, v] : attachments_) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  for (const auto& k : keys) {
    const auto& a = attachments_.at(k);
    JsonWriter w;
    w.begin_object()
        .key("attachment")
        .string(a.id)
        .key("filename")
        .string(a.filename)
        .key("size")
        .number(a.size)
        .key("places")
        .begin_array();
    for (const auto& p : a.places) {
      w.begin_object().key("ticket").string(p.ticket).key("field").string(p.field).end_object();
    }
    w.end_array();
    if (a.shown_to_customer) w.key("public").boolean(true);
    w.end_object();
    line(w);
  }
  return out;
}

}  // namespace ticketd::projections
