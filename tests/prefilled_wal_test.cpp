// The prefilled WAL files under RocksDB itself: what recovery makes of a lost stretch of the
// log, and that a file RocksDB is done with is cut back to its data.
#include "storage/prefilled_wal.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/temp_dir.h"
#include "tests/wal_files.h"

namespace ticketd::storage {
namespace {

using ticketd::testing::TempDir;
using ticketd::testing::wal_files;

constexpr size_t kBlock = 32768;  // RocksDB's WAL block
constexpr int kBatches = 40;

std::string key(int i) {
  char k[16];  // five bytes for the i < 10000 used here
  std::snprintf(k, sizeof k, "k%04d", i);
  return k;
}

// Writes kBatches synced batches through the prefilled file system, each exactly one WAL block
// (a 7-byte header, the batch's 12-byte header, type, key length, 5-byte key, 3-byte value
// length, value), so that every block starts a record; then closes without flushing.
void write_block_sized_batches(const std::string& path) {
  auto env = rocksdb::NewCompositeEnv(NewPrefilledWalFileSystem(rocksdb::FileSystem::Default()));
  rocksdb::Options options;
  options.create_if_missing = true;
  options.env = env.get();
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, path, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  for (int i = 0; i < kBatches; ++i) {
    ASSERT_TRUE(db->Put(sync, key(i), std::string(kBlock - 7 - 12 - 1 - 1 - 5 - 3, 'v')).ok());
  }
  ASSERT_TRUE(db->Close().ok());
}

// The keys a plain RocksDB recovers from `path` (point-in-time recovery, the log's mode).
std::vector<int> recovered_keys(const std::string& path) {
  rocksdb::Options options;
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  rocksdb::DB* raw = nullptr;
  EXPECT_TRUE(rocksdb::DB::Open(options, path, &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  std::vector<int> keys;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    keys.push_back(std::stoi(it->key().ToString().substr(1)));
  return keys;
}

void overwrite_block(const std::filesystem::path& wal, size_t block, char byte) {
  std::fstream f(wal, std::ios::binary | std::ios::in | std::ios::out);
  f.seekp(static_cast<std::streamoff>(block * kBlock));
  std::string bytes(kBlock, byte);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A power cut that loses a block of the tail while later ones reach the disk leaves the lost
// block reading as whatever was on disk before: with a prefilled WAL, the fill. Recovery then
// ends at that block. Had the fill been zeros, RocksDB would skip the block as padding and go
// on with the next record: a log with a hole in it.
TEST(PrefilledWal, ALostBlockEndsRecoveryWhereZerosWouldReadAcrossIt) {
  constexpr size_t kLost = 25;
  for (char fill : {static_cast<char>(kWalFillByte), '\0'}) {
    TempDir dir;
    write_block_sized_batches(dir.path());
    auto wals = wal_files(dir.path());
    ASSERT_EQ(wals.size(), 1u);
    ASSERT_EQ(std::filesystem::file_size(wals[0]), kBatches * kBlock) << "not one batch a block";
    overwrite_block(wals[0], kLost, fill);

    std::vector<int> keys = recovered_keys(dir.path());
    std::vector<int> prefix(kLost);
    for (size_t i = 0; i < kLost; ++i) prefix[i] = static_cast<int>(i);
    if (fill == static_cast<char>(kWalFillByte)) {
      EXPECT_EQ(keys, prefix) << "recovery read past the lost block";
    } else {
      std::vector<int> with_hole;
      for (int i = 0; i < kBatches; ++i) {
        if (i != static_cast<int>(kLost)) with_hole.push_back(i);
      }
      EXPECT_EQ(keys, with_hole) << "RocksDB no longer reads across a zeroed block; the fill's "
                                    "reason is gone (storage/prefilled_wal.h)";
    }
  }
}

// A WAL file that RocksDB closes, or that a newer WAL file replaces, holds its data and no fill;
// the newest one, while written, has fill after its data.
TEST(PrefilledWal, FilesAreCutBackToTheirData) {
  TempDir dir;
  auto env = rocksdb::NewCompositeEnv(NewPrefilledWalFileSystem(rocksdb::FileSystem::Default()));
  rocksdb::Options options;
  options.create_if_missing = true;
  options.env = env.get();
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir.path(), &raw).ok());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  ASSERT_TRUE(db->Put(sync, "a", "1").ok());
  auto first = wal_files(dir.path());
  ASSERT_EQ(first.size(), 1u);
  // The fill thread's first step may still be on its way (an fdatasync on a busy machine).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::filesystem::file_size(first[0]) <= 1000u &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GT(std::filesystem::file_size(first[0]), 1000u) << "no fill ahead of the data";

  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());  // switches to a new WAL file
  ASSERT_TRUE(db->Put(sync, "b", "2").ok());
  if (std::filesystem::exists(first[0])) {
    EXPECT_LT(std::filesystem::file_size(first[0]), 1000u) << "the replaced WAL kept its fill";
  }
  ASSERT_TRUE(db->Close().ok());
  for (const auto& wal : wal_files(dir.path())) {
    EXPECT_LT(std::filesystem::file_size(wal), 1000u) << wal << " kept its fill after close";
  }
  db.reset();
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir.path(), &raw).ok());
  db.reset(raw);
  std::string value;
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "a", &value).ok() && value == "1");
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "b", &value).ok() && value == "2");
}

// Batches of sizes that start and end anywhere in a block, a few larger than the tail's first
// buffer and than a fill step, some unsynced (RocksDB's checkpoint-style writes).
void write_mixed_batches(rocksdb::DB* db, int count) {
  rocksdb::WriteOptions sync, unsynced;
  sync.sync = true;
  for (int i = 0; i < count; ++i) {
    const size_t size = i % 17 == 16 ? (1 << 20) + 4093 : static_cast<size_t>(1 + i * 997 % 9001);
    const rocksdb::WriteOptions& options = i % 5 == 4 ? unsynced : sync;
    ASSERT_TRUE(db->Put(options, key(i), std::string(size, static_cast<char>('a' + i % 26))).ok());
  }
}

std::unique_ptr<rocksdb::DB> open_prefilled(rocksdb::Env* env, const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.env = env;
  rocksdb::DB* raw = nullptr;
  EXPECT_TRUE(rocksdb::DB::Open(options, path, &raw).ok());
  return std::unique_ptr<rocksdb::DB>(raw);
}

// Records written with O_DIRECT | O_DSYNC (the default) and through the page cache make the same
// file: the last partial block, written again with each flush, keeps what it held.
TEST(PrefilledWal, DirectWritesLeaveTheBytesOfBufferedOnes) {
  constexpr int kCount = 60;
  std::string bytes[2];
  for (bool direct : {true, false}) {
    PrefilledWalOptions wal;
    wal.direct_writes = direct;
    auto env =
        rocksdb::NewCompositeEnv(NewPrefilledWalFileSystem(rocksdb::FileSystem::Default(), wal));
    TempDir dir;
    auto db = open_prefilled(env.get(), dir.path());
    ASSERT_TRUE(db);
    write_mixed_batches(db.get(), kCount);
    ASSERT_TRUE(db->Close().ok());
    auto wals = wal_files(dir.path());
    ASSERT_EQ(wals.size(), 1u);
    bytes[direct] = ticketd::testing::read_file(wals[0]);
  }
  EXPECT_GT(bytes[1].size(), 3u << 20);  // three large batches crossed fill steps
  EXPECT_TRUE(bytes[1] == bytes[0])
      << "direct " << bytes[1].size() << " bytes, buffered " << bytes[0].size();
}

// What a kill leaves while the database is open: every batch synced so far, read back from the
// files as any other process (and RocksDB's recovery) reads them, through the page cache.
TEST(PrefilledWal, DirectWritesAreReadBackWhileTheFileIsWritten) {
  constexpr int kCount = 40;
  auto env = rocksdb::NewCompositeEnv(NewPrefilledWalFileSystem(rocksdb::FileSystem::Default()));
  TempDir dir;
  auto db = open_prefilled(env.get(), dir.path());
  ASSERT_TRUE(db);
  write_mixed_batches(db.get(), kCount);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  ASSERT_TRUE(db->Put(sync, key(9999), "synced").ok());  // syncs the unsynced ones before it

  TempDir copy;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path().filename() == "LOCK") continue;
    std::filesystem::copy(entry.path(),
                          std::filesystem::path(copy.path()) / entry.path().filename());
  }
  std::vector<int> keys = recovered_keys(copy.path());
  keys.erase(std::remove(keys.begin(), keys.end(), 9999), keys.end());
  std::vector<int> all(kCount);
  for (int i = 0; i < kCount; ++i) all[i] = i;
  EXPECT_EQ(keys, all);
  ASSERT_TRUE(db->Close().ok());
}

}  // namespace
}  // namespace ticketd::storage
