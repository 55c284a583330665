#include "api/api.h"

#include <sodium.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "api/call.h"
#include "api/client_address.h"
#include "api/ticket_view.h"
#include "domain/time_format.h"
#include "storage/event_json.h"
#include "storage/hash_chain.h"

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

HttpResponse error_response(int status, std::string_view code, std::string_view message,
                            std::string_view field) {
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  write_error_members(w, code, message, field);
  w.end_object().end_object();
  HttpResponse r{status, "application/json", w.take(), {}};
  // RFC 9110 15.5.2: a 401 names the scheme that authenticates (RFC 6750's, a bearer token);
  // clients and proxies that go by the header learn from it how to ask again.
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"ticketd\"");
  return r;
}

int status_for(const DomainError& e) {
  if (e.code == codes::kForbidden) return 403;
  if (e.code == codes::kNotFound) return 404;
  if (e.code == codes::kConflict) return 409;
  return 422;
}

void Call::ok(int status, std::string body) {
  respond(HttpResponse{status, "application/json", std::move(body), std::move(extra_headers)});
}

void Call::fail(int status, std::string_view code, std::string_view message,
                std::string_view field) {
  HttpResponse r = error_response(status, code, message, field);
  // e.g. Retry-After with a 503, Allow with a 405
  for (auto& header : extra_headers) r.headers.push_back(std::move(header));
  respond(std::move(r));
}

void Call::fail(const DomainError& e) { fail(status_for(e), e.code, e.message, e.field); }

bool Call::as_of(uint64_t last_position, uint64_t* position, int64_t* time) {
  if (!req.has_param("as_of")) return true;
  if (auto t = parse_rfc3339(req.param("as_of"))) {
    *time = *t;
    return true;
  }
  if (auto p = parse_uint(req.param("as_of"))) {
    if (*p > last_position) {
      fail(400, "bad_parameter",
           "as_of " + std::to_string(*p) + " is beyond the end of the log (position " +
               std::to_string(last_position) + ")",
           "as_of");
      return false;
    }
    *position = *p;
    return true;
  }
  fail(400, "bad_parameter", "as_of must be an RFC 3339 time or a log position", "as_of");
  return false;
}

bool Call::if_match(std::optional<uint64_t>* out, bool* any) {
  size_t lines = 0;
  for (const auto& [name, value] : req.headers) lines += name == "if-match";
  if (lines == 0) return true;
  // An empty If-Match is a client that meant to send a version and had none (a shell variable
  // left unset); two lines are two versions. Either taken as no If-Match would write over
  // whatever is there now.
  if (lines > 1) {
    fail(400, "bad_request", "If-Match is given twice: send one version", "If-Match");
    return false;
  }
  const std::string text = req.header("if-match");
  std::string_view v = text;
  if (v.empty()) {
    fail(400, "bad_request",
         "If-Match is empty: send the version (or the ETag GET gave), or leave the header out",
         "If-Match");
    return false;
  }
  if (v == "*") {
    if (any) *any = true;
    return true;
  }
  // Our ETags are strong; one a proxy weakened (W/"3", as compressing ones do) would never match
  // under If-Match's strong comparison (RFC 9110 13.1.1), so it is refused saying so.
  if (v.starts_with("W/")) {
    fail(400, "bad_request",
         "If-Match: " + text + " is a weak ETag, which If-Match never matches (RFC 9110): send " +
             std::string(v.substr(2)) + ", the ETag GET gave",
         "If-Match");
    return false;
  }
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  *out = parse_uint(v);
  if (*out) return true;
  fail(400, "bad_request", "If-Match must be a version number, its ETag, or *", "If-Match");
  return false;
}

void Call::fail_conflict(std::string_view what, uint64_t current_version) {
  conflict(std::string(what) + " changed: it is at version " + std::to_string(current_version),
           current_version);
}

void Call::fail_not_yet(std::string_view what) {
  conflict(std::string(what) + " does not exist yet (If-Match: * asks to change one that does)", 0);
}

void Call::conflict(const std::string& message, uint64_t current_version) {
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  write_error_members(w, codes::kConflict, message);
  w.key("current_version").number(current_version);
  w.end_object().end_object();
  respond(HttpResponse{409, "application/json", w.take(), std::move(extra_headers)});
}

bool Call::parse_body() {
  std::string error;
  if (req.body.empty()) {
    fail(400, "bad_request", "a JSON body is required");
    return false;
  }
  if (!parse_json(req.body, &body, &error, kMaxInputJsonDepth)) {
    fail(400, "bad_request", error);
    return false;
  }
  if (!body.is_object()) {
    fail(400, "bad_request", "the body must be a JSON object");
    return false;
  }
  return true;
}

bool Call::string_member(std::string_view key, std::string* out, bool required) {
  const Value* v = body.find(key);
  if (!v || v->is_null()) {
    if (required) fail(422, codes::kRequired, std::string(key) + " is required", key);
    return !required;
  }
  if (!v->is_string()) {
    fail(422, codes::kWrongType, std::string(key) + " must be a string", key);
    return false;
  }
  *out = v->as_string();
  return true;
}

void Call::fail_rate_limited(int64_t wait, std::string_view message) {
  extra_headers.emplace_back("Retry-After", std::to_string(wait));
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  write_error_members(w, "rate_limited", message);
  w.key("retry_after").number(wait).end_object().end_object();
  ok(429, w.take());
}

bool Call::bool_member(std::string_view key, bool* out) {
  const Value* v = body.find(key);
  if (!v || v->is_null()) return true;
  if (!v->is_bool()) {
    fail(422, codes::kWrongType, std::string(key) + " must be true or false", key);
    return false;
  }
  *out = v->as_bool();
  return true;
}

bool Call::only_members(std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : body.as_object()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      fail(422, codes::kUnknownField, "unknown member \"" + k + "\"", k);
      return false;
    }
  }
  return true;
}

bool Call::only_params(std::initializer_list<std::string_view> known) {
  for (const auto& [k, v] : req.query) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string takes;
      for (std::string_view name : known) takes += (takes.empty() ? "" : ", ") + std::string(name);
      fail(400, "bad_parameter",
           "unknown parameter \"" + k + "\"; " + std::string(asked_method()) + " " + req.path +
               (takes.empty() ? " takes none" : " takes " + takes),
           k);
      return false;
    }
  }
  return true;
}

bool Call::object_member(std::string_view key, Object* out) {
  const Value* v = body.find(key);
  if (!v || v->is_null()) return true;
  if (!v->is_object()) {
    fail(422, codes::kWrongType, std::string(key) + " must be an object", key);
    return false;
  }
  *out = v->as_object();
  return true;
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
    if (on(p[4] == "comments", "GET")) return get_ticket_comments(call, id);
    if (on(p[4] == "attachments", "POST")) return post_attachment(call, id);
    if (on(p[4] == "rating", "POST")) return post_rating(call, id, false);
    if (on(p[4] == "reopen", "POST")) return post_reopen(call, id, false);
    if (on(p[4] == "events", "GET", {"from", "limit", "cursor"}))
      return get_ticket_events(call, id);
    if (on(p[4] == "notifications", "GET")) return get_ticket_notifications(call, id);
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

namespace {

// The definition kinds of the API, by their collection name. One table, so a new kind is one
// entry here and one in the catalog.
struct DefinitionFound {
  const Value* document = nullptr;
  uint64_t version = 0;
};

template <typename Def>
DefinitionFound found(const Def* def) {
  return def ? DefinitionFound{&def->document, def->version} : DefinitionFound{};
}

DefinitionFound find_definition(const Catalog& c, const std::string& kind, const std::string& id,
                                uint64_t version) {
  if (kind == "forms") return found(c.form(id, version));
  if (kind == "flows") return found(c.flow(id, version));
  if (kind == "rules") return found(c.rule(id, version));
  if (kind == "calendars") return found(c.calendar(id, version));
  if (kind == "print-templates") return found(c.print_template(id, version));
  if (kind == "dashboards") return found(c.dashboard(id, version));
  if (kind == "settings") return found(version ? c.settings_at(version) : &c.settings());
  return found(c.sla_policy(id, version));
}

std::vector<std::string> definition_ids(const Catalog& c, const std::string& kind) {
  if (kind == "forms") return c.form_ids();
  if (kind == "flows") return c.flow_ids();
  if (kind == "rules") return c.rule_ids();
  if (kind == "calendars") return c.calendar_ids();
  if (kind == "print-templates") return c.print_template_ids();
  if (kind == "dashboards") return c.dashboard_ids();
  return c.sla_policy_ids();
}

Result<std::optional<DomainEvent>> decide_publish(const Catalog& c, const std::string& kind,
                                                  const std::string& id, const Value& document,
                                                  const std::string& actor, int64_t now) {
  if (kind == "forms") return decide_publish_form(c, id, document, actor, now);
  if (kind == "flows") return decide_publish_flow(c, id, document, actor, now);
  if (kind == "rules") return decide_publish_rule(c, id, document, actor, now);
  if (kind == "calendars") return decide_publish_calendar(c, id, document, actor, now);
  if (kind == "print-templates") return decide_publish_print_template(c, id, document, actor, now);
  if (kind == "dashboards") return decide_publish_dashboard(c, id, document, actor, now);
  if (kind == "settings") return decide_change_settings(c, document, actor, now);
  return decide_publish_sla_policy(c, id, document, actor, now);
}

// "forms" -> "form", "sla-policies" -> "sla-policy": the stream prefix and the error noun.
std::string singular(const std::string& kind) {
  if (kind.ends_with("ies")) return kind.substr(0, kind.size() - 3) + "y";
  return kind.substr(0, kind.size() - 1);
}

}  // namespace

void Api::put_definition(const CallPtr& call, const std::string& kind, const std::string& id) {
  if (!call->actor.admin)
    return call->fail(403, codes::kForbidden, "only administrators change definitions");
  if (!call->parse_body()) return;
  // If-Match (the ETag of a GET) publishes only over that version: two administrators editing
  // one flow do not silently undo each other's changes. 0 matches a definition not yet put.
  std::optional<uint64_t> if_match;
  bool if_match_any = false;
  if (!call->if_match(&if_match, &if_match_any)) return;
  // A document may carry the id and version its GET gave (they are not stored); another id is a
  // document meant for another definition.
  if (const Value* body_id = call->body.find("id"); body_id && *body_id != Value(id)) {
    const std::string message =
        kind == "settings"  // one document, with no id in its URL
            ? "the settings' id is \"" + id + "\", not " + body_id->to_json()
            : "the document's id " + body_id->to_json() + " is not " + id + ", its URL's";
    return call->fail(422, codes::kInvalidValue, message, "id");
  }
  int64_t now = now_us();
  uint64_t current = 0;
  bool exists = false;  // the settings are, from the start (the defaults, at version 0)
  auto decided = model_.read([&](const projections::ReadModel::View& v) {
    DefinitionFound found = find_definition(v.catalog, kind, id, 0);
    current = found.version;
    exists = found.document != nullptr;
    return decide_publish(v.catalog, kind, id, call->body, call->actor.id, now);
  });
  if (if_match && *if_match != current)
    return call->fail_conflict(singular(kind) + " " + id, current);
  if (if_match_any && !exists) return call->fail_not_yet(singular(kind) + " " + id);
  if (!decided.ok()) return call->fail(decided.error());
  if (kind == "rules") {
    // The rule is well-formed (decided above); whether its lookups can be answered depends on
    // this server's configuration, not the catalog's.
    const Array& actions = call->body["actions"].as_array();
    for (size_t i = 0; i < actions.size(); ++i) {
      std::string source = actions[i].string_or("source");
      if (actions[i].string_or("type") != "lookup" || options_.lookup_sources.count(source)) {
        continue;
      }
      std::string known;
      for (const auto& name : options_.lookup_sources) known += (known.empty() ? "" : ", ") + name;
      return call->fail(
          422, codes::kInvalidDefinition,
          "rule.actions[" + std::to_string(i) + "].source: no lookup source \"" + source +
              "\" on this server (its --lookup-sources: " + (known.empty() ? "none" : known) + ")");
    }
  }
  std::string stream = singular(kind) + "-" + id;
  if (!decided.value()) {  // identical to the current version: nothing to publish
    return get_definition(call, kind, id);
  }
  uint64_t version = static_cast<uint64_t>((*decided.value()).data["version"].as_number());
  Value document = (*decided.value()).data["document"];
  append_and_answer(call, stream, storage::ExpectedVersion::Exact(version - 1), {*decided.value()},
                    version == 1 ? 201 : 200, [id, version, document](JsonWriter& w) {
                      write_definition(w, id, version, document);
                    });
}

void Api::get_definition(const CallPtr& call, const std::string& kind, const std::string& id) {
  uint64_t version = 0;  // 0: the latest
  if (!call->version_param(&version)) return;
  uint64_t got = 0;
  JsonWriter w;
  bool ok = model_.read([&](const projections::ReadModel::View& v) {
    DefinitionFound def = find_definition(v.catalog, kind, id, version);
    if (def.document) write_definition(w, id, got = def.version, *def.document);
    return def.document != nullptr;
  });
  if (!ok)
    return call->fail(404, codes::kNotFound,
                      "no " + singular(kind) + " \"" + id + "\"" + at_version(version));
  call->set_etag(got);
  call->ok(200, w.take());
}

void Api::list_definitions(const CallPtr& call, const std::string& kind) {
  IdPage page;
  if (!page.parse(*call)) return;
  JsonWriter w;
  model_.read([&](const projections::ReadModel::View& v) {
    auto same = [](const std::string& id) -> const std::string& { return id; };
    page.write(w, definition_ids(v.catalog, kind), same, [&](const std::string& id) {
      DefinitionFound def = find_definition(v.catalog, kind, id, 0);
      write_definition(w, id, def.version, *def.document);
    });
    return 0;
  });
  call->ok(200, w.take());
}

namespace {
// An account's password hash is in its UserCreated and PasswordChanged events. The feed is for
// auditors, who change nothing: with the hashes they could guess passwords offline and sign in
// as the staff. The hash is withheld; /audit/verify and ticketctl verify check the chain.
std::string payload_without_secrets(const storage::RecordedEvent& e) {
  if (e.type() != event_types::kUserCreated && e.type() != event_types::kPasswordChanged) return "";
  Value data;
  std::string error;
  if (!parse_json(e.payload(), &data, &error) || !data.find("password_hash")) return "";
  Object shown = data.as_object();
  set_member(shown, "password_hash", Value("(withheld)"));
  return Value(std::move(shown)).to_json();
}
}  // namespace

// What a reader of the log is shown of an event's data ("" for the data as stored). Password
// hashes are withheld from everyone. A ticket's portal code (in its submission, and in a message
// that links the portal) is masked for everyone but administrators: it is the customer's key,
// and an auditor, who changes nothing, could confirm, rate or reopen the ticket with it.
std::string Api::shown_payload(const storage::RecordedEvent& e, const Actor& reader) {
  if (std::string withheld = payload_without_secrets(e); !withheld.empty()) return withheld;
  if (reader.admin || !is_ticket_stream(e.stream())) return "";
  const std::string code = model_.read([&](const projections::ReadModel::View& v) {
    const TicketState* t = v.ticket(ticket_id_of(e.stream()));
    return t ? t->portal_code : std::string();
  });
  if (code.empty() || e.payload().find(code) == std::string_view::npos) return "";
  return without_portal_code(std::string(e.payload()), code);
}

void Api::get_events(const CallPtr& call) {
  if (!call->actor.admin && !call->actor.auditor) {
    return call->fail(403, codes::kForbidden, "the global log is for administrators and auditors");
  }
  uint64_t from = 0, limit = 50;
  if (!call->uint_param("from", &from) || !call->limit_param(&limit)) return;
  if (call->req.has_param("cursor") && !call->uint_param("cursor", &from)) return;
  // A poller after a position this log has not reached (another data directory's) would wait
  // in silence, then skip what comes up to it.
  if (const uint64_t end = log_.last_position(); from > end) {
    const char* name = call->req.has_param("cursor") ? "cursor" : "from";
    return call->fail(400, "bad_parameter",
                      std::string(name) + " " + std::to_string(from) +
                          " is beyond the end of the log (position " + std::to_string(end) + ")",
                      name);
  }
  JsonWriter w;
  w.begin_object().key("items").begin_array();
  uint64_t last = from, count = 0;
  auto s = log_.read_all(from, limit, [&](const storage::RecordedEvent& e) {
    storage::write_event_json(w, e, shown_payload(e, call->actor));
    last = e.position();
    ++count;
    return true;
  });
  if (!s.ok()) return call->fail(503, "unavailable", s.ToString());
  w.end_array().key("next_cursor");
  if (count == limit && last < log_.last_position())
    w.string(std::to_string(last));
  else
    w.null();
  w.end_object();
  call->ok(200, w.take());
}

void Api::get_verify(const CallPtr& call) {
  if (!call->actor.admin && !call->actor.auditor) {
    return call->fail(403, codes::kForbidden, "verification is for administrators and auditors");
  }
  auto report = log_.verify();
  JsonWriter w;
  w.begin_object().key("ok").boolean(report.ok).key("events").number(report.events);
  w.key("head").string(storage::to_hex(report.head));
  if (!report.ok)
    w.key("bad_position").number(report.bad_position).key("problem").string(report.problem);
  w.end_object();
  call->ok(200, w.take());
}

void Api::get_report(const CallPtr& call, const std::string& name) {
  projections::ReportQuery q;
  q.name = name;
  q.field = call->req.param("field");
  q.form = call->req.param("form");
  q.bucket = call->req.param("bucket");
  // Without tz, the company's days (UTC's when it names no zone).
  q.zone =
      model_.read([](const projections::ReadModel::View& v) { return v.catalog.settings().zone; });
  if (!call->zone_param(&q.zone)) return;
  // from / to: a date is its whole day of the zone, both ends included; an RFC 3339 time is that
  // instant (to: up to it), widened to the quarter hours reports count in. The answer names the
  // window it counted.
  Object window;
  int64_t asked_from = INT64_MIN, asked_to = INT64_MAX;  // the instants asked for, unwidened
  struct End {
    const char* param;
    bool is_to;
    int64_t* day;
    int64_t* us;
    int64_t* asked;
  };
  for (const End& end : {End{"from", false, &q.from_day, &q.from_us, &asked_from},
                         End{"to", true, &q.to_day, &q.to_us, &asked_to}}) {
    if (!call->req.has_param(end.param)) continue;
    std::string text = call->req.param(end.param);
    if (auto day = parse_date(text)) {
      *end.day = *day;
      *end.asked =
          end.is_to ? local_day_start(*day + 1, q.zone) - 1 : local_day_start(*day, q.zone);
      window.emplace_back(end.param, Value(projections::bucket_label(*day, "day")));
    } else if (auto t = parse_rfc3339(text)) {
      *end.us =
          end.is_to ? projections::quarter_hour_ceil(*t) : projections::quarter_hour_floor(*t);
      *end.day = local_day(*end.us, q.zone);
      *end.asked = *t;
      window.emplace_back(end.param, Value(format_rfc3339(*end.us)));
    } else {
      return call->fail(400, "bad_parameter",
                        std::string(end.param) + " must be a date or an RFC 3339 time", end.param);
    }
  }
  // A window turned round is a mistake to say, not empty figures to show.
  if (asked_to < asked_from)
    return call->fail(400, "bad_parameter", "to must not be before from", "to");
  if (!projections::Reports::known(name))
    return call->fail(404, codes::kNotFound, "no report \"" + name + "\"");
  if (name == "backlog") {
    // The tickets open now, as the dashboards' backlog widgets (which take no days or bucket).
    for (const char* param : {"from", "to", "bucket"}) {
      if (call->req.has_param(param)) {
        return call->fail(
            400, "bad_parameter",
            std::string("the backlog counts the tickets open now: it takes no ") + param, param);
      }
    }
  }
  if (!projections::Reports::known_bucket(q.bucket))
    return call->fail(400, "bad_parameter", "bucket must be day, week or month", "bucket");
  projections::ReportTable table;
  bool known_form = true;  // a misspelt form would show zeros, not a mistake
  auto problem = model_.read([&](const projections::ReadModel::View& v) {
    known_form = q.form.empty() || v.catalog.form(q.form);
    return known_form ? v.reports.run(q, v.catalog, projections::node_names(v.catalog), &table)
                      : std::nullopt;
  });
  if (!known_form) return call->fail(400, "bad_parameter", "no form \"" + q.form + "\"", "form");
  // The name and the bucket were checked above: what is left to refuse is the field.
  if (problem) return call->fail(400, "bad_parameter", *problem, "field");
  if (call->req.header("accept").find("text/csv") != std::string::npos) {
    bool bom = false;
    if (!call->bool_param("bom", &bom)) return;
    return call->respond(call->csv(projections::report_csv(table), bom));
  }
  table.totals.insert(table.totals.end(), window.begin(), window.end());
  JsonWriter w;
  projections::write_report_json(w, table);
  call->ok(200, w.take());
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
