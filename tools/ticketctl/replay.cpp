// ticketctl replay: one ticket's history as a readable timeline for auditors.
#include <cstdio>
#include <iostream>

#include "domain/notifications.h"
#include "domain/time_format.h"
#include "projections/notification_outcomes.h"
#include "projections/read_model.h"
#include "projections/snapshots.h"
#include "storage/event_log.h"
#include "storage/hash_chain.h"
#include "tools/ticketctl/views.h"

namespace ticketd::tools {
namespace {

std::string show(const Value& v) {
  if (v.is_null()) return "(empty)";
  if (v.is_string()) return v.as_string();
  return v.to_json();
}

// What one event did, in words, given the ticket just before it.
std::string describe(const DomainEvent& e, const TicketState& before, const Catalog& catalog) {
  const Value& d = e.data;
  const FlowDef* flow =
      catalog.flow(before.flow_id.empty() ? d.string_or("flow") : before.flow_id,
                   before.flow_version ? before.flow_version
                                       : static_cast<uint64_t>(d["flow_version"].as_number()));
  auto node_name = [&](const std::string& id) {
    const NodeDef* n = flow ? flow->node(id) : nullptr;
    return n ? n->name + " (" + id + ")" : id;
  };
  std::string comment = d.string_or("comment");
  std::string note = comment.empty() ? "" : " “" + comment + "”";
  if (e.type == "TicketSubmitted") {
    std::string out = "submitted " + d.string_or("form") + " v" + d["form_version"].to_json() +
                      " on " + d.string_or("flow") + " v" + d["flow_version"].to_json() + ":";
    for (const auto& [k, v] : d["fields"].as_object()) out += "\n      " + k + " = " + show(v);
    return out;
  }
  if (e.type == "FieldsChanged") {
    std::string out = d.find("rule") ? "rule " + d.string_or("rule") + " changed:" : "changed:";
    for (const auto& [k, v] : d["fields"].as_object()) {
      out += "\n      " + k + ": " + show(before.field(k)) + " → " + show(v);
    }
    return out;
  }
  if (e.type == "NodeEntered") {
    std::string out = (before.node.empty() ? "entered " : node_name(before.node) + " → ") +
                      node_name(d.string_or("node"));
    std::string who;
    for (const auto& a : d["assignees"].as_array()) {
      for (const auto& [kind, id] : a.as_object())
        who += (who.empty() ? "" : ", ") + kind + " " + id.as_string();
    }
    return out + (who.empty() ? "" : ", waiting on " + who);
  }
  if (e.type == "Approved") return "approved at " + node_name(d.string_or("node")) + note;
  if (e.type == "Filled") return "submitted the fill at " + node_name(d.string_or("node")) + note;
  if (e.type == "CustomerConfirmed")
    return "customer confirmed at " + node_name(d.string_or("node")) + note;
  if (e.type == "Rejected") return "rejected at " + node_name(d.string_or("node")) + note;
  if (e.type == "Transferred")
    return "transferred from " + d.string_or("from") + " to " + d.string_or("to") + note;
  if (e.type == "CommentAdded") return "commented “" + d.string_or("text") + "”";
  if (e.type == "AttachmentAdded")
    return "attached " + d.string_or("filename") + " (" + d.string_or("attachment") + ")" +
           (d["public"].as_bool() ? ", sent to the customer" : "");
  if (e.type == "Rated")
    return "rated " + d["score"].to_json() + "/5" +
           (d.string_or("comment").empty() ? "" : " “" + d.string_or("comment") + "”");
  if (e.type == "NotificationRequested") {
    // A to-do is named by its request's stream version, as a lookup is.
    return "rule " + d.string_or("rule") + ": " + d.string_or("channel") + " to " +
           d.string_or("to") + " “" + d.string_or("text") + "”" +
           (opens_todo(d) ? " (to-do " + std::to_string(before.version + 1) + ")" : "");
  }
  if (e.type == "TodoDone") return "to-do " + d["todo"].to_json() + " done";
  if (e.type == "TimerFired")
    return "timer of rule " + d.string_or("rule") + " fired (idle at " +
           node_name(d.string_or("node")) + ")";
  if (e.type == "LookupRequested") {
    // A lookup is named by its request's stream version, the one after the ticket's before it.
    std::string query;
    for (const auto& [k, v] : d["query"].as_object()) {
      query += (query.empty() ? " with " : ", ") + k + " = " + show(v);
    }
    return "rule " + d.string_or("rule") + " asked " + d.string_or("source") + " " +
           d.string_or("path") + query + " (lookup " + std::to_string(before.version + 1) + ")";
  }
  if (e.type == "LookupCompleted") {
    std::string filled;
    for (const auto& f : d["filled"].as_array()) filled += (filled.empty() ? "" : ", ") + show(f);
    return "lookup " + d["lookup"].to_json() + " answered" +
           (filled.empty() ? ", nothing to fill" : ", filling " + filled);
  }
  if (e.type == "LookupFailed") {
    return "lookup " + d["lookup"].to_json() + " failed: " + d.string_or("error");
  }
  if (e.type == "FlowEnded") return "flow ended at " + node_name(d.string_or("node"));
  if (e.type == "TicketClosed") return "closed (" + d.string_or("reason") + ")";
  if (e.type == "TicketReopened") {
    return "reopened by the " + d.string_or("by") + " to " + node_name(d.string_or("node")) + ": " +
           d.string_or("reason");
  }
  return e.data.to_json();
}

// What one attempt at sending a notification came to.
std::string describe_outcome(const DomainEvent& e) {
  const Value& d = e.data;
  if (e.type == event_types::kNotificationDelivered) {
    std::string to;
    for (const auto& r : d["to"].as_array()) to += (to.empty() ? "" : ", ") + show(r);
    return "delivered" + (to.empty() ? "" : " to " + to);
  }
  std::string out = "attempt " + d["attempt"].to_json() + " failed: " + d.string_or("error");
  return out + (d["final"].as_bool() ? "; given up" : "; retried at " + d.string_or("retry_at"));
}

}  // namespace

int replay_ticket(const Args& args) {
  if (!args.has("data-dir") || !args.has("ticket")) {
    std::cerr << "ticketctl: replay needs --data-dir and --ticket\n";
    return 2;
  }
  std::unique_ptr<storage::EventLog> log;
  if (int rc = open_log(args, true, &log)) return rc;
  // The definitions (for node names) come from the read model, snapshot plus tail.
  projections::ReadModel model;
  std::string note;
  projections::replay(*log, model, projections::restore_snapshot(*log, model, &note));
  std::string id = args.get("ticket");
  TicketState state;
  size_t events = 0;
  storage::Status outcomes_status;
  auto s = log->read_stream(ticket_stream(id), 1, SIZE_MAX, [&](const storage::RecordedEvent& r) {
    DomainEvent e;
    if (!projections::to_domain_event(r, &e)) return true;
    std::string text = model.read(
        [&](const projections::ReadModel::View& v) { return describe(e, state, v.catalog); });
    std::printf("%s  #%-6llu %-8s %s  [%s…]\n", format_rfc3339(e.at_us).c_str(),
                static_cast<unsigned long long>(r.position()), e.actor.c_str(), text.c_str(),
                storage::to_hex(r.hash()).substr(0, 12).c_str());
    evolve_in_place(state, e);
    ++events;
    // A notification's outcomes are on the outbox stream: told under the request, each with its
    // own time and position.
    if (e.type == event_types::kNotificationRequested && e.data.string_or("channel") != "todo") {
      std::vector<projections::NotificationOutcome> outcomes;
      outcomes_status = projections::read_notification_outcomes(*log, r.position(), &outcomes);
      for (const auto& o : outcomes) {
        std::printf("%s  #%-6llu %-8s   ↳ %s\n", format_rfc3339(o.event.at_us).c_str(),
                    static_cast<unsigned long long>(o.position), o.event.actor.c_str(),
                    describe_outcome(o.event).c_str());
      }
      if (!outcomes_status.ok()) return false;
    }
    return true;
  });
  if (s.ok()) s = outcomes_status;
  if (!s.ok()) {
    std::cerr << "ticketctl: " << s.ToString() << "\n";
    return 1;
  }
  if (events == 0) {
    std::cerr << "ticketctl: no ticket " << id << "\n";
    return 1;
  }
  std::printf("%s: %zu events, version %llu, %s at %s\n", id.c_str(), events,
              static_cast<unsigned long long>(state.version), state.closed ? "closed" : "open",
              state.node.c_str());
  return 0;
}

}  // namespace ticketd::tools
