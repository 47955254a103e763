// Where each zone lies in the virtual disk. Zones are zone_size apart; the
// last one may be a runt: its length is what remains of the virtual disk and
// its capacity min(zone_capacity, length). Conventional zones come first.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/zone_types.h"

namespace zqfs::core {

class ZoneGeometry {
public:
    ZoneGeometry() = default;
    ZoneGeometry(uint64_t virtual_size, const ZonedConfig& cfg)
        : virtual_size_(virtual_size),
          zone_size_(cfg.zone_size),
          zone_capacity_(cfg.zone_capacity),
          nr_zones_(cfg.nr_zones),
          conventional_zones_(cfg.conventional_zones) {}

    uint32_t nr_zones() const { return nr_zones_; }
    uint32_t conventional_zones() const { return conventional_zones_; }
    uint64_t zone_size() const { return zone_size_; }
    uint64_t virtual_size() const { return virtual_size_; }

    bool conventional(uint32_t z) const { return z < conventional_zones_; }
    ZoneType type(uint32_t z) const { return conventional(z) ? ZoneType::conventional : ZoneType::sequential; }
    uint64_t start(uint32_t z) const { return uint64_t{z} * zone_size_; }
    uint64_t len(uint32_t z) const { return std::min(zone_size_, virtual_size_ - start(z)); }
    uint64_t capacity(uint32_t z) const { return std::min(zone_capacity_, len(z)); }
    uint64_t capacity_end(uint32_t z) const { return start(z) + capacity(z); }
    uint64_t end(uint32_t z) const { return start(z) + len(z); }
    // Zone holding byte `offset` (offset < virtual_size).
    uint32_t zone_of(uint64_t offset) const { return static_cast<uint32_t>(offset / zone_size_); }

private:
    uint64_t virtual_size_ = 0;
    uint64_t zone_size_ = 1;
    uint64_t zone_capacity_ = 1;
    uint32_t nr_zones_ = 0;
    uint32_t conventional_zones_ = 0;
};

}  // namespace zqfs::core
