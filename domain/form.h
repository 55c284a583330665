#pragma once
// Forms are data: a form definition lists typed fields; a submission is checked against it.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/value.h"

namespace ticketd {

enum class FieldType {
  kText,
  kTextarea,
  kNumber,
  kSelect,
  kMultiselect,
  kDate,
  kDatetime,
  kPerson,
  kAttachment,
  kImage,
  kPhone,
  kEmail,
  kRelation,
  kRating,
  kCheckbox,
};

std::optional<FieldType> field_type_from_name(std::string_view name);
std::string_view field_type_name(FieldType type);

struct FieldDef {
  std::string key;
  std::string label;
  FieldType type = FieldType::kText;
  bool required = false;
  std::vector<std::string> options;    // select / multiselect
  Value default_value;                 // null when none
  std::string auto_fill;               // "", "now" (date/datetime) or "creator" (person)
  std::optional<double> min, max;      // number, rating; also length bounds for multiselect
  std::optional<uint64_t> max_length;  // text / textarea, in characters
  bool multiple = false;               // attachment / image
  std::string relation_form;           // relation
  std::string role;                    // person: only a holder of this role ("": anyone)
};

struct FormDef {
  std::string id;
  uint64_t version = 0;
  std::string name;
  std::vector<FieldDef> fields;
  Value document;  // as put

  const FieldDef* field(std::string_view key) const;
};

// Parses and validates a form document. Errors name the path, e.g. "fields[2].options".
Result<FormDef> parse_form(std::string_view id, const Value& document);
// A form as the log holds it: a default that today's checks refuse (they were looser when it was
// published) is kept as it was, so that every published form loads.
Result<FormDef> parse_stored_form(std::string_view id, const Value& document);

// What field validation needs to know about the world.
struct Lookups {
  // An active (not disabled) user, holding `role` unless it is "".
  std::function<bool(std::string_view user, std::string_view role)> user_exists;
  // An upload's media type (its Content-Type), or "" when there is no such upload.
  std::function<std::string(std::string_view attachment)> attachment_type;
  // The form of a ticket, or "" when there is no such ticket.
  std::function<std::string(std::string_view ticket)> ticket_form;
};

// Checks one value against its field (null clears a field and is always well-typed here; whether a
// field may be empty is decided by `required`). Returns the value to store, normalized.
Result<Value> check_field_value(const FieldDef& field, const Value& value, const Lookups& lookups);

}  // namespace ticketd
