#include "domain/time_format.h"

#include <date/tz.h>

#include <chrono>
#include <cstdio>
#include <sstream>

namespace ticketd {
namespace {

using namespace std::chrono;

bool digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

std::optional<sys_days> civil_day(std::string_view s) {
  int y, m, d;
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  if (!digits(s, 0, 4, &y) || !digits(s, 5, 2, &m) || !digits(s, 8, 2, &d)) return std::nullopt;
  year_month_day ymd{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return sys_days{ymd};
}

// Writes v as exactly `width` decimal digits, zero-padded, ending before `end`; returns where
// they start. Every ticket view holds several times, so this stays out of printf's parser.
char* put_digits(char* end, uint64_t v, int width) {
  for (int i = 0; i < width; ++i, v /= 10) *--end = static_cast<char>('0' + v % 10);
  return end;
}

}  // namespace

std::string format_rfc3339(int64_t us) {
  auto tp = sys_time<microseconds>{microseconds{us}};
  auto day_point = floor<days>(tp);
  year_month_day ymd{day_point};
  hh_mm_ss<microseconds> tod{tp - day_point};
  int year = int(ymd.year());
  if (year < 0 || year > 9999) {  // outside RFC 3339's four digits: as printf wrote it before
    char buf[48];
    int n = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", year,
                          unsigned(ymd.month()), unsigned(ymd.day()), int(tod.hours().count()),
                          int(tod.minutes().count()), int(tod.seconds().count()));
    std::string out(buf, n);
    if (auto frac = tod.subseconds().count(); frac != 0) {
      std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
      out += buf;
    }
    out.push_back('Z');
    return out;
  }
  // "YYYY-MM-DDTHH:MM:SS" then ".ffffff" when there is a fraction, then "Z".
  char buf[28];
  char* end = buf + 19;
  put_digits(end, static_cast<uint64_t>(tod.seconds().count()), 2);
  end[-3] = ':';
  put_digits(end - 3, static_cast<uint64_t>(tod.minutes().count()), 2);
  end[-6] = ':';
  put_digits(end - 6, static_cast<uint64_t>(tod.hours().count()), 2);
  end[-9] = 'T';
  put_digits(end - 9, unsigned(ymd.day()), 2);
  end[-12] = '-';
  put_digits(end - 12, unsigned(ymd.month()), 2);
  end[-15] = '-';
  put_digits(end - 15, static_cast<uint64_t>(year), 4);
  if (auto frac = tod.subseconds().count(); frac != 0) {
    *end = '.';
    end = put_digits(end + 7, static_cast<uint64_t>(frac), 6) + 6;
  }
  *end++ = 'Z';
  return std::string(buf, end);
}

std::optional<int64_t> parse_rfc3339(std::string_view s) {
  auto day = civil_day(s);
  if (!day || s.size() < 20) return std::nullopt;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return std::nullopt;
  int h, mi, sec;
  if (!digits(s, 11, 2, &h) || s[13] != ':' || !digits(s, 14, 2, &mi) || s[16] != ':' ||
      !digits(s, 17, 2, &sec)) {
    return std::nullopt;
  }
  if (h > 23 || mi > 59 || sec > 60) return std::nullopt;  // 60: a leap second, counted as 59+1
  size_t i = 19;
  int64_t frac_us = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    int64_t scale = 100000;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      frac_us += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(s, i + 1, 2, &oh) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !digits(s, i + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  int64_t secs =
      duration_cast<seconds>(day->time_since_epoch()).count() + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1000000 + frac_us;
}

std::optional<int64_t> parse_date(std::string_view text) {
  if (text.size() != 10) return std::nullopt;
  auto day = civil_day(text);
  if (!day) return std::nullopt;
  return day->time_since_epoch().count();
}

std::optional<int64_t> parse_duration(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  int64_t n = 0;
  for (size_t i = 0; i + 1 < text.size(); ++i) {
    char c = text[i];
    if (c < '0' || c > '9' || n > 1000000000) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  int64_t unit;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  if (n <= 0) return std::nullopt;
  return n * unit * 1000000;
}

int64_t local_day(int64_t us, const date::time_zone* zone) {
  sys_time<microseconds> t{microseconds(us)};
  // Qualified: date's floor is found by argument-dependent lookup too.
  if (!zone) return std::chrono::floor<days>(t).time_since_epoch().count();
  return std::chrono::floor<days>(zone->to_local(t)).time_since_epoch().count();
}

std::string format_local_minute(int64_t us, const date::time_zone* zone) {
  sys_time<seconds> t = std::chrono::floor<seconds>(sys_time<microseconds>{microseconds(us)});
  if (!zone) return date::format("%Y-%m-%d %H:%M", t);
  return date::format("%Y-%m-%d %H:%M", date::make_zoned(zone, t));
}

std::string format_local_second(int64_t us, const date::time_zone* zone) {
  sys_time<seconds> t = std::chrono::floor<seconds>(sys_time<microseconds>{microseconds(us)});
  if (!zone) return date::format("%Y-%m-%d %H:%M:%S", t);
  return date::format("%Y-%m-%d %H:%M:%S", date::make_zoned(zone, t));
}

std::optional<int64_t> parse_local_time(std::string_view text, const date::time_zone* zone) {
  // date::parse reads a two-digit year too ("26-12-01"): four digits, then the date's separator.
  if (text.size() < 5 || (text[4] != '-' && text[4] != '/')) return std::nullopt;
  for (const char* format : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                             "%Y-%m-%dT%H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M"}) {
    std::istringstream in{std::string(text)};
    date::local_seconds local;
    in >> date::parse(format, local);
    if (in.fail() || in.peek() != std::char_traits<char>::eof()) continue;
    const sys_seconds at =
        zone ? zone->to_sys(local, date::choose::earliest) : sys_seconds{local.time_since_epoch()};
    return duration_cast<microseconds>(at.time_since_epoch()).count();
  }
  return std::nullopt;
}

int64_t local_day_start(int64_t day, const date::time_zone* zone) {
  const int64_t midnight = day * 86'400'000'000LL;
  if (!zone) return midnight;
  date::local_time<microseconds> local{microseconds(midnight)};
  return zone->to_sys(local, date::choose::earliest).time_since_epoch().count();
}

std::string unknown_time_zone(const std::string& name) {
  return "unknown time zone \"" + name + "\" (an IANA name like Asia/Shanghai)";
}

std::string time_zone_name(const date::time_zone* zone) { return zone ? zone->name() : "UTC"; }

const date::time_zone* find_time_zone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    return nullptr;  // date reports an unknown zone by throwing; the domain does not throw
  }
}

}  // namespace ticketd
