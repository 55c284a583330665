#pragma once
// The JSON form of a stored event, shared by the events feed, ticket history and ticketctl dump:
// {"position","stream","version","id","type","time","actor","correlation_id","causation_id",
//  "schema_version","data","prev_hash","hash"}.
#include "domain/json_writer.h"
#include "storage/recorded_event.h"

namespace ticketd::storage {

// `shown_data`, when not empty, is written as "data" in place of the stored payload (the API
// withholds secrets from what it serves; "prev_hash" and "hash" stay those of the stored event).
void write_event_json(JsonWriter& w, const RecordedEvent& e, std::string_view shown_data = {});

}  // namespace ticketd::storage
