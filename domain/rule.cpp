#include "domain/rule.h"

#include <algorithm>
#include <set>

#include "domain/definition_error.h"
#include "domain/time_format.h"

namespace ticketd {
namespace {

// Calls `visit(name, begin, end)` for each {{name}} in text (the name without the spaces around
// it, a view into text); returns false when one is not closed.
template <typename Visit>
bool template_variables(std::string_view text, Visit visit) {
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string_view::npos) {
    size_t end = text.find("}}", pos + 2);
    if (end == std::string_view::npos) return false;
    std::string_view name = text.substr(pos + 2, end - pos - 2);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    visit(name, pos, end + 2);
    pos = end + 2;
  }
  return true;
}

// What a template may say beyond the ticket's id, node and fields.
struct TemplateScope {
  bool comment = false;      // {{comment.text}}: a rule triggered by a reply
  bool portal_code = false;  // {{ticket.portal_code}}: a message (not a lookup sent elsewhere)
};

// The first {{variable}} of `text` a rule of `form` cannot fill, as an error at `path`.
std::optional<DomainError> check_template(const std::string& text, const FormDef& form,
                                          const std::string& path, TemplateScope scope = {}) {
  std::string bad;
  bool closed = template_variables(text, [&](std::string_view name, size_t, size_t) {
    bool ok = name == "ticket.id" || name == "ticket.node" || name == "ticket.created_at" ||
              name == "sla.due_at" || name == "company.name" ||
              (name == "comment.text" && scope.comment) ||
              (name == "ticket.portal_code" && scope.portal_code) ||
              (name.starts_with("fields.") && form.field(name.substr(7)));
    if (!ok && bad.empty()) bad = std::string(name);
  });
  if (!closed) return def_error(path, "a template variable {{… is not closed with }}");
  if (bad == "comment.text") {
    return def_error(
        path,
        "{{comment.text}} is filled only for a rule triggered by \"replied\" or \"reopened\"");
  }
  if (bad == "ticket.portal_code") {
    return def_error(path, "{{ticket.portal_code}} goes in notifications only");
  }
  if (!bad.empty()) return def_error(path, "unknown template variable {{" + bad + "}}");
  return std::nullopt;
}

std::optional<DomainError> parse_lookup(const Value& a, const FormDef& form,
                                        const std::string& path, RuleAction* act) {
  if (auto e = unknown_property(a, {"type", "source", "path", "query", "fill"}, path)) return *e;
  act->source = a.string_or("source");
  if (!is_lookup_source_name(act->source)) {
    return def_error(path + ".source",
                     "the name of a lookup source (letters, digits, _ and -), as the server's "
                     "--lookup-sources names it");
  }
  if (const Value* p = a.find("path")) {
    if (!p->is_string()) return def_error(path + ".path", "must be a string");
    act->path = p->as_string();
    // Templates may stand for whole segments or parts of them ("/customers/{{fields.phone}}");
    // their values are percent-encoded when the rule runs.
    if (auto e = check_template(act->path, form, path + ".path")) return e;
    std::string literal;  // the path without its templates
    size_t copied = 0;
    template_variables(act->path, [&](std::string_view, size_t begin, size_t end) {
      literal.append(act->path, copied, begin - copied);
      copied = end;
    });
    literal.append(act->path, copied);
    if (!act->path.empty() &&
        (act->path[0] != '/' || literal.find_first_of("?#{} ") != std::string::npos)) {
      return def_error(path + ".path",
                       "must start with / and hold no ?, #, space or brace outside its "
                       "{{templates}} (query parameters go in query)");
    }
  }
  if (const Value* q = a.find("query")) {
    if (!q->is_object()) return def_error(path + ".query", "must be an object of templates");
    for (const auto& [name, text] : q->as_object()) {
      if (!text.is_string() || name.empty()) {
        return def_error(path + ".query." + name, "must be a non-empty name and a template");
      }
      if (auto e = check_template(text.as_string(), form, path + ".query." + name)) return e;
      act->query.emplace_back(name, text.as_string());
    }
  }
  const Value& fill = a["fill"];
  if (!fill.is_object() || fill.as_object().empty()) {
    return def_error(path + ".fill",
                     "a non-empty object is required: field -> JSON pointer into the answer");
  }
  for (const auto& [field, pointer] : fill.as_object()) {
    const FieldDef* f = form.field(field);
    if (!f) return def_error(path + ".fill." + field, "unknown field in form " + form.id);
    if (f->type == FieldType::kAttachment || f->type == FieldType::kImage) {
      return def_error(path + ".fill." + field,
                       "an attachment or image field cannot be filled by a lookup");
    }
    if (!pointer.is_string() ||
        (!pointer.as_string().empty() && pointer.as_string().front() != '/')) {
      return def_error(path + ".fill." + field,
                       "must be a JSON pointer into the answer, like \"/customer/level\"");
    }
    act->fill.emplace_back(field, pointer.as_string());
  }
  return std::nullopt;
}

std::string display(const Value& v) {
  if (v.is_string()) return v.as_string();
  if (v.is_null()) return "";
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v.as_array()) {
      if (!out.empty()) out += "、";
      out += display(item);
    }
    return out;
  }
  return v.to_json();
}

Result<RuleDef> parse_rule(std::string_view id, const Value& doc, const FormDef& form,
                           bool stored) {
  RuleDef rule;
  rule.id = id;
  rule.document = doc;
  if (!doc.is_object()) return def_error("rule", "must be a JSON object");
  if (auto e = unknown_property(doc,
                                {"name", "form", "trigger", "when", "actions", "enabled",
                                 "time_zone", "description", "id", "version"},
                                "rule"))
    return *e;
  rule.name = doc.string_or("name");
  if (rule.name.empty()) return def_error("rule.name", "a non-empty string is required");
  rule.form_id = doc.string_or("form");
  if (rule.form_id != form.id)
    return def_error("rule.form", "must name the form \"" + form.id + "\"");
  if (const Value* e = doc.find("enabled")) {
    if (!e->is_bool()) return def_error("rule.enabled", "must be true or false");
    rule.enabled = e->as_bool();
  }
  if (const Value* zone = doc.find("time_zone")) {
    if (!zone->is_string())
      return def_error("rule.time_zone", "an IANA time zone name like Asia/Shanghai");
    rule.time_zone = zone->as_string();
    rule.zone = find_time_zone(rule.time_zone);
    if (!rule.zone && !stored)
      return def_error("rule.time_zone", unknown_time_zone(rule.time_zone));
  }

  const Value& t = doc["trigger"];
  if (!t.is_object()) return def_error("rule.trigger", "an object is required");
  std::string type = t.string_or("type");
  auto& trig = rule.trigger;
  if (type == "created") {
    trig.kind = RuleTrigger::Kind::kCreated;
  } else if (type == "field_changed") {
    trig.kind = RuleTrigger::Kind::kFieldChanged;
    trig.field = t.string_or("field");
    if (!form.field(trig.field))
      return def_error("rule.trigger.field",
                       "unknown field \"" + trig.field + "\" in form " + form.id);
  } else if (type == "node_entered" || type == "idle") {
    trig.kind = type == "idle" ? RuleTrigger::Kind::kIdle : RuleTrigger::Kind::kNodeEntered;
    trig.node = t.string_or("node");
    if (trig.node.empty()) return def_error("rule.trigger.node", "a node id is required");
    if (type == "idle") {
      auto d = parse_duration(t.string_or("after"));
      if (!d || *d < 1000000)
        return def_error("rule.trigger.after",
                         "a duration of at least 1s is required, like \"30m\"");
      trig.after_us = *d;
    }
  } else if (type == "flow_ended") {
    trig.kind = RuleTrigger::Kind::kFlowEnded;
  } else if (type == "rated") {
    trig.kind = RuleTrigger::Kind::kRated;
  } else if (type == "reopened") {
    trig.kind = RuleTrigger::Kind::kReopened;
  } else if (type == "replied") {
    trig.kind = RuleTrigger::Kind::kReplied;
    trig.by = t.string_or("by");
    if (trig.by != "customer" && trig.by != "staff") {
      return def_error("rule.trigger.by",
                       "\"customer\" (a reply through the portal) or \"staff\" (a public reply)");
    }
  } else if (type == "sla_warning" || type == "sla_breached") {
    trig.kind =
        type == "sla_warning" ? RuleTrigger::Kind::kSlaWarning : RuleTrigger::Kind::kSlaBreached;
    trig.target = t.string_or("target");
    static const std::set<std::string> kTargets = {"", "first_response", "next_response",
                                                   "resolution", "node"};
    if (!kTargets.count(trig.target)) {
      return def_error("rule.trigger.target",
                       "one of first_response, next_response, resolution, node (or none: any)");
    }
  } else {
    return def_error("rule.trigger.type", "unknown trigger \"" + type + "\"");
  }

  // What each trigger takes: anything else is a mistake (a "node" on a created trigger).
  std::optional<DomainError> extra;
  switch (trig.kind) {
    case RuleTrigger::Kind::kCreated:
    case RuleTrigger::Kind::kFlowEnded:
    case RuleTrigger::Kind::kRated:
    case RuleTrigger::Kind::kReopened:
      extra = unknown_property(t, {"type"}, "rule.trigger");
      break;
    case RuleTrigger::Kind::kFieldChanged:
      extra = unknown_property(t, {"type", "field"}, "rule.trigger");
      break;
    case RuleTrigger::Kind::kReplied:
      extra = unknown_property(t, {"type", "by"}, "rule.trigger");
      break;
    case RuleTrigger::Kind::kNodeEntered:
      extra = unknown_property(t, {"type", "node"}, "rule.trigger");
      break;
    case RuleTrigger::Kind::kIdle:
      extra = unknown_property(t, {"type", "node", "after"}, "rule.trigger");
      break;
    case RuleTrigger::Kind::kSlaWarning:
    case RuleTrigger::Kind::kSlaBreached:
      extra = unknown_property(t, {"type", "target"}, "rule.trigger");
      break;
  }
  if (extra && !stored) return *extra;

  if (const Value* w = doc.find("when")) {
    auto c = parse_condition(*w, form, "rule.when");
    if (!c.ok()) return c.error();
    rule.when = std::move(c.value());
  }

  const Value& actions = doc["actions"];
  if (!actions.is_array() || actions.as_array().empty())
    return def_error("rule.actions", "a non-empty array is required");
  for (size_t i = 0; i < actions.as_array().size(); ++i) {
    const Value& a = actions.as_array()[i];
    std::string path = "rule.actions[" + std::to_string(i) + "]";
    RuleAction act;
    std::string kind = a.string_or("type");
    if (kind == "set_field") {
      if (auto e = unknown_property(a, {"type", "field", "value"}, path); e && !stored) return *e;
      act.kind = RuleAction::Kind::kSetField;
      act.field = a.string_or("field");
      const FieldDef* f = form.field(act.field);
      if (!f)
        return def_error(path + ".field", "unknown field \"" + act.field + "\" in form " + form.id);
      // Person, attachment and relation values depend on the world at run time; everything else is
      // checked now so a rule can never write a value its form would refuse.
      Lookups accept_all{[](std::string_view, std::string_view) { return true; },
                         // any upload, taken for a picture until the rule runs
                         [](std::string_view) { return std::string("image/png"); },
                         [f](std::string_view) {  // a ticket of the form the field links to
                           return f->relation_form.empty() ? std::string("any") : f->relation_form;
                         }};
      auto v = check_field_value(*f, a["value"], accept_all);
      if (v.ok()) {
        act.value = v.value();
      } else if (stored) {  // stored when the checks were looser: it stays as it was
        act.value = a["value"];
      } else {
        return def_error(path + ".value", v.error().message);
      }
    } else if (kind == "notify") {
      if (auto e = unknown_property(a, {"type", "to", "channel", "template"}, path); e && !stored)
        return *e;
      act.kind = RuleAction::Kind::kNotify;
      const Value& to = a["to"];
      if (!to.is_object() || to.as_object().size() != 1 || !to.as_object()[0].second.is_string()) {
        return def_error(path + ".to", "must be {\"role\":…}, {\"user\":…} or {\"field\":…}");
      }
      act.to_kind = to.as_object()[0].first;
      act.to = to.as_object()[0].second.as_string();
      if (act.to_kind != "role" && act.to_kind != "user" && act.to_kind != "field") {
        return def_error(path + ".to", "must be {\"role\":…}, {\"user\":…} or {\"field\":…}");
      }
      if (act.to.empty() && !stored) {
        return def_error(path + ".to." + act.to_kind,
                         "a non-empty " + act.to_kind + " is required");
      }
      if (act.to_kind == "field" && !form.field(act.to)) {
        return def_error(path + ".to.field", "unknown field \"" + act.to + "\" in form " + form.id);
      }
      act.channel = a.string_or("channel");
      static const std::set<std::string> kChannels = {"todo", "sms", "email", "webhook"};
      if (!kChannels.count(act.channel))
        return def_error(path + ".channel", "must be todo, sms, email or webhook");
      // A to-do waits in someone's inbox: a role's, a user's, or the person a field holds.
      if (act.channel == "todo" && act.to_kind == "field" && !stored &&
          form.field(act.to)->type != FieldType::kPerson) {
        return def_error(path + ".to.field", "a to-do is for a person, and field \"" + act.to +
                                                 "\" is not of type person");
      }
      const Value& text = a["template"];
      // An empty message would reach its recipient as a blank to-do, SMS or email.
      if ((!text.is_string() || text.as_string().empty()) && !stored)
        return def_error(path + ".template", "a non-empty string is required");
      act.text = a.string_or("template");
      const TemplateScope scope{
          trig.kind == RuleTrigger::Kind::kReplied || trig.kind == RuleTrigger::Kind::kReopened,
          true};
      if (auto e = check_template(act.text, form, path + ".template", scope)) return *e;
    } else if (kind == "close") {
      if (auto e = unknown_property(a, {"type"}, path); e && !stored) return *e;
      act.kind = RuleAction::Kind::kClose;
    } else if (kind == "lookup") {
      act.kind = RuleAction::Kind::kLookup;
      if (auto e = parse_lookup(a, form, path, &act)) return *e;
    } else {
      return def_error(path + ".type", "unknown action \"" + kind + "\"");
    }
    rule.actions.push_back(std::move(act));
  }
  auto says = [](const std::string& text) {
    bool found = false;
    template_variables(
        text, [&](std::string_view name, size_t, size_t) { found |= name == "sla.due_at"; });
    return found;
  };
  for (const RuleAction& act : rule.actions) {
    rule.says_sla_due |= says(act.text) || says(act.path);
    for (const auto& [name, text] : act.query) rule.says_sla_due |= says(text);
  }
  return rule;
}

}  // namespace

Result<RuleDef> parse_rule(std::string_view id, const Value& doc, const FormDef& form) {
  return parse_rule(id, doc, form, false);
}

Result<RuleDef> parse_stored_rule(std::string_view id, const Value& doc, const FormDef& form) {
  return parse_rule(id, doc, form, true);
}

std::string render_template(const std::string& text, const TemplateValues& values,
                            std::string (*escape)(std::string_view)) {
  std::string out;
  auto put = [&](std::string_view value) {
    if (escape) {
      out += escape(value);
    } else {
      out += value;
    }
  };
  auto put_time = [&](int64_t us) {
    if (us) put(values.zone ? format_local_minute(us, values.zone) : format_rfc3339(us));
  };
  size_t copied = 0;
  template_variables(text, [&](std::string_view name, size_t begin, size_t end) {
    out.append(text, copied, begin - copied);
    copied = end;
    if (name == "ticket.id") {
      put(values.ticket_id);
    } else if (name == "ticket.node") {
      put(values.node_name);
    } else if (name == "comment.text") {
      put(values.comment_text);
    } else if (name == "ticket.portal_code") {
      put(values.portal_code);
    } else if (name == "ticket.created_at") {
      put_time(values.created_at);
    } else if (name == "sla.due_at") {
      put_time(values.sla_due_at);
    } else if (name == "company.name") {
      put(values.company_name);
    } else if (name.starts_with("fields.") && values.fields) {
      const std::string_view key = name.substr(7);
      const FieldDef* f = values.zone && values.form ? values.form->field(key) : nullptr;
      std::string value;  // escaped as a whole: a field holds one value
      for (const auto& [k, v] : *values.fields) {
        if (k != key) continue;
        std::optional<int64_t> time;
        if (f && f->type == FieldType::kDatetime && v.is_string())
          time = parse_rfc3339(v.as_string());
        value += time ? format_local_minute(*time, values.zone) : display(v);
      }
      put(value);
    }
  });
  out.append(text, copied);
  return out;
}

// Written here rather than taken from libcurl (curl_easy_escape) so that the domain stays free of
// I/O libraries: it is a table of 66 characters.
std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

bool is_lookup_source_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

const Value* resolve_pointer(const Value& document, std::string_view pointer) {
  const Value* at = &document;
  while (!pointer.empty()) {
    if (pointer.front() != '/') return nullptr;
    pointer.remove_prefix(1);
    size_t end = std::min(pointer.find('/'), pointer.size());
    std::string token;
    for (size_t i = 0; i < end; ++i) {  // ~1 is '/', ~0 is '~' (RFC 6901, in that order)
      if (pointer[i] == '~' && i + 1 < end && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        token += pointer[++i] == '0' ? '~' : '/';
      } else {
        token += pointer[i];
      }
    }
    pointer.remove_prefix(end);
    if (at->is_object()) {
      at = at->find(token);
    } else if (at->is_array()) {
      bool digits =
          !token.empty() && (token == "0" || token[0] != '0') &&
          std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits || token.size() > 9 || std::stoul(token) >= at->as_array().size()) return nullptr;
      at = &at->as_array()[std::stoul(token)];
    } else {
      return nullptr;
    }
    if (!at) return nullptr;
  }
  return at;
}

Object lookup_fill(const Value& answer, const StringPairs& fill) {
  Object out;
  for (const auto& [field, pointer] : fill) {
    if (const Value* v = resolve_pointer(answer, pointer)) out.emplace_back(field, *v);
  }
  return out;
}

}  // namespace ticketd
