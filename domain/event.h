#pragma once
// A domain event as decide() produces and evolve() consumes it. The log stores `data` as the JSON
// payload; `actor` and `at_us` travel in the envelope.
#include <cstdint>
#include <optional>
#include <string>

#include "domain/event_id.h"
#include "domain/value.h"

namespace ticketd {

struct DomainEvent {
  std::string type;
  Value data;
  std::string actor;
  int64_t at_us = 0;
  // Set only for facts that must happen at most once (a timer firing): the log then refuses a
  // second copy. Other events get fresh ids from the caller.
  std::optional<EventId> id;
};

}  // namespace ticketd
