// ticketctl rebuild-reports: every report, or one dashboard, recomputed from zero, as JSON lines.
#include <chrono>
#include <cstdio>
#include <iostream>

#include "domain/time_format.h"
#include "projections/dashboards.h"
#include "projections/read_model.h"
#include "projections/reports.h"
#include "storage/event_log.h"
#include "tools/ticketctl/views.h"

namespace ticketd::tools {

int rebuild_reports(const Args& args) {
  if (!args.has("data-dir")) {
    std::cerr << "ticketctl: --data-dir is required\n";
    return 2;
  }
  std::string error;
  auto until = args.number("until", UINT64_MAX, &error);
  if (!until) {
    std::cerr << "ticketctl: " << error << "\n";
    return 2;
  }
  const date::time_zone* zone = nullptr;  // the company's, as the log says at --until
  if (args.has("tz") && !(zone = find_time_zone(args.get("tz")))) {
    std::cerr << "ticketctl: " << unknown_time_zone(args.get("tz")) << "\n";
    return 2;
  }
  std::unique_ptr<storage::EventLog> log;
  if (int rc = open_log(args, true, &log)) return rc;
  projections::ReadModel model;
  auto started = std::chrono::steady_clock::now();
  uint64_t applied = 0;
  auto s = log->read_all(0, SIZE_MAX, [&](const storage::RecordedEvent& e) {
    if (e.position() > *until) return false;
    model.apply(e);
    applied = e.position();
    return true;
  });
  if (!s.ok()) {
    std::cerr << "ticketctl: " << s.ToString() << "\n";
    return 1;
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (args.has("dashboard")) {
    const std::string id = args.get("dashboard");
    JsonWriter w;
    bool found = model.read([&](const projections::ReadModel::View& v) {
      const DashboardDef* d = v.catalog.dashboard(id);
      if (!d) return false;
      const int64_t now = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      w.begin_object();
      projections::write_dashboard_members(w, *d, v, now);
      w.end_object();
      return true;
    });
    if (!found) {
      std::cerr << "ticketctl: no dashboard \"" << id << "\" in this log\n";
      return 1;
    }
    std::printf("%.*s\n", static_cast<int>(w.str().size()), w.str().data());
  } else {
    for (std::string_view name : kReportNames) {
      projections::ReportQuery q;
      q.name = name;
      projections::ReportTable table;
      model.read([&](const projections::ReadModel::View& v) {
        q.zone = zone_or_company(zone, v.catalog.settings());
        return v.reports.run(q, v.catalog, projections::node_names(v.catalog), &table);
      });
      JsonWriter w;
      w.begin_object().key("report").string(name).key("result");
      projections::write_report_json(w, table);
      w.end_object();
      std::printf("%.*s\n", static_cast<int>(w.str().size()), w.str().data());
    }
  }
  std::fprintf(stderr, "rebuilt reports events=%llu seconds=%.3f events_per_s=%.0f\n",
               static_cast<unsigned long long>(applied), seconds,
               seconds > 0 ? static_cast<double>(applied) / seconds : 0.0);
  return 0;
}

}  // namespace ticketd::tools
