#pragma once
// Renders PDFs on a thread of its own: laying out CJK text and embedding font subsets takes
// milliseconds (the first print, loading the fonts, much longer), which must not hold up the
// HTTP threads serving everyone else. Jobs queue up to a bound; past it, submit() refuses.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace ticketd::api {

class Printer {
 public:
  explicit Printer(size_t max_queued = 32);
  // Runs the jobs still queued, then stops.
  ~Printer();
  Printer(const Printer&) = delete;
  Printer& operator=(const Printer&) = delete;

  // False (the job is not taken) when max_queued jobs are waiting already.
  bool submit(std::function<void()> job);

 private:
  void run();

  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ticketd::api
