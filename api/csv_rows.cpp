#include "api/csv_rows.h"

#include <csv.h>

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

}  // namespace

bool parse_csv_rows(std::string_view text, std::vector<std::vector<std::string>>* rows,
                    std::string* error) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_STRICT_FINI) != 0) {
    *error = "out of memory";
    return false;
  }
  Collector collector{rows, {}};
  size_t parsed = csv_parse(&parser, text.data(), text.size(), on_cell, on_row_end, &collector);
  bool ok = parsed == text.size() && csv_fini(&parser, on_cell, on_row_end, &collector) == 0;
  if (!ok) {
    *error = std::string("not CSV: ") + csv_strerror(csv_error(&parser)) + " in row " +
             std::to_string(rows->size() + 1);
  }
  csv_free(&parser);
  return ok;
}

}  // namespace ticketd::api
