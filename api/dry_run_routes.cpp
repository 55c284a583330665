// Dry-runs on history: what a rule or an SLA policy — a draft in the body, a published version, or
// the current one — would have done over a window of recorded events. Nothing is written.
#include <algorithm>

#include "api/api.h"
#include "api/call.h"
#include "domain/time_format.h"
#include "projections/read_model.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

constexpr size_t kTicketsPerChunk = 256;  // log reads happen outside the read-model lock
constexpr uint64_t kDefaultListed = 500, kMaxListed = 5000;

struct Window {
  int64_t from = 0, to = 0;
  uint64_t listed = kDefaultListed;
};

// from/to (RFC 3339; by default all time up to now) and limit, or answers 400.
bool window_of(const CallPtr& call, int64_t now, Window* w) {
  w->to = now;
  for (auto [name, slot] : {std::pair{"from", &w->from}, std::pair{"to", &w->to}}) {
    if (!call->req.has_param(name)) continue;
    auto t = parse_rfc3339(call->req.param(name));
    if (!t) {
      call->fail(400, "bad_parameter", std::string(name) + " must be an RFC 3339 time", name);
      return false;
    }
    *slot = *t;
  }
  if (w->to < w->from) {
    call->fail(400, "bad_parameter", "to must not be before from", "to");
    return false;
  }
  w->to = std::min(w->to, now);  // the future has no history yet
  if (!call->limit_param(&w->listed, kMaxListed)) return false;
  return true;
}

void window_json(JsonWriter& w, const Window& win) {
  w.key("from").string(format_rfc3339(win.from)).key("to").string(format_rfc3339(win.to));
}

// Tickets of `form` that existed during the window and were open for some of it.
std::vector<std::string> tickets_in_window(const View& v, const std::string& form,
                                           const Window& win) {
  std::vector<std::string> ids;
  auto it = v.index.find("form:" + form);
  if (it == v.index.end()) return ids;
  for (projections::TicketKey key : it->second) {
    const TicketState* t = v.ticket_by_key(key);
    if (t && t->created_at <= win.to && (!t->closed || t->closed_at >= win.from)) {
      ids.push_back(t->id);
    }
  }
  return ids;
}

// What every dry-run starts with: the caller may, the window, the version, a draft body or none.
struct DryRun {
  Window win;
  uint64_t version = 0;  // 0: the current one
  bool draft = false;
};

bool begin_dry_run(const CallPtr& call, int64_t now, DryRun* run) {
  if (!call->actor.admin && !call->actor.auditor) {
    call->fail(403, codes::kForbidden, "dry-runs are for administrators and auditors");
    return false;
  }
  if (!window_of(call, now, &run->win) || !call->version_param(&run->version)) return false;
  run->draft = !call->req.body.empty();
  return !run->draft || call->parse_body();
}

// A draft document (without id and version) and the latest version of the form it names.
Result<std::pair<Value, const FormDef*>> draft_of(const Value& body, const Catalog& catalog,
                                                  const std::string& what) {
  if (!body.is_object()) return error(codes::kInvalidDefinition, what + ": must be a JSON object");
  Value doc = strip_identity(body);
  const FormDef* form = catalog.form(doc.string_or("form"));
  if (!form) {
    return error(codes::kInvalidDefinition,
                 what + ".form: unknown form \"" + doc.string_or("form") + "\"", "form");
  }
  return std::make_pair(std::move(doc), form);
}

}  // namespace

void Api::post_rule_dry_run(const CallPtr& call, const std::string& id) {
  DryRun run;
  if (!begin_dry_run(call, now_us(), &run)) return;
  const Window& win = run.win;
  const bool draft = run.draft;
  // The rule to run: the draft, parsed against its form's latest version, or a published one.
  auto chosen = model_.read([&](const View& v) -> Result<RuleDef> {
    if (!draft) {
      const RuleDef* r = v.catalog.rule(id, run.version);
      if (!r)
        return error(codes::kNotFound, "no rule \"" + id + "\"" + at_version(run.version), "id");
      return *r;
    }
    auto doc = draft_of(call->body, v.catalog, "rule");
    if (!doc.ok()) return doc.error();
    return parse_rule_in_catalog(v.catalog, id, doc.value().first, *doc.value().second);
  });
  if (!chosen.ok()) return call->fail(chosen.error());
  const RuleDef& rule = chosen.value();

  auto ids = model_.read([&](const View& v) { return tickets_in_window(v, rule.form_id, win); });
  JsonWriter w;
  w.begin_object().key("rule").string(id);
  w.key("version");
  if (draft) {
    w.null();
  } else {
    w.number(rule.version);
  }
  w.key("draft").boolean(draft);
  window_json(w, win);
  w.key("hits").begin_array();
  uint64_t hits = 0, tickets_hit = 0, notifications = 0, field_changes = 0, closes = 0, lookups = 0;
  for (size_t begin = 0; begin < ids.size(); begin += kTicketsPerChunk) {
    std::vector<std::pair<std::string, std::vector<DomainEvent>>> chunk;
    for (size_t i = begin; i < std::min(ids.size(), begin + kTicketsPerChunk); ++i) {
      std::vector<DomainEvent> events;
      auto s = log_.read_stream(ticket_stream(ids[i]), 1, SIZE_MAX,
                                [&](const storage::RecordedEvent& e) {
                                  DomainEvent d;
                                  if (projections::to_domain_event(e, &d))
                                    events.push_back(std::move(d));
                                  return true;
                                });
      if (!s.ok()) return call->fail(503, "unavailable", s.ToString());
      chunk.emplace_back(ids[i], std::move(events));
    }
    model_.read([&](const View& v) {
      for (const auto& [ticket, events] : chunk) {
        auto found = dry_run_rule(rule, events, v.catalog, win.from, win.to);
        tickets_hit += !found.empty();
        for (const auto& hit : found) {
          ++hits;
          for (const auto& a : hit.actions) {
            notifications += a.type == event_types::kNotificationRequested;
            field_changes += a.type == event_types::kFieldsChanged;
            closes += a.type == event_types::kTicketClosed;
            lookups += a.type == event_types::kLookupRequested;
          }
          if (hits > win.listed) continue;
          w.begin_object().key("ticket").string(ticket);
          w.key("at").string(format_rfc3339(hit.at_us));
          w.key("trigger").string(hit.trigger).key("ticket_version").number(hit.version);
          w.key("actions").begin_array();
          for (const auto& a : hit.actions) {
            w.begin_object().key("type").string(a.type).key("data");
            a.data.write(w);
            w.end_object();
          }
          w.end_array().end_object();
        }
      }
      return 0;
    });
  }
  w.end_array();
  w.key("tickets_examined").number(static_cast<uint64_t>(ids.size()));
  w.key("summary").begin_object();
  w.key("hits").number(hits).key("tickets").number(tickets_hit);
  w.key("notifications").number(notifications).key("field_changes").number(field_changes);
  w.key("closes").number(closes).key("lookups").number(lookups);
  w.key("listed").number(std::min(hits, win.listed));
  w.end_object().end_object();
  call->ok(200, w.take());
}

void Api::post_sla_policy_dry_run(const CallPtr& call, const std::string& id) {
  DryRun run;
  if (!begin_dry_run(call, now_us(), &run)) return;
  const Window& win = run.win;
  const bool draft = run.draft;
  JsonWriter w;
  auto outcome = model_.read([&](const View& v) -> std::optional<DomainError> {
    SlaPolicyDef parsed;
    const SlaPolicyDef* policy = nullptr;
    if (draft) {
      auto doc = draft_of(call->body, v.catalog, "sla_policy");
      if (!doc.ok()) return doc.error();
      auto p = parse_sla_policy(id, doc.value().first, *doc.value().second);
      if (!p.ok()) return p.error();
      parsed = std::move(p.value());
      policy = &parsed;
    } else if (!(policy = v.catalog.sla_policy(id, run.version))) {
      return error(codes::kNotFound, "no SLA policy \"" + id + "\"" + at_version(run.version),
                   "id");
    }
    const CalendarDef* calendar = v.catalog.calendar(policy->calendar_id);
    if (!calendar) {
      return error(codes::kInvalidDefinition,
                   "sla_policy.calendar: unknown calendar \"" + policy->calendar_id + "\"");
    }
    w.begin_object().key("policy").string(id).key("version");
    if (draft) {
      w.null();
    } else {
      w.number(policy->version);
    }
    w.key("draft").boolean(draft);
    window_json(w, win);
    struct Totals {
      uint64_t clocks = 0, breached = 0, warned = 0;
    };
    std::map<std::string, Totals> totals;
    uint64_t covered = 0, listed = 0;
    auto ids = tickets_in_window(v, policy->form_id, win);
    w.key("events").begin_array();
    for (const auto& ticket : ids) {
      const TicketState& t = *v.ticket(ticket);
      // Covered if the policy's condition held on the ticket's fields at the end of the window.
      int64_t until = t.closed ? std::min(win.to, t.closed_at) : win.to;
      if (policy->when && !evaluate(*policy->when, fields_at(t, until))) continue;
      ++covered;
      SlaStatus status = compute_sla_until(t, *policy, *calendar, win.to);
      for (const SlaClock& c : status.clocks) {
        std::string target = c.target.starts_with("node:") ? "node" : c.target;
        Totals& sum = totals[target];
        ++sum.clocks;
        for (bool warning : {true, false}) {
          int64_t at = warning ? c.warn_at : c.due_at;
          // Reached inside the window, and before the clock stopped (a breach after the answer
          // is no breach).
          bool reached =
              at && at >= win.from && at <= win.to && (c.running() || at <= c.stopped_at);
          if (!reached) continue;
          (warning ? sum.warned : sum.breached)++;
          if (++listed > win.listed) continue;
          std::string name = sla_timer_name({c.target, c.cycle, warning});
          bool recorded =
              std::find(t.sla_fired.begin(), t.sla_fired.end(), name) != t.sla_fired.end();
          w.begin_object().key("ticket").string(ticket);
          w.key("type").string(warning ? "SlaWarning" : "SlaBreached");
          w.key("target").string(c.target).key("cycle").number(static_cast<uint64_t>(c.cycle));
          w.key("at").string(format_rfc3339(at)).key("limit").string(c.limit.text);
          w.key("recorded").boolean(recorded);  // the live log has this very event
          w.end_object();
        }
      }
    }
    w.end_array();
    w.key("tickets_examined").number(static_cast<uint64_t>(ids.size()));
    w.key("tickets_covered").number(covered);
    w.key("summary").begin_object();
    for (const auto& [target, sum] : totals) {
      w.key(target).begin_object().key("clocks").number(sum.clocks);
      w.key("warnings").number(sum.warned).key("breaches").number(sum.breached).end_object();
    }
    w.end_object().end_object();
    return std::nullopt;
  });
  if (outcome) return call->fail(*outcome);
  call->ok(200, w.take());
}

}  // namespace ticketd::api
