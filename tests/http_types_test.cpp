// How a download is named: RFC 6266's UTF-8 name for browsers that read it, an ASCII one for the
// rest, and nothing a header value could be broken out of. Which Transfer-Encodings are read.
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

TEST(TransferCoding, ChunkedAloneOrNoneIsRead) {
  EXPECT_FALSE(refuse_transfer_coding(11, {}));
  EXPECT_FALSE(refuse_transfer_coding(11, {"chunked"}));
  EXPECT_FALSE(refuse_transfer_coding(11, {"Chunked"}));
  EXPECT_FALSE(refuse_transfer_coding(11, {" chunked\t"}));
  EXPECT_FALSE(refuse_transfer_coding(11, {", chunked,"}));  // empty list elements are allowed
}

TEST(TransferCoding, ABodyOfUnknownLengthIsRefusedAs400) {
  // Without chunked last the parser would take the body as empty and its bytes as the next
  // request on the connection.
  for (std::vector<std::string_view> lines : std::vector<std::vector<std::string_view>>{
           {"gzip"},
           {"identity"},
           {""},
           {"chunked, gzip"},
           {"chunked, chunked"},
           {"chunked", "chunked"},
           {"chunked;ext=1"},
           {"chunkedx"},
       }) {
    auto refusal = refuse_transfer_coding(11, lines);
    ASSERT_TRUE(refusal) << ::testing::PrintToString(lines);
    EXPECT_EQ(refusal->status, 400) << ::testing::PrintToString(lines);
    EXPECT_EQ(refusal->code, "bad_request");
  }
}

TEST(TransferCoding, HttpOneZeroHasNone) {
  EXPECT_FALSE(refuse_transfer_coding(10, {}));
  auto refusal = refuse_transfer_coding(10, {"chunked"});
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->status, 400);
  EXPECT_NE(refusal->message.find("HTTP/1.0"), std::string::npos) << refusal->message;
}

TEST(TransferCoding, AnotherCodingBeforeChunkedIs501NamingIt) {
  for (std::vector<std::string_view> lines : std::vector<std::vector<std::string_view>>{
           {"gzip, chunked"},
           {"gzip", "chunked"},
           {"gzip ,\tChunked"},
       }) {
    auto refusal = refuse_transfer_coding(11, lines);
    ASSERT_TRUE(refusal) << ::testing::PrintToString(lines);
    EXPECT_EQ(refusal->status, 501);
    EXPECT_EQ(refusal->code, "not_implemented");
    EXPECT_NE(refusal->message.find("zip\""), std::string::npos) << refusal->message;
  }
}

}  // namespace
}  // namespace ticketd::api
