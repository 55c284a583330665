#pragma once
// Which address a request came from, as the per-address sign-in limit and the access log count
// it.
#include <set>
#include <string>
#include <string_view>

namespace ticketd::api {

// `peer` is the connection's remote address. Behind a reverse proxy every connection comes from
// the proxy, so when `peer` is one of `trusted_proxies` the client is the right-most address in
// X-Forwarded-For (all such headers, joined with commas, in order) that is not itself a trusted
// proxy: each proxy appends the address it saw, and what stands left of the trusted ones'
// additions was sent by the client and proves nothing. From any other peer the header is
// ignored, or a client could name its own address.
std::string client_address(const std::string& peer, std::string_view forwarded_for,
                           const std::set<std::string>& trusted_proxies);

}  // namespace ticketd::api
