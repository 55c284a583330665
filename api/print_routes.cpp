// GET /api/v1/tickets/{id}/print.pdf?template=<id>: the ticket laid out by a print template (or by
// its form's default layout) as a PDF, composed from the ticket's events and drawn on the
// printer's thread.
#include <optional>

#include "api/api.h"
#include "api/call.h"
#include "api/pdf_renderer.h"
#include "api/print_document.h"
#include "storage/hash_chain.h"

namespace ticketd::api {

void Api::get_ticket_print(const CallPtr& call, const std::string& id) {
  std::string template_id = call->req.param("template");
  // ?as_of= prints the ticket as it was then (the footer names the last event printed).
  uint64_t until_position = UINT64_MAX;
  int64_t until_time = INT64_MAX;
  if (!call->as_of(log_.last_position(), &until_position, &until_time)) return;
  std::vector<PrintedEvent> events;
  auto s = read_ticket_until(
      id, until_position, until_time, [&](const storage::RecordedEvent& e, DomainEvent&& d) {
        events.push_back({std::move(d), e.position(), storage::to_hex(e.hash())});
      });
  if (!s.ok()) return call->fail(503, "unavailable", s.ToString());
  if (events.empty()) {
    return call->fail(404, codes::kNotFound,
                      "no ticket " + id +
                          (call->req.has_param("as_of") ? " at " + call->req.param("as_of") : ""));
  }

  const Value& submitted = events.front().event.data;
  std::string form_id = submitted.string_or("form");
  auto form_version = static_cast<uint64_t>(submitted["form_version"].as_number());
  std::optional<PrintDocument> doc;
  DomainError refused;
  model_.read([&](const projections::ReadModel::View& v) {
    const FormDef* form = v.catalog.form(form_id, form_version);
    if (!form) {
      refused = error(codes::kNotFound, "the form of ticket " + id + " is not loaded");
      return 0;
    }
    PrintTemplateDef fallback;
    const PrintTemplateDef* layout = nullptr;
    if (template_id.empty()) {
      fallback = default_print_template(*form);
      layout = &fallback;
    } else if (!(layout = v.catalog.print_template(template_id))) {
      refused = error(codes::kNotFound, "no print template \"" + template_id + "\"", "template");
      return 0;
    } else if (layout->form_id != form_id) {
      refused = error(codes::kInvalidValue,
                      "print template \"" + template_id + "\" is for form " + layout->form_id +
                          ", and ticket " + id + " is a " + form_id,
                      "template");
      return 0;
    }
    auto uploaded_as = [&](const std::string& attachment) {
      auto it = v.attachments.find(attachment);
      return it == v.attachments.end() ? std::string() : it->second.filename;
    };
    doc = compose_print(events, v.catalog, *layout, call->actor, now_us(), uploaded_as);
    return 0;
  });
  if (!doc) return call->fail(refused);

  bool queued = printer_.submit([this, call, id, doc = std::move(*doc)]() mutable {
    // The pictures the page shows, read here rather than on the connection's thread; one that
    // cannot be read prints by name alone.
    for (auto& section : doc.sections) {
      for (auto& picture : section.pictures) {
        if (!log_.get_attachment(picture.attachment, &picture.bytes).ok()) picture.bytes.clear();
      }
    }
    std::string pdf, failure;
    if (!render_pdf(doc, PdfOptions{}, &pdf, &failure)) {
      return call->fail(503, "unavailable", "printing failed: " + failure);
    }
    call->respond(
        HttpResponse{200,
                     "application/pdf",
                     std::move(pdf),
                     {{"Content-Disposition", content_disposition("inline", id + ".pdf")}}});
  });
  if (!queued) {
    call->extra_headers.emplace_back("Retry-After", "1");
    call->fail(503, "busy", "the printer has too many documents queued; try again shortly");
  }
}

}  // namespace ticketd::api
