#include "domain/permissions.h"

#include <algorithm>

namespace ticketd {

bool is_among(const std::vector<AssigneeSpec>& who, const Actor& actor) {
  for (const auto& a : who) {
    if (a.kind == AssigneeSpec::Kind::kUser && a.id == actor.id && !actor.portal_customer)
      return true;
    if (a.kind == AssigneeSpec::Kind::kRole) {
      if (a.id == kCustomerRole) {
        if (actor.portal_customer) return true;
      } else if (actor.has_role(a.id) && !actor.portal_customer) {
        return true;
      }
    }
  }
  return false;
}

bool is_assignee(const TicketState& state, const Actor& actor) {
  return is_among(state.assignees, actor);
}

NodeWork work_at_node(const TicketState& state, const FlowDef& flow, const Actor& actor) {
  NodeWork work;
  const NodeDef* node = flow.node(state.node);
  if (!state.exists() || state.closed || !node || actor.reads_only() ||
      !may_act(state, *node, actor)) {
    return work;
  }
  work.actions = node->offered();
  work.writable = node->writable;
  work.required = node->required;
  return work;
}

bool staff_may_reopen_to(const TicketState& state, const NodeDef& node, const Actor& actor) {
  if (actor.portal_customer || actor.reads_only()) return false;
  return actor.admin || actor.id == state.creator || would_be_assignee(node, state.fields, actor);
}

const NodeDef* default_reopen_node(const TicketState& state, const FlowDef& flow) {
  return flow.next(flow.start().id, state.fields);
}

bool staff_may_reopen(const TicketState& state, const FlowDef& flow, const Actor& actor) {
  if (!state.exists() || !state.closed) return false;
  const NodeDef* node = default_reopen_node(state, flow);
  return node && staff_may_reopen_to(state, *node, actor);
}

bool would_be_assignee(const NodeDef& node, const Object& fields, const Actor& actor) {
  if (actor.portal_customer) return false;
  const AssigneeSpec& spec = node.assignee;
  switch (spec.kind) {
    case AssigneeSpec::Kind::kAnyone:
      return true;
    case AssigneeSpec::Kind::kRole:
      return spec.id != kCustomerRole && actor.has_role(spec.id);
    case AssigneeSpec::Kind::kUser:
      return spec.id == actor.id;
    case AssigneeSpec::Kind::kField: {
      return std::any_of(fields.begin(), fields.end(), [&](const Member& m) {
        return m.first == spec.id && m.second.is_string() && m.second.as_string() == actor.id;
      });
    }
  }
  return false;
}

std::set<std::string> staffed_roles(const Catalog& catalog) {
  std::set<std::string> staffed;
  for (const User* u : catalog.users()) {
    if (may_hold_todo(*u)) staffed.insert(u->roles.begin(), u->roles.end());
  }
  return staffed;
}

bool someone_can_act_as(const AssigneeSpec& a, const Catalog& catalog,
                        const std::set<std::string>& staffed) {
  if (a.kind == AssigneeSpec::Kind::kUser) {
    const User* u = catalog.user(a.id);
    return u && may_hold_todo(*u);
  }
  return a.kind != AssigneeSpec::Kind::kRole || a.id == kCustomerRole || staffed.count(a.id) > 0;
}

bool waits_on_no_one(const TicketState& state, const Catalog& catalog,
                     const std::set<std::string>& staffed) {
  // No assignees at all is a node anyone works at, not one that lost its people.
  if (!state.exists() || state.closed || state.assignees.empty()) return false;
  return std::none_of(state.assignees.begin(), state.assignees.end(), [&](const AssigneeSpec& a) {
    return someone_can_act_as(a, catalog, staffed);
  });
}

std::vector<const OpenRequest*> todos_for_no_one(const TicketState& state, const Catalog& catalog,
                                                 const std::set<std::string>& staffed) {
  std::vector<const OpenRequest*> stranded;
  for (const OpenRequest& r : state.open_requests) {
    if (r.kind == OpenRequest::Kind::kTodo && !someone_can_act_as(r.to, catalog, staffed))
      stranded.push_back(&r);
  }
  return stranded;
}

bool is_stranded(const TicketState& state, const Catalog& catalog,
                 const std::set<std::string>& staffed) {
  return waits_on_no_one(state, catalog, staffed) ||
         !todos_for_no_one(state, catalog, staffed).empty();
}

bool holds_todo(const OpenRequest& todo, const Actor& actor) {
  if (todo.kind != OpenRequest::Kind::kTodo || actor.reads_only() || actor.portal_customer)
    return false;
  return is_among({todo.to}, actor);
}

bool holds_todos(const TicketState& state, const Actor& actor) {
  return std::any_of(state.open_requests.begin(), state.open_requests.end(),
                     [&](const OpenRequest& r) { return holds_todo(r, actor); });
}

std::vector<AssigneeSpec> inbox_holders(const TicketState& state) {
  std::vector<AssigneeSpec> holders;
  if (!state.closed) holders = state.assignees;
  for (const OpenRequest& r : state.open_requests) {
    if (r.kind == OpenRequest::Kind::kTodo) holders.push_back(r.to);
  }
  return holders;
}

bool in_inbox_of(const TicketState& state, const Actor& actor) {
  return (!state.closed && is_assignee(state, actor)) || holds_todos(state, actor);
}

bool may_act(const TicketState& state, const NodeDef& node, const Actor& actor) {
  if (actor.admin) return true;
  if (node.type == NodeType::kStart || node.type == NodeType::kEnd) return false;
  return is_assignee(state, actor);
}

namespace {
// Whether a field may be read at `node` (the ticket's current one), for one who is neither an
// administrator nor an auditor.
bool readable_at(const NodeDef* node, const FlowDef& flow, const Actor& actor,
                 std::string_view key) {
  if (actor.portal_customer) {
    if (node && node->for_customer()) return node->can_read(key);
    return flow.portal_readable &&
           std::find(flow.portal_readable->begin(), flow.portal_readable->end(), key) !=
               flow.portal_readable->end();
  }
  return !node || node->can_read(key);
}
}  // namespace

bool may_read_field(const TicketState& state, const FlowDef& flow, const Actor& actor,
                    std::string_view key) {
  return actor.admin || actor.auditor || readable_at(flow.node(state.node), flow, actor, key);
}

void for_each_readable_field(const TicketState& state, const FlowDef& flow, const Actor& actor,
                             const std::function<void(const std::string&, const Value&)>& fn) {
  const bool all = actor.admin || actor.auditor;
  const NodeDef* node = all ? nullptr : flow.node(state.node);
  for (const auto& [k, v] : state.fields) {
    if (all || readable_at(node, flow, actor, k)) fn(k, v);
  }
}

Object readable_fields(const TicketState& state, const FlowDef& flow, const Actor& actor) {
  if (actor.admin || actor.auditor) return state.fields;
  Object out;
  for_each_readable_field(state, flow, actor,
                          [&](const std::string& k, const Value& v) { out.emplace_back(k, v); });
  return out;
}

}  // namespace ticketd
