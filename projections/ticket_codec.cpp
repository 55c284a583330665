#include "projections/ticket_codec.h"

namespace ticketd::projections {
namespace {

Value num(uint64_t v) { return Value(static_cast<double>(v)); }
Value num(int64_t v) { return Value(static_cast<double>(v)); }
int64_t i64(const Value& v) { return static_cast<int64_t>(v.as_number()); }
uint64_t u64(const Value& v) { return static_cast<uint64_t>(v.as_number()); }

Value strings(const std::vector<std::string>& list) {
  Array a;
  for (const auto& s : list) a.emplace_back(s);
  return Value(std::move(a));
}

std::vector<std::string> strings(const Value& v) {
  std::vector<std::string> out;
  for (const auto& s : v.as_array()) out.push_back(s.as_string());
  return out;
}

}  // namespace

// Times are microseconds since the epoch: below 2^53, so a JSON number holds them exactly.
Value ticket_to_value(const TicketState& t) {
  Array assignees;
  for (const auto& a : t.assignees) {
    assignees.emplace_back(
        Array{Value(a.kind == AssigneeSpec::Kind::kRole ? "role" : "user"), Value(a.id)});
  }
  Array timeline;
  for (const auto& s : t.timeline) {
    timeline.emplace_back(Array{Value(s.node), num(s.entered_at), num(s.left_at)});
  }
  Array marks;
  for (const auto& m : t.sla_marks) {
    marks.emplace_back(
        Array{num(static_cast<int64_t>(m.kind)), num(m.at_us), Value(m.node), Value(m.fields)});
  }
  return Value(Object{
      {"id", Value(t.id)},
      {"version", num(t.version)},
      {"form", Value(t.form_id)},
      {"form_version", num(t.form_version)},
      {"flow", Value(t.flow_id)},
      {"flow_version", num(t.flow_version)},
      {"creator", Value(t.creator)},
      {"portal_code", Value(t.portal_code)},
      {"closed", Value(t.closed)},
      {"flow_ended", Value(t.flow_ended)},
      {"node", Value(t.node)},
      {"assignees", Value(std::move(assignees))},
      {"node_entered_version", num(t.node_entered_version)},
      {"node_entered_at", num(t.node_entered_at)},
      {"timers_fired", strings(t.timers_fired)},
      {"fields", Value(t.fields)},
      {"created_at", num(t.created_at)},
      {"updated_at", num(t.updated_at)},
      {"first_response_at", num(t.first_response_at)},
      {"closed_at", num(t.closed_at)},
      {"timeline", Value(std::move(timeline))},
      {"rejected", Value(t.rejected)},
      {"transferred", Value(t.transferred)},
      {"reentered", Value(t.reentered)},
      {"rating", t.rating ? Value(*t.rating) : Value()},
      {"rated_at", num(t.rated_at)},
      {"rating_comment", Value(t.rating_comment)},
      {"comments", num(t.comments)},
      {"attachments", strings(t.attachments)},
      {"sla_marks", Value(std::move(marks))},
      {"sla_fired", strings(t.sla_fired)},
      {"sla_final", t.sla_final},
  });
}

bool ticket_from_value(const Value& v, TicketState* out) {
  if (!v.is_object() || !v["id"].is_string() || !v["fields"].is_object()) return false;
  TicketState t;
  t.id = v.string_or("id");
  t.version = u64(v["version"]);
  t.form_id = v.string_or("form");
  t.form_version = u64(v["form_version"]);
  t.flow_id = v.string_or("flow");
  t.flow_version = u64(v["flow_version"]);
  t.creator = v.string_or("creator");
  t.portal_code = v.string_or("portal_code");
  t.closed = v["closed"].as_bool();
  t.flow_ended = v["flow_ended"].as_bool();
  t.node = v.string_or("node");
  for (const auto& a : v["assignees"].as_array()) {
    const auto& pair = a.as_array();
    if (pair.size() != 2) return false;
    t.assignees.push_back(
        {pair[0].as_string() == "role" ? AssigneeSpec::Kind::kRole : AssigneeSpec::Kind::kUser,
         pair[1].as_string()});
  }
  t.node_entered_version = u64(v["node_entered_version"]);
  t.node_entered_at = i64(v["node_entered_at"]);
  t.timers_fired = strings(v["timers_fired"]);
  t.fields = v["fields"].as_object();
  t.created_at = i64(v["created_at"]);
  t.updated_at = i64(v["updated_at"]);
  t.first_response_at = i64(v["first_response_at"]);
  t.closed_at = i64(v["closed_at"]);
  for (const auto& s : v["timeline"].as_array()) {
    const auto& step = s.as_array();
    if (step.size() != 3) return false;
    t.timeline.push_back({step[0].as_string(), i64(step[1]), i64(step[2])});
  }
  t.rejected = v["rejected"].as_bool();
  t.transferred = v["transferred"].as_bool();
  t.reentered = v["reentered"].as_bool();
  if (v["rating"].is_number()) t.rating = static_cast<int>(v["rating"].as_number());
  t.rated_at = i64(v["rated_at"]);
  t.rating_comment = v.string_or("rating_comment");
  t.comments = u64(v["comments"]);
  t.attachments = strings(v["attachments"]);
  for (const auto& m : v["sla_marks"].as_array()) {
    const auto& mark = m.as_array();
    if (mark.size() != 4 || !mark[3].is_object()) return false;
    int64_t kind = i64(mark[0]);
    if (kind < 0 || kind > static_cast<int64_t>(SlaMark::Kind::kClosed)) return false;
    t.sla_marks.push_back(
        {static_cast<SlaMark::Kind>(kind), i64(mark[1]), mark[2].as_string(), mark[3].as_object()});
  }
  t.sla_fired = strings(v["sla_fired"]);
  t.sla_final = v["sla_final"];
  *out = std::move(t);
  return true;
}

}  // namespace ticketd::projections
