// GET /api/v1/dashboards/{id}/data (projections/dashboards.h).
#include "api/api.h"
#include "api/call.h"
#include "domain/time_format.h"
#include "projections/dashboards.h"

namespace ticketd::api {

void Api::get_dashboard_data(const CallPtr& call, const std::string& id) {
  uint64_t version = 0;
  if (!call->version_param(&version)) return;
  const int64_t now = now_us();
  JsonWriter w;
  bool found = model_.read([&](const projections::ReadModel::View& v) {
    const DashboardDef* d = v.catalog.dashboard(id, version);
    if (!d) return false;
    w.begin_object();
    projections::write_dashboard_members(w, *d, v, now);
    w.key("generated_at").string(format_rfc3339(now)).end_object();
    return true;
  });
  if (!found) {
    return call->fail(404, codes::kNotFound, "no dashboard \"" + id + "\"" + at_version(version));
  }
  call->ok(200, w.take());
}

}  // namespace ticketd::api
