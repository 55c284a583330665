#pragma once
// The JSON form of a stored event, shared by the events feed, ticket history and ticketctl dump:
// {"position","stream","version","id","type","time","actor","correlation_id","causation_id",
//  "schema_version","data","prev_hash","hash"}.
#include "domain/json_writer.h"
#include "storage/recorded_event.h"

namespace ticketd::storage {

void write_event_json(JsonWriter& w, const RecordedEvent& e);

}  // namespace ticketd::storage
