// The read model's timer schedule: due order, replacing a ticket's timers, and telling the
// scheduler when it must wake sooner.
#include "projections/timer_schedule.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ticketd::projections {
namespace {

std::vector<std::string> listed(const TimerSchedule& s) {
  std::vector<std::string> out;
  s.for_each([&](const TimerSchedule::Entry& e) {
    out.push_back(std::to_string(e.due_at) + " " + std::to_string(e.ticket) + " " + *e.timer + " " +
                  std::to_string(e.entered_version));
    return true;
  });
  return out;
}

TEST(TimerSchedule, KeepsEveryTicketsTimersInDueOrder) {
  TimerSchedule s;
  EXPECT_EQ(s.next_due(), INT64_MAX);
  EXPECT_TRUE(s.replace(2, {{"idle:a", 300, 2}, {"sla:resolution", 100, 0}}));
  EXPECT_FALSE(s.replace(1, {{"idle:a", 200, 3}}));  // later than 100: no earlier wake
  EXPECT_EQ(listed(s), (std::vector<std::string>{"100 2 sla:resolution 0", "200 1 idle:a 3",
                                                 "300 2 idle:a 2"}));
  EXPECT_EQ(s.next_due(), 100);
}

TEST(TimerSchedule, ReplacingATicketsTimersLeavesOthersAlone) {
  TimerSchedule s;
  s.replace(1, {{"idle:a", 200, 3}});
  s.replace(2, {{"idle:a", 300, 2}, {"sla:resolution", 100, 0}});
  EXPECT_FALSE(s.replace(2, {{"idle:a", 400, 5}}));  // one gone, one moved
  EXPECT_EQ(listed(s), (std::vector<std::string>{"200 1 idle:a 3", "400 2 idle:a 5"}));
  EXPECT_TRUE(s.replace(2, {{"sla:first_response", 50, 0}}));  // sooner than 200
  EXPECT_FALSE(s.replace(1, {}));                              // leaving the node cancels
  EXPECT_EQ(listed(s), (std::vector<std::string>{"50 2 sla:first_response 0"}));
  EXPECT_FALSE(s.replace(2, {}));
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.next_due(), INT64_MAX);
}

TEST(TimerSchedule, SurvivesBeingMovedWithManyTickets) {
  TimerSchedule s;
  for (int i = 0; i < 5000; ++i) {
    s.replace(100000 + i, {{"idle:a", 1000 - i % 7, 1}, {"sla:x", i, 0}});
  }
  TimerSchedule moved = std::move(s);
  for (int i = 0; i < 5000; i += 2) moved.replace(100000 + i, {});
  EXPECT_EQ(moved.size(), 5000u);
  int64_t last = INT64_MIN;
  moved.for_each([&](const TimerSchedule::Entry& e) {
    EXPECT_LE(last, e.due_at);
    EXPECT_EQ((e.ticket - 100000) % 2, 1u) << e.ticket;
    last = e.due_at;
    return true;
  });
}

TEST(TimerSchedule, AddedTicketsAreFoundAndReplacedLikeAnyOther) {
  TimerSchedule added, replaced;
  // Increasing keys, as a restore adds them, and one out of order.
  for (int i : {1, 2, 3, 5, 4}) {
    const TimerSchedule::Ticket id = i;
    std::vector<PendingTimer> timers = {{"idle:a", 100 * (6 - i), 1}, {"sla:x", 50 * i, 0}};
    added.add(id, timers);
    replaced.replace(id, timers);
  }
  EXPECT_EQ(listed(added), listed(replaced));
  EXPECT_FALSE(added.replace(4, {}));
  EXPECT_FALSE(added.replace(2, {{"idle:b", 700, 4}}));
  replaced.replace(4, {});
  replaced.replace(2, {{"idle:b", 700, 4}});
  EXPECT_EQ(listed(added), listed(replaced));
  EXPECT_EQ(added.size(), 7u);
}

}  // namespace
}  // namespace ticketd::projections
