#include "api/pdf_renderer.h"

#include <cairo-pdf.h>
#include <cairo.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "api/picture.h"

namespace ticketd::api {
namespace {

// A4 in points, and the margins; the footer sits in the bottom margin.
constexpr double kPageWidth = 595.28;
constexpr double kPageHeight = 841.89;
constexpr double kMargin = 48;
constexpr double kTop = 54;
constexpr double kBottom = kPageHeight - 60;
constexpr double kContentWidth = kPageWidth - 2 * kMargin;
constexpr double kCellPad = 4;
// A picture is drawn at most this tall, and rasterised at this many pixels a point (144 dpi): a
// phone's 12-megapixel photo would otherwise go into the PDF whole.
constexpr double kPictureHeight = 220;
constexpr double kPixelsPerPoint = 2;

struct LayoutDeleter {
  void operator()(PangoLayout* l) const { g_object_unref(l); }
};
using LayoutPtr = std::unique_ptr<PangoLayout, LayoutDeleter>;

struct FontDeleter {
  void operator()(PangoFontDescription* f) const { pango_font_description_free(f); }
};
using FontPtr = std::unique_ptr<PangoFontDescription, FontDeleter>;

// One table cell: its text wrapped to its width, drawn a line at a time so that a long value
// continues on the next page instead of running off this one.
struct Cell {
  LayoutPtr layout;
  double x = 0;
  std::vector<PangoLayoutLine*> lines;           // owned by the layout
  std::vector<std::pair<double, double>> spans;  // each line's top and bottom, layout points
  std::vector<double> baselines;                 // each line's baseline, layout points
  size_t next = 0;                               // first line not drawn yet
  double drawn_to = 0;                           // layout y drawn through
};

class Painter {
 public:
  Painter(cairo_t* cr, const PdfOptions& options, const std::string& footer, int total_pages)
      : cr_(cr), footer_(footer), total_pages_(total_pages) {
    body_.reset(font(options.font_family, 9.5, false));
    bold_.reset(font(options.font_family, 9.5, true));
    small_.reset(font(options.font_family, 7.5, false));
    heading_.reset(font(options.font_family, 12, true));
    title_.reset(font(options.font_family, 18, true));
  }

  int pages() const { return page_; }

  void start() { begin_page(); }

  void finish() {
    draw_footer();
    cairo_show_page(cr_);
  }

  // The company's name, as a letterhead above the title.
  void issuer(const std::string& text) {
    if (!text.empty()) centered(text, heading_.get(), 4);
  }

  void title(const std::string& text) { centered(text, title_.get(), 10); }

  // One centred line (or up to three, wrapped) across the page, then `gap` points.
  void centered(const std::string& text, const PangoFontDescription* font, double gap) {
    LayoutPtr l = layout(text, font, kContentWidth);
    at_most_lines(l.get(), 3);
    pango_layout_set_alignment(l.get(), PANGO_ALIGN_CENTER);
    double h = height(l.get());
    draw(l.get(), kMargin, y_);
    y_ += h + gap;
  }

  // Label-value pairs two to a line, as a document's letterhead of facts.
  void facts(const std::vector<std::pair<std::string, std::string>>& pairs) {
    const double half = kContentWidth / 2;
    for (size_t i = 0; i < pairs.size(); i += 2) {
      std::vector<std::pair<std::string, double>> cells;
      for (size_t j = i; j < std::min(i + 2, pairs.size()); ++j) {
        cells.push_back({"<b>" + escape(pairs[j].first) + "</b>  " + escape(pairs[j].second),
                         kMargin + (j - i) * half});
      }
      row(cells, std::vector<double>(cells.size(), half), false);
    }
    y_ += 6;
    rule(0.6);
    y_ += 8;
  }

  void heading(const std::string& text) {
    if (text.empty()) return;
    LayoutPtr l = layout(text, heading_.get(), kContentWidth - 2 * kCellPad);
    at_most_lines(l.get(), 2);
    double h = height(l.get()) + 2 * kCellPad;
    if (y_ + h + 24 > kBottom) new_page();  // a heading never ends a page alone
    cairo_set_source_rgb(cr_, 0.92, 0.93, 0.95);
    cairo_rectangle(cr_, kMargin, y_, kContentWidth, h);
    cairo_fill(cr_);
    draw(l.get(), kMargin + kCellPad, y_ + kCellPad);
    y_ += h + 4;
  }

  // A table of `widths` columns; `header` (optional) repeats at the top of every page it spans.
  void table(const std::vector<double>& widths, const std::vector<std::string>& header,
             const std::vector<std::vector<std::string>>& rows, bool bold_first_column) {
    header_ = header;
    widths_ = widths;
    if (!header.empty()) header_row();
    for (const auto& r : rows) {
      std::vector<std::pair<std::string, double>> cells;
      double x = kMargin;
      for (size_t i = 0; i < r.size(); ++i) {
        std::string text = escape(r[i].empty() ? "—" : r[i]);
        cells.push_back({i == 0 && bold_first_column ? "<b>" + text + "</b>" : text, x});
        x += widths[i];
      }
      row(cells, widths, true);
    }
    header_.clear();
    y_ += 10;
  }

  // Each picture under its caption, one under the other; one that would not fit below the text
  // starts a new page. A picture that did not decode is left out (the table above names it).
  void pictures(const std::vector<PrintDocument::Picture>& list,
                const std::vector<SurfacePtr>& images) {
    for (size_t i = 0; i < list.size(); ++i) {
      cairo_surface_t* image = images[i].get();
      if (!image) continue;
      const double h = cairo_image_surface_get_height(image) / kPixelsPerPoint;
      LayoutPtr caption = layout(list[i].caption, small_.get(), kContentWidth);
      const double caption_h = height(caption.get()) + 2;
      if (y_ + caption_h + h > kBottom) new_page();
      draw(caption.get(), kMargin, y_);
      y_ += caption_h;
      cairo_save(cr_);
      cairo_translate(cr_, kMargin, y_);
      cairo_scale(cr_, 1 / kPixelsPerPoint, 1 / kPixelsPerPoint);
      cairo_set_source_surface(cr_, image, 0, 0);
      cairo_paint(cr_);
      cairo_restore(cr_);
      y_ += h + 10;
    }
  }

  void signatures(const std::vector<std::string>& labels) {
    const double gap = 12;
    const double w = (kContentWidth - gap) / 2;
    const double h = 64;
    for (size_t i = 0; i < labels.size(); i += 2) {
      if (y_ + h > kBottom) new_page();
      for (size_t j = i; j < std::min(i + 2, labels.size()); ++j) {
        double x = kMargin + (j - i) * (w + gap);
        cairo_set_source_rgb(cr_, 0.55, 0.55, 0.6);
        cairo_set_line_width(cr_, 0.6);
        cairo_rectangle(cr_, x, y_, w, h);
        cairo_stroke(cr_);
        LayoutPtr l = layout(labels[j], bold_.get(), w - 2 * kCellPad);
        at_most_lines(l.get(), 2);  // the box is a fixed height, the date line at its foot
        draw(l.get(), x + kCellPad, y_ + kCellPad);
        LayoutPtr date = layout("日期:", small_.get(), w - 2 * kCellPad);
        draw(date.get(), x + w / 2, y_ + h - kCellPad - height(date.get()));
      }
      y_ += h + gap;
    }
    y_ += 4;
  }

 private:
  static PangoFontDescription* font(const std::string& family, double size, bool bold) {
    PangoFontDescription* f = pango_font_description_new();
    pango_font_description_set_family(f, family.c_str());
    pango_font_description_set_absolute_size(f, size * PANGO_SCALE);
    pango_font_description_set_weight(f, bold ? PANGO_WEIGHT_BOLD : PANGO_WEIGHT_NORMAL);
    return f;
  }

  static std::string escape(const std::string& text) {
    char* e = g_markup_escape_text(text.data(), static_cast<gssize>(text.size()));
    std::string out(e);
    g_free(e);
    return out;
  }

  LayoutPtr layout(const std::string& text, const PangoFontDescription* f, double width,
                   bool markup = false) {
    LayoutPtr l(pango_cairo_create_layout(cr_));
    pango_layout_set_font_description(l.get(), f);
    pango_layout_set_width(l.get(), static_cast<int>(width * PANGO_SCALE));
    pango_layout_set_wrap(l.get(), PANGO_WRAP_WORD_CHAR);
    if (markup) {
      pango_layout_set_markup(l.get(), text.data(), static_cast<int>(text.size()));
    } else {
      pango_layout_set_text(l.get(), text.data(), static_cast<int>(text.size()));
    }
    return l;
  }

  // Titles, headings and labels come from definitions and settings, of any length a stored one
  // has: past `lines` lines they end in "…" rather than fill the page or run out of their box.
  static void at_most_lines(PangoLayout* l, int lines) {
    pango_layout_set_ellipsize(l, PANGO_ELLIPSIZE_END);
    pango_layout_set_height(l, -lines);
  }

  static double height(PangoLayout* l) {
    int w = 0, h = 0;
    pango_layout_get_size(l, &w, &h);
    return static_cast<double>(h) / PANGO_SCALE;
  }

  void draw(PangoLayout* l, double x, double y) {
    cairo_set_source_rgb(cr_, 0.1, 0.1, 0.12);
    cairo_move_to(cr_, x, y);
    pango_cairo_show_layout(cr_, l);
  }

  void rule(double width) {
    cairo_set_source_rgb(cr_, 0.75, 0.76, 0.8);
    cairo_set_line_width(cr_, width);
    cairo_move_to(cr_, kMargin, y_);
    cairo_line_to(cr_, kMargin + kContentWidth, y_);
    cairo_stroke(cr_);
  }

  void header_row() {
    std::vector<std::pair<std::string, double>> cells;
    double x = kMargin;
    for (size_t i = 0; i < header_.size(); ++i) {
      cells.push_back({"<b>" + escape(header_[i]) + "</b>", x});
      x += widths_[i];
    }
    std::vector<std::string> keep = std::move(header_);  // no header repeat inside the header
    row(cells, widths_, true);
    header_ = std::move(keep);
  }

  // Draws one row of cells (markup), continuing on new pages as long as any cell has lines left.
  void row(const std::vector<std::pair<std::string, double>>& texts,
           const std::vector<double>& widths, bool ruled) {
    std::vector<Cell> cells(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) {
      Cell& c = cells[i];
      c.x = texts[i].second;
      c.layout = layout(texts[i].first, body_.get(), widths[i] - 2 * kCellPad, true);
      PangoLayoutIter* it = pango_layout_get_iter(c.layout.get());
      do {
        int top = 0, bottom = 0;
        pango_layout_iter_get_line_yrange(it, &top, &bottom);
        c.lines.push_back(pango_layout_iter_get_line_readonly(it));
        c.spans.emplace_back(static_cast<double>(top) / PANGO_SCALE,
                             static_cast<double>(bottom) / PANGO_SCALE);
        c.baselines.push_back(static_cast<double>(pango_layout_iter_get_baseline(it)) /
                              PANGO_SCALE);
      } while (pango_layout_iter_next_line(it));
      pango_layout_iter_free(it);
    }
    for (;;) {
      // Each cell draws the lines that fit below y_; the row ends where its tallest cell does.
      double room = kBottom - y_ - 2 * kCellPad;
      double used = 0;
      bool left_over = false;
      for (Cell& c : cells) {
        double start = c.drawn_to;
        while (c.next < c.lines.size() && c.spans[c.next].second - start <= room) {
          cairo_set_source_rgb(cr_, 0.1, 0.1, 0.12);
          cairo_move_to(cr_, c.x + kCellPad, y_ + kCellPad + c.baselines[c.next] - start);
          pango_cairo_show_layout_line(cr_, c.lines[c.next]);
          c.drawn_to = c.spans[c.next].second;
          ++c.next;
        }
        used = std::max(used, c.drawn_to - start);
        left_over = left_over || c.next < c.lines.size();
      }
      if (!left_over) {
        y_ += used + 2 * kCellPad;
        if (ruled) rule(0.3);
        return;
      }
      if (used == 0 && room >= kBottom - kTop - 2 * kCellPad) {
        // A line taller than a whole page: skip it rather than loop for ever.
        for (Cell& c : cells) {
          if (c.next < c.lines.size()) c.drawn_to = c.spans[c.next++].second;
        }
      }
      new_page();
      if (!header_.empty()) header_row();
    }
  }

  void begin_page() {
    ++page_;
    y_ = kTop;
  }

  void new_page() {
    finish();
    begin_page();
  }

  void draw_footer() {
    std::string pages = "第 " + std::to_string(page_) + " 页" +
                        (total_pages_ > 0 ? " / 共 " + std::to_string(total_pages_) + " 页" : "");
    LayoutPtr right = layout(pages, small_.get(), 80);
    pango_layout_set_alignment(right.get(), PANGO_ALIGN_RIGHT);
    LayoutPtr left = layout(footer_, small_.get(), kContentWidth - 84);
    pango_layout_set_ellipsize(left.get(), PANGO_ELLIPSIZE_END);
    double y = kBottom + 18;
    cairo_set_source_rgb(cr_, 0.75, 0.76, 0.8);
    cairo_set_line_width(cr_, 0.4);
    cairo_move_to(cr_, kMargin, y - 4);
    cairo_line_to(cr_, kMargin + kContentWidth, y - 4);
    cairo_stroke(cr_);
    draw(left.get(), kMargin, y);
    draw(right.get(), kMargin + kContentWidth - 80, y);
  }

  cairo_t* cr_;
  std::string footer_;
  int total_pages_;
  int page_ = 0;
  double y_ = kTop;
  FontPtr body_, bold_, small_, heading_, title_;
  std::vector<std::string> header_;
  std::vector<double> widths_;
};

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

cairo_status_t discard(void*, const unsigned char*, unsigned int) { return CAIRO_STATUS_SUCCESS; }

// Draws the whole document; returns the number of pages, or 0 with *error set.
// Every section's pictures, decoded once for both passes: upright, fitting the page's width and
// kPictureHeight at kPixelsPerPoint.
using SectionImages = std::vector<std::vector<SurfacePtr>>;

SectionImages decode_pictures(const PrintDocument& doc) {
  SectionImages out(doc.sections.size());
  for (size_t i = 0; i < doc.sections.size(); ++i) {
    for (const auto& picture : doc.sections[i].pictures) {
      out[i].push_back(decode_picture(picture.bytes,
                                      static_cast<int>(kContentWidth * kPixelsPerPoint),
                                      static_cast<int>(kPictureHeight * kPixelsPerPoint)));
    }
  }
  return out;
}

int paint(const PrintDocument& doc, const SectionImages& images, const PdfOptions& options,
          int total_pages, cairo_write_func_t write, void* closure, std::string* error) {
  cairo_surface_t* surface =
      cairo_pdf_surface_create_for_stream(write, closure, kPageWidth, kPageHeight);
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_TITLE, doc.title.c_str());
  cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_CREATOR, "ticketd");
  if (!doc.issuer.empty())
    cairo_pdf_surface_set_metadata(surface, CAIRO_PDF_METADATA_AUTHOR, doc.issuer.c_str());
  cairo_t* cr = cairo_create(surface);
  int pages = 0;
  {
    Painter p(cr, options, doc.footer, total_pages);
    p.start();
    p.issuer(doc.issuer);
    p.title(doc.title);
    p.facts(doc.header);
    for (size_t i = 0; i < doc.sections.size(); ++i) {
      const PrintDocument::Section& s = doc.sections[i];
      p.heading(s.title);
      switch (s.kind) {
        case PrintSection::Kind::kFields:
        case PrintSection::Kind::kRating: {
          std::vector<std::vector<std::string>> rows;
          for (const auto& [label, value] : s.rows) rows.push_back({label, value});
          p.table({120, kContentWidth - 120}, {}, rows, true);
          p.pictures(s.pictures, images[i]);
          break;
        }
        case PrintSection::Kind::kProcess: {
          std::vector<std::vector<std::string>> rows;
          for (const auto& r : s.process) rows.push_back({r.time, r.node, r.who, r.what});
          if (rows.empty()) rows.push_back({"", "", "", "尚无记录"});
          p.table({92, 78, 92, kContentWidth - 262}, {"时间", "节点", "操作人", "内容"}, rows,
                  false);
          break;
        }
        case PrintSection::Kind::kSignatures:
          p.signatures(s.labels);
          break;
      }
    }
    p.finish();
    pages = p.pages();
  }
  cairo_destroy(cr);
  cairo_surface_finish(surface);
  cairo_status_t status = cairo_surface_status(surface);
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    *error = std::string("cairo: ") + cairo_status_to_string(status);
    return 0;
  }
  return pages;
}

}  // namespace

bool render_pdf(const PrintDocument& doc, const PdfOptions& options, std::string* pdf,
                std::string* error) {
  // Laid out twice: the first pass only counts the pages for "第 n / 共 N 页".
  const SectionImages images = decode_pictures(doc);
  int pages = paint(doc, images, options, 0, discard, nullptr, error);
  if (pages == 0) return false;
  pdf->clear();
  return paint(doc, images, options, pages, append_to_string, pdf, error) > 0;
}

}  // namespace ticketd::api
