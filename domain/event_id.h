#pragma once
// A 16-byte event id (UUID layout). Ids are passed into the domain, never generated inside it, so
// decisions stay deterministic; IdSource lives with the caller.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ticketd {

struct EventId {
  std::array<uint8_t, 16> bytes{};

  friend bool operator==(const EventId&, const EventId&) = default;
  friend auto operator<=>(const EventId&, const EventId&) = default;

  // Canonical 8-4-4-4-12 lowercase hex.
  std::string to_string() const;
  static std::optional<EventId> parse(std::string_view text);

  // A version-4 (random) UUID built from 128 caller-supplied random bits.
  static EventId random_v4(uint64_t hi, uint64_t lo);
  // A stable id for a fact that must happen at most once (e.g. a timer firing), derived from its
  // name. Same name, same id, forever: the log's idempotent ids then make retries harmless.
  static EventId derived(std::string_view name);
};

struct EventIdHash {
  size_t operator()(const EventId& id) const noexcept;
};

}  // namespace ticketd
