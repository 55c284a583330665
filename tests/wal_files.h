#pragma once
// A log's RocksDB WAL files, as the crash and prefilled-WAL tests inspect and damage them.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace ticketd::testing {

// The WAL files in a RocksDB directory, oldest first (RocksDB numbers them in creation order).
inline std::vector<std::filesystem::path> wal_files(const std::string& path) {
  std::vector<std::filesystem::path> wals;
  for (const auto& entry : std::filesystem::directory_iterator(path)) {
    if (entry.path().extension() == ".log") wals.push_back(entry.path());
  }
  std::sort(wals.begin(), wals.end());
  return wals;
}

inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::filesystem::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace ticketd::testing
