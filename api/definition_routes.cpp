// Forms, flows, rules and the other definitions: published (PUT), read (GET, ?version=), listed.
#include <algorithm>

#include "api/api.h"
#include "api/call.h"
#include "api/ticket_view.h"

namespace ticketd::api {

namespace {

// The definition kinds of the API, by their collection name. One table, so a new kind is one
// entry here and one in the catalog.
struct DefinitionFound {
  const Value* document = nullptr;
  uint64_t version = 0;
};

template <typename Def>
DefinitionFound found(const Def* def) {
  return def ? DefinitionFound{&def->document, def->version} : DefinitionFound{};
}

DefinitionFound find_definition(const Catalog& c, const std::string& kind, const std::string& id,
                                uint64_t version) {
  if (kind == "forms") return found(c.form(id, version));
  if (kind == "flows") return found(c.flow(id, version));
  if (kind == "rules") return found(c.rule(id, version));
  if (kind == "calendars") return found(c.calendar(id, version));
  if (kind == "print-templates") return found(c.print_template(id, version));
  if (kind == "dashboards") return found(c.dashboard(id, version));
  if (kind == "settings") return found(version ? c.settings_at(version) : &c.settings());
  return found(c.sla_policy(id, version));
}

std::vector<std::string> definition_ids(const Catalog& c, const std::string& kind) {
  if (kind == "forms") return c.form_ids();
  if (kind == "flows") return c.flow_ids();
  if (kind == "rules") return c.rule_ids();
  if (kind == "calendars") return c.calendar_ids();
  if (kind == "print-templates") return c.print_template_ids();
  if (kind == "dashboards") return c.dashboard_ids();
  return c.sla_policy_ids();
}

Result<std::optional<DomainEvent>> decide_publish(const Catalog& c, const std::string& kind,
                                                  const std::string& id, const Value& document,
                                                  const std::string& actor, int64_t now) {
  if (kind == "forms") return decide_publish_form(c, id, document, actor, now);
  if (kind == "flows") return decide_publish_flow(c, id, document, actor, now);
  if (kind == "rules") return decide_publish_rule(c, id, document, actor, now);
  if (kind == "calendars") return decide_publish_calendar(c, id, document, actor, now);
  if (kind == "print-templates") return decide_publish_print_template(c, id, document, actor, now);
  if (kind == "dashboards") return decide_publish_dashboard(c, id, document, actor, now);
  if (kind == "settings") return decide_change_settings(c, document, actor, now);
  return decide_publish_sla_policy(c, id, document, actor, now);
}

// "forms" -> "form", "sla-policies" -> "sla-policy": the stream prefix and the error noun.
std::string singular(const std::string& kind) {
  if (kind.ends_with("ies")) return kind.substr(0, kind.size() - 3) + "y";
  return kind.substr(0, kind.size() - 1);
}

}  // namespace

void Api::put_definition(const CallPtr& call, const std::string& kind, const std::string& id) {
  if (!call->actor.admin)
    return call->fail(403, codes::kForbidden, "only administrators change definitions");
  if (!call->parse_body()) return;
  // If-Match (the ETag of a GET) publishes only over that version: two administrators editing
  // one flow do not silently undo each other's changes. 0 matches a definition not yet put.
  std::optional<uint64_t> if_match;
  bool if_match_any = false;
  if (!call->if_match(&if_match, &if_match_any)) return;
  // A document may carry the id and version its GET gave (they are not stored); another id is a
  // document meant for another definition.
  if (const Value* body_id = call->body.find("id"); body_id && *body_id != Value(id)) {
    const std::string message =
        kind == "settings"  // one document, with no id in its URL
            ? "the settings' id is \"" + id + "\", not " + body_id->to_json()
            : "the document's id " + body_id->to_json() + " is not " + id + ", its URL's";
    return call->fail(422, codes::kInvalidValue, message, "id");
  }
  int64_t now = now_us();
  uint64_t current = 0;
  bool exists = false;  // the settings are, from the start (the defaults, at version 0)
  auto decided = model_.read([&](const projections::ReadModel::View& v) {
    DefinitionFound found = find_definition(v.catalog, kind, id, 0);
    current = found.version;
    exists = found.document != nullptr;
    return decide_publish(v.catalog, kind, id, call->body, call->actor.id, now);
  });
  if (if_match && *if_match != current)
    return call->fail_conflict(singular(kind) + " " + id, current);
  if (if_match_any && !exists) return call->fail_not_yet(singular(kind) + " " + id);
  if (!decided.ok()) return call->fail(decided.error());
  if (kind == "rules") {
    // The rule is well-formed (decided above); whether its lookups can be answered depends on
    // this server's configuration, not the catalog's.
    const Array& actions = call->body["actions"].as_array();
    for (size_t i = 0; i < actions.size(); ++i) {
      std::string source = actions[i].string_or("source");
      if (actions[i].string_or("type") != "lookup" || options_.lookup_sources.count(source)) {
        continue;
      }
      std::string known;
      for (const auto& name : options_.lookup_sources) known += (known.empty() ? "" : ", ") + name;
      return call->fail(
          422, codes::kInvalidDefinition,
          "rule.actions[" + std::to_string(i) + "].source: no lookup source \"" + source +
              "\" on this server (its --lookup-sources: " + (known.empty() ? "none" : known) + ")");
    }
  }
  std::string stream = singular(kind) + "-" + id;
  if (!decided.value()) {  // identical to the current version: nothing to publish
    return get_definition(call, kind, id);
  }
  uint64_t version = static_cast<uint64_t>((*decided.value()).data["version"].as_number());
  Value document = (*decided.value()).data["document"];
  append_and_answer(call, stream, storage::ExpectedVersion::Exact(version - 1), {*decided.value()},
                    version == 1 ? 201 : 200, [id, version, document](JsonWriter& w) {
                      write_definition(w, id, version, document);
                    });
}

void Api::get_definition(const CallPtr& call, const std::string& kind, const std::string& id) {
  uint64_t version = 0;  // 0: the latest
  if (!call->version_param(&version)) return;
  uint64_t got = 0;
  JsonWriter w;
  bool ok = model_.read([&](const projections::ReadModel::View& v) {
    DefinitionFound def = find_definition(v.catalog, kind, id, version);
    if (def.document) write_definition(w, id, got = def.version, *def.document);
    return def.document != nullptr;
  });
  if (!ok)
    return call->fail(404, codes::kNotFound,
                      "no " + singular(kind) + " \"" + id + "\"" + at_version(version));
  call->set_etag(got);
  call->ok(200, w.take());
}

void Api::list_definitions(const CallPtr& call, const std::string& kind) {
  IdPage page;
  if (!page.parse(*call)) return;
  JsonWriter w;
  model_.read([&](const projections::ReadModel::View& v) {
    auto same = [](const std::string& id) -> const std::string& { return id; };
    page.write(w, definition_ids(v.catalog, kind), same, [&](const std::string& id) {
      DefinitionFound def = find_definition(v.catalog, kind, id, 0);
      write_definition(w, id, def.version, *def.document);
    });
    return 0;
  });
  call->ok(200, w.take());
}

}  // namespace ticketd::api
