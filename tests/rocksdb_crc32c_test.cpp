// RocksDB's CRC-32C as this project links it (storage/rocksdb_crc32c.cpp): ISA-L's instructions
// in place of Debian's table-driven loop must give RocksDB exactly the checksums its own function
// gives, or no WAL written by one could be read by the other.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace rocksdb::crc32c {
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);  // util/crc32c.h, not installed
}
// RocksDB's own function, under the name the linker's --wrap gives it.
extern "C" uint32_t __real__ZN7rocksdb6crc32c6ExtendEjPKcm(uint32_t init_crc, const char* data,
                                                           size_t n);

namespace {

TEST(RocksdbCrc32c, GivesTheStandardCheckValue) {
  const std::string check = "123456789";  // CRC-32C's check value (RFC 3720, B.4)
  EXPECT_EQ(rocksdb::crc32c::Extend(0, check.data(), check.size()), 0xE3069283u);
  EXPECT_EQ(rocksdb::crc32c::Extend(0, check.data(), 0), 0u);
}

TEST(RocksdbCrc32c, AgreesWithRocksDbsOwnOnEveryLengthAlignmentAndSeed) {
  std::mt19937_64 rng(20261203);
  std::vector<char> bytes(1 << 17);
  for (char& b : bytes) b = static_cast<char>(rng());
  // Every length up to 300 at every alignment to 16 covers the vector code's edges; the long
  // ones cover a WAL block (32 KB) and a group commit of submissions (~110 KB).
  for (size_t n = 0; n <= 300; ++n) {
    for (size_t offset = 0; offset < 16; ++offset) {
      const uint32_t seed = static_cast<uint32_t>(rng());
      ASSERT_EQ(rocksdb::crc32c::Extend(seed, bytes.data() + offset, n),
                __real__ZN7rocksdb6crc32c6ExtendEjPKcm(seed, bytes.data() + offset, n))
          << "length " << n << ", offset " << offset;
    }
  }
  for (int i = 0; i < 200; ++i) {
    const size_t offset = rng() % 64;
    const size_t n = rng() % (bytes.size() - offset);
    const uint32_t seed = static_cast<uint32_t>(rng());
    ASSERT_EQ(rocksdb::crc32c::Extend(seed, bytes.data() + offset, n),
              __real__ZN7rocksdb6crc32c6ExtendEjPKcm(seed, bytes.data() + offset, n))
        << "length " << n << ", offset " << offset;
  }
}

TEST(RocksdbCrc32c, ExtendsPieceByPieceAsInOneGo) {
  const std::string text = "工单 T-000001 已提交; the record is split across WAL blocks";
  const uint32_t whole = rocksdb::crc32c::Extend(0, text.data(), text.size());
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    uint32_t crc = rocksdb::crc32c::Extend(0, text.data(), cut);
    crc = rocksdb::crc32c::Extend(crc, text.data() + cut, text.size() - cut);
    ASSERT_EQ(crc, whole) << "cut at " << cut;
  }
}

}  // namespace
