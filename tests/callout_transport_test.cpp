// The e-mail as it goes over SMTP: headers, a UTF-8 subject as RFC 2047 encoded-words that never
// split a character, and a base64 body.
#include <gtest/gtest.h>
#include <sodium.h>

#include "api/callout_transport.h"
#include "domain/time_format.h"

namespace ticketd::api {
namespace {

std::string unbase64(const std::string& text) {
  std::string out(text.size(), '\0');
  size_t len = 0;
  EXPECT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                              text.size(), "\r\n", &len, nullptr, sodium_base64_VARIANT_ORIGINAL),
            0);
  out.resize(len);
  return out;
}

TEST(Mail, HeadersSubjectAndBody) {
  std::string subject = "工单 T-000001 通知:客户华东精密机械有限公司的打印机卡纸,请尽快处理";
  std::string text = "新工单 T-000001:华东精密机械有限公司\n第二行";
  std::string m =
      format_mail("tickets@example.com", {"sun@example.com", "li@example.com"}, subject, text,
                  "ticketd-notification-25@ticketd", *parse_rfc3339("2026-11-30T09:32:25Z"));
  size_t blank = m.find("\r\n\r\n");
  ASSERT_NE(blank, std::string::npos);
  std::string headers = m.substr(0, blank + 2), body = m.substr(blank + 4);
  EXPECT_NE(headers.find("Date: Mon, 30 Nov 2026 09:32:25 +0000\r\n"), std::string::npos);
  EXPECT_NE(headers.find("From: tickets@example.com\r\n"), std::string::npos);
  EXPECT_NE(headers.find("To: sun@example.com, li@example.com\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Message-ID: <ticketd-notification-25@ticketd>\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Content-Type: text/plain; charset=UTF-8\r\n"), std::string::npos);

  // The subject: folded encoded-words, each whole UTF-8, together the subject.
  size_t at = headers.find("Subject: ") + 9;
  std::string decoded;
  size_t words = 0;
  while (true) {
    size_t start = headers.find("=?UTF-8?B?", at);
    if (start == std::string::npos || start > headers.find("\r\nMessage-ID")) break;
    size_t end = headers.find("?=", start + 10);
    std::string word = unbase64(headers.substr(start + 10, end - start - 10));
    EXPECT_NE((static_cast<unsigned char>(word.front()) & 0xC0), 0x80u) << "split character";
    decoded += word;
    at = end + 2;
    ++words;
  }
  EXPECT_GT(words, 1u);
  EXPECT_EQ(decoded, subject);
  for (size_t line = 0; line < body.size();) {
    size_t eol = body.find("\r\n", line);
    EXPECT_LE(eol - line, 76u);
    line = eol + 2;
  }
  EXPECT_EQ(unbase64(body), text);
}

// Values from `printf '%s' "<timestamp>.<body>" | openssl dgst -sha256 -hmac <secret>`.
TEST(Webhook, SignatureIsHmacSha256OfTimestampAndBody) {
  EXPECT_EQ(
      webhook_signature("whsec-测试", 1764523200, R"({"id":"7","text":"工单 T-000001 已创建"})"),
      (std::vector<std::string>{
          "X-Ticketd-Timestamp: 1764523200",
          "X-Ticketd-Signature: "
          "sha256=04e245c8ec757219285b3cccb6e20747a4329de633533573c09e87af635e951e"}));
  // A secret longer than SHA-256's block is hashed first, as HMAC says.
  EXPECT_EQ(webhook_signature(std::string(100, 'k'), 1, "")[1],
            "X-Ticketd-Signature: "
            "sha256=f380fa061ddac7555fce09c4f9d5ba3c4d7eb9115eaa097dd2c14988a18ae793");
}

}  // namespace
}  // namespace ticketd::api
