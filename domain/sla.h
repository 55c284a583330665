#pragma once
// SLA policies and their clocks. A policy says which tickets it covers (form + condition), the
// targets (first response, next response after each customer reply, resolution, time per node),
// the business calendar they count in, and when the clocks pause. A ticket's clocks are a pure
// function of its events (TicketState::sla_marks), the policy, the calendar and the time: a policy
// edit recomputes every open ticket exactly, and a replay gives the same figures.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/calendar.h"
#include "domain/condition.h"
#include "domain/error.h"
#include "domain/form.h"
#include "domain/value.h"

namespace ticketd {

class Catalog;
struct TicketState;

struct SlaTarget {
  int64_t goal = 0;  // in `measure`; 0: no target
  BusinessMeasure measure = BusinessMeasure::kTime;
  std::string text;  // as written: "30m", "1d"
};

// "30m", "2h", "1h30m", "90s" count business time; "1d", "3d" count business days (alone).
std::optional<SlaTarget> parse_business_duration(std::string_view text);

struct SlaPolicyDef {
  std::string id;
  uint64_t version = 0;
  std::string name;
  std::string form_id;
  std::optional<Condition> when;  // none: every ticket of the form
  std::string calendar_id;
  SlaTarget first_response, next_response, resolution;
  std::vector<std::pair<std::string, SlaTarget>> node_limits;  // node id -> limit
  std::optional<Condition> pause_when;
  std::vector<std::string> pause_nodes;
  double warn_at = 0.8;  // share of a target after which a warning is due; 0 disables warnings
  int64_t order = 100;   // when several policies match, the lowest order wins (then the id)
  bool enabled = true;
  Value document;
};

Result<SlaPolicyDef> parse_sla_policy(std::string_view id, const Value& document,
                                      const FormDef& form);

// One run of one target: first_response and resolution run once; next_response once per
// customer reply that waits for an answer; a node limit once per entry into the node.
struct SlaClock {
  std::string target;  // first_response | next_response | resolution | node:<node id>
  uint32_t cycle = 0;  // 0, 1, … among the clocks of the same target
  SlaTarget limit;
  int64_t started_at = 0;
  int64_t stopped_at = 0;  // 0 while running
  int64_t elapsed = 0;     // business time counted so far, in limit.measure
  int64_t warn_at = 0;     // when the warning threshold is (or was) reached; 0 unknown or none
  int64_t due_at = 0;      // when the target is (or was) reached; 0 unknown (paused or no time)
  bool paused = false;     // counting stopped by the pause condition right now

  bool running() const { return stopped_at == 0; }
  // Breached: the target was reached before the clock stopped, or by `now` while it runs.
  bool breached(int64_t now_us) const {
    return due_at != 0 && due_at <= (running() ? now_us : stopped_at);
  }
};

struct SlaStatus {
  const SlaPolicyDef* policy = nullptr;
  const CalendarDef* calendar = nullptr;
  bool paused = false;
  std::vector<SlaClock> clocks;  // in start order
};

// The policy covering a ticket now (the latest version of each enabled policy of its form; the
// lowest order among those whose condition holds), or null.
const SlaPolicyDef* applicable_sla_policy(const TicketState& t, const Catalog& catalog);

// The clocks of `t` under `policy`, counted up to now_us (or the ticket's close).
SlaStatus compute_sla(const TicketState& t, const SlaPolicyDef& policy, const CalendarDef& calendar,
                      int64_t now_us);

// For dry-runs on history: the ticket's fields as they were at `until`, and its clocks counted up
// to then from what had happened by then.
Object fields_at(const TicketState& t, int64_t until_us);
SlaStatus compute_sla_until(const TicketState& t, const SlaPolicyDef& policy,
                            const CalendarDef& calendar, int64_t until_us);

// The nearest due_at of the clocks still counting (running and not paused); 0 when none is.
int64_t nearest_due(const SlaStatus& status);

// The view's "sla" object for a status: policy, paused, the nearest due_at and breached at the
// top, and per target its latest cycle. Also what SlaFinalized records when a ticket closes.
Value sla_view(const SlaStatus& status, int64_t now_us);

// A ticket's SLA as its view shows it: the figures it closed with; else its policy's clocks now;
// else (no policy covers it) the nearest idle-rule deadline. due_at and breached also sort and
// filter lists, and {{sla.due_at}} in a rule's texts is due_at.
struct SlaStanding {
  int64_t due_at = 0;  // the nearest running target, 0 for none
  bool breached = false;
};
struct TicketSla : SlaStanding {
  Value view;
};
TicketSla ticket_sla(const TicketState& t, const Catalog& catalog, int64_t now_us);
// due_at and breached alone, without the view's figures: what a list of a million tickets
// filters and sorts by.
SlaStanding sla_standing(const TicketState& t, const Catalog& catalog, int64_t now_us);

// A ticket's standing from its last event on: until its next event or an edit of the definitions
// it is counted under, due_at stays, and breached turns true at breached_from and stays so. Read
// models keep it per ticket (ticket_deadlines() computes it with the timers) so that a list of a
// million tickets filters and sorts by standing without counting anyone's clocks.
struct SlaOutlook {
  int64_t due_at = 0;
  int64_t breached_from = INT64_MAX;  // INT64_MIN: breached for good already
  SlaStanding at(int64_t now_us) const { return {due_at, now_us >= breached_from}; }
  friend bool operator==(const SlaOutlook&, const SlaOutlook&) = default;
};

// SLA timers travel through the timer schedule under names no rule id can have.
struct SlaTimer {
  std::string target;
  uint32_t cycle = 0;
  bool warning = false;  // else the breach
};
std::string sla_timer_name(const SlaTimer& timer);
std::optional<SlaTimer> parse_sla_timer_name(std::string_view name);

}  // namespace ticketd
