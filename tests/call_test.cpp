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

}  // namespace
}  // namespace ticketd::api
