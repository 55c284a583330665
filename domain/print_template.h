#pragma once
// Print templates (打印模板) are data, like forms: which sections a printed ticket has, in which
// order, with which fields. GET /tickets/{id}/print.pdf?template=<id> lays a ticket out by one;
// without a template it uses default_print_template() of the ticket's form.
#include <cstdint>
#include <string>
#include <vector>

#include "domain/error.h"
#include "domain/form.h"
#include "domain/value.h"

namespace date {
class time_zone;
}

namespace ticketd {

struct PrintSection {
  enum class Kind {
    kFields,      // label and value of each field (those the reader may read)
    kProcess,     // 处理记录: who did what at which node, when, with their comments
    kRating,      // the customer's score and comment
    kSignatures,  // a box per label to sign and date by hand
  };
  Kind kind = Kind::kFields;
  std::string title;
  std::vector<std::string> fields;  // kFields: keys in print order; empty means every field
  std::vector<std::string> labels;  // kSignatures
};

struct PrintTemplateDef {
  std::string id;
  uint64_t version = 0;
  std::string name;
  std::string form_id;
  std::string title;  // the document's heading; the form's name when not given
  // The IANA zone the printed times are shown in; "" and `zone` nullptr when not given: the
  // company's (domain/settings.h), UTC's when the company names none.
  std::string time_zone;
  std::vector<PrintSection> sections;
  Value document;
  const date::time_zone* zone = nullptr;
};

// Parses and validates a print template of `form`. Errors name the path, e.g. "sections[1].fields".
Result<PrintTemplateDef> parse_print_template(std::string_view id, const Value& document,
                                              const FormDef& form);
// A print template as the log holds it: a zone the tz database no longer knows leaves it printing
// on the company's clock, as one that names none does, rather than unreadable.
Result<PrintTemplateDef> parse_stored_print_template(std::string_view id, const Value& document,
                                                     const FormDef& form);

// What a ticket prints as without a template: every field, the process record and the rating.
PrintTemplateDef default_print_template(const FormDef& form);

}  // namespace ticketd
