#pragma once
// Conditions on field values, used by flow edges and rules:
//   {"field":"complexity","op":"eq","value":"简单"}, combined with {"all":[…]}, {"any":[…]},
//   {"not":…}. Ops: eq ne in not_in gt gte lt lte contains empty not_empty.
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/form.h"
#include "domain/value.h"

namespace ticketd {

struct Condition {
  enum class Kind { kAlways, kAll, kAny, kNot, kCompare };
  enum class Op { kEq, kNe, kIn, kNotIn, kGt, kGte, kLt, kLte, kContains, kEmpty, kNotEmpty };

  Kind kind = Kind::kAlways;
  std::vector<Condition> children;  // all / any / not (one)
  std::string field;
  Op op = Op::kEq;
  Value value;
};

// Parses a condition and checks it against the form: the field exists and the value has a type
// the field can hold (an option of a select, a number for a number field…). `path` prefixes errors.
Result<Condition> parse_condition(const Value& doc, const FormDef& form, const std::string& path);

// Whether the condition holds for these field values (a missing field is null).
bool evaluate(const Condition& condition, const Object& fields);

// Field keys a condition reads.
void condition_fields(const Condition& condition, std::vector<std::string>* keys);

}  // namespace ticketd
