// Attachments: uploads (to a ticket or on their own, for a field) and downloads, for whoever may
// read a place that holds them.
#include <optional>

#include "api/api.h"
#include "api/call.h"
#include "api/file_type.h"
#include "api/ticket_view.h"
#include "domain/media_type.h"
#include "domain/permissions.h"
#include "domain/text.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

constexpr size_t kMaxFilenameLength = 255;

// Pictures, PDFs and plain text: what a browser shows without running anything in it.
bool shown_inline(std::string_view content_type) {
  const std::string type = media_type_essence(content_type);
  return is_picture_type(type) || type == "application/pdf" || type == "text/plain";
}

}  // namespace

void Api::post_attachment(const CallPtr& call, const std::string& ticket_id) {
  // ?public=true: staff send the file to the customer, as a public reply sends words.
  bool is_public = false;
  if (!call->bool_param("public", &is_public)) return;
  // Refusals decide() would give, asked before the bytes are stored and recorded: a refused
  // upload leaves nothing behind.
  if (call->actor.reads_only()) return call->fail(reads_only_refusal());
  if (call->req.body.empty())
    return call->fail(422, codes::kRequired, "the upload is empty", "body");
  if (!ticket_id.empty()) {
    std::optional<DomainError> refused;
    bool exists = model_.read([&](const View& v) {
      const TicketState* t = v.ticket(ticket_id);
      if (t && call->actor.portal_customer) refused = customer_file_refused(*t);
      return t != nullptr;
    });
    if (!exists) return call->fail(404, codes::kNotFound, "no ticket " + ticket_id);
    if (refused) return call->fail(*refused);
  }
  std::string id = "att-" + random_token(12);
  // The bytes are asked what they are: a "picture" that is not one would go into an image field
  // and a print-out, and an upload that names no file type (curl's form encoding, a bare
  // octet-stream) is recorded as what its bytes are.
  std::string content_type = call->req.header("content-type");
  const std::string declared = media_type_essence(content_type);
  const std::optional<std::string> sniffed = sniffed_media_type(call->req.body);
  if (sniffed && is_picture_type(declared) && *sniffed != declared) {
    return call->fail(422, codes::kInvalidValue,
                      "the file is not " + declared + ": its bytes are " + *sniffed,
                      "Content-Type");
  }
  if (declared.empty() || declared == "application/octet-stream" ||
      declared == "application/x-www-form-urlencoded") {
    content_type = sniffed ? *sniffed : "application/octet-stream";
  }
  // Header values are ASCII on the wire: a UTF-8 name comes percent-encoded (as browsers send it).
  std::string filename;
  if (!percent_decode(call->req.header("x-filename"), false, &filename)) {
    return call->fail(400, "bad_request", "X-Filename has a malformed %-escape", "X-Filename");
  }
  if (!valid_utf8(filename)) {
    return call->fail(400, "bad_request", "X-Filename is not percent-encoded UTF-8", "X-Filename");
  }
  if (auto wrong = control_character_in(filename, TextLines::kOne)) {
    return call->fail(400, "bad_request", "X-Filename " + *wrong, "X-Filename");
  }
  // The name, not where it was: some browsers and scripts send a whole path ("C:\\Users\\…\\a.pdf",
  // "../a.pdf"), which a client saving the download would otherwise be offered as a place.
  if (size_t slash = filename.find_last_of("/\\"); slash != std::string::npos) {
    filename.erase(0, slash + 1);
  }
  if (filename == "." || filename == "..") filename.clear();
  if (utf8_length(filename) > kMaxFilenameLength) {
    return call->fail(
        400, "bad_request",
        "X-Filename is longer than " + std::to_string(kMaxFilenameLength) + " characters",
        "X-Filename");
  }
  if (filename.empty()) filename = id;
  uint64_t size = call->req.body.size();
  if (auto s = log_.put_attachment(id, call->req.body); !s.ok()) {
    return call->fail(503, "unavailable", s.ToString());
  }
  Object data{{"id", Value(id)},
              {"filename", Value(filename)},
              {"content_type", Value(content_type)},
              {"size", Value(static_cast<int64_t>(size))}};
  if (is_public) data.emplace_back("public", Value(true));
  DomainEvent uploaded{projections::event_types::kAttachmentUploaded, Value(std::move(data)),
                       call->actor.id, now_us(), std::nullopt};
  if (ticket_id.empty()) {
    return append_and_answer(
        call, "attachment-" + id, storage::ExpectedVersion::NoStream(), {uploaded}, 201,
        [id, filename, size](JsonWriter& w) {
          w.begin_object().key("attachment").string(id).key("filename").string(filename);
          w.key("size").number(size).end_object();
        });
  }
  std::vector<storage::NewEvent> batch{to_new_event(uploaded, *call)};
  log_.append_async("attachment-" + id, storage::ExpectedVersion::NoStream(), std::move(batch),
                    [this, call, id, ticket_id, filename, content_type, size,
                     is_public](storage::AppendResult r) {
                      if (!r.status.ok())
                        return call->fail(503, "unavailable", r.status.ToString());
                      when_applied(call, r.last_position, [=, this] {
                        call->extra_members.emplace_back("attachment", Value(id));
                        run_ticket_command(
                            call, ticket_id,
                            AddAttachment{id, filename, content_type, size, is_public},
                            std::nullopt, 201);
                      });
                    });
}

namespace {
// An attachment is opened by its uploader, administrators and auditors, and whoever may read a
// place a ticket has held it in: the field, or the ticket itself for the ticket's own
// attachments (every signed-in user reads tickets). The portal's customer came by one ticket's
// code: only that ticket's places count for them (`only_ticket`), and of its own attachments
// only those the customer sent or staff sent them.
bool may_open(const View& v, const projections::AttachmentInfo& a, const Actor& actor,
              std::string_view only_ticket) {
  if (actor.admin || actor.auditor || (!actor.portal_customer && actor.id == a.uploader))
    return true;
  for (const auto& place : a.places) {
    if (!only_ticket.empty() && place.ticket != only_ticket) continue;
    const TicketState* t = v.ticket(place.ticket);
    if (!t) continue;
    if (place.field.empty())
      return !actor.portal_customer || a.uploader == kPortalActor || a.shown_to_customer;
    const FlowDef* flow = v.catalog.flow(t->flow_id, t->flow_version);
    if (flow && may_read_field(*t, *flow, actor, place.field)) return true;
  }
  return false;
}
}  // namespace

// An upload is served as the type its uploader declared, from the API's own origin. Were a
// browser to render an HTML or SVG upload there, its scripts would run as the signed-in agent
// who opened it: only types that run nothing are shown inline, the rest are downloads under a
// sandbox, and no type is sniffed.
void Api::get_attachment(const CallPtr& call, const std::string& id,
                         const std::string& portal_ticket) {
  enum class Access { kNone, kDenied, kGranted };
  std::string content_type, filename;  // what the answer needs, not the places
  Access access = model_.read([&](const View& v) {
    auto it = v.attachments.find(id);
    if (it == v.attachments.end()) return Access::kNone;
    if (!may_open(v, it->second, call->actor, portal_ticket)) return Access::kDenied;
    content_type = it->second.content_type;
    filename = it->second.filename;
    return Access::kGranted;
  });
  // The portal's customer learns of no file beyond what their ticket shows them.
  if (access == Access::kDenied && !portal_ticket.empty()) access = Access::kNone;
  if (access == Access::kDenied) {
    return call->fail(
        403, codes::kForbidden,
        "attachment " + id + " is in no ticket field you may read now, and you did not upload it");
  }
  std::string bytes;
  if (access == Access::kNone || !log_.get_attachment(id, &bytes).ok()) {
    return call->fail(404, codes::kNotFound, "no attachment " + id);
  }
  const bool inline_safe = shown_inline(content_type);
  HttpResponse response{200, content_type, std::move(bytes), {}};
  response.headers.emplace_back(
      "Content-Disposition", content_disposition(inline_safe ? "inline" : "attachment", filename));
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  if (!inline_safe) response.headers.emplace_back("Content-Security-Policy", "sandbox");
  call->respond(std::move(response));
}

}  // namespace ticketd::api
