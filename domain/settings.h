#pragma once
// Company settings (公司设置): what holds wherever a definition or a request does not say
// otherwise. One document, changed by an administrator as definitions are (versioned, recorded
// in the log), so that a company in Shanghai names its zone once rather than on every
// dashboard, print template, rule and report call.
#include <cstdint>
#include <string>

#include "domain/error.h"
#include "domain/value.h"

namespace date {
class time_zone;
}

namespace ticketd {

// The settings' "id": the API shows it as a definition's, and a client may echo it back.
inline constexpr char kSettingsId[] = "company";

inline constexpr int64_t kDefaultReopenDays = 7;
inline constexpr int64_t kMaxReopenDays = 366;

struct CompanySettings {
  uint64_t version = 0;  // 0: never changed
  // The IANA zone the company reads times in. Dashboards, print templates and rules that name no
  // zone of their own use it, and so do reports and report topics asked without one. `zone` is
  // nullptr for "UTC", which changes nothing: times then show as they did before any setting
  // (RFC 3339 in notify texts, UTC days in reports), and for a stored zone the tz database no
  // longer knows.
  std::string time_zone = "UTC";
  const date::time_zone* zone = nullptr;
  // The company's name (公司名称), "" when not given: printed above a service report's title, and
  // {{company.name}} in a rule's templates (an SMS's 【signature】).
  std::string name;
  // For how many days after a close the customer may reopen the ticket in the portal; 0: never
  // (staff still may). A week by default: long enough to find that a fix did not hold, short
  // enough that an old ticket is not revived for a new fault.
  int64_t reopen_days = kDefaultReopenDays;
  // Before any change, the defaults themselves: what a reader finds in force.
  Value document =
      Value(Object{{"time_zone", Value("UTC")}, {"reopen_days", Value(kDefaultReopenDays)}});
};

// The longest company name a settings document may give, in characters.
inline constexpr size_t kMaxCompanyNameLength = 100;

// Parses and validates a settings document:
// {"time_zone":"Asia/Shanghai","name":"…","reopen_days":7}.
// `refuse_unknown` false: a stored document whose zone the tz database no longer knows, or whose
// name is longer than checks since allow, still loads (zone nullptr).
Result<CompanySettings> parse_settings(const Value& document, bool refuse_unknown = true);

// The zone of something that names `own` (nullptr: none of its own): its own, else the company's.
inline const date::time_zone* zone_or_company(const date::time_zone* own,
                                              const CompanySettings& company) {
  return own ? own : company.zone;
}
// And its name: `own_name`, else the company's, else "UTC".
inline const std::string& zone_name_or_company(const date::time_zone* own,
                                               const std::string& own_name,
                                               const CompanySettings& company) {
  static const std::string kUtc = "UTC";
  return own ? own_name : company.zone ? company.time_zone : kUtc;
}

}  // namespace ticketd
