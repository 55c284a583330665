#pragma once
// What every definition parser says of a document it refuses: an invalid_definition error whose
// message starts with the path of the part at fault ("flow.nodes[2].assignee: …").
#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "domain/error.h"
#include "domain/value.h"

namespace ticketd {

inline DomainError def_error(const std::string& path, const std::string& message) {
  return error(codes::kInvalidDefinition, path + ": " + message);
}

// A misspelt property is refused rather than ignored: the first member of `object` not named in
// `known`, as an "unknown property" error at path.member.
inline std::optional<DomainError> unknown_property(const Value& object,
                                                   std::initializer_list<std::string_view> known,
                                                   const std::string& path) {
  for (const auto& [k, v] : object.as_object()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      return def_error(path + "." + k, "unknown property");
    }
  }
  return std::nullopt;
}

}  // namespace ticketd
