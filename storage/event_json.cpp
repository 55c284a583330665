#include "storage/event_json.h"

#include "domain/time_format.h"
#include "storage/hash_chain.h"

namespace ticketd::storage {

void write_event_json(JsonWriter& w, const RecordedEvent& e, std::string_view shown_data) {
  w.begin_object();
  w.key("position").number(e.position());
  w.key("stream").string(e.stream());
  w.key("version").number(e.version());
  w.key("id").string(e.id().to_string());
  w.key("type").string(e.type());
  w.key("time").string(format_rfc3339(e.recorded_at_us()));
  w.key("actor").string(e.actor());
  w.key("correlation_id").string(e.correlation_id());
  w.key("causation_id").string(e.causation_id());
  w.key("schema_version").number(static_cast<uint64_t>(e.schema_version()));
  // The log accepts only valid JSON payloads.
  w.key("data").raw(shown_data.empty() ? e.payload() : shown_data);
  w.key("prev_hash").string(to_hex(e.prev_hash()));
  w.key("hash").string(to_hex(e.hash()));
  w.end_object();
}

}  // namespace ticketd::storage
