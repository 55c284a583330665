#pragma once
// Live streams of API.md's WebSocket /api/v1/stream, without Beast: the hub keeps who is
// subscribed to what, turns applied ticket events into per-client messages (each client sees only
// what its permissions allow), and replays what a client missed with no gap and no duplicate at
// the seam. Work happens on the hub's own thread, never on the projection's.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "domain/ticket.h"
#include "domain/time_format.h"
#include "projections/read_model.h"
#include "storage/event_log.h"

namespace ticketd::api {

// A message's bytes, shared by every client it goes to.
using StreamMessage = std::shared_ptr<const std::string>;

// A connected client, as the hub sees it. send() must not block (queue, or close if full); the
// messages go out in order.
class StreamClient {
 public:
  virtual ~StreamClient() = default;
  virtual void send(std::vector<StreamMessage> messages) = 0;
  void send(std::string text) {
    send(std::vector<StreamMessage>{std::make_shared<const std::string>(std::move(text))});
  }
  virtual const Actor& actor() const = 0;
};

class StreamHub {
 public:
  using Clock = std::function<int64_t()>;  // now, in microseconds since the epoch
  // `clock` places "today" of dashboards and the SLA figures of ticket views: the system's clock
  // unless a test gives its own.
  StreamHub(storage::EventLog& log, projections::ReadModel& model, Clock clock = {});
  ~StreamHub();
  void stop();

  // Report and dashboard topics are looked at again, though no event moved them, and their
  // subscribers get a message where the numbers differ: a dashboard's window ends today, and
  // today changes at its zone's midnight. The hub's thread does this at every quarter-hour of
  // UTC, on which every zone's midnight falls.
  void refresh_numbers();

  // A client message ({"op":"subscribe"|"unsubscribe"|"ping",…}); answers go to the client.
  void on_message(const std::shared_ptr<StreamClient>& client, std::string_view text);
  void on_close(const StreamClient* client);

  // Whether anyone is subscribed: the read model copies no ticket for on_ticket_event otherwise.
  bool listening() const { return listening_.load(); }
  // Called by the projection thread after each applied ticket event, in position order, and
  // after each outcome of a ticket's notification (`notification` not null: what became of it).
  void on_ticket_event(uint64_t position, const std::string& type,
                       std::vector<AssigneeSpec> inbox_holders_before, const TicketState& after,
                       const Value& notification);

 private:
  struct Subscription {
    std::weak_ptr<StreamClient> client;
    std::string topic;
    // Live events at or below this position are the replay's; above it, live ones are buffered
    // until the replay is done, then delivered.
    uint64_t replay_until = 0;
    bool replaying = false;
    std::vector<StreamMessage> held;  // live messages waiting for the replay to finish
    std::string last_numbers;         // report and dashboard topics send only changes
    // A report topic's days: this zone's (the company's when null).
    const date::time_zone* zone = nullptr;
    // Subscriptions with equal keys (topic, and the client's identity and roles) get the same
    // bytes for an event: the message is built once per key.
    std::string view_key;
  };
  struct Event {
    uint64_t position;
    std::string type;
    std::vector<AssigneeSpec> inbox_holders_before;  // inbox_holders() before the event
    TicketState after;
    Value notification;    // a notification's outcome: the ticket is unchanged
    bool refresh = false;  // no event: numbers topics are looked at again (refresh_numbers)
  };
  using SubPtr = std::shared_ptr<Subscription>;

  void run();
  // Events in position order (what queued up while the last ones were delivered): each client
  // gets all of its messages for them in one send.
  void deliver(const std::vector<Event>& events);
  // The message for `e` to subscription `s`, or "" when the client may not see it.
  std::string message_for(const Subscription& s, const StreamClient& c, const Event& e);
  void replay(SubPtr sub, uint64_t from);
  void send_error(StreamClient& c, std::string_view code, std::string_view message);
  void queue_refresh();  // with mu_ held

  Clock clock_;
  storage::EventLog& log_;
  projections::ReadModel& model_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> queue_;
  uint64_t last_queued_ = 0;  // the position of the last event queued: a refresh's
  bool stopping_ = false;
  std::map<const StreamClient*, std::map<std::string, SubPtr>> subs_;  // client -> topic -> sub
  std::atomic<bool> listening_{false};                                 // !subs_.empty()
  struct Replay {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Replay> replays_;
  std::thread thread_;
};

}  // namespace ticketd::api
