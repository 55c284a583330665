#pragma once
// The HTTP API of ../shared/API.md over the event log and the read model. Every command answers
// only after its events are durable and applied to the read model, with the position it wrote.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "api/http_types.h"
#include "api/metrics.h"
#include "api/printer.h"
#include "api/query_threads.h"
#include "api/rate_limiter.h"
#include "api/sign_in_guard.h"
#include "api/ticket_numbers.h"
#include "domain/error.h"
#include "domain/ticket.h"
#include "domain/value.h"
#include "projections/read_model.h"
#include "storage/event_log.h"

namespace ticketd::api {

struct Call;         // one request in flight (api/call.h)
class OutboxWorker;  // api/outbox_worker.h
struct WrittenNote;  // api/ticket_view.h
using CallPtr = std::shared_ptr<Call>;

// The spdlog logger each answered request is logged to, one line apiece, when the process
// registered one under this name (ticketd buffers it); else the default logger.
inline constexpr std::string_view kAccessLogger = "access";

struct ApiOptions {
  // The first administrator's token (never stored; compared by hash).
  std::string admin_token;
  size_t max_body_bytes = 8 << 20;
  size_t max_attachment_bytes = 32 << 20;
  // How long a query with min_position waits for the read model at most.
  int min_position_wait_ms = 5000;
  // Requests a second per bearer token (bursts of twice that); 0 turns the limit off.
  double rate_limit = 1000;
  // The lookup sources this server can ask (--lookup-sources): a rule naming another is refused.
  std::set<std::string> lookup_sources;
  // How long a session's token counts from its sign-in (--session-ttl); 0: until signed out.
  int64_t session_ttl_us = 30LL * 24 * 3600 * 1'000'000;
  // Failed sign-ins from one client address (any names) before it is locked out for a while
  // (api/sign_in_guard.h); 0: no limit per address.
  int sign_in_failures_per_address = 20;
  // Reverse proxies whose X-Forwarded-For names the client (--trusted-proxies).
  std::set<std::string> trusted_proxies;
  // Web origins ("https://app.example.com") whose pages may call the API from a browser
  // (--cors-origins): their preflights are answered and their answers may be read. "*" is any
  // origin. Empty: none, as a page served from the API's own origin needs.
  std::set<std::string> cors_origins;
  // Where POST /api/v1/backups puts copies of the running log (--backup-dir); empty: nowhere,
  // and backups are refused.
  std::string backup_dir;
  // After each backup, only this many of the newest are kept (--backup-keep); 0: all.
  size_t backup_keep = 0;
  // The threads listings run on (--query-threads), and how many listings may wait for them
  // before more are answered 503.
  QueryThreadsOptions queries;
  // Tickets a listing considers in one hold of the read model's shared lock (--scan-step): the
  // projection, waiting to apply what was just written, gets in between two holds (the page's
  // tickets are rendered 64 a hold, or this many if fewer). Over a million tickets, a search
  // took 0.3-0.5 s either way, and submissions meanwhile were answered in 1.5-2 ms at the median
  // with steps of 1024, in 11-12 ms with steps of 16384 (BENCHMARKS.md, session 34).
  size_t scan_step = 1024;
  // A listing whose filters leave at most this many tickets to consider (--quick-listing) is
  // answered at once on its connection's thread, an agent's inbox not behind the searches on
  // the query threads; larger ones, and CSV exports, wait their turn there.
  size_t quick_listing = 16384;
};

class Api {
 public:
  Api(storage::EventLog& log, projections::ReadModel& model, Metrics& metrics, ApiOptions options);
  ~Api();  // waits for a backup being made

  // Handles one request; `respond` is called exactly once, possibly on another thread.
  void handle(HttpRequest request, Respond respond);
  // The access log's line for a WebSocket upgrade, which the server answers itself: 101 when
  // it became a stream, else the refusal's status.
  void log_upgrade(const HttpRequest& request, std::string_view user, int status) const;

  // The body limit for a request before its body is read (attachments may be larger).
  size_t body_limit(std::string_view method, std::string_view path) const;
  // The signed-in actor a bearer token stands for (the admin token, or a session's).
  std::optional<Actor> actor_for_token(std::string_view token) const;

  // Fires a timer (the scheduler's command). `done(refused)` runs once the outcome is applied or
  // refused.
  void fire_timer(const std::string& ticket, const std::string& timer, uint64_t entered_version,
                  std::function<void(bool refused)> done);
  // Records a lookup's answer (the lookup worker's command), the same way.
  void apply_lookup(const std::string& ticket, ApplyLookup answer,
                    std::function<void(bool refused)> done);
  int64_t now_us() const;

  // Before the server listens: the outbox that says which notifications are still to be sent
  // (none: this server sends nothing). It must outlive the server's connections.
  void set_outbox(const OutboxWorker* outbox);

  // Stops accepting commands (503) for graceful shutdown.
  void stop_accepting() { accepting_.store(false); }
  void set_ready(bool ready) { ready_.store(ready); }

 private:
  // The same, from the token's hash (what sessions are keyed by).
  // `refused`, when given, says why a session's token no longer counts (expired).
  std::optional<Actor> actor_for_token_hash(const std::string& hash,
                                            std::string* refused = nullptr) const;
  // When a session stops counting: the expiry its sign-in recorded, or --session-ttl after it
  // started if that is sooner (a shortened TTL cuts sessions already started); nullopt: never.
  std::optional<int64_t> session_expiry(const projections::Session& session) const;
  // Runs `fn` once the read model has applied `position`, on the call's connection.
  void when_applied(const CallPtr& call, uint64_t position, std::function<void()> fn);

  // Routes
  void route(const CallPtr& call);
  void post_user(const CallPtr& call);
  void list_users(const CallPtr& call);
  void get_user(const CallPtr& call, const std::string& id);
  void patch_user(const CallPtr& call, const std::string& id);
  void post_session(const CallPtr& call);
  void delete_session(const CallPtr& call);
  void list_user_sessions(const CallPtr& call, const std::string& user);
  // One session of `user` (by its id), or with `session` empty all but the caller's own.
  void delete_user_sessions(const CallPtr& call, const std::string& user,
                            const std::string& session);
  void get_me(const CallPtr& call);
  void post_my_password(const CallPtr& call);
  // Appends the changes a user's PATCH or own password change decided, and answers with the user.
  // With `if_match`, only over that version of the user (409 otherwise).
  void change_user(const CallPtr& call, const std::string& id, const UserChanges& changes,
                   const std::string& kept_session, std::optional<uint64_t> if_match = {});
  void put_definition(const CallPtr& call, const std::string& kind, const std::string& id);
  void get_definition(const CallPtr& call, const std::string& kind, const std::string& id);
  void list_definitions(const CallPtr& call, const std::string& kind);
  void post_ticket(const CallPtr& call);
  void get_ticket(const CallPtr& call, const std::string& id);
  // GET /tickets and /inbox: answered here or on the query threads, by the listing's scope.
  void answer_listing(const CallPtr& call, bool inbox);
  void list_tickets(const CallPtr& call, bool inbox);
  // Posts `query` to the query threads; answers 503 (Retry-After) when too many wait already,
  // 429 when the caller's own do.
  void run_as_query(const CallPtr& call, std::function<void()> query);
  void patch_ticket(const CallPtr& call, const std::string& id);
  void post_action(const CallPtr& call, const std::string& id);
  void post_comment(const CallPtr& call, const std::string& id, bool portal);
  void post_rating(const CallPtr& call, const std::string& id, bool portal);
  void post_reopen(const CallPtr& call, const std::string& id, bool portal);
  void post_todo_done(const CallPtr& call, const std::string& id, const std::string& todo);
  void post_attachment(const CallPtr& call, const std::string& ticket_id);
  // `portal_ticket`: the ticket whose portal code the caller gave (its readable fields only).
  void get_attachment(const CallPtr& call, const std::string& id,
                      const std::string& portal_ticket = "");
  void get_ticket_events(const CallPtr& call, const std::string& id);
  void get_ticket_notifications(const CallPtr& call, const std::string& id);
  void get_ticket_comments(const CallPtr& call, const std::string& id);
  // The notes on a ticket, in order (api/note_routes.cpp); `exists` says whether it has events.
  storage::Status read_ticket_notes(const std::string& id, std::vector<WrittenNote>* out,
                                    bool* exists) const;
  // A ticket's events, parsed, in order, up to a position and a time (as ?as_of= gives them).
  storage::Status read_ticket_until(
      const std::string& id, uint64_t position, int64_t time,
      const std::function<void(const storage::RecordedEvent&, DomainEvent&&)>& visit) const;
  void get_ticket_print(const CallPtr& call, const std::string& id);
  std::string shown_payload(const storage::RecordedEvent& e, const Actor& reader);
  void get_events(const CallPtr& call);
  void get_verify(const CallPtr& call);
  void get_portal(const CallPtr& call, const std::string& id);
  void post_portal_confirm(const CallPtr& call, const std::string& id);
  bool enter_portal(const CallPtr& call, const std::string& id);
  void get_report(const CallPtr& call, const std::string& name);
  void get_dashboard_data(const CallPtr& call, const std::string& id);
  void post_rule_dry_run(const CallPtr& call, const std::string& id);
  void post_sla_policy_dry_run(const CallPtr& call, const std::string& id);
  void get_health(const CallPtr& call);
  void get_metrics(const CallPtr& call);
  void post_import(const CallPtr& call);
  bool backups_allowed(const CallPtr& call);  // answers 403 / 503 when not
  void post_backup(const CallPtr& call);
  void list_backups(const CallPtr& call);
  void delete_backup(const CallPtr& call, const std::string& name);
  // On backup_thread_: the answer's body (201), or why there is no backup (503).
  bool make_backup(std::string* body, std::string* error);

  // Runs a ticket command: decide on the current state, append with the state's version as the
  // expected one, wait until the read model has applied it, answer with the view. A version race
  // without If-Match is retried on the newer state.
  void run_ticket_command(const CallPtr& call, const std::string& ticket_id, Command command,
                          std::optional<uint64_t> if_match, int status, int attempt = 0);
  // Appends definition or account events to their own stream and answers once applied.
  // A conflict with `expected` is a 409 saying `what` changed ("the user"; the stream's name when
  // empty).
  void append_and_answer(const CallPtr& call, const std::string& stream,
                         storage::ExpectedVersion expected, std::vector<DomainEvent> events,
                         int status, std::function<void(JsonWriter&)> body, std::string what = "");

  bool authenticate(const CallPtr& call);  // sets call->actor, or answers 401
  Actor portal_actor() const;
  storage::NewEvent to_new_event(const DomainEvent& e, const Call& call) const;
  // What decide() needs of the caller and the view it decides on: actor, clock, catalog, and
  // lookups into `v` (so it lives no longer than the read that gave `v`).
  Context context(const CallPtr& call, const projections::ReadModel::View& v) const;

  storage::EventLog& log_;
  projections::ReadModel& model_;
  Metrics& metrics_;
  ApiOptions options_;
  std::string admin_token_hash_;
  TicketNumbers ticket_numbers_;
  // Round-robin turns: the member each role's picking node handed a ticket to last, as decided
  // here, ahead of the read model (which learns of a pick only once its event is applied). A
  // command that reads a turn holds picks_mu_ until it has recorded its own pick, so two commands
  // entering a picking node at once take two turns. A pick whose append then fails is a turn
  // skipped; after a restart the turns come from the log again.
  std::mutex picks_mu_;
  std::unordered_map<std::string, std::string> picks_decided_;
  // Least-loaded picks count each member's open tickets in the read model, which lags the same
  // way: the picks decided here that the view a command decides on does not show yet (the
  // ticket's version there is below the pick's) are added. Each is kept until its events are
  // applied or its append has failed.
  struct PickInFlight {
    std::string user;
    std::string ticket;
    uint64_t version;   // the stream version of the event that hands it over
    uint64_t decision;  // which decision made it (a command retried after a conflict decides anew)
  };
  std::vector<PickInFlight> picks_in_flight_;
  uint64_t decisions_picking_ = 0;
  std::atomic<bool> accepting_{true};
  std::atomic<bool> ready_{false};
  RateLimiter limiter_;
  SignInGuard sign_ins_;             // per user name
  SignInGuard sign_ins_by_address_;  // per client address
  Printer printer_;
  const OutboxWorker* outbox_ = nullptr;
  // One backup at a time, each on a thread of its own: a checkpoint flushes the memtables and may
  // take seconds, which no io thread can wait for.
  std::mutex backup_mu_;
  bool backing_up_ = false;
  std::thread backup_thread_;
  // Listings run here (api/query_threads.h). Declared last: gone first, after it has answered
  // every listing posted to it.
  QueryThreads queries_;
};

// Writers shared by routes: API.md's error body, and the status for a domain error code.
HttpResponse error_response(int status, std::string_view code, std::string_view message,
                            std::string_view field = "");
int status_for(const DomainError& e);

}  // namespace ticketd::api
