// Reports in a time zone: a window and day, week and month buckets are the zone's own days, down
// to the quarter-hour offsets (Asia/Kathmandu) and across a daylight-saving change.
#include <gtest/gtest.h>

#include "domain/time_format.h"
#include "projections/reports.h"
#include "reference_catalog.h"

namespace ticketd::projections {
namespace {

class ReportZones : public ::testing::Test {
 protected:
  void SetUp() override { testing::reference_definitions(catalog_); }

  // A reference-form ticket on `channel`, created at the RFC 3339 time `at`.
  void created(const std::string& channel, const std::string& at) {
    TicketState t;
    t.id = "T-" + std::to_string(++tickets_);
    t.version = 1;
    t.form_id = "service_ticket";
    t.form_version = 1;
    t.node = "accept";
    t.fields = {{"channel", Value(channel)}};
    t.created_at = *parse_rfc3339(at);
    reports_.update(tickets_, t, catalog_);
  }

  // by_channel per day as "day channel=count" lines, in `zone` ("" for UTC), within [from, to].
  std::vector<std::string> daily(const std::string& zone, const std::string& from = "",
                                 const std::string& to = "", const std::string& bucket = "day") {
    ReportQuery q;
    q.name = "by_channel";
    q.bucket = bucket;
    if (!zone.empty()) q.zone = find_time_zone(zone);
    if (!from.empty()) q.from_day = *parse_date(from);
    if (!to.empty()) q.to_day = *parse_date(to);
    ReportTable table;
    EXPECT_EQ(reports_.run(q, catalog_, {}, &table), std::nullopt);
    std::vector<std::string> lines;
    for (const auto& row : table.rows) {
      lines.push_back(row[0].as_string() + " " + row[1].as_string() + "=" + row[2].to_json());
    }
    return lines;
  }

  Catalog catalog_;
  Reports reports_;
  int tickets_ = 0;
};

TEST_F(ReportZones, DaysAreTheZonesOwn) {
  created("电话", "2026-11-24T17:30:00Z");  // 2026-11-25 01:30 in Shanghai
  created("电话", "2026-11-25T03:00:00Z");  // 11:00 the same day
  created("微信", "2026-11-25T16:10:00Z");  // 2026-11-26 00:10 in Shanghai
  // Equal counts in a day go by value: 微 (U+5FAE) before 电 (U+7535).
  EXPECT_EQ(daily(""), (std::vector<std::string>{"2026-11-24 电话=1", "2026-11-25 微信=1",
                                                 "2026-11-25 电话=1"}));
  EXPECT_EQ(daily("Asia/Shanghai"),
            (std::vector<std::string>{"2026-11-25 电话=2", "2026-11-26 微信=1"}));
  // A window of one local day holds that day's tickets, whichever UTC days they fall on.
  EXPECT_EQ(daily("Asia/Shanghai", "2026-11-25", "2026-11-25"),
            (std::vector<std::string>{"2026-11-25 电话=2"}));
  EXPECT_EQ(daily("", "2026-11-25", "2026-11-25"),
            (std::vector<std::string>{"2026-11-25 微信=1", "2026-11-25 电话=1"}));
  EXPECT_EQ(daily("Asia/Shanghai", "2026-11-26", "2026-12-31"),
            (std::vector<std::string>{"2026-11-26 微信=1"}));
  EXPECT_TRUE(daily("Asia/Shanghai", "2026-11-27", "2026-12-31").empty());
}

TEST_F(ReportZones, QuarterHourOffsetsSplitDaysExactly) {
  // Kathmandu is UTC+05:45: 18:14:59Z is 23:59:59 there, 18:15:00Z the next midnight.
  created("电话", "2026-11-24T18:14:59Z");
  created("微信", "2026-11-24T18:15:00Z");
  EXPECT_EQ(daily("Asia/Kathmandu"),
            (std::vector<std::string>{"2026-11-24 电话=1", "2026-11-25 微信=1"}));
  EXPECT_EQ(daily(""), (std::vector<std::string>{"2026-11-24 微信=1", "2026-11-24 电话=1"}));
}

TEST_F(ReportZones, AWindowOfInstantsCountsItsQuarterHours) {
  created("电话", "2026-11-25T01:14:59Z");
  created("微信", "2026-11-25T01:15:00Z");
  created("邮件", "2026-11-25T01:44:00Z");
  auto within = [&](const std::string& from, const std::string& to) {
    ReportQuery q;
    q.name = "by_channel";
    q.zone = find_time_zone("Asia/Shanghai");
    q.from_us = quarter_hour_floor(*parse_rfc3339(from));
    q.to_us = quarter_hour_ceil(*parse_rfc3339(to));
    q.from_day = local_day(q.from_us, q.zone);
    q.to_day = local_day(q.to_us, q.zone);
    ReportTable table;
    EXPECT_EQ(reports_.run(q, catalog_, {}, &table), std::nullopt);
    std::vector<std::string> keys;
    for (const auto& row : table.rows) keys.push_back(row[0].as_string());
    return keys;
  };
  EXPECT_EQ(within("2026-11-25T01:15:00Z", "2026-11-25T01:30:00Z"),
            (std::vector<std::string>{"微信"}));
  EXPECT_EQ(within("2026-11-25T09:29:59+08:00", "2026-11-25T09:30:01+08:00"),
            (std::vector<std::string>{"微信", "邮件"}));  // 01:15Z to 01:45Z
  EXPECT_EQ(within("2026-11-25T01:00:00Z", "2026-11-25T01:15:00Z"),
            (std::vector<std::string>{"电话"}));
  EXPECT_TRUE(within("2026-11-25T01:45:00Z", "2026-11-25T02:00:00Z").empty());
  EXPECT_EQ(quarter_hour_ceil(*parse_rfc3339("2026-11-25T01:15:00Z")),
            *parse_rfc3339("2026-11-25T01:15:00Z"));
}

TEST_F(ReportZones, DaylightSavingMovesTheDaysBoundary) {
  // New York: UTC-5 until 2026-03-08 07:00Z, then UTC-4.
  created("电话", "2026-03-08T04:30:00Z");  // 23:30 EST on the 7th
  created("微信", "2026-03-09T04:30:00Z");  // 00:30 EDT on the 9th (23:30 on the 8th at -5)
  EXPECT_EQ(daily("America/New_York"),
            (std::vector<std::string>{"2026-03-07 电话=1", "2026-03-09 微信=1"}));
}

TEST_F(ReportZones, DaysOfTwentyThreeAndTwentyFiveHours) {
  // Santiago skips the midnight of 2026-09-06 (00:00 -04 is 01:00 -03) and lives the hour before
  // the midnight of 2026-04-05 twice.
  created("电话", "2026-04-05T02:30:00Z");  // 23:30 -03 on the 4th
  created("电话", "2026-04-05T03:30:00Z");  // 23:30 -04 on the 4th, the second time
  created("微信", "2026-04-05T04:10:00Z");  // 00:10 on the 5th
  created("电话", "2026-09-06T03:50:00Z");  // 23:50 -04 on the 5th
  created("微信", "2026-09-06T04:10:00Z");  // 01:10 -03 on the 6th, its first hour
  EXPECT_EQ(daily("America/Santiago"),
            (std::vector<std::string>{"2026-04-04 电话=2", "2026-04-05 微信=1", "2026-09-05 电话=1",
                                      "2026-09-06 微信=1"}));
  EXPECT_EQ(daily("America/Santiago", "2026-09-06", "2026-09-06"),
            (std::vector<std::string>{"2026-09-06 微信=1"}));
}

TEST_F(ReportZones, WeeksAndMonthsAreLocal) {
  created("电话", "2026-11-29T17:00:00Z");  // Monday 2026-11-30 01:00 in Shanghai; Sunday in UTC
  created("电话", "2026-11-30T16:30:00Z");  // 2026-12-01 00:30 in Shanghai
  EXPECT_EQ(daily("", "", "", "week"),
            (std::vector<std::string>{"2026-11-23 电话=1", "2026-11-30 电话=1"}));
  EXPECT_EQ(daily("Asia/Shanghai", "", "", "week"),
            (std::vector<std::string>{"2026-11-30 电话=2"}));
  EXPECT_EQ(daily("", "", "", "month"), (std::vector<std::string>{"2026-11 电话=2"}));
  EXPECT_EQ(daily("Asia/Shanghai", "", "", "month"),
            (std::vector<std::string>{"2026-11 电话=1", "2026-12 电话=1"}));
}

TEST(LocalDay, IsTheZonesDate) {
  const int64_t t = *parse_rfc3339("2026-11-30T19:30:00Z");
  EXPECT_EQ(local_day(t, nullptr), *parse_date("2026-11-30"));
  EXPECT_EQ(local_day(t, find_time_zone("Asia/Shanghai")), *parse_date("2026-12-01"));
  EXPECT_EQ(local_day(t, find_time_zone("America/Los_Angeles")), *parse_date("2026-11-30"));
  EXPECT_EQ(local_day(*parse_rfc3339("1969-12-31T23:59:59Z"), nullptr), -1);
  EXPECT_EQ(local_day_start(*parse_date("2026-12-01"), find_time_zone("Asia/Shanghai")),
            *parse_rfc3339("2026-11-30T16:00:00Z"));
  // A midnight that daylight saving skips: the day begins at the change.
  EXPECT_EQ(local_day_start(*parse_date("2026-09-06"), find_time_zone("America/Santiago")),
            *parse_rfc3339("2026-09-06T04:00:00Z"));
  EXPECT_EQ(local_day_start(*parse_date("2026-09-06"), nullptr),
            *parse_rfc3339("2026-09-06T00:00:00Z"));
}

}  // namespace
}  // namespace ticketd::projections
