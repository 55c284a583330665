// What human text the server takes: no control characters (one line takes no line break), and
// phone numbers and e-mail addresses as notifications can use them.
#include "domain/text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace ticketd {
namespace {

using namespace std::string_literals;

TEST(Text, ControlCharactersAreNamedWithTheirPlace) {
  EXPECT_EQ(control_character_in("华东精密机械 Co. é\u00a0", TextLines::kOne), std::nullopt);
  EXPECT_EQ(control_character_in("第一行\r\n第二行\t完", TextLines::kMany), std::nullopt);
  EXPECT_EQ(control_character_in("客户\n名称", TextLines::kOne),
            "has a line break at character 3: one line only");
  EXPECT_EQ(control_character_in("ab\r", TextLines::kOne),
            "has a line break at character 3: one line only");
  EXPECT_EQ(control_character_in("x\ty", TextLines::kOne),
            "has the control character U+0009 at character 2");
  EXPECT_EQ(control_character_in("x\0y"s, TextLines::kOne),
            "has the control character U+0000 at character 2");
  EXPECT_EQ(
      control_character_in("红色\x1b[31m", TextLines::kMany),
      "has the control character U+001B at character 3 (only line breaks and tabs are taken)");
  EXPECT_EQ(
      control_character_in("a\x7f", TextLines::kMany),
      "has the control character U+007F at character 2 (only line breaks and tabs are taken)");
  // C1 controls are two bytes in UTF-8 (C2 80..C2 9F); C2 A0, the no-break space, is not one.
  EXPECT_EQ(
      control_character_in("行\u0085尾", TextLines::kMany),
      "has the control character U+0085 at character 2 (only line breaks and tabs are taken)");
  EXPECT_EQ(control_character_in("\u009f", TextLines::kOne),
            "has the control character U+009F at character 1");
  EXPECT_EQ(control_character_in("\u00a0\u00ff\u0100", TextLines::kOne), std::nullopt);
}

TEST(Text, SearchesFoldLatinLettersOnly) {
  EXPECT_TRUE(TextSearch("acme").found_in("ACME Ltd"));
  EXPECT_TRUE(TextSearch("Ltd").found_in("Acme ltd"));
  EXPECT_TRUE(TextSearch("华东").found_in("华东精密机械有限公司"));
  EXPECT_TRUE(TextSearch("精密Ma").found_in("华东精密MACHINE"));
  EXPECT_TRUE(TextSearch("").found_in(""));
  EXPECT_TRUE(TextSearch("aab").found_in("aaab"));
  EXPECT_FALSE(TextSearch("acme").found_in("acm"));
  EXPECT_FALSE(TextSearch("华西").found_in("华东精密机械"));
  // Only A-Z fold: '@' (0x40) is not '`' (0x60), nor 'é' 'É', byte for byte.
  EXPECT_FALSE(TextSearch("a@b").found_in("A`B"));
  EXPECT_FALSE(TextSearch("xé").found_in("XÉ"));
  EXPECT_EQ(TextSearch("Acme 华东").needle(), "acme 华东");
  std::string long_needle(300, 'q');
  long_needle += "Z";
  EXPECT_TRUE(TextSearch(long_needle).found_in("x" + std::string(300, 'Q') + "z!"));
  EXPECT_FALSE(TextSearch(long_needle).found_in(std::string(301, 'q')));
}

TEST(Text, SearchesFindWhatAPlainSearchOfFoldedTextFinds) {
  // Over a small alphabet (letters of both cases, a digit, UTF-8 bytes), where near misses and
  // overlapping matches are common.
  const std::string alphabet = "aAbBz9\xe5\x8d";
  std::mt19937 rng(7);
  auto text_of = [&](size_t n) {
    std::string s;
    for (size_t i = 0; i < n; ++i) s += alphabet[rng() % alphabet.size()];
    return s;
  };
  auto lower = [](std::string s) {
    for (char& c : s) c = ascii_lower(c);
    return s;
  };
  for (int round = 0; round < 20000; ++round) {
    const std::string needle = text_of(1 + rng() % 5), text = text_of(rng() % 24);
    const bool expected = lower(text).find(lower(needle)) != std::string::npos;
    ASSERT_EQ(TextSearch(needle).found_in(text), expected) << needle << " in " << text;
  }
}

// A search box's words: split at the spaces blank() knows, none empty.
TEST(Text, WordsAreWhatSpacesPartAndNothingElse) {
  using Words = std::vector<std::string_view>;
  EXPECT_EQ(words(""), Words{});
  EXPECT_EQ(words(" \t\u3000\u00a0 "), Words{});
  EXPECT_EQ(words("华东"), Words{"华东"});
  EXPECT_EQ(words("  华东 卡纸\u3000T-000012\u00a0acme\r\n"),
            (Words{"华东", "卡纸", "T-000012", "acme"}));
  // A character that holds a space's bytes as its own continuation bytes is not split: U+3080 む
  // (E3 82 80), U+4E00 一 (E4 B8 80).
  EXPECT_EQ(words("むx一"), Words{"むx一"});
}

TEST(Text, Utf8IsValidatedAndCounted) {
  EXPECT_TRUE(valid_utf8("说明书.pdf"));
  EXPECT_FALSE(valid_utf8("a\xff\xfe.txt"));
  EXPECT_FALSE(valid_utf8("\xe8\xaf"));  // a character cut short
  EXPECT_EQ(utf8_length("说明书.pdf"), 7u);
}

TEST(Text, PhonesAndEmailAddresses) {
  EXPECT_EQ(phone_number("+86 138-1234-5678"), "+86 138-1234-5678");
  // Landlines' area codes in parentheses; dots; what a full-width input method types.
  EXPECT_EQ(phone_number("(021) 6234 5678"), "(021) 6234 5678");
  EXPECT_EQ(phone_number("+86 (21) 6234-5678"), "+86 (21) 6234-5678");
  EXPECT_EQ(phone_number("138.1234.5678"), "138.1234.5678");
  EXPECT_EQ(phone_number("１３８１２３４５６７８"), "13812345678");
  EXPECT_EQ(phone_number("＋８６　１３８－１２３４－５６７８"), "+86 138-1234-5678");
  EXPECT_EQ(phone_number("（０２１）６２３４５６７８"), "(021)62345678");
  for (const char* bad : {"call me", "1234", "(021 6234 5678", "021) 6234 5678", "(021)(6234)5678",
                          "( 021) 6234 5678", "() 6234 5678", "138+1234+5678", " 13812345678",
                          "13812345678１２３４５", "１３８ｘ12345678", "電話 13812345678"}) {
    EXPECT_EQ(phone_number(bad), std::nullopt) << bad;
  }
  EXPECT_TRUE(valid_email("kefu@example.com.cn"));
  EXPECT_TRUE(valid_email("客服@例子.公司"));
  for (std::string bad :
       {"kefu@localhost"s, "a b@example.com"s, "a@b..com"s, "@example.com"s, "a\0b@example.com"s,
        "a@example.com\r\nRCPT TO:<x@y.z>"s, "a\x7f@example.com"s, "a\u0085@example.com"s}) {
    EXPECT_FALSE(valid_email(bad)) << bad;
  }
}

}  // namespace
}  // namespace ticketd
