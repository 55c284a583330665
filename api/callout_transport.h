#pragma once
// Talks to other systems with libcurl: sends notifications (e-mail over SMTP, SMS through an
// HTTP gateway, webhooks as JSON POSTs) and fetches lookups' answers (JSON GETs). Blocking, one at
// a time, each bounded by a timeout: it runs on the outbox's and the lookups' worker threads, never
// on the HTTP threads.
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ticketd::api {

struct TransportOptions {
  std::string smtp_url;   // e.g. smtp://mail.example.com:587 or smtps://…; empty: no e-mail
  std::string smtp_from;  // the envelope and header sender, e.g. tickets@example.com
  std::string smtp_user;  // optional; with smtp_password
  std::string smtp_password;
  std::string sms_gateway_url;    // gets {"to":[…],"text":…,…} POSTed; empty: no SMS
  std::string sms_gateway_token;  // sent to it as Authorization: Bearer …; empty: none
  std::string webhook_url;        // gets every webhook notification POSTed; empty: no webhooks
  // Signs each webhook (webhook_signature) so that its receiver can tell it came from here;
  // empty: unsigned.
  std::string webhook_secret;
  long timeout_seconds = 15;
  // Set to true to abandon a send under way (a server shutting down does not wait for a slow
  // gateway); the attempt then ends `cancelled`.
  const std::atomic<bool>* cancel = nullptr;
};

// One attempt's outcome: `permanent` when trying again cannot help (a 4xx answer, a refused
// recipient or sender); otherwise a failure is worth retrying (timeouts, refused connections, 5xx).
struct SendResult {
  bool ok = false;
  bool permanent = false;
  bool cancelled = false;  // abandoned through TransportOptions::cancel: not an outcome
  std::string error;
};

// The message as sent over SMTP: RFC 5322 headers (the subject in RFC 2047 UTF-8), a base64
// UTF-8 plain-text body. `date_us`: the Date header.
std::string format_mail(const std::string& from, const std::vector<std::string>& to,
                        const std::string& subject, const std::string& text,
                        const std::string& message_id, int64_t date_us);

SendResult send_mail(const TransportOptions& options, const std::vector<std::string>& to,
                     const std::string& message);

// POSTs `json` to `url` with an Idempotency-Key header (the same key on every retry of one
// notification, so the receiver can drop a repeat) and `headers` ("Name: value" each).
SendResult post_json(const TransportOptions& options, const std::string& url,
                     const std::string& json, const std::string& idempotency_key,
                     const std::vector<std::string>& headers = {});

// The headers that sign a webhook's `body` sent at `unix_seconds`: X-Ticketd-Timestamp, and
// X-Ticketd-Signature: sha256=<hex HMAC-SHA256 under `secret` of "<timestamp>.<body>">. The
// receiver computes the same and compares; the signed timestamp lets it refuse an old request
// replayed (a retry is signed anew when it is sent).
std::vector<std::string> webhook_signature(const std::string& secret, int64_t unix_seconds,
                                           const std::string& body);

// GETs `url` with the `query` parameters added (percent-encoded) and keeps the answer's body, at
// most `max_body` bytes: `body` holds it when `ok` (a 2xx answer). Errors name `what` (a lookup
// source's name) rather than the URL, which may hold credentials.
struct FetchResult : SendResult {
  std::string body;
};
// `bearer`, when not empty, goes as `Authorization: Bearer …`.
FetchResult get_json(const TransportOptions& options, const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& query,
                     const std::string& bearer, const std::string& what, size_t max_body = 1 << 20);

}  // namespace ticketd::api
