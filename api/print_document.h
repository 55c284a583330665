#pragma once
// A printed ticket in words, before it is drawn: compose_print() decides what is on the page
// (the fields the reader may read, names instead of ids, times in the template's zone, the process
// record from the ticket's events) and render_pdf() (pdf_renderer.h) only lays it out.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "domain/catalog.h"
#include "domain/event.h"
#include "domain/print_template.h"
#include "domain/ticket.h"

namespace ticketd::api {

struct PrintDocument {
  struct ProcessRow {
    std::string time;
    std::string node;
    std::string who;
    std::string what;
  };
  // A picture an image field holds, drawn under its section's table. compose_print() names it;
  // whoever prints fills `bytes` from the attachment store (left empty, only the name prints).
  struct Picture {
    std::string caption;  // the field's label and the file's name
    std::string attachment;
    std::string bytes;
  };
  struct Section {
    PrintSection::Kind kind = PrintSection::Kind::kFields;
    std::string title;
    std::vector<std::pair<std::string, std::string>> rows;  // label, value (fields, rating)
    std::vector<Picture> pictures;                          // fields
    std::vector<ProcessRow> process;
    std::vector<std::string> labels;  // signatures
  };
  std::string issuer;  // the company's name, above the title ("" when it names none)
  std::string title;
  std::vector<std::pair<std::string, std::string>> header;  // label, value
  std::vector<Section> sections;
  std::string footer;  // every page: which ticket, which event it was printed at, by whom
};

// One event of the ticket's stream as read from the log.
struct PrintedEvent {
  DomainEvent event;
  uint64_t position = 0;
  std::string hash_hex;
};

// The name a file was uploaded under ("" if unknown): a field may hold one uploaded before the
// ticket was (POST /attachments), which no event of the ticket names.
using AttachmentNames = std::function<std::string(const std::string& attachment)>;

// Lays out the ticket whose whole stream is `events` (in order) by `layout`, for `reader`.
// Pure: the clock comes in as `now_us`, and the files' names as `uploaded_as`.
PrintDocument compose_print(const std::vector<PrintedEvent>& events, const Catalog& catalog,
                            const PrintTemplateDef& layout, const Actor& reader, int64_t now_us,
                            const AttachmentNames& uploaded_as = {});

}  // namespace ticketd::api
