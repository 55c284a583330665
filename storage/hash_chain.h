#pragma once
// The tamper-evident chain: each event's hash is SHA-256 over the previous event's hash followed by
// a canonical, length-prefixed encoding of the event's content (position included, so reordering
// breaks the chain as surely as editing). The first event's previous hash is 32 zero bytes.
#include <cstdint>
#include <string>
#include <string_view>

#include "domain/event_id.h"
#include "storage/recorded_event.h"

namespace ticketd::storage {

struct EventContent {
  uint64_t position = 0;
  std::string_view stream;
  uint64_t version = 0;
  EventId id;
  std::string_view type;
  std::string_view payload;
  int64_t recorded_at_us = 0;
  std::string_view actor;
  std::string_view correlation_id;
  std::string_view causation_id;
  uint32_t schema_version = 0;
};

EventContent content_of(const RecordedEvent& e);
Hash chain_hash(const Hash& prev, const EventContent& content);
std::string to_hex(const Hash& h);

}  // namespace ticketd::storage
