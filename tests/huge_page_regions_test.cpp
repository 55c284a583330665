// The regions tcmalloc's heap grows by (server/heap.h): where they are, how large, and that
// they hold what is written to them. Reservations of 8 MB here, to cross several cheaply.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "server/heap.h"

namespace ticketd::server {
namespace {

using Region = std::pair<uintptr_t, size_t>;  // start, size

constexpr size_t kReservation = 4 * HugePageRegions::kHugePage;

uintptr_t address(void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(HugePageRegions, RegionsAreAlignedDisjointWritableAndSizedAsAsked) {
  HugePageRegions regions(kReservation);
  std::vector<Region> taken;
  // Sizes as tcmalloc asks (whole 8 KB pages, about a MB) and odd ones, over several reservations.
  // One larger than a reservation, too.
  const size_t sizes[] = {8192, 1 << 20, 3 << 20, 12345, 1, 9 << 20, (1 << 20) + 8192};
  size_t total = 0;
  for (int round = 0; total < 3 * kReservation; ++round) {
    size_t size = sizes[round % std::size(sizes)];
    size_t actual = 0;
    void* p = regions.take(size, 8192, &actual);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(address(p) % 8192, 0u);
    EXPECT_GE(actual, size);
    EXPECT_EQ(actual % 8192, 0u);
    EXPECT_LT(actual - size, 8192u);
    // Writable end to end (populated, or faulted in now).
    std::memset(p, 0x5a, actual);
    taken.emplace_back(address(p), actual);
    total += actual;
  }
  EXPECT_GE(regions.reservations(), 3u);
  std::sort(taken.begin(), taken.end());
  for (size_t i = 1; i < taken.size(); ++i) {
    EXPECT_LE(taken[i - 1].first + taken[i - 1].second, taken[i].first) << "regions overlap";
  }
  for (const auto& [start, size] : taken) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(start);
    EXPECT_EQ(bytes[0], 0x5a);
    EXPECT_EQ(bytes[size - 1], 0x5a);
  }
}

TEST(HugePageRegions, EachReservationStartsOnAHugePage) {
  HugePageRegions regions(kReservation);
  void* first = regions.take(8192, 8192, nullptr);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(address(first) % HugePageRegions::kHugePage, 0u);
  // Whatever is left of the reservation is too small for this: it starts the next one.
  size_t actual = 0;
  void* next = regions.take(kReservation, 8192, &actual);
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(regions.reservations(), 2u);
  EXPECT_EQ(address(next) % HugePageRegions::kHugePage, 0u);
  EXPECT_EQ(actual, kReservation);
  // The rest of the first reservation is not used again: regions only move forward.
  void* after = regions.take(8192, 8192, nullptr);
  EXPECT_EQ(regions.reservations(), 3u);
  EXPECT_EQ(address(after) % HugePageRegions::kHugePage, 0u);
}

TEST(HugePageRegions, AlignmentsCoarserThanAHugePageAreKept) {
  HugePageRegions regions(kReservation);
  ASSERT_NE(regions.take(8192, 8192, nullptr), nullptr);
  const size_t coarse = 4 * HugePageRegions::kHugePage;
  for (int i = 0; i < 3; ++i) {
    size_t actual = 0;
    void* p = regions.take(8192, coarse, &actual);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(address(p) % coarse, 0u);
    EXPECT_EQ(actual, coarse);  // a size is a whole number of alignments
  }
}

TEST(HugePageRegions, AnEmptyRequestStillGetsAPage) {
  HugePageRegions regions(kReservation);
  size_t actual = 0;
  void* p = regions.take(0, 0, &actual);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(actual, 4096u);
  std::memset(p, 1, actual);
}

}  // namespace
}  // namespace ticketd::server
