#include "domain/json_writer.h"

#include "domain/value.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <random>

namespace ticketd {
namespace {

TEST(JsonWriter, NestsAndPlacesCommas) {
  JsonWriter w;
  w.begin_object();
  w.key("a").number(int64_t{1});
  w.key("b").begin_array().string("x").boolean(true).null().number(1.5).end_array();
  w.key("c").begin_object().end_object();
  w.key("d").raw(R"({"k":[1,2]})");
  w.end_object();
  EXPECT_EQ(w.str(), R"({"a":1,"b":["x",true,null,1.5],"c":{},"d":{"k":[1,2]}})");
}

TEST(JsonWriter, KeysAndValuesThatNeedEscapesKeepTheirCommasAndColons) {
  // Plain text and text that needs escaping or a UTF-8 check are written by different paths; the
  // comma before and the colon after must come out the same from each.
  JsonWriter w;
  w.begin_object();
  w.key("plain").string("x\"y");
  w.key("客户").string("名称");
  w.key("k\n").begin_array().string("a").string("\xff").string("b").end_array();
  w.key("last").string("");
  w.end_object();
  EXPECT_EQ(w.str(),
            "{\"plain\":\"x\\\"y\",\"客户\":\"名称\",\"k\\n\":[\"a\",\"\xEF\xBF\xBD\",\"b\"],"
            "\"last\":\"\"}");
}

TEST(JsonWriter, AByteThatNeedsEscapingIsFoundAtAnyLengthAndPosition) {
  // Plain text is recognized a word of eight bytes at a time, the last word overlapping the one
  // before it or padded: a byte that needs escaping must be found wherever it sits.
  const std::pair<std::string, std::string> needs[] = {
      {"\"", "\\\""},      {"\\", "\\\\"}, {"\n", "\\n"},           {"\x7f", "\\u007f"},
      {"\x01", "\\u0001"}, {"é", "é"},     {"\xff", "\xEF\xBF\xBD"}};
  for (size_t length = 1; length <= 25; ++length) {
    for (size_t at = 0; at < length; ++at) {
      for (const auto& [byte, escaped] : needs) {
        std::string text(length - 1, 'a');
        text.insert(at, byte);
        std::string out;
        JsonWriter::append_quoted(out, text);
        EXPECT_EQ(out,
                  "\"" + std::string(at, 'a') + escaped + std::string(length - 1 - at, 'a') + "\"")
            << "length " << length << " at " << at;
      }
    }
    std::string out;
    JsonWriter::append_quoted(out, std::string(length, 'a'));
    EXPECT_EQ(out, "\"" + std::string(length, 'a') + "\"");
  }
  std::string out;
  JsonWriter::append_quoted(out, std::string_view());
  EXPECT_EQ(out, "\"\"");
}

TEST(JsonWriter, EscapesControlsAndKeepsUtf8) {
  std::string out;
  JsonWriter::append_quoted(out, "客户\"名称\"\\\n\t\x01\x7f");
  EXPECT_EQ(out, "\"客户\\\"名称\\\"\\\\\\n\\t\\u0001\\u007f\"");
}

TEST(JsonWriter, ReplacesMalformedUtf8) {
  struct Case {
    std::string in, out;
  } cases[] = {
      {"a\xff"
       "b",
       "\"a\xEF\xBF\xBD"
       "b\""},                                                       // invalid byte
      {"\xe5\xae", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},                  // truncated sequence
      {"\xc0\xaf", "\"\xEF\xBF\xBD\xEF\xBF\xBD\""},                  // overlong '/'
      {"\xed\xa0\x80", "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""},  // surrogate
      {"\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""},                  // emoji is fine
  };
  for (const auto& c : cases) {
    std::string out;
    JsonWriter::append_quoted(out, c.in);
    EXPECT_EQ(out, c.out);
  }
}

TEST(JsonWriter, MixedTextRoundTripsAndMalformedBytesAreReplaced) {
  // Strings built from pieces, each with what it must read back as: escapes, Chinese and emoji in
  // any order, malformed bytes anywhere (before, between and after well-formed text).
  struct Piece {
    std::string bytes, reads_back_as;
  };
  const std::string kReplacement = "\xEF\xBF\xBD";
  const Piece pieces[] = {
      {"T-0001 ", "T-0001 "},
      {"customer_name: ", "customer_name: "},
      {"\"", "\""},
      {"\\", "\\"},
      {"\n\t\x01\x7f", "\n\t\x01\x7f"},
      {"客户名称", "客户名称"},
      {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
      {"\xff", kReplacement},
      {"\xe5", kReplacement},
      {"\xc0\xaf", kReplacement + kReplacement},
  };
  std::mt19937 random(20261203);
  for (int round = 0; round < 2000; ++round) {
    std::string text, expected;
    for (int n = random() % 12; n > 0; --n) {
      const Piece& p = pieces[random() % std::size(pieces)];
      text += p.bytes;
      expected += p.reads_back_as;
    }
    std::string out;
    JsonWriter::append_quoted(out, text);
    Value parsed;
    std::string error;
    ASSERT_TRUE(parse_json(out, &parsed, &error)) << error << " in " << out;
    ASSERT_EQ(parsed.as_string(), expected) << out;
  }
}

TEST(JsonWriter, LargeNumbersStayParsable) {
  // Found by fuzz_json: the fixed form of -1.1e21 is an integer too large for strict parsers.
  const double numbers[] = {-1111111011111100088320.0, 1e300, 123.5, 9e15, -2.5e-7};
  JsonWriter w;
  w.begin_array();
  for (double d : numbers) w.number(d);
  w.end_array();
  EXPECT_EQ(w.str().find("88320"), std::string::npos) << w.str();  // no 22-digit integer
  Value parsed;
  std::string error;
  ASSERT_TRUE(parse_json(w.str(), &parsed, &error)) << error << " in " << w.str();
  ASSERT_EQ(parsed.as_array().size(), std::size(numbers));
  for (size_t i = 0; i < std::size(numbers); ++i)
    EXPECT_EQ(parsed.as_array()[i].as_number(), numbers[i]);
}

TEST(JsonWriter, NonFiniteNumbersBecomeNull) {
  JsonWriter w;
  w.begin_array().number(1.0 / 0.0).end_array();
  EXPECT_EQ(w.str(), "[null]");
}

// Equal, and numbers with the same bits: 0 and -0 differ (1 / x tells them apart).
bool identical(const Value& a, const Value& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::kNumber: {
      double x = a.as_number(), y = b.as_number();
      return std::memcmp(&x, &y, sizeof x) == 0;
    }
    case Value::Kind::kArray:
      return std::equal(a.as_array().begin(), a.as_array().end(), b.as_array().begin(),
                        b.as_array().end(), identical);
    case Value::Kind::kObject:
      return std::equal(a.as_object().begin(), a.as_object().end(), b.as_object().begin(),
                        b.as_object().end(), [](const Member& m, const Member& n) {
                          return m.first == n.first && identical(m.second, n.second);
                        });
    default:
      return a == b;
  }
}

// Value::to_json's `exact` is what lets a live subscriber take a payload's value instead of parsing
// it (NewEvent::payload_value): it must be true exactly when the text reads back as the same value
// and writes again as the same text, or live views would differ from a replay's.
TEST(ValueToJson, ExactIsTrueJustWhenTheTextReadsBackAsWritten) {
  const std::string pieces[] = {"T-0001",     "客户名称",         "\"",   "\\",
                                "\n\x01\x7f", "\xf0\x9f\x98\x80", "\xff", "\xe5",
                                "\xc0\xaf",   "\xed\xa0\x80",     ""};
  std::mt19937_64 random(20261204);
  auto text = [&] {
    std::string t;
    for (int n = random() % 4; n > 0; --n) t += pieces[random() % std::size(pieces)];
    return t;
  };
  auto number = [&] {
    switch (random() % 6) {
      case 0: {  // any bit pattern: NaNs, infinities, subnormals, negative zero among them
        uint64_t bits = random();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return d;
      }
      case 1:
        return -0.0;
      case 2:
        return static_cast<double>(static_cast<int64_t>(random()) >> (random() % 64));
      case 3:
        return 1.0 / 0.0;
      default:
        return static_cast<double>(random() % 100000) / 100.0;
    }
  };
  std::function<Value(int)> value = [&](int depth) -> Value {
    if (random() % 50 == 0) {  // around parse_json's limit (kMaxJsonDepth), of plain text only
      Value deep = Value("x");
      for (int n = kMaxJsonDepth - 4 + static_cast<int>(random() % 8); n > 0; --n)
        deep = random() % 2 ? Value(Array{deep}) : Value(Object{{"k", deep}});
      return deep;
    }
    switch (random() % (depth > 2 ? 4 : 6)) {
      case 0:
        return Value(text());
      case 1:
        return Value(number());
      case 2:
        return random() % 2 ? Value(nullptr) : Value(random() % 2 == 0);
      case 3:
        return Value(text());
      case 4: {
        Array a;
        for (int n = random() % 4; n > 0; --n) a.push_back(value(depth + 1));
        return Value(std::move(a));
      }
      default: {
        Object o;
        for (int n = random() % 4; n > 0; --n) o.emplace_back(text(), value(depth + 1));
        return Value(std::move(o));
      }
    }
  };
  int exact_count = 0, inexact_count = 0;
  for (int round = 0; round < 20000; ++round) {
    const Value v = value(0);
    bool exact = false;
    const std::string written = v.to_json(0, &exact);
    Value reread;
    std::string error;
    // Text with a key twice in one object or nested too deeply is refused; the rest must parse.
    const bool parsed = parse_json(written, &reread, &error);
    ASSERT_TRUE(parsed || error.starts_with("duplicate key") || error.starts_with("JSON nested"))
        << error << " in " << written;
    const bool reads_back = parsed && identical(reread, v) && reread.to_json() == written;
    ASSERT_EQ(exact, reads_back) << written;
    ++(exact ? exact_count : inexact_count);
  }
  EXPECT_GT(exact_count, 1000);
  EXPECT_GT(inexact_count, 1000);
}

}  // namespace
}  // namespace ticketd
