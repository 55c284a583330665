#include "domain/form.h"

#include <cmath>
#include <set>

#include "domain/definition_error.h"
#include "domain/media_type.h"
#include "domain/text.h"
#include "domain/time_format.h"

namespace ticketd {
namespace {

constexpr std::pair<std::string_view, FieldType> kTypeNames[] = {
    {"text", FieldType::kText},
    {"textarea", FieldType::kTextarea},
    {"number", FieldType::kNumber},
    {"select", FieldType::kSelect},
    {"multiselect", FieldType::kMultiselect},
    {"date", FieldType::kDate},
    {"datetime", FieldType::kDatetime},
    {"person", FieldType::kPerson},
    {"attachment", FieldType::kAttachment},
    {"image", FieldType::kImage},
    {"phone", FieldType::kPhone},
    {"email", FieldType::kEmail},
    {"relation", FieldType::kRelation},
    {"rating", FieldType::kRating},
    {"checkbox", FieldType::kCheckbox},
};

constexpr uint64_t kDefaultTextLength = 500;
constexpr uint64_t kDefaultTextareaLength = 20000;

// A refused choice names what may be chosen, so the refusal shows the fix (a client that typed
// "其它" for "其他" sees both). Long lists are cut: a message is read, not parsed.
std::string not_an_option(const std::string& chosen, const std::vector<std::string>& options) {
  constexpr size_t kShown = 12;
  std::string s = "\"" + chosen + "\" is not one of the options (";
  for (size_t i = 0; i < options.size() && i < kShown; ++i) {
    if (i > 0) s += ", ";
    s += options[i];
  }
  if (options.size() > kShown) s += ", … " + std::to_string(options.size()) + " in all";
  return s + ")";
}

std::string choices_allowed(size_t chosen, std::optional<double> min, std::optional<double> max) {
  auto count = [](double n) { return Value(n).to_json(); };
  std::string s = std::to_string(chosen) + " chosen, ";
  if (min && max) return s + "choose " + count(*min) + " to " + count(*max);
  if (min) return s + "choose at least " + count(*min);
  return s + "choose at most " + count(*max);
}

}  // namespace

std::optional<FieldType> field_type_from_name(std::string_view name) {
  for (auto [n, t] : kTypeNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

std::string_view field_type_name(FieldType type) {
  for (auto [n, t] : kTypeNames) {
    if (t == type) return n;
  }
  return "?";
}

const FieldDef* FormDef::field(std::string_view key) const {
  for (const auto& f : fields) {
    if (f.key == key) return &f;
  }
  return nullptr;
}

namespace {

Result<FormDef> parse_form(std::string_view id, const Value& doc, bool stored) {
  FormDef form;
  form.id = id;
  form.document = doc;
  if (!doc.is_object()) return def_error("form", "must be a JSON object");
  if (auto e = unknown_property(doc, {"name", "fields", "description", "id", "version"}, "form"))
    return *e;
  if (!doc["name"].is_string() || doc["name"].as_string().empty()) {
    return def_error("form.name", "a non-empty string is required");
  }
  form.name = doc["name"].as_string();
  if (!doc["fields"].is_array() || doc["fields"].as_array().empty()) {
    return def_error("form.fields", "a non-empty array is required");
  }
  std::set<std::string> keys;
  const auto& fields = doc["fields"].as_array();
  for (size_t i = 0; i < fields.size(); ++i) {
    std::string path = "form.fields[" + std::to_string(i) + "]";
    const Value& f = fields[i];
    if (!f.is_object()) return def_error(path, "must be an object");
    if (auto e = unknown_property(
            f,
            {"key", "label", "type", "required", "options", "default", "auto", "min", "max",
             "max_length", "multiple", "form", "description", "placeholder", "role"},
            path)) {
      return *e;
    }
    FieldDef d;
    d.key = f.string_or("key");
    if (d.key.empty()) return def_error(path + ".key", "a non-empty string is required");
    for (char c : d.key) {
      if (c == '.' || c == '{' || c == '}' || c == ' ' || static_cast<unsigned char>(c) < 0x20) {
        return def_error(path + ".key", "\"" + d.key + "\" may not contain '.', braces or spaces");
      }
    }
    if (!keys.insert(d.key).second)
      return def_error(path + ".key", "duplicate key \"" + d.key + "\"");
    // A label is what people see of a field (forms, errors, print-outs); without one, the key.
    if (const Value* label = f.find("label");
        label && !stored && (!label->is_string() || label->as_string().empty())) {
      return def_error(path + ".label", "a non-empty string is required (or none: the key shows)");
    }
    d.label = f.string_or("label", d.key);
    if (d.label.empty()) d.label = d.key;
    auto type = field_type_from_name(f.string_or("type"));
    if (!type) return def_error(path + ".type", "unknown type \"" + f.string_or("type") + "\"");
    d.type = *type;
    if (const Value* r = f.find("required")) {
      if (!r->is_bool()) return def_error(path + ".required", "must be true or false");
      d.required = r->as_bool();
    }
    if (const Value* m = f.find("multiple")) {
      if (!m->is_bool()) return def_error(path + ".multiple", "must be true or false");
      d.multiple = m->as_bool();
    }
    bool is_select = d.type == FieldType::kSelect || d.type == FieldType::kMultiselect;
    if (const Value* o = f.find("options")) {
      if (!is_select)
        return def_error(path + ".options", "only select and multiselect have options");
      if (!o->is_array()) return def_error(path + ".options", "must be an array of strings");
      std::set<std::string> seen;
      for (const auto& opt : o->as_array()) {
        if (!opt.is_string() || opt.as_string().empty()) {
          return def_error(path + ".options", "must be an array of non-empty strings");
        }
        if (!seen.insert(opt.as_string()).second) {
          return def_error(path + ".options", "duplicate option \"" + opt.as_string() + "\"");
        }
        d.options.push_back(opt.as_string());
      }
    }
    if (is_select && d.options.empty())
      return def_error(path + ".options", "at least one option is required");
    for (auto [name, slot] : {std::pair{"min", &d.min}, std::pair{"max", &d.max}}) {
      if (const Value* v = f.find(name)) {
        if (!v->is_number()) return def_error(path + "." + name, "must be a number");
        *slot = v->as_number();
      }
    }
    if (d.min && d.max && *d.min > *d.max) return def_error(path + ".min", "is greater than max");
    if (const Value* v = f.find("max_length")) {
      if (!v->is_number() || v->as_number() < 1 || v->as_number() != std::floor(v->as_number())) {
        return def_error(path + ".max_length", "must be a whole number >= 1");
      }
      d.max_length = static_cast<uint64_t>(v->as_number());
    }
    if (const Value* v = f.find("auto")) {
      d.auto_fill = v->as_string();
      bool ok = (d.auto_fill == "now" &&
                 (d.type == FieldType::kDate || d.type == FieldType::kDatetime)) ||
                (d.auto_fill == "creator" && d.type == FieldType::kPerson);
      if (!ok) {
        return def_error(path + ".auto",
                         "\"now\" fits date/datetime fields and \"creator\" person fields");
      }
    }
    if (d.type == FieldType::kRelation) d.relation_form = f.string_or("form");
    // Who may be put in a person field: 工程师 takes an engineer, not the auditor, who could
    // then never act at the node the field assigns.
    if (const Value* role = f.find("role")) {
      if (d.type != FieldType::kPerson)
        return def_error(path + ".role", "only person fields take a role");
      if (!role->is_string() || role->as_string().empty())
        return def_error(path + ".role", "a role name is required");
      d.role = role->as_string();
    }
    form.fields.push_back(std::move(d));
    // Defaults are checked like values, so a bad default is caught here and not at submission.
    if (const Value* v = f.find("default")) {
      const std::string& linked = form.fields.back().relation_form;
      Lookups none{[](std::string_view, std::string_view) { return true; },
                   // any upload, taken for a picture: which one it is is known at submission
                   [](std::string_view) { return std::string("image/png"); },
                   [&linked](std::string_view) { return linked.empty() ? "any" : linked; }};
      auto checked = check_field_value(form.fields.back(), *v, none);
      if (checked.ok()) {
        form.fields.back().default_value = checked.value();
      } else if (stored) {  // published when the checks were looser: it stays as it was
        form.fields.back().default_value = *v;
      } else {
        return def_error(path + ".default", checked.error().message);
      }
    }
  }
  return form;
}

}  // namespace

Result<FormDef> parse_form(std::string_view id, const Value& doc) {
  return parse_form(id, doc, false);
}

Result<FormDef> parse_stored_form(std::string_view id, const Value& doc) {
  return parse_form(id, doc, true);
}

Result<Value> check_field_value(const FieldDef& f, const Value& v, const Lookups& lookups) {
  auto fail = [&](const char* code, std::string message) {
    return error(code, f.label + " (" + f.key + "): " + message, f.key);
  };
  auto wrong_type = [&](const char* expected) {
    return fail(codes::kWrongType, std::string("expected ") + expected);
  };
  if (v.is_null()) return v;
  switch (f.type) {
    case FieldType::kText:
    case FieldType::kTextarea: {
      if (!v.is_string()) return wrong_type("a string");
      uint64_t limit = f.max_length.value_or(f.type == FieldType::kText ? kDefaultTextLength
                                                                        : kDefaultTextareaLength);
      if (utf8_length(v.as_string()) > limit) {
        return fail(codes::kOutOfRange, "longer than " + std::to_string(limit) + " characters");
      }
      auto lines = f.type == FieldType::kText ? TextLines::kOne : TextLines::kMany;
      if (auto wrong = control_character_in(v.as_string(), lines))
        return fail(codes::kInvalidValue, *wrong);
      return v;
    }
    case FieldType::kNumber:
    case FieldType::kRating: {
      if (!v.is_number()) return wrong_type("a number");
      double n = v.as_number();
      double lo = f.min.value_or(f.type == FieldType::kRating ? 1 : -1e300);
      double hi = f.max.value_or(f.type == FieldType::kRating ? 5 : 1e300);
      if (f.type == FieldType::kRating && n != std::floor(n)) return wrong_type("a whole number");
      if (n < lo || n > hi) {
        return fail(codes::kOutOfRange,
                    "must be between " + Value(lo).to_json() + " and " + Value(hi).to_json());
      }
      return v;
    }
    case FieldType::kSelect: {
      if (!v.is_string()) return wrong_type("one of the options, as a string");
      for (const auto& o : f.options) {
        if (o == v.as_string()) return v;
      }
      return fail(codes::kNotAnOption, not_an_option(v.as_string(), f.options));
    }
    case FieldType::kMultiselect: {
      if (!v.is_array()) return wrong_type("an array of options");
      std::set<std::string> seen;
      for (const auto& item : v.as_array()) {
        if (!item.is_string()) return wrong_type("an array of options");
        bool known = false;
        for (const auto& o : f.options) known |= o == item.as_string();
        if (!known) return fail(codes::kNotAnOption, not_an_option(item.as_string(), f.options));
        if (!seen.insert(item.as_string()).second) {
          return fail(codes::kInvalidValue, "\"" + item.as_string() + "\" is chosen twice");
        }
      }
      size_t n = v.as_array().size();
      if ((f.min && n < *f.min) || (f.max && n > *f.max)) {
        return fail(codes::kOutOfRange, choices_allowed(n, f.min, f.max));
      }
      return v;
    }
    case FieldType::kDate:
      if (!v.is_string() || !parse_date(v.as_string())) return wrong_type("a date YYYY-MM-DD");
      return v;
    case FieldType::kDatetime: {
      if (!v.is_string()) return wrong_type("an RFC 3339 date-time");
      auto t = parse_rfc3339(v.as_string());
      if (!t) return wrong_type("an RFC 3339 date-time");
      return Value(format_rfc3339(*t));  // stored in UTC
    }
    case FieldType::kPerson:
      if (!v.is_string()) return wrong_type("a user id");
      if (!lookups.user_exists || !lookups.user_exists(v.as_string(), f.role)) {
        return fail(codes::kInvalidValue, "no active user \"" + v.as_string() + "\"" +
                                              (f.role.empty() ? "" : " with role " + f.role));
      }
      return v;
    case FieldType::kAttachment:
    case FieldType::kImage: {
      auto check_one = [&](const Value& id) -> std::optional<DomainError> {
        if (!id.is_string()) return wrong_type("an attachment id");
        const std::string type =
            lookups.attachment_type ? lookups.attachment_type(id.as_string()) : "";
        if (type.empty()) {
          return fail(codes::kInvalidValue, "no attachment \"" + id.as_string() + "\"");
        }
        // A picture field is printed and shown as pictures: a document goes in an attachment
        // field.
        if (f.type == FieldType::kImage && !is_picture_type(type)) {
          return fail(codes::kInvalidValue, id.as_string() + " is " + media_type_essence(type) +
                                                ", not a picture (PNG, JPEG, GIF or WebP)");
        }
        return std::nullopt;
      };
      if (f.multiple) {
        if (!v.is_array()) return wrong_type("an array of attachment ids");
        for (const auto& id : v.as_array()) {
          if (auto e = check_one(id)) return *e;
        }
      } else if (auto e = check_one(v)) {
        return *e;
      }
      return v;
    }
    case FieldType::kPhone: {
      if (!v.is_string()) return wrong_type("a phone number");
      std::optional<std::string> phone = phone_number(v.as_string());
      if (!phone) return fail(codes::kInvalidValue, "not a phone number");
      return *phone == v.as_string() ? v : Value(std::move(*phone));
    }
    case FieldType::kEmail:
      if (!v.is_string()) return wrong_type("an e-mail address");
      if (!valid_email(v.as_string())) return fail(codes::kInvalidValue, "not an e-mail address");
      return v;
    case FieldType::kRelation: {
      if (!v.is_string()) return wrong_type("a ticket id");
      const std::string form = lookups.ticket_form ? lookups.ticket_form(v.as_string()) : "";
      if (form.empty()) return fail(codes::kInvalidValue, "no ticket \"" + v.as_string() + "\"");
      // A relation names what it links to: a 备件申请 field takes a spare-part request, not
      // whichever ticket's number was typed.
      if (!f.relation_form.empty() && form != f.relation_form) {
        return fail(codes::kInvalidValue, "ticket \"" + v.as_string() + "\" is of form " + form +
                                              ", not " + f.relation_form);
      }
      return v;
    }
    case FieldType::kCheckbox:
      if (!v.is_bool()) return wrong_type("true or false");
      return v;
  }
  return wrong_type("a value");
}

}  // namespace ticketd
