#include "domain/settings.h"

#include <cmath>

#include "domain/definition_error.h"
#include "domain/text.h"
#include "domain/time_format.h"

namespace ticketd {

Result<CompanySettings> parse_settings(const Value& doc, bool refuse_unknown) {
  if (!doc.is_object()) return def_error("settings", "must be a JSON object");
  if (auto e = unknown_property(doc, {"time_zone", "name", "reopen_days"}, "settings")) return *e;
  const Value* zone = doc.find("time_zone");
  if (!zone)
    return def_error("settings.time_zone", "required: an IANA time zone name like Asia/Shanghai");
  if (!zone->is_string())
    return def_error("settings.time_zone", "an IANA time zone name like Asia/Shanghai");
  CompanySettings s;
  s.document = doc;
  if (const Value* name = doc.find("name")) {
    if (!name->is_string()) return def_error("settings.name", "must be a string");
    // It heads every printed page, above the title, and signs SMS: a paragraph would push the
    // report down the page. A stored longer one (taken before) still loads.
    if (refuse_unknown && utf8_length(name->as_string()) > kMaxCompanyNameLength) {
      return def_error("settings.name", "at most " + std::to_string(kMaxCompanyNameLength) +
                                            " characters: it heads every printed page");
    }
    s.name = name->as_string();
  }
  if (const Value* days = doc.find("reopen_days")) {
    const double n = days->as_number();
    if (!days->is_number() || n != std::floor(n) || n < 0 || n > kMaxReopenDays) {
      return def_error("settings.reopen_days",
                       "a whole number of days from 0 (customers never reopen) to " +
                           std::to_string(kMaxReopenDays));
    }
    s.reopen_days = static_cast<int64_t>(n);
  }
  s.time_zone = zone->as_string();
  const date::time_zone* found = find_time_zone(s.time_zone);
  if (!found && refuse_unknown)
    return def_error("settings.time_zone", unknown_time_zone(s.time_zone));
  if (s.time_zone != "UTC") s.zone = found;
  return s;
}

}  // namespace ticketd
