#include "domain/catalog.h"

#include <algorithm>
#include <cctype>
#include <tuple>
#include <utility>

#include "domain/definition_error.h"
#include "domain/text.h"

namespace ticketd {
namespace {

template <typename T, typename M>
const T* find_version(const M& map, std::string_view id, uint64_t version) {
  auto it = map.find(id);
  if (it == map.end() || it->second.empty()) return nullptr;
  if (version == 0) return it->second.back().get();
  if (version > it->second.size()) return nullptr;
  return it->second[version - 1].get();
}

template <typename M>
std::vector<std::string> ids_of(const M& map) {
  std::vector<std::string> ids;
  for (const auto& [id, versions] : map) ids.push_back(id);
  return ids;
}

DomainEvent published(const char* type, std::string_view id, uint64_t version, const Value& doc,
                      uint64_t form_version, const std::string& actor, int64_t now_us) {
  Object data = {{"id", Value(id)}, {"version", Value(static_cast<int64_t>(version))}};
  if (form_version) data.emplace_back("form_version", Value(static_cast<int64_t>(form_version)));
  data.emplace_back("document", doc);
  return {type, Value(std::move(data)), actor, now_us, std::nullopt};
}

// "." and ".." are refused besides: clients resolve them away in a URL (/forms/.. is /), so the
// definition or user could not be asked for.
bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id == "." || id == "..") return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// A user's name, phone or e-mail address, as notifications, pickers and print-outs use them, as
// stored (a phone number in ASCII); an empty phone or address is none.
Result<std::string> user_member(const char* key, const std::string& value) {
  constexpr size_t kMaxNameLength = 100;
  if (std::string_view(key) == "name") {
    if (blank(value)) return error(codes::kRequired, "name must not be empty or spaces", key);
    if (utf8_length(value) > kMaxNameLength) {
      return error(codes::kOutOfRange,
                   "name is longer than " + std::to_string(kMaxNameLength) + " characters", key);
    }
    if (auto wrong = control_character_in(value, TextLines::kOne))
      return error(codes::kInvalidValue, "name " + *wrong, key);
  } else if (std::string_view(key) == "phone") {
    if (value.empty()) return value;
    std::optional<std::string> phone = phone_number(value);
    if (!phone) {
      return error(codes::kInvalidValue,
                   "phone \"" + value + "\" is not a phone number (digits, a + first if need be)",
                   key);
    }
    return std::move(*phone);
  } else if (!value.empty() && !valid_email(value)) {
    return error(codes::kInvalidValue, "email \"" + value + "\" is not an e-mail address", key);
  }
  return value;
}

// An account's roles, as stored. `customer` is not one: a node assigned it waits for the
// ticket's customer, who acts through the portal with the ticket's code; an account holding it
// would be staff to the server, reading every customer's tickets.
Result<Array> account_roles(const std::vector<std::string>& names) {
  Array roles;
  for (auto it = names.begin(); it != names.end(); ++it) {
    const std::string& r = *it;
    if (!valid_id(r))
      return error(codes::kInvalidValue, "role \"" + r + "\" is not a valid name", "roles");
    if (std::find(names.begin(), it, r) != it)
      return error(codes::kInvalidValue, "role \"" + r + "\" is listed twice", "roles");
    if (r == kCustomerRole) {
      return error(codes::kInvalidValue,
                   "role \"customer\" is the ticket's customer, who follows, confirms and rates "
                   "it in the portal with the ticket's code; an account cannot hold it",
                   "roles");
    }
    roles.emplace_back(r);
  }
  return roles;
}

DomainError bad_id(std::string_view what, std::string_view id) {
  return error(
      codes::kInvalidDefinition,
      std::string(what) + " id \"" + std::string(id) +
          "\" must be 1-64 characters of letters, digits, '_', '-' or '.', other than \".\" "
          "and \"..\"");
}

// The texts of a document being put (names, labels, options, templates, every member name)
// reach screens, PDFs, exports and messages as written, where a control character prints as
// nothing, cuts a PDF's line at a NUL or moves a terminal's cursor. Line breaks and tabs stay:
// templates and descriptions run over lines. Only a put is checked; what the log holds loads.
std::optional<DomainError> control_character_in_document(const Value& v, const std::string& path) {
  if (v.is_string()) {
    if (auto what = control_character_in(v.as_string(), TextLines::kMany))
      return def_error(path, *what);
  } else if (v.is_array()) {
    const Array& items = v.as_array();
    for (size_t i = 0; i < items.size(); ++i) {
      if (auto e = control_character_in_document(items[i], path + "[" + std::to_string(i) + "]"))
        return e;
    }
  } else if (v.is_object()) {
    for (const auto& [key, member] : v.as_object()) {
      if (auto what = control_character_in(key, TextLines::kOne))
        return def_error(path, "a member's name " + *what);
      if (auto e = control_character_in_document(member, path + "." + key)) return e;
    }
  }
  return std::nullopt;
}

// A relation field's `form` names a form there is (or the one being put): with a misspelt one,
// no ticket would ever fit the field. Checked when put only, as forms are never removed.
std::optional<DomainError> check_relation_targets(const Catalog& c, std::string_view id,
                                                  const Value& doc) {
  const Array& fields = doc["fields"].as_array();
  for (size_t i = 0; i < fields.size(); ++i) {
    const Value* target = fields[i].find("form");
    if (!target || fields[i].string_or("type") != "relation") continue;
    const std::string path = "form.fields[" + std::to_string(i) + "].form";
    if (!target->is_string() || target->as_string().empty())
      return def_error(path, "the id of the form whose tickets the field links to");
    if (target->as_string() != id && !c.form(target->as_string()))
      return def_error(path, "no form \"" + target->as_string() + "\"");
  }
  return std::nullopt;
}

}  // namespace

Value strip_identity(const Value& doc) {
  if (!doc.is_object()) return doc;
  Object o;
  for (const auto& m : doc.as_object()) {
    if (m.first != "id" && m.first != "version") o.push_back(m);
  }
  return Value(std::move(o));
}

namespace {

// The latest version of every enabled definition in `versions`, by form, in id order.
template <typename T, typename Versions>
std::map<std::string, std::vector<const T*>, std::less<>> latest_enabled_by_form(
    const Versions& versions) {
  std::map<std::string, std::vector<const T*>, std::less<>> by_form;
  for (const auto& [id, all] : versions) {
    const T* latest = all.back().get();
    if (latest->enabled) by_form[latest->form_id].push_back(latest);
  }
  return by_form;
}

template <typename T>
const std::vector<const T*>& find_or_empty(
    const std::map<std::string, std::vector<const T*>, std::less<>>& by_form,
    std::string_view form_id) {
  static const std::vector<const T*> kNone;
  auto it = by_form.find(form_id);
  return it == by_form.end() ? kNone : it->second;
}

}  // namespace

bool Catalog::apply(const DomainEvent& e) {
  const Value& d = e.data;
  std::string id = d.string_or("id");
  if (e.type == event_types::kFormPublished) {
    auto form = parse_stored_form(id, d["document"]);
    if (!form.ok()) return false;
    form.value().version = static_cast<uint64_t>(d["version"].as_number());
    forms_[id].push_back(std::make_shared<const FormDef>(std::move(form.value())));
    return true;
  }
  if (e.type == event_types::kDashboardPublished) {
    auto dashboard = parse_stored_dashboard(id, d["document"]);
    if (!dashboard.ok()) return false;
    dashboard.value().version = static_cast<uint64_t>(d["version"].as_number());
    dashboards_[id].push_back(std::make_shared<const DashboardDef>(std::move(dashboard.value())));
    return true;
  }
  if (e.type == event_types::kSettingsChanged) {
    auto settings = parse_settings(d["document"], false);
    if (!settings.ok()) return false;
    settings.value().version = static_cast<uint64_t>(d["version"].as_number());
    settings_.push_back(std::make_shared<const CompanySettings>(std::move(settings.value())));
    return true;
  }
  if (e.type == event_types::kCalendarPublished) {
    auto calendar = parse_stored_calendar(id, d["document"]);
    if (!calendar.ok()) return false;
    calendar.value().version = static_cast<uint64_t>(d["version"].as_number());
    calendars_[id].push_back(std::make_shared<const CalendarDef>(std::move(calendar.value())));
    return true;
  }
  if (e.type == event_types::kFlowPublished || e.type == event_types::kRulePublished ||
      e.type == event_types::kSlaPolicyPublished ||
      e.type == event_types::kPrintTemplatePublished) {
    const Value& doc = d["document"];
    const FormDef* f =
        form(doc.string_or("form"), static_cast<uint64_t>(d["form_version"].as_number()));
    if (!f) return false;
    uint64_t version = static_cast<uint64_t>(d["version"].as_number());
    if (e.type == event_types::kFlowPublished) {
      auto flow = parse_stored_flow(id, doc, *f);
      if (!flow.ok()) return false;
      flow.value().version = version;
      flows_[id].push_back(std::make_shared<const FlowDef>(std::move(flow.value())));
    } else if (e.type == event_types::kSlaPolicyPublished) {
      auto policy = parse_sla_policy(id, doc, *f);
      if (!policy.ok()) return false;
      policy.value().version = version;
      sla_policies_[id].push_back(std::make_shared<const SlaPolicyDef>(std::move(policy.value())));
      sla_policies_by_form_ = latest_enabled_by_form<SlaPolicyDef>(sla_policies_);
    } else if (e.type == event_types::kPrintTemplatePublished) {
      auto print = parse_stored_print_template(id, doc, *f);
      if (!print.ok()) return false;
      print.value().version = version;
      print_templates_[id].push_back(
          std::make_shared<const PrintTemplateDef>(std::move(print.value())));
    } else {
      auto rule = parse_stored_rule(id, doc, *f);
      if (!rule.ok()) return false;
      rule.value().version = version;
      rules_[id].push_back(std::make_shared<const RuleDef>(std::move(rule.value())));
      rules_by_form_ = latest_enabled_by_form<RuleDef>(rules_);
    }
    return true;
  }
  if (e.type == event_types::kUserCreated) {
    User u;
    u.id = id;
    u.name = d.string_or("name");
    for (const auto& r : d["roles"].as_array()) u.roles.push_back(r.as_string());
    u.phone = d.string_or("phone");
    u.email = d.string_or("email");
    u.version = 1;
    users_[id] = std::move(u);
    return true;
  }
  auto user = users_.find(id);
  if (user == users_.end()) return true;
  User& u = user->second;
  if (e.type == event_types::kUserUpdated || e.type == event_types::kPasswordChanged ||
      e.type == event_types::kUserDisabled || e.type == event_types::kUserEnabled) {
    ++u.version;
  }
  if (e.type == event_types::kUserUpdated) {
    for (auto [key, member] :
         {std::pair{"name", &u.name}, std::pair{"phone", &u.phone}, std::pair{"email", &u.email}}) {
      if (const Value* v = d.find(key)) *member = v->as_string();
    }
    if (const Value* roles = d.find("roles")) {
      u.roles.clear();
      for (const auto& r : roles->as_array()) u.roles.push_back(r.as_string());
    }
  } else if (e.type == event_types::kUserDisabled || e.type == event_types::kUserEnabled) {
    u.disabled = e.type == event_types::kUserDisabled;
  }
  return true;
}

const FormDef* Catalog::form(std::string_view id, uint64_t version) const {
  return find_version<FormDef>(forms_, id, version);
}
const FlowDef* Catalog::flow(std::string_view id, uint64_t version) const {
  return find_version<FlowDef>(flows_, id, version);
}
const RuleDef* Catalog::rule(std::string_view id, uint64_t version) const {
  return find_version<RuleDef>(rules_, id, version);
}

const CalendarDef* Catalog::calendar(std::string_view id, uint64_t version) const {
  return find_version<CalendarDef>(calendars_, id, version);
}

const PrintTemplateDef* Catalog::print_template(std::string_view id, uint64_t version) const {
  return find_version<PrintTemplateDef>(print_templates_, id, version);
}

const DashboardDef* Catalog::dashboard(std::string_view id, uint64_t version) const {
  return find_version<DashboardDef>(dashboards_, id, version);
}

const CompanySettings& Catalog::settings() const {
  static const CompanySettings kDefaults;
  return settings_.empty() ? kDefaults : *settings_.back();
}

const CompanySettings* Catalog::settings_at(uint64_t version) const {
  if (version == 0 || version > settings_.size()) return nullptr;
  return settings_[version - 1].get();
}

const SlaPolicyDef* Catalog::sla_policy(std::string_view id, uint64_t version) const {
  return find_version<SlaPolicyDef>(sla_policies_, id, version);
}

const std::vector<const SlaPolicyDef*>& Catalog::sla_policies_for_form(
    std::string_view form_id) const {
  return find_or_empty(sla_policies_by_form_, form_id);
}

const std::vector<const RuleDef*>& Catalog::rules_for_form(std::string_view form_id) const {
  return find_or_empty(rules_by_form_, form_id);
}

std::vector<std::string> Catalog::form_ids() const { return ids_of(forms_); }
std::vector<std::string> Catalog::flow_ids() const { return ids_of(flows_); }
std::vector<std::string> Catalog::rule_ids() const { return ids_of(rules_); }
std::vector<std::string> Catalog::calendar_ids() const { return ids_of(calendars_); }
std::vector<std::string> Catalog::sla_policy_ids() const { return ids_of(sla_policies_); }
std::vector<std::string> Catalog::print_template_ids() const { return ids_of(print_templates_); }
std::vector<std::string> Catalog::dashboard_ids() const { return ids_of(dashboards_); }

const User* Catalog::user(std::string_view id) const {
  auto it = users_.find(id);
  return it == users_.end() ? nullptr : &it->second;
}

std::vector<const User*> Catalog::users() const {
  std::vector<const User*> out;
  for (const auto& [id, u] : users_) out.push_back(&u);
  return out;
}

namespace {

// What a dashboard's widgets name must exist: their forms, and the select fields they count by
// (in `replacing` for its form, when a version of it is about to be published).
std::optional<DomainError> check_widget_fields(const Catalog& c, const DashboardDef& d,
                                               const FormDef* replacing) {
  for (size_t k = 0; k < d.widgets.size(); ++k) {
    const DashboardWidget& w = d.widgets[k];
    const std::string path = "dashboard.widgets[" + std::to_string(k) + "]";
    if (!w.form.empty() && !c.form(w.form))
      return def_error(path + ".form", "no form \"" + w.form + "\"");
    if (!w.field.empty() && !is_select_field(c, w.form, w.field, replacing)) {
      return def_error(path + ".field", "\"" + w.field + "\" is not a select field of " +
                                            (w.form.empty() ? "any form" : "form " + w.form));
    }
  }
  return std::nullopt;
}

}  // namespace

Result<std::optional<DomainEvent>> decide_publish_form(const Catalog& c, std::string_view id,
                                                       const Value& document,
                                                       const std::string& actor, int64_t now_us) {
  if (!valid_id(id)) return bad_id("form", id);
  Value doc = strip_identity(document);
  if (auto e = control_character_in_document(doc, "form")) return *e;
  auto parsed = parse_form(id, doc);
  if (!parsed.ok()) return parsed.error();
  if (auto e = check_relation_targets(c, id, doc)) return *e;
  const FormDef* current = c.form(id);
  if (current && current->document == doc) return std::optional<DomainEvent>();
  // Flows and rules of this form must still fit the new version, or running them would fail.
  for (const auto& flow_id : c.flow_ids()) {
    const FlowDef* flow = c.flow(flow_id);
    if (flow->form_id != id) continue;
    auto check = parse_stored_flow(flow_id, flow->document, parsed.value());
    if (!check.ok()) {
      return error(codes::kInvalidDefinition,
                   "this version would break flow " + flow_id + ": " + check.error().message);
    }
  }
  for (const RuleDef* rule : c.rules_for_form(id)) {
    auto check = parse_stored_rule(rule->id, rule->document, parsed.value());
    if (!check.ok()) {
      return error(codes::kInvalidDefinition,
                   "this version would break rule " + rule->id + ": " + check.error().message);
    }
  }
  for (const SlaPolicyDef* policy : c.sla_policies_for_form(id)) {
    auto check = parse_sla_policy(policy->id, policy->document, parsed.value());
    if (!check.ok()) {
      return error(codes::kInvalidDefinition, "this version would break SLA policy " + policy->id +
                                                  ": " + check.error().message);
    }
  }
  for (const auto& print_id : c.print_template_ids()) {
    const PrintTemplateDef* print = c.print_template(print_id);
    if (print->form_id != id) continue;
    auto check = parse_print_template(print_id, print->document, parsed.value());
    if (!check.ok()) {
      return error(codes::kInvalidDefinition, "this version would break print template " +
                                                  print_id + ": " + check.error().message);
    }
  }
  // And a dashboard's widgets still count by select fields: a widget left without its field
  // would answer an error on every wall screen showing it.
  for (const auto& dashboard_id : c.dashboard_ids()) {
    if (auto e = check_widget_fields(c, *c.dashboard(dashboard_id), &parsed.value())) {
      return error(codes::kInvalidDefinition,
                   "this version would break dashboard " + dashboard_id + ": " + e->message);
    }
  }
  uint64_t version = current ? current->version + 1 : 1;
  return std::optional<DomainEvent>(
      published(event_types::kFormPublished, id, version, doc, 0, actor, now_us));
}

namespace {

template <typename Parse, typename Current>
Result<std::optional<DomainEvent>> publish_on_form(const Catalog& c, std::string_view id,
                                                   const Value& document, const char* what,
                                                   const char* type, Parse parse, Current current,
                                                   const std::string& actor, int64_t now_us) {
  if (!valid_id(id)) return bad_id(what, id);
  Value doc = strip_identity(document);
  if (!doc.is_object())
    return error(codes::kInvalidDefinition, std::string(what) + ": must be a JSON object");
  if (auto e = control_character_in_document(doc, what)) return *e;
  std::string form_id = doc.string_or("form");
  const FormDef* form = c.form(form_id);
  if (!form) {
    return error(codes::kInvalidDefinition,
                 std::string(what) + ".form: unknown form \"" + form_id + "\"", "form");
  }
  auto parsed = parse(id, doc, *form);
  if (!parsed.ok()) return parsed.error();
  const auto* existing = current(id);
  if (existing && existing->document == doc) return std::optional<DomainEvent>();
  uint64_t version = existing ? existing->version + 1 : 1;
  return std::optional<DomainEvent>(
      published(type, id, version, doc, form->version, actor, now_us));
}

// The same for a definition of no form (a calendar, a dashboard).
template <typename Parse, typename Current>
Result<std::optional<DomainEvent>> publish_standalone(std::string_view id, const Value& document,
                                                      const char* what, const char* type,
                                                      Parse parse, Current current,
                                                      const std::string& actor, int64_t now_us) {
  if (!valid_id(id)) return bad_id(what, id);
  Value doc = strip_identity(document);
  if (auto e = control_character_in_document(doc, what)) return *e;
  auto parsed = parse(id, doc);
  if (!parsed.ok()) return parsed.error();
  const auto* existing = current(id);
  if (existing && existing->document == doc) return std::optional<DomainEvent>();
  uint64_t version = existing ? existing->version + 1 : 1;
  return std::optional<DomainEvent>(published(type, id, version, doc, 0, actor, now_us));
}

}  // namespace

Result<std::optional<DomainEvent>> decide_publish_flow(const Catalog& c, std::string_view id,
                                                       const Value& document,
                                                       const std::string& actor, int64_t now_us) {
  return publish_on_form(
      c, id, document, "flow", event_types::kFlowPublished, parse_flow,
      [&](std::string_view i) { return c.flow(i); }, actor, now_us);
}

bool form_has_node(const Catalog& c, std::string_view form_id, std::string_view node,
                   FlowVersions versions) {
  for (const auto& flow_id : c.flow_ids()) {
    const FlowDef* latest = c.flow(flow_id);
    if (!form_id.empty() && latest->form_id != form_id) continue;
    const uint64_t first = versions == FlowVersions::kEvery ? 1 : latest->version;
    for (uint64_t version = first; version <= latest->version; ++version) {
      const FlowDef* flow = c.flow(flow_id, version);
      if (flow && flow->node(node)) return true;
    }
  }
  return false;
}

Result<RuleDef> parse_rule_in_catalog(const Catalog& c, std::string_view id, const Value& document,
                                      const FormDef& form) {
  auto parsed = parse_rule(id, document, form);
  if (!parsed.ok()) return parsed;
  // A node no flow of the form has would never be entered: the rule would never fire, silently.
  const RuleTrigger& trigger = parsed.value().trigger;
  if ((trigger.kind == RuleTrigger::Kind::kNodeEntered ||
       trigger.kind == RuleTrigger::Kind::kIdle) &&
      !form_has_node(c, form.id, trigger.node)) {
    return error(codes::kInvalidDefinition, "rule.trigger.node: no flow of form " + form.id +
                                                " has a node \"" + trigger.node + "\"");
  }
  return parsed;
}

Result<std::optional<DomainEvent>> decide_publish_rule(const Catalog& c, std::string_view id,
                                                       const Value& document,
                                                       const std::string& actor, int64_t now_us) {
  auto parse = [&c](std::string_view i, const Value& doc, const FormDef& form) {
    return parse_rule_in_catalog(c, i, doc, form);
  };
  return publish_on_form(
      c, id, document, "rule", event_types::kRulePublished, parse,
      [&](std::string_view i) { return c.rule(i); }, actor, now_us);
}

Result<std::optional<DomainEvent>> decide_publish_calendar(const Catalog& c, std::string_view id,
                                                           const Value& document,
                                                           const std::string& actor,
                                                           int64_t now_us) {
  return publish_standalone(
      id, document, "calendar", event_types::kCalendarPublished, parse_calendar,
      [&](std::string_view i) { return c.calendar(i); }, actor, now_us);
}

Result<std::optional<DomainEvent>> decide_publish_sla_policy(const Catalog& c, std::string_view id,
                                                             const Value& document,
                                                             const std::string& actor,
                                                             int64_t now_us) {
  auto parse = [&c](std::string_view i, const Value& doc,
                    const FormDef& form) -> Result<SlaPolicyDef> {
    auto p = parse_sla_policy(i, doc, form);
    if (!p.ok()) return p;
    if (!c.calendar(p.value().calendar_id)) {
      return error(codes::kInvalidDefinition,
                   "sla_policy.calendar: unknown calendar \"" + p.value().calendar_id + "\"");
    }
    auto known_node = [&](const std::string& node) { return form_has_node(c, form.id, node); };
    for (const auto& [node, limit] : p.value().node_limits) {
      if (!known_node(node)) {
        return error(
            codes::kInvalidDefinition,
            "sla_policy.node_limits." + node + ": no flow of form " + form.id + " has this node");
      }
    }
    for (const auto& node : p.value().pause_nodes) {
      if (!known_node(node)) {
        return error(codes::kInvalidDefinition, "sla_policy.pause_nodes: no flow of form " +
                                                    form.id + " has node \"" + node + "\"");
      }
    }
    return p;
  };
  return publish_on_form(
      c, id, document, "sla_policy", event_types::kSlaPolicyPublished, parse,
      [&](std::string_view i) { return c.sla_policy(i); }, actor, now_us);
}

Result<std::optional<DomainEvent>> decide_publish_print_template(const Catalog& c,
                                                                 std::string_view id,
                                                                 const Value& document,
                                                                 const std::string& actor,
                                                                 int64_t now_us) {
  return publish_on_form(
      c, id, document, "print_template", event_types::kPrintTemplatePublished, parse_print_template,
      [&](std::string_view i) { return c.print_template(i); }, actor, now_us);
}

bool is_select_field(const Catalog& c, std::string_view form, std::string_view field,
                     const FormDef* replacing) {
  auto is_select = [&](const FormDef& f) {
    const FieldDef* d = f.field(field);
    return d && d->type == FieldType::kSelect;
  };
  if (replacing && (form.empty() || form == replacing->id) && is_select(*replacing)) return true;
  for (const std::string& form_id : c.form_ids()) {
    if (!form.empty() && form_id != form) continue;
    if (replacing && form_id == replacing->id) continue;
    if (is_select(*c.form(form_id))) return true;
  }
  return false;
}

Result<std::optional<DomainEvent>> decide_publish_dashboard(const Catalog& c, std::string_view id,
                                                            const Value& document,
                                                            const std::string& actor,
                                                            int64_t now_us) {
  auto parse = [&c](std::string_view i, const Value& doc) -> Result<DashboardDef> {
    auto parsed = parse_dashboard(i, doc);
    if (!parsed.ok()) return parsed;
    if (auto e = check_widget_fields(c, parsed.value(), nullptr)) return *e;
    // The backlog is the tickets open now: days or buckets on its widget would say otherwise.
    // Checked when put: a stored widget keeps what it had (and is answered as now).
    const auto& widgets = parsed.value().widgets;
    for (size_t k = 0; k < widgets.size(); ++k) {
      if (widgets[k].report == "backlog" && (!widgets[k].bucket.empty() || widgets[k].days)) {
        return def_error(
            "dashboard.widgets[" + std::to_string(k) + "]." + (widgets[k].days ? "days" : "bucket"),
            "the backlog counts the tickets open now: it takes no days or bucket");
      }
    }
    return parsed;
  };
  return publish_standalone(
      id, document, "dashboard", event_types::kDashboardPublished, parse,
      [&](std::string_view i) { return c.dashboard(i); }, actor, now_us);
}

Result<std::optional<DomainEvent>> decide_change_settings(const Catalog& c, const Value& document,
                                                          const std::string& actor,
                                                          int64_t now_us) {
  Value doc = strip_identity(document);
  if (auto e = control_character_in_document(doc, "settings")) return *e;
  auto parsed = parse_settings(doc);
  if (!parsed.ok()) return parsed.error();
  const CompanySettings& current = c.settings();
  if (current.version && current.document == doc) return std::optional<DomainEvent>();
  return std::optional<DomainEvent>(published(event_types::kSettingsChanged, kSettingsId,
                                              current.version + 1, doc, 0, actor, now_us));
}

Result<DomainEvent> decide_create_user(const Catalog& c, const User& user,
                                       const std::string& password_hash, const std::string& actor,
                                       int64_t now_us) {
  if (!valid_id(user.id)) {
    return error(
        codes::kInvalidValue,
        "user id must be 1-64 letters, digits, '_', '-' or '.', other than \".\" and \"..\"", "id");
  }
  if (c.user(user.id)) return error(codes::kConflict, "user \"" + user.id + "\" exists", "id");
  // Ids are typed into person fields and transfers: "Li" beside "li" would be taken for her.
  for (const User* other : c.users()) {
    if (ascii_lowercase(other->id) == ascii_lowercase(user.id)) {
      return error(codes::kConflict,
                   "user \"" + other->id + "\" exists; ids may not differ by case alone", "id");
    }
  }
  Result<std::string> name = user_member("name", user.name);
  if (!name.ok()) return name.error();
  Result<std::string> phone = user_member("phone", user.phone);
  if (!phone.ok()) return phone.error();
  Result<std::string> email = user_member("email", user.email);
  if (!email.ok()) return email.error();
  auto roles = account_roles(user.roles);
  if (!roles.ok()) return roles.error();
  Object data = {{"id", Value(user.id)},
                 {"name", Value(std::move(name.value()))},
                 {"roles", Value(std::move(roles.value()))},
                 {"phone", Value(std::move(phone.value()))},
                 {"email", Value(std::move(email.value()))},
                 {"password_hash", Value(password_hash)}};
  return DomainEvent{event_types::kUserCreated, Value(std::move(data)), actor, now_us,
                     std::nullopt};
}

Result<std::vector<DomainEvent>> decide_change_user(const Catalog& c, std::string_view id,
                                                    const UserChanges& changes,
                                                    const std::string& actor, int64_t now_us,
                                                    const std::string& kept_session) {
  const User* u = c.user(id);
  if (!u) return error(codes::kNotFound, "no user \"" + std::string(id) + "\"");
  Object updated{{"id", Value(std::string(id))}};
  for (auto [key, now, wanted] :
       {std::tuple{"name", &u->name, &changes.name}, std::tuple{"phone", &u->phone, &changes.phone},
        std::tuple{"email", &u->email, &changes.email}}) {
    if (!*wanted) continue;
    Result<std::string> stored = user_member(key, **wanted);
    if (!stored.ok()) return stored.error();
    if (stored.value() == *now) continue;
    updated.emplace_back(key, Value(std::move(stored.value())));
  }
  if (changes.roles && *changes.roles != u->roles) {
    auto roles = account_roles(*changes.roles);
    if (!roles.ok()) return roles.error();
    updated.emplace_back("roles", Value(std::move(roles.value())));
  }
  if (changes.disabled && *changes.disabled && id == actor) {
    return error(codes::kInvalidValue, "nobody disables their own account", "disabled");
  }
  std::vector<DomainEvent> out;
  auto add = [&](const char* type, Object data) {
    out.push_back({type, Value(std::move(data)), actor, now_us, std::nullopt});
  };
  if (updated.size() > 1) add(event_types::kUserUpdated, std::move(updated));
  if (changes.password_hash) {
    Object data{{"id", Value(std::string(id))}, {"password_hash", Value(*changes.password_hash)}};
    if (!kept_session.empty()) data.emplace_back("kept_session", Value(kept_session));
    add(event_types::kPasswordChanged, std::move(data));
  }
  if (changes.disabled && *changes.disabled != u->disabled) {
    add(*changes.disabled ? event_types::kUserDisabled : event_types::kUserEnabled,
        {{"id", Value(std::string(id))}});
  }
  return out;
}

const User* active_user(const Catalog& c, std::string_view id) {
  const User* u = c.user(id);
  return u && !u->disabled ? u : nullptr;
}

bool may_hold_todo(const User& u) {
  return !u.disabled && std::find(u.roles.begin(), u.roles.end(), kAuditorRole) == u.roles.end();
}

bool active_user_in_role(const Catalog& c, std::string_view id, std::string_view role) {
  const User* u = active_user(c, id);
  return u && (role.empty() || std::find(u->roles.begin(), u->roles.end(), role) != u->roles.end());
}

}  // namespace ticketd
