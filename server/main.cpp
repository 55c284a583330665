// ticketd: wiring only. Options, the log, the read model and its subscription, the API, the
// listener, demo mode, signals.
#include <arpa/inet.h>
#ifndef TICKETD_WITHOUT_TCMALLOC
#include <gperftools/malloc_extension.h>
#endif
#include <pthread.h>
#include <sodium.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext/stdio_filebuf.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "api/api.h"
#include "api/call.h"
#include "api/http_server.h"
#include "api/http_types.h"
#include "api/lookup_worker.h"
#include "api/metrics.h"
#include "api/outbox_worker.h"
#include "api/stream_hub.h"
#include "api/timer_scheduler.h"
#include "domain/rule.h"
#include "domain/time_format.h"
#include "projections/read_model.h"
#include "projections/snapshots.h"
#include "server/demo.h"
#include "server/heap.h"
#include "server/process_signals.h"
#include "storage/event_log.h"

namespace {

constexpr char kHelp[] = R"(usage: ticketd [options]

Every option can also be given as an environment variable TICKETD_<NAME> (upper case, '-' as '_'),
e.g. TICKETD_DATA_DIR=/srv/ticketd. Flags win over the environment.

  --data-dir D          where the event log lives (default ./data)
  --listen HOST:PORT    address to serve HTTP on (default 127.0.0.1:8080; port 0 = any free one)
  --threads N           io threads (default 2)
  --query-threads N     threads that answer listings and searches of more than --quick-listing
                        tickets, off the io threads (default 1); up to 64 listings wait for one
                        (4 of one user's), more are answered 503 (429 for that user)
  --scan-step N         tickets a listing considers per hold of the read model's lock, between
                        which events just written are applied (default 1024)
  --quick-listing N     a listing whose filters leave at most N tickets is answered at once on its
                        connection's thread, not on the query threads (default 16384)
  --admin-token T       the first administrator's bearer token (at least 16 printable characters,
                        no spaces); without it one is generated and written to
                        <data dir>/admin.token (kept across restarts)
  --demo                load the reference application (售后工单管理) and its demo team if missing,
                        and print their logins; a definition an administrator has changed since
                        is left as they made it
  --reference-dir D     where the reference application's documents are (default: the source tree's
                        domain/reference)
  --max-body BYTES      largest JSON body (default 8388608)
  --max-attachment BYTES  largest upload (default 33554432)
  --read-timeout S      seconds a connection may stay silent (default 30)
  --shutdown-grace S    seconds a stop waits for in-flight requests and closing streams before
                        cutting off what is still open (default 40)
  --stream-recheck-ms MS  how often each open stream checks that its session has not expired
                        (default 5000)
  --rate-limit N        requests a second per bearer token, bursts of 2N; over it: 429 with
                        Retry-After (default 1000; 0 = no limit)
  --max-connections N   open connections beyond N are answered 503 and closed (default 10000)
  --session-ttl D       how long a sign-in's token counts, e.g. 12h or 7d (default 30d; 0 = until
                        signed out); then 401 "the session has expired". Each sign-in records
                        its expiry: raising the TTL later does not lengthen it
  --sign-in-failures-per-address N   failed sign-ins from one client address, whatever the
                        names, before it must wait (30 s, doubling with each further failure up
                        to 15 min; forgotten after a quiet hour); default 20, 0 = no such limit.
                        Each user name has its own limit too (5)
  --trusted-proxies "ADDR …"   reverse proxies in front of the server, space-separated addresses
                        as it sees them (e.g. "127.0.0.1"): from these, the client is the address
                        their X-Forwarded-For gives; from anyone else that header is ignored
  --cors-origins "ORIGIN …"   web origins whose pages may call the API from a browser, e.g.
                        "https://app.example.com https://support.example.com" ("*": any);
                        their preflights are answered and their answers carry
                        Access-Control-Allow-Origin (default: none)
  --tls-cert FILE, --tls-key FILE   serve TLS (1.2, 1.3) too, on the same port: a PEM certificate
                        chain and its key; each connection is TLS or plain HTTP as it opens;
                        SIGHUP reads them again (new connections get the renewed certificate)
  --backup-dir D        where POST /api/v1/backups puts copies of the running log (default
                        <data dir>/backups; "off" refuses backups); each copy is a data directory
                        a server or ticketctl can be started on
  --backup-keep N       after each backup keep only the N newest (default 0: all)
  --min-free-mb N       refuse commands (503) while the data directory's disk has less than N MiB
                        free, and take them again once it has (default 256)

Notification delivery (the rules' notify actions; a channel without its transport is only
recorded, as NotificationRequested):
  --smtp-url URL        e-mail through this SMTP server: smtp://host:port or smtps://host:port
  --smtp-from ADDRESS   the sender of those e-mails (required with --smtp-url)
  --smtp-user U, --smtp-password P   SMTP authentication, if the server wants it (the password
                        better as TICKETD_SMTP_PASSWORD: arguments show in ps)
  --sms-gateway URL     SMS: POSTs {"to":[phones],"text","ticket","id"} to this http(s) URL
  --sms-gateway-token T   sent to the gateway as Authorization: Bearer T (better as
                        TICKETD_SMS_GATEWAY_TOKEN: arguments show in ps)
  --webhook-url URL     webhooks: POSTs {"id","ticket","rule","to","recipient","text",
                        "requested_at"} to this http(s) URL
  --webhook-secret S    signs each webhook: X-Ticketd-Timestamp: <unix seconds> and
                        X-Ticketd-Signature: sha256=<hex HMAC-SHA256 under S of
                        "<timestamp>.<body>"> (better as TICKETD_WEBHOOK_SECRET)
  --notify-attempts N   attempts before a notification is given up (default 6)
  --notify-retry S      seconds before the first retry, doubling after each (default 5)

Look-ups into other systems (the rules' lookup actions, e.g. a CRM's customer record when a
ticket is created):
  --lookup-sources "NAME=URL …"   the sources rules may name, space-separated, each an http(s)
                        base URL that a lookup's path and query are added to, e.g.
                        "crm=https://crm.example.com/api erp=http://10.0.0.5:8000/v2"; a rule
                        naming another source is refused
  --lookup-tokens "NAME=TOKEN …"   sent to those sources as Authorization: Bearer TOKEN (better
                        as TICKETD_LOOKUP_TOKENS: arguments show in ps)
  --lookup-timeout S    seconds a lookup's GET may take (default 10)
  --lookup-attempts N   attempts of a lookup that times out or gets a 5xx (default 5)
  --lookup-retry S      seconds before its first retry, doubling after each (default 2)
  --lookup-concurrency N  lookups asked at once (default 2): a slow source holds one each
  --help                this text
)";

struct Options {
  std::map<std::string, std::string> values;
  std::string get(const std::string& name, const std::string& fallback) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
};

bool parse_options(int argc, char** argv, Options* out, std::string* error) {
  static const std::vector<std::string> kNames = {"data-dir",
                                                  "listen",
                                                  "threads",
                                                  "query-threads",
                                                  "scan-step",
                                                  "quick-listing",
                                                  "admin-token",
                                                  "demo",
                                                  "reference-dir",
                                                  "max-body",
                                                  "max-attachment",
                                                  "read-timeout",
                                                  "shutdown-grace",
                                                  "stream-recheck-ms",
                                                  "rate-limit",
                                                  "min-free-mb",
                                                  "max-connections",
                                                  "smtp-url",
                                                  "smtp-from",
                                                  "smtp-user",
                                                  "smtp-password",
                                                  "sms-gateway",
                                                  "sms-gateway-token",
                                                  "webhook-url",
                                                  "webhook-secret",
                                                  "notify-attempts",
                                                  "notify-retry",
                                                  "tls-cert",
                                                  "tls-key",
                                                  "lookup-sources",
                                                  "lookup-timeout",
                                                  "lookup-attempts",
                                                  "lookup-retry",
                                                  "lookup-tokens",
                                                  "lookup-concurrency",
                                                  "session-ttl",
                                                  "sign-in-failures-per-address",
                                                  "trusted-proxies",
                                                  "cors-origins",
                                                  "backup-dir",
                                                  "backup-keep"};
  for (const auto& name : kNames) {
    std::string env = "TICKETD_" + name;
    for (auto& c : env) c = c == '-' ? '_' : static_cast<char>(std::toupper(c));
    if (const char* v = std::getenv(env.c_str()); v && *v) out->values[name] = v;
  }
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      out->values["help"] = "1";
      continue;
    }
    if (a.rfind("--", 0) != 0) {
      *error = "unexpected argument '" + a + "'";
      return false;
    }
    std::string name = a.substr(2), value;
    const size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    // Named before its value is looked for: a misspelt last option is unknown, not short of one.
    if (std::find(kNames.begin(), kNames.end(), name) == kNames.end()) {
      *error = "unknown option --" + name;
      return false;
    }
    if (eq == std::string::npos) {
      if (name == "demo") {
        value = "1";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        *error = "--" + name + " needs a value";
        return false;
      }
    }
    out->values[name] = value;
  }
  return true;
}

bool is_ip_address(const std::string& text) {
  unsigned char bytes[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, text.c_str(), bytes) == 1 ||
         ::inet_pton(AF_INET6, text.c_str(), bytes) == 1;
}

// The space-separated NAME=VALUE items of an option (--lookup-sources, --lookup-tokens): each
// whole, its name, and its value (empty without a '=').
struct NameValue {
  std::string item, name, value;
};
// The items of a space-separated option's value, blanks between them skipped.
std::vector<std::string> space_separated(const std::string& text) {
  std::vector<std::string> items;
  std::istringstream list(text);
  for (std::string item; list >> item;) items.push_back(std::move(item));
  return items;
}

std::vector<NameValue> name_value_items(const std::string& text) {
  std::vector<NameValue> out;
  for (std::string& item : space_separated(text)) {
    size_t eq = item.find('=');
    std::string name = item.substr(0, std::min(eq, item.size()));
    std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    out.push_back({std::move(item), std::move(name), std::move(value)});
  }
  return out;
}

bool to_number(const std::string& text, uint64_t* out) {
  auto n = ticketd::api::parse_uint(text);
  if (n) *out = *n;
  return n.has_value();
}

// The option `name` (else `fallback`) as a whole number from `least` to `most`.
bool number_from(const Options& o, const char* name, const char* fallback, uint64_t least,
                 uint64_t most, uint64_t* out) {
  return to_number(o.get(name, fallback), out) && *out >= least && *out <= most;
}

constexpr size_t kMinAdminTokenLength = 16;

// The admin token: given, or kept in <data dir>/admin.token (created 0600 on first start).
bool admin_token(const Options& o, const std::string& data_dir, std::string* token,
                 std::string* error) {
  *token = o.get("admin-token", "");
  if (!token->empty()) {
    // The token is every administrator power at once, and requests carry it in a header.
    if (token->size() < kMinAdminTokenLength) {
      *error = "--admin-token (or TICKETD_ADMIN_TOKEN) must be at least " +
               std::to_string(kMinAdminTokenLength) +
               " characters: a short one is guessed (leave it out and one is generated)";
      return false;
    }
    if (std::any_of(token->begin(), token->end(),
                    [](unsigned char c) { return c <= ' ' || c >= 0x7f; })) {
      *error =
          "--admin-token (or TICKETD_ADMIN_TOKEN) must be printable ASCII without spaces, "
          "as an Authorization header carries it";
      return false;
    }
    return true;
  }
  std::string path = data_dir + "/admin.token";
  if (std::ifstream in(path); in && std::getline(in, *token) && !token->empty()) return true;
  *token = ticketd::api::random_token(24);
  std::ofstream out(path, std::ios::trunc);
  if (!out || !(out << *token << "\n")) {
    *error = "cannot write " + path;
    return false;
  }
  out.close();
  chmod(path.c_str(), 0600);
  return true;
}

// Saves a read-model snapshot when enough has happened since the last one, so a restart replays
// a short tail instead of the whole log; spaced by projections::snapshot_due.
class Snapshotter {
 public:
  Snapshotter(ticketd::storage::EventLog& log, ticketd::projections::ReadModel& model)
      : log_(log), model_(model), saved_(model.applied_position()), thread_([this] {
          pthread_setname_np(pthread_self(), "snapshots");
          run();
        }) {}
  ~Snapshotter() { stop(); }

  void stop() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  using Clock = std::chrono::steady_clock;
  static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  void run() {
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return stopping_; })) {
      const uint64_t applied = model_.applied_position();
      if (!ticketd::projections::snapshot_due(policy_, applied - saved_,
                                              seconds(Clock::now() - began_), took_)) {
        continue;
      }
      lk.unlock();
      const Clock::time_point began = Clock::now();
      auto s = ticketd::projections::save_snapshot(log_, model_);
      const double took = seconds(Clock::now() - began);
      lk.lock();
      if (s.ok()) {
        saved_ = applied;
        began_ = began;
        took_ = took;
        spdlog::info("read-model snapshot saved at position {} in {:.2f}s", applied, took);
      } else {
        spdlog::warn("read-model snapshot failed: {}", s.ToString());
      }
    }
  }

  ticketd::storage::EventLog& log_;
  ticketd::projections::ReadModel& model_;
  const ticketd::projections::SnapshotPolicy policy_;
  uint64_t saved_;                          // the position the last save (or the start) holds
  Clock::time_point began_ = Clock::now();  // when the last save began (or the start)
  double took_ = 0;                         // how long the last save took, in seconds
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

int fail(const std::string& message) {
  std::cerr << "ticketd: " << message << "\n";
  return 2;
}

// Request lines ("request_id=… status=… latency_ms=…", one a request) go to stderr through a
// 64 KB buffer, written when full, every second and at a clean stop, as Envoy's access log does:
// a write(2) a request under spdlog's console lock was 2.4% of the server's CPU under submit load.
// Everything else is written at once. The buffer shares stderr's file description (a dup), so
// the two interleave by whole writes even when stdout and stderr go to one file.
void start_access_log() {
  int fd = ::dup(STDERR_FILENO);
  if (fd < 0) return;  // request lines then go to the default logger, unbuffered
  // Never freed: spdlog's flushing thread may write to it until the process ends. Held by a
  // static, so that a leak checker sees it is still in use at exit.
  static std::ostream* out =
      new std::ostream(new __gnu_cxx::stdio_filebuf<char>(fd, std::ios::out, 64 << 10));
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*out, false);
  auto access = std::make_shared<spdlog::logger>(std::string(ticketd::api::kAccessLogger), sink);
  access->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  access->flush_on(spdlog::level::warn);
  spdlog::register_logger(access);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ticketd;
  server::use_huge_page_heap();
  server::ProcessSignals signals;  // before any other thread starts
  Options o;
  std::string error;
  if (!parse_options(argc, argv, &o, &error)) return fail(error + " (see --help)");
  if (o.values.count("help")) {
    std::cout << kHelp;
    return 0;
  }
  if (sodium_init() < 0) return fail("libsodium failed to initialise");
  // Every connection is a descriptor: take all the system allows, not the shell's default 1024.
  if (rlimit lim; getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%l%$ %v", spdlog::pattern_time_type::utc);
  start_access_log();

  std::string data_dir = o.get("data-dir", "./data");
  std::string listen = o.get("listen", "127.0.0.1:8080");
  auto colon = listen.rfind(':');
  uint64_t port = 0, threads = 0, max_body = 0, max_attachment = 0, read_timeout = 0;
  if (colon == std::string::npos || !to_number(listen.substr(colon + 1), &port) || port > 65535) {
    return fail("--listen must be HOST:PORT, not '" + listen + "'");
  }
  if (!number_from(o, "threads", "2", 1, 256, &threads)) {
    return fail("--threads must be a number from 1 to 256");
  }
  uint64_t query_threads = 0;
  if (!number_from(o, "query-threads", "1", 1, 256, &query_threads)) {
    return fail("--query-threads must be a number from 1 to 256");
  }
  uint64_t scan_step = 0;
  if (!number_from(o, "scan-step", "1024", 1, 1'000'000'000, &scan_step)) {
    return fail("--scan-step must be a number of tickets from 1 to 1000000000");
  }
  uint64_t quick_listing = 0;
  if (!number_from(o, "quick-listing", "16384", 0, 1'000'000'000, &quick_listing)) {
    return fail("--quick-listing must be a number of tickets from 0 to 1000000000");
  }
  if (!number_from(o, "max-body", "8388608", 1024, UINT64_MAX, &max_body)) {
    return fail("--max-body must be a number of bytes (at least 1024)");
  }
  if (!number_from(o, "max-attachment", "33554432", 1024, UINT64_MAX, &max_attachment)) {
    return fail("--max-attachment must be a number of bytes (at least 1024)");
  }
  // Upper bounds keep the deadlines computed from these within the clock's range.
  if (!number_from(o, "read-timeout", "30", 1, 86400, &read_timeout)) {
    return fail("--read-timeout must be a whole number of seconds from 1 to 86400");
  }
  uint64_t shutdown_grace = 0;
  if (!number_from(o, "shutdown-grace", "40", 1, 86400, &shutdown_grace)) {
    return fail("--shutdown-grace must be a whole number of seconds from 1 to 86400");
  }
  uint64_t stream_recheck_ms = 0;
  if (!number_from(o, "stream-recheck-ms", "5000", 1, 86400000, &stream_recheck_ms)) {
    return fail("--stream-recheck-ms must be a whole number of milliseconds from 1 to 86400000");
  }
  uint64_t rate_limit = 0;
  if (!to_number(o.get("rate-limit", "1000"), &rate_limit)) {
    return fail("--rate-limit must be a whole number of requests a second (0 = no limit)");
  }
  int64_t session_ttl_us = 0;
  if (std::string ttl = o.get("session-ttl", "30d"); ttl != "0") {
    auto parsed = ticketd::parse_duration(ttl);
    if (!parsed) return fail("--session-ttl must be a duration like 12h or 30d (0 = no expiry)");
    session_ttl_us = *parsed;
  }
  uint64_t per_address = 0;
  if (!number_from(o, "sign-in-failures-per-address", "20", 0, 1'000'000, &per_address)) {
    return fail("--sign-in-failures-per-address must be a whole number (0 = no limit per address)");
  }
  std::set<std::string> trusted_proxies;
  for (const std::string& item : space_separated(o.get("trusted-proxies", ""))) {
    if (!is_ip_address(item)) {
      return fail("--trusted-proxies: \"" + item + "\" is not an IPv4 or IPv6 address");
    }
    trusted_proxies.insert(item);
  }
  std::set<std::string> cors_origins;
  for (const std::string& item : space_separated(o.get("cors-origins", ""))) {
    // An origin is a scheme, a host and perhaps a port, as a browser's Origin header says it.
    const size_t host = item.find("://");
    const std::string scheme = host == std::string::npos ? "" : item.substr(0, host);
    if (item != "*" && ((scheme != "http" && scheme != "https") || host + 3 == item.size() ||
                        item.find('/', host + 3) != std::string::npos)) {
      return fail("--cors-origins: \"" + item +
                  "\" is not an origin like https://app.example.com (a scheme and a host, no "
                  "path) or *");
    }
    cors_origins.insert(item);
  }
  uint64_t backup_keep = 0;
  if (!number_from(o, "backup-keep", "0", 0, 100000, &backup_keep)) {
    return fail("--backup-keep must be a whole number of backups (0 = keep all)");
  }
  uint64_t max_connections = 0;
  if (!number_from(o, "max-connections", "10000", 1, UINT64_MAX, &max_connections)) {
    return fail("--max-connections must be a whole number (at least 1)");
  }
  uint64_t min_free_mb = 0;
  if (!number_from(o, "min-free-mb", "256", 0, 1ull << 30, &min_free_mb)) {
    return fail("--min-free-mb must be a whole number of MiB");
  }
  api::OutboxOptions outbox;
  outbox.transport.smtp_url = o.get("smtp-url", "");
  outbox.transport.smtp_from = o.get("smtp-from", "");
  outbox.transport.smtp_user = o.get("smtp-user", "");
  outbox.transport.smtp_password = o.get("smtp-password", "");
  outbox.transport.sms_gateway_url = o.get("sms-gateway", "");
  outbox.transport.webhook_url = o.get("webhook-url", "");
  outbox.transport.sms_gateway_token = o.get("sms-gateway-token", "");
  outbox.transport.webhook_secret = o.get("webhook-secret", "");
  auto scheme_is = [](const std::string& url, std::initializer_list<const char*> schemes) {
    for (const char* s : schemes) {
      if (url.rfind(std::string(s) + "://", 0) == 0 && url.size() > std::strlen(s) + 3) return true;
    }
    return url.empty();
  };
  if (!scheme_is(outbox.transport.smtp_url, {"smtp", "smtps"}))
    return fail("--smtp-url must be smtp://host:port or smtps://host:port");
  if (!outbox.transport.smtp_url.empty() && outbox.transport.smtp_from.empty())
    return fail("--smtp-url needs --smtp-from, the sender's address");
  for (const auto& [name, url] : {std::pair{"sms-gateway", outbox.transport.sms_gateway_url},
                                  std::pair{"webhook-url", outbox.transport.webhook_url}}) {
    if (!scheme_is(url, {"http", "https"}))
      return fail(std::string("--") + name + " must be an http:// or https:// URL");
  }
  // Said rather than ignored: a receiver waiting for signed requests would refuse every one.
  if (!outbox.transport.webhook_secret.empty() && outbox.transport.webhook_url.empty())
    return fail("--webhook-secret needs --webhook-url, the receiver it signs for");
  if (!outbox.transport.sms_gateway_token.empty() && outbox.transport.sms_gateway_url.empty())
    return fail("--sms-gateway-token needs --sms-gateway");
  for (const auto& [name, value] :
       {std::pair{"webhook-secret", outbox.transport.webhook_secret},
        std::pair{"sms-gateway-token", outbox.transport.sms_gateway_token}}) {
    // A header line: CR or LF would end it and start another.
    if (value.find_first_of("\r\n") != std::string::npos)
      return fail(std::string("--") + name + " may not contain line breaks");
  }
  uint64_t attempts = 0, retry_s = 0;
  if (!number_from(o, "notify-attempts", "6", 1, 100, &attempts))
    return fail("--notify-attempts must be a whole number from 1 to 100");
  if (!number_from(o, "notify-retry", "5", 1, 86400, &retry_s))
    return fail("--notify-retry must be a whole number of seconds from 1 to 86400");
  outbox.retry.max_attempts = static_cast<int>(attempts);
  outbox.retry.first_delay_us = static_cast<int64_t>(retry_s) * 1'000'000;

  api::LookupOptions lookups;
  for (const auto& [item, name, url] : name_value_items(o.get("lookup-sources", ""))) {
    if (!is_lookup_source_name(name) || url.empty() || !scheme_is(url, {"http", "https"})) {
      return fail("--lookup-sources: \"" + item +
                  "\" is not NAME=URL (a name of up to 64 letters, digits, _ and -; an "
                  "http:// or https:// URL)");
    }
    if (!lookups.sources.emplace(name, url).second)
      return fail("--lookup-sources: " + name + " is named twice");
  }
  for (const auto& [item, name, token] : name_value_items(o.get("lookup-tokens", ""))) {
    if (token.empty() || !lookups.sources.count(name)) {
      return fail(
          "--lookup-tokens: an item is not NAME=TOKEN for a source --lookup-sources "
          "names (\"" +
          name + "\")");
    }
    lookups.tokens[name] = token;
  }
  uint64_t lookup_timeout = 0, lookup_attempts = 0, lookup_retry = 0;
  if (!number_from(o, "lookup-timeout", "10", 1, 600, &lookup_timeout))
    return fail("--lookup-timeout must be a whole number of seconds from 1 to 600");
  if (!number_from(o, "lookup-attempts", "5", 1, 100, &lookup_attempts))
    return fail("--lookup-attempts must be a whole number from 1 to 100");
  if (!number_from(o, "lookup-retry", "2", 1, 86400, &lookup_retry))
    return fail("--lookup-retry must be a whole number of seconds from 1 to 86400");
  uint64_t lookup_concurrency = 0;
  if (!number_from(o, "lookup-concurrency", "2", 1, 64, &lookup_concurrency))
    return fail("--lookup-concurrency must be a whole number from 1 to 64");
  lookups.fetchers = static_cast<int>(lookup_concurrency);
  lookups.timeout_seconds = static_cast<long>(lookup_timeout);
  lookups.max_attempts = static_cast<int>(lookup_attempts);
  lookups.first_retry = std::chrono::seconds(lookup_retry);

  std::error_code ec;
  namespace fs = std::filesystem;
  // The log holds every ticket, customer phone number and password hash: a directory this
  // server makes is its user's alone; one it is given with wider access is said so.
  const bool existed = fs::exists(data_dir, ec);
  fs::create_directories(data_dir, ec);
  if (ec) return fail("cannot create " + data_dir + ": " + ec.message());
  if (!existed) {
    fs::permissions(data_dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  } else if ((fs::status(data_dir, ec).permissions() &
              (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none) {
    spdlog::warn("{} can be read by other users of this machine (chmod 700 {} keeps them out)",
                 data_dir, data_dir);
  }

  std::unique_ptr<storage::EventLog> log;
  storage::EventLogOptions log_options;
  log_options.path = data_dir + "/log";
  log_options.min_free_bytes = min_free_mb << 20;
  log_options.defer_compactions = true;  // resumed once the read model has caught up
  auto opening = std::chrono::steady_clock::now();
  if (auto s = storage::EventLog::Open(log_options, &log); !s.ok()) return fail(s.ToString());
  double open_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - opening).count();

  api::ApiOptions api_options;
  if (!admin_token(o, data_dir, &api_options.admin_token, &error)) return fail(error);
  api_options.max_body_bytes = max_body;
  api_options.max_attachment_bytes = max_attachment;
  api_options.rate_limit = static_cast<double>(rate_limit);
  api_options.session_ttl_us = session_ttl_us;
  api_options.sign_in_failures_per_address = static_cast<int>(per_address);
  api_options.trusted_proxies = std::move(trusted_proxies);
  api_options.cors_origins = std::move(cors_origins);
  if (std::string backups = o.get("backup-dir", data_dir + "/backups"); backups != "off") {
    api_options.backup_dir = backups;
  }
  api_options.backup_keep = static_cast<size_t>(backup_keep);
  api_options.queries.threads = static_cast<int>(query_threads);
  api_options.scan_step = static_cast<size_t>(scan_step);
  api_options.quick_listing = static_cast<size_t>(quick_listing);
  for (const auto& [name, url] : lookups.sources) api_options.lookup_sources.insert(name);

  // The read model starts from its snapshot, catches up with the log's tail, then follows the log
  // live. Until it has caught up the server answers nothing but 503.
  projections::ReadModel model;
  std::string note;
  // Pending timers are computed after the server is up (below): nothing it answers needs them,
  // and a replay then computes each ticket's once rather than at every batch that changes it.
  uint64_t from =
      projections::restore_snapshot(*log, model, &note, projections::ReadModel::Timers::kLater);
  auto started = std::chrono::steady_clock::now();
  if (auto s = projections::replay(*log, model, from, projections::ReadModel::Timers::kLater);
      !s.ok()) {
    return fail(s.ToString());
  }
  uint64_t replayed = model.applied_position() - from;
  // Live, each run of events committed together is applied as one batch.
  std::vector<projections::ParsedEvent> batch;
  auto subscription = log->subscribe(
      model.applied_position(), [&](const storage::RecordedEvent& e) { batch.emplace_back(e); },
      [&] { model.apply(std::exchange(batch, {})); });
  // Restoring parsed a snapshot as large as the model and replaying built and dropped many
  // temporaries; tcmalloc keeps freed pages for reuse unless told to hand them back.
#ifndef TICKETD_WITHOUT_TCMALLOC
  MallocExtension::instance()->ReleaseFreeMemory();
#endif
  if (auto s = log->resume_compactions(); !s.ok()) return fail(s.ToString());
  spdlog::info(
      "log {} at position {} (opened in {:.2f}s); read model: {}, {} events replayed in "
      "{:.3f}s",
      log_options.path, model.applied_position(), open_s, note, replayed,
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  Snapshotter snapshotter(*log, model);

  std::vector<server::DemoLogin> logins;
  if (o.values.count("demo") && o.get("demo", "") != "0") {
    std::string dir = o.get("reference-dir", std::string(TICKETD_SOURCE_DIR) + "/domain/reference");
    if (!server::load_reference_app(dir, *log, model, &logins, &error))
      return fail("demo: " + error);
  }

  api::Metrics metrics;
  api::Api api(*log, model, metrics, api_options);
  std::unique_ptr<api::OutboxWorker> outbox_worker;
  if (!api::OutboxWorker::channels(outbox.transport).empty()) {
    outbox_worker = std::make_unique<api::OutboxWorker>(*log, model, metrics, outbox,
                                                        [&api] { return api.now_us(); });
  }
  api.set_outbox(outbox_worker.get());  // reset only once the server has stopped
  api::HttpServerOptions http;
  http.host = listen.substr(0, colon);
  if (http.host.size() > 2 && http.host.front() == '[')
    http.host = http.host.substr(1, http.host.size() - 2);
  http.port = static_cast<uint16_t>(port);
  http.threads = static_cast<int>(threads);
  http.read_timeout = std::chrono::seconds(read_timeout);
  http.shutdown_grace = std::chrono::seconds(shutdown_grace);
  http.stream_recheck = std::chrono::milliseconds(stream_recheck_ms);
  http.max_connections = max_connections;
  api::StreamHub hub(*log, model);
  model.on_ticket_applied(
      [&hub](uint64_t position, const std::string& type, std::vector<AssigneeSpec> before,
             const TicketState& after, const Value& notification) {
        hub.on_ticket_event(position, type, std::move(before), after, notification);
      },
      [&hub] { return hub.listening(); });
  // A dashboard republished or the company's zone changed: wall screens show it at once.
  model.on_catalog_change([&hub] { hub.refresh_numbers(); });
  api::HttpServer server(api, metrics, hub, http);
  // Signed out, disabled, reset or given other roles: their open streams end at once.
  model.on_access_change([&server] { server.recheck_streams(); });
  const std::string tls_cert = o.get("tls-cert", ""), tls_key = o.get("tls-key", "");
  if (tls_cert.empty() != tls_key.empty()) return fail("--tls-cert and --tls-key go together");
  if (!tls_cert.empty() && !server.use_tls(tls_cert, tls_key, &error)) return fail(error);
  if (!server.listen(&error)) return fail(error);
  // From here a stop signal stops the server, however soon after the start it comes (before
  // run(), the stop waits for it). SIGHUP reads the TLS certificate and key again.
  signals.on_stop([&api, &server, stopping = false](int signal) mutable {
    if (std::exchange(stopping, true)) {
      spdlog::info("signal {}: already stopping", signal);
      return;
    }
    spdlog::info("signal {}: finishing in-flight requests, then exiting", signal);
    api.stop_accepting();
    server.stop();
  });
  signals.on_hangup([&server, &tls_cert](int) {
    std::string error;
    if (tls_cert.empty()) {
      spdlog::info("SIGHUP: nothing to reload (no --tls-cert and --tls-key)");
    } else if (server.reload_tls(&error)) {
      spdlog::info("SIGHUP: TLS certificate {} reloaded; new connections use it", tls_cert);
    } else {
      spdlog::error("SIGHUP: TLS certificate not reloaded, the previous one stays: {}", error);
    }
  });
  api.set_ready(true);
  // Timers due while the server was down fire now (once the schedule the start left out
  // is complete: about a second for a million tickets); the rest when they come due.
  api::TimerScheduler timers(api, model, [&api] { return api.now_us(); });
  std::thread schedule_completion([&model] {
    pthread_setname_np(pthread_self(), "timers-complete");
    auto t0 = std::chrono::steady_clock::now();
    if (model.complete_schedule()) {
      spdlog::info("pending timers computed in {:.2f}s",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  });

  // Rules whose lookups this server cannot ask (started without their source): said once, at
  // the start, since their requests will wait until a start that has it.
  model.read([&](const projections::ReadModel::View& v) {
    for (const auto& id : v.catalog.rule_ids()) {
      const RuleDef* rule = v.catalog.rule(id);
      if (!rule || !rule->enabled) continue;
      for (const auto& action : rule->actions) {
        if (action.kind == RuleAction::Kind::kLookup && !lookups.sources.count(action.source)) {
          spdlog::warn(
              "rule {} asks lookup source {}, which --lookup-sources does not name: its "
              "lookups wait for a start that has it",
              id, action.source);
        }
      }
    }
    return 0;
  });
  std::unique_ptr<api::LookupWorker> lookup_worker;
  if (!lookups.sources.empty()) {
    lookup_worker = std::make_unique<api::LookupWorker>(*log, model, api, metrics, lookups);
  }

  std::string base = "http://" + listen.substr(0, colon) + ":" + std::to_string(server.port());
  std::cout << "ticketd serving " << base << (tls_cert.empty() ? "" : " and https on the same port")
            << "  (data: " << data_dir << ", events: " << log->last_position() << ")\n"
            << "admin token: " << api_options.admin_token << "\n";
  if (!logins.empty()) {
    std::cout << "reference application 售后工单管理 loaded; demo logins (user / password):\n";
    for (const auto& l : logins) {
      std::cout << "  " << l.user << " / " << l.password << "   " << l.name << " (" << l.roles
                << ")\n";
    }
    std::cout << "try: curl -s " << base
              << "/api/v1/sessions -d '{\"user\":\"li\",\"password\":\"demo-li\"}'\n";
  }
  std::cout << std::flush;

  server.run();
  // run() returns only after the stop handler's first call, which from then on only says a
  // signal it takes; a certificate is not worth reloading any more.
  signals.on_hangup([](int) { spdlog::info("SIGHUP: nothing to reload while stopping"); });
  schedule_completion.join();
  timers.stop();
  outbox_worker.reset();  // finishes the send under way, records it, saves its queue
  lookup_worker.reset();  // abandons the GETs under way, waits for answers being recorded
  model.on_ticket_applied(nullptr);
  model.on_catalog_change(nullptr);
  model.on_access_change(nullptr);
  hub.stop();
  snapshotter.stop();
  {
    // Every answered command is applied already; wait for anything else written before stopping.
    auto done = std::make_shared<std::promise<void>>();
    model.when_applied(log->last_position(), [done] { done->set_value(); });
    done->get_future().wait_for(std::chrono::seconds(10));
  }
  subscription.reset();
  if (auto s = projections::save_snapshot(*log, model); !s.ok()) {
    spdlog::warn("final snapshot not saved: {}", s.ToString());
  }
  log.reset();  // completes queued appends and closes the database
  spdlog::info("stopped cleanly");
  // The loggers end next: a signal from now on is taken without a word.
  signals.on_stop([](int) {});
  signals.on_hangup(nullptr);
  spdlog::shutdown();  // writes out the access log's buffer
  return 0;
}
