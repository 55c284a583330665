#pragma once
// Failed sign-ins, per user name: after a few in a row the name is locked for a while, longer
// with each further failure, so that guessing passwords is slow and costs the server no argon2
// hash per guess. A success clears the name. Names that do not exist are counted alike, so a
// lock says nothing about which exist. (A lock is also a way to keep someone out for minutes:
// the cap keeps that short.)
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
};

class SignInGuard {
 public:
  using Clock = std::chrono::steady_clock;
  explicit SignInGuard(SignInGuardOptions options = {}) : options_(options) {}

  // 0 when `user` may try now, else the seconds until it may.
  int64_t retry_after(const std::string& user, Clock::time_point now);
  void failed(const std::string& user, Clock::time_point now);
  void succeeded(const std::string& user);

 private:
  struct Failures {
    int count = 0;
    Clock::time_point locked_until{};
  };
  SignInGuardOptions options_;
  std::mutex mu_;
  std::unordered_map<std::string, Failures> failures_;
};

}  // namespace ticketd::api
