#pragma once
// The reference application (domain/reference) loaded into a Catalog through the same publish
// decisions an administrator's PUTs go through. Shared by the unit tests and the fuzz targets; the
// server's demo mode loads the same files into the log instead.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "domain/catalog.h"

namespace ticketd::testing {

inline std::string reference_dir() { return std::string(TICKETD_SOURCE_DIR) + "/domain/reference"; }

inline Value read_json_file(const std::string& name) {
  std::ifstream in(reference_dir() + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  Value v;
  std::string error;
  if (!parse_json(ss.str(), &v, &error)) throw std::runtime_error(name + ": " + error);
  return v;
}

// Every rule document's id (file name without ".rule.json"), sorted.
inline std::vector<std::string> reference_rule_ids() {
  std::vector<std::string> ids;
  for (const auto& entry : std::filesystem::directory_iterator(reference_dir())) {
    std::string name = entry.path().filename().string();
    if (name.ends_with(".rule.json")) ids.push_back(name.substr(0, name.size() - 10));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

inline void publish(Catalog& c, Result<std::optional<DomainEvent>> r,
                    std::vector<DomainEvent>* events = nullptr) {
  if (!r.ok()) throw std::runtime_error(r.error().message);
  if (!r.value() || !c.apply(*r.value())) throw std::runtime_error("definition did not publish");
  if (events) events->push_back(*r.value());
}

// The reference application's definitions as the events that publish them, in order, applied to
// `c` on the way (each decision sees the ones before it).
inline std::vector<DomainEvent> reference_definitions(Catalog& c) {
  std::vector<DomainEvent> events;
  const Value users = read_json_file("users.json");
  for (const auto& u : users["users"].as_array()) {
    User user{
        u.string_or("id"), u.string_or("name"), {}, u.string_or("phone"), u.string_or("email")};
    for (const auto& r : u["roles"].as_array()) user.roles.push_back(r.as_string());
    auto e = decide_create_user(c, user, "hash", "admin", 0);
    if (!e.ok()) throw std::runtime_error(e.error().message);
    c.apply(e.value());
    events.push_back(e.value());
  }
  publish(c,
          decide_publish_form(c, "service_ticket", read_json_file("service_ticket.form.json"),
                              "admin", 0),
          &events);
  publish(
      c,
      decide_publish_flow(c, "service_flow", read_json_file("service_flow.flow.json"), "admin", 0),
      &events);
  publish(c,
          decide_publish_calendar(c, "cn-workdays", read_json_file("cn-workdays.calendar.json"),
                                  "admin", 0),
          &events);
  publish(c, decide_publish_sla_policy(c, "high", read_json_file("high.sla.json"), "admin", 0),
          &events);
  for (const auto& id : reference_rule_ids()) {
    publish(c, decide_publish_rule(c, id, read_json_file(id + ".rule.json"), "admin", 0), &events);
  }
  for (const char* id : {"dispatch_sheet", "service_report"}) {
    publish(c,
            decide_publish_print_template(c, id, read_json_file(std::string(id) + ".print.json"),
                                          "admin", 0),
            &events);
  }
  publish(c,
          decide_publish_dashboard(c, "service_monitor",
                                   read_json_file("service_monitor.dashboard.json"), "admin", 0),
          &events);
  return events;
}

inline Catalog reference_catalog() {
  Catalog c;
  reference_definitions(c);
  return c;
}

}  // namespace ticketd::testing
