// Ticket routes: submit, read, change, act, rate, reopen, to-dos, history, portal.
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "api/api.h"
#include "api/call.h"
#include "api/ticket_view.h"
#include "domain/permissions.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

// A submission under an Idempotency-Key that made `ticket` from another request.
DomainError key_used_for_another_request(const std::string& ticket) {
  return {codes::kInvalidValue,
          "this Idempotency-Key was used for a different request (ticket " + ticket +
              "): use a new key for a new ticket",
          "Idempotency-Key"};
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
      write_ticket_view(w, *t, v.catalog, v.attachments, call->actor, now_us());
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
                  write_ticket_view(w, *t, v.catalog, v.attachments, call->actor, now_us());
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
      write_ticket_view(w, state, v.catalog, v.attachments, call->actor, now_us(), true);
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
      write_ticket_view(w, *t, v.catalog, v.attachments, call->actor, now_us());
      version = t->version;
      return true;
    });
    if (!found) return call->fail(404, codes::kNotFound, "no ticket " + id);
    call->set_etag(version);
    call->ok(200, w.take());
  });
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
    write_portal_view(w, *v.ticket(id), v.catalog, v.attachments, notes, now_us());
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
