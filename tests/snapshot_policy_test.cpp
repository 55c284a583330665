// When a running server saves its read model (projections::snapshot_due): not for a short tail,
// and never so often that saving takes more than its share of the time, however large the model.
#include <gtest/gtest.h>

#include "projections/snapshots.h"

namespace ticketd::projections {
namespace {

TEST(SnapshotPolicy, AShortTailIsNotWorthASave) {
  const SnapshotPolicy policy;  // 50,000 events, 5% of the time
  EXPECT_FALSE(snapshot_due(policy, 49999, 3600, 0));
  EXPECT_TRUE(snapshot_due(policy, 50000, 10, 0));
}

TEST(SnapshotPolicy, SavesAreSpacedByWhatTheLastOneTook) {
  const SnapshotPolicy policy;
  // A save of a large model took 3 s: the next comes 60 s after it began, however many events
  // came meanwhile (a fixed count of events made it every 10 s, 30% of a core).
  EXPECT_FALSE(snapshot_due(policy, 5'000'000, 59.9, 3.0));
  EXPECT_TRUE(snapshot_due(policy, 5'000'000, 60.0, 3.0));
  // A quick save of a small model: the event count decides.
  EXPECT_TRUE(snapshot_due(policy, 50000, 10, 0.2));
  EXPECT_FALSE(snapshot_due(policy, 40000, 10, 0.2));
}

TEST(SnapshotPolicy, TheShareIsAnOption) {
  const SnapshotPolicy policy{.min_events = 1000, .max_share = 0.5};
  EXPECT_FALSE(snapshot_due(policy, 1000, 3.9, 2.0));
  EXPECT_TRUE(snapshot_due(policy, 1000, 4.0, 2.0));
}

}  // namespace
}  // namespace ticketd::projections
