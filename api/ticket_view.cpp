#include "api/ticket_view.h"

#include <algorithm>
#include <map>
#include <set>

#include "domain/permissions.h"
#include "domain/time_format.h"

namespace ticketd::api {
namespace {

void time_or_null(JsonWriter& w, std::string_view key, int64_t us) {
  w.key(key);
  if (us)
    w.string(format_rfc3339(us));
  else
    w.null();
}

void assignees(JsonWriter& w, const TicketState& t) {
  w.key("assignees").begin_array();
  for (const auto& a : t.assignees) {
    w.begin_object()
        .key(a.kind == AssigneeSpec::Kind::kRole ? "role" : "user")
        .string(a.id)
        .end_object();
  }
  w.end_array();
}

// The "fields" object: what the actor may read of the ticket's fields, written where they are.
void readable_fields_object(JsonWriter& w, const TicketState& t, const FlowDef* flow,
                            const Actor& actor) {
  w.key("fields").begin_object();
  if (flow) {
    for_each_readable_field(t, *flow, actor, [&w](const std::string& key, const Value& value) {
      w.key(key);
      value.write(w);
    });
  }
  w.end_object();
}

bool from_customer(const projections::AttachmentInfo& a) { return a.uploader == kPortalActor; }

// The files attached to the ticket itself (not held in a field), in the order they came:
// {"id","filename","content_type","size","by"}. Staff see every one, `by` the uploader's user id
// or "customer", and `"public":true` on those sent to the customer. The customer sees what they
// sent and what staff sent them, `by` "customer" or "staff" with the staff member's name.
void attachment_list(JsonWriter& w, const TicketState& t, const Catalog& catalog,
                     const projections::AttachmentMap& attachments, bool for_customer) {
  w.key("attachments").begin_array();
  for (const std::string& id : t.attachments) {
    auto it = attachments.find(id);
    if (it == attachments.end()) continue;
    const projections::AttachmentInfo& a = it->second;
    if (for_customer && !from_customer(a) && !a.shown_to_customer) continue;
    w.begin_object().key("id").string(a.id).key("filename").string(a.filename);
    w.key("content_type").string(a.content_type).key("size").number(a.size);
    if (from_customer(a)) {
      w.key("by").string("customer");
    } else if (for_customer) {
      w.key("by").string("staff").key("name").string(name_for_customer(catalog, a.uploader));
    } else {
      w.key("by").string(a.uploader);
      if (a.shown_to_customer) w.key("public").boolean(true);
    }
    w.end_object();
  }
  w.end_array();
}

}  // namespace

void write_ticket_view(JsonWriter& w, const TicketState& t, const Catalog& catalog,
                       const projections::AttachmentMap& attachments, const Actor& actor,
                       int64_t now_us, bool past) {
  const FlowDef* flow = catalog.flow(t.flow_id, t.flow_version);
  const NodeDef* node = flow ? flow->node(t.node) : nullptr;
  w.begin_object();
  w.key("id").string(t.id);
  w.key("form").string(t.form_id).key("form_version").number(t.form_version);
  w.key("flow").string(t.flow_id).key("flow_version").number(t.flow_version);
  w.key("version").number(t.version);
  w.key("state").string(t.closed ? "closed" : "open");
  w.key("node").begin_object().key("id").string(t.node);
  w.key("name").string(node ? node->name : t.node);
  w.key("type").string(node ? node_type_name(node->type) : "");
  w.end_object();
  assignees(w, t);
  // What the caller may do here now, so a client draws the node's buttons and inputs without
  // repeating who may act: the same test decide() applies.
  NodeWork work = flow && !past ? work_at_node(t, *flow, actor) : NodeWork{};
  w.key("you").begin_object();
  for (const auto& [key, list] :
       {std::pair{"actions", &work.actions}, std::pair{"writable", &work.writable},
        std::pair{"required", &work.required}}) {
    w.key(key).begin_array();
    for (const std::string& item : *list) w.string(item);
    w.end_array();
  }
  w.key("reopen").boolean(flow && !past && staff_may_reopen(t, *flow, actor));
  // The open to-dos the caller may mark done (POST …/todos/{id}/done): their own, or every one
  // for an administrator.
  w.key("todos").begin_array();
  for (const OpenRequest& r : t.open_requests) {
    if (past || r.kind != OpenRequest::Kind::kTodo || !(actor.admin || holds_todo(r, actor)))
      continue;
    w.begin_object().key("id").number(r.version);
    w.key("for").begin_object();
    w.key(r.to.kind == AssigneeSpec::Kind::kRole ? "role" : "user").string(r.to.id);
    // The customer's portal code is theirs (and an administrator's), as in the notifications list.
    w.end_object().key("text").string(actor.admin ? r.text
                                                  : without_portal_code(r.text, t.portal_code));
    time_or_null(w, "given_at", r.given_at);
    w.end_object();
  }
  w.end_array();
  w.end_object();
  readable_fields_object(w, t, flow, actor);
  w.key("priority");
  t.field("priority").write(w);
  w.key("creator").string(t.creator);
  time_or_null(w, "created_at", t.created_at);
  time_or_null(w, "updated_at", t.updated_at);
  time_or_null(w, "first_response_at", t.first_response_at);
  time_or_null(w, "closed_at", t.closed_at);
  w.key("sla");
  ticket_sla(t, catalog, now_us).view.write(w);
  if (t.rating) w.key("rating").number(static_cast<int64_t>(*t.rating));
  // How often a close did not hold: a count a client shows beside the state (the history says
  // when and why).
  w.key("reopens").number(static_cast<uint64_t>(t.reopens));
  // A portal command's answer shows the customer what the portal does.
  attachment_list(w, t, catalog, attachments, actor.portal_customer);
  // Lookups asked and not answered yet (by their request's stream version): a client can say
  // the CRM is being asked rather than show the fields as empty for good.
  if (const std::vector<uint64_t> lookups = t.lookups_pending(); !lookups.empty()) {
    w.key("lookups_pending").begin_array();
    for (uint64_t lookup : lookups) w.number(lookup);
    w.end_array();
  }
  w.end_object();
}

namespace {

// A cell: text as it is, a list of texts (multi-select, attachments) joined, anything else as JSON.
Value cell_of(const Value& v) {
  if (v.is_null() || v.is_string()) return v.is_null() ? Value("") : v;
  if (v.is_array()) {
    std::string joined;
    for (const auto& item : v.as_array()) {
      if (!joined.empty()) joined += "; ";
      joined += item.is_string() ? item.as_string() : item.to_json();
    }
    return Value(joined);
  }
  return Value(v.to_json());
}

Value time_cell(int64_t us, const date::time_zone* zone) {
  if (!us) return Value("");
  return Value(zone ? format_local_second(us, zone) : format_rfc3339(us));
}

}  // namespace

const std::vector<std::string>& ticket_table_columns() {
  static const std::vector<std::string> kColumns = {"id",         "form",       "state",
                                                    "node",       "assignees",  "creator",
                                                    "created_at", "updated_at", "first_response_at",
                                                    "closed_at",  "sla_due_at", "sla_breached",
                                                    "rating"};
  return kColumns;
}

void TicketTable::add(const TicketState& t, const Catalog& catalog, const SlaStanding& sla) {
  const FlowDef* flow = catalog.flow(t.flow_id, t.flow_version);
  const FormDef* form = catalog.form(t.form_id, t.form_version);
  if (form && std::none_of(forms_.begin(), forms_.end(), [&](const FormFields& f) {
        return f.id == t.form_id && f.version == t.form_version;
      })) {
    FormFields& fields = forms_.emplace_back(FormFields{t.form_id, t.form_version, {}});
    for (const auto& f : form->fields) fields.fields.emplace_back(f.key, f.label);
  }
  const NodeDef* node = flow ? flow->node(t.node) : nullptr;
  std::string held;
  for (const auto& a : t.assignees) {
    if (!held.empty()) held += "; ";
    held += a.kind == AssigneeSpec::Kind::kRole ? "role:" + a.id : a.id;
  }
  Row& row = rows_.emplace_back();
  row.cells = {Value(t.id),
               Value(t.form_id),
               Value(t.closed ? "closed" : "open"),
               Value(node ? node->name : t.node),
               Value(held),
               Value(t.creator),
               time_cell(t.created_at, zone_),
               time_cell(t.updated_at, zone_),
               time_cell(t.first_response_at, zone_),
               time_cell(t.closed_at, zone_),
               time_cell(sla.due_at, zone_),
               Value(sla.breached ? "true" : "false"),
               Value(t.rating ? std::to_string(*t.rating) : std::string())};
  if (!flow) return;
  for_each_readable_field(t, *flow, actor_, [&](const std::string& key, const Value& value) {
    read_somewhere_.insert(key);
    const FieldDef* f = zone_ && form ? form->field(key) : nullptr;
    std::optional<int64_t> time;
    if (f && f->type == FieldType::kDatetime && value.is_string())
      time = parse_rfc3339(value.as_string());
    row.read.emplace_back(key, time ? time_cell(*time, zone_) : cell_of(value));
  });
}

projections::ReportTable TicketTable::finish() && {
  projections::ReportTable table;
  table.columns = ticket_table_columns();
  const size_t fixed = table.columns.size();
  std::map<std::string, size_t> column_of;  // field columns, in the order their forms list them
  for (const FormFields& form : forms_) {
    for (const auto& [key, label] : form.fields) {
      if (column_of.count(key) || !read_somewhere_.count(key)) continue;
      const size_t column = column_of.size();
      column_of[key] = column;
      // The label heads the column; a label two fields share says which key it is.
      std::string head = label.empty() ? key : label;
      if (std::find(table.columns.begin(), table.columns.end(), head) != table.columns.end()) {
        head += " (" + key + ")";
      }
      table.columns.push_back(head);
    }
  }
  table.rows.reserve(rows_.size());
  for (Row& row : rows_) {
    row.cells.resize(fixed + column_of.size(), Value(""));
    for (auto& [key, cell] : row.read) {
      if (auto it = column_of.find(key); it != column_of.end())
        row.cells[fixed + it->second] = std::move(cell);
    }
    table.rows.push_back(std::move(row.cells));
  }
  return table;
}

void write_portal_view(JsonWriter& w, const TicketState& t, const Catalog& catalog,
                       const projections::AttachmentMap& attachments,
                       const std::vector<WrittenNote>& notes, int64_t now_us) {
  const FlowDef* flow = catalog.flow(t.flow_id, t.flow_version);
  auto name_of = [&](const std::string& id) {
    const NodeDef* n = flow ? flow->node(id) : nullptr;
    return n ? n->name : id;
  };
  w.begin_object();
  w.key("id").string(t.id);
  w.key("state").string(t.closed ? "closed" : "open");
  w.key("node")
      .begin_object()
      .key("id")
      .string(t.node)
      .key("name")
      .string(name_of(t.node))
      .end_object();
  w.key("timeline").begin_array();
  for (const auto& step : t.timeline) {
    w.begin_object().key("node").string(step.node).key("name").string(name_of(step.node));
    time_or_null(w, "entered_at", step.entered_at);
    time_or_null(w, "left_at", step.left_at);
    w.end_object();
  }
  w.end_array();
  Actor customer{kPortalActor, {"customer"}, false, false, true};
  readable_fields_object(w, t, flow, customer);
  const NodeDef* node = flow ? flow->node(t.node) : nullptr;
  w.key("can_confirm").boolean(!t.closed && node && node->for_customer());
  w.key("can_rate").boolean(t.closed && !t.rating.has_value());
  w.key("can_comment").boolean(!t.closed);
  w.key("can_attach").boolean(!customer_file_refused(t));
  // Until when the customer may reopen the closed ticket (the company's reopen_days), so that a
  // page can offer it and say by when.
  const int64_t reopen_until = portal_reopen_until(t, catalog.settings());
  const bool can_reopen = reopen_until && now_us <= reopen_until;
  w.key("can_reopen").boolean(can_reopen);
  if (can_reopen) time_or_null(w, "reopen_until", reopen_until);
  w.key("conversation").begin_array();
  for (const WrittenNote& n : notes) {
    if (!n.note.customer_reads()) continue;
    const bool customer = n.note.kind == TicketNote::Kind::kCustomer;
    w.begin_object().key("time").string(format_rfc3339(n.at_us));
    w.key("from").string(customer ? "customer" : "staff");
    if (!customer) w.key("name").string(name_for_customer(catalog, n.author));
    w.key("text").string(n.note.text).end_object();
  }
  w.end_array();
  attachment_list(w, t, catalog, attachments, true);
  w.end_object();
}

std::string without_portal_code(std::string text, const std::string& code) {
  if (code.empty()) return text;
  for (size_t at = text.find(code); at != std::string::npos; at = text.find(code, at)) {
    text.replace(at, code.size(), "••••••");
  }
  return text;
}

std::string name_for_customer(const Catalog& catalog, const std::string& user) {
  const User* u = catalog.user(user);
  return u && !u->name.empty() ? u->name : "客服";
}

void write_user(JsonWriter& w, const User& u) {
  w.begin_object();
  write_user_members(w, u);
  w.end_object();
}

void write_user_members(JsonWriter& w, const User& u) {
  w.key("id").string(u.id).key("name").string(u.name).key("roles").begin_array();
  for (const auto& r : u.roles) w.string(r);
  w.end_array().key("phone").string(u.phone).key("email").string(u.email);
  w.key("disabled").boolean(u.disabled).key("version").number(u.version);
}

void write_definition(JsonWriter& w, std::string_view id, uint64_t version, const Value& document) {
  w.begin_object().key("id").string(id).key("version").number(version);
  for (const auto& [k, v] : document.as_object()) {
    w.key(k);
    v.write(w);
  }
  w.end_object();
}

}  // namespace ticketd::api
