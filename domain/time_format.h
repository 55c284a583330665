#pragma once
// RFC 3339 UTC times as microseconds since the Unix epoch. Times in the domain are plain integers
// passed in by the caller; this is only their text form (and where the zones to show them in are).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;
}

namespace ticketd {

// "2026-11-25T06:10:00Z", with ".ffffff" only when there are sub-second digits.
std::string format_rfc3339(int64_t us);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" (also 't', 'z' and a space for 'T').
std::optional<int64_t> parse_rfc3339(std::string_view text);
// "YYYY-MM-DD" -> days since the epoch, checking the calendar (no 2026-02-30).
std::optional<int64_t> parse_date(std::string_view text);
// "90s", "30m", "2h", "1d" (a positive whole number and one unit) -> microseconds.
std::optional<int64_t> parse_duration(std::string_view text);
// An IANA zone ("Asia/Shanghai") from the system's tz database, or nullptr when there is none.
const date::time_zone* find_time_zone(const std::string& name);
// A zone's IANA name; "UTC" for nullptr (where the domain means UTC by no zone).
std::string time_zone_name(const date::time_zone* zone);
// What to tell whoever named a zone find_time_zone() does not know.
std::string unknown_time_zone(const std::string& name);
// The day (days since 1970-01-01, local) that the UTC instant `us` falls on in `zone`; UTC's
// when `zone` is nullptr.
int64_t local_day(int64_t us, const date::time_zone* zone);
// "2026-12-01 05:20": the minute the UTC instant `us` falls in, on `zone`'s clock (UTC's when
// nullptr). How people read a time: on a printed report, in a text message.
std::string format_local_minute(int64_t us, const date::time_zone* zone);
// "2026-12-01 05:20:07": the same to the second, as a spreadsheet's date-time cell.
std::string format_local_second(int64_t us, const date::time_zone* zone);
// A spreadsheet's date-time cell on `zone`'s clock -> UTC microseconds: "2026-12-01 05:20[:07]",
// also with '/' (2026/12/1 5:20, as Excel writes a date back) or 'T'. A time a daylight-saving
// change repeats is the first; one it skips is the change.
std::optional<int64_t> parse_local_time(std::string_view text, const date::time_zone* zone);
// When local `day` begins in `zone` (UTC's when nullptr), as UTC microseconds: its midnight, or
// for a midnight that a daylight-saving change skips, the change.
int64_t local_day_start(int64_t day, const date::time_zone* zone);

}  // namespace ticketd
