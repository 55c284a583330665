#pragma once
// TicketState <-> one FlatBuffer (projections/ticket_snapshot.fbs), for read-model snapshots.
// Every member round-trips exactly.
#include <flatbuffers/flatbuffers.h>

#include <cstddef>
#include <cstdint>

#include "domain/ticket.h"

namespace ticketd::projections {

// Clears `fbb` and finishes it with the ticket, size-prefixed, so that tickets can be laid end to
// end and walked.
void encode_ticket(const TicketState& t, flatbuffers::FlatBufferBuilder& fbb);
// Verifies and decodes one ticket's size-prefixed buffer, as encode_ticket left it. False when the
// bytes are not a well-formed ticket.
bool decode_ticket(const uint8_t* data, size_t size, TicketState* out);

}  // namespace ticketd::projections
