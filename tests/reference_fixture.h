#pragma once
// The reference application loaded into a Catalog through the same publish decisions an
// administrator's PUTs go through.
#include <gtest/gtest.h>

#include "domain/catalog.h"
#include "domain/ticket.h"
#include "domain/time_format.h"
#include "tests/reference_catalog.h"

namespace ticketd::testing {

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
    ctx.lookups = {
        [this](std::string_view u, std::string_view role) {
          return active_user_in_role(catalog_, u, role);
        },
        // "att-…" uploads: "att-doc…" ones are documents, the rest pictures.
        [](std::string_view a) {
          return std::string(!a.starts_with("att-")     ? ""
                             : a.starts_with("att-doc") ? "application/pdf"
                                                        : "image/jpeg");
        },
        [](std::string_view t) { return std::string(t == "T-000001" ? "service_ticket" : ""); }};
    ctx.last_pick = last_pick;
    ctx.open_load = open_load;
    ctx.new_ticket_id = new_ticket_id;
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
  std::string new_ticket_id = "T-000042";  // the id a submission gets
  std::function<std::string(std::string_view)> last_pick;
  std::function<size_t(std::string_view)> open_load;
  int64_t now_us = *parse_rfc3339("2026-11-25T08:00:00Z");

 private:
  const Catalog& catalog_;
};

// A JSON document written in a test, failing the test when it does not parse.
inline Value json(const std::string& text) {
  Value v;
  std::string err;
  EXPECT_TRUE(parse_json(text, &v, &err)) << err << " in " << text;
  return v;
}

inline Object reference_submission() {
  return {{"customer_name", Value("华东精密机械有限公司")},
          {"customer_phone", Value("+86 138 1234 5678")},
          {"channel", Value("电话")},
          {"problem_type", Value("功能故障")},
          {"description", Value("打印机每打印第二页就卡纸,需要工程师上门检修。")}};
}

}  // namespace ticketd::testing
