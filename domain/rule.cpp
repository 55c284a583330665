#include "domain/rule.h"

#include <set>

#include "domain/time_format.h"

namespace ticketd {
namespace {

DomainError def_error(const std::string& path, const std::string& message) {
  return error(codes::kInvalidDefinition, path + ": " + message);
}

// Calls `visit(name)` for each {{name}} in text; returns false when one is not closed.
template <typename Visit>
bool template_variables(const std::string& text, Visit visit) {
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    size_t end = text.find("}}", pos + 2);
    if (end == std::string::npos) return false;
    std::string name = text.substr(pos + 2, end - pos - 2);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    visit(name, pos, end + 2);
    pos = end + 2;
  }
  return true;
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

}  // namespace

Result<RuleDef> parse_rule(std::string_view id, const Value& doc, const FormDef& form) {
  RuleDef rule;
  rule.id = id;
  rule.document = doc;
  if (!doc.is_object()) return def_error("rule", "must be a JSON object");
  static const std::set<std::string> kKnown = {
      "name", "form", "trigger", "when", "actions", "enabled", "description", "id", "version"};
  for (const auto& [k, v] : doc.as_object()) {
    if (!kKnown.count(k)) return def_error("rule." + k, "unknown property");
  }
  rule.name = doc.string_or("name");
  if (rule.name.empty()) return def_error("rule.name", "a non-empty string is required");
  rule.form_id = doc.string_or("form");
  if (rule.form_id != form.id)
    return def_error("rule.form", "must name the form \"" + form.id + "\"");
  if (const Value* e = doc.find("enabled")) {
    if (!e->is_bool()) return def_error("rule.enabled", "must be true or false");
    rule.enabled = e->as_bool();
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
      act.kind = RuleAction::Kind::kSetField;
      act.field = a.string_or("field");
      const FieldDef* f = form.field(act.field);
      if (!f)
        return def_error(path + ".field", "unknown field \"" + act.field + "\" in form " + form.id);
      // Person, attachment and relation values depend on the world at run time; everything else is
      // checked now so a rule can never write a value its form would refuse.
      Lookups accept_all{[](std::string_view) { return true; },
                         [](std::string_view) { return true; },
                         [](std::string_view) { return true; }};
      auto v = check_field_value(*f, a["value"], accept_all);
      if (!v.ok()) return def_error(path + ".value", v.error().message);
      act.value = v.value();
    } else if (kind == "notify") {
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
      if (act.to_kind == "field" && !form.field(act.to)) {
        return def_error(path + ".to.field", "unknown field \"" + act.to + "\" in form " + form.id);
      }
      act.channel = a.string_or("channel");
      static const std::set<std::string> kChannels = {"todo", "sms", "email", "webhook"};
      if (!kChannels.count(act.channel))
        return def_error(path + ".channel", "must be todo, sms, email or webhook");
      act.text = a.string_or("template");
      std::string bad;
      bool closed = template_variables(act.text, [&](const std::string& name, size_t, size_t) {
        bool ok = name == "ticket.id" || name == "ticket.node" ||
                  (name.rfind("fields.", 0) == 0 && form.field(name.substr(7)));
        if (!ok && bad.empty()) bad = name;
      });
      if (!closed)
        return def_error(path + ".template", "a template variable {{… is not closed with }}");
      if (!bad.empty())
        return def_error(path + ".template", "unknown template variable {{" + bad + "}}");
    } else if (kind == "close") {
      act.kind = RuleAction::Kind::kClose;
    } else {
      return def_error(path + ".type", "unknown action \"" + kind + "\"");
    }
    rule.actions.push_back(std::move(act));
  }
  return rule;
}

std::string render_template(const std::string& text, const TemplateValues& values) {
  std::string out;
  size_t copied = 0;
  template_variables(text, [&](const std::string& name, size_t begin, size_t end) {
    out.append(text, copied, begin - copied);
    copied = end;
    if (name == "ticket.id") {
      out += values.ticket_id;
    } else if (name == "ticket.node") {
      out += values.node_name;
    } else if (name.rfind("fields.", 0) == 0 && values.fields) {
      for (const auto& [k, v] : *values.fields) {
        if (k == name.substr(7)) out += display(v);
      }
    }
  });
  out.append(text, copied);
  return out;
}

}  // namespace ticketd
