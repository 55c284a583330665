#pragma once
// Chunks of work handed from one producing thread to one consuming thread, at most `capacity`
// chunks ahead: the two overlap, and a producer faster than its consumer waits instead of
// running away with memory. Restoring a snapshot (decode | insert) and completing the timer
// schedule (compute | add) are split this way; replaying the log (read | parse | apply) with the
// SteppedHandOff below.
#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

namespace ticketd::projections {

template <typename Chunk>
class HandOff {
 public:
  explicit HandOff(size_t capacity) : capacity_(capacity) {}

  // Producer: waits while `capacity` chunks are waiting. The consumer takes until the end.
  void put(Chunk chunk) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return chunks_.size() < capacity_; });
    chunks_.push_back(std::move(chunk));
    cv_.notify_all();
  }
  // Producer: there will be no more chunks.
  void close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    cv_.notify_all();
  }

  // Consumer: the next chunk, or nothing once the producer has closed and every chunk is taken.
  std::optional<Chunk> take() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return !chunks_.empty() || closed_; });
    if (chunks_.empty()) return std::nullopt;
    Chunk chunk = std::move(chunks_.front());
    chunks_.pop_front();
    cv_.notify_all();
    return chunk;
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Chunk> chunks_;
  bool closed_ = false;
};

// A HandOff whose chunks need a step before they are consumed (a replay's batches: parsing) that
// either thread may take: the producer steps the oldest chunks when it has more than it wants
// waiting, and the consumer steps the chunk it needs next, or a later one while the producer
// steps that, rather than wait. The step's work so goes to whichever thread is free, where a
// fixed split leaves one thread idle while the other is the whole wall time.
template <typename Chunk>
class SteppedHandOff {
 public:
  using Step = std::function<void(Chunk&)>;  // called on both threads, at once for two chunks
  SteppedHandOff(size_t capacity, Step step) : capacity_(capacity), step_(std::move(step)) {}

  // Producer: waits while `capacity` chunks are waiting, stepped or not.
  void put(Chunk chunk) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return slots_.size() < capacity_; });
    slots_.push_back({std::move(chunk), State::kUnstepped});
    ++unstepped_;
    cv_.notify_all();
  }
  // Producer: there will be no more chunks.
  void close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    cv_.notify_all();
  }
  // Either thread: the number of chunks nobody has begun to step.
  size_t unstepped() {
    std::lock_guard lk(mu_);
    return unstepped_;
  }
  // Either thread: steps the oldest chunk nobody has begun to step. False if there is none.
  bool step_oldest() {
    std::unique_lock lk(mu_);
    for (Slot& slot : slots_) {
      if (slot.state == State::kUnstepped) {
        run_step(lk, slot);
        return true;
      }
    }
    return false;
  }

  // Consumer: the next chunk, stepped, or nothing once the producer has closed and every chunk
  // is taken.
  std::optional<Chunk> take() {
    std::unique_lock lk(mu_);
    for (;;) {
      if (slots_.empty()) {
        if (closed_) return std::nullopt;
        cv_.wait(lk);
        continue;
      }
      Slot& front = slots_.front();
      if (front.state == State::kUnstepped) run_step(lk, front);
      if (front.state == State::kStepped) {
        Chunk chunk = std::move(front.chunk);
        slots_.pop_front();
        cv_.notify_all();
        return chunk;
      }
      // The producer is stepping the front chunk: step a later one meanwhile, if any waits.
      auto later = std::find_if(slots_.begin(), slots_.end(),
                                [](const Slot& s) { return s.state == State::kUnstepped; });
      if (later != slots_.end()) {
        run_step(lk, *later);
      } else {
        cv_.wait(lk);
      }
    }
  }

 private:
  enum class State { kUnstepped, kStepping, kStepped };
  struct Slot {
    Chunk chunk;
    State state;
  };

  // Steps `slot` with the lock released: a deque's elements stay where they are while others
  // are added at its back and taken from its front, and a chunk being stepped is never taken.
  void run_step(std::unique_lock<std::mutex>& lk, Slot& slot) {
    slot.state = State::kStepping;
    --unstepped_;
    lk.unlock();
    step_(slot.chunk);
    lk.lock();
    slot.state = State::kStepped;
    cv_.notify_all();
  }

  const size_t capacity_;
  Step step_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Slot> slots_;
  size_t unstepped_ = 0;
  bool closed_ = false;
};

}  // namespace ticketd::projections
