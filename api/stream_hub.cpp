#include "api/stream_hub.h"

#include <pthread.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <unordered_map>
#include <utility>

#include "api/api.h"
#include "api/ticket_view.h"
#include "domain/notifications.h"
#include "domain/permissions.h"
#include "projections/dashboards.h"
#include "projections/reports.h"

namespace ticketd::api {
namespace {

using View = projections::ReadModel::View;

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool valid_topic(const std::string& t) {
  if (t == "tickets" || t == "inbox") return true;
  if (t.rfind("ticket:", 0) == 0) return t.size() > 7;
  if (t.rfind("dashboard:", 0) == 0) return t.size() > 10;
  if (t.rfind("report:", 0) == 0) return projections::Reports::known(t.substr(7));
  return false;
}

// Report and dashboard topics carry the current numbers, not tickets: the same for every reader,
// sent at once and then when they change, whatever events moved them.
bool numbers_topic(const std::string& t) {
  return t.rfind("report:", 0) == 0 || t.rfind("dashboard:", 0) == 0;
}

// A numbers message from its numbers on ("report" or "dashboard" follows "position"): what is
// compared to tell a change.
std::string numbers_of(const std::string& message) {
  size_t at = message.find(",\"report\":");
  if (at == std::string::npos) at = message.find(",\"dashboard\":");
  return message.substr(at);
}

}  // namespace

StreamHub::StreamHub(storage::EventLog& log, projections::ReadModel& model, Clock clock)
    : clock_(clock ? std::move(clock) : Clock(now_us)), log_(log), model_(model), thread_([this] {
        pthread_setname_np(pthread_self(), "stream-hub");
        run();
      }) {}

StreamHub::~StreamHub() { stop(); }

void StreamHub::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::vector<Replay> replays;
  {
    std::lock_guard lk(mu_);
    replays.swap(replays_);
  }
  for (auto& r : replays) r.thread.join();
}

void StreamHub::send_error(StreamClient& c, std::string_view code, std::string_view message) {
  JsonWriter w;
  w.begin_object().key("error").begin_object();
  write_error_members(w, code, message);
  w.end_object().end_object();
  c.send(w.take());
}

void StreamHub::on_message(const std::shared_ptr<StreamClient>& client, std::string_view text) {
  Value msg;
  std::string error;
  if (!parse_json(text, &msg, &error, kMaxInputJsonDepth) || !msg.is_object()) {
    return send_error(*client, "bad_request", error.empty() ? "a message is a JSON object" : error);
  }
  std::string op = msg.string_or("op");
  if (op != "subscribe" && op != "unsubscribe" && op != "ping") {
    return send_error(*client, "bad_request", "op must be subscribe, unsubscribe or ping");
  }
  // A misspelt member would be dropped without a word: {"frm":100} would subscribe live only,
  // and the client would never be told the replay it asked for did not happen.
  for (const auto& [key, value] : msg.as_object()) {
    const bool known = key == "op" || (op != "ping" && key == "topic") ||
                       (op == "subscribe" && (key == "from" || key == "tz"));
    if (!known) {
      const char* takes = op == "subscribe"     ? " takes op, topic, from and tz"
                          : op == "unsubscribe" ? " takes op and topic"
                                                : " takes op alone";
      return send_error(*client, "bad_request", "unknown member \"" + key + "\"; " + op + takes);
    }
  }
  if (op == "ping") return client->send(R"({"op":"pong"})");
  std::string topic = msg.string_or("topic");
  if (!valid_topic(topic)) {
    return send_error(
        *client, "not_found",
        "no topic \"" + topic + "\" (tickets, ticket:<id>, inbox, report:<name>, dashboard:<id>)");
  }
  if (op == "subscribe" && topic.rfind("dashboard:", 0) == 0 && !model_.read([&](const View& v) {
        return v.catalog.dashboard(topic.substr(10)) != nullptr;
      })) {
    return send_error(*client, "not_found", "no dashboard \"" + topic.substr(10) + "\"");
  }
  // A ticket's number comes with its submission, so a topic naming none that exists is a typo:
  // said, rather than a subscription that never hears anything.
  if (op == "subscribe" && topic.rfind("ticket:", 0) == 0 &&
      !model_.read([&](const View& v) { return v.ticket(topic.substr(7)) != nullptr; })) {
    return send_error(*client, "not_found", "no ticket " + topic.substr(7));
  }
  if (op == "unsubscribe") {
    std::lock_guard lk(mu_);
    if (auto it = subs_.find(client.get()); it != subs_.end()) {
      it->second.erase(topic);
      if (it->second.empty()) subs_.erase(it);
    }
    listening_.store(!subs_.empty());
    // Acknowledged as a subscription is, whether or not there was one. A message of the topic
    // already being delivered (or replayed) may still arrive after it.
    JsonWriter w;
    w.begin_object().key("op").string("unsubscribed").key("topic").string(topic).end_object();
    return client->send(w.take());
  }
  const Value* from = msg.find("from");
  if (from && (!from->is_number() || from->as_number() < 0 ||
               from->as_number() != std::floor(from->as_number()))) {
    return send_error(*client, "bad_request", "from must be a log position (a whole number)");
  }
  // After a position the log has not reached, live events up to it would be taken for ones the
  // client has seen, or sent as ones it has not: a client of another data directory.
  const uint64_t last = log_.last_position();
  if (from && from->as_number() > static_cast<double>(last)) {
    return send_error(*client, "bad_request",
                      "from " + from->to_json() + " is beyond the end of the log (position " +
                          std::to_string(last) + ")");
  }
  // A report's days in a zone, as GET /reports/{name}?tz= counts them. A dashboard has its own.
  const date::time_zone* zone = nullptr;
  std::string zone_name;
  if (const Value* tz = msg.find("tz")) {
    if (topic.rfind("report:", 0) != 0) {
      return send_error(*client, "bad_request",
                        "tz is for report topics (a dashboard counts in its own time_zone)");
    }
    zone_name = tz->is_string() ? tz->as_string() : tz->to_json();
    if (!tz->is_string() || !(zone = find_time_zone(zone_name))) {
      return send_error(*client, "bad_request", "tz: " + unknown_time_zone(zone_name));
    }
  }
  auto sub = std::make_shared<Subscription>();
  sub->client = client;
  sub->topic = topic;
  sub->zone = zone;
  const Actor& a = client->actor();
  // Numbers are the same for every reader of a topic in a zone: one message for all of them.
  sub->view_key = zone ? topic + '\x1f' + zone_name : topic;
  if (!numbers_topic(topic)) {
    auto add = [&](std::string_view part) {
      sub->view_key += '\x1f';
      sub->view_key += part;
    };
    add(a.id);
    if (a.admin) add("a");
    if (a.auditor) add("u");
    if (a.portal_customer) add("p");
    for (const auto& role : a.roles) add(role);
  }
  uint64_t until;
  {
    std::lock_guard lk(mu_);
    // Everything applied so far is the replay's; everything applied later reaches this
    // subscription live. Both sides of the seam are decided under one lock. Listening is said
    // first: a batch that began before it and copies nothing is finished before applied_position
    // answers (ReadModel::on_ticket_applied), so it falls on the replay's side.
    listening_.store(true);
    until = model_.applied_position();
    // A client may have seen positions the views have not applied yet (its own command's): it
    // asked for what comes after them.
    sub->replay_until = from ? std::max(until, static_cast<uint64_t>(from->as_number())) : until;
    sub->replaying = from != nullptr;
    subs_[client.get()][topic] = sub;
    JsonWriter w;
    w.begin_object().key("op").string("subscribed").key("topic").string(topic);
    w.key("position").number(until).end_object();
    client->send(w.take());
    if (from) {
      // Join replays that have finished before starting another.
      std::erase_if(replays_, [](Replay& r) {
        if (!r.done->load()) return false;
        r.thread.join();
        return true;
      });
      auto done = std::make_shared<std::atomic<bool>>(false);
      replays_.push_back(
          {std::thread([this, sub, done, start = static_cast<uint64_t>(from->as_number())] {
             pthread_setname_np(pthread_self(), "stream-replay");
             replay(sub, start);
             done->store(true);
           }),
           done});
    } else if (numbers_topic(topic)) {
      // A dashboard gets the current numbers at once, then every change.
      Event now{until, "", {}, {}, {}};
      std::string current = message_for(*sub, *client, now);
      sub->last_numbers = numbers_of(current);
      client->send(std::move(current));
    }
  }
}

void StreamHub::on_close(const StreamClient* client) {
  std::lock_guard lk(mu_);
  subs_.erase(client);
  listening_.store(!subs_.empty());
}

void StreamHub::on_ticket_event(uint64_t position, const std::string& type,
                                std::vector<AssigneeSpec> before, const TicketState& after,
                                const Value& notification) {
  {
    std::lock_guard lk(mu_);
    if (subs_.empty()) return;  // nobody listens: no copies
    queue_.push_back({position, type, std::move(before), after, notification});
    last_queued_ = position;
  }
  cv_.notify_one();
}

std::string StreamHub::message_for(const Subscription& s, const StreamClient& c, const Event& e) {
  const Actor& actor = c.actor();
  if (numbers_topic(s.topic)) {
    if (!e.notification.is_null()) return "";  // an outcome moves no numbers
    JsonWriter w;
    w.begin_object().key("topic").string(s.topic).key("position").number(e.position);
    if (s.topic.rfind("report:", 0) == 0) {
      projections::ReportQuery q;
      q.name = s.topic.substr(7);
      projections::ReportTable table;
      model_.read([&](const View& v) {
        q.zone = zone_or_company(s.zone, v.catalog.settings());  // the company's as it is now
        return v.reports.run(q, v.catalog, projections::node_names(v.catalog), &table);
      });
      w.key("report");
      projections::write_report_json(w, table);
    } else {
      model_.read([&](const View& v) {
        // The latest version, so a dashboard republished meanwhile shows as it is now.
        const DashboardDef* d = v.catalog.dashboard(s.topic.substr(10));
        if (!d) return 0;
        w.key("dashboard").begin_object();
        projections::write_dashboard_members(w, *d, v, clock_());
        w.end_object();
        return 0;
      });
    }
    w.end_object();
    return w.take();
  }
  if (s.topic.rfind("ticket:", 0) == 0 && s.topic.substr(7) != e.after.id) return "";
  if (s.topic == "inbox") {
    // Arriving in the caller's inbox, or leaving it.
    if (!in_inbox_of(e.after, actor) && !is_among(e.inbox_holders_before, actor)) return "";
  }
  JsonWriter w;
  w.begin_object().key("topic").string(s.topic).key("position").number(e.position);
  w.key("type").string(e.type).key("ticket");
  model_.read([&](const projections::ReadModel::View& v) {
    write_ticket_view(w, e.after, v.catalog, v.attachments, actor, clock_());
    return 0;
  });
  if (!e.notification.is_null()) {
    w.key("notification");
    e.notification.write(w);
  }
  w.end_object();
  return w.take();
}

void StreamHub::deliver(const std::vector<Event>& events) {
  // Who gets these events is decided under the lock; the messages, which read the model and
  // write JSON, are built outside it, so the projection thread (on_ticket_event) never waits for
  // a fan-out. Replay holding and report de-duplication are decided under the lock again.
  std::vector<std::pair<SubPtr, std::shared_ptr<StreamClient>>> targets;
  {
    std::lock_guard lk(mu_);
    for (auto& [client_ptr, topics] : subs_) {
      for (auto& [topic, sub] : topics) {
        if (auto client = sub->client.lock()) targets.emplace_back(sub, std::move(client));
      }
    }
  }
  // Numbers are read from the model as it is now, so the batch's last change gives them all.
  size_t last_change = events.size();
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].notification.is_null()) last_change = i;
  }
  // messages[e][t]: event e's message for target t (null: none), shared by equal view keys.
  std::vector<std::vector<StreamMessage>> messages(events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    std::unordered_map<std::string_view, StreamMessage> built;
    messages[i].reserve(targets.size());
    for (const auto& [sub, client] : targets) {
      const bool numbers = numbers_topic(sub->topic);
      if (e.refresh ? !numbers
                    : e.position <= sub->replay_until ||  // the replay's (or seen before)
                          (i != last_change && numbers)) {
        messages[i].push_back(nullptr);
        continue;
      }
      auto [it, fresh] = built.try_emplace(sub->view_key);
      if (fresh) {
        std::string text = message_for(*sub, *client, e);
        if (!text.empty()) it->second = std::make_shared<const std::string>(std::move(text));
      }
      messages[i].push_back(it->second);
    }
  }
  std::lock_guard lk(mu_);
  for (size_t t = 0; t < targets.size(); ++t) {
    auto& [sub, client] = targets[t];
    std::vector<StreamMessage> out;
    for (size_t i = 0; i < events.size(); ++i) {
      StreamMessage& msg = messages[i][t];
      if (!msg || (events[i].refresh && sub->replaying)) continue;  // a replay ends with numbers
      if (numbers_topic(sub->topic)) {
        // Numbers only move when they do: send changes, not every event.
        std::string numbers = numbers_of(*msg);
        if (numbers == sub->last_numbers) continue;
        sub->last_numbers = std::move(numbers);
      }
      (sub->replaying ? sub->held : out).push_back(std::move(msg));
    }
    if (!out.empty()) client->send(std::move(out));
  }
}

void StreamHub::refresh_numbers() {
  {
    std::lock_guard lk(mu_);
    queue_refresh();
  }
  cv_.notify_one();
}

void StreamHub::queue_refresh() {
  bool numbers = false;
  for (const auto& [client, topics] : subs_) {
    for (const auto& [topic, sub] : topics) numbers = numbers || numbers_topic(topic);
  }
  if (!numbers) return;
  Event e{std::max(last_queued_, model_.applied_position()), "", {}, {}, {}};
  e.refresh = true;
  queue_.push_back(std::move(e));
}

void StreamHub::run() {
  using namespace std::chrono;
  std::unique_lock lk(mu_);
  while (true) {
    // A moment past the next quarter-hour of UTC, so that the clock reads the new day then.
    using Quarters = duration<int64_t, std::ratio<900>>;
    const auto wake = floor<Quarters>(system_clock::now()) + Quarters(1) + milliseconds(5);
    if (!cv_.wait_until(lk, wake, [&] { return stopping_ || !queue_.empty(); })) {
      queue_refresh();
      continue;
    }
    if (stopping_) return;
    std::vector<Event> events(std::make_move_iterator(queue_.begin()),
                              std::make_move_iterator(queue_.end()));
    queue_.clear();
    lk.unlock();
    deliver(events);
    lk.lock();
  }
}

// Sends what the client missed: every event after `from` up to the seam, each with the ticket as it
// was right after that event (folded from the ticket's own stream), then the live messages held
// meanwhile, in order.
void StreamHub::replay(SubPtr sub, uint64_t from) {
  auto client = sub->client.lock();
  if (!client) return;
  std::unordered_map<std::string, TicketState> states;
  uint64_t until = sub->replay_until;
  uint64_t at = from;
  while (at < until) {
    auto s = log_.read_all(at, 4096, [&](const storage::RecordedEvent& r) {
      if (r.position() > until) return false;
      at = r.position();
      const bool outcome = r.stream() == kOutboxStream;
      if (!is_ticket_stream(r.stream()) && !outcome) return true;
      DomainEvent d;
      if (!projections::to_domain_event(r, &d)) return true;
      std::string id = outcome ? d.data.string_or("ticket") : std::string(ticket_id_of(r.stream()));
      auto it = states.find(id);
      if (it == states.end()) {
        // First sight of this ticket in the replay: fold its stream up to just before here.
        TicketState t;
        log_.read_stream(ticket_stream(id), 1, SIZE_MAX, [&](const storage::RecordedEvent& prior) {
          if (prior.position() >= r.position()) return false;
          DomainEvent p;
          if (projections::to_domain_event(prior, &p)) evolve_in_place(t, p);
          return true;
        });
        it = states.emplace(id, std::move(t)).first;
      }
      if (outcome && !it->second.exists()) return true;  // not a ticket's
      Event e{r.position(), d.type, inbox_holders(it->second), {}, {}};
      if (outcome) {
        e.notification = notification_outcome(d);
      } else {
        evolve_in_place(it->second, d);
      }
      e.after = it->second;
      std::string msg = message_for(*sub, *client, e);
      if (!msg.empty() && !numbers_topic(sub->topic)) client->send(std::move(msg));
      return true;
    });
    if (!s.ok()) break;
    if (at < until && at == from) break;  // nothing readable: do not spin
    from = at;
  }
  std::lock_guard lk(mu_);
  if (numbers_topic(sub->topic)) {
    // Numbers' history is their current value: sent once, as of the seam.
    Event now{until, "", {}, {}, {}};
    std::string msg = message_for(*sub, *client, now);
    sub->last_numbers = numbers_of(msg);
    client->send(std::move(msg));
  }
  if (!sub->held.empty()) client->send(std::exchange(sub->held, {}));
  sub->replaying = false;
}

}  // namespace ticketd::api
