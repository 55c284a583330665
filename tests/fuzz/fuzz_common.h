#pragma once
// Shared by the fuzz targets: the reference application's catalog, loaded once.
#include "tests/reference_catalog.h"

namespace ticketd::fuzz {

inline const Catalog& reference_catalog() {
  static const Catalog catalog = testing::reference_catalog();
  return catalog;
}

}  // namespace ticketd::fuzz
