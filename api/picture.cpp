#include "api/picture.h"

#include <gdk-pixbuf/gdk-pixbuf.h>

#include <algorithm>
#include <cstdint>

namespace ticketd::api {
namespace {

struct GObjectDeleter {
  void operator()(void* o) const { g_object_unref(o); }
};

}  // namespace

SurfacePtr decode_picture(const std::string& bytes, int max_w, int max_h) {
  if (bytes.empty()) return nullptr;
  std::unique_ptr<GdkPixbufLoader, GObjectDeleter> loader(gdk_pixbuf_loader_new());
  const bool written = gdk_pixbuf_loader_write(
      loader.get(), reinterpret_cast<const guchar*>(bytes.data()), bytes.size(), nullptr);
  // Closed whatever was written: a loader freed unclosed warns on stderr for every bad upload.
  const bool read = gdk_pixbuf_loader_close(loader.get(), nullptr) && written;
  GdkPixbuf* loaded = read ? gdk_pixbuf_loader_get_pixbuf(loader.get()) : nullptr;  // the loader's
  if (!loaded) return nullptr;
  std::unique_ptr<GdkPixbuf, GObjectDeleter> upright(gdk_pixbuf_apply_embedded_orientation(loaded));
  if (!upright) return nullptr;
  const int w = gdk_pixbuf_get_width(upright.get()), h = gdk_pixbuf_get_height(upright.get());
  const double scale =
      std::min({1.0, static_cast<double>(max_w) / w, static_cast<double>(max_h) / h});
  const int sw = std::max(1, static_cast<int>(w * scale)),
            sh = std::max(1, static_cast<int>(h * scale));
  std::unique_ptr<GdkPixbuf, GObjectDeleter> scaled(
      gdk_pixbuf_scale_simple(upright.get(), sw, sh, GDK_INTERP_BILINEAR));
  if (!scaled) return nullptr;
  // gdk-pixbuf's RGB(A) bytes into cairo's native-endian, premultiplied ARGB32 (what GTK's
  // gdk_cairo_set_source_pixbuf does; that lives in GTK, which a server does not link).
  SurfacePtr surface(cairo_image_surface_create(CAIRO_FORMAT_ARGB32, sw, sh));
  if (cairo_surface_status(surface.get()) != CAIRO_STATUS_SUCCESS) return nullptr;
  cairo_surface_flush(surface.get());
  const int channels = gdk_pixbuf_get_n_channels(scaled.get());
  const bool alpha = gdk_pixbuf_get_has_alpha(scaled.get());
  const int src_stride = gdk_pixbuf_get_rowstride(scaled.get());
  const guchar* src = gdk_pixbuf_read_pixels(scaled.get());
  unsigned char* dst = cairo_image_surface_get_data(surface.get());
  const int dst_stride = cairo_image_surface_get_stride(surface.get());
  for (int y = 0; y < sh; ++y) {
    const guchar* in = src + y * src_stride;
    auto* out = reinterpret_cast<uint32_t*>(dst + y * dst_stride);
    for (int x = 0; x < sw; ++x, in += channels) {
      const uint32_t a = alpha ? in[3] : 255;
      auto pre = [a](uint32_t c) { return (c * a + 127) / 255; };
      out[x] = (a << 24) | (pre(in[0]) << 16) | (pre(in[1]) << 8) | pre(in[2]);
    }
  }
  cairo_surface_mark_dirty(surface.get());
  return surface;
}

}  // namespace ticketd::api
