// RocksDB's CRC-32C, computed with the CPU's instructions.
//
// RocksDB checksums every WAL record (and reads them back at recovery) with CRC-32C through
// `rocksdb::crc32c::Extend`. Debian builds librocksdb portable, without SSE 4.2, so that function
// is a table-driven loop: 26 µs for a group commit's 36 KB, 8% of the log writer's time in
// `ticketctl bench append`. ISA-L's `crc32_iscsi` computes the same checksum (CRC-32C is iSCSI's)
// with the instructions this CPU has, chosen at run time: 0.6 µs for the same bytes.
//
// storage/CMakeLists.txt links every program using the log with `--wrap` on `Extend`'s symbol, so
// the references inside librocksdb.a's objects come here and `__real_<symbol>` names RocksDB's own.
// tests/rocksdb_crc32c_test.cpp holds the two to the same results. With librocksdb.so (the
// ThreadSanitizer build) the library's internal calls stay its own: slower, equally correct.

#include <isa-l/crc.h>

#include <climits>
#include <cstddef>
#include <cstdint>

// Reserved-looking names are the linker's convention for --wrap.
extern "C" uint32_t __wrap__ZN7rocksdb6crc32c6ExtendEjPKcm(uint32_t crc, const char* data,
                                                           size_t n) {
  // RocksDB's CRC is the inverted form (its Extend inverts on the way in and out); ISA-L's takes
  // and returns the raw register.
  uint32_t raw = ~crc;
  auto* bytes = reinterpret_cast<unsigned char*>(const_cast<char*>(data));
  while (n > 0) {
    const int piece = n > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(n);
    raw = crc32_iscsi(bytes, piece, raw);
    bytes += piece;
    n -= static_cast<size_t>(piece);
  }
  return ~raw;
}
