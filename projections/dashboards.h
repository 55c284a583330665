#pragma once
// A dashboard's numbers (domain/dashboard.h): every widget run as its report, from one read of the
// views. GET /api/v1/dashboards/{id}/data answers them, the stream's dashboard:<id> topic sends
// them again whenever they change, and ticketctl rebuild-reports --dashboard prints them.
#include <cstdint>

#include "domain/dashboard.h"
#include "domain/json_writer.h"
#include "projections/read_model.h"

namespace ticketd::projections {

// Writes the members "id", "version", "name", "time_zone" and "widgets" (each with its parameters,
// its window's "from" and "to" dates, and its report's JSON as "result", or an "error" when its
// form or field changed since it was published) into an object the caller has begun. `now_us`
// fixes "today", which is a day of the dashboard's zone.
void write_dashboard_members(JsonWriter& w, const DashboardDef& dashboard,
                             const ReadModel::View& view, int64_t now_us);

}  // namespace ticketd::projections
