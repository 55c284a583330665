#pragma once
// SIGINT, SIGTERM and SIGHUP for the whole life of the process.

#include <functional>
#include <mutex>
#include <thread>

#include <signal.h>

namespace ticketd::server {

// Takes the process's SIGINT, SIGTERM and SIGHUP on a thread of its own, with sigwait(), from its
// construction to the program's end. The constructor blocks the three in the calling thread, and
// every thread started after it inherits that: no thread ever takes one with its default action,
// which ends the process at whatever moment the signal comes. A handler installed only while the
// server runs left two such moments: a SIGTERM between "serving" and the handler's installation,
// and a SIGHUP after a stop removed the handler, which killed the process in the middle of its
// final snapshot.
//
// Construct it first thing in main(), before any thread is started (a thread started earlier
// would take the signals itself). The signals stay blocked after its destruction: one arriving
// then waits, unseen, for the process to end.
//
// It also ignores SIGPIPE for good: a write to a pipe nobody reads any more (the reader of the
// server's output gone) fails with EPIPE instead of ending the process. Sockets never raise it
// (Asio sends with MSG_NOSIGNAL); the log's output did.
class ProcessSignals {
 public:
  // Runs on the signals' thread with the signal taken. A change of handlers waits for a handler
  // running, so a handler must not change them itself.
  using Handler = std::function<void(int signal)>;

  ProcessSignals();
  ~ProcessSignals();
  ProcessSignals(const ProcessSignals&) = delete;
  ProcessSignals& operator=(const ProcessSignals&) = delete;

  // What SIGINT and SIGTERM do from now on. Until a handler is set, either ends the process at
  // once, by the signal's default action: nothing that a stop would finish is running yet, and
  // the log loses nothing acknowledged whenever the process ends.
  void on_stop(Handler handler);
  // What SIGHUP does from now on; until a handler is set (or with an empty one), nothing.
  void on_hangup(Handler handler);

 private:
  void take_signals();

  sigset_t signals_;
  std::mutex mu_;  // held while a handler runs
  Handler on_stop_;
  Handler on_hangup_;
  bool closing_ = false;
  std::thread thread_;
};

}  // namespace ticketd::server
