#include "domain/ticket.h"

#include <algorithm>

#include "domain/permissions.h"
#include "domain/sla.h"
#include "domain/text.h"
#include "domain/ticket_notes.h"
#include "domain/time_format.h"

namespace ticketd {
namespace {

namespace et = event_types;

// Rules may trigger rules, but a chain stops at this depth, and a rule's own events never
// trigger it again: no configuration can make the engine loop.
constexpr int kMaxRuleDepth = 4;
constexpr size_t kMaxCommentLength = 10000;

int64_t as_int(const Value& v) { return static_cast<int64_t>(v.as_number()); }

class Decision {
 public:
  explicit Decision(const Context& ctx) : ctx_(ctx) {}

  const Context& context() const { return ctx_; }

  void add(const char* type, Object data, std::string actor = "") {
    events_.push_back({type, Value(std::move(data)), actor.empty() ? ctx_.actor.id : actor,
                       ctx_.now_us, std::nullopt});
  }
  std::vector<DomainEvent>& events() { return events_; }

 private:
  const Context& ctx_;
  std::vector<DomainEvent> events_;
};

Value assignees_value(const std::vector<AssigneeSpec>& list) {
  Array out;
  for (const auto& a : list) {
    out.emplace_back(Object{{a.kind == AssigneeSpec::Kind::kRole ? "role" : "user", Value(a.id)}});
  }
  return Value(std::move(out));
}

// What a required field may not be: a text of spaces alone is as empty as none.
bool unfilled(const Value& v) {
  return v.is_null() || (v.is_string() && blank(v.as_string())) ||
         (v.is_array() && v.as_array().empty());
}

const Value& lookup(const Object& fields, std::string_view key) {
  static const Value kNull;
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return kNull;
}

// The member of `role` a picking node hands the ticket to: members in id order, the next after the
// last one picked (round robin), or among those with the fewest open tickets the next in that same
// order (least loaded). Empty when the role has no members or the context cannot pick.
std::string pick_member(const AssigneeSpec& spec, const Context& ctx) {
  if (!ctx.last_pick || !ctx.open_load) return "";
  std::vector<std::string> members;
  for (const User* u : ctx.catalog->users()) {
    if (may_hold_todo(*u) && std::find(u->roles.begin(), u->roles.end(), spec.id) != u->roles.end())
      members.push_back(u->id);
  }
  if (members.empty()) return "";
  std::sort(members.begin(), members.end());
  std::string last = ctx.last_pick(spec.id);
  size_t start = std::upper_bound(members.begin(), members.end(), last) - members.begin();
  std::string best;
  size_t best_load = SIZE_MAX;
  for (size_t i = 0; i < members.size(); ++i) {
    const std::string& m = members[(start + i) % members.size()];
    if (spec.pick == AssigneeSpec::Pick::kRoundRobin) return m;
    size_t load = ctx.open_load(m);
    if (load < best_load) best = m, best_load = load;
  }
  return best;
}

// Emits the events of entering `node`: NodeEntered with its resolved assignees, and at an end node
// FlowEnded and TicketClosed.
std::optional<DomainError> enter(Decision& d, const NodeDef& node, const std::string& from,
                                 const Object& fields) {
  std::vector<AssigneeSpec> assignees;
  std::string picked;
  switch (node.assignee.kind) {
    case AssigneeSpec::Kind::kAnyone:
      break;
    case AssigneeSpec::Kind::kRole:
      if (node.assignee.pick != AssigneeSpec::Pick::kNone) {
        picked = pick_member(node.assignee, d.context());
      }
      if (!picked.empty()) {
        assignees.push_back({AssigneeSpec::Kind::kUser, picked});
      } else {
        assignees.push_back({AssigneeSpec::Kind::kRole, node.assignee.id});
      }
      break;
    case AssigneeSpec::Kind::kUser:
      assignees.push_back(node.assignee);
      break;
    case AssigneeSpec::Kind::kField: {
      const Value& person = lookup(fields, node.assignee.id);
      if (!person.is_string() || person.as_string().empty()) {
        return error(codes::kRequired,
                     "field " + node.assignee.id +
                         " must name a person before the ticket can "
                         "enter node " +
                         node.id + " (" + node.name + ")",
                     node.assignee.id);
      }
      assignees.push_back({AssigneeSpec::Kind::kUser, person.as_string()});
      break;
    }
  }
  Object entered = {{"node", Value(node.id)},
                    {"name", Value(node.name)},
                    {"type", Value(node_type_name(node.type))},
                    {"from", Value(from)},
                    {"assignees", assignees_value(assignees)}};
  if (!picked.empty()) {
    bool round_robin = node.assignee.pick == AssigneeSpec::Pick::kRoundRobin;
    entered.emplace_back("picked", Value(Object{
                                       {"role", Value(node.assignee.id)},
                                       {"user", Value(picked)},
                                       {"by", Value(round_robin ? "round_robin" : "least_loaded")},
                                   }));
  }
  d.add(et::kNodeEntered, std::move(entered));
  if (node.type == NodeType::kEnd) {
    d.add(et::kFlowEnded, {{"node", Value(node.id)}});
    d.add(et::kTicketClosed, {{"reason", Value("flow_ended")}});
  }
  return std::nullopt;
}

std::optional<DomainError> route_on(Decision& d, const FlowDef& flow, const NodeDef& from,
                                    const Object& fields) {
  const NodeDef* next = flow.next(from.id, fields);
  if (!next) {  // parse_flow guarantees a default edge, so only a corrupt definition gets here
    return error(codes::kInvalidDefinition, "no edge leads on from node " + from.id);
  }
  return enter(d, *next, from.id, fields);
}

// Checks field values a caller wants to set at `node`. Returns the changed members only.
Result<Object> check_writes(const TicketState& state, const FormDef& form, const NodeDef& node,
                            const Object& fields, const Context& ctx, bool may_write_all) {
  Object changed;
  for (const auto& [key, value] : fields) {
    const FieldDef* f = form.field(key);
    if (!f)
      return error(codes::kUnknownField, "unknown field \"" + key + "\" in form " + form.id, key);
    if (!may_write_all && !node.can_write(key)) {
      return error(codes::kForbidden,
                   "field " + key + " is not writable at node " + node.id + " (" + node.name + ")",
                   key);
    }
    auto checked = check_field_value(*f, value, ctx.lookups);
    if (!checked.ok()) return checked.error();
    if (!(lookup(state.fields, key) == checked.value()))
      changed.emplace_back(key, std::move(checked.value()));
  }
  return changed;
}

void add_fields_changed(Decision& d, const Object& changed, const std::string& rule = "") {
  Array keys;
  for (const auto& [k, v] : changed) keys.emplace_back(k);
  Object data = {{"fields", Value(changed)}, {"changed", Value(std::move(keys))}};
  if (!rule.empty()) data.emplace_back("rule", Value(rule));
  d.add(et::kFieldsChanged, std::move(data), rule.empty() ? "" : kSystemActor);
}

Object merged(const Object& fields, const Object& changes) {
  Object out = fields;
  for (const auto& [k, v] : changes) set_member(out, k, v);
  return out;
}

std::optional<DomainError> check_required(const NodeDef& node, const Object& fields,
                                          const FormDef& form) {
  for (const auto& key : node.required) {
    if (unfilled(lookup(fields, key))) {
      const FieldDef* f = form.field(key);
      return error(codes::kRequired,
                   (f ? f->label : key) + " (" + key + ") must be filled before leaving node " +
                       node.id + " (" + node.name + ")",
                   key);
    }
  }
  return std::nullopt;
}

// Words written on a ticket: a comment, an action's or a rating's. Bytes bound the length, as the
// log stores them.
std::optional<DomainError> check_comment(const std::string& text, const char* member) {
  if (text.size() > kMaxCommentLength) {
    return error(
        codes::kOutOfRange,
        std::string(member) + " is longer than " + std::to_string(kMaxCommentLength) + " bytes",
        member);
  }
  if (auto wrong = control_character_in(text, TextLines::kMany))
    return error(codes::kInvalidValue, std::string(member) + " " + *wrong, member);
  return std::nullopt;
}

// The words of a comment event, for {{comment.text}} (a reopen's reason too, and a file's name
// for a file sent as a reply); "" for any other event.
std::string comment_of(const DomainEvent& e) {
  const std::string_view type = e.type;
  if (type == et::kCommentAdded) return e.data.string_or("text");
  if (type == et::kAttachmentAdded) return e.data.string_or("filename");
  return type == et::kTicketReopened ? e.data.string_or("reason") : "";
}

// A file between the customer and staff is a reply as words are: the customer's photo of the
// fault waits for an answer, and a quote staff send the customer answers.
bool file_reply_by_customer(const DomainEvent& e) {
  return std::string_view(e.type) == et::kAttachmentAdded && e.actor == kPortalActor;
}
bool file_reply_by_staff(const DomainEvent& e) {
  return std::string_view(e.type) == et::kAttachmentAdded && e.actor != kPortalActor &&
         e.data["public"].as_bool();
}

bool triggers(const RuleDef& rule, const DomainEvent& e) {
  const Value& d = e.data;
  // As a view, a type is told apart by its length first (see evolve_in_place): every event of a
  // command is tried against every rule of its form.
  const std::string_view type = e.type;
  switch (rule.trigger.kind) {
    case RuleTrigger::Kind::kCreated:
      return type == et::kTicketSubmitted;
    case RuleTrigger::Kind::kFieldChanged:
      if (type != et::kFieldsChanged) return false;
      for (const auto& k : d["changed"].as_array()) {
        if (k.as_string() == rule.trigger.field) return true;
      }
      return false;
    case RuleTrigger::Kind::kNodeEntered:
      return type == et::kNodeEntered && d.string_or("node") == rule.trigger.node;
    case RuleTrigger::Kind::kIdle:
      return type == et::kTimerFired && d.string_or("rule") == rule.id;
    case RuleTrigger::Kind::kFlowEnded:
      return type == et::kFlowEnded;
    case RuleTrigger::Kind::kRated:
      return type == et::kRated;
    case RuleTrigger::Kind::kReopened:
      return type == et::kTicketReopened;
    case RuleTrigger::Kind::kReplied: {
      if (type == et::kAttachmentAdded) {
        return rule.trigger.by == "customer" ? file_reply_by_customer(e) : file_reply_by_staff(e);
      }
      if (type != et::kCommentAdded) return false;
      auto note = note_of(e);
      return note && note->kind == (rule.trigger.by == "customer" ? TicketNote::Kind::kCustomer
                                                                  : TicketNote::Kind::kReply);
    }
    case RuleTrigger::Kind::kSlaWarning:
    case RuleTrigger::Kind::kSlaBreached: {
      bool warning = rule.trigger.kind == RuleTrigger::Kind::kSlaWarning;
      if (type != (warning ? et::kSlaWarning : et::kSlaBreached)) return false;
      std::string target = d.string_or("target");
      return rule.trigger.target.empty() || rule.trigger.target == target ||
             (rule.trigger.target == "node" && target.starts_with("node:"));
    }
  }
  return false;
}

// The events a rule's actions produce on `state` (the state just after the triggering event).
// `comment`: the words of the reply that triggered the rule (for {{comment.text}}), if one did.
// `waiting_now`: whom the ticket waits on at its node once the command's events so far are in
// (the rule's `state` is as of its trigger).
void run_actions(Decision& d, const RuleDef& rule, const TicketState& state, const FlowDef* flow,
                 const Catalog& catalog, const std::string& comment,
                 const std::vector<AssigneeSpec>& waiting_now) {
  const NodeDef* node = flow ? flow->node(state.node) : nullptr;
  const FormDef* form = catalog.form(state.form_id, state.form_version);
  TemplateValues values{state.id,          node ? node->name : state.node,
                        &state.fields,     comment,
                        state.portal_code, state.created_at};
  values.company_name = catalog.settings().name;
  if (rule.says_sla_due)
    values.sla_due_at = sla_standing(state, catalog, d.context().now_us).due_at;
  // A notify text is read by people: in the rule's zone, else the company's.
  TemplateValues text_values = values;
  text_values.form = form;
  text_values.zone = zone_or_company(rule.zone, catalog.settings());
  for (const auto& a : rule.actions) {
    switch (a.kind) {
      case RuleAction::Kind::kSetField:
        if (!(lookup(state.fields, a.field) == a.value)) {
          add_fields_changed(d, Object{{a.field, a.value}}, rule.id);
        }
        break;
      case RuleAction::Kind::kNotify: {
        std::string recipient_kind = a.to_kind, to = a.to;
        if (a.to_kind == "field") {
          const Value& v = lookup(state.fields, a.to);
          to = v.is_string() ? v.as_string() : "";
          const FieldDef* f = form ? form->field(a.to) : nullptr;
          recipient_kind = f && f->type == FieldType::kPhone    ? "phone"
                           : f && f->type == FieldType::kEmail  ? "email"
                           : f && f->type == FieldType::kPerson ? "user"
                                                                : "address";
        }
        std::string text = render_template(a.text, text_values);
        Object data{{"rule", Value(rule.id)},
                    {"channel", Value(a.channel)},
                    {"to", Value(to)},
                    {"recipient", Value(recipient_kind)},
                    {"text", Value(text)}};
        // A to-do stays open, in its recipient's inbox, until done. Marked, as the todo
        // notifications recorded before to-dos were kept open are not to open now. One for whom
        // the ticket already waits at its node is that node's work, done by acting there (the
        // reference application's 新工单 for 客服主管 at 工单受理): it opens none.
        const auto kind =
            recipient_kind == "role" ? AssigneeSpec::Kind::kRole : AssigneeSpec::Kind::kUser;
        auto node_work = [&] {
          return std::any_of(waiting_now.begin(), waiting_now.end(),
                             [&](const AssigneeSpec& w) { return w.kind == kind && w.id == to; });
        };
        if (a.channel == "todo" && !to.empty() &&
            (recipient_kind == "role" || recipient_kind == "user") && !node_work()) {
          data.emplace_back("todo", Value(true));
        }
        d.add(et::kNotificationRequested, std::move(data), kSystemActor);
        break;
      }
      case RuleAction::Kind::kLookup: {
        // Asked here, answered by the lookup worker (ApplyLookup) with the request's stream
        // version as its id; the values the query sends are fixed now, as the ticket is.
        Object query, fill;
        for (const auto& [name, text] : a.query) {
          query.emplace_back(name, Value(render_template(text, values)));
        }
        for (const auto& [field, pointer] : a.fill) fill.emplace_back(field, Value(pointer));
        d.add(et::kLookupRequested,
              {{"rule", Value(rule.id)},
               {"source", Value(a.source)},
               {"path", Value(render_template(a.path, values, percent_encode))},
               {"query", Value(std::move(query))},
               {"fill", Value(std::move(fill))}},
              kSystemActor);
        break;
      }
      case RuleAction::Kind::kClose:
        // A flow's end closes the ticket in the same command, right after FlowEnded (the event a
        // rule on flow_ended runs on): closing it again would put two closes in its history.
        if (!state.closed && !state.flow_ended) {
          d.add(et::kTicketClosed, {{"reason", Value("rule")}, {"rule", Value(rule.id)}},
                kSystemActor);
        }
        break;
    }
  }
}

// Runs the rules over the events a command produced, appending what they do. Each event is
// evaluated against the state right after it, in order.
// The part of evolve() that says whom the ticket waits on at its node (nobody once closed).
void evolve_assignees(std::vector<AssigneeSpec>& assignees, std::string_view type, const Value& d) {
  if (type == et::kNodeEntered) {
    assignees.clear();
    for (const auto& a : d["assignees"].as_array()) {
      if (const Value* role = a.find("role"))
        assignees.push_back({AssigneeSpec::Kind::kRole, role->as_string()});
      if (const Value* user = a.find("user"))
        assignees.push_back({AssigneeSpec::Kind::kUser, user->as_string()});
    }
  } else if (type == et::kTransferred) {
    assignees = {{AssigneeSpec::Kind::kUser, d.string_or("to")}};
  } else if (type == et::kFlowEnded || type == et::kTicketClosed) {
    assignees.clear();
  }
}

void apply_rules(const TicketState& before, Decision& d, const Context& ctx) {
  auto& events = d.events();
  std::vector<int> depth(events.size(), 0);
  std::vector<std::string> source(events.size());
  // The state after events [0, folded): folded on only as far as a rule needs it, since whether a
  // rule triggers depends on the event alone (most events trigger none).
  TicketState state = before;
  size_t folded = 0;
  auto state_after = [&](size_t i) -> const TicketState& {
    while (folded <= i) evolve_in_place(state, events[folded++]);
    return state;
  };
  std::string form_id = before.form_id;  // set by a ticket's first event, never changed
  for (size_t i = 0; i < events.size(); ++i) {
    if (depth[i] >= kMaxRuleDepth) continue;
    if (form_id.empty()) form_id = state_after(0).form_id;
    for (const RuleDef* rule : ctx.catalog->rules_for_form(form_id)) {
      if (rule->id == source[i] || !triggers(*rule, events[i])) continue;
      const TicketState& after = state_after(i);
      if (rule->when && !evaluate(*rule->when, after.fields)) continue;
      const FlowDef* flow = ctx.catalog->flow(after.flow_id, after.flow_version);
      size_t first_new = events.size();
      // A copy: run_actions appends to `events`, which may move events[i].
      const std::string comment = comment_of(events[i]);
      std::vector<AssigneeSpec> waiting_now;
      if (rule->gives_todo()) {
        waiting_now = after.assignees;
        for (size_t k = i + 1; k < events.size(); ++k)
          evolve_assignees(waiting_now, events[k].type, events[k].data);
      }
      run_actions(d, *rule, after, flow, *ctx.catalog, comment, waiting_now);
      for (size_t k = first_new; k < events.size(); ++k) {
        depth.push_back(depth[i] + 1);
        source.push_back(rule->id);
      }
    }
  }
}

}  // namespace

Result<const FlowDef*> flow_for_submission(const Catalog& c, const FormDef& form,
                                           std::string_view flow_id) {
  if (!flow_id.empty()) {
    const FlowDef* flow = c.flow(flow_id);
    if (!flow)
      return error(codes::kNotFound, "unknown flow \"" + std::string(flow_id) + "\"", "flow");
    if (flow->form_id != form.id) {
      return error(codes::kInvalidValue, "flow " + flow->id + " is for form " + flow->form_id,
                   "flow");
    }
    return flow;
  }
  std::vector<const FlowDef*> flows;
  for (const std::string& id : c.flow_ids()) {
    const FlowDef* flow = c.flow(id);
    if (flow && flow->form_id == form.id) flows.push_back(flow);
  }
  if (flows.size() == 1) return flows[0];
  if (flows.empty()) {
    return error(codes::kRequired, "flow is required: no flow takes form " + form.id, "flow");
  }
  std::string ids;
  for (const FlowDef* flow : flows) ids.append(ids.empty() ? "" : ", ").append(flow->id);
  return error(codes::kRequired, "flow is required: form " + form.id + " is taken by flows " + ids,
               "flow");
}

namespace {

Result<std::vector<DomainEvent>> submit(const SubmitTicket& cmd, const Context& ctx) {
  const Catalog& c = *ctx.catalog;
  const FormDef* form = c.form(cmd.form_id);
  if (!form) return error(codes::kNotFound, "unknown form \"" + cmd.form_id + "\"", "form");
  auto chosen = flow_for_submission(c, *form, cmd.flow_id);
  if (!chosen.ok()) return chosen.error();
  const FlowDef* flow = chosen.value();
  const NodeDef& start = flow->start();
  TicketState none;
  if (start.assignee.kind != AssigneeSpec::Kind::kAnyone && !ctx.actor.admin) {
    bool allowed =
        start.assignee.kind == AssigneeSpec::Kind::kRole
            ? ctx.actor.has_role(start.assignee.id)
            : start.assignee.kind == AssigneeSpec::Kind::kUser && start.assignee.id == ctx.actor.id;
    if (!allowed) return error(codes::kForbidden, "you may not submit tickets of flow " + flow->id);
  }
  auto writes = check_writes(none, *form, start, cmd.fields, ctx, false);
  if (!writes.ok()) return writes.error();
  Object fields;
  for (const FieldDef& f : form->fields) {
    Value v;
    for (auto& [k, written] : writes.value()) {
      if (k == f.key) {
        v = std::move(written);  // no other field of the form has this key
        break;
      }
    }
    const std::string_view auto_fill = f.auto_fill;  // compared by length first, for every field
    if (auto_fill == "now") {
      v = f.type == FieldType::kDate ? Value(format_rfc3339(ctx.now_us).substr(0, 10))
                                     : Value(format_rfc3339(ctx.now_us));
    } else if (auto_fill == "creator" &&
               (f.role.empty() ||
                (ctx.lookups.user_exists && ctx.lookups.user_exists(ctx.actor.id, f.role)))) {
      // A field naming a role takes only its holders: an administrator submitting for 客服
      // does not become the 受理人; the field is then filled as any other.
      v = Value(ctx.actor.id);
    } else if (v.is_null() && !f.default_value.is_null()) {
      v = f.default_value;
    }
    if (f.required && unfilled(v)) {
      return error(codes::kRequired, f.label + " (" + f.key + ") is required", f.key);
    }
    if (!v.is_null()) fields.emplace_back(f.key, std::move(v));
  }
  // One object, shared by the event and the routing that reads it: the values are not copied.
  const Value submitted(std::move(fields));
  Decision d(ctx);
  d.add(et::kTicketSubmitted, {{"id", Value(ctx.new_ticket_id)},
                               {"form", Value(form->id)},
                               {"form_version", Value(static_cast<int64_t>(form->version))},
                               {"flow", Value(flow->id)},
                               {"flow_version", Value(static_cast<int64_t>(flow->version))},
                               {"fields", submitted},
                               {"portal_code", Value(ctx.new_portal_code)}});
  if (auto e = route_on(d, *flow, start, submitted.as_object())) return *e;
  apply_rules(none, d, ctx);
  return std::move(d.events());
}

// A to-do is done, on an open ticket or a closed one: the work it asked for may come after.
Result<std::vector<DomainEvent>> finish_todo(const TicketState& s, const FinishTodo& cmd,
                                             const Context& ctx) {
  const OpenRequest* todo = s.open_request(OpenRequest::Kind::kTodo, cmd.todo);
  if (!todo) {
    return error(codes::kNotFound,
                 "ticket " + s.id + " has no open to-do " + std::to_string(cmd.todo));
  }
  if (!ctx.actor.admin && !holds_todo(*todo, ctx.actor)) {
    return error(codes::kForbidden,
                 std::string("the to-do is for ") +
                     (todo->to.kind == AssigneeSpec::Kind::kRole ? "role " : "user ") +
                     todo->to.id + ": only they (or an administrator) mark it done");
  }
  Decision d(ctx);
  d.add(et::kTodoDone, {{"todo", Value(static_cast<int64_t>(cmd.todo))}});
  return std::move(d.events());
}

// The to-dos the actor holds are done when they act on the ticket at its node: a supervisor told
// of a new ticket who accepts it has seen it.
void settle_todos_of_actor(const TicketState& s, Decision& d) {
  for (const OpenRequest& r : s.open_requests) {
    if (holds_todo(r, d.context().actor))
      d.add(et::kTodoDone, {{"todo", Value(static_cast<int64_t>(r.version))}});
  }
}

Result<std::vector<DomainEvent>> act(const TicketState& s, const TakeAction& cmd,
                                     const FormDef& form, const FlowDef& flow, const Context& ctx) {
  const NodeDef* node = flow.node(s.node);
  if (!node) return error(codes::kInvalidDefinition, "the ticket is at unknown node " + s.node);
  if (std::find(std::begin(kActionNames), std::end(kActionNames), cmd.action) ==
      std::end(kActionNames)) {
    std::string offered;
    for (const std::string& action : node->offered())
      offered.append(offered.empty() ? "" : ", ").append(action);
    return error(codes::kInvalidValue,
                 "unknown action \"" + cmd.action + "\": node " + node->id + " (" + node->name +
                     ") offers " + (offered.empty() ? "none" : offered),
                 "action");
  }
  // The customer confirms in the portal, naming no action and knowing no node ids.
  if (ctx.actor.portal_customer && !node->for_customer()) {
    return error(codes::kActionNotAllowed,
                 "the ticket is not waiting for your confirmation: it is at " + node->name);
  }
  if (!node->offers(cmd.action)) {
    return error(codes::kActionNotAllowed,
                 "node " + node->id + " (" + node->name + ") does not offer " + cmd.action,
                 "action");
  }
  if (!may_act(s, *node, ctx.actor)) {
    return error(codes::kForbidden,
                 "only the assignees of node " + node->id + " (" + node->name + ") may act on it");
  }
  // The next node's assignees come from the flow: "to" with approve would be dropped unsaid.
  if (!cmd.to.empty() && cmd.action != "transfer") {
    return error(
        codes::kInvalidValue,
        "\"to\" names whom a transfer hands the to-do to; " + cmd.action + " follows the flow",
        "to");
  }
  if (auto e = check_comment(cmd.comment, "comment")) return *e;
  auto writes = check_writes(s, form, *node, cmd.fields, ctx, false);
  if (!writes.ok()) return writes.error();
  Decision d(ctx);
  if (!writes.value().empty()) add_fields_changed(d, writes.value());
  Object fields = merged(s.fields, writes.value());

  if (cmd.action == "transfer") {
    if (cmd.to.empty()) return error(codes::kRequired, "transfer needs \"to\": a user id", "to");
    if (!ctx.catalog->user(cmd.to))
      return error(codes::kInvalidValue, "no user \"" + cmd.to + "\"", "to");
    if (!active_user(*ctx.catalog, cmd.to))
      return error(codes::kInvalidValue, "user " + cmd.to + " is disabled", "to");
    if (!may_hold_todo(*ctx.catalog->user(cmd.to))) {
      return error(codes::kInvalidValue,
                   "user " + cmd.to +
                       " is an auditor, who reads everything and changes nothing: the ticket "
                       "would wait on no one",
                   "to");
    }
    d.add(et::kTransferred, {{"node", Value(node->id)},
                             {"from", Value(ctx.actor.id)},
                             {"to", Value(cmd.to)},
                             {"comment", Value(cmd.comment)}});
  } else if (cmd.action == "reject") {
    d.add(et::kRejected, {{"node", Value(node->id)},
                          {"to", Value(node->reject_to)},
                          {"comment", Value(cmd.comment)}});
    if (node->reject_to.empty()) {
      d.add(et::kFlowEnded, {{"node", Value(node->id)}, {"reason", Value("rejected")}});
      d.add(et::kTicketClosed, {{"reason", Value("rejected")}});
    } else if (auto e = enter(d, *flow.node(node->reject_to), node->id, fields)) {
      return *e;
    }
  } else {
    if (auto e = check_required(*node, fields, form)) return *e;
    const char* type = cmd.action == "submit"                            ? et::kFilled
                       : cmd.action == "confirm" || node->for_customer() ? et::kCustomerConfirmed
                                                                         : et::kApproved;
    d.add(type, {{"node", Value(node->id)}, {"comment", Value(cmd.comment)}});
    if (auto e = route_on(d, flow, *node, fields)) return *e;
  }
  settle_todos_of_actor(s, d);
  apply_rules(s, d, ctx);
  return std::move(d.events());
}

bool customer_may_reopen(const TicketState& s, const Context& ctx) {
  const int64_t until = portal_reopen_until(s, ctx.catalog->settings());
  return until && ctx.now_us <= until;
}

// A closed ticket taken back into its flow. Staff reopen it for the customer who calls again: the
// one who submitted it, whoever would act at the node it goes back to, or an administrator. The
// customer reopens it in the portal for the company's reopen_days after the close, to the node
// the flow first takes a ticket to.
Result<std::vector<DomainEvent>> reopen(const TicketState& s, const ReopenTicket& cmd,
                                        const FlowDef& flow, const Context& ctx) {
  if (!s.closed) {
    return error(codes::kActionNotAllowed,
                 "ticket " + s.id + " is open: only a closed ticket is reopened");
  }
  if (blank(cmd.reason)) {
    return error(codes::kRequired, "reason is required: why the ticket comes back", "reason");
  }
  if (auto e = check_comment(cmd.reason, "reason")) return *e;
  const Actor& actor = ctx.actor;
  if (actor.portal_customer && !cmd.node.empty()) {
    return error(codes::kForbidden, "the company decides where a reopened ticket goes", "node");
  }
  const NodeDef* node = cmd.node.empty() ? default_reopen_node(s, flow) : flow.node(cmd.node);
  if (!node) {
    return error(codes::kInvalidValue, "flow " + flow.id + " has no node \"" + cmd.node + "\"",
                 "node");
  }
  if (node->type == NodeType::kStart || node->type == NodeType::kEnd || node->for_customer()) {
    return error(codes::kInvalidValue,
                 "a reopened ticket goes to a node where staff work on it, not to " + node->id +
                     " (" + node->name + ")",
                 "node");
  }
  if (actor.portal_customer) {
    if (!customer_may_reopen(s, ctx)) {
      const int64_t days = ctx.catalog->settings().reopen_days;
      return error(codes::kTicketClosed,
                   "ticket " + s.id +
                       (days == 0 ? " is closed and is not reopened here"
                                  : " closed more than " + std::to_string(days) +
                                        " days ago and is no longer reopened here") +
                       ": please contact us again, naming " + s.id);
    }
  } else if (!staff_may_reopen_to(s, *node, actor)) {
    return error(codes::kForbidden, "ticket " + s.id +
                                        " is reopened by the one who submitted it, whoever acts "
                                        "at the node it goes back to (" +
                                        node->id + ", " + node->name + "), or an administrator");
  }
  Decision d(ctx);
  d.add(et::kTicketReopened, {{"reason", Value(cmd.reason)},
                              {"node", Value(node->id)},
                              {"by", Value(actor.portal_customer ? "customer" : "staff")}});
  if (auto e = enter(d, *node, s.node, s.fields)) return *e;
  apply_rules(s, d, ctx);
  return std::move(d.events());
}

// Everything a timer does gets an id derived from the timer, so a second firing of the same timer
// (after a crash, or from a racing scheduler) is a duplicate to the log as a whole.
void derive_ids(std::vector<DomainEvent>& events, const EventId& timer) {
  events[0].id = timer;
  for (size_t i = 1; i < events.size(); ++i) {
    events[i].id = EventId::derived(timer.to_string() + "/" + std::to_string(i));
  }
}

// An SLA warning or breach whose moment has come, if it has and is not recorded yet.
Result<std::vector<DomainEvent>> fire_sla(const TicketState& s, const std::string& name,
                                          const SlaTimer& timer, const Context& ctx) {
  std::vector<DomainEvent> nothing;
  if (std::find(s.sla_fired.begin(), s.sla_fired.end(), name) != s.sla_fired.end()) return nothing;
  const SlaPolicyDef* policy = applicable_sla_policy(s, *ctx.catalog);
  const CalendarDef* calendar = policy ? ctx.catalog->calendar(policy->calendar_id) : nullptr;
  if (!calendar) return nothing;
  SlaStatus status = compute_sla(s, *policy, *calendar, ctx.now_us);
  const SlaClock* clock = nullptr;
  for (const auto& c : status.clocks) {
    if (c.target == timer.target && c.cycle == timer.cycle) clock = &c;
  }
  int64_t at = !clock ? 0 : timer.warning ? clock->warn_at : clock->due_at;
  if (!clock || !clock->running() || at == 0 || at > ctx.now_us) return nothing;
  Decision d(ctx);
  d.add(timer.warning ? et::kSlaWarning : et::kSlaBreached,
        {{"policy", Value(policy->id)},
         {"policy_version", Value(static_cast<int64_t>(policy->version))},
         {"target", Value(timer.target)},
         {"cycle", Value(static_cast<int64_t>(timer.cycle))},
         {"limit", Value(clock->limit.text)},
         {"at", Value(format_rfc3339(at))},
         {"due_at", Value(clock->due_at ? Value(format_rfc3339(clock->due_at)) : Value())},
         {"timer", Value(name)}},
        kSystemActor);
  apply_rules(s, d, ctx);
  derive_ids(d.events(), timer_event_id(s.id, name, 0));
  return std::move(d.events());
}

// When a command closes the ticket, the SLA figures it closes with are recorded with it: later
// policy edits recompute open tickets only.
void finalize_sla(const TicketState& before, std::vector<DomainEvent>& events, const Context& ctx) {
  bool closes = std::any_of(events.begin(), events.end(),
                            [](const DomainEvent& e) { return e.type == et::kTicketClosed; });
  if (before.closed || !closes) return;  // most commands: no state to replay here
  TicketState after = before;
  for (const auto& e : events) evolve_in_place(after, e);
  const SlaPolicyDef* policy = applicable_sla_policy(after, *ctx.catalog);
  const CalendarDef* calendar = policy ? ctx.catalog->calendar(policy->calendar_id) : nullptr;
  if (!calendar) return;
  Value figures = sla_view(compute_sla(after, *policy, *calendar, ctx.now_us), ctx.now_us);
  std::optional<EventId> id;
  if (events[0].id) id = EventId::derived(events[0].id->to_string() + "/sla");
  events.push_back({et::kSlaFinalized, Value(Object{{"sla", std::move(figures)}}), kSystemActor,
                    ctx.now_us, id});
}

Result<std::vector<DomainEvent>> decide_command(const TicketState& s, const Command& command,
                                                const Context& ctx);

// A lookup's answer: the fields it fills, through the form's checks like anyone's writes (with
// the rules on those fields), or the reason it failed. Once per lookup: an answer to one that is
// not pending does nothing, and the events' ids derive from the lookup, so an answer recorded
// before a crash is a duplicate to the log.
Result<std::vector<DomainEvent>> apply_lookup(const TicketState& s, const ApplyLookup& cmd,
                                              const FormDef& form, const FlowDef& flow,
                                              const Context& ctx) {
  if (!s.open_request(OpenRequest::Kind::kLookup, cmd.lookup)) return std::vector<DomainEvent>{};
  std::string failure = cmd.error;
  Object changed;
  if (failure.empty() && s.closed) failure = "the ticket was closed before the answer came";
  if (failure.empty()) {
    const NodeDef* node = flow.node(s.node);
    auto writes = node ? check_writes(s, form, *node, cmd.fields, ctx, true)
                       : Result<Object>(error(codes::kInvalidDefinition, "no current node"));
    if (writes.ok()) {
      changed = std::move(writes.value());
    } else {
      failure = "the answer does not fit the form: " + writes.error().message;
    }
  }
  Decision d(ctx);
  const Value lookup(static_cast<int64_t>(cmd.lookup));
  if (!failure.empty()) {
    d.add(et::kLookupFailed,
          {{"lookup", lookup}, {"rule", Value(cmd.rule)}, {"error", Value(failure)}}, kSystemActor);
  } else {
    Array filled;
    for (const auto& [k, v] : changed) filled.emplace_back(k);
    d.add(et::kLookupCompleted,
          {{"lookup", lookup}, {"rule", Value(cmd.rule)}, {"filled", Value(std::move(filled))}},
          kSystemActor);
    if (!changed.empty()) add_fields_changed(d, changed, cmd.rule);
  }
  apply_rules(s, d, ctx);
  derive_ids(d.events(), lookup_event_id(s.id, cmd.lookup));
  return std::move(d.events());
}

}  // namespace

bool Actor::has_role(std::string_view role) const {
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

const Value& TicketState::field(std::string_view key) const { return lookup(fields, key); }

std::vector<uint64_t> TicketState::lookups_pending() const {
  std::vector<uint64_t> out;
  for (const OpenRequest& r : open_requests) {
    if (r.kind == OpenRequest::Kind::kLookup) out.push_back(r.version);
  }
  return out;
}

const OpenRequest* TicketState::open_request(OpenRequest::Kind kind, uint64_t version) const {
  for (const OpenRequest& r : open_requests) {
    if (r.kind == kind && r.version == version) return &r;
  }
  return nullptr;
}

// The read model keeps a million of these through make_shared, whose control block (16 bytes)
// sits beside each: up to 560 bytes a state fits tcmalloc's 576-byte size class, and a member
// that takes it past costs 64 bytes a ticket (the next class is 640).
static_assert(sizeof(void*) != 8 || sizeof(TicketState) <= 560,
              "TicketState outgrows its allocation size class: see the note above");

EventId lookup_event_id(std::string_view ticket, uint64_t lookup) {
  return EventId::derived("ticketd/lookup/" + std::string(ticket) + "/" + std::to_string(lookup));
}

EventId timer_event_id(std::string_view ticket, std::string_view rule, uint64_t entered_version) {
  return EventId::derived("ticketd/timer/" + std::string(ticket) + "/" + std::string(rule) + "/" +
                          std::to_string(entered_version));
}

Result<std::vector<DomainEvent>> decide(const TicketState& s, const Command& command,
                                        const Context& ctx) {
  auto events = decide_command(s, command, ctx);
  if (events.ok() && !events.value().empty()) finalize_sla(s, events.value(), ctx);
  return events;
}

namespace {

Result<std::vector<DomainEvent>> decide_command(const TicketState& s, const Command& command,
                                                const Context& ctx) {
  if (ctx.actor.reads_only()) return reads_only_refusal();
  if (const auto* cmd = std::get_if<SubmitTicket>(&command)) {
    if (s.exists()) return error(codes::kConflict, "ticket " + s.id + " exists already");
    return submit(*cmd, ctx);
  }
  if (!s.exists()) return error(codes::kNotFound, "no such ticket");
  const FormDef* form = ctx.catalog->form(s.form_id, s.form_version);
  const FlowDef* flow = ctx.catalog->flow(s.flow_id, s.flow_version);
  if (!form || !flow)
    return error(codes::kInvalidDefinition, "the ticket's definitions are missing");
  if (const auto* cmd = std::get_if<ApplyLookup>(&command)) {
    return apply_lookup(s, *cmd, *form, *flow, ctx);
  }
  if (const auto* cmd = std::get_if<ReopenTicket>(&command)) return reopen(s, *cmd, *flow, ctx);
  if (const auto* cmd = std::get_if<FinishTodo>(&command)) return finish_todo(s, *cmd, ctx);
  bool open_only = !std::holds_alternative<AddComment>(command) &&
                   !std::holds_alternative<RateTicket>(command) &&
                   !std::holds_alternative<AddAttachment>(command);
  if (s.closed && open_only) {
    if (std::holds_alternative<FireTimer>(command)) return std::vector<DomainEvent>{};
    return error(codes::kTicketClosed, "ticket " + s.id + " is closed");
  }

  Decision d(ctx);
  if (const auto* cmd = std::get_if<TakeAction>(&command)) return act(s, *cmd, *form, *flow, ctx);

  if (const auto* cmd = std::get_if<ChangeFields>(&command)) {
    if (cmd->expected_version && *cmd->expected_version != s.version) {
      return error(codes::kConflict, "ticket " + s.id + " is at version " +
                                         std::to_string(s.version) + ", not " +
                                         std::to_string(*cmd->expected_version));
    }
    const NodeDef* node = flow->node(s.node);
    if (!node || !may_act(s, *node, ctx.actor)) {
      return error(codes::kForbidden, "only the assignees of the current node may change fields");
    }
    auto writes = check_writes(s, *form, *node, cmd->fields, ctx, false);
    if (!writes.ok()) return writes.error();
    if (writes.value().empty()) return std::vector<DomainEvent>{};
    add_fields_changed(d, writes.value());
  } else if (const auto* cmd = std::get_if<AddComment>(&command)) {
    // Staff may still note something on a closed ticket; a customer's reply would reach nobody,
    // as no one works on it any more.
    if (s.closed && ctx.actor.portal_customer) {
      return error(codes::kTicketClosed,
                   "ticket " + s.id + " is closed, and a reply to it would reach nobody: " +
                       (customer_may_reopen(s, ctx) ? "reopen it, saying why, or contact us"
                                                    : "please contact us") +
                       " again, naming " + s.id);
    }
    if (blank(cmd->text)) return error(codes::kRequired, "text is required", "text");
    if (auto e = check_comment(cmd->text, "text")) return *e;
    Object data{{"text", Value(cmd->text)}};
    if (cmd->is_public && !ctx.actor.portal_customer) data.emplace_back("public", Value(true));
    d.add(et::kCommentAdded, std::move(data));
  } else if (const auto* cmd = std::get_if<AddAttachment>(&command)) {
    if (auto refused = ctx.actor.portal_customer ? customer_file_refused(s) : std::nullopt)
      return *refused;
    Object data{{"attachment", Value(cmd->attachment_id)},
                {"filename", Value(cmd->filename)},
                {"content_type", Value(cmd->content_type)},
                {"size", Value(static_cast<int64_t>(cmd->size))}};
    if (cmd->is_public && !ctx.actor.portal_customer) data.emplace_back("public", Value(true));
    d.add(et::kAttachmentAdded, std::move(data));
  } else if (const auto* cmd = std::get_if<RateTicket>(&command)) {
    // Satisfaction is the customer's word. The submitter is staff (the agent who took the
    // call), whose own score would grade their own work; an administrator may record a rating
    // the customer gave by phone.
    if (!ctx.actor.admin && !ctx.actor.portal_customer) {
      return error(codes::kForbidden,
                   "only the customer rates a ticket, in the portal (or an administrator, "
                   "recording the customer's rating)");
    }
    if (cmd->score < 1 || cmd->score > 5)
      return error(codes::kOutOfRange, "score must be 1 to 5", "score");
    if (s.rating) return error(codes::kActionNotAllowed, "the ticket is rated already", "score");
    // Satisfaction is with the outcome: a rating while the work goes on would count in the CSAT
    // figures for a service not yet given.
    if (!s.closed) {
      return error(codes::kActionNotAllowed, "a ticket is rated once it is closed", "score");
    }
    if (auto e = check_comment(cmd->comment, "comment")) return *e;
    d.add(et::kRated, {{"score", Value(cmd->score)}, {"comment", Value(cmd->comment)}});
  } else if (const auto* cmd = std::get_if<CloseTicket>(&command)) {
    if (!ctx.actor.admin)
      return error(codes::kForbidden, "only an administrator may close a ticket");
    d.add(et::kTicketClosed, {{"reason", Value(cmd->reason.empty() ? "closed" : cmd->reason)}});
  } else if (const auto* cmd = std::get_if<FireTimer>(&command)) {
    if (auto sla = parse_sla_timer_name(cmd->timer)) return fire_sla(s, cmd->timer, *sla, ctx);
    // A timer whose ticket has moved on, or that fired already, does nothing.
    const RuleDef* rule = ctx.catalog->rule(cmd->timer);
    bool due =
        rule && rule->enabled && rule->trigger.kind == RuleTrigger::Kind::kIdle &&
        rule->trigger.node == s.node && s.node_entered_version == cmd->entered_version &&
        std::find(s.timers_fired.begin(), s.timers_fired.end(), rule->id) == s.timers_fired.end();
    if (!due) return std::vector<DomainEvent>{};
    d.add(et::kTimerFired,
          {{"rule", Value(rule->id)},
           {"node", Value(s.node)},
           {"entered_version", Value(static_cast<int64_t>(cmd->entered_version))}},
          kSystemActor);
    apply_rules(s, d, ctx);
    derive_ids(d.events(), timer_event_id(s.id, rule->id, cmd->entered_version));
    return std::move(d.events());
  }
  apply_rules(s, d, ctx);
  return std::move(d.events());
}

}  // namespace

TicketState evolve(TicketState s, const DomainEvent& e) {
  evolve_in_place(s, e);
  return s;
}

namespace {

void settle(TicketState& s, OpenRequest::Kind kind, uint64_t version) {
  std::erase_if(s.open_requests,
                [&](const OpenRequest& r) { return r.kind == kind && r.version == version; });
}

}  // namespace

void evolve_in_place(TicketState& s, const DomainEvent& e) {
  const Value& d = e.data;
  // Compared as a view, a type is told apart by its length before any byte is (std::string ==
  // const char* compares bytes first), and every event goes through a dozen comparisons here.
  const std::string_view type = e.type;
  ++s.version;
  s.updated_at = e.at_us;
  const std::string_view actor = e.actor;
  evolve_assignees(s.assignees, type, d);
  bool human =
      actor != kSystemActor && actor != kPortalActor && actor != s.creator && !actor.empty();
  if (type == et::kTicketSubmitted) {
    s.id = d.string_or("id");
    s.form_id = d.string_or("form");
    s.form_version = static_cast<uint64_t>(as_int(d["form_version"]));
    s.flow_id = d.string_or("flow");
    s.flow_version = static_cast<uint64_t>(as_int(d["flow_version"]));
    s.fields = d["fields"].as_object();
    s.portal_code = d.string_or("portal_code");
    s.creator = e.actor;
    s.created_at = e.at_us;
    s.sla_marks.push_back({SlaMark::Kind::kSubmitted, e.at_us, "", {}});
    return;
  }
  if (type == et::kFieldsChanged) {
    Object before;
    for (const Member& change : d["fields"].as_object()) {
      before.emplace_back(change.first, lookup(s.fields, change.first));
    }
    s.sla_marks.push_back({SlaMark::Kind::kFields, e.at_us, "", std::move(before)});
    for (const Member& change : d["fields"].as_object()) {
      if (change.second.is_null()) {
        std::erase_if(s.fields, [&](const Member& m) { return m.first == change.first; });
      } else {
        set_member(s.fields, change.first, change.second);
      }
    }
  } else if (type == et::kNodeEntered) {
    if (!s.timeline.empty() && s.timeline.back().left_at == 0) s.timeline.back().left_at = e.at_us;
    s.node = d.string_or("node");
    for (const auto& t : s.timeline) s.reentered |= t.node == s.node;
    s.timeline.push_back({s.node, e.at_us, 0});
    s.node_entered_version = s.version;
    s.node_entered_at = e.at_us;
    s.timers_fired.clear();
    s.sla_marks.push_back({SlaMark::Kind::kNode, e.at_us, s.node, {}});
  } else if (type == et::kTransferred) {
    s.transferred = true;
  } else if (type == et::kRejected) {
    s.rejected = true;
  } else if (type == et::kFlowEnded) {
    s.flow_ended = true;
  } else if (type == et::kTicketClosed) {
    s.closed = true;
    s.closed_at = e.at_us;
    s.sla_marks.push_back({SlaMark::Kind::kClosed, e.at_us, "", {}});
  } else if (type == et::kTicketReopened) {
    // The NodeEntered that follows puts it at a node again, with its assignees. What the close
    // settled is unsettled: the outcome the customer rated and the SLA figures are the next
    // close's. Both stay in the log.
    s.closed = false;
    s.flow_ended = false;
    s.closed_at = 0;
    ++s.reopens;
    s.rating.reset();
    s.rated_at = 0;
    s.rating_comment.clear();
    s.sla_final = Value();
    s.sla_marks.push_back({SlaMark::Kind::kReopened, e.at_us, "", {}});
  } else if (type == et::kRated) {
    s.rating = static_cast<int>(as_int(d["score"]));
    s.rated_at = e.at_us;
    s.rating_comment = d.string_or("comment");
  } else if (type == et::kCommentAdded) {
    ++s.comments;
    if (actor == kPortalActor)
      s.sla_marks.push_back({SlaMark::Kind::kCustomerReply, e.at_us, "", {}});
  } else if (type == et::kAttachmentAdded) {
    s.attachments.push_back(d.string_or("attachment"));
    if (file_reply_by_customer(e)) {
      s.sla_marks.push_back({SlaMark::Kind::kCustomerReply, e.at_us, "", {}});
      ++s.customer_files;
    }
  } else if (type == et::kTimerFired) {
    s.timers_fired.push_back(d.string_or("rule"));
  } else if (type == et::kSlaWarning || type == et::kSlaBreached) {
    s.sla_fired.push_back(d.string_or("timer"));
  } else if (type == et::kSlaFinalized) {
    s.sla_final = d["sla"];
  } else if (type == et::kLookupRequested) {
    s.open_requests.push_back({OpenRequest::Kind::kLookup, s.version, {}, {}, 0});
  } else if (type == et::kLookupCompleted || type == et::kLookupFailed) {
    settle(s, OpenRequest::Kind::kLookup, static_cast<uint64_t>(as_int(d["lookup"])));
  } else if (type == et::kNotificationRequested) {
    if (opens_todo(d)) {
      const bool role = d.string_or("recipient") == "role";
      s.open_requests.push_back(
          {OpenRequest::Kind::kTodo,
           s.version,
           {role ? AssigneeSpec::Kind::kRole : AssigneeSpec::Kind::kUser, d.string_or("to")},
           d.string_or("text"),
           e.at_us});
    }
  } else if (type == et::kTodoDone) {
    settle(s, OpenRequest::Kind::kTodo, static_cast<uint64_t>(as_int(d["todo"])));
  }
  // First response: the first thing someone other than the submitter (and not a rule) did. An
  // internal note is not one: the customer waiting for an answer never sees it.
  bool responds = type == et::kApproved || type == et::kRejected || type == et::kTransferred ||
                  type == et::kFilled || type == et::kFieldsChanged ||
                  (type == et::kCommentAdded && d["public"].as_bool()) || file_reply_by_staff(e);
  if (responds && human) {
    if (s.first_response_at == 0) s.first_response_at = e.at_us;
    s.sla_marks.push_back({SlaMark::Kind::kResponse, e.at_us, "", {}});
  }
}

DomainError reads_only_refusal() {
  return {codes::kForbidden, "auditors read everything and change nothing", ""};
}

std::optional<DomainError> customer_file_refused(const TicketState& s) {
  if (s.closed) {
    return DomainError{codes::kTicketClosed,
                       "ticket " + s.id +
                           " is closed, and a file sent to it would reach nobody: please contact "
                           "us again, naming " +
                           s.id,
                       ""};
  }
  if (s.customer_files >= kMaxCustomerFiles) {
    return DomainError{codes::kOutOfRange,
                       "ticket " + s.id + " holds " + std::to_string(kMaxCustomerFiles) +
                           " files from you already, as many as a ticket takes",
                       "body"};
  }
  return std::nullopt;
}

int64_t portal_reopen_until(const TicketState& s, const CompanySettings& settings) {
  if (!s.closed || settings.reopen_days <= 0) return 0;
  return s.closed_at + settings.reopen_days * 86400LL * 1000000LL;
}

namespace {

// The types evolve_in_place() takes from their type, actor and time alone. Any other type, a new
// one too, counts as read.
bool data_read_by_type(std::string_view type) {
  static constexpr std::string_view kTypeOnly[] = {
      et::kApproved,  et::kRejected,     et::kFilled,         et::kCustomerConfirmed,
      et::kFlowEnded, et::kTicketClosed, et::kTicketReopened, et::kLookupRequested};
  return std::find(std::begin(kTypeOnly), std::end(kTypeOnly), type) == std::end(kTypeOnly);
}

}  // namespace

bool evolve_reads_data(std::string_view type, std::string_view payload) {
  // The member as Value::to_json writes it. A quote inside a string is escaped, so no text a
  // notification carries can look like it.
  if (type == et::kNotificationRequested) return payload.find("\"todo\":true") != payload.npos;
  return data_read_by_type(type);
}

bool evolve_reads_data(const DomainEvent& e) {
  if (e.type == et::kNotificationRequested) {
    return opens_todo(e.data);
  }
  return data_read_by_type(e.type);
}

std::vector<RuleDryRunHit> dry_run_rule(const RuleDef& rule, const std::vector<DomainEvent>& events,
                                        const Catalog& catalog, int64_t from_us, int64_t to_us) {
  std::vector<RuleDryRunHit> hits;
  auto fire = [&](const TicketState& state, int64_t at, const std::string& trigger,
                  const std::string& comment = "") {
    if (at < from_us || at > to_us) return;
    if (rule.when && !evaluate(*rule.when, state.fields)) return;
    Context ctx;
    ctx.actor = Actor{kSystemActor, {}, false, false, false};
    ctx.now_us = at;
    ctx.catalog = &catalog;
    Decision d(ctx);
    run_actions(d, rule, state, catalog.flow(state.flow_id, state.flow_version), catalog, comment,
                state.closed ? std::vector<AssigneeSpec>{} : state.assignees);
    hits.push_back({at, state.version, trigger, std::move(d.events())});
  };
  // An idle deadline fires when the ticket is still in the node then: before the next event that
  // moves it on (or at all, if none came).
  uint64_t fired_entry = 0;  // the node entry (its stream version) whose deadline has fired
  auto idle_due = [&](const TicketState& s) -> int64_t {
    bool waiting = rule.trigger.kind == RuleTrigger::Kind::kIdle && !s.closed &&
                   s.node == rule.trigger.node && s.node_entered_version != fired_entry;
    return waiting ? s.node_entered_at + rule.trigger.after_us : 0;
  };
  TicketState state;
  for (const DomainEvent& e : events) {
    if (int64_t due = idle_due(state); due && due < e.at_us) {
      fire(state, due, "idle");
      fired_entry = state.node_entered_version;
    }
    evolve_in_place(state, e);
    if (e.data.string_or("rule") == rule.id) continue;
    if (rule.trigger.kind != RuleTrigger::Kind::kIdle && triggers(rule, e)) {
      fire(state, e.at_us, e.type, comment_of(e));
    }
  }
  if (int64_t due = idle_due(state)) fire(state, due, "idle");
  return hits;
}

std::vector<PendingTimer> pending_idle_timers(const TicketState& s, const Catalog& catalog) {
  std::vector<PendingTimer> out;
  if (!s.exists() || s.closed) return out;
  for (const RuleDef* rule : catalog.rules_for_form(s.form_id)) {
    if (rule->trigger.kind != RuleTrigger::Kind::kIdle || rule->trigger.node != s.node) continue;
    if (std::find(s.timers_fired.begin(), s.timers_fired.end(), rule->id) != s.timers_fired.end())
      continue;
    out.push_back({rule->id, s.node_entered_at + rule->trigger.after_us, s.node_entered_version});
  }
  return out;
}

std::optional<PickedMember> picked_member(const DomainEvent& e) {
  const Value* picked = e.type == et::kNodeEntered ? e.data.find("picked") : nullptr;
  if (!picked) return std::nullopt;
  return PickedMember{picked->string_or("role"), picked->string_or("user")};
}

TicketDeadlines ticket_deadlines(const TicketState& s, const Catalog& catalog) {
  TicketDeadlines out;
  out.timers = pending_idle_timers(s, catalog);
  // The outlook reads what sla_standing() reads: idle-rule deadlines beside the policy's targets,
  // the figures of a close, else the clocks.
  SlaOutlook& sla = out.sla;
  for (const auto& timer : out.timers) {
    if (!sla.due_at || timer.due_at < sla.due_at) sla.due_at = timer.due_at;
  }
  if (!s.timers_fired.empty()) {
    sla.breached_from = INT64_MIN;
  } else if (sla.due_at) {
    sla.breached_from = sla.due_at;
  }
  const bool finalized = !s.sla_final.is_null();
  if (finalized) {
    sla.due_at = 0;
    if (s.sla_final["breached"].is_bool() && s.sla_final["breached"].as_bool())
      sla.breached_from = INT64_MIN;
  }
  if (!s.exists() || s.closed) return out;
  const SlaPolicyDef* policy = applicable_sla_policy(s, catalog);
  const CalendarDef* calendar = policy ? catalog.calendar(policy->calendar_id) : nullptr;
  if (!calendar) return out;
  // Counted up to the last event: until the next one, the clocks only run on, so a deadline
  // reckoned now is the one reckoned at any later time.
  const SlaStatus status = compute_sla(s, *policy, *calendar, s.updated_at);
  for (const SlaClock& c : status.clocks) {
    if (!c.running()) continue;
    for (bool warning : {true, false}) {
      int64_t at = warning ? c.warn_at : c.due_at;
      std::string name = sla_timer_name({c.target, c.cycle, warning});
      if (at && std::find(s.sla_fired.begin(), s.sla_fired.end(), name) == s.sla_fired.end())
        out.timers.push_back({name, at, 0});
    }
  }
  if (finalized) return out;
  const int64_t nearest = nearest_due(status);
  if (nearest && (!sla.due_at || nearest < sla.due_at)) sla.due_at = nearest;
  for (const SlaClock& c : status.clocks) {
    if (!c.due_at) continue;
    if (c.running()) {
      sla.breached_from = std::min(sla.breached_from, c.due_at);
    } else if (c.due_at <= c.stopped_at) {
      sla.breached_from = INT64_MIN;
    }
  }
  return out;
}

}  // namespace ticketd
