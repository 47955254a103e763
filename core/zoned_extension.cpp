#include "core/zoned_extension.h"

#include <bit>

#include "qcow2/endian.h"

namespace zqfs::core {
namespace {

DecodedExtension decode_seed(const std::byte* p) {
    DecodedExtension d;
    ZonedConfig& c = d.config;
    c.layout = Layout::seed;
    d.zoned = static_cast<uint8_t>(p[0]);
    c.zone_size = load_be<uint64_t>(p + 4);
    c.zone_capacity = load_be<uint64_t>(p + 12);
    c.conventional_zones = load_be<uint32_t>(p + 20);
    c.nr_zones = load_be<uint32_t>(p + 24);
    c.max_active_zones = load_be<uint32_t>(p + 28);
    c.max_open_zones = load_be<uint32_t>(p + 32);
    c.max_append_bytes = load_be<uint32_t>(p + 36);
    d.zonedmeta_size = load_be<uint64_t>(p + 40);
    c.zonedmeta_offset = load_be<uint64_t>(p + 48);
    return d;
}

DecodedExtension decode_latest(const std::byte* p) {
    DecodedExtension d;
    ZonedConfig& c = d.config;
    c.layout = Layout::latest;
    d.zoned = static_cast<uint8_t>(p[0]);
    c.nr_zones = load_be<uint32_t>(p + 4);
    c.zone_size = load_be<uint64_t>(p + 8);
    c.zone_capacity = load_be<uint64_t>(p + 16);
    c.zonedmeta_offset = load_be<uint64_t>(p + 24);
    c.conventional_zones = load_be<uint32_t>(p + 32);
    c.max_active_zones = load_be<uint32_t>(p + 36);
    c.max_open_zones = load_be<uint32_t>(p + 40);
    c.max_append_bytes = 0;  // not recorded by this layout
    d.zonedmeta_size = zonedmeta_bytes(c);
    return d;
}

}  // namespace

Result<DecodedExtension> decode_zoned_extension(std::span<const std::byte> data) {
    DecodedExtension d;
    if (data.size() == kSeedExtensionLength)
        d = decode_seed(data.data());
    else if (data.size() == kLatestExtensionLength)
        d = decode_latest(data.data());
    else
        return make_error(EINVAL, "zoned extension: length {} is neither {} (seed layout) nor {} (latest layout)",
                          data.size(), kSeedExtensionLength, kLatestExtensionLength);
    if (d.zoned == 0)
        return make_error(EINVAL, "zoned extension: zoned=0 (not zoned) although incompatible bit 5 is set");
    if (d.zoned != 1)
        return make_error(EINVAL, "zoned extension: zoned={} is not 1 (host-managed)", d.zoned);
    return d;
}

std::vector<std::byte> encode_zoned_extension(const ZonedConfig& c) {
    if (c.layout == Layout::seed) {
        std::vector<std::byte> b(kSeedExtensionLength);
        std::byte* p = b.data();
        p[0] = std::byte{1};
        store_be<uint64_t>(p + 4, c.zone_size);
        store_be<uint64_t>(p + 12, c.zone_capacity);
        store_be<uint32_t>(p + 20, c.conventional_zones);
        store_be<uint32_t>(p + 24, c.nr_zones);
        store_be<uint32_t>(p + 28, c.max_active_zones);
        store_be<uint32_t>(p + 32, c.max_open_zones);
        store_be<uint32_t>(p + 36, c.max_append_bytes);
        store_be<uint64_t>(p + 40, zonedmeta_bytes(c));
        store_be<uint64_t>(p + 48, c.zonedmeta_offset);
        return b;
    }
    std::vector<std::byte> b(kLatestExtensionLength);
    std::byte* p = b.data();
    p[0] = std::byte{1};
    store_be<uint32_t>(p + 4, c.nr_zones);
    store_be<uint64_t>(p + 8, c.zone_size);
    store_be<uint64_t>(p + 16, c.zone_capacity);
    store_be<uint64_t>(p + 24, c.zonedmeta_offset);
    store_be<uint32_t>(p + 32, c.conventional_zones);
    store_be<uint32_t>(p + 36, c.max_active_zones);
    store_be<uint32_t>(p + 40, c.max_open_zones);
    return b;
}

Status validate_zoned_config(const ZonedConfig& c, uint64_t virtual_size, uint64_t cluster_size) {
    if (c.zone_size == 0 || !std::has_single_bit(c.zone_size))
        return make_error(EINVAL, "zone_size {} is not a power of two", c.zone_size);
    if (c.zone_size % cluster_size != 0)
        return make_error(EINVAL, "zone_size {} is not a multiple of the cluster size {}", c.zone_size, cluster_size);
    if (c.zone_capacity == 0) return make_error(EINVAL, "zone_capacity is 0; it must be positive");
    if (c.zone_capacity > c.zone_size)
        return make_error(EINVAL, "zone_capacity {} is larger than zone_size {}", c.zone_capacity, c.zone_size);
    if (c.zone_capacity % 512 != 0)
        return make_error(EINVAL, "zone_capacity {} is not a multiple of 512", c.zone_capacity);
    uint64_t want_zones = virtual_size / c.zone_size + (virtual_size % c.zone_size != 0);
    if (c.nr_zones != want_zones)
        return make_error(EINVAL, "nr_zones {} does not equal ceil(virtual size {} / zone_size {}) = {}", c.nr_zones,
                          virtual_size, c.zone_size, want_zones);
    if (c.nr_zones > kMaxZones)
        return make_error(EINVAL, "nr_zones {} is more than the {} zones zqfs supports", c.nr_zones, kMaxZones);
    if (c.conventional_zones >= c.nr_zones)
        return make_error(EINVAL, "conventional_zones {} is not below nr_zones {}", c.conventional_zones,
                          c.nr_zones);
    if (c.layout == Layout::seed) {
        if (c.max_append_bytes % 512 != 0)
            return make_error(EINVAL, "max_append_bytes {} is not a multiple of 512", c.max_append_bytes);
        if (c.max_append_bytes >= c.zone_capacity)
            return make_error(EINVAL, "max_append_bytes {} is not below zone_capacity {}", c.max_append_bytes,
                              c.zone_capacity);
    }
    return {};
}

void clamp_zone_limits(ZonedConfig& c, std::vector<std::string>* warnings) {
    auto warn = [&](std::string s) {
        if (warnings) warnings->push_back(std::move(s));
    };
    uint32_t seq = c.nr_zones > c.conventional_zones ? c.nr_zones - c.conventional_zones : 0;
    if (c.max_active_zones > seq) {
        warn(fmt::format("max_active_zones {} is more than the {} sequential zones; clamped to {}",
                         c.max_active_zones, seq, seq));
        c.max_active_zones = seq;
    }
    if (c.max_open_zones > seq) {
        warn(fmt::format("max_open_zones {} is more than the {} sequential zones; clamped to {}", c.max_open_zones,
                         seq, seq));
        c.max_open_zones = seq;
    }
    if (c.max_active_zones != 0 && c.max_open_zones > c.max_active_zones) {
        warn(fmt::format("max_open_zones {} is more than max_active_zones {}; clamped to {}", c.max_open_zones,
                         c.max_active_zones, c.max_active_zones));
        c.max_open_zones = c.max_active_zones;
    }
}

Status validate_zonedmeta_location(const DecodedExtension& ext, uint64_t cluster_size, uint64_t file_size) {
    const ZonedConfig& c = ext.config;
    if (ext.zonedmeta_size != zonedmeta_bytes(c))
        return make_error(EINVAL, "zonedmeta_size {} does not equal nr_zones {} * 8", ext.zonedmeta_size,
                          c.nr_zones);
    if (c.zonedmeta_offset % cluster_size != 0)
        return make_error(EINVAL, "zonedmeta_offset {} is not aligned to the cluster size {}", c.zonedmeta_offset,
                          cluster_size);
    if (c.zonedmeta_offset < cluster_size)
        return make_error(EINVAL, "zonedmeta_offset {} overlaps the header cluster", c.zonedmeta_offset);
    if (c.zonedmeta_offset > file_size || zonedmeta_bytes(c) > file_size - c.zonedmeta_offset)
        return make_error(EINVAL, "zonedmeta at {} ({} bytes) lies outside the file ({} bytes)", c.zonedmeta_offset,
                          zonedmeta_bytes(c), file_size);
    return {};
}

}  // namespace zqfs::core
