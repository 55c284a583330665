// Business calendars and SLA clocks: working hours, weekends, holidays, make-up days, a DST zone,
// pauses, reply cycles, policy edits, and the warnings and breaches that rules act on.
#include <gtest/gtest.h>

#include <random>

#include "domain/calendar.h"
#include "domain/sla.h"
#include "tests/reference_fixture.h"

namespace ticketd {
namespace {

using testing::reference_catalog;
using testing::reference_submission;
using testing::TicketDriver;
using Types = std::vector<std::string>;

constexpr int64_t kMinute = 60LL * 1000000;
constexpr int64_t kHour = 60 * kMinute;

// A local time in China (UTC+8, no DST): "2026-11-27 17:30".
int64_t cst(const std::string& local) {
  auto t = parse_rfc3339(local.substr(0, 10) + "T" + local.substr(11) + ":00+08:00");
  EXPECT_TRUE(t.has_value()) << local;
  return t.value_or(0);
}

using testing::json;

CalendarDef reference_calendar() {
  auto c = parse_calendar("cn-workdays", testing::read_json_file("cn-workdays.calendar.json"));
  EXPECT_TRUE(c.ok()) << c.error().message;
  return c.value();
}

int64_t advance(const CalendarDef& c, BusinessMeasure m, int64_t from, int64_t amount) {
  auto t = business_advance(c, m, from, amount);
  EXPECT_TRUE(t.has_value());
  return t.value_or(0);
}

TEST(Calendar, RefusesBadDocumentsNamingThePath) {
  auto message = [](const std::string& doc) {
    auto c = parse_calendar("c", json(doc));
    return c.ok() ? std::string("accepted") : c.error().message;
  };
  const std::string week = R"("weekly":{"mon":["09:00-18:00"]})";
  EXPECT_NE(message(R"({"name":"x","time_zone":"Mars/Olympus",)" + week + "}")
                .find("calendar.time_zone: unknown time zone"),
            std::string::npos);
  EXPECT_NE(message(R"({"name":"x","time_zone":"UTC","weekly":{"mon":["18:00-09:00"]}})")
                .find("calendar.weekly.mon[0]"),
            std::string::npos);
  EXPECT_NE(
      message(R"({"name":"x","time_zone":"UTC","weekly":{"mon":["09:00-12:00","11:00-13:00"]}})")
          .find("overlap"),
      std::string::npos);
  EXPECT_NE(message(R"({"name":"x","time_zone":"UTC","weekly":{"funday":["09:00-12:00"]}})")
                .find("calendar.weekly.funday"),
            std::string::npos);
  EXPECT_NE(
      message(R"({"name":"x","time_zone":"UTC","weekly":{"mon":[]}})").find("at least one day"),
      std::string::npos);
  EXPECT_NE(message(R"({"name":"x","time_zone":"UTC",)" + week +
                    R"(,"holidays":["2026-10-01"],"working_days":["2026-10-01"]})")
                .find("also listed as a holiday"),
            std::string::npos);
  EXPECT_NE(message(R"({"name":"x","time_zone":"UTC",)" + week + R"(,"holidays":["2026-02-30"]})")
                .find("calendar.holidays[0]"),
            std::string::npos);
  // A date listed twice is most often another one mistyped; a calendar stored before this was
  // refused still loads.
  const std::string twice = R"({"name":"x","time_zone":"UTC",)" + week +
                            R"(,"holidays":["2026-10-01","2026-10-02","2026-10-01"]})";
  EXPECT_EQ(message(twice), "calendar.holidays[2]: 2026-10-01 is listed before: each date once");
  auto stored = parse_stored_calendar("c", json(twice));
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored.value().holidays.size(), 2u);
  EXPECT_NE(message(R"({"name":"x","time_zone":"UTC",)" + week +
                    R"(,"working_days":["2026-10-08","2026-10-08"]})")
                .find("calendar.working_days[1]"),
            std::string::npos);
  EXPECT_NE(message(R"({"name":"x","time_zone":"UTC",)" + week + R"(,"colour":"red"})")
                .find("calendar.colour: unknown property"),
            std::string::npos);
  EXPECT_EQ(message(R"({"name":"x","time_zone":"UTC","weekly":{"sun":["00:00-24:00"]}})"),
            "accepted");
}

TEST(Calendar, CountsOnlyWorkingHours) {
  CalendarDef c = reference_calendar();
  const auto t = BusinessMeasure::kTime;
  // Within a day, over lunch (Monday 12:00-13:00 is not working time), and over a weekend.
  EXPECT_EQ(business_elapsed(c, t, cst("2026-11-24 10:00"), cst("2026-11-24 11:30")), 90 * kMinute);
  EXPECT_EQ(business_elapsed(c, t, cst("2026-11-23 11:00"), cst("2026-11-23 14:00")), 2 * kHour);
  EXPECT_EQ(business_elapsed(c, t, cst("2026-11-27 17:00"), cst("2026-11-30 10:00")), 2 * kHour);
  EXPECT_EQ(business_elapsed(c, t, cst("2026-11-28 10:00"), cst("2026-11-29 10:00")), 0);
  // Monday has 8 working hours, Tuesday to Friday 9: a week is 44.
  EXPECT_EQ(business_elapsed(c, t, cst("2026-11-23 00:00"), cst("2026-11-30 00:00")), 44 * kHour);
  // The earliest moment a target is reached: the end of Friday's hours, not Monday morning.
  EXPECT_EQ(advance(c, t, cst("2026-11-27 17:30"), 30 * kMinute), cst("2026-11-27 18:00"));
  EXPECT_EQ(advance(c, t, cst("2026-11-27 17:30"), 45 * kMinute), cst("2026-11-30 09:15"));
  EXPECT_EQ(advance(c, t, cst("2026-11-23 11:30"), 60 * kMinute), cst("2026-11-23 13:30"));
  EXPECT_EQ(advance(c, t, cst("2026-11-28 22:00"), 30 * kMinute), cst("2026-11-30 09:30"));
}

TEST(Calendar, SkipsHolidaysAndWorksMakeUpDays) {
  CalendarDef c = reference_calendar();
  const auto t = BusinessMeasure::kTime;
  // 2026-10-01 and 10-02 (Thu, Fri) are holidays: Wednesday evening runs on into Monday.
  EXPECT_EQ(advance(c, t, cst("2026-09-30 17:00"), 2 * kHour), cst("2026-10-05 10:00"));
  EXPECT_EQ(business_elapsed(c, t, cst("2026-10-01 00:00"), cst("2026-10-05 00:00")), 0);
  // Saturday 2026-10-10 is a make-up working day, with Monday's hours (lunch break included).
  EXPECT_EQ(advance(c, t, cst("2026-10-09 17:00"), 2 * kHour), cst("2026-10-10 10:00"));
  EXPECT_EQ(business_elapsed(c, t, cst("2026-10-10 00:00"), cst("2026-10-11 00:00")), 8 * kHour);
  EXPECT_EQ(business_elapsed(c, t, cst("2026-10-17 00:00"), cst("2026-10-18 00:00")), 0);
}

TEST(Calendar, BusinessDaysKeepTheShareOfTheWorkingDay) {
  CalendarDef c = reference_calendar();
  const auto d = BusinessMeasure::kDays;
  const int64_t day = kBusinessDayUnits;
  EXPECT_EQ(advance(c, d, cst("2026-11-24 10:00"), day), cst("2026-11-25 10:00"));
  // Friday 17:30 is 8.5/9 of Friday; the same share of Monday's 8 hours is 7h33m20s of them.
  EXPECT_EQ(advance(c, d, cst("2026-11-27 17:30"), day), cst("2026-11-30 17:33") + 20 * 1000000);
  // Submitted on a Saturday: one business day is all of Monday.
  EXPECT_EQ(advance(c, d, cst("2026-11-28 10:00"), day), cst("2026-11-30 18:00"));
  EXPECT_EQ(business_elapsed(c, d, cst("2026-11-23 00:00"), cst("2026-11-30 00:00")), 5 * day);
  EXPECT_EQ(business_elapsed(c, d, cst("2026-11-24 09:00"), cst("2026-11-24 13:30")), day / 2);
}

// A span counted in pieces (up to each event of a ticket, then on) is the span counted at once,
// and a deadline reckoned from any point on the way is the same instant: business days round
// through each day's running total, not per piece. (They rounded per piece: a "1d" target that
// ends a working day at 18:00 moved to 09:00 the next morning once counted past 18:00.)
TEST(Calendar, BusinessDaysCountedInPiecesAddUpAndReachTheSameDeadline) {
  CalendarDef c = reference_calendar();
  std::mt19937_64 random(7);
  const int64_t start = cst("2026-11-20 00:00");
  for (const auto m : {BusinessMeasure::kDays, BusinessMeasure::kTime}) {
    const int64_t goal = m == BusinessMeasure::kDays ? kBusinessDayUnits : 9 * kHour;
    for (int i = 0; i < 2000; ++i) {
      // Instants on the minute, with a few microseconds off it: where rounding shows.
      auto instant = [&] {
        return start + static_cast<int64_t>(random() % (20 * 24 * 60)) * kMinute +
               static_cast<int64_t>(random() % 3);
      };
      int64_t a = instant(), b = instant(), z = instant();
      if (a > b) std::swap(a, b);
      if (b > z) std::swap(b, z);
      if (a > b) std::swap(a, b);
      const int64_t ab = business_elapsed(c, m, a, b);
      ASSERT_EQ(ab + business_elapsed(c, m, b, z), business_elapsed(c, m, a, z)) << a << " " << z;
      const int64_t due = advance(c, m, a, goal);
      ASSERT_GE(business_elapsed(c, m, a, due), goal);
      ASSERT_LT(business_elapsed(c, m, a, due - 1), goal);
      if (ab < goal) {
        ASSERT_EQ(advance(c, m, b, goal - ab), due) << a << " " << b;
      }
    }
  }
  // Where the rounding showed: "1d" from Tuesday 09:00:00.000001 ends at Wednesday's close of work
  // or first thing Thursday, whichever way it is counted.
  const auto d = BusinessMeasure::kDays;
  const int64_t from = cst("2026-11-24 09:00") + 1, noon = cst("2026-11-24 12:00") + 7;
  const int64_t due = advance(c, d, from, kBusinessDayUnits);
  EXPECT_EQ(advance(c, d, noon, kBusinessDayUnits - business_elapsed(c, d, from, noon)), due);
}

TEST(Calendar, DaylightSavingTimeIsCountedInRealTime) {
  auto c = parse_calendar("ny", json(R"({"name":"NY","time_zone":"America/New_York",
      "weekly":{"sat":["00:00-24:00"],"sun":["01:00-04:00"],"mon":["09:00-17:00"]}})"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  const auto t = BusinessMeasure::kTime;
  // 2026-03-08 02:00 EST jumps to 03:00 EDT: Sunday's 01:00-04:00 lasts two real hours.
  auto sunday = working_intervals(c.value(), *parse_date("2026-03-08"));
  ASSERT_EQ(sunday.size(), 1u);
  EXPECT_EQ(sunday[0].first, *parse_rfc3339("2026-03-08T06:00:00Z"));   // 01:00 EST
  EXPECT_EQ(sunday[0].second, *parse_rfc3339("2026-03-08T08:00:00Z"));  // 04:00 EDT
  EXPECT_EQ(business_elapsed(c.value(), t, *parse_rfc3339("2026-03-07T00:00:00Z"),
                             *parse_rfc3339("2026-03-10T00:00:00Z")),
            (24 + 2 + 8) * kHour);  // all of Saturday (EST), Sunday 01:00-04:00, Monday
  // Monday 09:00 is 13:00Z after the change (EDT), not 14:00Z.
  EXPECT_EQ(advance(c.value(), t, *parse_rfc3339("2026-03-08T08:00:00Z"), kHour),
            *parse_rfc3339("2026-03-09T14:00:00Z"));
  // Fall back (2026-11-01 02:00 EDT -> 01:00 EST): Sunday 01:00-04:00 lasts four real hours.
  auto fall = working_intervals(c.value(), *parse_date("2026-11-01"));
  ASSERT_EQ(fall.size(), 1u);
  EXPECT_EQ(fall[0].second - fall[0].first, 4 * kHour);
}

TEST(Calendar, DaysKeptForLaterAnswerEachCalendarWithItsOwnHours) {
  // The same id and zone, published again with other hours (and a calendar parsed twice): each
  // keeps being answered with its own days, however the asks alternate.
  auto doc = [](const char* hours) {
    return json(std::string(R"({"name":"HQ","time_zone":"Asia/Shanghai","weekly":{"mon":[")") +
                hours + R"("],"tue":[")" + hours + R"("]}})");
  };
  auto early = parse_calendar("hq", doc("08:00-12:00"));
  auto late = parse_calendar("hq", doc("13:00-15:00"));
  auto early_again = parse_calendar("hq", doc("08:00-12:00"));
  ASSERT_TRUE(early.ok() && late.ok() && early_again.ok());
  const auto t = BusinessMeasure::kTime;
  const int64_t monday = *parse_rfc3339("2026-11-23T00:00:00+08:00");
  for (int round = 0; round < 3; ++round) {
    for (int64_t day = 0; day < 2; ++day) {
      const int64_t from = monday + day * 24 * kHour, to = from + 24 * kHour;
      EXPECT_EQ(business_elapsed(early.value(), t, from, to), 4 * kHour) << round << day;
      EXPECT_EQ(business_elapsed(late.value(), t, from, to), 2 * kHour) << round << day;
      EXPECT_EQ(business_elapsed(early_again.value(), t, from, to), 4 * kHour) << round << day;
      EXPECT_EQ(advance(late.value(), t, from, kHour), from + 14 * kHour) << round << day;
      EXPECT_EQ(advance(early.value(), t, from, kHour), from + 9 * kHour) << round << day;
    }
  }
  CalendarDef unparsed = early.value();  // a copy: the same days
  EXPECT_EQ(business_elapsed(unparsed, t, monday, monday + 24 * kHour), 4 * kHour);
}

TEST(SlaPolicy, ParsesDurationsAndRefusesBadDocuments) {
  auto d = parse_business_duration("1h30m");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->goal, 90 * kMinute);
  EXPECT_EQ(parse_business_duration("2d")->measure, BusinessMeasure::kDays);
  EXPECT_EQ(parse_business_duration("2d")->goal, 2 * kBusinessDayUnits);
  for (const char* bad : {"", "d", "1d2h", "30m2h", "0m", "2x", "1h1h", "-1h"}) {
    EXPECT_FALSE(parse_business_duration(bad).has_value()) << bad;
  }
  Catalog c = reference_catalog();
  const FormDef& form = *c.form("service_ticket");
  auto message = [&](const std::string& doc) {
    auto p = parse_sla_policy("p", json(doc), form);
    return p.ok() ? std::string("accepted") : p.error().message;
  };
  const std::string head = R"({"name":"p","form":"service_ticket","calendar":"cn-workdays",)";
  EXPECT_EQ(message(head + R"("targets":{"resolution":"1d"}})"), "accepted");
  EXPECT_NE(message(head + R"("targets":{"resolution":"soon"}})").find("targets.resolution"),
            std::string::npos);
  EXPECT_NE(message(head + R"("targets":{"lunch":"1h"}})").find("targets.lunch"),
            std::string::npos);
  EXPECT_NE(message(head + R"("targets":{}})").find("at least one target"), std::string::npos);
  EXPECT_NE(message(head + R"("targets":{"resolution":"1d"},"warn_at":1.5})").find("warn_at"),
            std::string::npos);
  EXPECT_NE(message(head + R"("targets":{"resolution":"1d"},
                             "when":{"field":"priority","op":"eq","value":"紧急"}})")
                .find("sla_policy.when"),
            std::string::npos);
  EXPECT_NE(message(head + R"("targets":{"resolution":"1d"},
                             "pause_when":{"field":"mood","op":"eq","value":"x"}})")
                .find("sla_policy.pause_when"),
            std::string::npos);
  // The publish decision checks what lies outside the document: the calendar and the nodes.
  auto publish = [&](const std::string& doc) {
    auto r = decide_publish_sla_policy(c, "p", json(doc), "admin", 0);
    return r.ok() ? std::string("accepted") : r.error().message;
  };
  EXPECT_NE(publish(R"({"name":"p","form":"service_ticket","calendar":"nope",
                        "targets":{"resolution":"1d"}})")
                .find("sla_policy.calendar: unknown calendar \"nope\""),
            std::string::npos);
  EXPECT_NE(publish(head + R"("targets":{"resolution":"1d"},"pause_nodes":["moon"]})")
                .find("no flow of form service_ticket has node \"moon\""),
            std::string::npos);
  EXPECT_NE(publish(head + R"("targets":{"resolution":"1d"},"node_limits":{"moon":"1h"}})")
                .find("node_limits.moon"),
            std::string::npos);
  EXPECT_EQ(publish(head + R"("targets":{"resolution":"1d"},"node_limits":{"accept":"1h"}})"),
            "accepted");
}

// A ticket built from events, to check clocks against hand-computed figures.
class SlaClocks : public ::testing::Test {
 protected:
  SlaClocks() : calendar(reference_calendar()) {
    auto p = parse_sla_policy("high", testing::read_json_file("high.sla.json"),
                              *reference_catalog().form("service_ticket"));
    EXPECT_TRUE(p.ok());
    policy = p.value();
  }
  void event(const char* type, Object data, const std::string& actor, int64_t at) {
    state = evolve(std::move(state), {type, Value(std::move(data)), actor, at, std::nullopt});
  }
  void submit(int64_t at) {
    event(event_types::kTicketSubmitted,
          {{"id", Value("T-000001")},
           {"form", Value("service_ticket")},
           {"form_version", Value(1)},
           {"flow", Value("service_flow")},
           {"flow_version", Value(1)},
           {"fields", Value(Object{{"priority", Value("高")}, {"status", Value("待受理")}})}},
          "li", at);
    event(event_types::kNodeEntered, {{"node", Value("accept")}, {"assignees", Value(Array{})}},
          "li", at);
  }
  void status(const char* value, int64_t at) {
    event(event_types::kFieldsChanged, {{"fields", Value(Object{{"status", Value(value)}})}},
          kSystemActor, at);
  }
  // Staff comments are replies to the customer unless `internal`; the portal's never are.
  void comment(const std::string& actor, int64_t at, bool internal = false) {
    Object data{{"text", Value("…")}};
    if (actor != kPortalActor && !internal) data.emplace_back("public", Value(true));
    event(event_types::kCommentAdded, std::move(data), actor, at);
  }
  const SlaClock& clock(const SlaStatus& s, const std::string& target, uint32_t cycle = 0) {
    for (const auto& c : s.clocks) {
      if (c.target == target && c.cycle == cycle) return c;
    }
    static SlaClock none;
    ADD_FAILURE() << "no clock " << target << " " << cycle;
    return none;
  }

  CalendarDef calendar;
  SlaPolicyDef policy;
  TicketState state;
};

TEST_F(SlaClocks, CountFromSubmissionInBusinessTime) {
  submit(cst("2026-11-27 17:45"));  // Friday, 15 working minutes left
  SlaStatus s = compute_sla(state, policy, calendar, cst("2026-11-28 12:00"));
  const SlaClock& first = clock(s, "first_response");
  EXPECT_EQ(first.elapsed, 15 * kMinute);
  EXPECT_EQ(first.due_at, cst("2026-11-30 09:15"));
  EXPECT_EQ(first.warn_at, cst("2026-11-30 09:09"));  // 80% of 30 minutes = 24
  EXPECT_FALSE(first.breached(cst("2026-11-30 09:14")));
  EXPECT_TRUE(first.breached(cst("2026-11-30 09:15")));
  // 1 business day from 17:45 Friday (8.75/9 of it): the same share of Monday's 8 hours.
  EXPECT_EQ(clock(s, "resolution").due_at, cst("2026-11-30 17:46") + 40 * 1000000);
}

TEST_F(SlaClocks, PausesWhileWaitingForTheCustomerAsOftenAsItHappens) {
  submit(cst("2026-11-24 09:00"));  // Tuesday
  status("待客户确认", cst("2026-11-24 10:00"));
  status("处理中", cst("2026-11-24 14:00"));
  status("待客户确认", cst("2026-11-24 15:00"));
  SlaStatus paused = compute_sla(state, policy, calendar, cst("2026-11-25 11:00"));
  EXPECT_TRUE(paused.paused);
  EXPECT_TRUE(clock(paused, "resolution").paused);
  EXPECT_EQ(clock(paused, "resolution").due_at, 0);  // unknown while paused
  EXPECT_EQ(clock(paused, "resolution").elapsed, 2 * kBusinessDayUnits / 9);
  status("处理中", cst("2026-11-25 11:00"));
  // The history keeps what each change replaced: any earlier moment's fields come back exactly.
  EXPECT_EQ(Value(fields_at(state, cst("2026-11-24 12:00")))["status"].as_string(), "待客户确认");
  EXPECT_EQ(Value(fields_at(state, cst("2026-11-24 14:30")))["status"].as_string(), "处理中");
  EXPECT_EQ(Value(fields_at(state, cst("2026-11-24 09:30")))["status"].as_string(), "待受理");
  EXPECT_EQ(Value(fields_at(state, cst("2026-11-24 09:30")))["priority"].as_string(), "高");
  SlaStatus s = compute_sla(state, policy, calendar, cst("2026-11-25 11:00"));
  EXPECT_FALSE(s.paused);
  // 2 of 9 hours used on Tuesday; 7 more from Wednesday 11:00 is Wednesday 18:00.
  EXPECT_EQ(clock(s, "resolution").due_at, cst("2026-11-25 18:00"));
  // The first response ran over during the first hour: its breach stays, whatever came after.
  EXPECT_EQ(clock(s, "first_response").due_at, cst("2026-11-24 09:30"));
  EXPECT_TRUE(clock(s, "first_response").breached(cst("2026-11-25 11:00")));
}

TEST_F(SlaClocks, NextResponseRunsFromEachCustomerReplyToTheNextAnswer) {
  submit(cst("2026-11-24 09:00"));
  comment("zhang", cst("2026-11-24 09:10"));       // first response
  comment(kPortalActor, cst("2026-11-24 10:00"));  // the customer writes back
  comment(kPortalActor, cst("2026-11-24 10:30"));  // and again: still the same wait
  comment("zhang", cst("2026-11-24 11:00"));
  comment(kPortalActor, cst("2026-11-24 17:00"));
  SlaStatus s = compute_sla(state, policy, calendar, cst("2026-11-25 10:00"));
  EXPECT_EQ(clock(s, "first_response").stopped_at, cst("2026-11-24 09:10"));
  EXPECT_FALSE(clock(s, "first_response").breached(cst("2026-11-25 10:00")));
  const SlaClock& one = clock(s, "next_response", 0);
  EXPECT_EQ(one.started_at, cst("2026-11-24 10:00"));
  EXPECT_EQ(one.stopped_at, cst("2026-11-24 11:00"));
  EXPECT_EQ(one.elapsed, kHour);
  const SlaClock& two = clock(s, "next_response", 1);
  EXPECT_TRUE(two.running());
  EXPECT_EQ(two.due_at, cst("2026-11-25 10:00"));  // 1h Tuesday evening + 1h Wednesday morning
  EXPECT_TRUE(two.breached(cst("2026-11-25 10:00")));
  Value view = sla_view(s, cst("2026-11-25 10:00"));
  EXPECT_EQ(view["next_response"]["cycles"].to_json(), "2");
  EXPECT_EQ(view["breached"].to_json(), "true");
  // The nearest running target is the resolution: one business day from Tuesday 09:00 is reached
  // at the end of Tuesday's hours (the same business instant as Wednesday 09:00, only earlier).
  EXPECT_EQ(view["due_at"].as_string(), format_rfc3339(cst("2026-11-24 18:00")));
}

TEST_F(SlaClocks, AnInternalNoteAnswersNobody) {
  submit(cst("2026-11-24 09:00"));
  comment("zhang", cst("2026-11-24 09:05"), /*internal=*/true);  // "客户很急，请尽快"
  EXPECT_EQ(state.first_response_at, 0);
  comment("zhang", cst("2026-11-24 09:20"));
  EXPECT_EQ(state.first_response_at, cst("2026-11-24 09:20"));
  comment(kPortalActor, cst("2026-11-24 10:00"));
  comment("wang", cst("2026-11-24 10:10"), /*internal=*/true);
  SlaStatus s = compute_sla(state, policy, calendar, cst("2026-11-24 12:00"));
  EXPECT_EQ(clock(s, "first_response").stopped_at, cst("2026-11-24 09:20"));
  const SlaClock& next = clock(s, "next_response");
  EXPECT_TRUE(next.running());
  EXPECT_EQ(next.elapsed, 2 * kHour);
  comment("wang", cst("2026-11-24 12:30"));
  s = compute_sla(state, policy, calendar, cst("2026-11-24 13:00"));
  EXPECT_EQ(clock(s, "next_response").stopped_at, cst("2026-11-24 12:30"));
}

// A file is a reply as words are: the customer's photo of the fault waits for an answer, a file
// staff send the customer answers, and one kept among staff answers nobody.
TEST_F(SlaClocks, FilesBetweenTheCustomerAndStaffAreReplies) {
  auto file = [&](const std::string& actor, int64_t at, bool shown_to_customer) {
    Object data{{"attachment", Value("a1")}, {"filename", Value("故障照片.jpg")}};
    if (shown_to_customer && actor != kPortalActor) data.emplace_back("public", Value(true));
    event(event_types::kAttachmentAdded, std::move(data), actor, at);
  };
  submit(cst("2026-11-24 09:00"));
  file("zhang", cst("2026-11-24 09:05"), false);
  EXPECT_EQ(state.first_response_at, 0);
  file("zhang", cst("2026-11-24 09:20"), true);  // the quote, sent to the customer
  EXPECT_EQ(state.first_response_at, cst("2026-11-24 09:20"));
  file(kPortalActor, cst("2026-11-24 10:00"), false);
  file("wang", cst("2026-11-24 10:30"), false);
  SlaStatus s = compute_sla(state, policy, calendar, cst("2026-11-24 11:00"));
  EXPECT_TRUE(clock(s, "next_response").running());
  EXPECT_EQ(clock(s, "next_response").started_at, cst("2026-11-24 10:00"));
  file("wang", cst("2026-11-24 11:30"), true);
  s = compute_sla(state, policy, calendar, cst("2026-11-24 12:00"));
  EXPECT_EQ(clock(s, "next_response").stopped_at, cst("2026-11-24 11:30"));
}

TEST_F(SlaClocks, NodeLimitsRunPerEntry) {
  auto p = parse_sla_policy("n", json(R"({"name":"n","form":"service_ticket",
      "calendar":"cn-workdays","targets":{},"node_limits":{"accept":"1h"}})"),
                            *reference_catalog().form("service_ticket"));
  ASSERT_TRUE(p.ok()) << p.error().message;
  submit(cst("2026-11-24 09:00"));
  event(event_types::kNodeEntered, {{"node", Value("dispatch")}}, "zhang", cst("2026-11-24 09:20"));
  event(event_types::kNodeEntered, {{"node", Value("accept")}}, "wang", cst("2026-11-24 10:00"));
  SlaStatus s = compute_sla(state, p.value(), calendar, cst("2026-11-24 10:30"));
  EXPECT_EQ(clock(s, "node:accept", 0).elapsed, 20 * kMinute);
  EXPECT_EQ(clock(s, "node:accept", 1).due_at, cst("2026-11-24 11:00"));
  EXPECT_EQ(sla_view(s, cst("2026-11-24 10:30"))["nodes"]["accept"]["cycles"], Value(2));
}

class SlaScenario : public ::testing::Test {
 protected:
  SlaScenario() : catalog(reference_catalog()), t(catalog) {
    t.now_us = cst("2026-11-25 16:00");  // Wednesday
  }
  void ok(const Actor& a, Command c) {
    auto r = t.run(a, std::move(c));
    ASSERT_TRUE(r.ok()) << r.error().code << ": " << r.error().message;
  }
  void submit_high() {
    Object fields = reference_submission();
    fields.emplace_back("priority", Value("高"));
    ok(t.user("li"), SubmitTicket{"service_ticket", "service_flow", fields});
  }
  std::vector<PendingTimer> sla_timers() {
    std::vector<PendingTimer> out;
    for (auto& p : ticket_deadlines(t.state, catalog).timers) {
      if (p.timer.starts_with("sla:")) out.push_back(p);
    }
    return out;
  }
  Actor system() const { return {kSystemActor, {}, false, false, false}; }

  Catalog catalog;
  TicketDriver t;
};

TEST_F(SlaScenario, BreachIsRecordedOnceAndRulesActOnIt) {
  submit_high();
  auto timers = sla_timers();
  ASSERT_EQ(timers.size(), 4u);  // warning and breach of first response and resolution
  auto find = [&](const std::string& name) {
    for (const auto& p : timers) {
      if (p.timer == name) return p.due_at;
    }
    ADD_FAILURE() << "no timer " << name;
    return int64_t{0};
  };
  EXPECT_EQ(find("sla:first_response:0:warning"), cst("2026-11-25 16:24"));
  EXPECT_EQ(find("sla:first_response:0:breach"), cst("2026-11-25 16:30"));
  EXPECT_EQ(find("sla:resolution:0:breach"), cst("2026-11-26 16:00"));
  // Early: nothing happens.
  size_t before = t.events.size();
  ok(system(), FireTimer{"sla:first_response:0:breach", 0});
  EXPECT_EQ(t.events.size(), before);
  t.now_us = cst("2026-11-25 16:30");
  ok(system(), FireTimer{"sla:first_response:0:breach", 0});
  EXPECT_EQ(t.types_since(before), (Types{"SlaBreached", "NotificationRequested"}));
  EXPECT_EQ(t.events[before].data.string_or("target"), "first_response");
  EXPECT_EQ(t.events[before].id, timer_event_id("T-000042", "sla:first_response:0:breach", 0));
  EXPECT_EQ(t.events.back().data.string_or("to"), "cs_supervisor");
  EXPECT_EQ(t.events.back().data.string_or("rule"), "sla_breached");
  // Once only.
  before = t.events.size();
  ok(system(), FireTimer{"sla:first_response:0:breach", 0});
  EXPECT_EQ(t.events.size(), before);
  EXPECT_EQ(sla_timers().size(), 3u);  // the warning (late, still owed) and resolution's two
}

TEST_F(SlaScenario, ClosedTicketsKeepTheirFiguresWhenThePolicyChanges) {
  submit_high();
  t.now_us = cst("2026-11-25 16:10");
  ok(t.admin(), CloseTicket{"duplicate"});
  ASSERT_EQ(t.events.back().type, "SlaFinalized");
  Value closed_with = t.state.sla_final;
  EXPECT_EQ(closed_with["policy_version"], Value(1));
  EXPECT_EQ(closed_with["resolution"]["target"], Value("1d"));
  EXPECT_EQ(closed_with["resolution"]["breached"], Value(false));
  EXPECT_TRUE(sla_timers().empty());
  // Version 2 of the policy changes nothing recorded.
  Value doc = testing::read_json_file("high.sla.json");
  Object o = doc.as_object();
  set_member(o, "targets", Value(Object{{"resolution", Value("2h")}}));
  testing::publish(catalog, decide_publish_sla_policy(catalog, "high", Value(o), "admin", 0));
  EXPECT_EQ(catalog.sla_policy("high")->version, 2u);
  EXPECT_EQ(t.state.sla_final, closed_with);
}

// A reopened ticket's clocks run on from what they had counted at the close: the night it spent
// closed is not the company's to answer for. The next close records its figures afresh.
TEST_F(SlaScenario, AReopenedTicketsClocksRunOnFromTheClose) {
  submit_high();
  t.now_us = cst("2026-11-25 16:10");
  ok(t.admin(), CloseTicket{"客户说已自行解决"});
  ASSERT_FALSE(t.state.sla_final.is_null());
  const SlaPolicyDef& policy = *catalog.sla_policy("high");
  const CalendarDef& calendar = *catalog.calendar(policy.calendar_id);
  auto clock = [&](const std::string& target, int64_t now) {
    for (const SlaClock& c : compute_sla(t.state, policy, calendar, now).clocks) {
      if (c.target == target) return c;
    }
    ADD_FAILURE() << "no clock " << target;
    return SlaClock{};
  };
  // Resolution counts in working days (its "1d"): 10 minutes of a working day's time.
  const int64_t ten_minutes = clock("resolution", t.now_us).elapsed;
  EXPECT_GT(ten_minutes, 0);
  EXPECT_EQ(clock("first_response", t.now_us).elapsed, 10 * kMinute);

  t.now_us = cst("2026-11-26 10:00");  // Thursday morning: the customer calls again
  ok(t.user("li"), ReopenTicket{"客户来电:问题复现", ""});
  EXPECT_TRUE(t.state.sla_final.is_null());
  SlaClock resolution = clock("resolution", t.now_us);
  EXPECT_TRUE(resolution.running());
  EXPECT_EQ(resolution.cycle, 0u);  // the same clock, so its breach is recorded once
  EXPECT_EQ(resolution.elapsed, ten_minutes);
  EXPECT_EQ(clock("first_response", t.now_us).elapsed, 10 * kMinute);  // still owed
  EXPECT_EQ(clock("resolution", cst("2026-11-26 10:30")).elapsed, 4 * ten_minutes);
  EXPECT_EQ(sla_timers().size(), 4u);
  EXPECT_EQ(clock("first_response", t.now_us).due_at, cst("2026-11-26 10:20"));

  // A response stops the first-response clock for good; the next close keeps its figures.
  t.now_us = cst("2026-11-26 10:15");
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""});
  t.now_us = cst("2026-11-26 11:00");
  ok(t.admin(), CloseTicket{""});
  EXPECT_EQ(t.events.back().type, "SlaFinalized");
  EXPECT_EQ(t.state.sla_final["first_response"]["breached"], Value(false));
  EXPECT_EQ(clock("resolution", t.now_us).elapsed, 7 * ten_minutes);
  EXPECT_TRUE(sla_timers().empty());
}

TEST_F(SlaScenario, PolicyEditRecomputesOpenTicketsFromTheirEvents) {
  submit_high();
  auto before = sla_timers();
  Value doc = testing::read_json_file("high.sla.json");
  Object o = doc.as_object();
  set_member(o, "targets", Value(Object{{"resolution", Value("2h")}}));
  set_member(o, "warn_at", Value(0));
  testing::publish(catalog, decide_publish_sla_policy(catalog, "high", Value(o), "admin", 0));
  auto after = sla_timers();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].timer, "sla:resolution:0:breach");
  EXPECT_EQ(after[0].due_at, cst("2026-11-25 18:00"));
  // A ticket the policy no longer covers has no SLA clocks at all.
  ok(t.user("zhang"), ChangeFields{{{"priority", Value("低")}}, std::nullopt});
  EXPECT_TRUE(sla_timers().empty());
}

TEST_F(SlaScenario, DryRunsAgreeWithWhatHappenedLive) {
  submit_high();
  // Live: the idle rule fires at 16:30 (still at acceptance), and so does the first-response
  // breach; then the ticket is accepted and goes on.
  t.now_us = cst("2026-11-25 16:30");
  ok(system(), FireTimer{"accept_overdue", t.state.node_entered_version});
  ok(system(), FireTimer{"sla:first_response:0:breach", 0});
  t.now_us = cst("2026-11-25 16:40");
  ok(t.user("zhang"), TakeAction{"approve", {{"complexity", Value("复杂")}}, "", ""});
  int64_t from = cst("2026-11-25 00:00"), to = cst("2026-11-25 23:59");

  // The rules that fired live, replayed from the recorded events: the same actions.
  for (const char* id : {"accept_overdue", "sla_breached", "dispatched", "new_ticket"}) {
    std::vector<std::string> live, dry;
    for (const auto& e : t.events) {
      if (e.data.string_or("rule") == id && e.type == "NotificationRequested")
        live.push_back(e.data.string_or("text"));
    }
    for (const auto& hit : dry_run_rule(*catalog.rule(id), t.events, catalog, from, to)) {
      for (const auto& a : hit.actions) {
        if (a.type == "NotificationRequested") dry.push_back(a.data.string_or("text"));
      }
    }
    EXPECT_EQ(dry, live) << id;
  }
  auto idle = dry_run_rule(*catalog.rule("accept_overdue"), t.events, catalog, from, to);
  ASSERT_EQ(idle.size(), 1u);
  EXPECT_EQ(idle[0].trigger, "idle");
  EXPECT_EQ(idle[0].at_us, cst("2026-11-25 16:30"));
  // Outside the window, nothing.
  EXPECT_TRUE(
      dry_run_rule(*catalog.rule("accept_overdue"), t.events, catalog, 0, from - 1).empty());

  // The policy replayed up to the end of the day: the breach it recorded live, and no other.
  SlaStatus s = compute_sla_until(t.state, *catalog.sla_policy("high"),
                                  *catalog.calendar("cn-workdays"), cst("2026-11-25 23:59"));
  std::vector<std::string> breaches;
  for (const auto& c : s.clocks) {
    if (c.breached(cst("2026-11-25 23:59"))) breaches.push_back(c.target);
  }
  EXPECT_EQ(breaches, std::vector<std::string>{"first_response"});
  EXPECT_NE(
      std::find(t.state.sla_fired.begin(), t.state.sla_fired.end(), "sla:first_response:0:breach"),
      t.state.sla_fired.end());
}

// What a read model keeps per ticket (the outlook, counted at the last event) answers for any later
// time exactly what counting the clocks then answers: random histories of one ticket (pauses,
// replies, the policy let go and taken back, timers fired, closes and reopens), each state
// probed around every deadline it has.
TEST_F(SlaScenario, TheOutlookKeptAnswersAsTheClocksCountedLater) {
  std::mt19937_64 random(20261202);
  auto pick = [&](int n) { return static_cast<int>(random() % static_cast<uint64_t>(n)); };
  size_t probes = 0, breached = 0;
  for (int history = 0; history < 40; ++history) {
    TicketDriver d(catalog);
    d.now_us = cst("2026-11-25 16:00") + pick(7 * 24 * 60) * kMinute;
    Object fields = reference_submission();
    fields.emplace_back("priority", Value("高"));
    ASSERT_TRUE(d.run(d.user("li"), SubmitTicket{"service_ticket", "service_flow", fields}).ok());
    const Actor staff = d.user("zhang"), customer = d.customer(), admin = d.admin();
    for (int step = 0; step < 30; ++step) {
      // Up to a day and a half later: nights, weekends and holidays come between.
      d.now_us += pick(3) == 0 ? pick(36 * 60) * kMinute : pick(90) * kMinute;
      const Actor* by = &staff;
      Command c;
      switch (pick(9)) {
        case 0:
          c = ChangeFields{{{"status", Value("待客户确认")}}, std::nullopt};
          break;
        case 1:
          c = ChangeFields{{{"status", Value("处理中")}}, std::nullopt};
          break;
        case 2:
          c = AddComment{"…", true};
          break;
        case 3:
          c = AddComment{"…", false}, by = &customer;
          break;
        case 4:
          c = ChangeFields{{{"priority", Value(pick(2) ? "高" : "低")}}, std::nullopt};
          break;
        case 5:
          c = TakeAction{"approve", {{"complexity", Value("简单")}}, "", ""};
          break;
        case 6:
          c = CloseTicket{""}, by = &admin;
          break;
        case 7:
          c = ReopenTicket{"问题复现", ""}, by = &admin;
          break;
        default: {  // a pending timer comes due and fires
          const auto timers = ticket_deadlines(d.state, catalog).timers;
          if (timers.empty()) continue;
          const PendingTimer& p = timers[static_cast<size_t>(pick(int(timers.size())))];
          d.now_us = std::max(d.now_us, p.due_at);
          c = FireTimer{p.timer, p.entered_version};
          by = nullptr;
        }
      }
      // Refused commands leave the ticket as it was.
      (void)d.run(by ? *by : system(), std::move(c));
      const SlaOutlook kept = ticket_deadlines(d.state, catalog).sla;
      std::vector<int64_t> times = {d.state.updated_at, d.now_us, d.now_us + 400 * 24 * kHour};
      for (int64_t at : {kept.due_at, kept.breached_from}) {
        if (at == 0 || at == INT64_MIN || at == INT64_MAX) continue;
        for (int64_t offset : {-1, 0, 1}) times.push_back(at + offset);
      }
      for (int64_t at : times) {
        const SlaStanding counted = sla_standing(d.state, catalog, at);
        const SlaStanding read = kept.at(at);
        ASSERT_EQ(read.due_at, counted.due_at) << "history " << history << " step " << step;
        ASSERT_EQ(read.breached, counted.breached) << "history " << history << " step " << step;
        ++probes;
        breached += counted.breached;
      }
    }
  }
  // The histories reached both answers, many times.
  EXPECT_GT(breached, 200u);
  EXPECT_GT(probes - breached, 200u);
}

}  // namespace
}  // namespace ticketd
