#pragma once
// The on-disk layout: column family names and key encodings. Integers in keys are big-endian so
// RocksDB's bytewise order is the log's order. Exposed for ticketctl's raw baseline and for tests
// that tamper with stored bytes; production code reaches RocksDB only through EventLog.
#include <endian.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace ticketd::storage::layout {

inline constexpr char kEvents[] = "events";    // BE64 position -> Envelope
inline constexpr char kStreams[] = "streams";  // stream id, 0x00, BE64 version -> BE64 position
inline constexpr char kStreamHeads[] = "stream_heads";  // stream id -> BE64 version
inline constexpr char kIds[] = "ids";                   // 16-byte event id -> BE64 position
inline constexpr char kCheckpoints[] = "checkpoints";   // name -> BE64 position
inline constexpr char kSnapshots[] = "snapshots";       // see snapshot keys below
inline constexpr char kAttachments[] = "attachments";   // attachment id -> bytes (blob files)

// The streams, stream_heads and ids column families are an index of the events column family,
// written just after each synced batch and without the WAL, so a crash loses each one's memtable
// on its own: every one of them holds a mark of the last position it covers, and opening the log
// re-derives the rest from the lowest. In streams and stream_heads the mark's key is this one (no
// stream id holds a NUL byte); in ids, whose keys are 16-byte event ids, it is one byte longer.
// Logs written before the index left the WAL have the stream_heads mark only.
inline constexpr std::string_view kIndexedThroughKey{"\0indexed_through", 16};
inline constexpr std::string_view kIdsIndexedThroughKey{"\0indexed_through\0", 17};

// Snapshots: "<name>" -> manifest (kSnapshotManifestMagic, then BE64 position, generation and
// piece count), and "<name>", 0x00, BE64 generation, BE64 index -> piece. A save writes a new
// generation's pieces, then the manifest that names it. (Before pieces, "<name>" held BE64
// position + the whole snapshot; such a value never starts with the magic.)
inline constexpr std::string_view kSnapshotManifestMagic{"TDSNAP\x01\x00", 8};

inline void put_be64(std::string& out, uint64_t v) {
  // One append of eight bytes: eight push_backs each checked the capacity (keys and the chain's
  // hashing input are built of these).
  const uint64_t be = htobe64(v);
  char bytes[8];
  std::memcpy(bytes, &be, sizeof bytes);
  out.append(bytes, sizeof bytes);
}

inline uint64_t get_be64(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < in.size(); ++i) v = v << 8 | static_cast<unsigned char>(in[i]);
  return v;
}

inline std::string position_key(uint64_t position) {
  std::string k;
  put_be64(k, position);
  return k;
}

// Stream ids never contain NUL (EventLog rejects them), so the 0x00 separator keeps "T-1" and
// "T-10" apart and every stream's keys contiguous.
inline std::string stream_key(std::string_view stream, uint64_t version) {
  std::string k;
  k.reserve(stream.size() + 9);
  k.append(stream);
  k.push_back('\0');
  put_be64(k, version);
  return k;
}

// Exclusive upper bound of every key made of `id`, the 0x00 separator and more: a stream's keys
// in the streams column family, a snapshot's pieces in the snapshots one (neither a stream id nor
// a snapshot name holds a NUL byte).
inline std::string id_upper_bound(std::string_view id) {
  std::string k(id);
  k.push_back('\1');
  return k;
}

inline std::string snapshot_piece_key(std::string_view name, uint64_t generation, uint64_t index) {
  std::string k;
  k.reserve(name.size() + 17);
  k.append(name);
  k.push_back('\0');
  put_be64(k, generation);
  put_be64(k, index);
  return k;
}

}  // namespace ticketd::storage::layout
