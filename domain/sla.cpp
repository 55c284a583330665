#include "domain/sla.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "domain/catalog.h"
#include "domain/definition_error.h"
#include "domain/ticket.h"
#include "domain/time_format.h"

namespace ticketd {
namespace {

Result<SlaTarget> target_at(const Value& v, const std::string& path) {
  auto t = v.is_string() ? parse_business_duration(v.as_string()) : std::nullopt;
  if (!t) return def_error(path, "a duration like \"30m\", \"2h\", \"1h30m\" or \"1d\"");
  return *t;
}

bool is_paused(const SlaPolicyDef& p, const Object& fields, const std::string& node) {
  if (std::find(p.pause_nodes.begin(), p.pause_nodes.end(), node) != p.pause_nodes.end())
    return true;
  return p.pause_when && evaluate(*p.pause_when, fields);
}

int64_t warn_goal(const SlaPolicyDef& p, const SlaClock& c) {
  if (p.warn_at <= 0) return 0;
  return static_cast<int64_t>(std::ceil(static_cast<double>(c.limit.goal) * p.warn_at));
}

// Counts [a, b) of unpaused time on every running clock, noting when thresholds are crossed.
class ClockCounter {
 public:
  ClockCounter(const SlaPolicyDef& p, const CalendarDef& c) : policy_(p), calendar_(c) {}

  void count(std::vector<SlaClock>& clocks, int64_t a, int64_t b) {
    if (b <= a) return;
    std::optional<int64_t> by_measure[2];
    for (SlaClock& c : clocks) {
      if (!c.running()) continue;
      auto& inc = by_measure[static_cast<int>(c.limit.measure)];
      if (!inc) inc = business_elapsed(calendar_, c.limit.measure, a, b);
      int64_t w = warn_goal(policy_, c);
      if (!c.warn_at && w > 0 && c.elapsed + *inc >= w) c.warn_at = reach(c, a, b, w);
      if (!c.due_at && c.elapsed + *inc >= c.limit.goal) c.due_at = reach(c, a, b, c.limit.goal);
      c.elapsed += *inc;
    }
  }

  // Where a running clock will reach `goal` counting from `from`, or 0 when it never does.
  int64_t project(const SlaClock& c, int64_t from, int64_t goal) const {
    return business_advance(calendar_, c.limit.measure, from, goal - c.elapsed).value_or(0);
  }

 private:
  int64_t reach(const SlaClock& c, int64_t a, int64_t b, int64_t goal) const {
    return std::min(b,
                    business_advance(calendar_, c.limit.measure, a, goal - c.elapsed).value_or(b));
  }

  const SlaPolicyDef& policy_;
  const CalendarDef& calendar_;
};

void apply_changes(Object& fields, const Object& changes) {
  for (const Member& change : changes) {
    if (change.second.is_null()) {
      std::erase_if(fields, [&](const Member& f) { return f.first == change.first; });
    } else {
      set_member(fields, change.first, change.second);
    }
  }
}

// Whether the policy pauses the clocks after each of the ticket's SLA marks: nodes forward from
// the start, fields backward from the current ones (each kFields mark holds what it replaced).
std::vector<bool> pauses(const TicketState& t, const SlaPolicyDef& p) {
  const auto& marks = t.sla_marks;
  std::vector<const std::string*> node_after(marks.size());
  static const std::string kNone;
  const std::string* node = &kNone;
  for (size_t k = 0; k < marks.size(); ++k) {
    if (marks[k].kind == SlaMark::Kind::kNode) node = &marks[k].node;
    node_after[k] = node;
  }
  std::vector<bool> paused(marks.size());
  Object fields = t.fields;
  for (size_t k = marks.size(); k-- > 0;) {
    paused[k] = is_paused(p, fields, *node_after[k]);
    if (marks[k].kind == SlaMark::Kind::kFields) apply_changes(fields, marks[k].fields);
  }
  return paused;
}

Value time_or_null(int64_t us) { return us ? Value(format_rfc3339(us)) : Value(); }

Value clock_view(const SlaClock& c, int64_t now_us, uint32_t cycles) {
  double used =
      c.limit.goal ? static_cast<double>(c.elapsed) / static_cast<double>(c.limit.goal) : 0;
  Object o = {{"target", Value(c.limit.text)},
              {"due_at", time_or_null(c.due_at)},
              {"breached", Value(c.breached(now_us))},
              {"paused", Value(c.paused)},
              {"started_at", time_or_null(c.started_at)},
              {"stopped_at", time_or_null(c.stopped_at)},
              {"warn_at", time_or_null(c.warn_at)},
              {"used", Value(std::round(used * 1000) / 1000)}};
  if (cycles > 1 || c.target == "next_response") {
    o.emplace_back("cycle", Value(static_cast<int64_t>(c.cycle)));
    o.emplace_back("cycles", Value(static_cast<int64_t>(cycles)));
  }
  return Value(std::move(o));
}

}  // namespace

std::optional<SlaTarget> parse_business_duration(std::string_view text) {
  SlaTarget t;
  t.text = std::string(text);
  if (text.size() >= 2 && text.back() == 'd') {
    auto days = parse_duration(text);  // whole days only, no other unit beside
    if (!days) return std::nullopt;
    t.measure = BusinessMeasure::kDays;
    t.goal = *days / 86400 / 1000000 * kBusinessDayUnits;
    return t;
  }
  size_t pos = 0;
  std::string units_seen;
  while (pos < text.size()) {
    size_t end = text.find_first_of("hms", pos);
    if (end == std::string_view::npos || end == pos) return std::nullopt;
    if (units_seen.find(text[end]) != std::string::npos) return std::nullopt;
    if (!units_seen.empty() &&
        std::string("hms").find(text[end]) < std::string("hms").find(units_seen.back())) {
      return std::nullopt;  // "30m2h": units go from large to small
    }
    units_seen += text[end];
    auto part = parse_duration(text.substr(pos, end - pos + 1));
    if (!part) return std::nullopt;
    t.goal += *part;
    pos = end + 1;
  }
  if (t.goal <= 0) return std::nullopt;
  return t;
}

Result<SlaPolicyDef> parse_sla_policy(std::string_view id, const Value& doc, const FormDef& form) {
  SlaPolicyDef p;
  p.id = id;
  p.document = doc;
  if (!doc.is_object()) return def_error("sla_policy", "must be a JSON object");
  if (auto e = unknown_property(
          doc,
          {"name", "form", "when", "calendar", "targets", "pause_when", "pause_nodes",
           "node_limits", "warn_at", "order", "enabled", "description"},
          "sla_policy"))
    return *e;
  p.name = doc.string_or("name");
  if (p.name.empty()) return def_error("sla_policy.name", "a non-empty string is required");
  p.form_id = doc.string_or("form");
  if (p.form_id != form.id)
    return def_error("sla_policy.form", "must name the form \"" + form.id + "\"");
  p.calendar_id = doc.string_or("calendar");
  if (p.calendar_id.empty())
    return def_error("sla_policy.calendar", "the id of a business calendar is required");
  if (const Value* w = doc.find("when")) {
    auto c = parse_condition(*w, form, "sla_policy.when");
    if (!c.ok()) return c.error();
    p.when = std::move(c.value());
  }
  if (const Value* w = doc.find("pause_when")) {
    auto c = parse_condition(*w, form, "sla_policy.pause_when");
    if (!c.ok()) return c.error();
    p.pause_when = std::move(c.value());
  }
  if (const Value* nodes = doc.find("pause_nodes")) {
    if (!nodes->is_array()) return def_error("sla_policy.pause_nodes", "a list of node ids");
    for (const auto& n : nodes->as_array()) {
      if (!n.is_string() || n.as_string().empty())
        return def_error("sla_policy.pause_nodes", "a list of node ids");
      p.pause_nodes.push_back(n.as_string());
    }
  }
  const Value& targets = doc["targets"];
  if (!targets.is_object())
    return def_error("sla_policy.targets", "an object like {\"resolution\":\"1d\"}");
  for (const auto& [k, v] : targets.as_object()) {
    SlaTarget* slot = k == "first_response"  ? &p.first_response
                      : k == "next_response" ? &p.next_response
                      : k == "resolution"    ? &p.resolution
                                             : nullptr;
    if (!slot) {
      return def_error("sla_policy.targets." + k,
                       "targets are first_response, next_response and resolution");
    }
    auto t = target_at(v, "sla_policy.targets." + k);
    if (!t.ok()) return t.error();
    *slot = std::move(t.value());
  }
  if (const Value* limits = doc.find("node_limits")) {
    if (!limits->is_object())
      return def_error("sla_policy.node_limits", "an object like {\"accept\":\"30m\"}");
    for (const auto& [node, v] : limits->as_object()) {
      auto t = target_at(v, "sla_policy.node_limits." + node);
      if (!t.ok()) return t.error();
      p.node_limits.emplace_back(node, std::move(t.value()));
    }
  }
  if (!p.first_response.goal && !p.next_response.goal && !p.resolution.goal &&
      p.node_limits.empty()) {
    return def_error("sla_policy.targets", "at least one target or node limit is required");
  }
  if (const Value* w = doc.find("warn_at")) {
    if (!w->is_number() || w->as_number() < 0 || w->as_number() >= 1)
      return def_error("sla_policy.warn_at", "a share from 0 (no warnings) to below 1, like 0.8");
    p.warn_at = w->as_number();
  }
  if (const Value* o = doc.find("order")) {
    if (!o->is_number() || o->as_number() != std::floor(o->as_number()) ||
        std::abs(o->as_number()) > 1e9) {
      return def_error("sla_policy.order", "a whole number");
    }
    p.order = static_cast<int64_t>(o->as_number());
  }
  if (const Value* e = doc.find("enabled")) {
    if (!e->is_bool()) return def_error("sla_policy.enabled", "must be true or false");
    p.enabled = e->as_bool();
  }
  return p;
}

const SlaPolicyDef* applicable_sla_policy(const TicketState& t, const Catalog& catalog) {
  const SlaPolicyDef* best = nullptr;
  for (const SlaPolicyDef* p : catalog.sla_policies_for_form(t.form_id)) {
    if (p->when && !evaluate(*p->when, t.fields)) continue;
    if (!catalog.calendar(p->calendar_id)) continue;
    if (!best || p->order < best->order) best = p;  // policies come in id order
  }
  return best;
}

SlaStatus compute_sla(const TicketState& t, const SlaPolicyDef& policy, const CalendarDef& calendar,
                      int64_t now_us) {
  SlaStatus st;
  st.policy = &policy;
  st.calendar = &calendar;
  auto& clocks = st.clocks;
  ClockCounter counter(policy, calendar);
  auto start = [&](const std::string& target, const SlaTarget& limit, int64_t at) {
    if (!limit.goal) return;
    uint32_t cycle = 0;
    for (const auto& c : clocks) cycle += c.target == target;
    SlaClock c;
    c.target = target;
    c.cycle = cycle;
    c.limit = limit;
    c.started_at = at;
    clocks.push_back(std::move(c));
  };
  auto stop = [&](auto matches, int64_t at) {
    for (auto& c : clocks) {
      if (c.running() && matches(c)) c.stopped_at = at;
    }
  };
  auto running = [&](std::string_view target) {
    return std::any_of(clocks.begin(), clocks.end(),
                       [&](const SlaClock& c) { return c.running() && c.target == target; });
  };

  const std::vector<bool> paused_after = pauses(t, policy);
  std::string node;
  bool paused = false, closed = false;
  int64_t last = 0;
  std::vector<size_t> stopped_by_close;
  for (size_t k = 0; k < t.sla_marks.size(); ++k) {
    const SlaMark& m = t.sla_marks[k];
    if (last && !paused && !closed) counter.count(clocks, last, m.at_us);
    switch (m.kind) {
      case SlaMark::Kind::kSubmitted:
        start("first_response", policy.first_response, m.at_us);
        start("resolution", policy.resolution, m.at_us);
        break;
      case SlaMark::Kind::kFields:
        break;
      case SlaMark::Kind::kNode: {
        stop([](const SlaClock& c) { return c.target.starts_with("node:"); }, m.at_us);
        node = m.node;
        for (const auto& [id, limit] : policy.node_limits) {
          if (id == node) start("node:" + id, limit, m.at_us);
        }
        break;
      }
      case SlaMark::Kind::kCustomerReply:
        if (!running("next_response")) start("next_response", policy.next_response, m.at_us);
        break;
      case SlaMark::Kind::kResponse:
        stop(
            [](const SlaClock& c) {
              return c.target == "first_response" || c.target == "next_response";
            },
            m.at_us);
        break;
      case SlaMark::Kind::kClosed:
        stopped_by_close.clear();
        for (size_t i = 0; i < clocks.size(); ++i) {
          if (clocks[i].running()) stopped_by_close.push_back(i);
        }
        stop([](const SlaClock&) { return true; }, m.at_us);
        closed = true;
        break;
      case SlaMark::Kind::kReopened:
        // The clocks the close stopped run on from what they had counted (a node's own clock
        // stops again at the node entered next): the time the ticket was closed is not the
        // company's to answer for, and a clock's warning and breach are recorded once.
        for (size_t i : stopped_by_close) clocks[i].stopped_at = 0;
        stopped_by_close.clear();
        closed = false;
        break;
    }
    paused = paused_after[k];
    last = std::max(last, m.at_us);
  }
  int64_t end = std::max(now_us, last);
  if (!closed && !paused && last) counter.count(clocks, last, end);
  st.paused = paused && !closed;
  for (SlaClock& c : clocks) {
    if (!c.running()) continue;
    c.paused = paused;
    if (paused) continue;
    int64_t w = warn_goal(policy, c);
    if (!c.warn_at && w > c.elapsed) c.warn_at = counter.project(c, end, w);
    if (!c.due_at) c.due_at = counter.project(c, end, c.limit.goal);
  }
  return st;
}

Object fields_at(const TicketState& t, int64_t until_us) {
  Object fields = t.fields;
  for (auto m = t.sla_marks.rbegin(); m != t.sla_marks.rend() && m->at_us > until_us; ++m) {
    if (m->kind == SlaMark::Kind::kFields) apply_changes(fields, m->fields);  // undo
  }
  return fields;
}

SlaStatus compute_sla_until(const TicketState& t, const SlaPolicyDef& policy,
                            const CalendarDef& calendar, int64_t until_us) {
  TicketState then;
  then.fields = fields_at(t, until_us);
  for (const SlaMark& m : t.sla_marks) {
    if (m.at_us > until_us) break;
    then.sla_marks.push_back(m);
  }
  return compute_sla(then, policy, calendar, until_us);
}

int64_t nearest_due(const SlaStatus& st) {
  int64_t nearest = 0;
  for (const auto& c : st.clocks) {
    if (c.running() && !c.paused && c.due_at && (!nearest || c.due_at < nearest))
      nearest = c.due_at;
  }
  return nearest;
}

Value sla_view(const SlaStatus& st, int64_t now_us) {
  Object o = {{"policy", Value(st.policy->id)},
              {"policy_version", Value(static_cast<int64_t>(st.policy->version))},
              {"calendar", Value(st.calendar->id)},
              {"paused", Value(st.paused)}};
  int64_t breaches = 0;
  for (const auto& c : st.clocks) breaches += c.breached(now_us);
  o.emplace_back("due_at", time_or_null(nearest_due(st)));
  o.emplace_back("breached", Value(breaches > 0));
  o.emplace_back("breaches", Value(breaches));
  Object nodes;
  for (const char* target : {"first_response", "next_response", "resolution"}) {
    const SlaClock* latest = nullptr;
    uint32_t cycles = 0;
    for (const auto& c : st.clocks) {
      if (c.target == target) latest = &c, ++cycles;
    }
    if (latest) o.emplace_back(target, clock_view(*latest, now_us, cycles));
  }
  for (const auto& [id, limit] : st.policy->node_limits) {
    const SlaClock* latest = nullptr;
    uint32_t cycles = 0;
    for (const auto& c : st.clocks) {
      if (c.target == "node:" + id) latest = &c, ++cycles;
    }
    if (latest) nodes.emplace_back(id, clock_view(*latest, now_us, cycles));
  }
  if (!nodes.empty()) o.emplace_back("nodes", Value(std::move(nodes)));
  return Value(std::move(o));
}

namespace {

// The standing, and in `clocks` (when asked) the policy's clocks it came from if they run.
SlaStanding standing(const TicketState& t, const Catalog& catalog, int64_t now_us,
                     std::optional<SlaStatus>* clocks) {
  // Idle rules are escalation deadlines too: their nearest one and whether one fired count beside
  // the policy's targets, as in the sla_breaches report.
  SlaStanding out;
  for (const auto& timer : pending_idle_timers(t, catalog)) {
    if (!out.due_at || timer.due_at < out.due_at) out.due_at = timer.due_at;
  }
  out.breached = !t.timers_fired.empty() || (out.due_at && out.due_at <= now_us);
  if (!t.sla_final.is_null()) {
    out.due_at = 0;
    out.breached |= t.sla_final["breached"].is_bool() && t.sla_final["breached"].as_bool();
  } else if (const SlaPolicyDef* policy = t.closed ? nullptr : applicable_sla_policy(t, catalog)) {
    if (const CalendarDef* calendar = catalog.calendar(policy->calendar_id)) {
      SlaStatus status = compute_sla(t, *policy, *calendar, now_us);
      const int64_t nearest = nearest_due(status);
      if (nearest && (!out.due_at || nearest < out.due_at)) out.due_at = nearest;
      for (const auto& c : status.clocks) out.breached |= c.breached(now_us);
      if (clocks) *clocks = std::move(status);
    }
  }
  return out;
}

}  // namespace

SlaStanding sla_standing(const TicketState& t, const Catalog& catalog, int64_t now_us) {
  return standing(t, catalog, now_us, nullptr);
}

TicketSla ticket_sla(const TicketState& t, const Catalog& catalog, int64_t now_us) {
  std::optional<SlaStatus> clocks;
  TicketSla out;
  static_cast<SlaStanding&>(out) = standing(t, catalog, now_us, &clocks);
  Object view = !t.sla_final.is_null() ? t.sla_final.as_object()
                : clocks               ? sla_view(*clocks, now_us).as_object()
                                       : Object{};
  set_member(view, "due_at", out.due_at ? Value(format_rfc3339(out.due_at)) : Value());
  set_member(view, "breached", Value(out.breached));
  out.view = Value(std::move(view));
  return out;
}

std::string sla_timer_name(const SlaTimer& timer) {
  return "sla:" + timer.target + ":" + std::to_string(timer.cycle) + ":" +
         (timer.warning ? "warning" : "breach");
}

std::optional<SlaTimer> parse_sla_timer_name(std::string_view name) {
  if (!name.starts_with("sla:")) return std::nullopt;
  size_t kind = name.rfind(':');
  size_t cycle = name.rfind(':', kind - 1);
  if (cycle <= 3 || kind == cycle) return std::nullopt;
  SlaTimer t;
  t.target = std::string(name.substr(4, cycle - 4));
  std::string_view kind_text = name.substr(kind + 1);
  if (kind_text != "warning" && kind_text != "breach") return std::nullopt;
  t.warning = kind_text == "warning";
  uint64_t n = 0;
  std::string_view digits = name.substr(cycle + 1, kind - cycle - 1);
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
  }
  t.cycle = static_cast<uint32_t>(n);
  return t;
}

}  // namespace ticketd
