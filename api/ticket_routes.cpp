// Ticket routes: submit, read, list, inbox, change, act, rate, attach, history, portal.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>

#include "api/api.h"
#include "api/call.h"
#include "api/file_type.h"
#include "api/ticket_view.h"
#include "domain/media_type.h"
#include "domain/permissions.h"
#include "domain/text.h"
#include "domain/time_format.h"
#include "storage/event_json.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

// One word of a list's ?q=, taken apart once for every ticket it is matched against.
struct TextTerm {
  explicit TextTerm(std::string_view q) : search(q) {
    digits =
        !q.empty() && std::all_of(q.begin(), q.end(), [](char c) { return c >= '0' && c <= '9'; });
  }
  const std::string& lowered() const { return search.needle(); }  // in small letters

  TextSearch search;    // Latin letters match whatever their case: "acme" finds "Acme Ltd"
  bool digits = false;  // a number: a phone's digits, or a ticket's number
};

// A list's ?q=: its words, as a search box takes them ("华东 卡纸" finds the tickets that hold
// both, wherever each is); spaces around or between them, a Chinese input method's too, are
// none of the text.
struct TextQuery {
  explicit TextQuery(std::string_view q) {
    for (std::string_view word : words(q)) terms.emplace_back(word);
  }
  std::vector<TextTerm> terms;
};

// Whether the digits of `phone`, its spaces, dashes, dots and parentheses passed over, hold
// `digits`: a caller's number as the telephone shows it finds "+86 138-1111 2222".
bool phone_contains(std::string_view phone, std::string_view digits) {
  auto separator = [](char c) { return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')'; };
  for (size_t start = 0; start < phone.size(); ++start) {
    if (phone[start] != digits[0]) continue;
    size_t i = start, matched = 0;
    while (i < phone.size() && matched < digits.size()) {
      if (phone[i] == digits[matched]) {
        ++matched;
      } else if (!separator(phone[i]) || matched == 0) {
        break;
      }
      ++i;
    }
    if (matched == digits.size()) return true;
  }
  return false;
}

// Whether the ticket is one the caller looks for with ?q=: the text is in a field they may read
// now (a hidden field's words would otherwise be found by asking), or it names the ticket, as
// "T-000012", "t-000012" or its number "12".
bool term_matches(const TicketState& t, const TextTerm& q, const Catalog& catalog,
                  const Actor& actor) {
  if (t.id.size() == q.lowered().size() && q.search.found_in(t.id)) return true;
  auto number = [](std::string_view digits) {  // "000012" → "12"
    return digits.substr(std::min(digits.find_first_not_of('0'), digits.size()));
  };
  if (q.digits && t.id.starts_with("T-") &&
      number(std::string_view(t.id).substr(2)) == number(q.lowered())) {
    return true;
  }
  // Looked up once a field holds the text: most tickets of a list hold it nowhere.
  const FlowDef* flow = nullptr;
  const FormDef* form = q.digits ? catalog.form(t.form_id, t.form_version) : nullptr;
  for (const auto& [key, v] : t.fields) {
    bool found = false;
    if (v.is_string()) {
      const FieldDef* f = form ? form->field(key) : nullptr;
      found = q.search.found_in(v.as_string()) ||
              (f && f->type == FieldType::kPhone && phone_contains(v.as_string(), q.lowered()));
    } else {
      for (const auto& item : v.as_array()) {  // a multi-select's options
        if (item.is_string() && q.search.found_in(item.as_string())) found = true;
      }
    }
    if (!found) continue;
    if (!flow && !(flow = catalog.flow(t.flow_id, t.flow_version))) return false;
    if (may_read_field(t, *flow, actor, key)) return true;
  }
  return false;
}

bool text_matches(const TicketState& t, const TextQuery& q, const Catalog& catalog,
                  const Actor& actor) {
  return std::all_of(q.terms.begin(), q.terms.end(),
                     [&](const TextTerm& term) { return term_matches(t, term, catalog, actor); });
}

// A scan over a million tickets waits on memory: a ticket's state, then its fields, then their
// text are each fetched only once the one before has arrived. Asked for a few tickets ahead,
// stage by stage, the fetches of several tickets overlap (a search over a million tickets took
// about half as long; BENCHMARKS.md, session 35).
class ScanAhead {
 public:
  struct Item {
    const TicketState* ticket;
    projections::TicketKey key;
  };
  // `fields`: the filters read the tickets' fields; `text`: their text too (a search).
  ScanAhead(bool fields, bool text) : stages_(text ? 3 : fields ? 2 : 1) {}

  // Takes the scan's next ticket, and hands `consider` the one whose memory was asked for in
  // every stage, if any yet.
  template <class Consider>
  void push(Item item, Consider&& consider) {
    prefetch_state(*item.ticket);
    ring_[head_++ % kRing] = item;
    if (stages_ >= 2 && head_ > kDistance) prefetch_fields(*at(head_ - 1 - kDistance).ticket);
    if (stages_ >= 3 && head_ > 2 * kDistance) prefetch_text(*at(head_ - 1 - 2 * kDistance).ticket);
    if (head_ - tail_ > stages_ * kDistance) consider(at(tail_++));
  }
  // Hands `consider` the tickets still held, at the end of a step of the scan.
  template <class Consider>
  void drain(Consider&& consider) {
    while (tail_ < head_) consider(at(tail_++));
  }

 private:
  // Tickets between stages. Further ahead, what is in flight outgrows the L1 cache: 8 was
  // slower than 2 or 4 over a million tickets.
  static constexpr size_t kDistance = 2;
  static constexpr size_t kRing = 8;  // more than 3 * kDistance, a power of two

  const Item& at(size_t i) const { return ring_[i % kRing]; }
  static void prefetch_lines(const void* begin, const void* end) {
    auto line = reinterpret_cast<uintptr_t>(begin) & ~uintptr_t{63};
    for (; line < reinterpret_cast<uintptr_t>(end); line += 64) {
      __builtin_prefetch(reinterpret_cast<const void*>(line));
    }
  }
  // The members the filters read, from the id to the times.
  static void prefetch_state(const TicketState& t) { prefetch_lines(&t, &t.updated_at + 1); }
  static void prefetch_fields(const TicketState& t) {
    prefetch_lines(t.fields.data(), t.fields.data() + t.fields.size());
  }
  static void prefetch_text(const TicketState& t) {
    for (const auto& member : t.fields) {
      if (member.second.is_string()) __builtin_prefetch(member.second.as_string().data());
    }
  }

  size_t stages_;
  Item ring_[kRing];
  size_t head_ = 0;  // items pushed
  size_t tail_ = 0;  // items handed on
};

// Whether the caller asks for a CSV export (Accept: text/csv) rather than JSON.
bool asks_for_csv(const HttpRequest& req) {
  return req.header("accept").find("text/csv") != std::string::npos;
}

// A submission under an Idempotency-Key that made `ticket` from another request.
DomainError key_used_for_another_request(const std::string& ticket) {
  return {codes::kInvalidValue,
          "this Idempotency-Key was used for a different request (ticket " + ticket +
              "): use a new key for a new ticket",
          "Idempotency-Key"};
}

// Whether some version of some form (form `form`, unless empty) has a priority field that may hold
// `value`: any value of a field that is not a select, one of the options of one that is.
bool any_form_takes_priority(const Catalog& catalog, const std::string& form,
                             const std::string& value) {
  for (const auto& form_id : catalog.form_ids()) {
    if (!form.empty() && form_id != form) continue;
    for (uint64_t version = 1; version <= catalog.form(form_id)->version; ++version) {
      const FormDef* def = catalog.form(form_id, version);
      const FieldDef* field = def ? def->field("priority") : nullptr;
      if (field && (field->type != FieldType::kSelect ||
                    std::find(field->options.begin(), field->options.end(), value) !=
                        field->options.end())) {
        return true;
      }
    }
  }
  return false;
}

// Whom a listing's ?assignee= names, with their roles (none for a user who is not there).
Actor assignee_named(const View& v, const HttpRequest& q) {
  Actor assignee;
  assignee.id = q.param("assignee");
  if (const User* u = v.catalog.user(assignee.id)) assignee.roles = u->roles;
  return assignee;
}

// The index keys of the open tickets waiting on the user or one of their roles, and with
// `todos` of the tickets holding to-dos for them: their inbox.
std::vector<std::string> waiting_keys(const Actor& a, bool todos) {
  std::vector<std::string> keys = {"user:" + a.id};
  for (const auto& r : a.roles) keys.push_back("role:" + r);
  if (todos) {
    keys.push_back("todo-user:" + a.id);
    for (const auto& r : a.roles) keys.push_back("todo-role:" + r);
  }
  return keys;
}

// The tickets that may hold work no one can do: those waiting on, or holding a to-do for, a
// user who cannot act or a role no one who can holds (each is checked with is_stranded()).
std::vector<const projections::TicketIdSet*> maybe_stranded(const View& v,
                                                            const std::set<std::string>& staffed) {
  return v.sets_waiting_on(
      [&](const AssigneeSpec& a) { return !someone_can_act_as(a, v.catalog, staffed); });
}

projections::TicketIdSet waiting_on(const View& v, const Actor& a, bool todos) {
  projections::TicketIdSet ids;
  for (const std::string& key : waiting_keys(a, todos)) {
    if (auto it = v.index.find(key); it != v.index.end())
      ids.insert(it->second.begin(), it->second.end());
  }
  return ids;
}

// The tickets a listing considers: every one, or the members of the smallest set one of its
// filters names (each filter is still checked on every ticket considered).
struct ListingScope {
  enum class Over { kAll, kIndex, kWaitingOnCaller, kWaitingOnAssignee, kMaybeStranded };
  Over over = Over::kAll;
  std::string index_key;  // kIndex: found again at each step of the scan
  size_t size = 0;        // the most tickets considered
};

// A listing's scope from its filters, read off the sizes of the index sets: cheap enough to
// decide where the listing runs. Filters not valid yet narrow to nothing; the listing refuses them.
ListingScope listing_scope(const View& v, const HttpRequest& q, bool inbox, const Actor& caller) {
  using Over = ListingScope::Over;
  auto size_of = [&](const std::string& key) {
    auto it = v.index.find(key);
    return it == v.index.end() ? size_t{0} : it->second.size();
  };
  auto waiting_count = [&](const Actor& a, bool todos) {  // at least waiting_on()'s count
    size_t n = 0;
    for (const std::string& key : waiting_keys(a, todos)) n += size_of(key);
    return n;
  };
  ListingScope scope{Over::kAll, "", v.tickets.size()};
  auto narrow = [&](Over over, size_t size, std::string key) {
    if (size < scope.size) scope = {over, std::move(key), size};
  };
  auto narrow_to_index = [&](std::string key) { narrow(Over::kIndex, size_of(key), key); };
  if (inbox) narrow(Over::kWaitingOnCaller, waiting_count(caller, true), "");
  if (q.has_param("assignee"))
    narrow(Over::kWaitingOnAssignee, waiting_count(assignee_named(v, q), false), "");
  if (q.has_param("form")) narrow_to_index("form:" + q.param("form"));
  if (q.has_param("node")) narrow_to_index("node:" + q.param("node"));
  if (!q.param("status").empty()) narrow_to_index("state:" + q.param("status"));
  if (q.param("stranded") == "true") {
    size_t n = 0;
    for (const auto* set : maybe_stranded(v, staffed_roles(v.catalog))) n += set->size();
    narrow(Over::kMaybeStranded, n, "");
  }
  if (q.has_param("priority")) narrow_to_index("priority:" + q.param("priority"));
  // A set that holds more than a quarter of the tickets narrows too little to pay for finding
  // each of its members by id: the tickets are scanned instead.
  if (scope.size > v.tickets.size() / 4) scope = {Over::kAll, "", v.tickets.size()};
  return scope;
}

}  // namespace

Context Api::context(const CallPtr& call, const View& v) const {
  Context ctx;
  ctx.actor = call->actor;
  ctx.now_us = now_us();
  ctx.catalog = &v.catalog;
  ctx.lookups.user_exists = [&v](std::string_view u, std::string_view role) {
    return active_user_in_role(v.catalog, u, role);
  };
  ctx.lookups.attachment_type = [&v](std::string_view a) {
    auto it = v.attachments.find(std::string(a));
    return it == v.attachments.end() ? std::string() : it->second.content_type;
  };
  ctx.lookups.ticket_form = [&v](std::string_view t) {
    const TicketState* ticket = v.ticket(t);
    return ticket ? ticket->form_id : std::string();
  };
  return ctx;
}

void Api::run_ticket_command(const CallPtr& call, const std::string& ticket_id, Command command,
                             std::optional<uint64_t> if_match, int status, int attempt) {
  const bool submit = std::holds_alternative<SubmitTicket>(command);
  std::string id = ticket_id;
  // A new submission's number, given back when nothing is written under it. Not after a failed
  // write: the log may hold it after all, and a number used twice is worse than a gap.
  std::optional<uint64_t> number;
  if (submit && id.empty()) {
    number =
        ticket_numbers_.take(model_.read([](const View& v) { return v.max_ticket_number + 1; }));
    id = projections::ticket_id_for(*number);
  }
  auto give_back_number = [this, number] {
    if (number) ticket_numbers_.give_back(*number);
  };
  std::string idempotency = submit ? call->req.header("idempotency-key") : "";
  std::string request_digest;  // what a repeat under the same key must ask for again
  if (!idempotency.empty()) {
    idempotency = call->actor.id + "/" + idempotency;
    const SubmitTicket& asked = std::get<SubmitTicket>(command);
    request_digest =
        token_hash(asked.form_id + '\0' + asked.flow_id + '\0' + Value(asked.fields).to_json());
  }

  uint64_t current_version = 0;
  std::optional<uint64_t> existing;  // an idempotent repeat: the ticket it made
  const std::string portal_code = random_token(12);
  std::unique_lock picking(picks_mu_, std::defer_lock);  // taken only if decide reads a turn
  auto decided = model_.read([&](const View& v) -> Result<std::vector<DomainEvent>> {
    if (!idempotency.empty()) {
      if (auto it = v.idempotency.find(idempotency); it != v.idempotency.end()) {
        // The same key with another request is a client's mistake, not a retry: answering with
        // the first ticket would drop this one's fields without a word.
        const std::string& digest = it->second.request_digest;
        if (!digest.empty() && digest != request_digest) {
          return key_used_for_another_request(it->second.ticket);
        }
        id = it->second.ticket;
        existing = 1;
        return std::vector<DomainEvent>{};
      }
    }
    const TicketState* found = v.ticket(id);
    if (!submit && !found) return error(codes::kNotFound, "no ticket " + id);
    TicketState state = found ? *found : TicketState{};
    current_version = state.version;
    if (if_match && *if_match != state.version) {
      return error(codes::kConflict, "stale version");
    }
    Context ctx = context(call, v);
    ctx.new_ticket_id = id;
    ctx.new_portal_code = portal_code;
    ctx.last_pick = [&](std::string_view role) {
      if (!picking.owns_lock()) picking.lock();
      if (auto it = picks_decided_.find(std::string(role)); it != picks_decided_.end())
        return it->second;
      auto it = v.last_picks.find(std::string(role));
      return it == v.last_picks.end() ? std::string() : it->second;
    };
    ctx.open_load = [&](std::string_view user) {
      if (!picking.owns_lock()) picking.lock();
      auto it = v.index.find("user:" + std::string(user));
      size_t load = it == v.index.end() ? 0 : it->second.size();
      for (const PickInFlight& p : picks_in_flight_) {
        if (p.user != user) continue;
        const TicketState* t = v.ticket(p.ticket);
        if (!t || t->version < p.version) ++load;  // not in this view's counts yet
      }
      return load;
    };
    return decide(state, command, ctx);
  });
  // Held until this command's events are applied (or its append has failed): then the read
  // model's counts include its picks, or they never happened.
  std::shared_ptr<void> picks_in_flight;
  if (picking.owns_lock()) {
    const uint64_t decision = ++decisions_picking_;
    size_t picks = 0;
    for (size_t i = 0; decided.ok() && i < decided.value().size(); ++i) {
      if (auto picked = picked_member(decided.value()[i])) {
        picks_decided_[picked->role] = picked->user;
        picks_in_flight_.push_back({picked->user, id, current_version + i + 1, decision});
        ++picks;
      }
    }
    picking.unlock();
    if (picks) {
      picks_in_flight = std::shared_ptr<void>(nullptr, [this, decision](void*) {
        std::lock_guard lk(picks_mu_);
        std::erase_if(picks_in_flight_,
                      [&](const PickInFlight& p) { return p.decision == decision; });
      });
    }
  }
  if (!decided.ok() || existing) give_back_number();
  if (!decided.ok()) {
    if (decided.error().code == codes::kConflict && if_match)
      return call->fail_conflict("the ticket", current_version);
    return call->fail(decided.error());
  }
  auto answer = [this, call, id, status, submit](uint64_t position) {
    JsonWriter w(2048);  // a ticket's view is 1-2 KB: written without regrowing
    uint64_t version = 0;
    bool found = model_.read([&](const View& v) {
      const TicketState* t = v.ticket(id);
      if (!t) return false;
      version = t->version;
      w.begin_object().key("id").string(id).key("version").number(t->version);
      w.key("position").number(position);
      if (submit) w.key("portal_code").string(t->portal_code);
      for (const auto& [k, v] : call->extra_members) {
        w.key(k);
        v.write(w);
      }
      w.key("ticket");
      write_ticket_view(w, *t, v.catalog, call->actor, now_us());
      w.end_object();
      return true;
    });
    if (!found) return call->fail(404, codes::kNotFound, "no ticket " + id);
    call->set_etag(version);
    call->ok(status, w.take());
  };
  if (decided.value().empty()) {  // nothing changes (or an idempotent repeat)
    return answer(model_.applied_position());
  }

  std::vector<DomainEvent>& events = decided.value();
  if (!idempotency.empty()) {  // the submission records its key, which the model indexes
    Object data = events.front().data.as_object();
    data.emplace_back("idempotency_key", Value(idempotency));
    data.emplace_back("idempotency_digest", Value(request_digest));
    events.front().data = Value(std::move(data));
  }
  std::vector<storage::NewEvent> batch;
  for (const auto& e : events) batch.push_back(to_new_event(e, *call));
  if (!idempotency.empty()) {
    // Event ids derive from the key: a concurrent repeat is then a duplicate to the log itself,
    // and is answered with the ticket the first one made.
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].id = EventId::derived("ticketd/submit/" + idempotency + "/" + std::to_string(i));
      batch[i].fresh_id = false;
    }
  }
  auto expected = current_version ? storage::ExpectedVersion::Exact(current_version)
                                  : storage::ExpectedVersion::NoStream();
  log_.append_async(
      ticket_stream(id), expected, std::move(batch),
      [this, call, id, command = std::move(command), if_match, status, attempt, answer, idempotency,
       request_digest, picks_in_flight, give_back_number](storage::AppendResult r) mutable {
        using Code = storage::Status::Code;
        if (r.status.code() == Code::kConflict) {
          if (if_match || attempt >= 5) return call->fail_conflict("the ticket", r.stream_version);
          // Someone else changed the ticket first: decide again on the newer state.
          return when_applied(call, log_.last_position(),
                              [this, call, id, command, if_match, status, attempt]() mutable {
                                run_ticket_command(call, id, std::move(command), if_match, status,
                                                   attempt + 1);
                              });
        }
        if (r.status.code() == Code::kInvalidArgument) {
          give_back_number();  // refused before anything was written
          return call->fail(422, codes::kInvalidValue,
                            idempotency.empty()
                                ? r.status.message()
                                : "this Idempotency-Key was used for a different request");
        }
        if (!r.status.ok()) return call->fail(503, "unavailable", r.status.ToString());
        if (r.duplicate) {
          // The same Idempotency-Key raced with this request and won: answer with its ticket.
          give_back_number();
          return when_applied(
              call, r.last_position, [this, call, idempotency, request_digest, status]() {
                std::optional<projections::IdempotentSubmission> won =
                    model_.read([&](const View& v) {
                      auto it = v.idempotency.find(idempotency);
                      return it == v.idempotency.end() ? std::nullopt : std::optional(it->second);
                    });
                const std::string original = won ? won->ticket : std::string();
                // The one that won asked for something else: as a repeat after it would be told.
                if (won && !won->request_digest.empty() && won->request_digest != request_digest) {
                  return call->fail(key_used_for_another_request(original));
                }
                JsonWriter w;
                bool ok = model_.read([&](const View& v) {
                  const TicketState* t = v.ticket(original);
                  if (!t) return false;
                  w.begin_object().key("id").string(t->id).key("version").number(t->version);
                  w.key("position")
                      .number(v.applied_position)
                      .key("portal_code")
                      .string(t->portal_code);
                  w.key("ticket");
                  write_ticket_view(w, *t, v.catalog, call->actor, now_us());
                  w.end_object();
                  return true;
                });
                if (!ok)
                  return call->fail(503, "unavailable", "the original submission is not visible");
                call->ok(status, w.take());
              });
        }
        when_applied(call, r.last_position,
                     [answer, r, picks_in_flight] { answer(r.last_position); });
      });
}

void Api::fire_timer(const std::string& ticket, const std::string& timer, uint64_t entered_version,
                     std::function<void(bool refused)> done) {
  auto call = std::make_shared<Call>();
  call->req.method = "TIMER";
  call->req.path = ticket + "/" + timer;
  call->req.request_id = "timer";
  call->actor = Actor{kSystemActor, {}, false, false, false};
  call->respond = [done = std::move(done), ticket, timer](HttpResponse r) {
    if (r.status >= 400) spdlog::warn("timer {} on {} not fired: {}", timer, ticket, r.body);
    done(r.status >= 400);
  };
  run_ticket_command(call, ticket, FireTimer{timer, entered_version}, std::nullopt, 200);
}

void Api::apply_lookup(const std::string& ticket, ApplyLookup answer,
                       std::function<void(bool refused)> done) {
  auto call = std::make_shared<Call>();
  call->req.method = "LOOKUP";
  call->req.path = ticket + "/" + std::to_string(answer.lookup);
  call->req.request_id = "lookup";
  call->actor = Actor{kSystemActor, {}, false, false, false};
  call->respond = [done = std::move(done), path = call->req.path](HttpResponse r) {
    if (r.status >= 400) spdlog::warn("lookup {} not recorded: {}", path, r.body);
    done(r.status >= 400);
  };
  run_ticket_command(call, ticket, std::move(answer), std::nullopt, 200);
}

void Api::post_ticket(const CallPtr& call) {
  if (!call->parse_body()) return;
  SubmitTicket cmd;
  if (!call->only_members({"form", "flow", "fields"}) ||  // a misspelt "from" named as such
      !call->string_member("form", &cmd.form_id, true) ||
      !call->string_member("flow", &cmd.flow_id, false) ||  // absent: the form's one flow
      !call->object_member("fields", &cmd.fields)) {
    return;
  }
  run_ticket_command(call, "", std::move(cmd), std::nullopt, 201);
}

storage::Status Api::read_ticket_until(
    const std::string& id, uint64_t position, int64_t time,
    const std::function<void(const storage::RecordedEvent&, DomainEvent&&)>& visit) const {
  return log_.read_stream(ticket_stream(id), 1, SIZE_MAX, [&](const storage::RecordedEvent& e) {
    if (e.position() > position || e.recorded_at_us() > time) return false;
    DomainEvent d;
    if (projections::to_domain_event(e, &d)) visit(e, std::move(d));
    return true;
  });
}

void Api::get_ticket(const CallPtr& call, const std::string& id) {
  uint64_t min_position = 0;
  if (!call->uint_param("min_position", &min_position)) return;
  if (min_position > log_.last_position()) {
    return call->fail(
        400, "bad_parameter",
        "min_position " + std::to_string(min_position) + " is beyond the end of the log",
        "min_position");
  }
  if (call->req.has_param("as_of")) {
    // The ticket exactly as it was: its stream replayed up to a position or a time.
    std::string as_of = call->req.param("as_of");
    uint64_t position = UINT64_MAX;
    int64_t time = INT64_MAX;
    if (!call->as_of(log_.last_position(), &position, &time)) return;
    TicketState state;
    auto s = read_ticket_until(
        id, position, time,
        [&](const storage::RecordedEvent&, const DomainEvent& d) { evolve_in_place(state, d); });
    if (!s.ok()) return call->fail(503, "unavailable", s.ToString());
    if (!state.exists())
      return call->fail(404, codes::kNotFound, "no ticket " + id + " at " + as_of);
    JsonWriter w;
    model_.read([&](const View& v) {
      write_ticket_view(w, state, v.catalog, call->actor, now_us(), true);
      return 0;
    });
    return call->ok(200, w.take());
  }
  when_applied(call, min_position, [this, call, id] {
    JsonWriter w;
    uint64_t version = 0;
    bool found = model_.read([&](const View& v) {
      const TicketState* t = v.ticket(id);
      if (!t) return false;
      write_ticket_view(w, *t, v.catalog, call->actor, now_us());
      version = t->version;
      return true;
    });
    if (!found) return call->fail(404, codes::kNotFound, "no ticket " + id);
    call->set_etag(version);
    call->ok(200, w.take());
  });
}

void Api::answer_listing(const CallPtr& call, bool inbox) {
  // A listing that considers few tickets is answered at once here, on the connection's thread:
  // an agent's inbox of a few tickets took 0.4 s behind one search over a million on the query
  // thread, 1.9 s behind four. Larger ones, and exports, which render up to 10,000 rows, wait
  // their turn there.
  const bool quick = !asks_for_csv(call->req) && model_.read([&](const View& v) {
    return listing_scope(v, call->req, inbox, call->actor).size <= options_.quick_listing;
  });
  metrics_.listing_started(!quick);
  if (quick) return list_tickets(call, inbox);
  run_as_query(call, [this, call, inbox] { list_tickets(call, inbox); });
}

void Api::list_tickets(const CallPtr& call, bool inbox) {
  // Accept: text/csv is an export for a spreadsheet: larger pages, the next cursor in a header.
  const bool csv = asks_for_csv(call->req);
  bool bom = false;
  if (csv && !call->bool_param("bom", &bom)) return;
  const date::time_zone* zone = nullptr;  // the export's times on this clock; RFC 3339 UTC without
  if (!call->zone_param(&zone)) return;
  if (zone && !csv) {
    return call->fail(400, "bad_parameter",
                      "tz sets the times of the CSV export (Accept: text/csv); JSON times are "
                      "RFC 3339 UTC",
                      "tz");
  }
  uint64_t limit = csv ? 10000 : 50, offset = 0;
  if (!call->limit_param(&limit, csv ? 10000 : 500)) return;
  if (call->req.has_param("cursor") && !call->uint_param("cursor", &offset)) return;
  const auto& q = call->req;
  int64_t from = INT64_MIN, to = INT64_MAX;
  for (auto [name, slot] : {std::pair{"created_from", &from}, std::pair{"created_to", &to}}) {
    if (!q.has_param(name)) continue;
    auto t = parse_rfc3339(q.param(name));
    if (!t)
      return call->fail(400, "bad_parameter", std::string(name) + " must be an RFC 3339 time",
                        name);
    *slot = *t;
  }
  // A window turned round is a mistake to say, not an empty list to show.
  if (to < from)
    return call->fail(400, "bad_parameter", "created_to must not be before created_from",
                      "created_to");
  std::string sort = q.has_param("sort") ? q.param("sort") : "created_at";
  static const std::vector<std::string> kSorts = {"created_at", "-created_at", "updated_at",
                                                  "-updated_at", "sla_due"};
  if (std::find(kSorts.begin(), kSorts.end(), sort) == kSorts.end()) {
    return call->fail(400, "bad_parameter",
                      "sort must be created_at, -created_at, updated_at, -updated_at or sla_due",
                      "sort");
  }
  std::string sla_filter = q.param("sla");
  if (!sla_filter.empty() && sla_filter != "breached" && sla_filter != "ok") {
    return call->fail(400, "bad_parameter", "sla must be breached or ok", "sla");
  }
  // ?reopened=true: the tickets whose close did not hold (the report's reopen_rate, ticket by
  // ticket); false: those never reopened.
  std::optional<bool> reopened;
  if (q.has_param("reopened") && !call->bool_param("reopened", &reopened.emplace())) return;
  // ?stranded=true: the tickets holding work no one can do (their users disabled, their roles
  // left without an active member): open ones waiting on no one, for an administrator to
  // transfer, and those holding to-dos for no one, for them to mark done.
  std::optional<bool> stranded;
  if (q.has_param("stranded") && !call->bool_param("stranded", &stranded.emplace())) return;
  std::string status = q.param("status");
  if (!status.empty() && status != "open" && status != "closed") {
    return call->fail(400, "bad_parameter", "status must be open or closed", "status");
  }
  // Forms, nodes (of any flow version: a ticket may sit at one a later version dropped) and
  // users are never removed: one that is not there is misspelt, and its empty list a mistake.
  auto known =
      model_.read([&](const View& v) -> std::optional<std::pair<std::string, std::string>> {
        if (q.has_param("form") && !v.catalog.form(q.param("form")))
          return std::pair{"form", "no form \"" + q.param("form") + "\""};
        if (q.has_param("node") &&
            !form_has_node(v.catalog, q.param("form"), q.param("node"), FlowVersions::kEvery)) {
          return std::pair{"node", "no flow" +
                                       (q.has_param("form") ? " of form " + q.param("form") : "") +
                                       " has a node \"" + q.param("node") + "\""};
        }
        if (q.has_param("priority") &&
            !any_form_takes_priority(v.catalog, q.param("form"), q.param("priority"))) {
          return std::pair{"priority", "no form" +
                                           (q.has_param("form") ? " " + q.param("form") : "") +
                                           " has a priority \"" + q.param("priority") + "\""};
        }
        if (q.has_param("assignee") && !v.catalog.user(q.param("assignee")))
          return std::pair{"assignee", "no user \"" + q.param("assignee") + "\""};
        return std::nullopt;
      });
  if (known) return call->fail(400, "bad_parameter", known->second, known->first);
  // The operands that need the views, read once: a listing may consider a million tickets.
  std::optional<Actor> assignee;
  ListingScope scope;
  projections::TicketIdSet waiting;  // the scope's tickets when it is not an index set
  std::set<std::string> staffed;
  model_.read([&](const View& v) {
    if (q.has_param("assignee")) assignee = assignee_named(v, q);
    scope = listing_scope(v, q, inbox, call->actor);
    if (scope.over == ListingScope::Over::kWaitingOnCaller)
      waiting = waiting_on(v, call->actor, true);
    if (scope.over == ListingScope::Over::kWaitingOnAssignee)
      waiting = waiting_on(v, *assignee, false);
    if (stranded) staffed = staffed_roles(v.catalog);
    if (scope.over == ListingScope::Over::kMaybeStranded) {
      for (const auto* set : maybe_stranded(v, staffed)) waiting.insert(set->begin(), set->end());
    }
  });

  const int64_t now = now_us();
  std::optional<TextQuery> text;
  if (q.has_param("q")) text.emplace(q.param("q"));
  if (text && text->terms.empty()) text.reset();  // q= of spaces alone looks for nothing
  const std::optional<std::string> form =
      q.has_param("form") ? std::optional(q.param("form")) : std::nullopt;
  const std::optional<std::string> node =
      q.has_param("node") ? std::optional(q.param("node")) : std::nullopt;
  const std::optional<Value> priority =
      q.has_param("priority") ? std::optional(Value(q.param("priority"))) : std::nullopt;
  const bool by_due = sort == "sla_due", by_updated = sort.find("updated") != std::string::npos;
  // Each hit with its sort key, computed once, and its place in the scan, which breaks ties.
  struct Hit {
    int64_t key;
    size_t seq;
    projections::TicketKey ticket;
  };
  std::vector<Hit> hits;
  auto consider = [&](const View& v, const TicketState& t, projections::TicketKey ticket) {
    if (inbox && !in_inbox_of(t, call->actor)) return;
    if (form && t.form_id != *form) return;
    if (node && t.node != *node) return;
    if (!status.empty() && t.closed != (status == "closed")) return;
    if (priority && !(t.field("priority") == *priority)) return;
    if (assignee && !is_assignee(t, *assignee)) return;
    if (reopened && (t.reopens > 0) != *reopened) return;
    if (stranded && is_stranded(t, v.catalog, staffed) != *stranded) return;
    if (t.created_at < from || t.created_at > to) return;
    if (text && !text_matches(t, *text, v.catalog, call->actor)) return;
    int64_t key = by_updated ? t.updated_at : t.created_at;
    if (!sla_filter.empty() || by_due) {
      const SlaStanding sla = v.sla_standing(t, now);
      if (!sla_filter.empty() && sla.breached != (sla_filter == "breached")) return;
      if (by_due) key = sla.due_at ? sla.due_at : INT64_MAX;  // none last
    }
    hits.push_back({key, hits.size(), ticket});
  };
  // The scan, in id order, a step of scan_step tickets at a time under the shared lock, which
  // holds back the projection applying events: between steps the lock is given up, and taken
  // again only once a projection waiting for it has had it. A search over a million tickets took
  // 0.3 s in one step, and every submission waited for it (and for ever behind two searches in
  // turn). A ticket changed meanwhile is seen as it was when its step came.
  std::optional<projections::TicketKey> after_key;  // where the last step ended
  std::optional<std::string> after_id;
  for (bool done = false; !done;) {
    done = model_.read([&](const View& v) {
      static const projections::TicketIdSet kNone;
      ScanAhead ahead(text || priority, text.has_value());
      auto considered = [&](const ScanAhead::Item& item) { consider(v, *item.ticket, item.key); };
      if (scope.over != ListingScope::Over::kAll) {
        const projections::TicketIdSet* set = &waiting;
        if (scope.over == ListingScope::Over::kIndex) {
          auto it = v.index.find(scope.index_key);
          set = it == v.index.end() ? &kNone : &it->second;
        }
        auto it = after_key ? set->upper_bound(*after_key) : set->begin();
        for (size_t n = 0; it != set->end() && n < options_.scan_step; ++it, ++n) {
          if (const TicketState* t = v.ticket_by_key(*it)) ahead.push({t, *it}, considered);
        }
        ahead.drain(considered);
        if (it == set->end()) return true;
        after_key = *std::prev(it);
        return false;
      }
      auto it = after_id ? v.tickets.upper_bound(*after_id) : v.tickets.begin();
      for (size_t n = 0; it != v.tickets.end() && n < options_.scan_step; ++it, ++n) {
        ahead.push({it->second.get(), v.ticket_key(it->first)}, considered);
      }
      ahead.drain(considered);
      if (it == v.tickets.end()) return true;
      after_id = std::prev(it)->first;
      return false;
    });
    if (!done) model_.let_writers_in();
  }
  // Only the hits up to the page's end are put in order: a page of 20 from a million hits
  // costs a selection, not a sort of them all.
  const bool desc = sort[0] == '-';
  // (A cursor past the end, however large, is an empty page: no sum may wrap.)
  const uint64_t page_begin = std::min<uint64_t>(offset, hits.size());
  const uint64_t page_end = page_begin + std::min<uint64_t>(limit, hits.size() - page_begin);
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(page_end), hits.end(),
                    [desc](const Hit& a, const Hit& b) {
                      if (a.key != b.key) return desc ? a.key > b.key : a.key < b.key;
                      return a.seq < b.seq;
                    });
  const uint64_t total = hits.size();
  const uint64_t next_cursor = page_end < total ? page_end : 0;  // 0: the last page
  // The page's tickets as they are now (tickets are never removed), read a few at a time like
  // the scan, for the same reason: a CSV page of 10,000 rows held the lock for ~40 ms, a JSON page
  // of 500 tickets 10-25 ms, and submissions waited as long. A ticket rendered costs what a few
  // hundred considered do: 64 a hold at most.
  const uint64_t render_step = std::min<uint64_t>(64, options_.scan_step);
  JsonWriter w;
  TicketTable table(call->actor, zone);
  if (!csv) w.begin_object().key("items").begin_array();
  for (uint64_t i = page_begin; i < page_end;) {
    model_.read([&](const View& v) {
      for (const uint64_t step_end = std::min(i + render_step, page_end); i < step_end; ++i) {
        const TicketState* t = v.ticket_by_key(hits[i].ticket);
        if (!t) continue;
        if (csv)
          table.add(*t, v.catalog, v.sla_standing(*t, now));
        else
          write_ticket_view(w, *t, v.catalog, call->actor, now);
      }
    });
    if (i < page_end) model_.let_writers_in();
  }
  if (csv) {
    HttpResponse r = call->csv(projections::report_csv(std::move(table).finish()), bom);
    r.headers.emplace_back("X-Total-Count", std::to_string(total));
    if (next_cursor != 0) r.headers.emplace_back("X-Next-Cursor", std::to_string(next_cursor));
    return call->respond(std::move(r));
  }
  w.end_array().key("next_cursor");
  if (next_cursor)
    w.string(std::to_string(next_cursor));
  else
    w.null();
  w.key("total").number(total);
  w.end_object();
  call->ok(200, w.take());
}

void Api::patch_ticket(const CallPtr& call, const std::string& id) {
  if (!call->parse_body() || !call->only_members({"fields"})) return;
  ChangeFields cmd;
  if (!call->object_member("fields", &cmd.fields)) return;
  std::optional<uint64_t> if_match;
  if (!call->if_match(&if_match)) return;
  cmd.expected_version = if_match;
  run_ticket_command(call, id, std::move(cmd), if_match, 200);
}

void Api::post_action(const CallPtr& call, const std::string& id) {
  // A misspelt member ("coment") would otherwise drop what it carried without a word.
  if (!call->parse_body() || !call->only_members({"action", "fields", "comment", "to"})) return;
  TakeAction cmd;
  if (!call->string_member("action", &cmd.action, true) ||
      !call->object_member("fields", &cmd.fields) ||
      !call->string_member("comment", &cmd.comment, false) ||
      !call->string_member("to", &cmd.to, false)) {
    return;
  }
  std::optional<uint64_t> if_match;
  if (!call->if_match(&if_match)) return;
  run_ticket_command(call, id, std::move(cmd), if_match, 200);
}

namespace {

bool portal_code_matches(const TicketState* t, const std::string& code) {
  return t && !code.empty() && code.size() == t->portal_code.size() &&
         sodium_memcmp(code.data(), t->portal_code.data(), code.size()) == 0;
}

constexpr size_t kMaxFilenameLength = 255;

// Pictures, PDFs and plain text: what a browser shows without running anything in it.
bool shown_inline(std::string_view content_type) {
  const std::string type = media_type_essence(content_type);
  return is_picture_type(type) || type == "application/pdf" || type == "text/plain";
}

}  // namespace

// A portal call acts as the ticket's customer when its code matches; a wrong code and an unknown
// ticket answer alike (404), so the portal never reveals that a ticket exists.
bool Api::enter_portal(const CallPtr& call, const std::string& id) {
  bool ok = model_.read(
      [&](const View& v) { return portal_code_matches(v.ticket(id), call->req.param("code")); });
  if (!ok) {
    call->fail(404, codes::kNotFound, "no such ticket");
    return false;
  }
  // The code is the customer's token: it has a signed-in caller's limit, or one customer could
  // fill the log with comments as fast as the server takes them.
  if (int64_t wait = limiter_.retry_after("portal:" + id, std::chrono::steady_clock::now())) {
    call->fail_rate_limited(wait, "too many requests for this ticket's portal; retry after " +
                                      std::to_string(wait) + " s");
    return false;
  }
  call->actor = portal_actor();
  return true;
}

void Api::post_rating(const CallPtr& call, const std::string& id, bool portal) {
  if (portal && !enter_portal(call, id)) return;
  if (!call->parse_body() || !call->only_members({"score", "comment"})) return;
  const Value& score = call->body["score"];
  if (!score.is_number() || score.as_number() != static_cast<int>(score.as_number())) {
    return call->fail(422, codes::kWrongType, "score must be a whole number from 1 to 5", "score");
  }
  RateTicket cmd{static_cast<int>(score.as_number()), ""};
  if (!call->string_member("comment", &cmd.comment, false)) return;
  run_ticket_command(call, id, std::move(cmd), std::nullopt, 201);
}

void Api::post_reopen(const CallPtr& call, const std::string& id, bool portal) {
  if (portal && !enter_portal(call, id)) return;
  // The company's flow decides where the customer's reopen goes: a "node" from the portal is
  // refused as an unknown member, not dropped.
  if (!call->parse_body()) return;
  if (!(portal ? call->only_members({"reason"}) : call->only_members({"reason", "node"}))) return;
  ReopenTicket cmd;
  if (!call->string_member("reason", &cmd.reason, true) ||
      !call->string_member("node", &cmd.node, false)) {
    return;
  }
  std::optional<uint64_t> if_match;
  if (!portal && !call->if_match(&if_match)) return;
  run_ticket_command(call, id, std::move(cmd), if_match, 200);
}

void Api::post_todo_done(const CallPtr& call, const std::string& id, const std::string& todo) {
  // Nothing to say but that it is done: no body, or an empty object.
  if (!call->req.body.empty() && (!call->parse_body() || !call->only_members({}))) return;
  FinishTodo cmd;
  auto [end, ec] = std::from_chars(todo.data(), todo.data() + todo.size(), cmd.todo);
  if (ec != std::errc() || end != todo.data() + todo.size() || todo.empty()) {
    return call->fail(404, codes::kNotFound, "ticket " + id + " has no open to-do " + todo);
  }
  run_ticket_command(call, id, cmd, std::nullopt, 200);
}

void Api::post_attachment(const CallPtr& call, const std::string& ticket_id) {
  if (call->req.body.empty())
    return call->fail(422, codes::kRequired, "the upload is empty", "body");
  if (!ticket_id.empty()) {
    bool exists = model_.read([&](const View& v) { return v.ticket(ticket_id) != nullptr; });
    if (!exists) return call->fail(404, codes::kNotFound, "no ticket " + ticket_id);
  }
  std::string id = "att-" + random_token(12);
  // The bytes are asked what they are: a "picture" that is not one would go into an image field
  // and a print-out, and an upload that names no file type (curl's form encoding, a bare
  // octet-stream) is recorded as what its bytes are.
  std::string content_type = call->req.header("content-type");
  const std::string declared = media_type_essence(content_type);
  const std::optional<std::string> sniffed = sniffed_media_type(call->req.body);
  if (sniffed && is_picture_type(declared) && *sniffed != declared) {
    return call->fail(422, codes::kInvalidValue,
                      "the file is not " + declared + ": its bytes are " + *sniffed,
                      "Content-Type");
  }
  if (declared.empty() || declared == "application/octet-stream" ||
      declared == "application/x-www-form-urlencoded") {
    content_type = sniffed ? *sniffed : "application/octet-stream";
  }
  // Header values are ASCII on the wire: a UTF-8 name comes percent-encoded (as browsers send it).
  std::string filename;
  if (!percent_decode(call->req.header("x-filename"), false, &filename)) {
    return call->fail(400, "bad_request", "X-Filename has a malformed %-escape", "X-Filename");
  }
  if (!valid_utf8(filename)) {
    return call->fail(400, "bad_request", "X-Filename is not percent-encoded UTF-8", "X-Filename");
  }
  if (auto wrong = control_character_in(filename, TextLines::kOne)) {
    return call->fail(400, "bad_request", "X-Filename " + *wrong, "X-Filename");
  }
  // The name, not where it was: some browsers and scripts send a whole path ("C:\\Users\\…\\a.pdf",
  // "../a.pdf"), which a client saving the download would otherwise be offered as a place.
  if (size_t slash = filename.find_last_of("/\\"); slash != std::string::npos) {
    filename.erase(0, slash + 1);
  }
  if (filename == "." || filename == "..") filename.clear();
  if (utf8_length(filename) > kMaxFilenameLength) {
    return call->fail(
        400, "bad_request",
        "X-Filename is longer than " + std::to_string(kMaxFilenameLength) + " characters",
        "X-Filename");
  }
  if (filename.empty()) filename = id;
  uint64_t size = call->req.body.size();
  if (auto s = log_.put_attachment(id, call->req.body); !s.ok()) {
    return call->fail(503, "unavailable", s.ToString());
  }
  DomainEvent uploaded{projections::event_types::kAttachmentUploaded,
                       Value(Object{{"id", Value(id)},
                                    {"filename", Value(filename)},
                                    {"content_type", Value(content_type)},
                                    {"size", Value(static_cast<int64_t>(size))}}),
                       call->actor.id, now_us(), std::nullopt};
  if (ticket_id.empty()) {
    return append_and_answer(
        call, "attachment-" + id, storage::ExpectedVersion::NoStream(), {uploaded}, 201,
        [id, filename, size](JsonWriter& w) {
          w.begin_object().key("attachment").string(id).key("filename").string(filename);
          w.key("size").number(size).end_object();
        });
  }
  std::vector<storage::NewEvent> batch{to_new_event(uploaded, *call)};
  log_.append_async(
      "attachment-" + id, storage::ExpectedVersion::NoStream(), std::move(batch),
      [this, call, id, ticket_id, filename, content_type, size](storage::AppendResult r) {
        if (!r.status.ok()) return call->fail(503, "unavailable", r.status.ToString());
        when_applied(call, r.last_position, [=, this] {
          call->extra_members.emplace_back("attachment", Value(id));
          run_ticket_command(call, ticket_id, AddAttachment{id, filename, content_type, size},
                             std::nullopt, 201);
        });
      });
}

namespace {
// An attachment is opened by its uploader, administrators and auditors, and whoever may read a
// place a ticket has held it in: the field, or the ticket itself for the ticket's own
// attachments (every signed-in user reads tickets). The portal's customer came by one ticket's
// code: only that ticket's places count for them (`only_ticket`).
bool may_open(const View& v, const projections::AttachmentInfo& a, const Actor& actor,
              std::string_view only_ticket) {
  if (actor.admin || actor.auditor || (!actor.portal_customer && actor.id == a.uploader))
    return true;
  for (const auto& place : a.places) {
    if (!only_ticket.empty() && place.ticket != only_ticket) continue;
    const TicketState* t = v.ticket(place.ticket);
    if (!t) continue;
    if (place.field.empty()) return !actor.portal_customer;
    const FlowDef* flow = v.catalog.flow(t->flow_id, t->flow_version);
    if (flow && may_read_field(*t, *flow, actor, place.field)) return true;
  }
  return false;
}
}  // namespace

// An upload is served as the type its uploader declared, from the API's own origin. Were a
// browser to render an HTML or SVG upload there, its scripts would run as the signed-in agent
// who opened it: only types that run nothing are shown inline, the rest are downloads under a
// sandbox, and no type is sniffed.
void Api::get_attachment(const CallPtr& call, const std::string& id,
                         const std::string& portal_ticket) {
  enum class Access { kNone, kDenied, kGranted };
  std::string content_type, filename;  // what the answer needs, not the places
  Access access = model_.read([&](const View& v) {
    auto it = v.attachments.find(id);
    if (it == v.attachments.end()) return Access::kNone;
    if (!may_open(v, it->second, call->actor, portal_ticket)) return Access::kDenied;
    content_type = it->second.content_type;
    filename = it->second.filename;
    return Access::kGranted;
  });
  // The portal's customer learns of no file beyond what their ticket shows them.
  if (access == Access::kDenied && !portal_ticket.empty()) access = Access::kNone;
  if (access == Access::kDenied) {
    return call->fail(
        403, codes::kForbidden,
        "attachment " + id + " is in no ticket field you may read now, and you did not upload it");
  }
  std::string bytes;
  if (access == Access::kNone || !log_.get_attachment(id, &bytes).ok()) {
    return call->fail(404, codes::kNotFound, "no attachment " + id);
  }
  const bool inline_safe = shown_inline(content_type);
  HttpResponse response{200, content_type, std::move(bytes), {}};
  response.headers.emplace_back(
      "Content-Disposition", content_disposition(inline_safe ? "inline" : "attachment", filename));
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (!inline_safe) response.headers.emplace_back("Content-Security-Policy", "sandbox");
  call->respond(std::move(response));
}

void Api::get_ticket_events(const CallPtr& call, const std::string& id) {
  if (!call->actor.admin && !call->actor.auditor) {
    return call->fail(403, codes::kForbidden,
                      "a ticket's full history (every field) is for administrators and auditors");
  }
  // The whole history by default (the contract's "every event"); a long-lived ticket's history
  // a page at a time with limit=, cursor= (the version a page ended at), and from=P for what
  // came after position P (as on /events and the stream).
  uint64_t from = 0, after_version = 0, limit = UINT64_MAX;
  if (!call->uint_param("from", &from) || !call->uint_param("cursor", &after_version)) return;
  if (call->req.has_param("limit") && !call->limit_param(&limit)) return;
  const std::string stream = ticket_stream(id);
  const uint64_t head = log_.stream_head(stream);
  if (head == 0) return call->fail(404, codes::kNotFound, "no ticket " + id);
  JsonWriter w;
  w.begin_object().key("items").begin_array();
  uint64_t count = 0, last_version = 0;
  auto s =
      log_.read_stream(stream, after_version + 1, SIZE_MAX, [&](const storage::RecordedEvent& e) {
        if (e.position() <= from) return true;
        storage::write_event_json(w, e, shown_payload(e, call->actor));
        last_version = e.version();
        return ++count < limit;
      });
  if (!s.ok()) return call->fail(503, "unavailable", s.ToString());
  w.end_array().key("next_cursor");
  if (count == limit && last_version < head)
    w.string(std::to_string(last_version));
  else
    w.null();
  w.end_object();
  call->ok(200, w.take());
}

void Api::get_portal(const CallPtr& call, const std::string& id) {
  // A wrong code and an unknown ticket look the same: the portal never reveals that one exists.
  if (!enter_portal(call, id)) return;
  // The conversation is read from the ticket's events (the view keeps no comment texts).
  std::vector<WrittenNote> notes;
  bool exists = false;
  if (auto s = read_ticket_notes(id, &notes, &exists); !s.ok()) {
    return call->fail(503, "unavailable", s.ToString());
  }
  JsonWriter w;
  model_.read([&](const View& v) {
    write_portal_view(w, *v.ticket(id), v.catalog, notes, now_us());
    return 0;
  });
  call->ok(200, w.take());
}

void Api::post_portal_confirm(const CallPtr& call, const std::string& id) {
  if (!enter_portal(call, id)) return;
  TakeAction cmd{"confirm", {}, "", ""};
  if (!call->req.body.empty()) {
    if (!call->parse_body() || !call->only_members({"comment"}) ||
        !call->string_member("comment", &cmd.comment, false)) {
      return;
    }
  }
  run_ticket_command(call, id, std::move(cmd), std::nullopt, 200);
}

}  // namespace ticketd::api
