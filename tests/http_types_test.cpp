// How a download is named: RFC 6266's UTF-8 name for browsers that read it, an ASCII one for the
// rest, and nothing a header value could be broken out of.
#include "api/http_types.h"

#include <gtest/gtest.h>

namespace ticketd::api {
namespace {

TEST(ContentDisposition, NamesTheFileBothWays) {
  EXPECT_EQ(content_disposition("inline", "photo.png"),
            "inline; filename=\"photo.png\"; filename*=UTF-8''photo.png");
  EXPECT_EQ(content_disposition("attachment", "说明书 v2.pdf"),
            "attachment; filename=\"___ v2.pdf\"; "
            "filename*=UTF-8''%E8%AF%B4%E6%98%8E%E4%B9%A6%20v2.pdf");
  EXPECT_EQ(content_disposition("attachment", "a\"b\\c;d=e'f%.txt"),
            "attachment; filename=\"a_b_c;d=e'f%.txt\"; "
            "filename*=UTF-8''a%22b%5Cc%3Bd%3De%27f%25.txt");
}

}  // namespace
}  // namespace ticketd::api
