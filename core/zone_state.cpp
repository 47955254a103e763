#include "core/zone_state.h"

#include <algorithm>

namespace zqfs::core {

ZoneState::ZoneState(const ZoneGeometry& g, uint32_t max_open, uint32_t max_active)
    : g_(g), max_open_(max_open), max_active_(max_active), slots_(g.nr_zones()) {
    for (uint32_t z = 0; z < g.nr_zones(); ++z) {
        slots_[z].wp = g.start(z);
        slots_[z].cond = g.conventional(z) ? ZoneCond::not_wp : ZoneCond::empty;
        capacity_ += g.capacity(z);
        if (g.conventional(z)) cnv_capacity_ += g.capacity(z);
    }
    per_cond_[static_cast<int>(ZoneCond::not_wp)] = g.conventional_zones();
    per_cond_[static_cast<int>(ZoneCond::empty)] = g.nr_zones() - g.conventional_zones();
}

void ZoneState::set_wp(uint32_t zone, uint64_t wp) {
    seq_written_ = seq_written_ - slots_[zone].wp + wp;
    slots_[zone].wp = wp;
}

void ZoneState::load(uint32_t zone, uint64_t wp) {
    if (g_.conventional(zone)) return;
    Slot& s = slots_[zone];
    uint64_t start = g_.start(zone), cap_end = g_.capacity_end(zone);
    (void)s;
    if (wp <= start) {
        set_wp(zone, start);
        set_cond(zone, ZoneCond::empty);
    } else if (wp >= cap_end) {
        set_wp(zone, cap_end);
        set_cond(zone, ZoneCond::full);
    } else {
        // Open states are not stored: a partly written zone reopens closed.
        set_wp(zone, wp);
        set_cond(zone, ZoneCond::closed);
    }
}

ZoneInfo ZoneState::info(uint32_t zone) const {
    const Slot& s = slots_[zone];
    ZoneInfo i;
    i.index = zone;
    i.type = g_.type(zone);
    i.cond = s.cond;
    i.start = g_.start(zone);
    i.len = g_.len(zone);
    i.capacity = g_.capacity(zone);
    i.wp = s.wp;
    return i;
}

DeviceCounts ZoneState::counts() const {
    DeviceCounts c;
    std::copy(std::begin(per_cond_), std::end(per_cond_), c.per_cond);
    c.open = nr_open_;
    c.active = nr_active_;
    c.seq_written = seq_written_;
    c.capacity = capacity_;
    c.cnv_capacity = cnv_capacity_;
    return c;
}

void ZoneState::set_cond(uint32_t zone, ZoneCond c) {
    Slot& s = slots_[zone];
    ZoneCond old = s.cond;
    if (old == c) return;
    per_cond_[static_cast<int>(old)]--;
    per_cond_[static_cast<int>(c)]++;
    nr_open_ += static_cast<uint32_t>(is_open(c)) - static_cast<uint32_t>(is_open(old));
    nr_active_ += static_cast<uint32_t>(is_active(c)) - static_cast<uint32_t>(is_active(old));
    if (old == ZoneCond::implicit_open) lru_remove(zone);
    if (c == ZoneCond::implicit_open) lru_push_back(zone);
    s.cond = c;
}

void ZoneState::lru_remove(uint32_t zone) {
    Slot& s = slots_[zone];
    if (s.lru_prev != kNone)
        slots_[s.lru_prev].lru_next = s.lru_next;
    else
        lru_head_ = s.lru_next;
    if (s.lru_next != kNone)
        slots_[s.lru_next].lru_prev = s.lru_prev;
    else
        lru_tail_ = s.lru_prev;
    s.lru_prev = s.lru_next = kNone;
}

void ZoneState::lru_push_back(uint32_t zone) {
    Slot& s = slots_[zone];
    s.lru_prev = lru_tail_;
    s.lru_next = kNone;
    if (lru_tail_ != kNone)
        slots_[lru_tail_].lru_next = zone;
    else
        lru_head_ = zone;
    lru_tail_ = zone;
}

Status ZoneState::acquire(uint32_t zone, bool needs_active) {
    if (needs_active && max_active_ != 0 && nr_active_ >= max_active_)
        return make_error(EOVERFLOW, "zone {}: active zone limit {} reached", zone, max_active_);
    if (max_open_ == 0 || nr_open_ < max_open_) return {};
    // At the open limit: close the least recently used implicitly open zone
    // that has no write in flight (its writer would find it closed under it).
    for (uint32_t v = lru_head_; v != kNone; v = slots_[v].lru_next) {
        if (v == zone || slots_[v].in_flight) continue;
        set_cond(v, slots_[v].wp == g_.start(v) ? ZoneCond::empty : ZoneCond::closed);
        return {};
    }
    return make_error(ETOOMANYREFS, "zone {}: open zone limit {} reached and no implicitly open zone can be closed",
                      zone, max_open_);
}

Status ZoneState::check_readable(uint32_t zone) const {
    if (slots_[zone].cond == ZoneCond::offline) return make_error(EIO, "zone {} is offline", zone);
    return {};
}

Status ZoneState::check_conventional_write(uint32_t zone, uint64_t offset, uint64_t len) const {
    const Slot& s = slots_[zone];
    if (s.cond == ZoneCond::offline) return make_error(EIO, "zone {} is offline", zone);
    if (s.cond == ZoneCond::read_only) return make_error(EROFS, "zone {} is read-only", zone);
    uint64_t start = g_.start(zone), cap_end = g_.capacity_end(zone);
    if (offset < start) return make_error(EINVAL, "write at {} is before zone {} (start {})", offset, zone, start);
    if (offset >= cap_end || len > cap_end - offset)
        return make_error(EFBIG, "write of {} bytes at {} goes past the capacity end {} of zone {}", len, offset,
                          cap_end, zone);
    return {};
}

Status ZoneState::begin_write(uint32_t zone, uint64_t offset, uint64_t len) {
    Slot& s = slots_[zone];
    if (s.cond == ZoneCond::offline) return make_error(EIO, "zone {} is offline", zone);
    if (s.cond == ZoneCond::read_only) return make_error(EROFS, "zone {} is read-only", zone);
    if (offset != s.wp)
        return make_error(EINVAL, "write at {} is not at the write pointer {} of zone {}", offset, s.wp, zone);
    uint64_t cap_end = g_.capacity_end(zone);
    if (offset >= cap_end)
        return make_error(EFBIG, "zone {} is full: write at {} is at or past its capacity end {}", zone, offset,
                          cap_end);
    if (len > cap_end - offset)
        return make_error(EFBIG, "write of {} bytes at {} crosses the capacity end {} of zone {}", len, offset,
                          cap_end, zone);
    switch (s.cond) {
        case ZoneCond::empty:
            ZQ_TRY(acquire(zone, true));
            set_cond(zone, ZoneCond::implicit_open);
            break;
        case ZoneCond::closed:
            ZQ_TRY(acquire(zone, false));
            set_cond(zone, ZoneCond::implicit_open);
            break;
        case ZoneCond::implicit_open:  // most recently used now
            lru_remove(zone);
            lru_push_back(zone);
            break;
        default: break;
    }
    s.in_flight = true;
    return {};
}

void ZoneState::end_write(uint32_t zone, uint64_t new_wp, bool ok) {
    Slot& s = slots_[zone];
    s.in_flight = false;
    if (!ok) {
        // A failed first write leaves nothing written: give the resources back.
        if (s.cond == ZoneCond::implicit_open && s.wp == g_.start(zone)) set_cond(zone, ZoneCond::empty);
        return;
    }
    set_wp(zone, new_wp);
    mark_dirty(zone);
    if (new_wp >= g_.capacity_end(zone) && (s.cond == ZoneCond::implicit_open || s.cond == ZoneCond::explicit_open))
        set_cond(zone, ZoneCond::full);
}

Status ZoneState::check_manageable(uint32_t zone) const {
    if (g_.conventional(zone))
        return make_error(EINVAL, "zone {} is conventional: zone management applies to sequential zones only", zone);
    if (slots_[zone].cond == ZoneCond::offline) return make_error(EIO, "zone {} is offline", zone);
    if (slots_[zone].cond == ZoneCond::read_only) return make_error(EROFS, "zone {} is read-only", zone);
    return {};
}

Status ZoneState::open(uint32_t zone) {
    ZQ_TRY(check_manageable(zone));
    switch (slots_[zone].cond) {
        case ZoneCond::empty: ZQ_TRY(acquire(zone, true)); break;
        case ZoneCond::closed: ZQ_TRY(acquire(zone, false)); break;
        case ZoneCond::implicit_open: break;
        default: return {};  // explicitly open or full: nothing to do (ZBC)
    }
    set_cond(zone, ZoneCond::explicit_open);
    return {};
}

Status ZoneState::close(uint32_t zone) {
    ZQ_TRY(check_manageable(zone));
    Slot& s = slots_[zone];
    if (!is_open(s.cond)) return {};  // empty, closed, full: nothing to do (ZBC)
    set_cond(zone, s.wp == g_.start(zone) ? ZoneCond::empty : ZoneCond::closed);
    return {};
}

Status ZoneState::check_finish(uint32_t zone) {
    ZQ_TRY(check_manageable(zone));
    if (slots_[zone].cond == ZoneCond::empty) return acquire(zone, true);
    return {};
}

void ZoneState::apply_finish(uint32_t zone) {
    set_cond(zone, ZoneCond::full);
    set_wp(zone, g_.capacity_end(zone));
    mark_dirty(zone);
}

Status ZoneState::check_reset(uint32_t zone) const { return check_manageable(zone); }

void ZoneState::apply_reset(uint32_t zone) {
    set_cond(zone, ZoneCond::empty);
    set_wp(zone, g_.start(zone));
    mark_dirty(zone);
}

Status ZoneState::set_condition(uint32_t zone, ZoneCond cond) {
    if (cond != ZoneCond::read_only && cond != ZoneCond::offline)
        return make_error(EINVAL, "zone {}: only read-only or offline can be forced, not {}", zone, cond_name(cond));
    set_cond(zone, cond);
    return {};
}

void ZoneState::mark_dirty(uint32_t zone) {
    if (g_.conventional(zone) || slots_[zone].dirty) return;
    slots_[zone].dirty = true;
    dirty_.push_back(zone);
}

std::vector<std::pair<uint32_t, uint64_t>> ZoneState::take_dirty() {
    std::vector<std::pair<uint32_t, uint64_t>> out;
    out.reserve(dirty_.size());
    for (uint32_t z : dirty_) {
        slots_[z].dirty = false;
        out.emplace_back(z, slots_[z].wp);
    }
    dirty_.clear();
    return out;
}

}  // namespace zqfs::core
