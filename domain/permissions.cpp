#include "domain/permissions.h"

#include <algorithm>

namespace ticketd {

bool is_assignee(const TicketState& state, const Actor& actor) {
  for (const auto& a : state.assignees) {
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

bool may_act(const TicketState& state, const NodeDef& node, const Actor& actor) {
  if (actor.admin) return true;
  if (node.type == NodeType::kStart || node.type == NodeType::kEnd) return false;
  return is_assignee(state, actor);
}

Object readable_fields(const TicketState& state, const FlowDef& flow, const Actor& actor) {
  if (actor.admin || actor.auditor) return state.fields;
  const NodeDef* node = flow.node(state.node);
  Object out;
  if (actor.portal_customer) {
    const NodeDef* customer_node = nullptr;
    if (node && node->for_customer()) customer_node = node;
    for (const auto& [k, v] : state.fields) {
      bool ok = customer_node ? customer_node->can_read(k)
                              : flow.portal_readable && std::find(flow.portal_readable->begin(),
                                                                  flow.portal_readable->end(),
                                                                  k) != flow.portal_readable->end();
      if (ok) out.emplace_back(k, v);
    }
    return out;
  }
  for (const auto& [k, v] : state.fields) {
    if (!node || node->can_read(k)) out.emplace_back(k, v);
  }
  return out;
}

}  // namespace ticketd
