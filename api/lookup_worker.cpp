#include "api/lookup_worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace ticketd::api {
namespace {

constexpr char kCheckpointName[] = "lookups";

StringPairs string_pairs(const Value& object) {
  StringPairs out;
  if (!object.is_object()) return out;
  for (const auto& [k, v] : object.as_object()) {
    out.emplace_back(k, v.is_string() ? v.as_string() : v.to_json());
  }
  return out;
}

}  // namespace

LookupWorker::LookupWorker(storage::EventLog& log, projections::ReadModel& model, Api& api,
                           Metrics& metrics, LookupOptions options)
    : log_(log), model_(model), api_(api), metrics_(metrics), options_(std::move(options)) {
  transport_.timeout_seconds = options_.timeout_seconds;
  transport_.cancel = &callouts_.cancel;
  if (storage::Status s = log_.load_checkpoint(kCheckpointName, &seen_);
      !s.ok() && s.code() != storage::Status::Code::kNotFound) {
    spdlog::warn("lookups: checkpoint not read ({}); reading every request from the log",
                 s.ToString());
    seen_ = 0;
  }
  seen_ = std::min(seen_, log_.last_position());
  saved_ = seen_;
  std::string names;
  for (const auto& [name, url] : options_.sources) names += (names.empty() ? "" : ", ") + name;
  spdlog::info("lookups: asking {} from position {}", names, seen_);
  subscription_ = log_.subscribe(seen_, [this](const storage::RecordedEvent& e) { on_event(e); });
  callouts_.start(options_.fetchers, "lookups", [this](bool first) { run(first); });
}

LookupWorker::~LookupWorker() { stop(); }

void LookupWorker::stop() {
  // Answers handed to the API are owed: their callbacks use this object.
  if (!callouts_.stop()) return;
  subscription_.reset();
  save_checkpoint();
}

void LookupWorker::on_event(const storage::RecordedEvent& e) {
  // Every event of the log passes here; only requests are parsed.
  if (e.type() != event_types::kLookupRequested || !is_ticket_stream(e.stream())) {
    std::lock_guard lk(callouts_.mu);
    seen_ = e.position();
    return;
  }
  DomainEvent d;
  bool parsed = projections::to_domain_event(e, &d);
  Request r;
  r.position = e.position();
  r.ticket = std::string(ticket_id_of(e.stream()));
  r.answer.lookup = e.version();
  r.answer.rule = d.data.string_or("rule");
  r.source = d.data.string_or("source");
  r.path = d.data.string_or("path");
  r.query = string_pairs(d.data["query"]);
  r.fill = string_pairs(d.data["fill"]);
  r.due = std::chrono::steady_clock::now();
  std::lock_guard lk(callouts_.mu);
  seen_ = e.position();
  if (!parsed) {
    spdlog::error("lookups: request at position {} is not readable; skipped", e.position());
    return;
  }
  unsettled_.insert(r.position);
  queue_.push_back(std::move(r));
  callouts_.cv.notify_all();
}

void LookupWorker::run(bool keeps_checkpoint) {
  auto last_save = std::chrono::steady_clock::now();
  std::unique_lock lk(callouts_.mu);
  while (!callouts_.stopping) {
    auto now = std::chrono::steady_clock::now();
    // A request is asked once it is due and the read model has applied it (so that whether it is
    // still pending can be read there).
    const uint64_t applied = model_.applied_position();
    auto next = std::chrono::steady_clock::time_point::max();
    auto ready = queue_.end();
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->position > applied) {
        next = std::min(next, now + std::chrono::milliseconds(5));
      } else if (it->due <= now) {
        ready = it;
        break;
      } else {
        next = std::min(next, it->due);
      }
    }
    if (ready != queue_.end()) {
      Request r = std::move(*ready);
      queue_.erase(ready);
      lk.unlock();
      answer(std::move(r));
      lk.lock();
      continue;
    }
    if (keeps_checkpoint && now - last_save >= options_.checkpoint_every) {
      lk.unlock();
      save_checkpoint();
      lk.lock();
      last_save = std::chrono::steady_clock::now();
    }
    callouts_.cv.wait_until(lk, std::min(next, now + std::chrono::seconds(1)));
  }
}

void LookupWorker::answer(Request r) {
  auto settle = [this, position = r.position] {
    std::lock_guard lk(callouts_.mu);
    unsettled_.erase(position);
  };
  bool pending = model_.read([&](const projections::ReadModel::View& v) {
    const TicketState* t = v.ticket(r.ticket);
    return t && t->open_request(OpenRequest::Kind::kLookup, r.answer.lookup);
  });
  if (!pending) return settle();  // answered before a restart

  auto source = options_.sources.find(r.source);
  FetchResult got;
  if (source == options_.sources.end()) {
    got.permanent = true;
    got.error = "no lookup source \"" + r.source + "\" on this server";
  } else {
    std::string url = source->second;
    while (!url.empty() && url.back() == '/') url.pop_back();
    auto token = options_.tokens.find(r.source);
    got =
        get_json(transport_, url + r.path, r.query,
                 token == options_.tokens.end() ? "" : token->second, "lookup source " + r.source);
  }
  if (got.cancelled) return;  // stopping: asked again after the restart
  Value document;
  std::string parse_error;
  if (got.ok && !parse_json(got.body, &document, &parse_error, kMaxInputJsonDepth)) {
    got.ok = false;
    got.permanent = true;
    got.error =
        "lookup source " + r.source + " answered something that is not JSON: " + parse_error;
  }
  ++r.attempts;
  if (!got.ok && !got.permanent && r.attempts < options_.max_attempts) {
    auto delay = options_.first_retry * (int64_t{1} << std::min(r.attempts - 1, 20));
    spdlog::warn("lookups: {} of ticket {} failed (attempt {}), again in {} ms: {}",
                 r.answer.lookup, r.ticket, r.attempts, delay.count(), got.error);
    metrics_.lookup_retried();
    r.due = std::chrono::steady_clock::now() + delay;
    std::lock_guard lk(callouts_.mu);
    queue_.push_back(std::move(r));
    callouts_.cv.notify_all();
    return;
  }
  if (got.ok) {
    r.answer.fields = lookup_fill(document, r.fill);
  } else {
    r.answer.error = got.error;
    if (r.attempts > 1) r.answer.error += " (after " + std::to_string(r.attempts) + " attempts)";
  }
  metrics_.lookup_answered(got.ok);
  {
    std::lock_guard lk(callouts_.mu);
    ++callouts_.owed;
  }
  const std::string ticket = r.ticket;
  api_.apply_lookup(ticket, std::move(r.answer), [this, settle](bool refused) {
    // Refused (the disk full, say): the request stays pending on the ticket and unsettled here, so
    // the checkpoint stays below it and the next start asks it again.
    if (!refused) settle();
    std::lock_guard lk(callouts_.mu);
    --callouts_.owed;
    callouts_.cv.notify_all();
  });
}

void LookupWorker::save_checkpoint() {
  uint64_t position = 0;
  {
    std::lock_guard lk(callouts_.mu);
    position = unsettled_.empty() ? seen_ : *unsettled_.begin() - 1;
    if (position == saved_) return;
  }
  if (storage::Status s = log_.save_checkpoint(kCheckpointName, position); !s.ok()) {
    spdlog::warn("lookups: checkpoint not saved: {}", s.ToString());
    return;
  }
  std::lock_guard lk(callouts_.mu);
  saved_ = position;
}

}  // namespace ticketd::api
