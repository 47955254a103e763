#include "qcow2/table_cache.h"

namespace zqfs::qcow2 {

void TableCache::touch(Slice& s) { lru_.splice(lru_.begin(), lru_, s.lru); }

Result<std::byte*> TableCache::get(uint64_t off) {
    if (auto it = map_.find(off); it != map_.end()) {
        touch(it->second);
        return it->second.data.data();
    }
    Slice s;
    s.data.resize(slice_size_);
    ZQ_TRY(file_.read_at(off, s.data));
    lru_.push_front(off);
    s.lru = lru_.begin();
    auto [it, _] = map_.emplace(off, std::move(s));
    return it->second.data.data();
}

void TableCache::mark_dirty(uint64_t off) {
    auto it = map_.find(off);
    if (it != map_.end() && !it->second.dirty) {
        it->second.dirty = true;
        ++dirty_count_;
    }
}

void TableCache::drop(uint64_t off, uint64_t len) {
    for (uint64_t o = off; o < off + len; o += slice_size_) {
        auto it = map_.find(o);
        if (it == map_.end()) continue;
        if (it->second.dirty) --dirty_count_;
        lru_.erase(it->second.lru);
        map_.erase(it);
    }
}

std::vector<TableCache::DirtySlice> TableCache::take_dirty() {
    std::vector<DirtySlice> out;
    out.reserve(dirty_count_);
    for (auto& [off, s] : map_) {
        if (!s.dirty) continue;
        out.push_back({off, s.data});
        s.dirty = false;
    }
    dirty_count_ = 0;
    return out;
}

void TableCache::redirty(const std::vector<DirtySlice>& slices) {
    for (const auto& d : slices) {
        auto it = map_.find(d.offset);
        if (it == map_.end()) {
            // Evicted meanwhile: reinsert the copy we failed to write.
            Slice s;
            s.data = d.data;
            lru_.push_front(d.offset);
            s.lru = lru_.begin();
            it = map_.emplace(d.offset, std::move(s)).first;
        }
        mark_dirty(d.offset);
    }
}

bool TableCache::trim() {
    auto it = lru_.end();
    while (it != lru_.begin() && map_.size() > capacity_) {
        --it;
        auto m = map_.find(*it);
        if (m->second.dirty) continue;
        map_.erase(m);
        it = lru_.erase(it);
    }
    return map_.size() > capacity_;
}

}  // namespace zqfs::qcow2
