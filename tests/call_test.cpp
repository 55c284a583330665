// What a request in flight tells about itself.
#include "api/call.h"

#include <gtest/gtest.h>

namespace ticketd::api {
namespace {

// Messages name the method the client sent. A view of a temporary made from the method (what
// `head ? "HEAD" : req.method` was) dangles as soon as it is returned.
TEST(Call, TheAskedMethodIsAViewOfTheRequestItself) {
  Call call;
  call.req.method = "PATCH";
  EXPECT_EQ(call.asked_method(), "PATCH");
  EXPECT_EQ(call.asked_method().data(), call.req.method.data());
  call.req.method = "GET";
  call.head = true;
  EXPECT_EQ(call.asked_method(), "HEAD");
}

// Sessions are stored by this hash (SessionStarted, SessionEnded): a log written by an earlier
// build must find its sessions under the same text. The digest is BLAKE2b-256 in lowercase hex,
// as Python's hashlib.blake2b(b"a token", digest_size=32).hexdigest() gives it.
TEST(Call, ATokensHashIsBlake2bInLowercaseHex) {
  EXPECT_EQ(token_hash("a token"),
            "04e733495032c560ee1d748a40fdb02efba68531c0110d8ec61f941dc3d7f1d6");
}

}  // namespace
}  // namespace ticketd::api
