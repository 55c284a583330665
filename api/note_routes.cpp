// The words on a ticket (domain/ticket_notes.h): GET /api/v1/tickets/{id}/comments lists them
// for staff, every one or a page at a time (limit=, cursor=); POST adds a comment, a note among
// staff or, with "public": true, a reply the customer reads in the portal (which shows the
// customer's side of them in its conversation).
#include <ranges>

#include "api/api.h"
#include "api/call.h"
#include "api/ticket_view.h"
#include "domain/time_format.h"

namespace ticketd::api {

storage::Status Api::read_ticket_notes(const std::string& id, std::vector<WrittenNote>* out,
                                       bool* exists) const {
  *exists = false;
  return read_ticket_until(
      id, UINT64_MAX, INT64_MAX, [&](const storage::RecordedEvent& e, DomainEvent&& d) {
        *exists = true;
        if (auto note = note_of(d)) {
          out->push_back(
              {e.position(), d.at_us, std::move(d.actor), std::move(d.type), std::move(*note)});
        }
      });
}

void Api::get_ticket_comments(const CallPtr& call, const std::string& id) {
  PositionPage page;
  if (!page.parse(*call)) return;
  std::vector<WrittenNote> notes;
  bool exists = false;
  if (auto s = read_ticket_notes(id, &notes, &exists); !s.ok()) {
    return call->fail(503, "unavailable", s.ToString());
  }
  if (!exists) return call->fail(404, codes::kNotFound, "no ticket " + id);
  JsonWriter w;
  w.begin_object().key("items").begin_array();
  auto position_of = [](const WrittenNote& n) { return n.position; };
  auto [first, last] = page.slice(notes, position_of);
  model_.read([&](const projections::ReadModel::View& v) {
    for (const WrittenNote& n : std::ranges::subrange(first, last)) {
      w.begin_object().key("position").number(n.position);
      w.key("time").string(format_rfc3339(n.at_us));
      w.key("author").string(n.author);
      if (const User* u = v.catalog.user(n.author)) w.key("author_name").string(u->name);
      w.key("kind").string(to_string(n.note.kind)).key("event").string(n.event);
      w.key("text").string(n.note.text).end_object();
    }
    return 0;
  });
  PositionPage::close(w, notes, last, position_of);
  call->ok(200, w.take());
}

void Api::post_comment(const CallPtr& call, const std::string& id, bool portal) {
  if (portal && !enter_portal(call, id)) return;
  if (!call->parse_body()) return;
  AddComment cmd;
  // Unknown members first: a misspelt {"txt":…} is named, not reported as a missing text. The
  // customer's comments are the customer's side of the conversation: nothing to make public.
  if (portal ? !call->only_members({"text"}) : !call->only_members({"text", "public"})) return;
  if (!call->string_member("text", &cmd.text, true)) return;
  if (!portal && !call->bool_member("public", &cmd.is_public)) return;
  run_ticket_command(call, id, std::move(cmd), std::nullopt, 201);
}

}  // namespace ticketd::api
