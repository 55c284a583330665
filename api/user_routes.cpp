// Accounts: users (created, changed and disabled by administrators), sign-in and sign-out, and a
// user's own password. Every change is an event on the user's stream ("user-<id>") or its
// sessions' ("sessions-<id>"); the read model turns them into who may sign in and which tokens
// stand for whom.
#include <sodium.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "api/api.h"
#include "api/call.h"
#include "api/ticket_view.h"
#include "domain/permissions.h"
#include "domain/time_format.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

// argon2id, at libsodium's interactive cost (about 64 MiB and a tenth of a second). Answers the
// call and returns false when the password is too short or memory ran out.
bool hash_password(Call& call, const std::string& password, const char* member, std::string* hash) {
  if (password.size() < 8) {
    call.fail(422, codes::kOutOfRange, std::string(member) + " must have at least 8 characters",
              member);
    return false;
  }
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                        crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
    call.fail(503, "unavailable", "out of memory hashing the password");
    return false;
  }
  *hash = out;
  return true;
}

bool password_matches(const std::string& hash, const std::string& password) {
  return !hash.empty() &&
         crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

// "roles": an array of strings, into *out when present.
bool roles_member(Call& call, std::optional<std::vector<std::string>>* out) {
  const Value* roles = call.body.find("roles");
  if (!roles || roles->is_null()) return true;
  auto wrong = [&] {
    call.fail(422, codes::kWrongType, "roles must be an array of strings", "roles");
    return false;
  };
  if (!roles->is_array()) return wrong();
  out->emplace();
  for (const auto& r : roles->as_array()) {
    if (!r.is_string()) return wrong();
    (*out)->push_back(r.as_string());
  }
  return true;
}

// Tickets holding work no active user may do, now that `u` is as it is: open ones waiting only
// on users who cannot act (disabled, or auditors) and on roles with no member who can, among
// them `u` or a role `u` holds or held (`roles_before`), and those holding a to-do for `u` or
// such a role. Tickets are lost between people exactly this way — someone leaves, and what
// waited on them waits on no one — so the answer to the change names them, for an administrator
// to transfer (POST /tickets/{id}/actions {"action":"transfer","to":…}) or to mark the to-do
// done; GET /tickets?stranded=true lists them all.
void write_stranded_tickets(const View& v, const User& u,
                            const std::vector<std::string>& roles_before, JsonWriter& w) {
  constexpr size_t kListed = 100;
  const std::set<std::string> staffed = staffed_roles(v.catalog);
  auto names_u = [&](const AssigneeSpec& a) {
    auto holds = [&](const std::vector<std::string>& roles) {
      return std::find(roles.begin(), roles.end(), a.id) != roles.end();
    };
    if (a.kind == AssigneeSpec::Kind::kUser) return a.id == u.id;
    return a.kind == AssigneeSpec::Kind::kRole && (holds(u.roles) || holds(roles_before));
  };
  std::set<std::string> candidates;
  for (const auto* set : v.sets_waiting_on([&](const AssigneeSpec& a) {
         return names_u(a) && !someone_can_act_as(a, v.catalog, staffed);
       })) {
    for (projections::TicketKey key : *set) candidates.insert(v.ticket_id(key));
  }
  std::vector<const std::string*> stranded;
  for (const std::string& id : candidates) {
    const TicketState* t = v.ticket(id);
    if (!t) continue;
    const auto todos = todos_for_no_one(*t, v.catalog, staffed);
    if (waits_on_no_one(*t, v.catalog, staffed) ||
        std::any_of(todos.begin(), todos.end(), [&](const auto* r) { return names_u(r->to); })) {
      stranded.push_back(&id);
    }
  }
  if (stranded.empty()) return;
  w.key("stranded_tickets").begin_object().key("count").number(uint64_t{stranded.size()});
  w.key("ids").begin_array();
  for (size_t i = 0; i < stranded.size() && i < kListed; ++i) w.string(*stranded[i]);
  w.end_array().end_object();
}

// The user as the model holds it once the change is applied, with its version as the ETag that
// a PATCH's If-Match takes.
void write_applied_user(const projections::ReadModel& model, Call& call, const std::string& id,
                        JsonWriter& w, const std::vector<std::string>& roles_before = {}) {
  model.read([&](const View& v) {
    if (const User* u = v.catalog.user(id)) {
      w.begin_object();
      write_user_members(w, *u);
      write_stranded_tickets(v, *u, roles_before, w);
      w.end_object();
      call.set_etag(u->version);
    }
    return 0;
  });
}

}  // namespace

void Api::post_user(const CallPtr& call) {
  if (!call->actor.admin)
    return call->fail(403, codes::kForbidden, "only administrators create users");
  if (!call->parse_body() ||
      !call->only_members({"id", "name", "password", "phone", "email", "roles"})) {
    return;
  }
  User u;
  std::string password, hash;
  std::optional<std::vector<std::string>> roles;
  if (!call->string_member("id", &u.id, true) || !call->string_member("name", &u.name, true) ||
      !call->string_member("password", &password, true) ||
      !call->string_member("phone", &u.phone, false) ||
      !call->string_member("email", &u.email, false) || !roles_member(*call, &roles) ||
      !hash_password(*call, password, "password", &hash)) {
    return;
  }
  if (roles) u.roles = std::move(*roles);
  auto decided = model_.read([&](const View& v) {
    return decide_create_user(v.catalog, u, hash, call->actor.id, now_us());
  });
  if (!decided.ok()) return call->fail(decided.error());
  append_and_answer(
      call, "user-" + u.id, storage::ExpectedVersion::NoStream(), {decided.value()}, 201,
      [this, call, id = u.id](JsonWriter& w) { write_applied_user(model_, *call, id, w); });
}

// Administrators and auditors get whole accounts. Everyone else gets the directory a picker
// needs (who can be put in a person field, transferred to): the active users' ids, names and
// roles, without their phone numbers and e-mail addresses. ?role= keeps one role's members.
void Api::list_users(const CallPtr& call) {
  const bool whole = call->actor.admin || call->actor.auditor;
  const std::string role = call->req.param("role");
  IdPage page;
  if (!page.parse(*call)) return;
  JsonWriter w;
  model_.read([&](const View& v) {
    std::vector<const User*> users;
    for (const User* u : v.catalog.users()) {
      if (!whole && u->disabled) continue;
      if (!role.empty() && std::find(u->roles.begin(), u->roles.end(), role) == u->roles.end())
        continue;
      users.push_back(u);
    }
    page.write(
        w, users, [](const User* u) -> const std::string& { return u->id; },
        [&](const User* u) {
          if (whole) return write_user(w, *u);
          w.begin_object().key("id").string(u->id).key("name").string(u->name);
          w.key("roles").begin_array();
          for (const auto& r : u->roles) w.string(r);
          w.end_array().end_object();
        });
    return 0;
  });
  call->ok(200, w.take());
}

void Api::get_user(const CallPtr& call, const std::string& id) {
  if (!call->actor.admin && !call->actor.auditor && call->actor.id != id) {
    return call->fail(403, codes::kForbidden,
                      "only administrators and auditors read other users' accounts");
  }
  JsonWriter w;
  uint64_t version = 0;
  bool found = model_.read([&](const View& v) {
    const User* u = v.catalog.user(id);
    if (u) {
      w.begin_object();
      write_user_members(w, *u);
      // For those who would transfer them (and those who check that nothing waits on nobody).
      if (call->actor.admin || call->actor.auditor) write_stranded_tickets(v, *u, {}, w);
      w.end_object();
      version = u->version;
    }
    return u != nullptr;
  });
  if (!found) return call->fail(404, codes::kNotFound, "no user " + id);
  call->set_etag(version);
  call->ok(200, w.take());
}

void Api::patch_user(const CallPtr& call, const std::string& id) {
  if (!call->actor.admin)
    return call->fail(403, codes::kForbidden, "only administrators change users");
  std::optional<uint64_t> if_match;
  if (!call->if_match(&if_match) || !call->parse_body() ||
      !call->only_members({"name", "roles", "phone", "email", "disabled", "password"})) {
    return;
  }
  UserChanges changes;
  std::string name, phone, email, password;
  bool disabled = false;
  for (auto [key, text, wanted] :
       {std::tuple{"name", &name, &changes.name}, std::tuple{"phone", &phone, &changes.phone},
        std::tuple{"email", &email, &changes.email},
        std::tuple{"password", &password, &changes.password_hash}}) {
    if (!call->body.find(key)) continue;
    if (!call->string_member(key, text, true)) return;
    *wanted = *text;
  }
  if (!roles_member(*call, &changes.roles)) return;
  if (call->body.find("disabled")) {
    if (!call->bool_member("disabled", &disabled)) return;
    changes.disabled = disabled;
  }
  if (changes.password_hash &&
      !hash_password(*call, password, "password", &*changes.password_hash)) {
    return;
  }
  change_user(call, id, changes, "", if_match);
}

void Api::change_user(const CallPtr& call, const std::string& id, const UserChanges& changes,
                      const std::string& kept_session, std::optional<uint64_t> if_match) {
  uint64_t current = 0;
  std::vector<std::string> roles_before;
  auto decided = model_.read([&](const View& v) {
    if (const User* u = v.catalog.user(id)) current = u->version, roles_before = u->roles;
    return decide_change_user(v.catalog, id, changes, call->actor.id, now_us(), kept_session);
  });
  if (!decided.ok()) return call->fail(decided.error());
  if (if_match && *if_match != current) return call->fail_conflict("the user", current);
  auto answer = [this, id, call, roles_before](JsonWriter& w) {
    write_applied_user(model_, *call, id, w, roles_before);
  };
  if (decided.value().empty()) {  // nothing differs: nothing is written
    JsonWriter w;
    answer(w);
    return call->ok(200, w.take());
  }
  // The log checks the version again as it appends: a PATCH that raced in after the check above
  // makes this one a 409 too.
  append_and_answer(
      call, "user-" + id,
      if_match ? storage::ExpectedVersion::Exact(*if_match) : storage::ExpectedVersion::Any(),
      std::move(decided.value()), 200, answer, "the user");
}

void Api::post_session(const CallPtr& call) {
  if (!call->parse_body()) return;
  std::string user, password;
  if (!call->string_member("user", &user, true) ||
      !call->string_member("password", &password, true))
    return;
  const auto now = SignInGuard::Clock::now();
  if (int64_t wait = sign_ins_.retry_after(user, now)) {
    return call->fail_rate_limited(wait, "too many failed sign-ins as " + user + "; retry after " +
                                             std::to_string(wait) + " s");
  }
  const bool per_address = options_.sign_in_failures_per_address > 0 && !call->client.empty();
  if (int64_t wait = per_address ? sign_ins_by_address_.retry_after(call->client, now) : 0) {
    return call->fail_rate_limited(
        wait,
        "too many failed sign-ins from this address; retry after " + std::to_string(wait) + " s");
  }
  std::string stored;
  std::optional<User> found = model_.read([&](const View& v) -> std::optional<User> {
    const User* u = v.catalog.user(user);
    if (!u) return std::nullopt;
    auto it = v.password_hashes.find(user);
    if (it != v.password_hashes.end()) stored = it->second;
    return *u;
  });
  // An unknown user is checked against a throwaway hash, so the answer takes as long either way
  // and its timing does not tell which user names exist.
  static const std::string kDummyHash = [] {
    char h[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(h, "x", 1, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
      return std::string();  // out of memory: unknown users are then refused without the delay
    }
    return std::string(h);
  }();
  bool verified = password_matches(found && !stored.empty() ? stored : kDummyHash, password);
  if (!found || stored.empty() || !verified) {
    sign_ins_.failed(user, now);
    if (per_address) sign_ins_by_address_.failed(call->client, now);
    return call->fail(401, "unauthorized", "wrong user or password");
  }
  sign_ins_.succeeded(user);
  // Said only to whoever knows the password.
  if (found->disabled) return call->fail(403, codes::kForbidden, "this account is disabled");
  std::string token = random_token(32);
  const int64_t started_at = now_us();
  Object started{{"user", Value(user)}, {"token_hash", Value(token_hash(token))}};
  if (!call->client.empty()) started.emplace_back("client", Value(call->client));
  // Recorded so that the read model can drop the session once it has expired.
  if (auto expiry = session_expiry({user, started_at, "", 0}))
    started.emplace_back("expires_at", Value(*expiry));
  DomainEvent e{projections::event_types::kSessionStarted, Value(std::move(started)), user,
                started_at, std::nullopt};
  User u = *found;
  append_and_answer(call, "sessions-" + user, storage::ExpectedVersion::Any(), {e}, 201,
                    [u, token](JsonWriter& w) {
                      w.begin_object().key("token").string(token).key("user").string(u.id);
                      w.key("name").string(u.name).key("roles").begin_array();
                      for (const auto& r : u.roles) w.string(r);
                      w.end_array().end_object();
                    });
}

void Api::delete_session(const CallPtr& call) {
  if (call->token_hash == admin_token_hash_) {
    return call->fail(422, codes::kInvalidValue,
                      "the administrator token is not a session: it is set with --admin-token");
  }
  const std::string user = call->actor.id;
  DomainEvent e{projections::event_types::kSessionEnded,
                Value(Object{{"user", Value(user)}, {"token_hash", Value(call->token_hash)}}), user,
                now_us(), std::nullopt};
  append_and_answer(call, "sessions-" + user, storage::ExpectedVersion::Any(), {e}, 200,
                    [user](JsonWriter& w) {
                      w.begin_object().key("user").string(user);
                      w.key("signed_out").boolean(true).end_object();
                    });
}

namespace {

// A session's id in the API: the start of its token's hash. It tells a user's sessions apart and
// is nothing to sign in with (the token is not derived from it).
constexpr size_t kSessionIdLength = 16;

// A session that counts, as its list shows it.
struct SessionRow {
  std::string order;  // newest first: the inverted start time, then the id (the page cursor)
  std::string id;
  std::string token_hash;
  int64_t started_at;
  std::optional<int64_t> expires_at;
  std::string client;
};

}  // namespace

// A user's sessions that still count: when and where each was started, and when it expires.
// Administrators and auditors see anyone's, a user their own (so they can spot one they do not
// know, and end it).
void Api::list_user_sessions(const CallPtr& call, const std::string& user) {
  if (!call->actor.admin && !call->actor.auditor && call->actor.id != user) {
    return call->fail(403, codes::kForbidden,
                      "only administrators and auditors read other users' sessions");
  }
  IdPage page;
  if (!page.parse(*call)) return;
  const int64_t now = now_us();
  std::vector<SessionRow> rows;
  bool found = model_.read([&](const View& v) {
    if (!v.catalog.user(user)) return false;
    for (const auto& [hash, s] : v.sessions) {
      if (s.user != user) continue;
      SessionRow row{
          "", hash.substr(0, kSessionIdLength), hash, s.started_at, session_expiry(s), s.client};
      if (row.expires_at && now > *row.expires_at) continue;
      row.order = newest_first_key(s.started_at, row.id);
      rows.push_back(std::move(row));
    }
    return true;
  });
  if (!found) return call->fail(404, codes::kNotFound, "no user " + user);
  std::sort(rows.begin(), rows.end(),
            [](const SessionRow& a, const SessionRow& b) { return a.order < b.order; });
  JsonWriter w;
  page.write(
      w, rows, [](const SessionRow& r) -> const std::string& { return r.order; },
      [&](const SessionRow& r) {
        w.begin_object().key("id").string(r.id);
        w.key("started_at").string(format_rfc3339(r.started_at)).key("expires_at");
        if (r.expires_at) {
          w.string(format_rfc3339(*r.expires_at));
        } else {
          w.null();
        }
        w.key("client");
        if (r.client.empty()) {
          w.null();
        } else {
          w.string(r.client);
        }
        w.key("current").boolean(r.token_hash == call->token_hash).end_object();
      });
  call->ok(200, w.take());
}

// Ends one of a user's sessions, or every one but the caller's own: what a user does about a
// session they do not know, or a lost phone, and an administrator for them.
void Api::delete_user_sessions(const CallPtr& call, const std::string& user,
                               const std::string& session) {
  if (!call->actor.admin && call->actor.id != user) {
    return call->fail(403, codes::kForbidden, "only administrators end other users' sessions");
  }
  std::vector<std::string> ended;
  bool found = model_.read([&](const View& v) {
    if (!v.catalog.user(user)) return false;
    for (const auto& [hash, s] : v.sessions) {
      if (s.user != user) continue;
      if (session.empty() ? hash != call->token_hash
                          : hash.compare(0, kSessionIdLength, session) == 0 &&
                                session.size() == kSessionIdLength) {
        ended.push_back(hash);
      }
    }
    return true;
  });
  if (!found) return call->fail(404, codes::kNotFound, "no user " + user);
  if (!session.empty() && ended.empty()) {
    return call->fail(404, codes::kNotFound, "no session " + session + " of " + user);
  }
  std::sort(ended.begin(), ended.end());  // the same events whatever the map's order
  auto answer = [user, session, count = ended.size()](JsonWriter& w) {
    w.begin_object().key("user").string(user);
    if (!session.empty()) w.key("session").string(session);
    w.key("ended").number(static_cast<uint64_t>(count)).end_object();
  };
  if (ended.empty()) {  // nothing to end: nothing is written
    JsonWriter w;
    answer(w);
    return call->ok(200, w.take());
  }
  std::vector<DomainEvent> events;
  for (const auto& hash : ended) {
    events.push_back({projections::event_types::kSessionEnded,
                      Value(Object{{"user", Value(user)}, {"token_hash", Value(hash)}}),
                      call->actor.id, now_us(), std::nullopt});
  }
  append_and_answer(call, "sessions-" + user, storage::ExpectedVersion::Any(), std::move(events),
                    200, answer);
}

void Api::get_me(const CallPtr& call) {
  JsonWriter w;
  w.begin_object().key("id").string(call->actor.id);
  std::string name = model_.read([&](const View& v) {
    const User* u = v.catalog.user(call->actor.id);
    return u ? u->name : call->actor.id;
  });
  w.key("name").string(name).key("roles").begin_array();
  for (const auto& r : call->actor.roles) w.string(r);
  w.end_array().key("admin").boolean(call->actor.admin).end_object();
  call->ok(200, w.take());
}

// A user's own new password: the current one first. Every other session of theirs ends.
void Api::post_my_password(const CallPtr& call) {
  if (call->token_hash == admin_token_hash_) {
    return call->fail(422, codes::kInvalidValue,
                      "the administrator token has no password: it is set with --admin-token");
  }
  std::string current, wanted, hash;
  if (!call->parse_body() || !call->only_members({"current", "new"}) ||
      !call->string_member("current", &current, true) ||
      !call->string_member("new", &wanted, true)) {
    return;
  }
  // Guessed at with a stolen token, the current password is guarded like a sign-in.
  const auto now = SignInGuard::Clock::now();
  if (int64_t wait = sign_ins_.retry_after(call->actor.id, now)) {
    return call->fail_rate_limited(
        wait, "too many wrong passwords; retry after " + std::to_string(wait) + " s");
  }
  std::string stored = model_.read([&](const View& v) {
    auto it = v.password_hashes.find(call->actor.id);
    return it == v.password_hashes.end() ? std::string() : it->second;
  });
  if (!password_matches(stored, current)) {
    sign_ins_.failed(call->actor.id, now);
    return call->fail(403, codes::kForbidden, "the current password is wrong", "current");
  }
  sign_ins_.succeeded(call->actor.id);
  if (!hash_password(*call, wanted, "new", &hash)) return;
  UserChanges changes;
  changes.password_hash = hash;
  change_user(call, call->actor.id, changes, call->token_hash);
}

}  // namespace ticketd::api
