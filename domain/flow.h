#pragma once
// Flows are data: a graph of start / approval / fill / end nodes. Each node says who acts, which
// fields they may read and write, what must be filled before leaving, and which buttons exist.
#include <optional>
#include <string>
#include <vector>

#include "domain/condition.h"
#include "domain/error.h"
#include "domain/form.h"
#include "domain/value.h"

namespace ticketd {

enum class NodeType { kStart, kApproval, kFill, kEnd };
std::string_view node_type_name(NodeType type);

// The role name `customer` is reserved: such a node is acted on by the ticket's customer (portal).
inline constexpr char kCustomerRole[] = "customer";
// So is `auditor`: its holders read everything and change nothing, so no to-do waits on them.
inline constexpr char kAuditorRole[] = "auditor";

struct AssigneeSpec {
  enum class Kind { kAnyone, kRole, kUser, kField };
  // For a role: hand the ticket to one member, taking turns (round_robin) or to the one with the
  // fewest open tickets waiting on them (least_loaded, ties taking turns).
  enum class Pick { kNone, kRoundRobin, kLeastLoaded };
  Kind kind = Kind::kAnyone;
  std::string id;  // role name, user id, or field key
  Pick pick = Pick::kNone;
};

// Every action a ticket's command may name. A node offers some (NodeDef::offers): "confirm" is
// the customer's word for approving at a customer node.
inline constexpr std::string_view kActionNames[] = {"approve", "reject", "transfer", "submit",
                                                    "confirm"};

struct NodeDef {
  std::string id;
  std::string name;
  NodeType type = NodeType::kApproval;
  AssigneeSpec assignee;
  bool reads_all = true;              // "readable": ["*"] or absent
  std::vector<std::string> readable;  // when !reads_all
  bool writes_all = false;            // absent "writable" on a start node
  std::vector<std::string> writable;
  std::vector<std::string> required;
  std::vector<std::string> actions;  // approve reject transfer submit
  std::string reject_to;             // empty: reject ends the flow

  bool offers(std::string_view action) const;
  // The actions offered, in the order the flow lists them ("confirm" after "approve").
  std::vector<std::string> offered() const;
  bool can_read(std::string_view key) const;
  bool can_write(std::string_view key) const;
  bool for_customer() const {
    return assignee.kind == AssigneeSpec::Kind::kRole && assignee.id == kCustomerRole;
  }
};

struct EdgeDef {
  std::string from;
  std::string to;
  std::optional<Condition> when;  // none: the default edge
};

struct FlowDef {
  std::string id;
  uint64_t version = 0;
  std::string name;
  std::string form_id;
  std::vector<NodeDef> nodes;
  std::vector<EdgeDef> edges;
  std::optional<std::vector<std::string>> portal_readable;
  Value document;  // as put

  const NodeDef* node(std::string_view id) const;
  const NodeDef& start() const;
  // The node to go to from `from` given these field values: the first edge whose condition holds.
  const NodeDef* next(std::string_view from, const Object& fields) const;
};

// Parses and validates a flow against its form (at the version the flow is published with).
Result<FlowDef> parse_flow(std::string_view id, const Value& document, const FormDef& form);
// The same for a flow the log holds: checks added since it was published do not refuse it.
Result<FlowDef> parse_stored_flow(std::string_view id, const Value& document, const FormDef& form);

}  // namespace ticketd
