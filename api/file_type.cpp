#include "api/file_type.h"

#include <magic.h>

#include <mutex>

namespace ticketd::api {

std::optional<std::string> sniffed_media_type(std::string_view bytes) {
  // One cookie, loaded once (the compiled database is a few megabytes); a cookie is not safe to
  // share between threads, hence the lock. Uploads are few.
  static std::mutex mu;
  static magic_t cookie = [] {
    magic_t c = magic_open(MAGIC_MIME_TYPE | MAGIC_NO_CHECK_COMPRESS);
    if (c && magic_load(c, nullptr) != 0) {
      magic_close(c);
      c = nullptr;
    }
    return c;
  }();
  if (!cookie) return std::nullopt;
  std::lock_guard lk(mu);
  const char* type = magic_buffer(cookie, bytes.data(), bytes.size());
  if (!type) return std::nullopt;
  return std::string(type);
}

}  // namespace ticketd::api
