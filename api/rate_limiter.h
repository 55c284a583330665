#pragma once
// A token bucket per caller (bearer token): `rate` requests a second on average, bursts of
// `burst`. A refused request learns how long to wait.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace ticketd::api {

class RateLimiter {
 public:
  // rate 0: no limit.
  RateLimiter(double rate, double burst) : rate_(rate), burst_(burst) {}

  // 0 when the request may go ahead, else the seconds to wait (at least 1).
  int64_t retry_after(const std::string& caller, std::chrono::steady_clock::time_point now);

 private:
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  double rate_;
  double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace ticketd::api
