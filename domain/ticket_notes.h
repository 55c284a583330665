#pragma once
// The words people wrote on a ticket: comments, the customer's replies through the portal, and
// the notes given with actions (approve, reject, transfer, submit, confirm), ratings and reopens.
// Staff read them all; the customer reads their own and the replies staff made public for them.
#include <optional>
#include <string>
#include <string_view>

#include "domain/event.h"

namespace ticketd {

struct TicketNote {
  enum class Kind {
    kNote,      // among staff: a comment, or what they wrote with an action
    kReply,     // a staff comment made public: the customer reads it in the portal
    kCustomer,  // the customer's, through the portal
  };
  Kind kind = Kind::kNote;
  std::string text;

  bool customer_reads() const { return kind != Kind::kNote; }
};
std::string_view to_string(TicketNote::Kind kind);  // note | reply | customer

// The note an event of a ticket carries, if any.
std::optional<TicketNote> note_of(const DomainEvent& e);

}  // namespace ticketd
