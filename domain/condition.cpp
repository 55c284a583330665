#include "domain/condition.h"

#include "domain/definition_error.h"
#include "domain/time_format.h"

namespace ticketd {
namespace {

constexpr std::pair<std::string_view, Condition::Op> kOps[] = {
    {"eq", Condition::Op::kEq},
    {"ne", Condition::Op::kNe},
    {"in", Condition::Op::kIn},
    {"not_in", Condition::Op::kNotIn},
    {"gt", Condition::Op::kGt},
    {"gte", Condition::Op::kGte},
    {"lt", Condition::Op::kLt},
    {"lte", Condition::Op::kLte},
    {"contains", Condition::Op::kContains},
    {"empty", Condition::Op::kEmpty},
    {"not_empty", Condition::Op::kNotEmpty},
};

bool is_ordered(FieldType t) {
  return t == FieldType::kNumber || t == FieldType::kRating || t == FieldType::kDate ||
         t == FieldType::kDatetime;
}

bool is_list(const FieldDef& f) {
  return f.type == FieldType::kMultiselect ||
         ((f.type == FieldType::kAttachment || f.type == FieldType::kImage) && f.multiple);
}

// Whether `v` could be a single value of field `f` (an element, for list fields).
std::optional<std::string> element_mismatch(const FieldDef& f, const Value& v) {
  switch (f.type) {
    case FieldType::kNumber:
    case FieldType::kRating:
      if (!v.is_number()) return "a number is needed for " + f.key;
      return std::nullopt;
    case FieldType::kCheckbox:
      if (!v.is_bool()) return "true or false is needed for " + f.key;
      return std::nullopt;
    case FieldType::kSelect:
    case FieldType::kMultiselect:
      if (!v.is_string()) return "an option of " + f.key + " is needed";
      for (const auto& o : f.options) {
        if (o == v.as_string()) return std::nullopt;
      }
      return "\"" + v.as_string() + "\" is not an option of " + f.key;
    case FieldType::kDate:
      if (!v.is_string() || !parse_date(v.as_string())) return "a date is needed for " + f.key;
      return std::nullopt;
    case FieldType::kDatetime:
      if (!v.is_string() || !parse_rfc3339(v.as_string())) {
        return "an RFC 3339 time is needed for " + f.key;
      }
      return std::nullopt;
    default:
      if (!v.is_string()) return "a string is needed for " + f.key;
      return std::nullopt;
  }
}

// Orders two scalar values of the same field; nullopt when they cannot be compared.
std::optional<int> compare(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    return a.as_number() < b.as_number() ? -1 : a.as_number() > b.as_number() ? 1 : 0;
  }
  if (a.is_string() && b.is_string()) {
    auto ta = parse_rfc3339(a.as_string()), tb = parse_rfc3339(b.as_string());
    if (ta && tb) return *ta < *tb ? -1 : *ta > *tb ? 1 : 0;
    int c = a.as_string().compare(b.as_string());
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  return std::nullopt;
}

bool empty_value(const Value& v) {
  return v.is_null() || (v.is_string() && v.as_string().empty()) ||
         (v.is_array() && v.as_array().empty());
}

const Value& lookup(const Object& fields, const std::string& key) {
  static const Value kNull;
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return kNull;
}

}  // namespace

Result<Condition> parse_condition(const Value& doc, const FormDef& form, const std::string& path) {
  if (!doc.is_object()) return def_error(path, "a condition must be an object");
  Condition c;
  auto parse_children = [&](const char* name) -> std::optional<DomainError> {
    const Value& list = doc[name];
    if (!list.is_array() || list.as_array().empty()) {
      return def_error(path + "." + name, "a non-empty array of conditions is required");
    }
    for (size_t i = 0; i < list.as_array().size(); ++i) {
      auto child = parse_condition(list.as_array()[i], form,
                                   path + "." + name + "[" + std::to_string(i) + "]");
      if (!child.ok()) return child.error();
      c.children.push_back(std::move(child.value()));
    }
    return std::nullopt;
  };
  if (doc.as_object().size() == 1 && doc.find("all")) {
    c.kind = Condition::Kind::kAll;
    if (auto e = parse_children("all")) return *e;
    return c;
  }
  if (doc.as_object().size() == 1 && doc.find("any")) {
    c.kind = Condition::Kind::kAny;
    if (auto e = parse_children("any")) return *e;
    return c;
  }
  if (doc.as_object().size() == 1 && doc.find("not")) {
    c.kind = Condition::Kind::kNot;
    auto child = parse_condition(doc["not"], form, path + ".not");
    if (!child.ok()) return child.error();
    c.children.push_back(std::move(child.value()));
    return c;
  }
  for (const auto& [k, v] : doc.as_object()) {
    if (k != "field" && k != "op" && k != "value") {
      return def_error(path + "." + k,
                       "unknown property (a condition has field, op, value, or "
                       "is all / any / not)");
    }
  }
  c.kind = Condition::Kind::kCompare;
  c.field = doc.string_or("field");
  const FieldDef* f = form.field(c.field);
  if (!f) {
    return def_error(path + ".field", "unknown field \"" + c.field + "\" in form " + form.id);
  }
  std::string op = doc.string_or("op");
  bool known = false;
  for (auto [name, o] : kOps) {
    if (name == op) {
      c.op = o;
      known = true;
    }
  }
  if (!known) return def_error(path + ".op", "unknown operator \"" + op + "\"");
  c.value = doc["value"];
  const std::string vpath = path + ".value";
  switch (c.op) {
    case Condition::Op::kEmpty:
    case Condition::Op::kNotEmpty:
      if (doc.find("value")) return def_error(vpath, op + " takes no value");
      break;
    case Condition::Op::kIn:
    case Condition::Op::kNotIn:
      if (!c.value.is_array() || c.value.as_array().empty()) {
        return def_error(vpath, op + " needs a non-empty array");
      }
      for (const auto& item : c.value.as_array()) {
        if (auto m = element_mismatch(*f, item)) return def_error(vpath, *m);
      }
      break;
    case Condition::Op::kGt:
    case Condition::Op::kGte:
    case Condition::Op::kLt:
    case Condition::Op::kLte:
      if (!is_ordered(f->type)) {
        return def_error(path + ".op",
                         op + " needs a number, rating, date or datetime field, and " + c.field +
                             " is " + std::string(field_type_name(f->type)));
      }
      if (auto m = element_mismatch(*f, c.value)) return def_error(vpath, *m);
      break;
    case Condition::Op::kContains:
      if (is_list(*f)) {
        if (auto m = element_mismatch(*f, c.value)) return def_error(vpath, *m);
      } else if (!c.value.is_string() || f->type == FieldType::kNumber ||
                 f->type == FieldType::kCheckbox || f->type == FieldType::kRating) {
        return def_error(vpath, "contains needs a text field and a string, or a list field");
      }
      break;
    case Condition::Op::kEq:
    case Condition::Op::kNe:
      if (!doc.find("value")) return def_error(vpath, op + " needs a value");
      if (c.value.is_null()) break;
      if (is_list(*f)) {
        if (!c.value.is_array()) return def_error(vpath, "an array is needed for " + f->key);
        for (const auto& item : c.value.as_array()) {
          if (auto m = element_mismatch(*f, item)) return def_error(vpath, *m);
        }
      } else if (auto m = element_mismatch(*f, c.value)) {
        return def_error(vpath, *m);
      }
      break;
  }
  return c;
}

bool evaluate(const Condition& c, const Object& fields) {
  switch (c.kind) {
    case Condition::Kind::kAlways:
      return true;
    case Condition::Kind::kAll:
      for (const auto& child : c.children) {
        if (!evaluate(child, fields)) return false;
      }
      return true;
    case Condition::Kind::kAny:
      for (const auto& child : c.children) {
        if (evaluate(child, fields)) return true;
      }
      return false;
    case Condition::Kind::kNot:
      return !evaluate(c.children.front(), fields);
    case Condition::Kind::kCompare:
      break;
  }
  const Value& v = lookup(fields, c.field);
  switch (c.op) {
    case Condition::Op::kEq:
      return v == c.value;
    case Condition::Op::kNe:
      return !(v == c.value);
    case Condition::Op::kIn:
    case Condition::Op::kNotIn: {
      bool found = false;
      for (const auto& item : c.value.as_array()) found |= item == v;
      return found == (c.op == Condition::Op::kIn);
    }
    case Condition::Op::kGt:
    case Condition::Op::kGte:
    case Condition::Op::kLt:
    case Condition::Op::kLte: {
      auto r = compare(v, c.value);
      if (!r) return false;
      switch (c.op) {
        case Condition::Op::kGt:
          return *r > 0;
        case Condition::Op::kGte:
          return *r >= 0;
        case Condition::Op::kLt:
          return *r < 0;
        default:
          return *r <= 0;
      }
    }
    case Condition::Op::kContains:
      if (v.is_array()) {
        for (const auto& item : v.as_array()) {
          if (item == c.value) return true;
        }
        return false;
      }
      return v.is_string() && v.as_string().find(c.value.as_string()) != std::string::npos;
    case Condition::Op::kEmpty:
      return empty_value(v);
    case Condition::Op::kNotEmpty:
      return !empty_value(v);
  }
  return false;
}

void condition_fields(const Condition& c, std::vector<std::string>* keys) {
  if (c.kind == Condition::Kind::kCompare) keys->push_back(c.field);
  for (const auto& child : c.children) condition_fields(child, keys);
}

}  // namespace ticketd
