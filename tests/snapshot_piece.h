#pragma once
// The snapshots the crash child saves: save n has 1 + n % 7 pieces of 0.1 to 1.6 MB (so memtable
// flushes happen in the middle of saves), each starting with its save and index, so a reader can
// tell whether every piece it got belongs to the save its manifest names.
#include <cstdint>
#include <string>

namespace ticketd::testing {

inline uint64_t snapshot_pieces(uint64_t save) { return 1 + save % 7; }

inline std::string snapshot_piece(uint64_t save, uint64_t index) {
  std::string piece = "save " + std::to_string(save) + " piece " + std::to_string(index) + ";";
  size_t size = 100000 + (save * 7919 + index * 104729) % 1500000;
  piece.resize(size, static_cast<char>('a' + (save + index) % 26));
  return piece;
}

}  // namespace ticketd::testing
