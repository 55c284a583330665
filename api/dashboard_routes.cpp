// GET /api/v1/dashboards/{id}/data (api/dashboard_data.h).
#include <chrono>
#include <cstdio>

#include "api/api.h"
#include "api/call.h"
#include "api/dashboard_data.h"
#include "domain/time_format.h"
#include "projections/reports.h"

namespace ticketd::api {
namespace {

constexpr int64_t kDayUs = 86'400'000'000LL;

std::string date_of(int64_t day) {
  std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", int(ymd.year()), unsigned(ymd.month()),
                unsigned(ymd.day()));
  return buf;
}

}  // namespace

void write_dashboard_members(JsonWriter& w, const DashboardDef& d,
                             const projections::ReadModel::View& v, int64_t now_us) {
  const int64_t today = now_us >= 0 ? now_us / kDayUs : (now_us - kDayUs + 1) / kDayUs;
  const auto names = projections::node_names(v.catalog);
  w.key("id").string(d.id).key("version").number(d.version).key("name").string(d.name);
  w.key("widgets").begin_array();
  for (const DashboardWidget& widget : d.widgets) {
    projections::ReportQuery q{widget.report, widget.field, widget.form,
                               INT64_MIN,     INT64_MAX,    widget.bucket};
    w.begin_object().key("title").string(widget.title).key("report").string(widget.report);
    w.key("chart").string(widget.chart);
    if (!widget.form.empty()) w.key("form").string(widget.form);
    if (!widget.field.empty()) w.key("field").string(widget.field);
    if (!widget.bucket.empty()) w.key("bucket").string(widget.bucket);
    if (widget.days) {
      q.from_day = today - widget.days + 1;
      q.to_day = today;
      w.key("days").number(widget.days).key("from").string(date_of(q.from_day));
      w.key("to").string(date_of(q.to_day));
    }
    projections::ReportTable table;
    // A form changed since the dashboard was published fails its widget, not the page.
    if (auto problem = v.reports.run(q, v.catalog, names, &table)) {
      w.key("error").begin_object().key("code").string(codes::kInvalidDefinition);
      w.key("message").string(*problem).end_object();
    } else {
      w.key("result");
      projections::write_report_json(w, table);
    }
    w.end_object();
  }
  w.end_array();
}

void Api::get_dashboard_data(const CallPtr& call, const std::string& id) {
  uint64_t version = 0;
  if (!call->uint_param("version", &version)) return;
  const int64_t now = now_us();
  JsonWriter w;
  bool found = model_.read([&](const projections::ReadModel::View& v) {
    const DashboardDef* d = v.catalog.dashboard(id, version);
    if (!d) return false;
    w.begin_object();
    write_dashboard_members(w, *d, v, now);
    w.key("generated_at").string(format_rfc3339(now)).end_object();
    return true;
  });
  if (!found) {
    return call->fail(
        404, codes::kNotFound,
        "no dashboard \"" + id + "\"" + (version ? " at version " + std::to_string(version) : ""));
  }
  call->ok(200, w.take());
}

}  // namespace ticketd::api
