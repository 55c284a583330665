#include "server/process_signals.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace ticketd::server {

ProcessSignals::ProcessSignals() {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  thread_ = std::thread([this] { take_signals(); });
}

ProcessSignals::~ProcessSignals() {
  {
    std::lock_guard lk(mu_);
    closing_ = true;
  }
  // One of its own signals, sent to that thread alone, ends its wait.
  pthread_kill(thread_.native_handle(), SIGHUP);
  thread_.join();
}

void ProcessSignals::on_stop(Handler handler) {
  std::lock_guard lk(mu_);
  on_stop_ = std::move(handler);
}

void ProcessSignals::on_hangup(Handler handler) {
  std::lock_guard lk(mu_);
  on_hangup_ = std::move(handler);
}

void ProcessSignals::take_signals() {
  pthread_setname_np(pthread_self(), "signals");
  for (;;) {
    int signal = 0;
    if (sigwait(&signals_, &signal) != 0) continue;
    std::lock_guard lk(mu_);
    if (closing_) return;
    if (signal == SIGHUP) {
      if (on_hangup_) on_hangup_(signal);
    } else if (on_stop_) {
      on_stop_(signal);
    } else {
      spdlog::warn("signal {} before the server was ready: exiting at once", signal);
      spdlog::default_logger()->flush();
      // Ended by the signal itself, as its default action would: a shell or a supervisor reads
      // the status as that stop, not as a failure.
      ::signal(signal, SIG_DFL);
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, signal);
      pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
      raise(signal);
      std::_Exit(128 + signal);  // not reached
    }
  }
}

}  // namespace ticketd::server
