#pragma once
// Shared by the fuzz targets: the reference application's catalog, loaded once.
#include <fstream>
#include <sstream>
#include <string>

#include "domain/catalog.h"

namespace ticketd::fuzz {

inline Value read_reference(const std::string& name) {
  std::ifstream in(std::string(TICKETD_SOURCE_DIR) + "/domain/reference/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  Value v;
  std::string error;
  if (!parse_json(ss.str(), &v, &error)) __builtin_trap();
  return v;
}

inline const Catalog& reference_catalog() {
  static const Catalog catalog = [] {
    Catalog c;
    for (const char* u : {"zhang", "li", "wang", "zhao"}) {
      c.apply(decide_create_user(
                  c,
                  User{u, u, {"cs_supervisor", "cs_agent", "tech_supervisor", "engineer"}, "", ""},
                  "", "fuzz", 0)
                  .value());
    }
    c.apply(*decide_publish_form(c, "service_ticket", read_reference("service_ticket.form.json"),
                                 "fuzz", 0)
                 .value());
    c.apply(
        *decide_publish_flow(c, "service_flow", read_reference("service_flow.flow.json"), "fuzz", 0)
             .value());
    for (const char* r : {"new_ticket", "accept_overdue", "flow_ended", "in_progress", "dispatched",
                          "awaiting_customer"}) {
      c.apply(*decide_publish_rule(c, r, read_reference(std::string(r) + ".rule.json"), "fuzz", 0)
                   .value());
    }
    return c;
  }();
  return catalog;
}

}  // namespace ticketd::fuzz
