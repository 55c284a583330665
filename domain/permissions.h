#pragma once
// Who may do what to a ticket, and which fields they see. Used by decide() and by the read side.
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "domain/flow.h"
#include "domain/ticket.h"

namespace ticketd {

// Whether the actor holds the to-do at the ticket's current node (admins always may act).
bool may_act(const TicketState& state, const NodeDef& node, const Actor& actor);
// What the actor may do at the ticket's current node now, for a client's buttons and inputs: the
// actions the node offers and the fields it lets be written, if the actor may act there
// (may_act), with the fields that must be filled before approve or submit leave it. All empty for
// a closed ticket and for auditors, who change nothing.
struct NodeWork {
  std::vector<std::string> actions;
  std::vector<std::string> writable;
  std::vector<std::string> required;
};
NodeWork work_at_node(const TicketState& state, const FlowDef& flow, const Actor& actor);
// Whether a staff member may reopen the closed ticket to `node`: the one who submitted it, whoever
// would act at that node, or an administrator (the portal customer's reopen has its own window).
bool staff_may_reopen_to(const TicketState& state, const NodeDef& node, const Actor& actor);
// Where a reopen that names no node takes the ticket: the node the flow first takes it to, with
// the fields it has now.
const NodeDef* default_reopen_node(const TicketState& state, const FlowDef& flow);
// Whether the actor may reopen the ticket now to default_reopen_node() (for a client's reopen
// button; staff only, closed tickets only).
bool staff_may_reopen(const TicketState& state, const FlowDef& flow, const Actor& actor);
// Whether the actor is one of `who` (users and roles; admins excluded): the user, a member of the
// role, or the portal customer for the role `customer`.
bool is_among(const std::vector<AssigneeSpec>& who, const Actor& actor);
// Whether the actor is one of the node's resolved assignees (admins excluded).
bool is_assignee(const TicketState& state, const Actor& actor);
// Whether the open to-do is the actor's: they are its user, or hold its role (admins excluded, and
// auditors, who change nothing).
bool holds_todo(const OpenRequest& todo, const Actor& actor);
// Whether the actor holds any of the ticket's open to-dos.
bool holds_todos(const TicketState& state, const Actor& actor);
// Whose inboxes hold the ticket: its node's assignees while it is open, and the recipients of its
// open to-dos (on a closed ticket too).
std::vector<AssigneeSpec> inbox_holders(const TicketState& state);
// Whether the ticket is in the actor's inbox: waiting on them at its node, or holding a to-do of
// theirs.
bool in_inbox_of(const TicketState& state, const Actor& actor);
// Whether the actor would hold the to-do if the ticket, with these fields, entered `node` now:
// one of its role, the user it names, or the person its field holds (admins excluded).
bool would_be_assignee(const NodeDef& node, const Object& fields, const Actor& actor);
// The roles at least one active user holds.
std::set<std::string> staffed_roles(const Catalog& catalog);
// Whether someone can do what waits on `a` (`staffed`: staffed_roles()): an active user who may
// hold to-dos, a role one of them holds, the customer (in the portal), anyone (a node without
// assignees) or the person a field names.
bool someone_can_act_as(const AssigneeSpec& a, const Catalog& catalog,
                        const std::set<std::string>& staffed);
// Whether an open ticket waits only on disabled users and on roles no active user holds
// (`staffed`: staffed_roles()): no one can act on it until an administrator transfers it.
bool waits_on_no_one(const TicketState& state, const Catalog& catalog,
                     const std::set<std::string>& staffed);
// The open to-dos for a disabled user or an auditor, or for a role no active user holds: no one
// will do them until an administrator marks them done.
std::vector<const OpenRequest*> todos_for_no_one(const TicketState& state, const Catalog& catalog,
                                                 const std::set<std::string>& staffed);
// Work no one can do: the ticket waits on no one (above) or holds a to-do for no one.
bool is_stranded(const TicketState& state, const Catalog& catalog,
                 const std::set<std::string>& staffed);
// The fields the actor may read now: everything for admins and auditors; for the portal customer
// the customer node's readable list (or the flow's portal_readable before such a node); for
// everyone else the current node's readable list.
Object readable_fields(const TicketState& state, const FlowDef& flow, const Actor& actor);
// The same fields, in the same order, handed to `fn` where they are: for callers that only write
// them out (a ticket's view, an export's row), which need no copy.
void for_each_readable_field(const TicketState& state, const FlowDef& flow, const Actor& actor,
                             const std::function<void(const std::string&, const Value&)>& fn);
// Whether the actor may read the field `key` now, set or not (readable_fields' test).
bool may_read_field(const TicketState& state, const FlowDef& flow, const Actor& actor,
                    std::string_view key);

}  // namespace ticketd
