#pragma once
// Domain failures are values with a stable code (clients switch on it), a human message and, when
// one field is at fault, its key. The API maps codes to HTTP statuses; nothing here throws.
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace ticketd {

namespace codes {
inline constexpr char kInvalidDefinition[] = "invalid_definition";  // 422
inline constexpr char kUnknownField[] = "unknown_field";            // 422
inline constexpr char kWrongType[] = "wrong_type";                  // 422
inline constexpr char kRequired[] = "required";                     // 422
inline constexpr char kNotAnOption[] = "not_an_option";             // 422
inline constexpr char kOutOfRange[] = "out_of_range";               // 422
inline constexpr char kInvalidValue[] = "invalid_value";            // 422
inline constexpr char kActionNotAllowed[] = "action_not_allowed";   // 422
inline constexpr char kTicketClosed[] = "ticket_closed";            // 422
inline constexpr char kForbidden[] = "forbidden";                   // 403
inline constexpr char kNotFound[] = "not_found";                    // 404
inline constexpr char kConflict[] = "conflict";                     // 409
}  // namespace codes

struct DomainError {
  std::string code;
  std::string message;
  std::string field;  // empty when not about one field
};

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(DomainError error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const DomainError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, DomainError> v_;
};

inline DomainError error(std::string code, std::string message, std::string field = "") {
  return {std::move(code), std::move(message), std::move(field)};
}

}  // namespace ticketd
