#include "api/client_address.h"

#include "domain/text.h"

namespace ticketd::api {

std::string client_address(const std::string& peer, std::string_view forwarded_for,
                           const std::set<std::string>& trusted_proxies) {
  if (!trusted_proxies.count(peer)) return peer;
  // An address, IPv6 ones included, is at most 45 characters; a longer item is not one the
  // proxy wrote, and is taken as it is only up to this length.
  constexpr size_t kLongest = 64;
  while (!forwarded_for.empty()) {
    size_t comma = forwarded_for.rfind(',');
    std::string_view item =
        trim_ows(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for =
        comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    if (item.empty()) continue;
    std::string address(item.substr(0, kLongest));
    if (!trusted_proxies.count(address)) return address;
  }
  return peer;
}

}  // namespace ticketd::api
