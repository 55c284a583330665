#pragma once
// Rules: "when X happens and Y holds, do Z". Triggers: created, field_changed, node_entered, idle
// (still in a node after a duration), flow_ended, rated, replied (the customer through the
// portal, or staff publicly to the customer), sla_warning, sla_breached. Actions:
// set_field, notify, close, lookup (ask a CRM / ERP system and fill fields from its answer).
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/condition.h"
#include "domain/error.h"
#include "domain/form.h"
#include "domain/value.h"

namespace date {
class time_zone;
}

namespace ticketd {

struct RuleTrigger {
  enum class Kind {
    kCreated,
    kFieldChanged,
    kNodeEntered,
    kIdle,
    kFlowEnded,
    kRated,
    kReopened,
    kReplied,
    kSlaWarning,
    kSlaBreached
  };
  Kind kind = Kind::kCreated;
  std::string field;     // field_changed
  std::string node;      // node_entered, idle
  std::string by;        // replied: customer | staff
  int64_t after_us = 0;  // idle
  std::string target;    // sla_*: first_response | next_response | resolution | node; "" any
};

using StringPairs = std::vector<std::pair<std::string, std::string>>;

struct RuleAction {
  enum class Kind { kSetField, kNotify, kClose, kLookup };
  Kind kind = Kind::kSetField;
  std::string field;    // set_field
  Value value;          // set_field
  std::string to_kind;  // notify: role | user | field
  std::string to;
  std::string channel;  // todo | sms | email | webhook
  std::string text;     // the template
  // lookup: a GET of the source's URL (the server maps the name to one) + path, the path's and the
  // query parameters' templates filled from the ticket; each filled field takes the value an
  // RFC 6901 JSON pointer names in the answer.
  std::string source;
  std::string path;
  StringPairs query;  // parameter -> template
  StringPairs fill;   // field -> JSON pointer
};

struct RuleDef {
  std::string id;
  uint64_t version = 0;
  std::string name;
  std::string form_id;
  RuleTrigger trigger;
  std::optional<Condition> when;
  std::vector<RuleAction> actions;
  bool enabled = true;
  // The IANA zone its notify texts show times and date-time fields in ("2026-12-01 05:20"); ""
  // when not given: RFC 3339 UTC, as stored. `zone` is null then, and for a published zone the
  // system's tz database no longer knows (which shows them as stored).
  std::string time_zone;
  const date::time_zone* zone = nullptr;
  bool says_sla_due = false;  // a template says {{sla.due_at}}: only then are SLA clocks counted
  Value document;             // as put

  // Whether one of its actions notifies on the todo channel.
  bool gives_todo() const {
    return std::any_of(actions.begin(), actions.end(), [](const RuleAction& a) {
      return a.kind == RuleAction::Kind::kNotify && a.channel == "todo";
    });
  }
};

Result<RuleDef> parse_rule(std::string_view id, const Value& document, const FormDef& form);
// A rule as the log holds it, published by this build or an earlier one: unknown properties in
// its trigger and actions and set_field values (refused at publishing only since a later build)
// are let be, so that replaying an old log keeps every rule it published.
Result<RuleDef> parse_stored_rule(std::string_view id, const Value& document, const FormDef& form);

// Fills a template: {{ticket.id}}, {{ticket.node}} (the current node's name), {{fields.<key>}},
// {{ticket.created_at}}, {{sla.due_at}} (the deadline the ticket's view shows: ticket_sla() in
// domain/sla.h; empty when none counts), for a rule triggered by a reply {{comment.text}} (the
// reply's words), and in a notification {{ticket.portal_code}} (the customer's key to the
// portal: a link in an SMS to them).
// (Views: a rule fills its templates from the ticket's state, which outlives the filling.)
struct TemplateValues {
  std::string_view ticket_id;
  std::string_view node_name;
  const Object* fields = nullptr;
  std::string_view comment_text;
  std::string_view portal_code;
  int64_t created_at = 0;
  int64_t sla_due_at = 0;              // 0: none
  std::string_view company_name = {};  // {{company.name}}
  // With a zone, times and date-time fields of `form` on its clock, "2026-12-01 05:20" (a rule's
  // texts for people); without, as stored (what lookups send).
  const FormDef* form = nullptr;
  const date::time_zone* zone = nullptr;
};
// With `escape`, each value filled in goes through it (a URL path's: percent_encode).
std::string render_template(const std::string& text, const TemplateValues& values,
                            std::string (*escape)(std::string_view) = nullptr);

// RFC 3986 percent-encoding of every byte but the unreserved characters (A-Z a-z 0-9 - . _ ~): a
// ticket's value as one segment of a URL's path, its slashes included.
std::string percent_encode(std::string_view text);

// A name a server may give a lookup source and a rule may use: 1 to 64 of A-Z a-z 0-9 _ -.
bool is_lookup_source_name(std::string_view name);

// The value an RFC 6901 JSON pointer names in `document` ("" the whole of it), or nullptr.
const Value* resolve_pointer(const Value& document, std::string_view pointer);

// The fields a lookup's answer fills: each `fill` field with the value its pointer names, in
// `fill`'s order. A pointer that names nothing leaves its field out (an answer without a
// customer's level does not erase the level); one that names null clears the field.
Object lookup_fill(const Value& answer, const StringPairs& fill);

}  // namespace ticketd
