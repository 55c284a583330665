#include "domain/dashboard.h"

#include <algorithm>
#include <cmath>

#include "domain/definition_error.h"

namespace ticketd {
namespace {

constexpr size_t kMostWidgets = 24;
constexpr int64_t kMostDays = 3660;  // ten years

bool one_of(std::string_view s, std::initializer_list<std::string_view> options) {
  return std::find(options.begin(), options.end(), s) != options.end();
}

// A member that, when present, must be a string: its value, or an error at path.key.
Result<std::string> optional_string(const Value& doc, std::string_view key,
                                    const std::string& path) {
  const Value* v = doc.find(key);
  if (!v) return std::string();
  if (!v->is_string()) return def_error(path + "." + std::string(key), "must be a string");
  return v->as_string();
}

Result<DashboardWidget> parse_widget(const Value& doc, const std::string& path) {
  if (!doc.is_object()) return def_error(path, "must be a JSON object");
  if (auto e = unknown_property(
          doc, {"title", "report", "chart", "form", "field", "bucket", "days"}, path))
    return *e;
  DashboardWidget w;
  w.title = doc.string_or("title");
  if (w.title.empty()) return def_error(path + ".title", "a non-empty string is required");
  w.report = doc.string_or("report");
  if (!is_report_name(w.report)) {
    std::string names;
    for (std::string_view n : kReportNames) names += (names.empty() ? "" : ", ") + std::string(n);
    return def_error(path + ".report", "one of " + names);
  }
  auto chart = optional_string(doc, "chart", path);
  if (!chart.ok()) return chart.error();
  w.chart = chart.value().empty() ? "table" : chart.value();
  if (!one_of(w.chart, {"number", "pie", "bar", "line", "table"}))
    return def_error(path + ".chart", "one of number, pie, bar, line, table");
  for (auto [key, slot] :
       {std::pair{"form", &w.form}, std::pair{"field", &w.field}, std::pair{"bucket", &w.bucket}}) {
    auto value = optional_string(doc, key, path);
    if (!value.ok()) return value.error();
    *slot = value.value();
  }
  if (!w.field.empty() && w.report != "by_problem_type")
    return def_error(path + ".field", "only a by_problem_type widget counts by a field");
  if (!one_of(w.bucket, {"", "day", "week", "month"}))
    return def_error(path + ".bucket", "one of day, week, month");
  if (const Value* days = doc.find("days")) {
    double d = days->as_number();
    if (!days->is_number() || d != std::floor(d) || d < 1 || d > kMostDays) {
      return def_error(path + ".days",
                       "a whole number of days from 1 to " + std::to_string(kMostDays));
    }
    w.days = static_cast<int64_t>(d);
  }
  return w;
}

}  // namespace

bool is_report_name(std::string_view name) {
  return std::find(std::begin(kReportNames), std::end(kReportNames), name) !=
         std::end(kReportNames);
}

namespace {

Result<DashboardDef> parse_dashboard(std::string_view id, const Value& doc, bool stored) {
  DashboardDef d;
  d.id = id;
  d.document = doc;
  if (!doc.is_object()) return def_error("dashboard", "must be a JSON object");
  if (auto e = unknown_property(doc, {"name", "description", "time_zone", "widgets"}, "dashboard"))
    return *e;
  d.name = doc.string_or("name");
  if (d.name.empty()) return def_error("dashboard.name", "a non-empty string is required");
  auto description = optional_string(doc, "description", "dashboard");
  if (!description.ok()) return description.error();
  d.description = description.value();
  if (const Value* zone = doc.find("time_zone")) {
    if (!zone->is_string())
      return def_error("dashboard.time_zone", "an IANA time zone name like Asia/Shanghai");
    d.time_zone = zone->as_string();
    d.zone = find_time_zone(d.time_zone);
    if (!d.zone && !stored) return def_error("dashboard.time_zone", unknown_time_zone(d.time_zone));
  }
  const Value& widgets = doc["widgets"];
  if (!widgets.is_array() || widgets.as_array().empty())
    return def_error("dashboard.widgets", "a non-empty array of widgets is required");
  if (widgets.as_array().size() > kMostWidgets)
    return def_error("dashboard.widgets", "at most " + std::to_string(kMostWidgets) + " widgets");
  for (size_t i = 0; i < widgets.as_array().size(); ++i) {
    auto w = parse_widget(widgets.as_array()[i], "dashboard.widgets[" + std::to_string(i) + "]");
    if (!w.ok()) return w.error();
    d.widgets.push_back(std::move(w.value()));
  }
  return d;
}

}  // namespace

Result<DashboardDef> parse_dashboard(std::string_view id, const Value& doc) {
  return parse_dashboard(id, doc, false);
}

Result<DashboardDef> parse_stored_dashboard(std::string_view id, const Value& doc) {
  return parse_dashboard(id, doc, true);
}

}  // namespace ticketd
