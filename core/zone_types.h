// Vocabulary of the zoned device: zone types and conditions (blk_zone codes),
// the two on-disk layouts, and the geometry/limits of a device.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zqfs::core {

enum class ZoneType : uint8_t { conventional, sequential };

enum class ZoneCond : uint8_t {
    not_wp = 0x0,
    empty = 0x1,
    implicit_open = 0x2,
    explicit_open = 0x3,
    closed = 0x4,
    read_only = 0xD,
    full = 0xE,
    offline = 0xF,
};

// "not-write-pointer", "empty", "open-implicit", "open-explicit", "closed",
// "read-only", "full", "offline".
std::string_view cond_name(ZoneCond c);

enum class Layout : uint8_t { seed, latest };
std::string_view layout_name(Layout l);

inline constexpr uint32_t kZonedExtensionType = 0x007a6264;
inline constexpr uint64_t kIncompatZoned = 1ull << 5;
inline constexpr uint32_t kSeedExtensionLength = 56;
inline constexpr uint32_t kLatestExtensionLength = 44;

// Geometry and limits as stored in the zoned header extension.
struct ZonedConfig {
    Layout layout = Layout::seed;
    uint64_t zone_size = 256ull << 20;
    uint64_t zone_capacity = 256ull << 20;
    uint32_t conventional_zones = 0;
    uint32_t nr_zones = 0;
    uint32_t max_active_zones = 0;  // 0 = no limit
    uint32_t max_open_zones = 0;    // 0 = no limit
    uint32_t max_append_bytes = 64 * 1024;  // seed layout only; latest: 0 (not present)
    uint64_t zonedmeta_offset = 0;
};

// Everything `zqfs-img create` takes.
struct CreateSpec {
    uint64_t virtual_size = 0;
    uint32_t cluster_size = 65536;
    uint32_t refcount_bits = 16;
    Layout layout = Layout::seed;
    uint64_t zone_size = 256ull << 20;
    std::optional<uint64_t> zone_capacity;  // default: zone_size
    uint32_t conventional_zones = 0;
    uint32_t max_open_zones = 0;
    uint32_t max_active_zones = 0;
    std::optional<uint32_t> max_append_bytes;  // default: 64 KiB
};

// A snapshot of one zone's state.
struct ZoneInfo {
    uint32_t index = 0;
    ZoneType type = ZoneType::sequential;
    ZoneCond cond = ZoneCond::empty;
    uint64_t start = 0;     // absolute byte offset in the virtual disk
    uint64_t len = 0;       // zone length (smaller for a runt last zone)
    uint64_t capacity = 0;  // writable bytes from start
    uint64_t wp = 0;        // absolute write pointer (== start for conventional)
    uint64_t written() const { return wp - start; }
};

}  // namespace zqfs::core
