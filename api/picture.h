#pragma once
// Pictures for the printed page: the bytes an image field's file holds, decoded by gdk-pixbuf
// (JPEG, PNG, GIF and whatever else its loaders read) into a cairo surface.
#include <cairo.h>

#include <memory>
#include <string>

namespace ticketd::api {

struct SurfaceDeleter {
  void operator()(cairo_surface_t* s) const { cairo_surface_destroy(s); }
};
using SurfacePtr = std::unique_ptr<cairo_surface_t, SurfaceDeleter>;

// The picture in `bytes`, turned upright as its EXIF orientation says (phones store photos
// sideways and say so), scaled down to fit `max_w` x `max_h` pixels keeping its proportions, as
// an ARGB32 image surface; nullptr when the bytes are no picture gdk-pixbuf reads.
SurfacePtr decode_picture(const std::string& bytes, int max_w, int max_h);

}  // namespace ticketd::api
