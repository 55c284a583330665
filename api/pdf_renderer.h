#pragma once
// Draws a PrintDocument as an A4 PDF: pango shapes the text (Chinese through fontconfig's CJK
// fonts, Debian's fonts-noto-cjk) and cairo writes the PDF. No Beast or Asio here.
#include <string>

#include "api/print_document.h"

namespace ticketd::api {

struct PdfOptions {
  // A fontconfig family; fontconfig falls back per character when it lacks a glyph.
  std::string font_family = "Noto Sans CJK SC";
};

// The PDF's bytes in *pdf, or false with *error saying what failed (cairo's message).
bool render_pdf(const PrintDocument& doc, const PdfOptions& options, std::string* pdf,
                std::string* error);

}  // namespace ticketd::api
