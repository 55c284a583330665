#pragma once
// Media types of uploaded files, as the domain judges them: which are pictures.
#include <string>
#include <string_view>

namespace ticketd {

// A Content-Type's essence: the type and subtype lowercased, parameters dropped
// ("Image/PNG; x=1" → "image/png").
std::string media_type_essence(std::string_view content_type);

// PNG, JPEG, GIF or WebP: what an image field takes, and what a browser and a print-out show.
bool is_picture_type(std::string_view content_type);

}  // namespace ticketd
