#pragma once
// The reference application loaded into a Catalog through the same publish decisions an
// administrator's PUTs go through.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "domain/catalog.h"
#include "domain/ticket.h"
#include "domain/time_format.h"

namespace ticketd::testing {

inline Value read_json_file(const std::string& name) {
  std::ifstream in(std::string(TICKETD_SOURCE_DIR) + "/domain/reference/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  Value v;
  std::string err;
  EXPECT_TRUE(parse_json(ss.str(), &v, &err)) << name << ": " << err;
  return v;
}

inline void publish(Catalog& c, Result<std::optional<DomainEvent>> r) {
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_TRUE(r.value().has_value());
  ASSERT_TRUE(c.apply(*r.value()));
}

inline const char* kRuleIds[] = {"new_ticket",  "accept_overdue", "flow_ended",
                                 "in_progress", "dispatched",     "awaiting_customer"};

inline Catalog reference_catalog() {
  Catalog c;
  const Value users = read_json_file("users.json");
  for (const auto& u : users["users"].as_array()) {
    User user{
        u.string_or("id"), u.string_or("name"), {}, u.string_or("phone"), u.string_or("email")};
    for (const auto& r : u["roles"].as_array()) user.roles.push_back(r.as_string());
    auto e = decide_create_user(c, user, "hash", "admin", 0);
    EXPECT_TRUE(e.ok());
    c.apply(e.value());
  }
  publish(c, decide_publish_form(c, "service_ticket", read_json_file("service_ticket.form.json"),
                                 "admin", 0));
  publish(c, decide_publish_flow(c, "service_flow", read_json_file("service_flow.flow.json"),
                                 "admin", 0));
  for (const char* id : kRuleIds) {
    publish(c,
            decide_publish_rule(c, id, read_json_file(std::string(id) + ".rule.json"), "admin", 0));
  }
  return c;
}

// Plays commands against one ticket, keeping its state and every event, like the server would.
class TicketDriver {
 public:
  explicit TicketDriver(const Catalog& catalog) : catalog_(catalog) {}

  Actor user(const std::string& id) const {
    Actor a{id, {}, false, false, false};
    if (const User* u = catalog_.user(id)) a.roles = u->roles;
    return a;
  }
  Actor admin() const { return {"admin", {}, true, false, false}; }
  Actor customer() const { return {"portal", {}, false, false, true}; }

  Result<std::vector<DomainEvent>> run(const Actor& actor, const Command& cmd) {
    Context ctx;
    ctx.actor = actor;
    ctx.now_us = now_us;
    ctx.catalog = &catalog_;
    ctx.lookups = {[this](std::string_view u) { return catalog_.user(u) != nullptr; },
                   [](std::string_view a) { return a.rfind("att-", 0) == 0; },
                   [](std::string_view t) { return t == "T-000001"; }};
    ctx.new_ticket_id = "T-000042";
    ctx.new_portal_code = "pc-secret";
    auto r = decide(state, cmd, ctx);
    if (r.ok()) {
      for (const auto& e : r.value()) {
        state = evolve(std::move(state), e);
        events.push_back(e);
      }
    }
    return r;
  }

  std::vector<std::string> types_since(size_t from) const {
    std::vector<std::string> out;
    for (size_t i = from; i < events.size(); ++i) out.push_back(events[i].type);
    return out;
  }

  TicketState state;
  std::vector<DomainEvent> events;
  int64_t now_us = *parse_rfc3339("2026-11-25T08:00:00Z");

 private:
  const Catalog& catalog_;
};

inline Object reference_submission() {
  return {{"customer_name", Value("华东精密机械有限公司")},
          {"customer_phone", Value("+86 138 1234 5678")},
          {"channel", Value("电话")},
          {"problem_type", Value("功能故障")},
          {"description", Value("打印机每打印第二页就卡纸,需要工程师上门检修。")}};
}

}  // namespace ticketd::testing
