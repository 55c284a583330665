#include "domain/media_type.h"

#include <algorithm>

namespace ticketd {

std::string media_type_essence(std::string_view content_type) {
  std::string type(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  while (!type.empty() && type.front() == ' ') type.erase(type.begin());
  std::transform(type.begin(), type.end(), type.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return type;
}

bool is_picture_type(std::string_view content_type) {
  const std::string type = media_type_essence(content_type);
  return type == "image/png" || type == "image/jpeg" || type == "image/gif" || type == "image/webp";
}

}  // namespace ticketd
