#pragma once
// The lookups' worker: follows the log for LookupRequested events (a rule's "lookup" action),
// GETs each from its source (api/callout_transport.h), and records the answer on the ticket
// through the ApplyLookup command: LookupCompleted and the fields it fills, or LookupFailed. A
// failure worth retrying (a timeout, a refused connection, a 5xx) is tried again with doubling
// delays, the rest fail at once.
//
// What is still to be answered is the tickets' own state (TicketState::lookups_pending): the
// worker keeps only a checkpoint below the oldest lookup it has not settled, and after a restart
// reads the requests from there again, asking only those still pending. A crash between an answer
// and its record asks again; the record itself is once only (its event ids derive from the lookup).
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "api/api.h"
#include "api/callout_threads.h"
#include "api/callout_transport.h"
#include "api/metrics.h"
#include "projections/read_model.h"
#include "storage/event_log.h"

namespace ticketd::api {

struct LookupOptions {
  // Source name -> base URL (http or https); a lookup's path and query are added to it. Default:
  // none (the worker is not started).
  std::map<std::string, std::string> sources;
  // Source name -> a token sent as `Authorization: Bearer …` (sources that want one).
  std::map<std::string, std::string> tokens;
  // Attempts of a lookup that keeps failing in a way worth retrying. Default 5.
  int max_attempts = 5;
  // Before the first retry; doubling after each. Default 2 s.
  std::chrono::milliseconds first_retry{2000};
  // Each GET, connecting included. Default 10 s.
  long timeout_seconds = 10;
  // GETs under way at once: a source that hangs holds one fetcher. Default 2.
  int fetchers = 2;
  // How often the checkpoint is saved while it moves (and at a clean stop). Default 5 s.
  std::chrono::milliseconds checkpoint_every{5000};
};

class LookupWorker {
 public:
  // Starts following the log from its checkpoint (the log's start, the first time: requests made
  // while no worker ran are answered too).
  LookupWorker(storage::EventLog& log, projections::ReadModel& model, Api& api, Metrics& metrics,
               LookupOptions options);
  ~LookupWorker();
  // Abandons the GETs under way (they are asked again after the restart), waits for the answers
  // being recorded, and saves the checkpoint.
  void stop();

 private:
  struct Request {
    uint64_t position = 0;  // of the LookupRequested event
    std::string ticket;
    ApplyLookup answer;  // lookup and rule set; fields or error once fetched
    std::string source, path;
    StringPairs query, fill;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
  };

  void on_event(const storage::RecordedEvent& e);
  void run(bool keeps_checkpoint);
  void answer(Request r);
  void save_checkpoint();

  storage::EventLog& log_;
  projections::ReadModel& model_;
  Api& api_;
  Metrics& metrics_;
  LookupOptions options_;
  TransportOptions transport_;

  CalloutThreads callouts_;  // its mutex guards what follows
  std::deque<Request> queue_;
  std::set<uint64_t> unsettled_;  // positions of the requests queued, being fetched or recorded
  uint64_t seen_ = 0;             // the last event the subscription delivered
  uint64_t saved_ = 0;            // the checkpoint on disk
  std::unique_ptr<storage::Subscription> subscription_;
};

}  // namespace ticketd::api
