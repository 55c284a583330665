#include "api/outbox_worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "domain/time_format.h"

namespace ticketd::api {
namespace {

constexpr char kSnapshotName[] = "outbox";

bool is_notification(std::string_view type) {
  return type == event_types::kNotificationRequested ||
         type == event_types::kNotificationDelivered || type == event_types::kNotificationFailed;
}

}  // namespace

std::set<std::string> OutboxWorker::channels(const TransportOptions& options) {
  std::set<std::string> out;
  if (!options.smtp_url.empty()) out.insert("email");
  if (!options.sms_gateway_url.empty()) out.insert("sms");
  if (!options.webhook_url.empty()) out.insert("webhook");
  return out;
}

bool OutboxWorker::sends(std::string_view channel) const {
  return channels_.count(std::string(channel)) > 0;
}

bool OutboxWorker::will_send(uint64_t request, std::string_view channel) const {
  if (!sends(channel)) return false;
  std::lock_guard lk(callouts_.mu);
  return request > position_ || queue_.pending().count(request) > 0;
}

OutboxWorker::OutboxWorker(storage::EventLog& log, projections::ReadModel& model, Metrics& metrics,
                           OutboxOptions options, std::function<int64_t()> now_us)
    : log_(log),
      model_(model),
      metrics_(metrics),
      options_(std::move(options)),
      channels_(channels(options_.transport)),
      now_us_(std::move(now_us)),
      queue_(channels_) {
  options_.transport.cancel = &callouts_.cancel;
  std::unique_ptr<storage::SnapshotReader> reader;
  storage::Status opened = log_.open_snapshot(kSnapshotName, &reader);
  std::string_view piece;
  Value saved;
  std::string error;
  if (opened.ok() && reader->next(&piece) && parse_json(piece, &saved, &error) &&
      queue_.from_value(saved) && reader->position() <= log_.last_position()) {
    position_ = saved_position_ = reader->position();
  } else if (opened.code() == storage::Status::Code::kNotFound) {
    // The first start with a transport: saved at once, so that after a crash the requests made
    // since are found again by replaying from here.
    position_ = log_.last_position();
    saved_position_ = UINT64_MAX;
    save_snapshot();
  } else {
    // Unreadable: the whole log tells what is pending (requests past their time to live are
    // given up rather than sent late).
    spdlog::warn("outbox: snapshot not used ({}); reading every request from the log",
                 opened.ok() ? "not a queue" : opened.ToString());
    queue_ = NotificationQueue(channels_);
    position_ = 0;
    saved_position_ = UINT64_MAX;
  }
  spdlog::info(
      "outbox: delivering {} from position {} ({} pending)",
      [&] {
        std::string names;
        for (const auto& c : channels_) names += (names.empty() ? "" : ", ") + c;
        return names;
      }(),
      position_, queue_.pending().size());
  metrics_.set_outbox_pending(static_cast<int64_t>(queue_.pending().size()));
  subscription_ =
      log_.subscribe(position_, [this](const storage::RecordedEvent& e) { on_event(e); });
  callouts_.start(options_.senders, "outbox", [this](bool first) { run(first); });
}

OutboxWorker::~OutboxWorker() { stop(); }

void OutboxWorker::stop() {
  // Outcomes handed to the log are owed: their callbacks use this object (the log is still open).
  if (!callouts_.stop()) return;
  subscription_.reset();
  save_snapshot();
}

void OutboxWorker::on_event(const storage::RecordedEvent& e) {
  // Every event of the log passes here; only the three notification types are parsed.
  if (!is_notification(e.type())) {
    std::lock_guard lk(callouts_.mu);
    position_ = e.position();
    return;
  }
  DomainEvent d;
  bool parsed = projections::to_domain_event(e, &d);
  std::lock_guard lk(callouts_.mu);
  if (parsed) {
    if (uint64_t settled = queue_.apply(e.stream(), e.position(), d)) busy_.erase(settled);
    metrics_.set_outbox_pending(static_cast<int64_t>(queue_.pending().size()));
  }
  position_ = e.position();
  callouts_.cv.notify_all();
}

void OutboxWorker::run(bool saves_snapshots) {
  auto last_save = std::chrono::steady_clock::now();
  std::unique_lock lk(callouts_.mu);
  while (!callouts_.stopping) {
    int64_t now = now_us_();
    if (const PendingNotification* due = queue_.next_due(now, busy_)) {
      PendingNotification n = *due;
      busy_.insert(n.request);
      lk.unlock();
      deliver(n);
      lk.lock();
      continue;
    }
    if (saves_snapshots &&
        std::chrono::steady_clock::now() - last_save >= options_.snapshot_every) {
      lk.unlock();
      save_snapshot();
      lk.lock();
      last_save = std::chrono::steady_clock::now();
    }
    int64_t next = queue_.earliest(busy_);
    auto wait = std::chrono::microseconds(next ? std::clamp<int64_t>(next - now, 1000, 1'000'000)
                                               : 1'000'000);
    callouts_.cv.wait_for(lk, wait);
  }
}

void OutboxWorker::deliver(const PendingNotification& n) {
  const int64_t now = now_us_();
  SendResult result;
  std::vector<std::string> to;
  if (now - n.requested_at > options_.retry.max_age_us) {
    result = {false, true, false, "expired: not sent within its time to live"};
  } else if (n.channel == "webhook") {
    JsonWriter w;
    w.begin_object();
    w.key("id").string(std::to_string(n.request)).key("ticket").string(n.ticket);
    w.key("rule").string(n.rule).key("to").string(n.to).key("recipient").string(n.recipient);
    w.key("text").string(n.text).key("requested_at").string(format_rfc3339(n.requested_at));
    w.end_object();
    to.push_back(options_.transport.webhook_url);
    std::string body = w.take();
    std::vector<std::string> headers;
    if (!options_.transport.webhook_secret.empty())
      headers = webhook_signature(options_.transport.webhook_secret, now / 1'000'000, body);
    result = post_json(options_.transport, options_.transport.webhook_url, body,
                       "ticketd-notification-" + std::to_string(n.request), headers);
  } else {
    auto resolved = model_.read(
        [&](const projections::ReadModel::View& v) { return resolve_recipients(n, v.catalog); });
    if (!resolved.ok()) {
      result = {false, true, false, resolved.error().message};
    } else if (n.channel == "sms") {
      to = resolved.value();
      JsonWriter w;
      w.begin_object().key("to").begin_array();
      for (const auto& r : to) w.string(r);
      w.end_array().key("text").string(n.text).key("ticket").string(n.ticket);
      w.key("id").string(std::to_string(n.request)).end_object();
      std::vector<std::string> headers;
      if (!options_.transport.sms_gateway_token.empty())
        headers.push_back("Authorization: Bearer " + options_.transport.sms_gateway_token);
      result = post_json(options_.transport, options_.transport.sms_gateway_url, w.take(),
                         "ticketd-notification-" + std::to_string(n.request), headers);
    } else {
      to = resolved.value();
      std::string subject = "工单 " + n.ticket + " 通知";
      std::string message =
          format_mail(options_.transport.smtp_from, to, subject, n.text,
                      "ticketd-notification-" + std::to_string(n.request) + "@ticketd", now);
      result = send_mail(options_.transport, to, message);
    }
  }
  if (result.cancelled) {
    // Stopping: not an attempt. The request stays pending and is sent after the restart.
    std::lock_guard lk(callouts_.mu);
    busy_.erase(n.request);
    return;
  }
  DomainEvent outcome =
      result.ok ? delivered_event(n, to, now_us_())
                : failed_event(n, result.error, result.permanent, options_.retry, now_us_());
  metrics_.notification_attempt(result.ok);
  if (!result.ok) {
    spdlog::warn("outbox: {} notification {} of {} failed (attempt {}): {}", n.channel, n.request,
                 n.ticket, n.attempts + 1, result.error);
  }
  std::vector<storage::NewEvent> batch{projections::to_new_event(outcome, *outcome.id, "outbox")};
  {
    std::lock_guard lk(callouts_.mu);
    ++callouts_.owed;
  }
  log_.append_async(kOutboxStream, storage::ExpectedVersion::Any(), std::move(batch),
                    [this, request = n.request](storage::AppendResult r) {
                      if (!r.status.ok()) {
                        spdlog::warn("outbox: outcome of {} not recorded: {}", request,
                                     r.status.ToString());
                      }
                      std::lock_guard lk(callouts_.mu);
                      // Recorded: settled once the subscription applies it. Not recorded, or
                      // recorded before (its event id is known: the queue has it already): the
                      // queue's state decides what is next.
                      if (!r.status.ok() || r.duplicate) busy_.erase(request);
                      --callouts_.owed;
                      callouts_.cv.notify_all();
                    });
}

void OutboxWorker::save_snapshot() {
  std::string bytes;
  uint64_t position = 0;
  {
    std::lock_guard lk(callouts_.mu);
    if (position_ == saved_position_) return;
    bytes = queue_.to_value().to_json();
    position = position_;
  }
  std::unique_ptr<storage::SnapshotWriter> writer;
  storage::Status s = log_.begin_snapshot(kSnapshotName, &writer);
  if (s.ok()) s = writer->add(bytes);
  if (s.ok()) s = writer->finish(position);
  if (!s.ok()) {
    spdlog::warn("outbox: snapshot not saved: {}", s.ToString());
    return;
  }
  std::lock_guard lk(callouts_.mu);
  saved_position_ = position;
}

}  // namespace ticketd::api
