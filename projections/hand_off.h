#pragma once
// Chunks of work handed from one producing thread to one consuming thread, at most `capacity`
// chunks ahead: the two overlap, and a producer faster than its consumer waits instead of
// running away with memory. Restoring a snapshot (decode | insert) and replaying the log
// (read and parse | apply) are split this way.
#include <condition_variable>
#include <cstddef>
#include <deque>
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

}  // namespace ticketd::projections
