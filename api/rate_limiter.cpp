#include "api/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace ticketd::api {

int64_t RateLimiter::retry_after(const std::string& caller,
                                 std::chrono::steady_clock::time_point now) {
  if (rate_ <= 0) return 0;
  std::lock_guard lk(mu_);
  if (buckets_.size() > 100000)
    buckets_.clear();  // bounded memory; a refill for everyone is harmless
  auto [it, fresh] = buckets_.try_emplace(caller, Bucket{burst_, now});
  Bucket& b = it->second;
  if (!fresh) {
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * rate_);
    b.last = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return 0;
  }
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - b.tokens) / rate_)));
}

}  // namespace ticketd::api
