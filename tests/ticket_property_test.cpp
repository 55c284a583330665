// Property: on random valid flows, random command sequences never produce events that replay to a
// different state, and the state always stays within its flow.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "domain/catalog.h"
#include "domain/ticket.h"

namespace ticketd {
namespace {

std::string fingerprint(const TicketState& s) {
  JsonWriter w;
  w.begin_object();
  w.key("version").number(s.version);
  w.key("node").string(s.node);
  w.key("closed").boolean(s.closed);
  w.key("fields").raw(Value(s.fields).to_json());
  w.key("assignees").begin_array();
  for (const auto& a : s.assignees) w.string(a.id);
  w.end_array();
  w.key("timeline").number(static_cast<uint64_t>(s.timeline.size()));
  w.key("entered").number(s.node_entered_version);
  w.key("first_response").number(s.first_response_at);
  w.key("flags").raw(std::to_string(s.rejected) + std::to_string(s.transferred) +
                     std::to_string(s.reentered));
  w.key("reopens").number(static_cast<uint64_t>(s.reopens));
  w.end_object();
  return w.take();
}

// Every member of the state, for comparing two states exactly.
std::string whole(const TicketState& s) {
  JsonWriter w;
  w.begin_array();
  for (const std::string* text :
       {&s.id, &s.form_id, &s.flow_id, &s.creator, &s.portal_code, &s.node, &s.rating_comment})
    w.string(*text);
  for (int64_t n : {int64_t(s.version), int64_t(s.form_version), int64_t(s.flow_version),
                    int64_t(s.node_entered_version), s.node_entered_at, s.created_at, s.updated_at,
                    s.first_response_at, s.closed_at, s.rated_at, int64_t(s.comments),
                    int64_t(s.rating.value_or(-1)), int64_t(s.reopens)})
    w.number(n);
  for (bool b : {s.closed, s.flow_ended, s.rejected, s.transferred, s.reentered}) w.boolean(b);
  for (const auto& a : s.assignees) w.number(int64_t(a.kind)).string(a.id);
  for (const auto* list : {&s.timers_fired, &s.attachments, &s.sla_fired}) {
    w.begin_array();
    for (const auto& x : *list) w.string(x);
    w.end_array();
  }
  for (const auto& t : s.timeline) w.string(t.node).number(t.entered_at).number(t.left_at);
  for (const auto& m : s.sla_marks) {
    w.number(int64_t(m.kind)).number(m.at_us).string(m.node).raw(Value(m.fields).to_json());
  }
  w.raw(Value(s.fields).to_json()).raw(s.sla_final.to_json());
  for (const auto& r : s.open_requests) {
    w.number(int64_t(r.kind)).number(int64_t(r.version)).number(int64_t(r.to.kind));
    w.string(r.to.id).string(r.text).number(r.given_at);
  }
  w.end_array();
  return w.take();
}

Value parse(const std::string& text) {
  Value v;
  std::string err;
  EXPECT_TRUE(parse_json(text, &v, &err)) << err;
  return v;
}

// A chain of k nodes; each may branch ahead on c == "a" and may reject back to an earlier node.
std::string random_flow(std::mt19937_64& rng, int k) {
  std::string nodes = R"([{"id":"s","type":"start"})";
  std::string edges = R"([{"from":"s","to":"n0"})";
  for (int i = 0; i < k; ++i) {
    bool fill = rng() % 2;
    std::string id = "n" + std::to_string(i);
    nodes += R"(,{"id":")" + id + R"(","name":"节点)" + std::to_string(i) + R"(","type":")" +
             (fill ? "fill" : "approval") + R"(","assignee":{"role":"r"},"writable":["c","x"])";
    if (fill) nodes += R"(,"actions":["submit","transfer","reject"])";
    if (i > 0 && rng() % 2) nodes += R"(,"reject_to":"n)" + std::to_string(rng() % i) + "\"";
    nodes += "}";
    std::string next = i + 1 < k ? "n" + std::to_string(i + 1) : "e";
    if (rng() % 2) {
      int jump = i + 1 + static_cast<int>(rng() % (k - i));
      std::string target = jump < k ? "n" + std::to_string(jump) : "e";
      edges += R"(,{"from":")" + id + R"(","to":")" + target +
               R"(","when":{"field":"c","op":"eq","value":"a"}})";
    }
    edges += R"(,{"from":")" + id + R"(","to":")" + next + "\"}";
  }
  nodes += R"(,{"id":"e","type":"end"}])";
  edges += "]";
  return R"({"name":"随机流程","form":"pf","nodes":)" + nodes + R"(,"edges":)" + edges + "}";
}

TEST(TicketProperty, RandomCommandsReplayToTheSameState) {
  std::mt19937_64 rng(20261125);
  std::map<std::string, int> type_only_checked;
  for (int round = 0; round < 200; ++round) {
    Catalog catalog;
    auto pub = [&](auto r) {
      ASSERT_TRUE(r.ok()) << r.error().message;
      ASSERT_TRUE(catalog.apply(*r.value()));
    };
    for (const char* u : {"u", "v"}) {
      catalog.apply(decide_create_user(catalog, User{u, u, {"r"}, "", ""}, "", "admin", 0).value());
    }
    pub(decide_publish_form(catalog, "pf", parse(R"({"name":"表单","fields":[
        {"key":"c","type":"select","options":["a","b"]},{"key":"x","type":"text"}]})"),
                            "admin", 0));
    std::string flow_doc = random_flow(rng, 2 + static_cast<int>(rng() % 4));
    pub(decide_publish_flow(catalog, "pfl", parse(flow_doc), "admin", 0));
    if (rng() % 2) {
      pub(decide_publish_rule(catalog, "idle", parse(R"({"name":"超时","form":"pf",
          "trigger":{"type":"idle","node":"n0","after":"10s"},
          "actions":[{"type":"set_field","field":"x","value":"超时"}]})"),
                              "admin", 0));
    }
    const FlowDef& flow = *catalog.flow("pfl");

    TicketState state;
    std::vector<DomainEvent> events;
    int64_t now = 1000000;
    for (int step = 0; step < 40; ++step) {
      Context ctx;
      ctx.catalog = &catalog;
      ctx.now_us = now += 1000000 * static_cast<int64_t>(1 + rng() % 20);
      ctx.lookups.user_exists = [&](std::string_view u, std::string_view role) {
        return active_user_in_role(catalog, u, role);
      };
      ctx.new_ticket_id = "T-000001";
      const char* who[] = {"u", "v", "admin"};
      std::string actor = who[rng() % 3];
      ctx.actor = {actor, {"r"}, actor == "admin", false, false};
      Object fields;
      if (rng() % 2) fields.emplace_back("c", Value(rng() % 2 ? "a" : "b"));
      Command cmd;
      switch (step == 0 ? 0 : 1 + rng() % 7) {
        case 0:
          cmd = SubmitTicket{"pf", "pfl", {}};
          break;
        case 1: {
          const char* actions[] = {"approve", "reject", "transfer", "submit", "confirm"};
          const std::string action = actions[rng() % 5];
          const char* to = rng() % 2 ? "u" : "v";  // drawn for every action: the same sequence
          cmd = TakeAction{action, fields, "", action == "transfer" ? to : ""};
          break;
        }
        case 2:
          cmd = ChangeFields{fields, rng() % 4 ? std::optional<uint64_t>() : state.version};
          break;
        case 3:
          cmd = AddComment{"评论"};
          break;
        case 4:
          cmd = FireTimer{"idle", state.node_entered_version};
          break;
        case 5:
          cmd = RateTicket{static_cast<int>(rng() % 7), ""};
          break;
        case 6:
          cmd = ReopenTicket{"又坏了", ""};
          break;
        default:
          cmd = CloseTicket{""};
          break;
      }
      auto r = decide(state, cmd, ctx);
      if (!r.ok()) continue;
      for (const auto& e : r.value()) {
        // A projection may leave such an event's data unparsed; both forms of the test agree.
        ASSERT_EQ(evolve_reads_data(e), evolve_reads_data(e.type, e.data.to_json())) << e.type;
        if (!evolve_reads_data(e)) {
          DomainEvent bare = e;
          bare.data = Value();
          ASSERT_EQ(whole(evolve(state, bare)), whole(evolve(state, e))) << e.type;
          ++type_only_checked[e.type];
        }
        state = evolve(std::move(state), e);
        events.push_back(e);
      }
      TicketState replayed;
      for (const auto& e : events) replayed = evolve(std::move(replayed), e);
      ASSERT_EQ(fingerprint(replayed), fingerprint(state)) << flow_doc;
      ASSERT_EQ(state.version, events.size());
      ASSERT_NE(flow.node(state.node), nullptr) << state.node;
      if (!state.closed) {
        ASSERT_NE(flow.node(state.node)->type, NodeType::kEnd);
        ASSERT_FALSE(state.assignees.empty()) << "an open ticket always waits on someone";
      }
    }
  }
  // The random commands make most types whose data evolve() may skip (not notifications, no rule
  // here sends one, nor a customer's confirmation); the test below covers every type.
  for (const char* type :
       {event_types::kApproved, event_types::kRejected, event_types::kFilled,
        event_types::kFlowEnded, event_types::kTicketClosed, event_types::kTicketReopened}) {
    EXPECT_GT(type_only_checked[type], 0) << type;
  }
}

TEST(TicketProperty, DataOfTypeOnlyEventsIsNotRead) {
  // Every ticket event type, with data holding every member evolve() reads of any type: where
  // evolve_reads_data() says no, the state must not depend on it.
  Value data = parse(R"({"id":"T-000009","form":"f2","form_version":3,"flow":"fl2",
      "flow_version":4,"fields":{"c":"b","x":"数据"},"portal_code":"p","idempotency_key":"k",
      "node":"n1","assignees":[{"role":"r"},{"user":"v"}],"picked":{"role":"r","user":"v"},
      "to":"v","score":4,"comment":"好","attachment":"A-1","rule":"idle","timer":"sla:resolve",
      "sla":{"resolve":{"breached":true}},"public":true,"todo":true,"recipient":"role",
      "text":"待办"})");
  TicketState s;
  s.id = "T-000001";
  s.version = 3;
  s.form_id = "pf";
  s.creator = "u";
  s.node = "n0";
  s.fields = Object{{"c", Value("a")}};
  s.timeline = {{"n0", 5, 0}};
  size_t type_only = 0;
  for (const char* type :
       {event_types::kTicketSubmitted, event_types::kFieldsChanged, event_types::kNodeEntered,
        event_types::kApproved, event_types::kRejected, event_types::kTransferred,
        event_types::kFilled, event_types::kCustomerConfirmed, event_types::kCommentAdded,
        event_types::kAttachmentAdded, event_types::kRated, event_types::kNotificationRequested,
        event_types::kTimerFired, event_types::kFlowEnded, event_types::kTicketClosed,
        event_types::kTicketReopened, event_types::kSlaWarning, event_types::kSlaBreached,
        event_types::kSlaFinalized}) {
    DomainEvent with{type, data, "v", 9000000, std::nullopt};
    DomainEvent without{type, Value(), "v", 9000000, std::nullopt};
    if (evolve_reads_data(type, data.to_json())) {
      EXPECT_NE(whole(evolve(s, with)), whole(evolve(s, without))) << type << " reads nothing";
    } else {
      EXPECT_EQ(whole(evolve(s, with)), whole(evolve(s, without))) << type;
      ++type_only;
    }
  }
  EXPECT_EQ(type_only, 7u);
  // A notification that opens no to-do is not read, whatever its text says.
  Value sms = parse(R"({"rule":"r","channel":"sms","to":"v","recipient":"user",
      "text":"\"todo\":true"})");
  EXPECT_FALSE(evolve_reads_data(event_types::kNotificationRequested, sms.to_json()));
  DomainEvent with{event_types::kNotificationRequested, sms, "v", 9000000, std::nullopt};
  DomainEvent without{event_types::kNotificationRequested, Value(), "v", 9000000, std::nullopt};
  EXPECT_EQ(whole(evolve(s, with)), whole(evolve(s, without)));
}

}  // namespace
}  // namespace ticketd
