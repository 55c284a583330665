// GET /api/v1/reports/{name} (projections/reports.h), as JSON or CSV.
#include "api/api.h"
#include "api/call.h"
#include "domain/time_format.h"

namespace ticketd::api {

void Api::get_report(const CallPtr& call, const std::string& name) {
  projections::ReportQuery q;
  q.name = name;
  q.field = call->req.param("field");
  q.form = call->req.param("form");
  q.bucket = call->req.param("bucket");
  // Without tz, the company's days (UTC's when it names no zone).
  q.zone =
      model_.read([](const projections::ReadModel::View& v) { return v.catalog.settings().zone; });
  if (!call->zone_param(&q.zone)) return;
  // from / to: a date is its whole day of the zone, both ends included; an RFC 3339 time is that
  // instant (to: up to it), widened to the quarter hours reports count in. The answer names the
  // window it counted.
  Object window;
  int64_t asked_from = INT64_MIN, asked_to = INT64_MAX;  // the instants asked for, unwidened
  struct End {
    const char* param;
    bool is_to;
    int64_t* day;
    int64_t* us;
    int64_t* asked;
  };
  for (const End& end : {End{"from", false, &q.from_day, &q.from_us, &asked_from},
                         End{"to", true, &q.to_day, &q.to_us, &asked_to}}) {
    if (!call->req.has_param(end.param)) continue;
    std::string text = call->req.param(end.param);
    if (auto day = parse_date(text)) {
      *end.day = *day;
      *end.asked =
          end.is_to ? local_day_start(*day + 1, q.zone) - 1 : local_day_start(*day, q.zone);
      window.emplace_back(end.param, Value(projections::bucket_label(*day, "day")));
    } else if (auto t = parse_rfc3339(text)) {
      *end.us =
          end.is_to ? projections::quarter_hour_ceil(*t) : projections::quarter_hour_floor(*t);
      *end.day = local_day(*end.us, q.zone);
      *end.asked = *t;
      window.emplace_back(end.param, Value(format_rfc3339(*end.us)));
    } else {
      return call->fail(400, "bad_parameter",
                        std::string(end.param) + " must be a date or an RFC 3339 time", end.param);
    }
  }
  // A window turned round is a mistake to say, not empty figures to show.
  if (asked_to < asked_from)
    return call->fail(400, "bad_parameter", "to must not be before from", "to");
  if (!projections::Reports::known(name))
    return call->fail(404, codes::kNotFound, "no report \"" + name + "\"");
  if (name == "backlog") {
    // The tickets open now, as the dashboards' backlog widgets (which take no days or bucket).
    for (const char* param : {"from", "to", "bucket"}) {
      if (call->req.has_param(param)) {
        return call->fail(
            400, "bad_parameter",
            std::string("the backlog counts the tickets open now: it takes no ") + param, param);
      }
    }
  }
  if (!projections::Reports::known_bucket(q.bucket))
    return call->fail(400, "bad_parameter", "bucket must be day, week or month", "bucket");
  projections::ReportTable table;
  bool known_form = true;  // a misspelt form would show zeros, not a mistake
  auto problem = model_.read([&](const projections::ReadModel::View& v) {
    known_form = q.form.empty() || v.catalog.form(q.form);
    return known_form ? v.reports.run(q, v.catalog, projections::node_names(v.catalog), &table)
                      : std::nullopt;
  });
  if (!known_form) return call->fail(400, "bad_parameter", "no form \"" + q.form + "\"", "form");
  // The name and the bucket were checked above: what is left to refuse is the field.
  if (problem) return call->fail(400, "bad_parameter", *problem, "field");
  if (call->req.header("accept").find("text/csv") != std::string::npos) {
    bool bom = false;
    if (!call->bool_param("bom", &bom)) return;
    return call->respond(call->csv(projections::report_csv(table), bom));
  }
  table.totals.insert(table.totals.end(), window.begin(), window.end());
  JsonWriter w;
  projections::write_report_json(w, table);
  call->ok(200, w.take());
}

}  // namespace ticketd::api
