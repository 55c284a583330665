#pragma once
// Threads for the queries that scan the views (a listing considers every ticket: a search over a
// million took 0.3 s). Run on a connection's thread, such a query kept every other request of the
// connections that thread serves waiting for it, submissions included; here those threads stay
// free to read requests and write answers meanwhile.
#include <cstddef>
#include <deque>
#include <functional>

#include "api/callout_threads.h"

namespace ticketd::api {

struct QueryThreadsOptions {
  int threads = 1;          // at least one
  size_t max_waiting = 64;  // queries posted and not started yet; more are refused
};

class QueryThreads {
 public:
  explicit QueryThreads(QueryThreadsOptions options);
  ~QueryThreads();  // runs every query posted, then joins the threads
  QueryThreads(const QueryThreads&) = delete;
  QueryThreads& operator=(const QueryThreads&) = delete;

  // Runs `query` on one of the threads, in the order posted. False, leaving it unrun, when
  // max_waiting queries wait already (the caller answers 503).
  bool post(std::function<void()> query);

 private:
  const QueryThreadsOptions options_;
  CalloutThreads threads_;
  std::deque<std::function<void()>> waiting_;  // under threads_.mu
};

}  // namespace ticketd::api
