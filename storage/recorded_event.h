#pragma once
// A read-only view of one stored event. It points into the buffer it was read from (a RocksDB
// iterator's value or a pinned slice), so reading a log copies nothing; it is valid only inside the
// visitor call that received it. Copy out what must outlive that.
#include <array>
#include <cstdint>
#include <string_view>

#include "domain/event_envelope_generated.h"
#include "domain/event_id.h"

namespace ticketd {
class Value;
}

namespace ticketd::storage {

using Hash = std::array<uint8_t, 32>;

class RecordedEvent {
 public:
  RecordedEvent(const fb::Envelope* envelope, std::string_view stored_bytes,
                const Value* payload_value = nullptr)
      : e_(envelope), bytes_(stored_bytes), payload_value_(payload_value) {}

  uint64_t position() const { return e_->position(); }
  std::string_view stream() const { return view(e_->stream()); }
  uint64_t version() const { return e_->version(); }
  EventId id() const;
  std::string_view type() const { return view(e_->type()); }
  std::string_view payload() const;
  // The payload as the value it was written from (NewEvent::payload_value), for an event this
  // process appended a moment ago and delivers from memory; null otherwise: parse payload().
  const Value* payload_value() const { return payload_value_; }
  int64_t recorded_at_us() const { return e_->recorded_at_us(); }
  std::string_view actor() const { return view(e_->actor()); }
  std::string_view correlation_id() const { return view(e_->correlation_id()); }
  std::string_view causation_id() const { return view(e_->causation_id()); }
  uint32_t schema_version() const { return e_->schema_version(); }
  Hash prev_hash() const { return copy_hash(e_->prev_hash()); }
  Hash hash() const { return copy_hash(e_->hash()); }

  // The envelope exactly as stored.
  std::string_view stored_bytes() const { return bytes_; }

 private:
  static std::string_view view(const flatbuffers::String* s) {
    return s ? std::string_view(s->c_str(), s->size()) : std::string_view();
  }
  static Hash copy_hash(const fb::Sha256* h);

  const fb::Envelope* e_;
  std::string_view bytes_;
  const Value* payload_value_;
};

}  // namespace ticketd::storage
