#include "domain/ticket_notes.h"

#include "domain/ticket.h"

namespace ticketd {

std::string_view to_string(TicketNote::Kind kind) {
  switch (kind) {
    case TicketNote::Kind::kNote:
      return "note";
    case TicketNote::Kind::kReply:
      return "reply";
    case TicketNote::Kind::kCustomer:
      return "customer";
  }
  return "";
}

std::optional<TicketNote> note_of(const DomainEvent& e) {
  namespace et = event_types;
  const bool comment = e.type == et::kCommentAdded;
  const bool reopen = e.type == et::kTicketReopened;  // why: the customer's words, or staff's
  const bool with_action = e.type == et::kApproved || e.type == et::kRejected ||
                           e.type == et::kTransferred || e.type == et::kFilled ||
                           e.type == et::kCustomerConfirmed || e.type == et::kRated;
  if (!comment && !reopen && !with_action) return std::nullopt;
  TicketNote note;
  note.text = e.data.string_or(comment ? "text" : reopen ? "reason" : "comment");
  if (note.text.empty()) return std::nullopt;
  if (e.actor == kPortalActor) {
    note.kind = TicketNote::Kind::kCustomer;
  } else if (comment && e.data["public"].as_bool()) {
    note.kind = TicketNote::Kind::kReply;
  }
  return note;
}

}  // namespace ticketd
