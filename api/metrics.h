#pragma once
// Counters for GET /metrics (Prometheus text format). Lock-free: updated on every request.
#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "storage/event_log.h"

namespace ticketd::api {

class Metrics {
 public:
  void connection_opened() { open_connections_.fetch_add(1, std::memory_order_relaxed); }
  void connection_closed() { open_connections_.fetch_sub(1, std::memory_order_relaxed); }
  // Live streams (/api/v1/stream): one opened or closed, and one closed by the server because its
  // client fell behind (API.md: a slow subscriber is dropped rather than slowing anyone else).
  void stream_opened() { open_streams_.fetch_add(1, std::memory_order_relaxed); }
  void stream_closed() { open_streams_.fetch_sub(1, std::memory_order_relaxed); }
  void stream_dropped_slow() { streams_dropped_slow_.fetch_add(1, std::memory_order_relaxed); }
  void observe_request(int status, double seconds);
  // The outbox: an attempt's outcome, and how many notifications wait (to be sent or retried).
  void notification_attempt(bool delivered) {
    (delivered ? notifications_delivered_ : notifications_failed_)
        .fetch_add(1, std::memory_order_relaxed);
  }
  void set_outbox_pending(int64_t n) { outbox_pending_.store(n, std::memory_order_relaxed); }
  // Lookups: an answer recorded (fields filled, or failed for good), and a request that failed
  // and waits to be tried again.
  void lookup_answered(bool ok) {
    (ok ? lookups_answered_ : lookups_failed_).fetch_add(1, std::memory_order_relaxed);
  }
  void lookup_retried() { lookups_retried_.fetch_add(1, std::memory_order_relaxed); }
  // Listings (GET /tickets, /inbox): one answered at once on its connection's thread, or handed
  // to the query threads, where it may wait behind others.
  void listing_started(bool on_query_thread) {
    (on_query_thread ? listings_queued_ : listings_at_once_)
        .fetch_add(1, std::memory_order_relaxed);
  }

  std::string render(const storage::EventLog::Stats& log, uint64_t log_position,
                     uint64_t applied_position) const;

 private:
  static constexpr std::array<double, 12> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,   0.1,   0.25,   0.5,   1,    2.5};
  std::atomic<int64_t> open_connections_{0};
  std::atomic<int64_t> open_streams_{0};
  std::atomic<uint64_t> streams_dropped_slow_{0};
  std::atomic<uint64_t> notifications_delivered_{0};
  std::atomic<uint64_t> notifications_failed_{0};
  std::atomic<int64_t> outbox_pending_{0};
  std::atomic<uint64_t> lookups_answered_{0};
  std::atomic<uint64_t> lookups_failed_{0};
  std::atomic<uint64_t> lookups_retried_{0};
  std::atomic<uint64_t> listings_at_once_{0};
  std::atomic<uint64_t> listings_queued_{0};
  std::array<std::atomic<uint64_t>, 6> by_class_{};  // 1xx..5xx, index = status / 100
  std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

}  // namespace ticketd::api
