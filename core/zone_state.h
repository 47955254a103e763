// The zone state machine and resource limits (SPEC section 3), pure logic:
// no I/O and no locking. ZonedDevice holds its state mutex around every call.
//
// Per zone we keep 24 bytes (WP, condition, flags, LRU links), so a device
// with 1,048,576 zones costs 24 MiB. Open/active counts are kept
// incrementally and implicitly open zones sit on an intrusive LRU list, so no
// operation is O(nr_zones) except construction.
//
// Error codes, as the Linux block layer maps ZBC/ZNS errors:
//   ETOOMANYREFS  open-resource limit (max_open_zones) reached
//   EOVERFLOW     active-resource limit (max_active_zones) reached
//   EINVAL        write not at the WP; zone management on a conventional zone
//                 (ZBC rejects it as an invalid field; we report EINVAL)
//   EFBIG         write at/past or crossing the zone capacity
//   EROFS         read-only zone; EIO offline zone
//
// Transitions where ZBC and ZNS differ follow ZBC: open, close and finish of
// a full zone, and close of an empty or closed zone, succeed without change.
// Finishing an empty zone needs an active resource (it passes through open).
#pragma once

#include <cstdint>
#include <vector>

#include "core/zone_geometry.h"
#include "core/zone_types.h"
#include "core/zoned_device.h"
#include "qcow2/result.h"

namespace zqfs::core {

class ZoneState {
public:
    ZoneState(const ZoneGeometry& g, uint32_t max_open, uint32_t max_active);

    // Sets a zone's WP as loaded from disk: start → empty, capacity end or
    // beyond → full (WP clamped to the capacity end), in between → closed.
    void load(uint32_t zone, uint64_t wp);

    ZoneInfo info(uint32_t zone) const;
    DeviceCounts counts() const;
    uint32_t nr_open() const { return nr_open_; }
    uint32_t nr_active() const { return nr_active_; }

    // Checks a write of `len` bytes at `offset` into a sequential zone and
    // implicitly opens the zone (possibly closing the least recently used
    // implicitly open zone). The zone is then marked as having a write in
    // flight until end_write.
    Status begin_write(uint32_t zone, uint64_t offset, uint64_t len);
    // Completes a write begun with begin_write: on success the WP moves to
    // `new_wp` (reaching capacity → full).
    void end_write(uint32_t zone, uint64_t new_wp, bool ok);

    // Checks a write into a conventional zone.
    Status check_conventional_write(uint32_t zone, uint64_t offset, uint64_t len) const;
    Status check_readable(uint32_t zone) const;

    Status open(uint32_t zone);
    Status close(uint32_t zone);
    // finish/reset are split so the caller can persist between check and apply.
    Status check_finish(uint32_t zone);
    void apply_finish(uint32_t zone);
    Status check_reset(uint32_t zone) const;
    void apply_reset(uint32_t zone);
    // read_only or offline (in memory only); releases the zone's resources.
    Status set_condition(uint32_t zone, ZoneCond cond);

    // Zones whose WP changed since the last call, with their current WP.
    std::vector<std::pair<uint32_t, uint64_t>> take_dirty();
    bool has_dirty() const { return !dirty_.empty(); }
    void mark_dirty(uint32_t zone);

private:
    static constexpr uint32_t kNone = UINT32_MAX;

    struct Slot {
        uint64_t wp = 0;
        uint32_t lru_prev = kNone;
        uint32_t lru_next = kNone;
        ZoneCond cond = ZoneCond::empty;
        bool in_flight = false;
        bool dirty = false;
    };

    bool is_open(ZoneCond c) const { return c == ZoneCond::implicit_open || c == ZoneCond::explicit_open; }
    bool is_active(ZoneCond c) const { return is_open(c) || c == ZoneCond::closed; }
    Status check_manageable(uint32_t zone) const;
    // Makes room for one more open zone (closing an LRU implicit one) and,
    // when `needs_active`, one more active zone. Changes nothing on failure.
    Status acquire(uint32_t zone, bool needs_active);
    void set_cond(uint32_t zone, ZoneCond c);
    void lru_remove(uint32_t zone);
    void lru_push_back(uint32_t zone);

    ZoneGeometry g_;
    uint32_t max_open_;
    uint32_t max_active_;
    std::vector<Slot> slots_;
    // Kept up to date on every write-pointer move, so statfs is O(1).
    uint64_t seq_written_ = 0;
    uint64_t capacity_ = 0;
    uint64_t cnv_capacity_ = 0;
    void set_wp(uint32_t zone, uint64_t wp);
    uint32_t per_cond_[16] = {};
    uint32_t nr_open_ = 0;
    uint32_t nr_active_ = 0;
    uint32_t lru_head_ = kNone;  // least recently used implicitly open zone
    uint32_t lru_tail_ = kNone;
    std::vector<uint32_t> dirty_;
};

}  // namespace zqfs::core
