#include "tools/ticketctl/raw_scan.h"

#include <rocksdb/db.h>

#include <chrono>
#include <memory>
#include <vector>

#include "storage/layout.h"

namespace ticketd::tools {

RawScan raw_scan_events(const std::string& path) {
  RawScan out;
  std::vector<std::string> names;
  rocksdb::DBOptions options;
  if (auto s = rocksdb::DB::ListColumnFamilies(options, path, &names); !s.ok()) {
    out.error = s.ToString();
    return out;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (auto s = rocksdb::DB::OpenForReadOnly(options, path, cfs, &handles, &raw); !s.ok()) {
    out.error = s.ToString();
    return out;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::ColumnFamilyHandle* events = nullptr;
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == storage::layout::kEvents) events = handles[i];
  }
  auto started = std::chrono::steady_clock::now();
  if (events) {
    rocksdb::ReadOptions scan;  // as the log's own scans: no block cache fill, read ahead
    scan.fill_cache = false;
    scan.readahead_size = 2 << 20;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(scan, events));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rocksdb::Slice v = it->value();
      for (size_t i = 0; i < v.size(); i += 64) out.fold ^= static_cast<unsigned char>(v[i]);
      out.bytes += v.size();
      ++out.events;
    }
    if (!it->status().ok()) out.error = it->status().ToString();
  } else {
    out.error = "no events column family";
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  return out;
}

}  // namespace ticketd::tools
