#include "projections/ticket_codec.h"

#include <algorithm>

#include "projections/ticket_snapshot_generated.h"

namespace ticketd::projections {
namespace {

namespace fbs = ticketd::fb::snapshot;
using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

Offset<flatbuffers::String> text(FlatBufferBuilder& fbb, const std::string& s) {
  return fbb.CreateString(s.data(), s.size());
}

Offset<flatbuffers::Vector<Offset<flatbuffers::String>>> texts(
    FlatBufferBuilder& fbb, const std::vector<std::string>& list) {
  if (list.empty()) return 0;
  std::vector<Offset<flatbuffers::String>> out;
  out.reserve(list.size());
  for (const auto& s : list) out.push_back(text(fbb, s));
  return fbb.CreateVector(out);
}

Offset<fbs::Value> encode_value(FlatBufferBuilder& fbb, const Value& v);

Offset<fbs::Value> encode_object(FlatBufferBuilder& fbb, const Object& o) {
  std::vector<Offset<flatbuffers::String>> keys;
  std::vector<Offset<fbs::Value>> items;
  keys.reserve(o.size());
  items.reserve(o.size());
  for (const auto& [key, value] : o) {
    keys.push_back(text(fbb, key));
    items.push_back(encode_value(fbb, value));
  }
  return fbs::CreateValue(fbb, fbs::ValueKind::Object, 0, 0, fbb.CreateVector(items),
                          fbb.CreateVector(keys));
}

Offset<fbs::Value> encode_value(FlatBufferBuilder& fbb, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kNull:
      return fbs::CreateValue(fbb, fbs::ValueKind::Null);
    case Value::Kind::kBool:
      return fbs::CreateValue(fbb, v.as_bool() ? fbs::ValueKind::True : fbs::ValueKind::False);
    case Value::Kind::kNumber:
      return fbs::CreateValue(fbb, fbs::ValueKind::Number, v.as_number());
    case Value::Kind::kString:
      return fbs::CreateValue(fbb, fbs::ValueKind::String, 0, text(fbb, v.as_string()));
    case Value::Kind::kArray: {
      std::vector<Offset<fbs::Value>> items;
      items.reserve(v.as_array().size());
      for (const auto& item : v.as_array()) items.push_back(encode_value(fbb, item));
      return fbs::CreateValue(fbb, fbs::ValueKind::Array, 0, 0, fbb.CreateVector(items));
    }
    case Value::Kind::kObject:
      return encode_object(fbb, v.as_object());
  }
  return 0;
}

std::string str(const flatbuffers::String* s) { return s ? s->str() : std::string(); }

std::vector<std::string> strs(const flatbuffers::Vector<Offset<flatbuffers::String>>* list) {
  std::vector<std::string> out;
  if (!list) return out;
  out.reserve(list->size());
  for (const auto* s : *list) out.push_back(s->str());
  return out;
}

bool decode_value(const fbs::Value* v, Value* out);

bool decode_object(const fbs::Value* v, Object* out) {
  if (!v || v->kind() != fbs::ValueKind::Object) return false;
  const auto* keys = v->keys();
  const auto* items = v->items();
  size_t n = keys ? keys->size() : 0;
  if ((items ? items->size() : 0) != n) return false;
  out->clear();
  out->reserve(n);
  for (size_t i = 0; i < n; ++i) {
    Value value;
    if (!decode_value(items->Get(i), &value)) return false;
    out->emplace_back(keys->Get(i)->str(), std::move(value));
  }
  return true;
}

bool decode_value(const fbs::Value* v, Value* out) {
  if (!v) return false;
  switch (v->kind()) {
    case fbs::ValueKind::Null:
      *out = Value();
      return true;
    case fbs::ValueKind::False:
      *out = Value(false);
      return true;
    case fbs::ValueKind::True:
      *out = Value(true);
      return true;
    case fbs::ValueKind::Number:
      *out = Value(v->number());
      return true;
    case fbs::ValueKind::String:
      *out = Value(str(v->text()));
      return true;
    case fbs::ValueKind::Array: {
      Array items;
      if (const auto* list = v->items()) {
        items.reserve(list->size());
        for (const auto* item : *list) {
          if (!decode_value(item, &items.emplace_back())) return false;
        }
      }
      *out = Value(std::move(items));
      return true;
    }
    case fbs::ValueKind::Object: {
      Object members;
      if (!decode_object(v, &members)) return false;
      *out = Value(std::move(members));
      return true;
    }
  }
  return false;
}

}  // namespace

void encode_ticket(const TicketState& t, FlatBufferBuilder& fbb) {
  fbb.Clear();
  std::vector<Offset<fbs::Assignee>> assignees;
  assignees.reserve(t.assignees.size());
  for (const auto& a : t.assignees) {
    assignees.push_back(
        fbs::CreateAssignee(fbb, a.kind == AssigneeSpec::Kind::kRole, text(fbb, a.id)));
  }
  std::vector<Offset<fbs::Step>> timeline;
  timeline.reserve(t.timeline.size());
  for (const auto& s : t.timeline) {
    timeline.push_back(fbs::CreateStep(fbb, text(fbb, s.node), s.entered_at, s.left_at));
  }
  std::vector<Offset<fbs::SlaMark>> marks;
  marks.reserve(t.sla_marks.size());
  for (const auto& m : t.sla_marks) {
    marks.push_back(fbs::CreateSlaMark(fbb, static_cast<uint8_t>(m.kind), m.at_us,
                                       text(fbb, m.node), encode_object(fbb, m.fields)));
  }
  // Tables are built children first; the builder's argument order is unspecified, so each child
  // gets its own statement.
  auto id = text(fbb, t.id);
  auto form = text(fbb, t.form_id);
  auto flow = text(fbb, t.flow_id);
  auto creator = text(fbb, t.creator);
  auto portal_code = text(fbb, t.portal_code);
  auto node = text(fbb, t.node);
  auto assignee_list = fbb.CreateVector(assignees);
  auto timers_fired = texts(fbb, t.timers_fired);
  auto fields = encode_object(fbb, t.fields);
  auto steps = fbb.CreateVector(timeline);
  auto rating_comment = text(fbb, t.rating_comment);
  auto attachments = texts(fbb, t.attachments);
  auto mark_list = fbb.CreateVector(marks);
  auto sla_fired = texts(fbb, t.sla_fired);
  auto sla_final = encode_value(fbb, t.sla_final);
  std::vector<uint64_t> lookups;
  std::vector<flatbuffers::Offset<fbs::Todo>> todo_list;
  for (const OpenRequest& r : t.open_requests) {
    if (r.kind == OpenRequest::Kind::kLookup) {
      lookups.push_back(r.version);
    } else {
      auto to = text(fbb, r.to.id);
      auto what = text(fbb, r.text);
      todo_list.push_back(fbs::CreateTodo(fbb, r.version, r.to.kind == AssigneeSpec::Kind::kRole,
                                          to, what, r.given_at));
    }
  }
  auto lookups_pending = lookups.empty() ? flatbuffers::Offset<flatbuffers::Vector<uint64_t>>()
                                         : fbb.CreateVector(lookups);
  auto todos = todo_list.empty()
                   ? flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fbs::Todo>>>()
                   : fbb.CreateVector(todo_list);

  fbs::TicketBuilder b(fbb);
  b.add_id(id);
  b.add_version(t.version);
  b.add_form(form);
  b.add_form_version(t.form_version);
  b.add_flow(flow);
  b.add_flow_version(t.flow_version);
  b.add_creator(creator);
  b.add_portal_code(portal_code);
  b.add_closed(t.closed);
  b.add_flow_ended(t.flow_ended);
  b.add_node(node);
  b.add_assignees(assignee_list);
  b.add_node_entered_version(t.node_entered_version);
  b.add_node_entered_at(t.node_entered_at);
  if (!timers_fired.IsNull()) b.add_timers_fired(timers_fired);
  b.add_fields(fields);
  b.add_created_at(t.created_at);
  b.add_updated_at(t.updated_at);
  b.add_first_response_at(t.first_response_at);
  b.add_closed_at(t.closed_at);
  b.add_timeline(steps);
  b.add_rejected(t.rejected);
  b.add_transferred(t.transferred);
  b.add_reentered(t.reentered);
  b.add_rated(t.rating.has_value());
  b.add_rating(t.rating.value_or(0));
  b.add_rated_at(t.rated_at);
  b.add_rating_comment(rating_comment);
  b.add_comments(t.comments);
  if (!attachments.IsNull()) b.add_attachments(attachments);
  b.add_sla_marks(mark_list);
  if (!sla_fired.IsNull()) b.add_sla_fired(sla_fired);
  b.add_sla_final(sla_final);
  if (!lookups_pending.IsNull()) b.add_lookups_pending(lookups_pending);
  if (t.reopens) b.add_reopens(t.reopens);
  if (t.customer_files) b.add_customer_files(t.customer_files);
  if (!todos.IsNull()) b.add_todos(todos);
  fbb.FinishSizePrefixed(b.Finish());
}

bool decode_ticket(const uint8_t* data, size_t size, TicketState* out) {
  flatbuffers::Verifier verifier(data, size);
  if (!verifier.VerifySizePrefixedBuffer<fbs::Ticket>(nullptr)) return false;
  const fbs::Ticket* s = flatbuffers::GetSizePrefixedRoot<fbs::Ticket>(data);
  if (!s->id()) return false;

  TicketState t;
  t.id = s->id()->str();
  t.version = s->version();
  t.form_id = str(s->form());
  t.form_version = s->form_version();
  t.flow_id = str(s->flow());
  t.flow_version = s->flow_version();
  t.creator = str(s->creator());
  t.portal_code = str(s->portal_code());
  t.closed = s->closed();
  t.flow_ended = s->flow_ended();
  t.node = str(s->node());
  if (const auto* list = s->assignees()) {
    t.assignees.reserve(list->size());
    for (const auto* a : *list) {
      t.assignees.push_back(
          {a->role() ? AssigneeSpec::Kind::kRole : AssigneeSpec::Kind::kUser, str(a->id())});
    }
  }
  t.node_entered_version = s->node_entered_version();
  t.node_entered_at = s->node_entered_at();
  t.timers_fired = strs(s->timers_fired());
  if (!decode_object(s->fields(), &t.fields)) return false;
  t.created_at = s->created_at();
  t.updated_at = s->updated_at();
  t.first_response_at = s->first_response_at();
  t.closed_at = s->closed_at();
  if (const auto* list = s->timeline()) {
    t.timeline.reserve(list->size());
    for (const auto* step : *list) {
      t.timeline.push_back({str(step->node()), step->entered_at(), step->left_at()});
    }
  }
  t.rejected = s->rejected();
  t.transferred = s->transferred();
  t.reentered = s->reentered();
  if (s->rated()) t.rating = s->rating();
  t.rated_at = s->rated_at();
  t.rating_comment = str(s->rating_comment());
  t.comments = static_cast<uint32_t>(s->comments());
  t.attachments = strs(s->attachments());
  if (const auto* list = s->sla_marks()) {
    t.sla_marks.reserve(list->size());
    for (const auto* m : *list) {
      if (m->kind() > static_cast<uint8_t>(SlaMark::Kind::kReopened)) return false;
      SlaMark mark{static_cast<SlaMark::Kind>(m->kind()), m->at_us(), str(m->node()), {}};
      if (!decode_object(m->fields(), &mark.fields)) return false;
      t.sla_marks.push_back(std::move(mark));
    }
  }
  t.sla_fired = strs(s->sla_fired());
  if (!decode_value(s->sla_final(), &t.sla_final)) return false;
  if (const auto* list = s->lookups_pending()) {
    for (uint64_t version : *list)
      t.open_requests.push_back({OpenRequest::Kind::kLookup, version, {}, {}, 0});
  }
  if (const auto* list = s->todos()) {
    for (const auto* todo : *list) {
      t.open_requests.push_back(
          {OpenRequest::Kind::kTodo,
           todo->version(),
           {todo->role() ? AssigneeSpec::Kind::kRole : AssigneeSpec::Kind::kUser, str(todo->to())},
           str(todo->text()),
           todo->given_at()});
    }
  }
  // In the order the log opened them, as a replay has them.
  std::stable_sort(
      t.open_requests.begin(), t.open_requests.end(),
      [](const OpenRequest& a, const OpenRequest& b) { return a.version < b.version; });
  t.reopens = s->reopens();
  t.customer_files = s->customer_files();
  *out = std::move(t);
  return true;
}

}  // namespace ticketd::projections
