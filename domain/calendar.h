#pragma once
// Business calendars: a time zone, weekly working hours, holidays and make-up working days (调休).
// SLA clocks count time in a calendar, in one of two measures:
//   kTime  business microseconds ("30m", "2h": only working hours count);
//   kDays  business days, each working day worth kBusinessDayUnits however long its hours are, so
//          "1d" from Tuesday 10:00 is Wednesday 10:00 and from Friday 17:30 is Monday 17:30.
// All times are UTC microseconds; the zone (IANA, from the system's tz database) only places the
// working hours. Pure functions of the definition: no clock, no global state but the tz database.
#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/value.h"

namespace date {
class time_zone;
}

namespace ticketd {

struct WorkingHours {
  int start_minute = 0;  // local minutes after midnight
  int end_minute = 0;    // exclusive; 1440 is midnight at the end of the day
};

struct CalendarDef {
  std::string id;
  uint64_t version = 0;
  std::string name;
  std::string time_zone;
  std::array<std::vector<WorkingHours>, 7> weekly;  // [0] Monday … [6] Sunday
  std::set<int64_t> holidays;                       // local dates, days since the epoch
  std::set<int64_t> working_days;                   // make-up working days (调休)
  // The hours of a make-up working day: "working_day_hours" if given, else those of the first
  // working weekday (Monday first).
  std::vector<WorkingHours> working_day_hours;
  Value document;
  const date::time_zone* zone = nullptr;
  // Set by parsing and never given twice: what the days' hours are kept by (the hours, dates and
  // zone of a parsed calendar are not changed afterwards; its version is set later). 0: not kept.
  uint64_t serial = 0;
};

Result<CalendarDef> parse_calendar(std::string_view id, const Value& document);
// A calendar as the log holds it: a zone the tz database no longer knows (an upgrade can move old
// names such as PRC to tzdata-legacy) counts its hours in UTC, so that the SLA policies using it
// still run, rather than leaving it unreadable.
Result<CalendarDef> parse_stored_calendar(std::string_view id, const Value& document);

enum class BusinessMeasure { kTime, kDays };
inline constexpr int64_t kBusinessDayUnits = 86'400'000'000;

// How much business time (in `measure`) lies in [from_us, to_us); 0 when to <= from.
int64_t business_elapsed(const CalendarDef& calendar, BusinessMeasure measure, int64_t from_us,
                         int64_t to_us);

// The earliest instant t >= from_us with business_elapsed(from_us, t) >= amount; nullopt when the
// calendar has no such time within ten years.
std::optional<int64_t> business_advance(const CalendarDef& calendar, BusinessMeasure measure,
                                        int64_t from_us, int64_t amount);

// The working intervals of one local date, as UTC [start, end) pairs (for tests and views).
std::vector<std::pair<int64_t, int64_t>> working_intervals(const CalendarDef& calendar,
                                                           int64_t local_day);

}  // namespace ticketd
