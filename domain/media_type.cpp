#include "domain/media_type.h"

#include "domain/text.h"

namespace ticketd {

std::string media_type_essence(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  while (!type.empty() && type.front() == ' ') type.erase(type.begin());
  return ascii_lowercase(type);
}

bool is_picture_type(std::string_view content_type) {
  const std::string type = media_type_essence(content_type);
  return type == "image/png" || type == "image/jpeg" || type == "image/gif" || type == "image/webp";
}

}  // namespace ticketd
