#include "domain/print_template.h"

#include <set>

#include "domain/definition_error.h"
#include "domain/time_format.h"

namespace ticketd {
namespace {

// A list of non-empty strings, none repeated.
Result<std::vector<std::string>> string_list(const Value& v, const std::string& path) {
  if (!v.is_array()) return def_error(path, "an array of strings is required");
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (const Value& item : v.as_array()) {
    if (!item.is_string() || item.as_string().empty())
      return def_error(path, "every item must be a non-empty string");
    if (!seen.insert(item.as_string()).second)
      return def_error(path, "\"" + item.as_string() + "\" is listed twice");
    out.push_back(item.as_string());
  }
  return out;
}

Result<PrintSection> parse_section(const Value& doc, const std::string& path, const FormDef& form) {
  if (!doc.is_object()) return def_error(path, "must be a JSON object");
  if (auto e = unknown_property(doc, {"type", "title", "fields", "labels"}, path)) return *e;
  PrintSection s;
  std::string type = doc.string_or("type");
  if (type == "fields") {
    s.kind = PrintSection::Kind::kFields;
  } else if (type == "process") {
    s.kind = PrintSection::Kind::kProcess;
  } else if (type == "rating") {
    s.kind = PrintSection::Kind::kRating;
  } else if (type == "signatures") {
    s.kind = PrintSection::Kind::kSignatures;
  } else {
    return def_error(path + ".type", "one of fields, process, rating, signatures");
  }
  if (const Value* title = doc.find("title")) {
    if (!title->is_string()) return def_error(path + ".title", "must be a string");
    s.title = title->as_string();
  }
  if (const Value* fields = doc.find("fields")) {
    if (s.kind != PrintSection::Kind::kFields)
      return def_error(path + ".fields", "only a fields section lists fields");
    auto keys = string_list(*fields, path + ".fields");
    if (!keys.ok()) return keys.error();
    if (keys.value().empty())
      return def_error(path + ".fields", "at least one field (leave it out for every field)");
    for (const auto& key : keys.value()) {
      if (!form.field(key))
        return def_error(path + ".fields", "form " + form.id + " has no field \"" + key + "\"");
    }
    s.fields = std::move(keys.value());
  }
  if (s.kind == PrintSection::Kind::kSignatures) {
    const Value* labels = doc.find("labels");
    if (!labels) return def_error(path + ".labels", "a signatures section needs its labels");
    auto list = string_list(*labels, path + ".labels");
    if (!list.ok()) return list.error();
    if (list.value().empty()) return def_error(path + ".labels", "at least one label");
    s.labels = std::move(list.value());
  } else if (doc.find("labels")) {
    return def_error(path + ".labels", "only a signatures section has labels");
  }
  return s;
}

}  // namespace

namespace {

Result<PrintTemplateDef> parse_print_template(std::string_view id, const Value& doc,
                                              const FormDef& form, bool stored) {
  PrintTemplateDef t;
  t.id = id;
  t.document = doc;
  if (!doc.is_object()) return def_error("print_template", "must be a JSON object");
  if (auto e = unknown_property(
          doc, {"name", "form", "title", "sections", "time_zone", "description"}, "print_template"))
    return *e;
  t.name = doc.string_or("name");
  if (t.name.empty()) return def_error("print_template.name", "a non-empty string is required");
  t.form_id = doc.string_or("form");
  if (t.form_id != form.id)
    return def_error("print_template.form", "must name the form \"" + form.id + "\"");
  if (const Value* title = doc.find("title")) {
    if (!title->is_string()) return def_error("print_template.title", "must be a string");
    t.title = title->as_string();
  }
  if (t.title.empty()) t.title = form.name;
  if (doc.find("time_zone")) {
    t.time_zone = doc.string_or("time_zone");
    t.zone = find_time_zone(t.time_zone);
    if (!t.zone && !stored)
      return def_error("print_template.time_zone", unknown_time_zone(t.time_zone));
  }
  const Value& sections = doc["sections"];
  if (!sections.is_array() || sections.as_array().empty())
    return def_error("print_template.sections", "a non-empty array of sections is required");
  for (size_t i = 0; i < sections.as_array().size(); ++i) {
    auto s = parse_section(sections.as_array()[i],
                           "print_template.sections[" + std::to_string(i) + "]", form);
    if (!s.ok()) return s.error();
    t.sections.push_back(std::move(s.value()));
  }
  return t;
}

}  // namespace

Result<PrintTemplateDef> parse_print_template(std::string_view id, const Value& doc,
                                              const FormDef& form) {
  return parse_print_template(id, doc, form, false);
}

Result<PrintTemplateDef> parse_stored_print_template(std::string_view id, const Value& doc,
                                                     const FormDef& form) {
  return parse_print_template(id, doc, form, true);
}

PrintTemplateDef default_print_template(const FormDef& form) {
  PrintTemplateDef t;
  t.name = form.name;
  t.form_id = form.id;
  t.title = form.name;
  t.sections.push_back({PrintSection::Kind::kFields, "", {}, {}});
  t.sections.push_back({PrintSection::Kind::kProcess, "处理记录", {}, {}});
  t.sections.push_back({PrintSection::Kind::kRating, "客户评价", {}, {}});
  return t;
}

}  // namespace ticketd
