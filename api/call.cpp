// A request being answered: its parameters and body members read with errors in API.md's form.
#include "api/call.h"

#include <algorithm>

#include "api/api.h"
#include "domain/time_format.h"

namespace ticketd::api {

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

}  // namespace ticketd::api
