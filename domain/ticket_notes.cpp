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
  const std::string_view type = e.type;  // compared by length first
  const bool comment = type == et::kCommentAdded;
  const bool reopen = type == et::kTicketReopened;  // why: the customer's words, or staff's
  const bool with_action = type == et::kApproved || type == et::kRejected ||
                           type == et::kTransferred || type == et::kFilled ||
                           type == et::kCustomerConfirmed || type == et::kRated;
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
