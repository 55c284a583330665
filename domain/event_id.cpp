#include "domain/event_id.h"

#include <cstring>

namespace ticketd {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The splitmix64 avalanche: every input bit moves about half of the output bits.
uint64_t avalanche(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

// 64-bit FNV-1a with a seed folded in, finished with the avalanche. Two differently seeded runs
// give the 128 bits of a derived id. Not cryptographic: derived ids only need to be stable and
// practically collision-free among a log's names.
uint64_t seeded_hash(std::string_view text, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return avalanche(h);
}

void put_u64(uint8_t* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

}  // namespace

std::string EventId::to_string() const {
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 15]);
  }
  return out;
}

std::optional<EventId> EventId::parse(std::string_view text) {
  // Accepts the canonical dashed form or 32 bare hex digits.
  std::string hex;
  if (text.size() == 36) {
    for (size_t i = 0; i < text.size(); ++i) {
      bool dash_slot = i == 8 || i == 13 || i == 18 || i == 23;
      if (dash_slot != (text[i] == '-')) return std::nullopt;
      if (!dash_slot) hex.push_back(text[i]);
    }
  } else if (text.size() == 32) {
    hex = text;
  } else {
    return std::nullopt;
  }
  EventId id;
  for (size_t n = 0; n < 16; ++n) {
    int hi = hex_value(hex[2 * n]);
    int lo = hex_value(hex[2 * n + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    id.bytes[n] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return id;
}

EventId EventId::random_v4(uint64_t hi, uint64_t lo) {
  EventId id;
  put_u64(id.bytes.data(), hi);
  put_u64(id.bytes.data() + 8, lo);
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x40);
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);
  return id;
}

EventId EventId::derived(std::string_view name) {
  EventId id;
  put_u64(id.bytes.data(), seeded_hash(name, 0x7469636b65746431ULL));
  put_u64(id.bytes.data() + 8, seeded_hash(name, 0x6465726976656432ULL));
  // Marked as an RFC 4122 version-8 (custom) UUID so it never equals a random v4 id.
  id.bytes[6] = static_cast<uint8_t>((id.bytes[6] & 0x0f) | 0x80);
  id.bytes[8] = static_cast<uint8_t>((id.bytes[8] & 0x3f) | 0x80);
  return id;
}

// Both halves through the avalanche: ids that differ in a few bytes (made from counters, as
// tests and tools make them) must still differ in the low bits, where an open-addressing table
// finds its slot. Multiplying the halves alone left a counter's ids differing only in the top
// byte, and a table of 12,000 of them probing linearly (quadratic appends in the log's writer).
size_t EventIdHash::operator()(const EventId& id) const noexcept {
  uint64_t a, b;
  std::memcpy(&a, id.bytes.data(), 8);
  std::memcpy(&b, id.bytes.data() + 8, 8);
  return static_cast<size_t>(avalanche(a ^ avalanche(b)));
}

}  // namespace ticketd
