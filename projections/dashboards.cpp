#include "projections/dashboards.h"

#include "projections/reports.h"

namespace ticketd::projections {

void write_dashboard_members(JsonWriter& w, const DashboardDef& d, const ReadModel::View& v,
                             int64_t now_us) {
  // A dashboard that names no zone counts the company's days.
  const CompanySettings& company = v.catalog.settings();
  const date::time_zone* zone = zone_or_company(d.zone, company);
  const int64_t today = local_day(now_us, zone);
  const auto names = node_names(v.catalog);
  w.key("id").string(d.id).key("version").number(d.version).key("name").string(d.name);
  w.key("time_zone").string(zone_name_or_company(d.zone, d.time_zone, company));
  w.key("widgets").begin_array();
  for (const DashboardWidget& widget : d.widgets) {
    ReportQuery q{.name = widget.report,
                  .field = widget.field,
                  .form = widget.form,
                  .bucket = widget.bucket,
                  .zone = zone};
    w.begin_object().key("title").string(widget.title).key("report").string(widget.report);
    w.key("chart").string(widget.chart);
    if (!widget.form.empty()) w.key("form").string(widget.form);
    if (!widget.field.empty()) w.key("field").string(widget.field);
    if (!widget.bucket.empty()) w.key("bucket").string(widget.bucket);
    if (widget.days) {
      q.from_day = today - widget.days + 1;
      q.to_day = today;
      w.key("days").number(widget.days).key("from").string(bucket_label(q.from_day, "day"));
      w.key("to").string(bucket_label(q.to_day, "day"));
    }
    ReportTable table;
    // A form changed since the dashboard was published fails its widget, not the page.
    if (auto problem = v.reports.run(q, v.catalog, names, &table)) {
      w.key("error").begin_object();
      write_error_members(w, codes::kInvalidDefinition, *problem);
      w.end_object();
    } else {
      w.key("result");
      write_report_json(w, table);
    }
    w.end_object();
  }
  w.end_array();
}

}  // namespace ticketd::projections
