#include "domain/flow.h"

#include <algorithm>
#include <map>
#include <set>

#include "domain/definition_error.h"

namespace ticketd {
namespace {

bool contains(const std::vector<std::string>& list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

// Reads an array of field keys, each of which must exist in the form.
std::optional<DomainError> field_list(const Value& v, const FormDef& form, const std::string& path,
                                      bool allow_star, bool* all, std::vector<std::string>* out) {
  if (!v.is_array()) return def_error(path, "must be an array of field keys");
  for (const auto& item : v.as_array()) {
    if (!item.is_string()) return def_error(path, "must be an array of field keys");
    if (item.as_string() == "*" && allow_star) {
      *all = true;
      continue;
    }
    if (!form.field(item.as_string())) {
      return def_error(path, "unknown field \"" + item.as_string() + "\" in form " + form.id);
    }
    out->push_back(item.as_string());
  }
  return std::nullopt;
}

}  // namespace

std::string_view node_type_name(NodeType type) {
  switch (type) {
    case NodeType::kStart:
      return "start";
    case NodeType::kApproval:
      return "approval";
    case NodeType::kFill:
      return "fill";
    case NodeType::kEnd:
      return "end";
  }
  return "?";
}

bool NodeDef::offers(std::string_view action) const {
  if (action == "confirm") return for_customer() && contains(actions, "approve");
  return contains(actions, action);
}

std::vector<std::string> NodeDef::offered() const {
  std::vector<std::string> out;
  for (const std::string& action : actions) {
    out.push_back(action);
    if (action == "approve" && offers("confirm")) out.emplace_back("confirm");
  }
  return out;
}

bool NodeDef::can_read(std::string_view key) const { return reads_all || contains(readable, key); }
bool NodeDef::can_write(std::string_view key) const {
  return writes_all || contains(writable, key);
}

const NodeDef* FlowDef::node(std::string_view id) const {
  for (const auto& n : nodes) {
    if (n.id == id) return &n;
  }
  return nullptr;
}

const NodeDef& FlowDef::start() const {
  for (const auto& n : nodes) {
    if (n.type == NodeType::kStart) return n;
  }
  return nodes.front();  // parse_flow guarantees a start node
}

const NodeDef* FlowDef::next(std::string_view from, const Object& fields) const {
  for (const auto& e : edges) {
    if (e.from == from && (!e.when || evaluate(*e.when, fields))) return node(e.to);
  }
  return nullptr;
}

namespace {

// `stored`: a flow the log holds, published when the checks were looser; it loads as it was.
Result<FlowDef> parse_flow(std::string_view id, const Value& doc, const FormDef& form,
                           bool stored) {
  FlowDef flow;
  flow.id = id;
  flow.document = doc;
  if (!doc.is_object()) return def_error("flow", "must be a JSON object");
  if (auto e = unknown_property(
          doc,
          {"name", "form", "nodes", "edges", "portal_readable", "description", "id", "version"},
          "flow"))
    return *e;
  flow.name = doc.string_or("name");
  if (flow.name.empty()) return def_error("flow.name", "a non-empty string is required");
  flow.form_id = doc.string_or("form");
  if (flow.form_id != form.id)
    return def_error("flow.form", "must name the form \"" + form.id + "\"");

  const Value& nodes = doc["nodes"];
  if (!nodes.is_array() || nodes.as_array().empty()) {
    return def_error("flow.nodes", "a non-empty array is required");
  }
  int starts = 0, ends = 0;
  for (size_t i = 0; i < nodes.as_array().size(); ++i) {
    const Value& n = nodes.as_array()[i];
    std::string path = "flow.nodes[" + std::to_string(i) + "]";
    if (!n.is_object()) return def_error(path, "must be an object");
    if (auto e = unknown_property(n,
                                  {"id", "name", "type", "assignee", "readable", "writable",
                                   "required", "actions", "reject_to", "description"},
                                  path)) {
      return *e;
    }
    NodeDef node;
    node.id = n.string_or("id");
    if (node.id.empty()) return def_error(path + ".id", "a non-empty string is required");
    if (flow.node(node.id)) return def_error(path + ".id", "duplicate node id \"" + node.id + "\"");
    // The name is what people see of a node (inboxes, the portal's timeline); without one, the id.
    if (const Value* name = n.find("name");
        name && !stored && (!name->is_string() || name->as_string().empty())) {
      return def_error(path + ".name", "a non-empty string is required (or none: the id shows)");
    }
    node.name = n.string_or("name", node.id);
    if (node.name.empty()) node.name = node.id;
    std::string type = n.string_or("type");
    if (type == "start")
      node.type = NodeType::kStart, ++starts;
    else if (type == "approval")
      node.type = NodeType::kApproval;
    else if (type == "fill")
      node.type = NodeType::kFill;
    else if (type == "end")
      node.type = NodeType::kEnd, ++ends;
    else
      return def_error(path + ".type",
                       "must be start, approval, fill or end, not \"" + type + "\"");

    if (const Value* a = n.find("assignee")) {
      Object spec = a->is_object() ? a->as_object() : Object{};
      if (const Value* pick = a->is_object() ? a->find("pick") : nullptr) {
        const std::string how = pick->is_string() ? pick->as_string() : "";
        if (how != "round_robin" && how != "least_loaded") {
          return def_error(path + ".assignee.pick", "must be round_robin or least_loaded");
        }
        if (!a->find("role")) return def_error(path + ".assignee.pick", "picks among a role");
        node.assignee.pick = how == "round_robin" ? AssigneeSpec::Pick::kRoundRobin
                                                  : AssigneeSpec::Pick::kLeastLoaded;
        std::erase_if(spec, [](const Member& m) { return m.first == "pick"; });
      }
      if (spec.size() != 1 || !spec[0].second.is_string() || spec[0].second.as_string().empty()) {
        return def_error(path + ".assignee", "must be {\"role\":…}, {\"user\":…} or {\"field\":…}");
      }
      const auto& [kind, value] = spec[0];
      node.assignee.id = value.as_string();
      if (kind == "role") {
        node.assignee.kind = AssigneeSpec::Kind::kRole;
        if (!stored && node.assignee.id == kAuditorRole) {
          return def_error(path + ".assignee.role",
                           "auditors read everything and change nothing: a node of theirs could "
                           "never be acted on");
        }
      } else if (kind == "user") {
        node.assignee.kind = AssigneeSpec::Kind::kUser;
      } else if (kind == "field") {
        node.assignee.kind = AssigneeSpec::Kind::kField;
        const FieldDef* f = form.field(node.assignee.id);
        if (!f)
          return def_error(path + ".assignee.field",
                           "unknown field \"" + node.assignee.id + "\" in form " + form.id);
        if (f->type != FieldType::kPerson) {
          return def_error(path + ".assignee.field",
                           "field \"" + f->key + "\" is not of type person");
        }
      } else {
        return def_error(path + ".assignee", "must be {\"role\":…}, {\"user\":…} or {\"field\":…}");
      }
    } else if (node.type == NodeType::kApproval || node.type == NodeType::kFill) {
      return def_error(path + ".assignee", "an approval or fill node needs an assignee");
    }

    if (const Value* r = n.find("readable")) {
      node.reads_all = false;
      if (auto e = field_list(*r, form, path + ".readable", true, &node.reads_all, &node.readable))
        return *e;
    }
    if (const Value* w = n.find("writable")) {
      if (auto e = field_list(*w, form, path + ".writable", node.type == NodeType::kStart,
                              &node.writes_all, &node.writable))
        return *e;
    } else {
      node.writes_all = node.type == NodeType::kStart;  // a submission may set every field
    }
    if (const Value* r = n.find("required")) {
      bool unused = false;
      if (auto e = field_list(*r, form, path + ".required", false, &unused, &node.required))
        return *e;
    }

    std::vector<std::string> allowed;
    if (node.type == NodeType::kApproval) allowed = {"approve", "reject", "transfer"};
    if (node.type == NodeType::kFill) allowed = {"submit", "reject", "transfer"};
    if (const Value* acts = n.find("actions")) {
      if (!acts->is_array()) return def_error(path + ".actions", "must be an array");
      for (const auto& a : acts->as_array()) {
        if (!a.is_string() || !contains(allowed, a.as_string())) {
          return def_error(path + ".actions",
                           "\"" + a.as_string() + "\" is not an action of a " + type + " node");
        }
        node.actions.push_back(a.as_string());
      }
    } else if (node.type == NodeType::kApproval) {
      node.actions = {"approve", "reject", "transfer"};
    } else if (node.type == NodeType::kFill) {
      node.actions = {"submit", "transfer"};
    }
    if (node.type == NodeType::kFill && !contains(node.actions, "submit"))
      node.actions.push_back("submit");
    // A node no one can leave holds its tickets for good: an approval node offering neither
    // approve nor reject, or a node for the customer, who acts only by confirming in the portal
    // (approve at an approval node) and has no account to submit or fill with.
    if (!stored && node.type == NodeType::kApproval && !contains(node.actions, "approve") &&
        !contains(node.actions, "reject")) {
      return def_error(path + ".actions",
                       "an approval node must offer approve or reject, or it cannot be left");
    }
    if (!stored && node.for_customer() &&
        (node.type != NodeType::kApproval || !contains(node.actions, "approve"))) {
      return def_error(path + ".assignee",
                       "the customer acts in the portal only by confirming, which approves: a "
                       "node for the customer is an approval node offering approve");
    }
    node.reject_to = n.string_or("reject_to");
    flow.nodes.push_back(std::move(node));
  }
  if (starts != 1)
    return def_error("flow.nodes",
                     "exactly one start node is required, found " + std::to_string(starts));
  if (ends < 1) return def_error("flow.nodes", "at least one end node is required");
  for (size_t i = 0; i < flow.nodes.size(); ++i) {
    const auto& n = flow.nodes[i];
    if (!n.reject_to.empty()) {
      const NodeDef* target = flow.node(n.reject_to);
      if (!target || target->type == NodeType::kStart) {
        return def_error("flow.nodes[" + std::to_string(i) + "].reject_to",
                         "\"" + n.reject_to + "\" is not a node that can be entered");
      }
    }
  }

  const Value& edges = doc["edges"];
  if (!edges.is_array()) return def_error("flow.edges", "an array is required");
  for (size_t i = 0; i < edges.as_array().size(); ++i) {
    const Value& e = edges.as_array()[i];
    std::string path = "flow.edges[" + std::to_string(i) + "]";
    if (!e.is_object()) return def_error(path, "must be an object");
    if (auto bad = unknown_property(e, {"from", "to", "when"}, path)) return *bad;
    EdgeDef edge{e.string_or("from"), e.string_or("to"), std::nullopt};
    const NodeDef* from = flow.node(edge.from);
    const NodeDef* to = flow.node(edge.to);
    if (!from) return def_error(path + ".from", "unknown node \"" + edge.from + "\"");
    if (!to) return def_error(path + ".to", "unknown node \"" + edge.to + "\"");
    if (from->type == NodeType::kEnd)
      return def_error(path + ".from", "an end node has no way out");
    if (to->type == NodeType::kStart)
      return def_error(path + ".to", "no edge may lead back to start");
    if (const Value* w = e.find("when")) {
      auto c = parse_condition(*w, form, path + ".when");
      if (!c.ok()) return c.error();
      edge.when = std::move(c.value());
    }
    flow.edges.push_back(std::move(edge));
  }

  // Every node that can be left must have a way out whatever the fields hold: a default edge.
  for (const auto& n : flow.nodes) {
    if (n.type == NodeType::kEnd) continue;
    bool any = false, has_default = false;
    for (const auto& e : flow.edges) {
      if (e.from != n.id) continue;
      any = true;
      has_default |= !e.when.has_value();
    }
    if (!any) return def_error("flow.edges", "node \"" + n.id + "\" has no outgoing edge");
    if (!has_default) {
      return def_error(
          "flow.edges",
          "node \"" + n.id +
              "\" branches on conditions but has no default edge (one without \"when\")");
    }
  }

  // Reachability: forward from start, and backward from the end nodes. A reject with no target
  // ends the flow, so it counts as a way to an end.
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& e : flow.edges) out[e.from].push_back(e.to);
  std::set<std::string> ends_flow;
  for (const auto& n : flow.nodes) {
    if (!n.reject_to.empty() && n.offers("reject")) out[n.id].push_back(n.reject_to);
    if (n.reject_to.empty() && n.offers("reject")) ends_flow.insert(n.id);
  }
  std::set<std::string> reached = {flow.start().id};
  std::vector<std::string> frontier = {flow.start().id};
  while (!frontier.empty()) {
    std::string cur = frontier.back();
    frontier.pop_back();
    for (const auto& to : out[cur]) {
      if (reached.insert(to).second) frontier.push_back(to);
    }
  }
  for (const auto& n : flow.nodes) {
    if (!reached.count(n.id))
      return def_error("flow.nodes", "node \"" + n.id + "\" cannot be reached from start");
  }
  std::set<std::string> finishes;
  for (const auto& n : flow.nodes) {
    if (n.type == NodeType::kEnd) finishes.insert(n.id);
  }
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& n : flow.nodes) {
      if (finishes.count(n.id)) continue;
      bool done = ends_flow.count(n.id) > 0;
      for (const auto& to : out[n.id]) done |= finishes.count(to) > 0;
      if (done) grew = finishes.insert(n.id).second;
    }
  }
  for (const auto& n : flow.nodes) {
    if (!finishes.count(n.id))
      return def_error("flow.nodes", "no end can be reached from node \"" + n.id + "\"");
  }

  if (const Value* p = doc.find("portal_readable")) {
    std::vector<std::string> keys;
    bool unused = false;
    if (auto e = field_list(*p, form, "flow.portal_readable", false, &unused, &keys)) return *e;
    flow.portal_readable = std::move(keys);
  }
  return flow;
}

}  // namespace

Result<FlowDef> parse_flow(std::string_view id, const Value& doc, const FormDef& form) {
  return parse_flow(id, doc, form, false);
}

Result<FlowDef> parse_stored_flow(std::string_view id, const Value& doc, const FormDef& form) {
  return parse_flow(id, doc, form, true);
}

}  // namespace ticketd
