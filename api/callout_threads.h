#pragma once
// The threads of a worker that follows the log and calls other systems (the outbox, the
// lookups): named threads that run until stop(), a flag that abandons a transfer under way
// (TransportOptions::cancel), and a count of the callbacks still owed to the worker (an append or
// a command completing on another thread), which stop() waits for before the worker goes away.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace ticketd::api {

struct CalloutThreads {
  // Runs `run(first)` on `count` threads (at least one) named `name`; `run` returns once it
  // sees `stopping` (under `mu`), woken through `cv`.
  void start(int count, const char* name, const std::function<void(bool first)>& run);
  // Sets `stopping` and `cancel`, joins the threads, then waits until nothing is owed. False when
  // stopped already.
  bool stop();

  mutable std::mutex mu;  // mutable: the workers' const queries lock it too
  std::condition_variable cv;
  bool stopping = false;  // under mu
  int owed = 0;           // under mu: callbacks that will still use the worker
  std::atomic<bool> cancel{false};

 private:
  std::vector<std::thread> threads_;
};

}  // namespace ticketd::api
