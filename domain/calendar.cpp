#include "domain/calendar.h"

#include <date/tz.h>

#include <algorithm>
#include <array>
#include <atomic>

#include "domain/definition_error.h"
#include "domain/time_format.h"

namespace ticketd {
namespace {

using std::chrono::microseconds;
using std::chrono::minutes;

constexpr int64_t kHorizonDays = 3660;
constexpr const char* kWeekdays[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

std::optional<int> parse_clock(std::string_view s) {  // "HH:MM", 24:00 allowed
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (size_t i : {0, 1, 3, 4}) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
  }
  int h = (s[0] - '0') * 10 + (s[1] - '0');
  int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
  return h * 60 + m;
}

Result<std::vector<WorkingHours>> parse_hours(const Value& v, const std::string& path) {
  if (!v.is_array()) return def_error(path, "a list like [\"09:00-12:00\",\"13:00-18:00\"]");
  std::vector<WorkingHours> out;
  for (size_t i = 0; i < v.as_array().size(); ++i) {
    const Value& item = v.as_array()[i];
    std::string p = path + "[" + std::to_string(i) + "]";
    std::string_view s = item.is_string() ? std::string_view(item.as_string()) : "";
    auto start = s.size() == 11 && s[5] == '-' ? parse_clock(s.substr(0, 5)) : std::nullopt;
    auto end = start ? parse_clock(s.substr(6, 5)) : std::nullopt;
    if (!start || !end) return def_error(p, "hours look like \"09:00-18:00\"");
    if (*end <= *start) return def_error(p, "a range must end after it starts");
    out.push_back({*start, *end});
  }
  std::sort(out.begin(), out.end(), [](const WorkingHours& a, const WorkingHours& b) {
    return a.start_minute < b.start_minute;
  });
  for (size_t i = 1; i < out.size(); ++i) {
    if (out[i].start_minute < out[i - 1].end_minute) return def_error(path, "ranges overlap");
  }
  return out;
}

// `stored`: a date listed twice, refused since, is one date.
Result<std::set<int64_t>> parse_dates(const Value* v, const std::string& path, bool stored) {
  std::set<int64_t> out;
  if (!v) return out;
  if (!v->is_array()) return def_error(path, "a list of dates like \"2026-10-01\"");
  for (size_t i = 0; i < v->as_array().size(); ++i) {
    const Value& item = v->as_array()[i];
    const std::string at = path + "[" + std::to_string(i) + "]";
    auto day = item.is_string() ? parse_date(item.as_string()) : std::nullopt;
    if (!day) return def_error(at, "a date like \"2026-10-01\"");
    // Most often another date mistyped as this one: the list would silently lack that one.
    if (!out.insert(*day).second && !stored)
      return def_error(at, item.as_string() + " is listed before: each date once");
  }
  return out;
}

int64_t local_day_of(const CalendarDef& c, int64_t t_us) { return local_day(t_us, c.zone); }

int64_t to_utc(const CalendarDef& c, int64_t local_day, int minute) {
  date::local_time<minutes> local{date::days(local_day) + minutes(minute)};
  auto sys = c.zone->to_sys(local, date::choose::earliest);
  return std::chrono::duration_cast<microseconds>(sys.time_since_epoch()).count();
}

const std::vector<WorkingHours>& hours_of(const CalendarDef& c, int64_t local_day) {
  static const std::vector<WorkingHours> kNone;
  if (c.holidays.count(local_day)) return kNone;
  if (c.working_days.count(local_day)) return c.working_day_hours;
  date::weekday wd{date::local_days(date::days(local_day))};
  return c.weekly[wd.iso_encoding() - 1];
}

// A business day's units are counted through the day's running total: by an instant t, the units
// elapsed on that day are floor(kBusinessDayUnits × worked before t / the day's working length).
// A span is the difference of two totals, so a span split anywhere (counting up to each event of a
// ticket, then on) loses no unit to rounding and gives what counting it in one go gives, and a
// whole working day is exactly kBusinessDayUnits. Business time (kTime) is the worked time itself.
int64_t units_by(BusinessMeasure m, int64_t worked_us, int64_t day_length) {
  if (m == BusinessMeasure::kTime) return worked_us;
  return static_cast<int64_t>(static_cast<__int128>(worked_us) * kBusinessDayUnits / day_length);
}

// The least worked time by which the day's running total reaches `units`.
int64_t worked_for(BusinessMeasure m, int64_t units, int64_t day_length) {
  if (m == BusinessMeasure::kTime) return units;
  __int128 scaled = static_cast<__int128>(units) * day_length;
  return static_cast<int64_t>((scaled + kBusinessDayUnits - 1) / kBusinessDayUnits);
}

int64_t length_of(const std::vector<std::pair<int64_t, int64_t>>& intervals) {
  int64_t total = 0;
  for (const auto& [s, e] : intervals) total += e - s;
  return total;
}

}  // namespace

namespace {

Result<CalendarDef> parse_calendar(std::string_view id, const Value& doc, bool stored) {
  CalendarDef c;
  c.id = id;
  c.document = doc;
  if (!doc.is_object()) return def_error("calendar", "must be a JSON object");
  if (auto e = unknown_property(doc,
                                {"name", "time_zone", "weekly", "holidays", "working_days",
                                 "working_day_hours", "description"},
                                "calendar"))
    return *e;
  c.name = doc.string_or("name");
  if (c.name.empty()) return def_error("calendar.name", "a non-empty string is required");
  c.time_zone = doc.string_or("time_zone");
  c.zone = find_time_zone(c.time_zone);
  if (!c.zone && stored) c.zone = find_time_zone("UTC");  // hours counted somewhere, not nowhere
  if (!c.zone) {
    return def_error("calendar.time_zone", unknown_time_zone(c.time_zone));
  }
  const Value& weekly = doc["weekly"];
  if (!weekly.is_object()) return def_error("calendar.weekly", "an object like {\"mon\":[…]}");
  for (const auto& [day, hours] : weekly.as_object()) {
    auto it = std::find(std::begin(kWeekdays), std::end(kWeekdays), day);
    if (it == std::end(kWeekdays))
      return def_error("calendar.weekly." + day, "days are mon tue wed thu fri sat sun");
    auto parsed = parse_hours(hours, "calendar.weekly." + day);
    if (!parsed.ok()) return parsed.error();
    c.weekly[static_cast<size_t>(it - std::begin(kWeekdays))] = std::move(parsed.value());
  }
  auto first_working =
      std::find_if(c.weekly.begin(), c.weekly.end(), [](const auto& h) { return !h.empty(); });
  if (first_working == c.weekly.end())
    return def_error("calendar.weekly", "at least one day needs working hours");
  if (const Value* h = doc.find("working_day_hours")) {
    auto parsed = parse_hours(*h, "calendar.working_day_hours");
    if (!parsed.ok()) return parsed.error();
    if (parsed.value().empty())
      return def_error("calendar.working_day_hours", "at least one range is required");
    c.working_day_hours = std::move(parsed.value());
  } else {
    c.working_day_hours = *first_working;
  }
  auto holidays = parse_dates(doc.find("holidays"), "calendar.holidays", stored);
  if (!holidays.ok()) return holidays.error();
  c.holidays = std::move(holidays.value());
  auto working = parse_dates(doc.find("working_days"), "calendar.working_days", stored);
  if (!working.ok()) return working.error();
  c.working_days = std::move(working.value());
  for (int64_t day : c.working_days) {
    if (c.holidays.count(day)) {
      return def_error(
          "calendar.working_days",
          format_rfc3339(day * 86400 * 1000000).substr(0, 10) + " is also listed as a holiday");
    }
  }
  static std::atomic<uint64_t> next_serial{1};
  c.serial = next_serial.fetch_add(1, std::memory_order_relaxed);
  return c;
}

}  // namespace

Result<CalendarDef> parse_calendar(std::string_view id, const Value& doc) {
  return parse_calendar(id, doc, false);
}

Result<CalendarDef> parse_stored_calendar(std::string_view id, const Value& doc) {
  return parse_calendar(id, doc, true);
}

std::vector<std::pair<int64_t, int64_t>> working_intervals(const CalendarDef& c,
                                                           int64_t local_day) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const WorkingHours& h : hours_of(c, local_day)) {
    int64_t s = to_utc(c, local_day, h.start_minute);
    int64_t e = to_utc(c, local_day, h.end_minute);
    if (e > s) out.emplace_back(s, e);  // a range inside a DST gap is empty
  }
  return out;
}

namespace {

using Intervals = std::vector<std::pair<int64_t, int64_t>>;

// Working time on the day before `t` (all of it once the day's hours are over).
int64_t worked_before(const Intervals& intervals, int64_t t) {
  int64_t worked = 0;
  for (const auto& [s, e] : intervals) {
    if (t <= s) break;
    worked += std::min(e, t) - s;
  }
  return worked;
}

// The earliest instant by which `worked` (0 < worked <= the day's length) of the day's working time
// has passed.
int64_t instant_worked(const Intervals& intervals, int64_t worked) {
  for (const auto& [s, e] : intervals) {
    if (worked <= e - s) return s + worked;
    worked -= e - s;
  }
  return intervals.back().second;
}

// working_intervals, valid until this thread's next call. A list of a million tickets asks for
// the same few days millions of times, and each day asks the time zone database for every
// boundary of its hours: the days last asked for are kept per thread, by calendar and date.
const Intervals& working_intervals_kept(const CalendarDef& c, int64_t local_day) {
  struct Kept {
    uint64_t serial = 0;
    int64_t day = 0;
    Intervals intervals;
  };
  thread_local std::array<Kept, 64> kept;
  if (c.serial == 0) {
    kept[0] = {};
    kept[0].intervals = working_intervals(c, local_day);
    return kept[0].intervals;
  }
  Kept& k = kept[(c.serial * 31 + static_cast<uint64_t>(local_day)) % kept.size()];
  if (k.serial != c.serial || k.day != local_day) {
    k.intervals = working_intervals(c, local_day);
    k.serial = c.serial;
    k.day = local_day;
  }
  return k.intervals;
}

}  // namespace

int64_t business_elapsed(const CalendarDef& c, BusinessMeasure measure, int64_t from_us,
                         int64_t to_us) {
  if (to_us <= from_us || !c.zone) return 0;
  int64_t total = 0;
  int64_t last = std::min(local_day_of(c, to_us), local_day_of(c, from_us) + 40 * 366);
  for (int64_t day = local_day_of(c, from_us); day <= last; ++day) {
    const Intervals& intervals = working_intervals_kept(c, day);
    if (intervals.empty()) continue;
    const int64_t day_length = length_of(intervals);
    total += units_by(measure, worked_before(intervals, to_us), day_length) -
             units_by(measure, worked_before(intervals, from_us), day_length);
  }
  return total;
}

std::optional<int64_t> business_advance(const CalendarDef& c, BusinessMeasure measure,
                                        int64_t from_us, int64_t amount) {
  if (amount <= 0) return from_us;
  if (!c.zone) return std::nullopt;
  int64_t first = local_day_of(c, from_us);
  for (int64_t day = first; day < first + kHorizonDays; ++day) {
    const Intervals& intervals = working_intervals_kept(c, day);
    if (intervals.empty()) continue;
    const int64_t day_length = length_of(intervals);
    const int64_t done = units_by(measure, worked_before(intervals, from_us), day_length);
    const int64_t left = units_by(measure, day_length, day_length) - done;
    if (amount <= left) {
      return instant_worked(intervals, worked_for(measure, done + amount, day_length));
    }
    amount -= left;
  }
  return std::nullopt;
}

}  // namespace ticketd
