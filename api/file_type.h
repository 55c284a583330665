#pragma once
// What a file's bytes say it is, through libmagic (Debian's libmagic-dev): an upload's declared
// Content-Type is the client's word, and a picture field wants a picture.
#include <optional>
#include <string>
#include <string_view>

namespace ticketd::api {

// The media type libmagic reads in the bytes ("image/png", "text/html", "application/pdf",
// "application/octet-stream" when it cannot tell); nullopt when libmagic or its database is not
// there to ask.
std::optional<std::string> sniffed_media_type(std::string_view bytes);

}  // namespace ticketd::api
