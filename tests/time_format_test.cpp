#include "domain/time_format.h"

#include <gtest/gtest.h>

#include <set>

#include "domain/event_id.h"

namespace ticketd {
namespace {

TEST(TimeFormat, FormatsAndParsesRfc3339) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_rfc3339(1795587000000000), "2026-11-25T06:10:00Z");
  EXPECT_EQ(format_rfc3339(1795587000123456), "2026-11-25T06:10:00.123456Z");
  EXPECT_EQ(format_rfc3339(951782399999999), "2000-02-28T23:59:59.999999Z");
  EXPECT_EQ(format_rfc3339(1), "1970-01-01T00:00:00.000001Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(format_rfc3339(253402300799000001), "9999-12-31T23:59:59.000001Z");
  for (int64_t us : {int64_t{0}, int64_t{1795587000123456}, int64_t{951782399999999}}) {
    EXPECT_EQ(parse_rfc3339(format_rfc3339(us)), us);
  }
  EXPECT_EQ(parse_rfc3339("2026-11-25T06:10:00Z"), 1795587000000000);
  EXPECT_EQ(parse_rfc3339("2026-11-25T14:10:00+08:00"), 1795587000000000);
  EXPECT_EQ(parse_rfc3339("2026-11-25T06:10:00.5Z"), 1795587000500000);
  for (auto bad : {"", "2026-11-25", "2026-02-30T00:00:00Z", "2026-11-25T24:00:00Z",
                   "2026-11-25T06:10:00", "2026-11-25T06:10:00Zjunk", "2026-11-25T06:10:00.Z"}) {
    EXPECT_FALSE(parse_rfc3339(bad).has_value()) << bad;
  }
}

TEST(TimeFormat, ParsesDatesAndDurations) {
  EXPECT_EQ(parse_date("1970-01-02"), 1);
  EXPECT_FALSE(parse_date("2025-02-29").has_value());
  EXPECT_TRUE(parse_date("2024-02-29").has_value());
  EXPECT_EQ(parse_duration("90s"), 90000000);
  EXPECT_EQ(parse_duration("30m"), 1800000000);
  EXPECT_EQ(parse_duration("2h"), 7200000000);
  EXPECT_EQ(parse_duration("1d"), 86400000000);
  for (auto bad : {"", "s", "0s", "-1s", "1.5h", "10", "3w"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

// A spreadsheet's cells: written on a zone's clock to the second, and read back as written there
// or as Excel saves them (2026/12/1 5:20), exact at a daylight-saving change.
TEST(TimeFormat, LocalSpreadsheetTimes) {
  const date::time_zone* shanghai = find_time_zone("Asia/Shanghai");
  const date::time_zone* new_york = find_time_zone("America/New_York");
  ASSERT_TRUE(shanghai && new_york);
  const int64_t at = *parse_rfc3339("2026-11-30T21:20:07.5Z");
  EXPECT_EQ(format_local_second(at, shanghai), "2026-12-01 05:20:07");
  EXPECT_EQ(format_local_second(at, nullptr), "2026-11-30 21:20:07");
  EXPECT_EQ(format_local_minute(at, shanghai), "2026-12-01 05:20");
  EXPECT_EQ(parse_local_time("2026-12-01 05:20:07", shanghai), at - 500000);
  EXPECT_EQ(parse_local_time("2026/12/1 5:20", shanghai), *parse_rfc3339("2026-11-30T21:20:00Z"));
  EXPECT_EQ(parse_local_time("2026-12-01T05:20", nullptr), *parse_rfc3339("2026-12-01T05:20:00Z"));
  // 01:30 happens twice on 2026-11-01 in New York (the first is EDT's); 02:30 on 2026-03-08
  // never does (it is the change, 07:00 UTC).
  EXPECT_EQ(parse_local_time("2026-11-01 01:30", new_york), *parse_rfc3339("2026-11-01T05:30:00Z"));
  EXPECT_EQ(parse_local_time("2026-03-08 02:30", new_york), *parse_rfc3339("2026-03-08T07:00:00Z"));
  for (auto bad : {"", "2026-12-01", "2026-12-01 05", "2026-12-01 24:00", "2026-02-30 10:00",
                   "2026-12/01 10:00", "26-12-01 10:00", "2026-12-01 10:00:61", "2026-12-01 10:00Z",
                   "2026-12-01 10:00:07.5", "2026-12-01 10:00 ", "下周一"}) {
    EXPECT_FALSE(parse_local_time(bad, shanghai).has_value()) << bad;
  }
}

TEST(EventIdTest, RoundTripsAndDerivesStably) {
  EventId id = EventId::random_v4(0x0123456789abcdefULL, 0xfedcba9876543210ULL);
  std::string text = id.to_string();
  EXPECT_EQ(text.size(), 36u);
  EXPECT_EQ(text[14], '4');  // version nibble
  EXPECT_EQ(EventId::parse(text), id);
  EXPECT_FALSE(EventId::parse("not-a-uuid").has_value());
  EXPECT_EQ(EventId::derived("timer/T-1/idle/42"), EventId::derived("timer/T-1/idle/42"));
  EXPECT_NE(EventId::derived("timer/T-1/idle/42"), EventId::derived("timer/T-1/idle/43"));
  // Derived ids are stored (a fired timer's, an idempotent submit's): the derivation must never
  // change, or a replayed command would no longer be recognised.
  EXPECT_EQ(EventId::derived("timer/T-1/idle/42").to_string(),
            "a6c2d635-7d7e-8d91-a10b-8a10454d0946");
}

TEST(EventIdTest, HashSpreadsIdsMadeFromCounters) {
  // An open-addressing table takes a slot from the low bits and a tag from others: ids that
  // differ only in a counter must spread over both, as random ones would.
  std::set<size_t> low, high;
  for (uint64_t n = 0; n < 4096; ++n) {
    size_t h = EventIdHash()(EventId::random_v4(2, n));
    low.insert(h & 0xfff);
    high.insert(h >> 52);
  }
  EXPECT_GT(low.size(), 2400u);  // 4096 random values hit ~2,590 of 4,096
  EXPECT_GT(high.size(), 2400u);
}

}  // namespace
}  // namespace ticketd
