#pragma once
// Threads for the queries that scan the views (a listing considers every ticket: a search over a
// million took 0.3 s). Run on a connection's thread, such a query kept every other request of the
// connections that thread serves waiting for it, submissions included; here those threads stay
// free to read requests and write answers meanwhile.
#include <cstddef>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>

#include "api/callout_threads.h"

namespace ticketd::api {

struct QueryThreadsOptions {
  int threads = 1;          // at least one
  size_t max_waiting = 64;  // queries posted and not started yet; more are refused
  // Of those, the most one caller may have waiting: a dashboard refreshing in a loop takes its
  // own turns, not everyone's.
  size_t max_waiting_per_caller = 4;
};

class QueryThreads {
 public:
  explicit QueryThreads(QueryThreadsOptions options);
  ~QueryThreads();  // runs every query posted, then joins the threads
  QueryThreads(const QueryThreads&) = delete;
  QueryThreads& operator=(const QueryThreads&) = delete;

  enum class Posted {
    kYes,
    kBusy,        // max_waiting queries wait already: not run
    kCallerBusy,  // max_waiting_per_caller of the caller's wait already: not run
  };
  // Runs `query` for `caller` on one of the threads, in the order posted.
  Posted post(const std::string& caller, std::function<void()> query);

 private:
  struct Waiting {
    std::string caller;
    std::function<void()> query;
  };
  const QueryThreadsOptions options_;
  CalloutThreads threads_;
  std::deque<Waiting> waiting_;                         // under threads_.mu
  std::unordered_map<std::string, size_t> waiting_of_;  // caller -> queries in waiting_
};

}  // namespace ticketd::api
