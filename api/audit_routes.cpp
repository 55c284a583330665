// The log as administrators and auditors read it: the global feed, a ticket's history, the
// hash chain's verification.
#include "api/api.h"
#include "api/call.h"
#include "api/ticket_view.h"
#include "storage/event_json.h"
#include "storage/hash_chain.h"

namespace ticketd::api {

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

void Api::get_ticket_events(const CallPtr& call, const std::string& id) {
  if (!call->actor.admin && !call->actor.auditor) {
    return call->fail(403, codes::kForbidden,
                      "a ticket's full history (every field) is for administrators and auditors");
  }
  // The whole history by default (the contract's "every event"); a long-lived ticket's history
  // a page at a time with limit=, cursor= (the version a page ended at), and from=P for what
  // came after position P (as on /events and the stream).
  uint64_t from = 0, after_version = 0, limit = UINT64_MAX;
  if (!call->uint_param("from", &from) || !call->uint_param("cursor", &after_version)) return;
  if (call->req.has_param("limit") && !call->limit_param(&limit)) return;
  const std::string stream = ticket_stream(id);
  const uint64_t head = log_.stream_head(stream);
  if (head == 0) return call->fail(404, codes::kNotFound, "no ticket " + id);
  JsonWriter w;
  w.begin_object().key("items").begin_array();
  uint64_t count = 0, last_version = 0;
  auto s =
      log_.read_stream(stream, after_version + 1, SIZE_MAX, [&](const storage::RecordedEvent& e) {
        if (e.position() <= from) return true;
        storage::write_event_json(w, e, shown_payload(e, call->actor));
        last_version = e.version();
        return ++count < limit;
      });
  if (!s.ok()) return call->fail(503, "unavailable", s.ToString());
  w.end_array().key("next_cursor");
  if (count == limit && last_version < head)
    w.string(std::to_string(last_version));
  else
    w.null();
  w.end_object();
  call->ok(200, w.take());
}

}  // namespace ticketd::api
