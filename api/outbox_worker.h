#pragma once
// The outbox's delivery worker: follows the log for notification requests of the channels it has
// a transport for, sends each when it is due (api/callout_transport.h), and records every
// attempt's outcome on the "outbox" stream; the queue of what is pending is rebuilt from those
// events (domain/notifications.h) and kept in a snapshot across restarts. Delivery is at least
// once: a crash between sending and recording sends again, with the same Idempotency-Key (HTTP)
// or Message-ID (e-mail).
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api/callout_threads.h"
#include "api/callout_transport.h"
#include "api/metrics.h"
#include "domain/notifications.h"
#include "projections/read_model.h"
#include "storage/event_log.h"

namespace ticketd::api {

struct OutboxOptions {
  TransportOptions transport;
  RetryPolicy retry;
  // How often the pending queue is saved while it changes (it is also saved at a clean stop).
  std::chrono::seconds snapshot_every{10};
  // Sends under way at once: a gateway that hangs holds one sender, not every channel.
  int senders = 4;
};

class OutboxWorker {
 public:
  // Starts following the log: from its snapshot, or, the first time, from the log's end (requests
  // made before a transport was configured are not sent).
  OutboxWorker(storage::EventLog& log, projections::ReadModel& model, Metrics& metrics,
               OutboxOptions options, std::function<int64_t()> now_us);
  ~OutboxWorker();
  void stop();

  // The channels with a transport in `options`.
  static std::set<std::string> channels(const TransportOptions& options);
  // Whether this worker sends the channel's notifications at all.
  bool sends(std::string_view channel) const;
  // Whether the request (its NotificationRequested's position) of that channel is still to be
  // sent here: pending in the queue, or not yet read from the log.
  bool will_send(uint64_t request, std::string_view channel) const;

 private:
  void on_event(const storage::RecordedEvent& e);
  void run(bool saves_snapshots);
  void deliver(const PendingNotification& n);
  void save_snapshot();

  storage::EventLog& log_;
  projections::ReadModel& model_;
  Metrics& metrics_;
  OutboxOptions options_;
  const std::set<std::string> channels_;  // channels(options_.transport)
  std::function<int64_t()> now_us_;

  CalloutThreads callouts_;  // its mutex guards what follows
  NotificationQueue queue_;
  uint64_t position_ = 0;    // the last event applied to queue_
  std::set<uint64_t> busy_;  // requests being sent, or whose outcome is not applied yet
  uint64_t saved_position_ = 0;
  std::unique_ptr<storage::Subscription> subscription_;
};

}  // namespace ticketd::api
