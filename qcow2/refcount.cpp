#include "qcow2/refcount.h"

#include <algorithm>

#include "qcow2/endian.h"

namespace zqfs::qcow2 {

Refcounts::Refcounts(HostFile& file, TableCache& cache, uint32_t cluster_bits, uint32_t refcount_order)
    : file_(file),
      cache_(cache),
      cluster_bits_(cluster_bits),
      refcount_order_(refcount_order),
      cluster_size_(1ull << cluster_bits),
      entries_per_block_((1ull << cluster_bits) * 8 >> refcount_order),
      max_refcount_(refcount_order == 6 ? ~0ull : (1ull << (1u << refcount_order)) - 1) {}

Status Refcounts::load(uint64_t table_offset, uint32_t table_clusters, uint64_t file_size) {
    table_offset_ = table_offset;
    table_.assign(uint64_t{table_clusters} * cluster_size_ / 8, 0);
    std::vector<std::byte> raw(table_.size() * 8);
    ZQ_TRY(file_.read_at(table_offset, raw));
    for (size_t i = 0; i < table_.size(); ++i) {
        uint64_t e = load_be<uint64_t>(raw.data() + i * 8);
        uint64_t off = e & ~(cluster_size_ - 1);
        if (e & (cluster_size_ - 1))
            return make_error(EUCLEAN, "refcount table entry {} ({:#x}) is not cluster-aligned", i, e);
        if (off != 0 && (off > file_size || cluster_size_ > file_size - off))
            return make_error(EUCLEAN, "refcount block {} at {:#x} lies past the end of the file", i, off);
        table_[i] = off;
    }
    return {};
}

void Refcounts::init_empty(uint64_t table_offset) {
    table_offset_ = table_offset;
    table_.assign(cluster_size_ / 8, 0);
    table_dirty_ = true;
}

Status Refcounts::build_free_map(uint64_t file_size) {
    free_.clear();
    beyond_eof_.clear();
    beyond_eof_count_ = 0;
    const uint64_t file_clusters = (file_size + cluster_size_ - 1) >> cluster_bits_;
    zero_frontier_ = file_clusters;
    uint64_t last_used = 0;
    bool any_used = false;
    // Pass 1: find the free runs below the highest refcounted cluster.
    uint64_t run_start = 0, run_len = 0;
    auto flush_run = [&] {
        if (run_len) free_[run_start] = run_len;
        run_len = 0;
    };
    auto note = [&](uint64_t cluster, bool used) {
        if (used && cluster >= file_clusters) {
            // Counted but not in the file: a leak, and no reason to move
            // the end of allocated space (or later grow the file) past EOF.
            if (beyond_eof_.size() < kMaxBeyondEof) beyond_eof_.push_back(cluster);
            ++beyond_eof_count_;
            used = false;
        }
        if (used) {
            flush_run();
            last_used = cluster;
            any_used = true;
        } else {
            if (!run_len) run_start = cluster;
            ++run_len;
        }
    };
    std::vector<std::byte> block(cluster_size_);
    for (uint64_t ri = 0; ri < table_.size(); ++ri) {
        const uint64_t first = ri * entries_per_block_;
        if (first >= std::max(file_clusters, last_used + 1) && table_[ri] == 0) break;
        if (table_[ri] == 0) {
            if (!run_len) run_start = first;
            run_len += entries_per_block_;
            continue;
        }
        ZQ_TRY(file_.read_at(table_[ri], block));
        const unsigned bits = 1u << refcount_order_;
        for (uint64_t i = 0; i < entries_per_block_; ++i) {
            bool used;
            switch (refcount_order_) {
                case 3: used = block[i] != std::byte{0}; break;
                case 4: used = load_be<uint16_t>(&block[i * 2]) != 0; break;
                case 5: used = load_be<uint32_t>(&block[i * 4]) != 0; break;
                case 6: used = load_be<uint64_t>(&block[i * 8]) != 0; break;
                default: {
                    uint64_t bit = i * bits;
                    used = ((static_cast<unsigned>(block[bit / 8]) >> (bit % 8)) & ((1u << bits) - 1)) != 0;
                }
            }
            note(first + i, used);
        }
    }
    flush_run();
    end_ = std::max(file_clusters, any_used ? last_used + 1 : 0);
    // Runs reaching the end merge into "everything past end_ is free".
    for (auto it = free_.begin(); it != free_.end();) {
        if (it->first >= end_) {
            it = free_.erase(it);
        } else {
            it->second = std::min(it->second, end_ - it->first);
            ++it;
        }
    }
    if (!free_.empty()) {
        auto last = std::prev(free_.end());
        if (last->first + last->second >= end_) {
            end_ = last->first;
            free_.erase(last);
        }
    }
    cursor_ = end_;
    return {};
}

Result<std::byte*> Refcounts::entry_slice(uint64_t cluster, bool create, size_t* bit_offset) {
    const uint64_t ri = cluster / entries_per_block_;
    if (ri >= table_.size() || table_[ri] == 0) {
        if (!create) return static_cast<std::byte*>(nullptr);
        ZQ_TRY(ensure_block(ri));
    }
    const uint64_t bit = (cluster % entries_per_block_) << refcount_order_;
    const uint64_t byte = bit / 8;
    const size_t slice = cache_.slice_size();
    ZQ_ASSIGN(std::byte * data, cache_.get(table_[ri] + byte / slice * slice));
    *bit_offset = (byte % slice) * 8 + bit % 8;
    return data;
}

Result<uint64_t> Refcounts::get(uint64_t cluster) {
    size_t bit;
    ZQ_ASSIGN(std::byte * s, entry_slice(cluster, false, &bit));
    if (!s) return uint64_t{0};
    const std::byte* p = s + bit / 8;
    switch (refcount_order_) {
        case 3: return uint64_t{static_cast<uint8_t>(*p)};
        case 4: return uint64_t{load_be<uint16_t>(p)};
        case 5: return uint64_t{load_be<uint32_t>(p)};
        case 6: return load_be<uint64_t>(p);
        default: return uint64_t{(static_cast<unsigned>(*p) >> (bit % 8)) & max_refcount_};
    }
}

Status Refcounts::set(uint64_t cluster, uint64_t value) {
    if (value > max_refcount_)
        return make_error(EOVERFLOW, "refcount of cluster {} would exceed the {}-bit maximum", cluster, 1u << refcount_order_);
    size_t bit;
    ZQ_ASSIGN(std::byte * s, entry_slice(cluster, value != 0, &bit));
    if (!s) return {};  // setting 0 where no block exists: nothing to do
    std::byte* p = s + bit / 8;
    switch (refcount_order_) {
        case 3: *p = static_cast<std::byte>(value); break;
        case 4: store_be<uint16_t>(p, static_cast<uint16_t>(value)); break;
        case 5: store_be<uint32_t>(p, static_cast<uint32_t>(value)); break;
        case 6: store_be<uint64_t>(p, value); break;
        default: {
            unsigned shift = bit % 8;
            unsigned v = static_cast<unsigned>(*p);
            v = (v & ~(static_cast<unsigned>(max_refcount_) << shift)) | (static_cast<unsigned>(value) << shift);
            *p = static_cast<std::byte>(v);
        }
    }
    const size_t slice = cache_.slice_size();
    const uint64_t ri = cluster / entries_per_block_;
    const uint64_t byte = ((cluster % entries_per_block_) << refcount_order_) / 8;
    cache_.mark_dirty(table_[ri] + byte / slice * slice);
    return {};
}

Status Refcounts::add(uint64_t cluster, int64_t delta) {
    ZQ_ASSIGN(uint64_t cur, get(cluster));
    if (delta < 0 && cur < static_cast<uint64_t>(-delta))
        return make_error(EUCLEAN, "refcount of cluster {} would drop below zero", cluster);
    return set(cluster, cur + static_cast<uint64_t>(delta));
}

Status Refcounts::zero_on_host(uint64_t cluster, uint64_t count) {
    if (cluster + count <= zero_frontier_) return file_.punch_hole(cluster << cluster_bits_, count << cluster_bits_);
    if (cluster < zero_frontier_) return file_.punch_hole(cluster << cluster_bits_, (zero_frontier_ - cluster) << cluster_bits_);
    return {};
}

Status Refcounts::ensure_block(uint64_t ri) {
    if (ri >= table_.size()) ZQ_TRY(grow_table(ri + 1));
    if (table_[ri] != 0) return {};
    ZQ_ASSIGN(uint64_t c, take_free(1));
    // A refcount block must read as zeros before anything points to it.
    if (auto s = zero_on_host(c, 1); !s) {
        release_to_free_map(c, 1);
        return s;
    }
    const uint64_t off = c << cluster_bits_;
    cache_.drop(off, cluster_size_);
    table_[ri] = off;
    table_dirty_ = true;
    // May recurse into ensure_block for the block counting `c`; `c` is out of
    // the free map already, so the recursion cannot hand it out again.
    return set(c, 1);
}

Status Refcounts::grow_table(uint64_t min_entries) {
    const uint64_t per_cluster = cluster_size_ / 8;
    uint64_t entries = std::max<uint64_t>(min_entries, table_.size() * 2);
    entries = (entries + per_cluster - 1) / per_cluster * per_cluster;
    const uint64_t clusters = entries / per_cluster;
    if (clusters * cluster_size_ > (64ull << 20))
        return make_error(EFBIG, "refcount table would exceed 64 MiB; image too large for this cluster size");
    ZQ_ASSIGN(uint64_t c, take_free(clusters));
    const uint64_t old_offset = table_offset_;
    const uint64_t old_clusters = table_clusters();
    table_.resize(entries, 0);
    table_offset_ = c << cluster_bits_;
    table_dirty_ = table_moved_ = true;
    // The new table counts itself; the old one is retired once the header
    // pointing at the new table is durable (the image's flush does that).
    for (uint64_t i = 0; i < clusters; ++i) ZQ_TRY(set(c + i, 1));
    if (old_clusters) retired_tables_.push_back({old_offset >> cluster_bits_, old_clusters});
    return {};
}

std::vector<ClusterRun> Refcounts::take_retired_tables() {
    std::vector<ClusterRun> out;
    out.swap(retired_tables_);
    return out;
}

Result<uint64_t> Refcounts::take_free(uint64_t count) {
    // Next-fit: continue right after the previous allocation when possible.
    auto carve = [&](std::map<uint64_t, uint64_t>::iterator it, uint64_t at) {
        uint64_t first = it->first, len = it->second;
        free_.erase(it);
        if (at > first) free_[first] = at - first;
        if (at + count < first + len) free_[at + count] = first + len - at - count;
        return at;
    };
    uint64_t got = ~0ull;
    auto it = free_.upper_bound(cursor_);
    if (it != free_.begin()) {
        auto prev = std::prev(it);
        if (prev->first + prev->second >= cursor_ + count && cursor_ >= prev->first) got = carve(prev, cursor_);
    }
    if (got == ~0ull) {
        for (auto f = free_.begin(); f != free_.end(); ++f) {
            if (f->second >= count) {
                got = carve(f, f->first);
                break;
            }
        }
    }
    if (got == ~0ull) {
        got = end_;
        end_ += count;
    }
    cursor_ = got + count;
    return got;
}

Result<uint64_t> Refcounts::allocate(uint64_t count) {
    ZQ_ASSIGN(uint64_t first, take_free(count));
    for (uint64_t i = 0; i < count; ++i) {
        if (auto s = set(first + i, 1); !s) {
            for (uint64_t j = 0; j < i; ++j) (void)set(first + j, 0);
            release_to_free_map(first, count);
            return s.error();
        }
    }
    return first;
}

void Refcounts::claim(uint64_t cluster) {
    if (cluster >= end_) {
        release_to_free_map(end_, 0);
        if (cluster > end_) free_[end_] = cluster - end_;
        end_ = cluster + 1;
        return;
    }
    auto it = free_.upper_bound(cluster);
    if (it == free_.begin()) return;
    --it;
    if (cluster >= it->first + it->second) return;
    uint64_t first = it->first, len = it->second;
    free_.erase(it);
    if (cluster > first) free_[first] = cluster - first;
    if (cluster + 1 < first + len) free_[cluster + 1] = first + len - cluster - 1;
}

void Refcounts::release_to_free_map(uint64_t first, uint64_t count) {
    if (count == 0) return;
    if (first + count == end_) {
        end_ = first;
        // Swallow a free run that now touches the end.
        if (!free_.empty()) {
            auto last = std::prev(free_.end());
            if (last->first + last->second == end_) {
                end_ = last->first;
                free_.erase(last);
            }
        }
        return;
    }
    auto [it, inserted] = free_.emplace(first, count);
    if (!inserted) return;  // already free
    if (it != free_.begin()) {
        auto prev = std::prev(it);
        if (prev->first + prev->second == it->first) {
            prev->second += it->second;
            free_.erase(it);
            it = prev;
        }
    }
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
        it->second += next->second;
        free_.erase(next);
    }
}

}  // namespace zqfs::qcow2
