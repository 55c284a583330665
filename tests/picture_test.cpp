// Pictures for the printed page: decoded, turned upright as their EXIF orientation says, scaled.
#include "api/picture.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <gtest/gtest.h>

#include <string>

namespace ticketd::api {
namespace {

// A `width` x `height` JPEG, as a camera writes one.
std::string jpeg(int width, int height) {
  GdkPixbuf* p = gdk_pixbuf_new(GDK_COLORSPACE_RGB, FALSE, 8, width, height);
  gdk_pixbuf_fill(p, 0x3366ccff);
  gchar* buffer = nullptr;
  gsize size = 0;
  EXPECT_TRUE(gdk_pixbuf_save_to_buffer(p, &buffer, &size, "jpeg", nullptr, nullptr));
  std::string out(buffer, size);
  g_free(buffer);
  g_object_unref(p);
  return out;
}

// The same JPEG saying, in an EXIF segment right after its start, that it is stored turned
// (6: shown rotated 90 degrees clockwise), as a phone held upright writes its photos.
std::string with_orientation(const std::string& jpeg, uint16_t orientation) {
  std::string tiff("MM\0*\0\0\0\x08", 8);              // big-endian, first IFD at 8
  tiff += std::string("\0\x01", 2);                    // one entry
  tiff += std::string("\x01\x12\0\x03\0\0\0\x01", 8);  // Orientation, SHORT, count 1
  tiff += {static_cast<char>(orientation >> 8), static_cast<char>(orientation), 0, 0};
  tiff += std::string("\0\0\0\0", 4);  // no next IFD
  std::string app1 = std::string("Exif\0\0", 6) + tiff;
  const size_t length = app1.size() + 2;
  std::string segment = {'\xff', '\xe1', static_cast<char>(length >> 8), static_cast<char>(length)};
  return jpeg.substr(0, 2) + segment + app1 + jpeg.substr(2);
}

std::pair<int, int> size_of(const SurfacePtr& s) {
  return {cairo_image_surface_get_width(s.get()), cairo_image_surface_get_height(s.get())};
}

TEST(Picture, IsTurnedUprightAndScaledToFit) {
  const std::string photo = jpeg(400, 200);
  SurfacePtr as_stored = decode_picture(photo, 1000, 1000);
  ASSERT_TRUE(as_stored);
  EXPECT_EQ(size_of(as_stored), std::make_pair(400, 200));
  SurfacePtr upright = decode_picture(with_orientation(photo, 6), 1000, 1000);
  ASSERT_TRUE(upright);
  EXPECT_EQ(size_of(upright), std::make_pair(200, 400));
  // Fitted inside the box, proportions kept; never enlarged.
  EXPECT_EQ(size_of(decode_picture(photo, 100, 100)), std::make_pair(100, 50));
  EXPECT_EQ(size_of(decode_picture(with_orientation(photo, 6), 100, 100)), std::make_pair(50, 100));
}

TEST(Picture, BytesThatAreNoPictureGiveNone) {
  EXPECT_FALSE(decode_picture("", 100, 100));
  EXPECT_FALSE(decode_picture("<html>not a picture</html>", 100, 100));
  EXPECT_FALSE(decode_picture(jpeg(40, 20).substr(0, 40), 100, 100));  // cut short
}

}  // namespace
}  // namespace ticketd::api
