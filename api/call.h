#pragma once
// One request in flight inside Api: the request, who made it, and how to answer it.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_types.h"
#include "domain/error.h"
#include "domain/json_writer.h"
#include "domain/ticket.h"
#include "domain/time_format.h"
#include "domain/value.h"

namespace ticketd::api {

struct Call {
  HttpRequest req;
  bool head = false;  // asked as HEAD: routed as GET (req.method), answered without the body
  Respond respond;
  Actor actor;
  std::string token_hash;  // of the bearer token, once authenticated
  std::string client;      // the client's address (api/client_address.h)
  Value body;              // after parse_body()
  std::vector<std::pair<std::string, std::string>> extra_headers;
  // Members a command's answer carries besides id, version, position and ticket.
  Object extra_members;

  // The method as the client sent it, for messages. (Both arms are views: `head ? "HEAD" :
  // req.method` would be a std::string temporary, and the view returned would dangle.)
  std::string_view asked_method() const {
    return head ? std::string_view("HEAD") : std::string_view(req.method);
  }

  void ok(int status, std::string body);
  // ETag: "<version>" on the answer (API.md: If-Match takes it back).
  void set_etag(uint64_t version) {
    extra_headers.emplace_back("ETag", "\"" + std::to_string(version) + "\"");
  }
  void fail(int status, std::string_view code, std::string_view message,
            std::string_view field = "");
  void fail(const DomainError& e);

  // Each answers the request with an error itself and returns false when the input is bad.
  bool parse_body();
  bool string_member(std::string_view key, std::string* out, bool required);
  bool object_member(std::string_view key, Object* out);
  bool bool_member(std::string_view key, bool* out);  // untouched when absent
  // 422 naming the first member of the body not in `known`.
  bool only_members(std::initializer_list<std::string_view> known);
  // 400 naming the first query parameter not in `known`: a misspelt filter or dry_run would
  // otherwise pass for none.
  bool only_params(std::initializer_list<std::string_view> known);
  // If-Match: 7 or "7" (an ETag) into *out, nullopt when absent; false (answered 400) when
  // unreadable. "*" (RFC 9110: whatever version it has, the resource must exist) leaves *out
  // nullopt and sets *any: a route whose resource must exist anyway (404) need not ask.
  bool if_match(std::optional<uint64_t>* out, bool* any = nullptr);
  // ?as_of=: a log position or an RFC 3339 time; the event at that position or time is included.
  // Untouched when absent (everything); false (answered 400) when unreadable, or a position past
  // `last_position`: what a ticket will be there is not known yet, and its view now would be
  // taken for it.
  bool as_of(uint64_t last_position, uint64_t* position, int64_t* time);
  // API.md's 409: what changed (e.g. "the ticket") and the version it is at now.
  void fail_conflict(std::string_view what, uint64_t current_version);
  // 409 with the same members, for "If-Match: *" on what has no version yet.
  void fail_not_yet(std::string_view what);
  // 429 with Retry-After: `wait` seconds, also as the error's "retry_after".
  void fail_rate_limited(int64_t wait, std::string_view message);

  // A CSV answer; with ?bom=true it starts with UTF-8's byte-order mark, which Excel needs to
  // read Chinese text from a file opened by a double click.
  HttpResponse csv(std::string body, bool bom) const {
    if (bom) body.insert(0, "\xEF\xBB\xBF");
    return HttpResponse{200, "text/csv; charset=utf-8", std::move(body), {}};
  }
  // ?name=true|false into *out (untouched when absent); anything else is a 400.
  bool bool_param(const std::string& name, bool* out) {
    if (!req.has_param(name)) return true;
    const std::string v = req.param(name);
    if (v != "true" && v != "false") {
      fail(400, "bad_parameter", name + " must be true or false", name);
      return false;
    }
    *out = v == "true";
    return true;
  }
  // ?tz=<IANA zone> into *out (untouched when absent); a zone the tz database lacks is a 400.
  bool zone_param(const date::time_zone** out) {
    if (!req.has_param("tz")) return true;
    const std::string tz = req.param("tz");
    if (!(*out = find_time_zone(tz))) {
      fail(400, "bad_parameter", unknown_time_zone(tz), "tz");
      return false;
    }
    return true;
  }
  bool uint_param(const std::string& name, uint64_t* out) {
    if (!req.has_param(name)) return true;
    auto n = parse_uint(req.param(name));
    if (!n) return bad_param(name);
    *out = *n;
    return true;
  }
  // A published version of a definition: 0 (the latest) unless given; versions start at 1, so a
  // given 0 is refused rather than taken for the latest.
  bool version_param(uint64_t* version) {
    if (!uint_param("version", version)) return false;
    if (req.has_param("version") && *version == 0) {
      fail(400, "bad_parameter", "versions start at 1", "version");
      return false;
    }
    return true;
  }
  // A page's size: `*limit` (its default) unless given; 0 is refused, more than `most` is `most`
  // (API.md: "at most 500").
  bool limit_param(uint64_t* limit, uint64_t most = 500) {
    if (!uint_param("limit", limit)) return false;
    if (*limit == 0) {
      fail(400, "bad_parameter", "limit must be at least 1", "limit");
      return false;
    }
    *limit = std::min(*limit, most);
    return true;
  }

 private:
  void conflict(const std::string& message, uint64_t current_version);
  bool bad_param(const std::string& name) {
    fail(400, "bad_parameter", name + " must be a whole number", name);
    return false;
  }
};

// A page of a collection in id order (definitions, users), as API.md's lists are: `limit` items
// (50 unless asked, at most 500) after the id given as `cursor`; next_cursor is the last id
// written while more follow.
// A page key that puts the latest `at` first in IdPage's ascending order, `id` breaking ties:
// lists that are newest first (sessions, backups) page by it.
inline std::string newest_first_key(int64_t at, std::string_view id) {
  std::string key = std::to_string(INT64_MAX - at);
  return std::string(20 - std::min<size_t>(20, key.size()), '0') + key + std::string(id);
}

struct IdPage {
  uint64_t limit = 50;
  std::string after;

  bool parse(Call& call) {
    if (!call.limit_param(&limit)) return false;
    after = call.req.param("cursor");
    return true;
  }

  // `items` in the order of their ids (`id_of(item)`); `write_item(item)` writes one.
  template <typename Items, typename IdOf, typename WriteItem>
  void write(JsonWriter& w, const Items& items, IdOf id_of, WriteItem write_item) const {
    w.begin_object().key("items").begin_array();
    auto it = items.begin();
    if (!after.empty()) {
      it =
          std::upper_bound(items.begin(), items.end(), after,
                           [&](const std::string& a, const auto& item) { return a < id_of(item); });
    }
    uint64_t n = 0;
    for (; it != items.end() && n < limit; ++it, ++n) write_item(*it);
    w.end_array().key("next_cursor");
    if (it != items.end() && n > 0) {
      w.string(id_of(*(it - 1)));
    } else {
      w.null();
    }
    w.end_object();
  }
};

// A page of one ticket's own list (its comments, its notifications), in log order: whole unless
// `limit` is given, as its history is (the contract's "full history"), the items after the
// position given as `cursor`; next_cursor is the last position written while more follow.
struct PositionPage {
  uint64_t limit = UINT64_MAX;
  uint64_t after = 0;

  bool parse(Call& call) {
    if (call.req.has_param("limit") && !call.limit_param(&limit)) return false;
    return call.uint_param("cursor", &after);
  }

  // The page's part of `items` (in position order, `position_of(item)`), as [first, last).
  template <typename Items, typename PositionOf>
  auto slice(const Items& items, PositionOf position_of) const {
    auto first = std::upper_bound(items.begin(), items.end(), after,
                                  [&](uint64_t a, const auto& i) { return a < position_of(i); });
    auto last = first + static_cast<std::ptrdiff_t>(
                            std::min<uint64_t>(limit, static_cast<uint64_t>(items.end() - first)));
    return std::pair(first, last);
  }

  // Ends the array of a page that ended at `last`, and the list with its next_cursor.
  template <typename Items, typename It, typename PositionOf>
  static void close(JsonWriter& w, const Items& items, It last, PositionOf position_of) {
    w.end_array().key("next_cursor");
    if (last != items.end() && last != items.begin()) {
      w.string(std::to_string(position_of(*(last - 1))));
    } else {
      w.null();
    }
    w.end_object();
  }
};

// Tokens: 32 random bytes as hex; stored and compared only as their BLAKE2b hash.
std::string token_hash(std::string_view token);
std::string random_token(size_t bytes);
// A fresh random (v4) event id from the system's secure random source.
EventId random_event_id();

// " at version N" after a definition's name when a published version was asked for (0: none).
inline std::string at_version(uint64_t version) {
  return version ? " at version " + std::to_string(version) : "";
}

}  // namespace ticketd::api
