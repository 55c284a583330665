#include "api/sign_in_guard.h"

#include <algorithm>

namespace ticketd::api {

int64_t SignInGuard::retry_after(const std::string& key, Clock::time_point now) {
  std::lock_guard lk(mu_);
  auto it = failures_.find(key);
  if (it == failures_.end() || it->second.locked_until <= now) return 0;
  auto left = std::chrono::ceil<std::chrono::seconds>(it->second.locked_until - now);
  return std::max<int64_t>(1, left.count());
}

void SignInGuard::failed(const std::string& key, Clock::time_point now) {
  std::lock_guard lk(mu_);
  if (failures_.size() >= options_.max_names && !failures_.count(key)) failures_.clear();
  Failures& f = failures_[key];
  if (forgotten(f, now)) f.count = 0;
  f.last = now;
  if (++f.count < options_.free_failures) return;
  auto lock = options_.first_lock;
  for (int i = options_.free_failures; i < f.count && lock < options_.longest_lock; ++i) lock *= 2;
  f.locked_until = now + std::min(lock, options_.longest_lock);
}

void SignInGuard::succeeded(const std::string& key) {
  std::lock_guard lk(mu_);
  failures_.erase(key);
}

}  // namespace ticketd::api
