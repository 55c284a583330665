#include "api/metrics.h"

#include <fmt/format.h>

namespace ticketd::api {

void Metrics::observe_request(int status, double seconds) {
  if (status >= 100 && status < 600)
    by_class_[status / 100].fetch_add(1, std::memory_order_relaxed);
  size_t i = 0;
  while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string Metrics::render(const storage::EventLog::Stats& log, uint64_t log_position,
                            uint64_t applied_position) const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, v);
  };
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, v);
  };
  counter("ticketd_log_appended_events_total", "Events appended to the log.", log.events);
  counter("ticketd_log_append_requests_total", "Append requests completed.", log.requests);
  counter("ticketd_log_fsync_batches_total", "Synced write batches (group commits).", log.batches);
  // Seconds with their fraction: a counter of whole seconds would read 0 for a day of 1 ms syncs.
  out += fmt::format(
      "# HELP ticketd_log_fsync_seconds_total Time spent in synced writes.\n"
      "# TYPE ticketd_log_fsync_seconds_total counter\nticketd_log_fsync_seconds_total {:.6f}\n",
      static_cast<double>(log.sync_micros) / 1e6);
  counter("ticketd_log_subscriber_events_from_memory_total",
          "Events subscriptions took from the log's last batches kept in memory, not storage.",
          log.delivered_from_memory);
  gauge("ticketd_log_append_queue", "Append requests waiting for the writer.",
        static_cast<int64_t>(log.queued));
  gauge("ticketd_log_position", "Last durable log position.", static_cast<int64_t>(log_position));
  gauge("ticketd_projection_lag_events", "Events written but not yet applied to the read model.",
        static_cast<int64_t>(log_position - std::min(log_position, applied_position)));
  gauge("ticketd_open_connections", "Open HTTP and WebSocket connections.",
        open_connections_.load());
  gauge("ticketd_stream_subscribers", "Open WebSocket streams (/api/v1/stream).",
        open_streams_.load());
  counter("ticketd_stream_dropped_slow_total",
          "Streams closed because their client stopped reading and fell too far behind.",
          streams_dropped_slow_.load());
  counter("ticketd_notifications_delivered_total", "Notifications sent (SMS, e-mail, webhook).",
          notifications_delivered_.load());
  counter("ticketd_notification_failures_total", "Notification attempts that failed.",
          notifications_failed_.load());
  gauge("ticketd_outbox_pending", "Notifications waiting to be sent or retried.",
        outbox_pending_.load());
  counter("ticketd_lookups_answered_total", "Lookups whose answer filled the ticket's fields.",
          lookups_answered_.load());
  counter("ticketd_lookups_failed_total", "Lookups recorded as failed for good.",
          lookups_failed_.load());
  counter("ticketd_lookup_retries_total", "Lookup requests that failed and were tried again.",
          lookups_retried_.load());
  out +=
      "# HELP ticketd_listings_total Ticket listings, by where they ran: at once on their "
      "connection's thread, or on the query threads.\n"
      "# TYPE ticketd_listings_total counter\n";
  out +=
      fmt::format("ticketd_listings_total{{thread=\"connection\"}} {}\n", listings_at_once_.load());
  out += fmt::format("ticketd_listings_total{{thread=\"query\"}} {}\n", listings_queued_.load());
  out +=
      "# HELP ticketd_http_responses_total HTTP responses by status class.\n"
      "# TYPE ticketd_http_responses_total counter\n";
  for (int c = 1; c <= 5; ++c) {
    out +=
        fmt::format("ticketd_http_responses_total{{class=\"{}xx\"}} {}\n", c, by_class_[c].load());
  }
  out +=
      "# HELP ticketd_http_request_seconds HTTP request latency.\n"
      "# TYPE ticketd_http_request_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += buckets_[i].load();
    out += fmt::format("ticketd_http_request_seconds_bucket{{le=\"{}\"}} {}\n", kBuckets[i],
                       cumulative);
  }
  cumulative += buckets_[kBuckets.size()].load();
  out += fmt::format("ticketd_http_request_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("ticketd_http_request_seconds_sum {}\n",
                     static_cast<double>(sum_micros_.load()) / 1e6);
  out += fmt::format("ticketd_http_request_seconds_count {}\n", count_.load());
  return out;
}

}  // namespace ticketd::api
