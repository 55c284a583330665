#pragma once
// Opens the RocksDB database underneath an EventLog directly, as an attacker with file access or
// a crash that lost unsynced writes would leave it.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/layout.h"

namespace ticketd::testing {

class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* db = nullptr;
    EXPECT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, cfs, &handles_, &db).ok());
    db_.reset(db);
    names_ = std::move(names);
  }
  ~RawDb() {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  }

  rocksdb::DB& db() { return *db_; }
  rocksdb::ColumnFamilyHandle* cf(const std::string& name) {
    for (size_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return handles_[i];
    }
    ADD_FAILURE() << "no column family " << name;
    return nullptr;
  }

  // The envelope stored at a global position.
  std::string get(uint64_t pos) {
    std::string v;
    EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), cf(storage::layout::kEvents),
                         storage::layout::position_key(pos), &v)
                    .ok());
    return v;
  }
  void put(uint64_t pos, const std::string& v) {
    ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), cf(storage::layout::kEvents),
                         storage::layout::position_key(pos), v)
                    .ok());
  }
  void remove(uint64_t pos) {
    ASSERT_TRUE(db_->Delete(rocksdb::WriteOptions(), cf(storage::layout::kEvents),
                            storage::layout::position_key(pos))
                    .ok());
  }

 private:
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::vector<std::string> names_;
};

}  // namespace ticketd::testing
