// The write-pointer table (zonedmeta): nr_zones 8-byte entries in whole,
// contiguous, cluster-aligned host clusters, written through the image's
// HostFile and nothing else.
//
// The table keeps an encoded copy of what is durable on disk. Updates go into
// that copy and mark 512-byte sectors dirty; persist() writes only the dirty
// sectors and syncs. The caller orders persist() after the data and qcow2
// metadata it depends on (SPEC section 5); see ZonedDevice::flush.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/zone_geometry.h"
#include "core/zone_types.h"
#include "qcow2/host_file.h"
#include "qcow2/result.h"

namespace zqfs::core {

struct WpEntry {
    uint64_t wp = 0;
    bool conventional = false;
};

// Entry codec: seed = little-endian, bits 0-58 WP, bit 59 conventional;
// latest = big-endian, bits 0-62 WP, bit 63 conventional.
uint64_t encode_wp_raw(Layout layout, WpEntry e);
WpEntry decode_wp_raw(Layout layout, uint64_t raw);
void store_wp_entry(Layout layout, std::byte* p, WpEntry e);
WpEntry load_wp_entry(Layout layout, const std::byte* p);

// Checks one entry against its zone: 512-aligned, inside [start, start+len],
// conventional bit set exactly for the first conventional_zones zones.
Status validate_wp_entry(const ZoneGeometry& g, uint32_t zone, WpEntry e);

class WritePointerTable {
public:
    // An all-empty table (every WP at its zone start), as create writes it.
    WritePointerTable(Layout layout, const ZoneGeometry& geometry, uint64_t host_offset);

    // Reads and decodes the table. With `problems` non-null, invalid entries
    // are reported there (one line each) and loaded as empty zones (in memory
    // only) instead of failing the load.
    static Result<WritePointerTable> load(qcow2::HostFile& file, Layout layout, const ZoneGeometry& geometry,
                                          uint64_t host_offset, std::vector<std::string>* problems = nullptr);

    uint64_t wp(uint32_t zone) const;
    // Records `wp` (rounded up to 512) for a sequential zone in the durable copy.
    void set(uint32_t zone, uint64_t wp);
    bool dirty() const { return !dirty_sectors_.empty(); }
    // Writes the dirty sectors and syncs the host file.
    Status persist(qcow2::HostFile& file);
    // Writes the whole table (zero padded to `padded_bytes`) and syncs.
    Status write_all(qcow2::HostFile& file, uint64_t padded_bytes);

    uint64_t host_offset() const { return host_offset_; }
    uint64_t bytes() const { return encoded_.size() - pad_; }

private:
    Layout layout_;
    ZoneGeometry geometry_;
    uint64_t host_offset_;
    std::vector<std::byte> encoded_;  // durable copy, padded to whole sectors
    uint64_t pad_ = 0;
    std::vector<uint32_t> dirty_sectors_;  // unsorted, unique
    std::vector<bool> sector_dirty_;
};

}  // namespace zqfs::core
