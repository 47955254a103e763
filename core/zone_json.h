// JSON status of one zone (SPEC section 4, `user.zone`) and of a device
// (`info`, `user.zqfs`). Device status is O(1) in size: no per-zone arrays.
#pragma once

#include <cstdint>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/zone_types.h"
#include "core/zoned_device.h"

namespace zqfs::core {

// {"zone":5,"type":"seq","cond":"open-implicit","cond_code":2,"start":...,
//  "len":...,"capacity":...,"wp":...,"size":...}; size = wp - start for
// sequential zones, the capacity for conventional ones.
nlohmann::ordered_json zone_info_json(const ZoneInfo& z);
// The same object as zone_info_json(z).dump(), appended to `out` without
// building a JSON tree: `zqfs-img report --output=json` writes a million
// of them.
void append_zone_json(fmt::memory_buffer& out, const ZoneInfo& z);

nlohmann::ordered_json device_info_json(const ZonedConfig& cfg, uint64_t virtual_size, uint32_t cluster_size,
                                const DeviceCounts& counts);

}  // namespace zqfs::core
