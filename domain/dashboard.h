#pragma once
// Dashboards (看板) are data, like forms: a named page of report widgets in order, each one of the
// reports with its parameters, a window of days up to today and the chart a client draws it as.
// MISSION's 售后服务监控看板 is one; GET /dashboards/{id}/data runs every widget at once.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "domain/error.h"
#include "domain/time_format.h"
#include "domain/value.h"

namespace ticketd {

// The reports there are, in the order tools list them (projections/reports.h computes them).
inline constexpr std::string_view kReportNames[] = {
    "by_channel", "by_problem_type", "first_response", "first_contact_resolution",
    "csat",       "sla_breaches",    "backlog"};
bool is_report_name(std::string_view name);

struct DashboardWidget {
  std::string title;
  std::string report;
  std::string chart;   // number | pie | bar | line | table: how a client draws it
  std::string form;    // "": every form
  std::string field;   // by_problem_type: the select field counted (default problem_type)
  std::string bucket;  // "", day, week or month
  int64_t days = 0;    // the last `days` whole days of the dashboard's zone, today included;
                       // 0: all time
};

struct DashboardDef {
  std::string id;
  uint64_t version = 0;
  std::string name;
  std::string description;
  // An IANA name: whose days the windows and day, week and month buckets are. "UTC" when the
  // document names none; `zone` is nullptr then, and the company's zone counts
  // (domain/settings.h).
  std::string time_zone = "UTC";
  const date::time_zone* zone = nullptr;
  std::vector<DashboardWidget> widgets;
  Value document;
};

// Parses and validates a dashboard's structure. Whether its forms and fields exist is for
// decide_publish_dashboard (catalog.h) to say: a form changed later makes one widget answer an
// error, not the stored dashboard unreadable.
Result<DashboardDef> parse_dashboard(std::string_view id, const Value& document);
// A dashboard as the log holds it: a zone the tz database no longer knows (an upgrade can move
// old names such as PRC to tzdata-legacy) leaves it counting in the company's zone, as one that
// names none does, rather than unreadable.
Result<DashboardDef> parse_stored_dashboard(std::string_view id, const Value& document);

}  // namespace ticketd
