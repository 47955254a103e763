#include "core/write_pointer_table.h"

#include <algorithm>

#include "qcow2/endian.h"

namespace zqfs::core {
namespace {

constexpr uint64_t kSector = 512;
constexpr uint64_t kSeedWpMask = (1ull << 59) - 1;
constexpr uint64_t kSeedCnvBit = 1ull << 59;
constexpr uint64_t kLatestWpMask = (1ull << 63) - 1;
constexpr uint64_t kLatestCnvBit = 1ull << 63;

uint64_t round_up_sector(uint64_t v) { return (v + kSector - 1) / kSector * kSector; }

}  // namespace

uint64_t encode_wp_raw(Layout layout, WpEntry e) {
    if (layout == Layout::seed) return (e.wp & kSeedWpMask) | (e.conventional ? kSeedCnvBit : 0);
    return (e.wp & kLatestWpMask) | (e.conventional ? kLatestCnvBit : 0);
}

WpEntry decode_wp_raw(Layout layout, uint64_t raw) {
    // Seed bits 60-63 are not defined; keeping them in the WP makes such an
    // entry fail the range check instead of being silently accepted.
    if (layout == Layout::seed) return {raw & ~kSeedCnvBit, (raw & kSeedCnvBit) != 0};
    return {raw & kLatestWpMask, (raw & kLatestCnvBit) != 0};
}

void store_wp_entry(Layout layout, std::byte* p, WpEntry e) {
    uint64_t raw = encode_wp_raw(layout, e);
    if (layout == Layout::seed)
        store_le<uint64_t>(p, raw);
    else
        store_be<uint64_t>(p, raw);
}

WpEntry load_wp_entry(Layout layout, const std::byte* p) {
    return decode_wp_raw(layout, layout == Layout::seed ? load_le<uint64_t>(p) : load_be<uint64_t>(p));
}

Status validate_wp_entry(const ZoneGeometry& g, uint32_t zone, WpEntry e) {
    bool want_cnv = g.conventional(zone);
    if (e.conventional != want_cnv)
        return make_error(EINVAL, "write pointer of zone {}: conventional bit is {} but the zone is {}", zone,
                          e.conventional ? "set" : "clear", want_cnv ? "conventional" : "sequential");
    if (e.wp % kSector != 0)
        return make_error(EINVAL, "write pointer of zone {}: {} is not 512-aligned", zone, e.wp);
    if (e.wp < g.start(zone) || e.wp > g.end(zone))
        return make_error(EINVAL, "write pointer of zone {}: {} is outside the zone [{}, {}]", zone, e.wp,
                          g.start(zone), g.end(zone));
    return {};
}

WritePointerTable::WritePointerTable(Layout layout, const ZoneGeometry& geometry, uint64_t host_offset)
    : layout_(layout), geometry_(geometry), host_offset_(host_offset) {
    uint64_t raw = uint64_t{geometry.nr_zones()} * 8;
    encoded_.assign(round_up_sector(raw), std::byte{0});
    pad_ = encoded_.size() - raw;
    sector_dirty_.assign(encoded_.size() / kSector, false);
    for (uint32_t z = 0; z < geometry.nr_zones(); ++z)
        store_wp_entry(layout, encoded_.data() + uint64_t{z} * 8, {geometry.start(z), geometry.conventional(z)});
}

Result<WritePointerTable> WritePointerTable::load(qcow2::HostFile& file, Layout layout, const ZoneGeometry& g,
                                                  uint64_t host_offset, std::vector<std::string>* problems) {
    WritePointerTable t(layout, g, host_offset);
    ZQ_TRY(file.read_at(host_offset, std::span(t.encoded_.data(), t.bytes())));
    for (uint32_t z = 0; z < g.nr_zones(); ++z) {
        std::byte* p = t.encoded_.data() + uint64_t{z} * 8;
        WpEntry e = load_wp_entry(layout, p);
        if (auto s = validate_wp_entry(g, z, e); !s) {
            if (!problems) return s.error();
            problems->push_back(s.error().message);
            // Repair in memory toward the safe side: an invalid WP makes the zone empty.
            // Not marked dirty: only a repair (write_all) puts it on disk.
            store_wp_entry(layout, p, {g.start(z), g.conventional(z)});
        }
    }
    return t;
}

uint64_t WritePointerTable::wp(uint32_t zone) const {
    return load_wp_entry(layout_, encoded_.data() + uint64_t{zone} * 8).wp;
}

void WritePointerTable::set(uint32_t zone, uint64_t wp) {
    WpEntry e{std::min(round_up_sector(wp), geometry_.end(zone)), geometry_.conventional(zone)};
    if (e.conventional) e.wp = geometry_.start(zone);
    std::byte* p = encoded_.data() + uint64_t{zone} * 8;
    if (load_wp_entry(layout_, p).wp == e.wp) return;
    store_wp_entry(layout_, p, e);
    uint64_t sector = uint64_t{zone} * 8 / kSector;
    if (!sector_dirty_[sector]) {
        sector_dirty_[sector] = true;
        dirty_sectors_.push_back(static_cast<uint32_t>(sector));
    }
}

Status WritePointerTable::persist(qcow2::HostFile& file) {
    if (dirty_sectors_.empty()) return {};
    std::sort(dirty_sectors_.begin(), dirty_sectors_.end());
    // Coalesce runs of adjacent sectors into one write each.
    size_t i = 0;
    while (i < dirty_sectors_.size()) {
        size_t j = i + 1;
        while (j < dirty_sectors_.size() && dirty_sectors_[j] == dirty_sectors_[j - 1] + 1) ++j;
        uint64_t first = dirty_sectors_[i];
        uint64_t n = dirty_sectors_[j - 1] - first + 1;
        ZQ_TRY(file.write_at(host_offset_ + first * kSector,
                             std::span<const std::byte>(encoded_.data() + first * kSector, n * kSector)));
        i = j;
    }
    ZQ_TRY(file.sync());
    for (uint32_t s : dirty_sectors_) sector_dirty_[s] = false;
    dirty_sectors_.clear();
    return {};
}

Status WritePointerTable::write_all(qcow2::HostFile& file, uint64_t padded_bytes) {
    std::vector<std::byte> buf(std::max<uint64_t>(padded_bytes, encoded_.size()), std::byte{0});
    std::copy(encoded_.begin(), encoded_.end(), buf.begin());
    ZQ_TRY(file.write_at(host_offset_, buf));
    ZQ_TRY(file.sync());
    for (uint32_t s : dirty_sectors_) sector_dirty_[s] = false;
    dirty_sectors_.clear();
    return {};
}

}  // namespace zqfs::core
