// Which address a request is counted as coming from: the peer's, or behind a trusted proxy the
// one that proxy saw.
#include "api/client_address.h"

#include <gtest/gtest.h>

namespace ticketd::api {
namespace {

const std::set<std::string> kProxies = {"10.0.0.2", "10.0.0.3"};

TEST(ClientAddress, AnUntrustedPeerIsTheClientWhateverItForwards) {
  EXPECT_EQ(client_address("203.0.113.9", "198.51.100.1", kProxies), "203.0.113.9");
  EXPECT_EQ(client_address("203.0.113.9", "", {}), "203.0.113.9");
}

TEST(ClientAddress, BehindTrustedProxiesTheRightmostUntrustedEntry) {
  EXPECT_EQ(client_address("10.0.0.2", "198.51.100.1", kProxies), "198.51.100.1");
  // The client wrote the first entry itself; the proxies appended the rest.
  EXPECT_EQ(client_address("10.0.0.2", "1.2.3.4, 198.51.100.1, 10.0.0.3", kProxies),
            "198.51.100.1");
  EXPECT_EQ(client_address("10.0.0.2", " 2001:db8::1 ,", kProxies), "2001:db8::1");
}

TEST(ClientAddress, WithoutAnUntrustedEntryThePeer) {
  EXPECT_EQ(client_address("10.0.0.2", "", kProxies), "10.0.0.2");
  EXPECT_EQ(client_address("10.0.0.2", "10.0.0.3, ,", kProxies), "10.0.0.2");
}

TEST(ClientAddress, AnOverlongEntryIsCut) {
  std::string forged(1000, 'x');
  EXPECT_EQ(client_address("10.0.0.2", forged, kProxies).size(), 64u);
}

}  // namespace
}  // namespace ticketd::api
