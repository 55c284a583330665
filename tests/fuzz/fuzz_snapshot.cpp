// Any bytes as one ticket of a read-model snapshot: decoding never crashes or reads out of bounds,
// and what decodes encodes to bytes that decode to the same encoding again.
#include <cstdint>
#include <cstring>
#include <vector>

#include "projections/ticket_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ticketd;
  // The restorer hands the decoder 8-aligned records; so does this.
  std::vector<uint64_t> aligned((size + 7) / 8);
  if (size > 0) std::memcpy(aligned.data(), data, size);
  const auto* bytes = reinterpret_cast<const uint8_t*>(aligned.data());
  TicketState t;
  if (!projections::decode_ticket(bytes, size, &t)) return 0;
  flatbuffers::FlatBufferBuilder once, twice;
  projections::encode_ticket(t, once);
  TicketState back;
  if (!projections::decode_ticket(once.GetBufferPointer(), once.GetSize(), &back)) __builtin_trap();
  projections::encode_ticket(back, twice);
  if (once.GetSize() != twice.GetSize() ||
      std::memcmp(once.GetBufferPointer(), twice.GetBufferPointer(), once.GetSize()) != 0) {
    __builtin_trap();
  }
  return 0;
}
