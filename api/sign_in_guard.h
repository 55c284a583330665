#pragma once
// Failed sign-ins, per key: after a few in a row the key is locked for a while, longer with each
// further failure, so that guessing passwords is slow and costs the server no argon2 hash per
// guess. The server keeps two: one per user name, which a success clears (names that do not
// exist are counted alike, so a lock says nothing about which exist), and one per client address
// against one password tried on many names, which only time clears: a success with an account of
// one's own must not buy more guesses at the others. (A lock is also a way to keep someone out
// for minutes: the cap keeps that short.)
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ticketd::api {

struct SignInGuardOptions {
  int free_failures = 5;                // failures in a row before the first lock
  std::chrono::seconds first_lock{30};  // doubled with each failure after that
  std::chrono::seconds longest_lock{15 * 60};
  size_t max_names = 100000;  // forgotten all at once beyond this (bounded memory)
  // A key's failures start again from zero once its last one is this old; 0: only a success
  // clears them.
  std::chrono::seconds forget_after{0};
};

class SignInGuard {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SignInGuard(SignInGuardOptions options = {}) : options_(options) {}

  // 0 when `key` may try now, else the seconds until it may.
  int64_t retry_after(const std::string& key, Clock::time_point now);
  void failed(const std::string& key, Clock::time_point now);
  void succeeded(const std::string& key);

 private:
  struct Failures {
    int count = 0;
    Clock::time_point last{};
    Clock::time_point locked_until{};
  };
  bool forgotten(const Failures& f, Clock::time_point now) const {
    return options_.forget_after.count() > 0 && now - f.last >= options_.forget_after;
  }
  SignInGuardOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, Failures> failures_;
};

}  // namespace ticketd::api
