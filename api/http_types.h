#pragma once
// HTTP requests and responses as the routes see them: plain values, so route code compiles without
// Beast. api/http_server.cpp converts to and from the wire.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ticketd::api {

struct HttpRequest {
  std::string method;  // "GET", "POST", …
  std::string path;    // decoded, without the query
  std::map<std::string, std::string> query;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::string request_id;
  std::string peer;  // the connection's remote address (a proxy's, behind one)
  // Runs work for this request on its connection's executor. Answers that wait for the read model
  // are built there rather than on the one thread that applies events. Empty: run inline.
  std::function<void(std::function<void()>)> resume;

  std::string header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  std::string param(const std::string& name) const {
    auto it = query.find(name);
    return it == query.end() ? "" : it->second;
  }
  bool has_param(const std::string& name) const { return query.count(name) > 0; }
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // An answer to HEAD: the headers a GET would have, Content-Length included, and no body.
  bool head = false;
};

// Completes a request; may be called from any thread, exactly once.
using Respond = std::function<void(HttpResponse)>;

// A whole number of decimal digits only (no sign, no spaces), at most 19 digits so it cannot
// overflow; std::nullopt otherwise.
std::optional<uint64_t> parse_uint(std::string_view text);

// Decodes %XX escapes (and '+' as space when asked). False on a malformed escape.
bool percent_decode(std::string_view in, bool plus_is_space, std::string* out);

// A Content-Disposition value naming `filename` (UTF-8) both ways browsers read it: RFC 6266's
// filename*=UTF-8''<percent-encoded>, and an ASCII filename="…" (other characters as '_') for
// the rest. `disposition` is "inline" or "attachment".
std::string content_disposition(std::string_view disposition, std::string_view filename);

// Why a request's Transfer-Encoding cannot be read, given its HTTP version (10, 11) and each of
// its Transfer-Encoding lines; std::nullopt when it can (no such header, or chunked alone in
// HTTP/1.1). Beast decodes chunked and no other coding, and only as the last coding of one line,
// so anything else must be refused before the body is read (RFC 9112 6.1, 6.3): a body whose
// length is not known would otherwise be read as the connection's next request. 400 when the
// length cannot be known (chunked not last, or twice; any Transfer-Encoding in HTTP/1.0, which
// has none), 501 for a coding the server does not decode (gzip, chunked).
struct TransferCodingRefusal {
  int status;
  std::string code;
  std::string message;
};
std::optional<TransferCodingRefusal> refuse_transfer_coding(
    unsigned version, const std::vector<std::string_view>& lines);

// Splits "/a/b?x=1&y=%E4" into a decoded path and query map. False on bad percent-encoding, and
// on a parameter given twice, named in `repeated` (?status=open&status=closed has no one meaning;
// taking either would answer a question not asked).
bool parse_target(std::string_view target, std::string* path,
                  std::map<std::string, std::string>* query, std::string* repeated);

}  // namespace ticketd::api
