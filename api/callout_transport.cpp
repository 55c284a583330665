#include "api/callout_transport.h"

#include <curl/curl.h>
#include <sodium.h>

#include <algorithm>
#include <ctime>
#include <memory>
#include <mutex>

namespace ticketd::api {
namespace {

std::string base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// RFC 2047: a header value in UTF-8, as encoded-words short enough for a folded header line.
std::string encoded_words(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t n = std::min<size_t>(45, text.size() - i);
    while (i + n < text.size() && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(std::string_view(text).substr(i, n)) + "?=";
    i += n;
  }
  return out;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// This thread's handle for one transfer, its options reset when the transfer is done (they point
// at the caller's buffers). curl_easy_reset() keeps the handle's live connections, TLS sessions
// and DNS cache, so a worker thread sending to the same gateway or asking the same CRM again
// reuses its connection instead of connecting and handshaking anew.
class ThreadHandle {
 public:
  ThreadHandle() {
    init_curl_once();
    thread_local std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
    c_ = handle.get();
  }
  ~ThreadHandle() {
    if (c_) curl_easy_reset(c_);
  }
  ThreadHandle(const ThreadHandle&) = delete;
  ThreadHandle& operator=(const ThreadHandle&) = delete;
  CURL* get() const { return c_; }

 private:
  CURL* c_ = nullptr;
};

struct Upload {
  const std::string* data;
  size_t offset = 0;
};

size_t read_upload(char* buffer, size_t size, size_t count, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t n = std::min(size * count, up->data->size() - up->offset);
  std::copy_n(up->data->data() + up->offset, n, buffer);
  up->offset += n;
  return n;
}

size_t discard_body(char*, size_t size, size_t count, void*) { return size * count; }

struct Download {
  std::string body;
  size_t max;
  bool too_large = false;
};

size_t keep_body(char* data, size_t size, size_t count, void* user) {
  auto* down = static_cast<Download*>(user);
  if (down->body.size() + size * count > down->max) {
    down->too_large = true;
    return 0;  // ends the transfer with CURLE_WRITE_ERROR
  }
  down->body.append(data, size * count);
  return size * count;
}

struct UrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};

int check_cancel(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return cancel && static_cast<const std::atomic<bool>*>(cancel)->load() ? 1 : 0;
}

// Timeouts, the cancel flag and the error buffer, the same for both kinds of transfer.
void set_common(CURL* c, const TransportOptions& options, char* detail) {
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, detail);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, options.timeout_seconds);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (options.cancel) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, check_cancel);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(options.cancel));
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
}

SendResult failure(CURLcode code, const char* detail, bool permanent) {
  return {false, permanent, code == CURLE_ABORTED_BY_CALLBACK,
          std::string(curl_easy_strerror(code)) + (*detail ? ": " : "") + detail};
}

}  // namespace

std::string format_mail(const std::string& from, const std::vector<std::string>& to,
                        const std::string& subject, const std::string& text,
                        const std::string& message_id, int64_t date_us) {
  std::time_t t = static_cast<std::time_t>(date_us / 1'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  std::string recipients;
  for (const auto& r : to) recipients += (recipients.empty() ? "" : ", ") + r;
  std::string body = base64(text);
  std::string m = "Date: " + std::string(date) + "\r\nFrom: " + from + "\r\nTo: " + recipients +
                  "\r\nSubject: " + encoded_words(subject) + "\r\nMessage-ID: <" + message_id +
                  ">\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: base64\r\n\r\n";
  for (size_t i = 0; i < body.size(); i += 76) m += body.substr(i, 76) + "\r\n";
  return m;
}

SendResult send_mail(const TransportOptions& options, const std::vector<std::string>& to,
                     const std::string& message) {
  init_curl_once();
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return {false, false, false, "curl_easy_init failed"};
  curl_slist* list = nullptr;
  for (const auto& r : to) {
    if (curl_slist* l = curl_slist_append(list, ("<" + r + ">").c_str())) list = l;
  }
  std::unique_ptr<curl_slist, SlistDeleter> rcpt(list);
  char detail[CURL_ERROR_SIZE] = "";
  Upload up{&message};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, options.smtp_url.c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, ("<" + options.smtp_from + ">").c_str());
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt.get());
  curl_easy_setopt(c, CURLOPT_READFUNCTION, read_upload);
  curl_easy_setopt(c, CURLOPT_READDATA, &up);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  set_common(c, options, detail);
  if (!options.smtp_user.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, options.smtp_user.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, options.smtp_password.c_str());
  }
  CURLcode code = curl_easy_perform(c);
  if (code == CURLE_OK) return {true, false, false, ""};
  long response = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response);
  // SMTP 5xx (a recipient or sender refused for good) will not change on a retry; 4xx will.
  return failure(code, detail, response >= 500 && response < 600);
}

std::vector<std::string> webhook_signature(const std::string& secret, int64_t unix_seconds,
                                           const std::string& body) {
  const std::string timestamp = std::to_string(unix_seconds);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()),
                              secret.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(timestamp.data()),
                                timestamp.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>("."), 1);
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(body.data()),
                                body.size());
  crypto_auth_hmacsha256_final(&state, mac);
  char hex[2 * sizeof mac + 1];
  sodium_bin2hex(hex, sizeof hex, mac, sizeof mac);
  return {"X-Ticketd-Timestamp: " + timestamp, "X-Ticketd-Signature: sha256=" + std::string(hex)};
}

SendResult post_json(const TransportOptions& options, const std::string& url,
                     const std::string& json, const std::string& idempotency_key,
                     const std::vector<std::string>& extra_headers) {
  curl_slist* list = curl_slist_append(nullptr, "Content-Type: application/json; charset=utf-8");
  if (curl_slist* l = curl_slist_append(list, ("Idempotency-Key: " + idempotency_key).c_str()))
    list = l;
  for (const auto& header : extra_headers) {
    if (curl_slist* l = curl_slist_append(list, header.c_str())) list = l;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(list);
  char detail[CURL_ERROR_SIZE] = "";
  ThreadHandle handle;  // after what its options point at: reset before they go
  CURL* c = handle.get();
  if (!c) return {false, false, false, "curl_easy_init failed"};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, json.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(json.size()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
  set_common(c, options, detail);
  CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) return failure(code, detail, false);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status >= 200 && status < 300) return {true, false, false, ""};
  // 4xx: the receiver refuses this request as it is (408 and 429 say "later").
  bool permanent = status >= 400 && status < 500 && status != 408 && status != 429;
  return {false, permanent, false, "HTTP " + std::to_string(status) + " from " + url};
}

FetchResult get_json(const TransportOptions& options, const std::string& url,
                     const std::vector<std::pair<std::string, std::string>>& query,
                     const std::string& bearer, const std::string& what, size_t max_body) {
  init_curl_once();
  FetchResult out;
  auto fail = [&](bool permanent, std::string error) {
    out.permanent = permanent;
    out.error = std::move(error);
    return out;
  };
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return fail(true, what + ": not a URL");
  }
  for (const auto& [name, value] : query) {
    std::string pair = name + "=" + value;
    if (curl_url_set(u.get(), CURLUPART_QUERY, pair.c_str(), CURLU_APPENDQUERY | CURLU_URLENCODE) !=
        CURLUE_OK) {
      return fail(true, what + ": query parameter " + name + " cannot be sent");
    }
  }
  curl_slist* list = curl_slist_append(nullptr, "Accept: application/json");
  if (!bearer.empty()) {
    if (curl_slist* l = curl_slist_append(list, ("Authorization: Bearer " + bearer).c_str()))
      list = l;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(list);
  char detail[CURL_ERROR_SIZE] = "";
  Download down{{}, max_body};
  ThreadHandle handle;  // after what its options point at: reset before they go
  CURL* c = handle.get();
  if (!c) return fail(false, "curl_easy_init failed");
  curl_easy_setopt(c, CURLOPT_CURLU, u.get());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &down);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  set_common(c, options, detail);
  CURLcode code = curl_easy_perform(c);
  if (down.too_large) {
    return fail(true, what + " answered more than " + std::to_string(max_body) + " bytes");
  }
  if (code != CURLE_OK) {
    SendResult f = failure(code, detail, false);
    out.cancelled = f.cancelled;
    return fail(false, what + ": " + f.error);
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    bool permanent = status >= 400 && status < 500 && status != 408 && status != 429;
    return fail(permanent, what + " answered HTTP " + std::to_string(status));
  }
  out.ok = true;
  out.body = std::move(down.body);
  return out;
}

}  // namespace ticketd::api
