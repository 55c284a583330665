#include "api/csv_rows.h"

#include <csv.h>
#include <iconv.h>

#include <cctype>
#include <cerrno>

#include "domain/text.h"

namespace ticketd::api {
namespace {

struct Collector {
  std::vector<std::vector<std::string>>* rows;
  std::vector<std::string> row;
};

void on_cell(void* cell, size_t size, void* data) {
  auto* c = static_cast<Collector*>(data);
  c->row.emplace_back(cell ? static_cast<const char*>(cell) : "", cell ? size : 0);
}

void on_row_end(int /*terminator*/, void* data) {
  auto* c = static_cast<Collector*>(data);
  bool blank = c->row.empty() || (c->row.size() == 1 && c->row[0].empty());
  if (!blank) c->rows->push_back(std::move(c->row));
  c->row.clear();
}

// `bytes`, in the encoding `from`, as UTF-8 into *out; what went wrong otherwise, and where.
enum class Converted { kOk, kUnknownEncoding, kInvalid };
Converted to_utf8(std::string_view bytes, const std::string& from, std::string* out,
                  size_t* bad_offset) {
  iconv_t cd = iconv_open("UTF-8", from.c_str());
  if (cd == reinterpret_cast<iconv_t>(-1)) return Converted::kUnknownEncoding;
  out->assign(bytes.size() * 2 + 16, '\0');  // GB18030's two bytes are UTF-8's three at most
  char* in = const_cast<char*>(bytes.data());
  size_t in_left = bytes.size(), written = 0;
  Converted result = Converted::kOk;
  while (in_left > 0) {
    char* o = out->data() + written;
    size_t o_left = out->size() - written;
    size_t r = iconv(cd, &in, &in_left, &o, &o_left);
    written = out->size() - o_left;
    if (r != static_cast<size_t>(-1)) break;
    if (errno == E2BIG) {
      out->resize(out->size() * 2);
      continue;
    }
    *bad_offset = bytes.size() - in_left;  // EILSEQ or EINVAL (cut short at the end)
    result = Converted::kInvalid;
    break;
  }
  iconv_close(cd);
  out->resize(written);
  return result;
}

}  // namespace

bool parse_csv_rows(std::string_view bytes, std::string_view charset, CsvTable* out,
                    std::string* error) {
  std::string decoded;
  std::string_view text = bytes;
  std::string from(charset);
  for (char& c : from) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (from == "GBK" || from == "GB2312" || from == "CP936") from = "GB18030";  // its superset
  if (from.empty() || from == "UTF-8" || from == "UTF8") {
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
    if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF")) {
      from = "UTF-16";  // iconv reads the byte order from the mark
    } else if (valid_utf8(text)) {
      from = "UTF-8";
    } else if (!from.empty()) {
      *error = "the file is not UTF-8, as its charset says";
      return false;
    } else {
      from = "GB18030";
    }
  }
  out->encoding = from;
  if (from != "UTF-8") {
    size_t bad = 0;
    switch (to_utf8(text, from, &decoded, &bad)) {
      case Converted::kUnknownEncoding:
        *error = "charset " + std::string(charset) + " is not one this server reads";
        return false;
      case Converted::kInvalid:
        *error = charset.empty()
                     ? "the file is neither UTF-8 nor GBK/GB18030 (byte " +
                           std::to_string(bad + 1) + "): save it as CSV UTF-8, or name its charset"
                     : "the file is not " + std::string(charset) + " (byte " +
                           std::to_string(bad + 1) + ")";
        return false;
      case Converted::kOk:
        break;
    }
    text = decoded;
    if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-16's mark, converted
  }

  const std::string_view first_line = text.substr(0, text.find('\n'));
  const bool tabs =
      first_line.find('\t') != std::string_view::npos && first_line.find(',') == first_line.npos;
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    *error = "out of memory";
    return false;
  }
  if (tabs) csv_set_delim(&parser, '\t');
  Collector collector{&out->rows, {}};
  size_t parsed = csv_parse(&parser, text.data(), text.size(), on_cell, on_row_end, &collector);
  bool ok = parsed == text.size() && csv_fini(&parser, on_cell, on_row_end, &collector) == 0;
  if (!ok) {
    *error = std::string("not CSV: ") + csv_strerror(csv_error(&parser)) + " in row " +
             std::to_string(out->rows.size() + 1);
  }
  csv_free(&parser);
  return ok;
}

}  // namespace ticketd::api
