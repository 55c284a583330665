// Chunks handed from a producing thread to a consuming one with a step either may take: every
// chunk is stepped exactly once, before it is taken, and taken in the order it was put.
#include "projections/hand_off.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ticketd::projections {
namespace {

struct Chunk {
  int number = 0;
  int steps = 0;
  std::thread::id stepped_on;
};

void step(Chunk& c) {
  ++c.steps;
  c.stepped_on = std::this_thread::get_id();
}

TEST(SteppedHandOff, TheConsumerStepsWhatNobodyElseHas) {
  SteppedHandOff<Chunk> chunks(8, step);
  for (int i = 0; i < 3; ++i) chunks.put({i, 0, {}});
  chunks.close();
  EXPECT_EQ(chunks.unstepped(), 3u);
  for (int i = 0; i < 3; ++i) {
    std::optional<Chunk> c = chunks.take();
    ASSERT_TRUE(c);
    EXPECT_EQ(c->number, i);
    EXPECT_EQ(c->steps, 1);
  }
  EXPECT_FALSE(chunks.take());
}

TEST(SteppedHandOff, AChunkSteppedAheadIsNotSteppedAgain) {
  SteppedHandOff<Chunk> chunks(8, step);
  for (int i = 0; i < 3; ++i) chunks.put({i, 0, {}});
  EXPECT_TRUE(chunks.step_oldest());  // 0
  EXPECT_TRUE(chunks.step_oldest());  // 1
  EXPECT_EQ(chunks.unstepped(), 1u);
  chunks.close();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(chunks.take()->steps, 1);
  EXPECT_FALSE(chunks.step_oldest());
}

// The replay's use: the producer steps the oldest chunks while more than one waits unstepped,
// the consumer the rest; a slow step on either side makes them overlap.
TEST(SteppedHandOff, ChunksStayInOrderWhileBothThreadsStep) {
  constexpr int kChunks = 5000;
  auto slow_step = [](Chunk& c) {
    step(c);
    volatile int spin = 0;
    for (int i = 0; i < (c.number % 7) * 500; i = i + 1) spin = spin + i;
  };
  SteppedHandOff<Chunk> chunks(4, slow_step);
  std::thread producer([&] {
    for (int i = 0; i < kChunks; ++i) {
      chunks.put({i, 0, {}});
      while (chunks.unstepped() > 1 && chunks.step_oldest()) {
      }
    }
    chunks.close();
  });
  int expected = 0;
  int by_consumer = 0;
  while (std::optional<Chunk> c = chunks.take()) {
    ASSERT_EQ(c->number, expected++);
    ASSERT_EQ(c->steps, 1);
    if (c->stepped_on == std::this_thread::get_id()) ++by_consumer;
  }
  producer.join();
  EXPECT_EQ(expected, kChunks);
  // Who stepped what depends on the machine; that the consumer took some share is all that holds
  // everywhere: it steps every chunk the producer left, the last one always among them.
  EXPECT_GE(by_consumer, 1);
}

}  // namespace
}  // namespace ticketd::projections
