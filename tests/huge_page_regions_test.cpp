// The regions tcmalloc's heap grows by (server/heap.h): where they are, how large, that they
// hold what is written to them, and that the helper populates ahead of them. Reservations of 8 MB
// here, to cross several cheaply.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "server/heap.h"

namespace ticketd::server {
namespace {

using Region = std::pair<uintptr_t, size_t>;  // start, size

constexpr size_t kReservation = 4 * HugePageRegions::kHugePage;
constexpr size_t kPage = 4096;

HugePageRegionsOptions small(size_t populate_ahead = HugePageRegionsOptions{}.populate_ahead) {
  return {.reservation = kReservation, .populate_ahead = populate_ahead};
}

uintptr_t address(void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(HugePageRegions, RegionsAreAlignedDisjointWritableAndSizedAsAsked) {
  HugePageRegions regions(small());
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
  HugePageRegions regions(small());
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
  HugePageRegions regions(small());
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
  HugePageRegions regions(small());
  size_t actual = 0;
  void* p = regions.take(0, 0, &actual);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(actual, 4096u);
  std::memset(p, 1, actual);
}

// How many of the 4 KB pages of [start, start + size) are resident.
size_t resident_pages(uintptr_t start, size_t size) {
  std::vector<unsigned char> in(size / kPage);
  if (::mincore(reinterpret_cast<void*>(start), size, in.data()) != 0) return 0;
  return static_cast<size_t>(
      std::count_if(in.begin(), in.end(), [](unsigned char c) { return (c & 1) != 0; }));
}

TEST(HugePageRegions, TheHelperPopulatesAheadOfWhatIsTakenAndNoFurther) {
  const size_t ahead = HugePageRegions::kHugePage + 64 * kPage;
  HugePageRegions regions(small(ahead));
  void* first = regions.take(8192, 8192, nullptr);
  ASSERT_NE(first, nullptr);
  const uintptr_t taken_to = address(first) + 8192;
  // The helper works on its own thread: poll with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (regions.populated_ahead_to() < taken_to + ahead &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(regions.populated_ahead_to(), taken_to + ahead);
  EXPECT_EQ(resident_pages(taken_to, ahead), ahead / kPage);
  // Beyond what was asked the kernel may have put a whole huge page, never more.
  const uintptr_t beyond = taken_to + ahead;
  const uintptr_t huge_end =
      (beyond + HugePageRegions::kHugePage - 1) & ~uintptr_t{HugePageRegions::kHugePage - 1};
  const uintptr_t reservation_end = address(first) + kReservation;
  EXPECT_EQ(resident_pages(huge_end, reservation_end - huge_end), 0u);
  // What the helper populated is handed out as it is, and holds what is written to it.
  size_t actual = 0;
  void* next = regions.take(ahead, kPage, &actual);
  EXPECT_EQ(address(next), taken_to);
  std::memset(next, 0x7e, actual);
  EXPECT_EQ(static_cast<unsigned char*>(next)[actual - 1], 0x7e);
}

TEST(HugePageRegions, TheHelperFollowsIntoANewReservationAndStopsAtItsEnd) {
  HugePageRegions regions(small(2 * kReservation));
  ASSERT_NE(regions.take(kReservation / 2, 8192, nullptr), nullptr);
  // Too large for what is left: a new reservation, which the helper populates to its end only.
  size_t actual = 0;
  void* second = regions.take(kReservation / 2 + 8192, 8192, &actual);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(regions.reservations(), 2u);
  const uintptr_t end = address(second) + kReservation;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (regions.populated_ahead_to() < end && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(regions.populated_ahead_to(), end);
  EXPECT_EQ(resident_pages(address(second), kReservation), kReservation / kPage);
}

TEST(HugePageRegions, WhatTheHelperPopulatedOfAReservationLeftBehindIsGivenBack) {
  HugePageRegions regions(small(2 * kReservation));
  void* first = regions.take(kReservation / 2, 8192, nullptr);
  ASSERT_NE(first, nullptr);
  const uintptr_t end = address(first) + kReservation;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (regions.populated_ahead_to() < end && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  const uintptr_t unused = address(first) + kReservation / 2;
  ASSERT_EQ(resident_pages(unused, end - unused), (end - unused) / kPage);
  // Too large for the rest: a new reservation, and the rest is no longer resident.
  ASSERT_NE(regions.take(kReservation / 2 + 8192, 8192, nullptr), nullptr);
  EXPECT_EQ(regions.reservations(), 2u);
  EXPECT_EQ(resident_pages(unused, end - unused), 0u);
  EXPECT_EQ(resident_pages(address(first), kReservation / 2), kReservation / 2 / kPage);
}

TEST(HugePageRegions, WithoutAHelperEachRegionIsPopulatedWhenTaken) {
  HugePageRegions regions(small(0));
  size_t actual = 0;
  void* p = regions.take(64 * kPage, kPage, &actual);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(regions.populated_ahead_to(), 0u);
  EXPECT_EQ(resident_pages(address(p), actual), actual / kPage);
}

}  // namespace
}  // namespace ticketd::server
