// The API's front door: each request authenticated, logged and routed; the ids and tokens it
// draws; commands appended and answered.
#include "api/api.h"

#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "api/call.h"
#include "api/client_address.h"

namespace ticketd::api {

namespace {

std::string hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(2 * n, '\0');  // sized once: a token's hash is hexed at every request
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

}  // namespace

std::string token_hash(std::string_view token) {
  unsigned char out[32];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(token.data()),
                     token.size(), nullptr, 0);
  return hex(out, sizeof out);
}

namespace {

// Fills `out` from the kernel's random source in as few calls as it allows. libsodium's
// randombytes_buf asks for 256 bytes a call: sixteen system calls for the pool below, 0.3 a
// submit, where a system call costs a microsecond on these virtual machines (now 0.02; session
// 43 in BENCHMARKS.md). A read of over 256 bytes may be cut short by a signal, hence the loop;
// where getrandom is missing (ENOSYS: an old kernel, a sandbox), libsodium's own way is taken.
void kernel_random_bytes(unsigned char* out, size_t n) {
  while (n > 0) {
    ssize_t got = getrandom(out, n, 0);
    if (got <= 0) {  // 0 would be a kernel's bug, and a loop without end
      if (got < 0 && errno == EINTR) continue;
      return randombytes_buf(out, n);
    }
    out += got;
    n -= static_cast<size_t>(got);
  }
}

// The kernel's random bytes, taken 4 KB at a time per thread: one getrandom call per event id
// and portal code was five system calls a submit. Bytes handed out are wiped from the pool.
void random_bytes(void* out, size_t n) {
  thread_local unsigned char pool[4096];
  thread_local size_t left = 0;
  if (n > sizeof pool) return randombytes_buf(out, n);
  if (n > left) {
    kernel_random_bytes(pool, sizeof pool);
    left = sizeof pool;
  }
  unsigned char* taken = pool + sizeof pool - left;
  std::memcpy(out, taken, n);
  sodium_memzero(taken, n);
  left -= n;
}

}  // namespace

EventId random_event_id() {
  uint64_t r[2];
  random_bytes(r, sizeof r);
  return EventId::random_v4(r[0], r[1]);
}

std::string random_token(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  random_bytes(buf.data(), buf.size());
  std::string token = hex(buf.data(), buf.size());
  sodium_memzero(buf.data(), buf.size());
  return token;
}

Api::Api(storage::EventLog& log, projections::ReadModel& model, Metrics& metrics,
         ApiOptions options)
    : log_(log),
      model_(model),
      metrics_(metrics),
      options_(std::move(options)),
      limiter_(options_.rate_limit, options_.rate_limit * 2),
      sign_ins_by_address_(
          SignInGuardOptions{.free_failures = options_.sign_in_failures_per_address,
                             .forget_after = std::chrono::hours(1)}),
      queries_(options_.queries) {
  admin_token_hash_ = token_hash(options_.admin_token);
}

Api::~Api() {
  std::thread backup;
  {
    std::lock_guard lk(backup_mu_);  // the thread takes it once more to say it is done
    backup = std::move(backup_thread_);
  }
  if (backup.joinable()) backup.join();
}

void Api::run_as_query(const CallPtr& call, std::function<void()> query) {
  switch (queries_.post(call->actor.id, std::move(query))) {
    case QueryThreads::Posted::kYes:
      return;
    case QueryThreads::Posted::kCallerBusy:
      return call->fail_rate_limited(
          1, "you have " + std::to_string(options_.queries.max_waiting_per_caller) +
                 " listings waiting to be answered already; ask again once they are");
    case QueryThreads::Posted::kBusy:
      call->extra_headers.emplace_back("Retry-After", "1");
      return call->fail(503, "unavailable",
                        "too many listings are waiting to be answered; try again shortly");
  }
}

int64_t Api::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

size_t Api::body_limit(std::string_view method, std::string_view path) const {
  bool upload = method == "POST" && (path == "/api/v1/attachments" ||
                                     (path.size() > 12 && path.ends_with("/attachments")));
  return upload ? options_.max_attachment_bytes : options_.max_body_bytes;
}

void Api::when_applied(const CallPtr& call, uint64_t position, std::function<void()> fn) {
  if (!call->req.resume) return model_.when_applied(position, std::move(fn));
  model_.when_applied(position,
                      [call, fn = std::move(fn)]() mutable { call->req.resume(std::move(fn)); });
}

namespace {

// The server's buffered logger for request lines when it registered one, else the default.
spdlog::logger& access_log() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    auto access = spdlog::get(std::string(kAccessLogger));
    return access ? access : spdlog::default_logger();
  }();
  return *logger;
}

// Every X-Forwarded-For header of the request, joined as one list in order.
std::string forwarded_for(const HttpRequest& req) {
  std::string joined;
  for (const auto& [name, value] : req.headers) {
    if (name != "x-forwarded-for") continue;
    if (!joined.empty()) joined += ',';
    joined += value;
  }
  return joined;
}

// What a page of another origin may send and read (CORS): the headers this API takes and gives.
constexpr char kCorsRequestHeaders[] =
    "Authorization, Content-Type, Accept, If-Match, Idempotency-Key, X-Filename";
constexpr char kCorsResponseHeaders[] =
    "ETag, Retry-After, Allow, X-Request-Id, X-Total-Count, X-Next-Cursor, Content-Disposition, "
    "WWW-Authenticate";

}  // namespace

void Api::handle(HttpRequest request, Respond respond) {
  auto call = std::make_shared<Call>();
  call->req = std::move(request);
  call->client = client_address(call->req.peer, forwarded_for(call->req), options_.trusted_proxies);
  // A browser says which page calls (Origin): a page of an origin named by --cors-origins may
  // read the answer, and its preflight (OPTIONS, before a call with a token) is answered here,
  // for no token comes with it.
  std::string origin = call->req.header("origin");
  const bool cors = !origin.empty() &&
                    (options_.cors_origins.contains(origin) || options_.cors_origins.contains("*"));
  // HEAD is GET without the body (RFC 9110 asks every server for both): uptime checks use it.
  const bool head = call->req.method == "HEAD";
  auto started = std::chrono::steady_clock::now();
  Metrics* metrics = &metrics_;
  call->respond = [respond = std::move(respond), started, metrics, id = call->req.request_id,
                   client = call->client, method = call->req.method, path = call->req.path,
                   call_actor = std::weak_ptr<Call>(call),
                   cors_origin = cors ? origin : std::string(), head](HttpResponse r) {
    r.head = head;
    if (!cors_origin.empty()) {
      r.headers.emplace_back("Access-Control-Allow-Origin", cors_origin);
      r.headers.emplace_back("Access-Control-Expose-Headers", kCorsResponseHeaders);
      r.headers.emplace_back("Vary", "Origin");
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics->observe_request(r.status, seconds);
    std::string user;
    if (auto c = call_actor.lock()) user = c->actor.id;
    access_log().info("request_id={} client={} user={} {} {} status={} latency_ms={:.2f}", id,
                      client.empty() ? "-" : client, user.empty() ? "-" : user, method, path,
                      r.status, seconds * 1000);
    respond(std::move(r));
  };
  if (call->req.method == "OPTIONS" && !origin.empty() &&
      !call->req.header("access-control-request-method").empty()) {
    if (!cors) {
      return call->fail(403, codes::kForbidden,
                        "pages of " + origin +
                            " may not call this API (the server's --cors-origins names the "
                            "origins that may)");
    }
    call->extra_headers = {{"Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE"},
                           {"Access-Control-Allow-Headers", kCorsRequestHeaders},
                           {"Access-Control-Max-Age", "600"}};
    return call->respond(HttpResponse{204, "", "", std::move(call->extra_headers)});
  }
  if (head) {
    call->head = true;
    call->req.method = "GET";
  }
  route(call);
}

void Api::log_upgrade(const HttpRequest& request, std::string_view user, int status) const {
  const std::string client =
      client_address(request.peer, forwarded_for(request), options_.trusted_proxies);
  access_log().info("request_id={} client={} user={} {} {} status={} latency_ms=0.00",
                    request.request_id, client.empty() ? "-" : client, user.empty() ? "-" : user,
                    request.method, request.path, status);
}

std::optional<int64_t> Api::session_expiry(const projections::Session& session) const {
  std::optional<int64_t> expiry;
  if (options_.session_ttl_us > 0) expiry = session.started_at + options_.session_ttl_us;
  if (session.expires_at && (!expiry || session.expires_at < *expiry)) expiry = session.expires_at;
  return expiry;
}

std::optional<Actor> Api::actor_for_token(std::string_view token) const {
  if (token.empty()) return std::nullopt;
  return actor_for_token_hash(token_hash(token));
}

std::optional<Actor> Api::actor_for_token_hash(const std::string& hash,
                                               std::string* refused) const {
  if (sodium_memcmp(hash.data(), admin_token_hash_.data(), hash.size()) == 0) {
    return Actor{"admin", {"admin"}, true, false, false};
  }
  const int64_t now = now_us();
  return model_.read([&](const projections::ReadModel::View& v) -> std::optional<Actor> {
    auto it = v.sessions.find(hash);
    if (it == v.sessions.end()) return std::nullopt;
    if (auto expiry = session_expiry(it->second); expiry && now > *expiry) {
      if (refused) *refused = "the session has expired: sign in again";
      return std::nullopt;
    }
    const User* u = active_user(v.catalog, it->second.user);
    if (!u) return std::nullopt;
    Actor a{u->id, u->roles, false, false, false};
    a.admin = a.has_role("admin");
    a.auditor = a.has_role(kAuditorRole);
    return a;
  });
}

bool Api::authenticate(const CallPtr& call) {
  std::string auth = call->req.header("authorization");
  if (auth.rfind("Bearer ", 0) != 0 || auth.size() == 7) {
    call->fail(401, "unauthorized", "an Authorization: Bearer <token> header is required");
    return false;
  }
  const std::string hash = token_hash(std::string_view(auth).substr(7));
  std::string refused = "the token is not valid";
  auto actor = actor_for_token_hash(hash, &refused);
  if (!actor) {
    call->fail(401, "unauthorized", refused);
    return false;
  }
  if (int64_t wait = limiter_.retry_after(hash, std::chrono::steady_clock::now())) {
    call->fail_rate_limited(
        wait, "too many requests for this token; retry after " + std::to_string(wait) + " s");
    return false;
  }
  call->actor = *actor;
  call->token_hash = hash;
  return true;
}

Actor Api::portal_actor() const { return Actor{kPortalActor, {"customer"}, false, false, true}; }

storage::NewEvent Api::to_new_event(const DomainEvent& e, const Call& call) const {
  return projections::to_new_event(e, random_event_id(), call.req.request_id);
}

namespace {
// The query parameters of routes that share them (route() names the others).
using Params = std::initializer_list<std::string_view>;
const Params kPageParams = {"limit", "cursor"};
// clang-format off
const Params kTicketListParams = {"form", "node", "status", "assignee", "priority", "q", "sla",
                                  "reopened", "stranded", "sort", "created_from", "created_to",
                                  "limit", "cursor", "bom", "tz"};
// clang-format on
const Params kDryRunParams = {"from", "to", "limit", "version"};
}  // namespace

void Api::route(const CallPtr& call) {
  const std::string& m = call->req.method;
  auto p = split_path(call->req.path);
  auto is = [&](std::initializer_list<const char*> parts) {
    if (p.size() != parts.size()) return false;
    size_t i = 0;
    for (const char* part : parts) {
      if (std::string_view(part) != "*" && p[i] != part) return false;
      ++i;
    }
    return true;
  };
  // Paths are matched before methods: a path served for other methods answers 405 with Allow.
  // (No allocation: this runs for every request, and a path is served for a few methods.)
  std::array<std::string_view, 8> allowed;
  size_t allowed_count = 0;
  bool refused = false;  // answered 400 for a query parameter the route does not take
  // Whether the request is for this route, with only query parameters from `params`.
  auto on = [&](bool path_matches, std::string_view method, Params params = {}) {
    if (refused) return false;
    if (path_matches && allowed_count < allowed.size()) allowed[allowed_count++] = method;
    if (!path_matches || m != method) return false;
    refused = !call->only_params(params);
    return !refused;
  };
  auto no_route = [&] {
    if (refused) return;
    const std::string asked(call->asked_method());
    if (allowed_count == 0) {
      return call->fail(404, codes::kNotFound, "no such route: " + asked + " " + call->req.path);
    }
    // HEAD is served wherever GET is (RFC 9110), so Allow names it there too.
    std::string allow;
    for (size_t i = 0; i < allowed_count; ++i) {
      allow += (allow.empty() ? "" : ", ") + std::string(allowed[i]);
      if (allowed[i] == "GET") allow += ", HEAD";
    }
    call->extra_headers.emplace_back("Allow", allow);
    call->fail(405, "method_not_allowed",
               asked + " is not served at " + call->req.path + "; " + allow +
                   (allow.find(',') == std::string::npos ? " is" : " are"));
  };
  if (on(is({"healthz"}), "GET")) return get_health(call);
  if (on(is({"metrics"}), "GET")) {
    // API.md: a bearer token on every call but sign-in, /healthz and the portal.
    if (!authenticate(call)) return;
    return get_metrics(call);
  }
  if (p.size() < 3 || p[0] != "api" || p[1] != "v1") return no_route();
  if (!ready_.load()) return call->fail(503, "unavailable", "the server is starting");
  bool command = m != "GET";
  if (command && !accepting_.load())
    return call->fail(503, "unavailable", "the server is shutting down");

  // Routes without a bearer token: sign-in and the customer portal.
  if (on(is({"api", "v1", "sessions"}), "POST")) return post_session(call);
  if (p.size() >= 5 && p[2] == "portal" && p[3] == "tickets") {
    const bool action = p.size() == 6;
    if (on(p.size() == 5, "GET", {"code"})) return get_portal(call, p[4]);
    if (on(action && p[5] == "confirm", "POST", {"code"})) return post_portal_confirm(call, p[4]);
    if (on(action && p[5] == "rating", "POST", {"code"})) return post_rating(call, p[4], true);
    if (on(action && p[5] == "reopen", "POST", {"code"})) return post_reopen(call, p[4], true);
    if (on(action && p[5] == "comments", "POST", {"code"})) return post_comment(call, p[4], true);
    if (on(action && p[5] == "attachments", "POST", {"code"})) {
      if (!enter_portal(call, p[4])) return;
      return post_attachment(call, p[4]);
    }
    if (on(p.size() == 7 && p[5] == "attachments", "GET", {"code"})) {
      if (!enter_portal(call, p[4])) return;
      return get_attachment(call, p[6], p[4]);
    }
    if (on(action && p[5] == "print.pdf", "GET", {"code", "template", "as_of"})) {
      if (!enter_portal(call, p[4])) return;
      return get_ticket_print(call, p[4]);
    }
    return no_route();
  }
  if (!authenticate(call)) return;

  if (on(is({"api", "v1", "sessions"}), "DELETE")) return delete_session(call);
  if (on(is({"api", "v1", "me"}), "GET")) return get_me(call);
  if (is({"api", "v1", "backups"})) {
    if (on(true, "POST")) return post_backup(call);
    if (on(true, "GET", kPageParams)) return list_backups(call);
  }
  if (on(is({"api", "v1", "backups", "*"}), "DELETE")) return delete_backup(call, p[3]);
  if (on(is({"api", "v1", "me", "password"}), "POST")) return post_my_password(call);
  if (is({"api", "v1", "users"})) {
    if (on(true, "POST")) return post_user(call);
    if (on(true, "GET", {"role", "limit", "cursor"})) return list_users(call);
  }
  if (is({"api", "v1", "users", "*"})) {
    if (on(true, "GET")) return get_user(call, p[3]);
    if (on(true, "PATCH")) return patch_user(call, p[3]);
  }
  if (is({"api", "v1", "users", "*", "sessions"})) {
    if (on(true, "GET", kPageParams)) return list_user_sessions(call, p[3]);
    if (on(true, "DELETE")) return delete_user_sessions(call, p[3], "");
  }
  if (on(is({"api", "v1", "users", "*", "sessions", "*"}), "DELETE")) {
    return delete_user_sessions(call, p[3], p[5]);
  }
  if (on(is({"api", "v1", "rules", "*", "dry-run"}), "POST", kDryRunParams))
    return post_rule_dry_run(call, p[3]);
  if (on(is({"api", "v1", "sla-policies", "*", "dry-run"}), "POST", kDryRunParams))
    return post_sla_policy_dry_run(call, p[3]);
  for (const char* kind :
       {"forms", "flows", "rules", "calendars", "sla-policies", "print-templates", "dashboards"}) {
    if (on(is({"api", "v1", kind}), "GET", kPageParams)) return list_definitions(call, kind);
    if (is({"api", "v1", kind, "*"})) {
      if (on(true, "PUT")) return put_definition(call, kind, p[3]);
      if (on(true, "GET", {"version"})) return get_definition(call, kind, p[3]);
    }
  }
  // The company settings: one document, at one address, put and read as a definition is.
  if (is({"api", "v1", "settings"})) {
    if (on(true, "PUT")) return put_definition(call, "settings", kSettingsId);
    if (on(true, "GET", {"version"})) return get_definition(call, "settings", kSettingsId);
  }
  if (on(is({"api", "v1", "dashboards", "*", "data"}), "GET", {"version"}))
    return get_dashboard_data(call, p[3]);
  if (on(is({"api", "v1", "tickets", "import"}), "POST", {"form", "flow", "dry_run", "tz"}))
    return post_import(call);
  if (is({"api", "v1", "tickets"})) {
    if (on(true, "POST")) return post_ticket(call);
    if (on(true, "GET", kTicketListParams)) return answer_listing(call, false);
  }
  if (on(is({"api", "v1", "inbox"}), "GET", kTicketListParams)) return answer_listing(call, true);
  if (is({"api", "v1", "tickets", "*"})) {
    if (on(true, "GET", {"as_of", "min_position"})) return get_ticket(call, p[3]);
    if (on(true, "PATCH")) return patch_ticket(call, p[3]);
  }
  if (p.size() == 5 && p[2] == "tickets") {
    const std::string& id = p[3];
    if (on(p[4] == "actions", "POST")) return post_action(call, id);
    if (on(p[4] == "comments", "POST")) return post_comment(call, id, false);
    if (on(p[4] == "comments", "GET", kPageParams)) return get_ticket_comments(call, id);
    if (on(p[4] == "attachments", "POST", {"public"})) return post_attachment(call, id);
    if (on(p[4] == "rating", "POST")) return post_rating(call, id, false);
    if (on(p[4] == "reopen", "POST")) return post_reopen(call, id, false);
    if (on(p[4] == "events", "GET", {"from", "limit", "cursor"}))
      return get_ticket_events(call, id);
    if (on(p[4] == "notifications", "GET", kPageParams)) return get_ticket_notifications(call, id);
    if (on(p[4] == "print.pdf", "GET", {"template", "as_of"})) return get_ticket_print(call, id);
  }
  if (on(is({"api", "v1", "tickets", "*", "todos", "*", "done"}), "POST"))
    return post_todo_done(call, p[3], p[5]);
  if (on(is({"api", "v1", "attachments"}), "POST")) return post_attachment(call, "");
  if (on(is({"api", "v1", "attachments", "*"}), "GET")) return get_attachment(call, p[3]);
  if (on(is({"api", "v1", "events"}), "GET", {"from", "limit", "cursor"})) return get_events(call);
  if (on(is({"api", "v1", "reports", "*"}), "GET",
         {"form", "field", "bucket", "from", "to", "tz", "bom"}))
    return get_report(call, p[3]);
  if (on(is({"api", "v1", "audit", "verify"}), "GET")) return get_verify(call);
  no_route();
}

void Api::append_and_answer(const CallPtr& call, const std::string& stream,
                            storage::ExpectedVersion expected, std::vector<DomainEvent> events,
                            int status, std::function<void(JsonWriter&)> body, std::string what) {
  std::vector<storage::NewEvent> batch;
  for (const auto& e : events) batch.push_back(to_new_event(e, *call));
  log_.append_async(stream, expected, std::move(batch),
                    [this, call, stream, status, body = std::move(body),
                     what = std::move(what)](storage::AppendResult r) {
                      if (r.status.code() == storage::Status::Code::kConflict) {
                        return call->fail_conflict(what.empty() ? stream : what,
                                                   r.stream_version);  // a race
                      }
                      if (!r.status.ok()) {
                        return call->fail(503, "unavailable", r.status.ToString());
                      }
                      when_applied(call, r.last_position, [call, status, body, r] {
                        JsonWriter w;
                        body(w);
                        call->ok(status, w.take());
                      });
                    });
}

void Api::get_health(const CallPtr& call) {
  if (!ready_.load()) return call->fail(503, "unavailable", "the server is starting");
  JsonWriter w;
  w.begin_object().key("ok").boolean(true).key("position").number(log_.last_position());
  w.key("applied").number(model_.applied_position()).end_object();
  call->ok(200, w.take());
}

void Api::get_metrics(const CallPtr& call) {
  if (!call->actor.admin && !call->actor.auditor) {
    return call->fail(403, codes::kForbidden, "metrics are for administrators and auditors");
  }
  std::string text = metrics_.render(log_.stats(), log_.last_position(), model_.applied_position());
  call->respond(HttpResponse{200, "text/plain; version=0.0.4", std::move(text), {}});
}

}  // namespace ticketd::api
