// The zoned header extension (type 0x007a6264): its two on-disk layouts and
// the rules its fields must obey (SPEC section 2).
//
// decode_zoned_extension() only parses; validate_zoned_config() applies the
// rules shared by create and open, each with its own one-line message;
// clamp_zone_limits() turns over-large open/active limits into warnings.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/zone_types.h"
#include "qcow2/result.h"

namespace zqfs::core {

struct DecodedExtension {
    ZonedConfig config;
    uint8_t zoned = 1;            // the zoned byte as stored
    uint64_t zonedmeta_size = 0;  // seed layout only (latest: derived, nr_zones * 8)
};

// Length-checked parse of either layout; refuses lengths other than 56/44
// and a zoned byte other than 1.
Result<DecodedExtension> decode_zoned_extension(std::span<const std::byte> data);
std::vector<std::byte> encode_zoned_extension(const ZonedConfig& cfg);

// More zones than this are refused: per-zone memory must stay bounded even
// for a hostile header (16 Mi zones: a 128 MiB table, ~400 MiB of state).
inline constexpr uint32_t kMaxZones = 1u << 24;

// Bytes of the write-pointer table (nr_zones * 8) and of the whole clusters holding it.
inline uint64_t zonedmeta_bytes(const ZonedConfig& cfg) { return uint64_t{cfg.nr_zones} * 8; }
inline uint64_t zonedmeta_cluster_bytes(const ZonedConfig& cfg, uint64_t cluster_size) {
    return (zonedmeta_bytes(cfg) + cluster_size - 1) / cluster_size * cluster_size;
}

// Geometry rules shared by create and open (not the metadata location).
Status validate_zoned_config(const ZonedConfig& cfg, uint64_t virtual_size, uint64_t cluster_size);

// Clamps max_open/max_active to the sequential zone count and max_open to a
// non-zero max_active, appending one warning line per clamp.
void clamp_zone_limits(ZonedConfig& cfg, std::vector<std::string>* warnings);

// Open-time rules on where the write-pointer table lies.
Status validate_zonedmeta_location(const DecodedExtension& ext, uint64_t cluster_size, uint64_t file_size);

}  // namespace zqfs::core
