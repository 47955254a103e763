// Image::flush: the one place the crash-safe ordering of metadata is done.
//
//   0. Under the metadata lock, take a consistent snapshot of everything
//      dirty: refcount slices, the refcount table, L2 slices, L1 slices, and
//      the refcount drops owed by unmapped clusters. Every L2 entry in the
//      snapshot points at data whose write completed before the snapshot.
//   1. Extend the file over all allocated clusters; fdatasync. Data is durable.
//   2. Write refcount blocks; fdatasync. Then the refcount table (a grown
//      table goes to new clusters), so no entry names a block not yet on
//      disk; fdatasync. If the table moved, write the header that points at
//      it; fdatasync. Every cluster an L2 entry will name is now counted.
//   3. Write L2 slices; fdatasync. 4. Write L1 slices; fdatasync.
//   5. Only now, with the unmapping durable, drop the refcounts of freed
//      clusters (they reach disk with the next flush; until then they are
//      at worst leaks). After draining in-flight I/O that might still use
//      them, a background thread punches their host space and then returns
//      them to the allocator (see queue_reclaim).
// A crash between any two steps leaves an image whose on-disk references
// are all counted: at worst leaked clusters, never a refcount too low.
// Upper layers write their own metadata (write pointers) after flush returns.
#include <algorithm>

#include "qcow2/endian.h"
#include "qcow2/image_impl.h"

namespace zqfs::qcow2 {

Status ImageImpl::flush() {
    if (!writable_) return {};
    std::lock_guard fl(flush_mutex_);
    return flush_locked();
}

Status ImageImpl::flush_locked() {
    std::vector<TableCache::DirtySlice> rc, l2;
    std::vector<std::pair<uint64_t, std::vector<std::byte>>> l1;
    std::vector<std::byte> table;
    bool table_dirty = false, table_moved = false;
    uint64_t table_offset = 0, end_bytes = 0;
    uint32_t table_clusters = 0;
    std::vector<ClusterRun> frees;

    {
        std::lock_guard lk(meta_);
        rc = rc_cache_.take_dirty();
        l2 = l2_cache_.take_dirty();
        table_dirty = refcounts_.table_dirty();
        table_moved = refcounts_.table_moved();
        if (table_dirty) {
            const auto& t = refcounts_.table();
            table.resize(t.size() * 8);
            for (size_t i = 0; i < t.size(); ++i) store_be<uint64_t>(table.data() + i * 8, t[i]);
            table_offset = refcounts_.table_offset();
            table_clusters = refcounts_.table_clusters();
            refcounts_.mark_table_clean();
        }
        for (size_t i = 0; i < l1_dirty_.size(); ++i) {
            if (!l1_dirty_[i]) continue;
            l1_dirty_[i] = false;
            const size_t first = i * slice_size_ / 8;
            const size_t n = std::min(slice_size_ / 8, l1_.size() - first);
            std::vector<std::byte> bytes(n * 8);
            for (size_t j = 0; j < n; ++j) store_be<uint64_t>(bytes.data() + j * 8, l1_[first + j]);
            l1.emplace_back(header_.l1_table_offset + i * slice_size_, std::move(bytes));
        }
        frees = std::move(pending_frees_);
        pending_frees_.clear();
        for (const auto& r : refcounts_.take_retired_tables()) frees.push_back(r);
        end_bytes = refcounts_.end_cluster() << cluster_bits_;
    }

    // On failure, put everything back so a later flush retries it.
    auto restore = [&](Error e) -> Status {
        std::lock_guard lk(meta_);
        rc_cache_.redirty(rc);
        l2_cache_.redirty(l2);
        if (table_dirty) refcounts_.mark_table_dirty(table_moved);
        for (const auto& [off, bytes] : l1) l1_dirty_[(off - header_.l1_table_offset) / slice_size_] = true;
        pending_frees_.insert(pending_frees_.begin(), frees.begin(), frees.end());
        return e;
    };
    auto write_all = [&](const std::vector<TableCache::DirtySlice>& slices) -> Status {
        for (const auto& s : slices) ZQ_TRY(file_->write_at(s.offset, s.data));
        return {};
    };

    // 1. Data. The file must span every allocated cluster before refcounts
    // name them; in-flight writes are held off while we size it, or one that
    // just extended the file past end_bytes would be cut short.
    {
        std::unique_lock gate(io_gate_);
        ZQ_ASSIGN(uint64_t size, file_->size());
        if (size < end_bytes)
            if (auto s = file_->truncate(end_bytes); !s) return restore(s.error());
    }
    if (auto s = file_->sync(); !s) return restore(s.error());

    // 2. Refcounts, then the table, then the header naming it.
    if (!rc.empty() || table_dirty) {
        if (auto s = write_all(rc); !s) return restore(s.error());
        if (auto s = file_->sync(); !s) return restore(s.error());
        // A new refcount block must be durable before a table entry names it.
        if (table_dirty) {
            if (auto s = file_->write_at(table_offset, table); !s) return restore(s.error());
            if (auto s = file_->sync(); !s) return restore(s.error());
        }
        if (table_moved) {
            std::lock_guard lk(meta_);
            header_.refcount_table_offset = table_offset;
            header_.refcount_table_clusters = table_clusters;
            if (auto s = write_header(); !s) return restore(s.error());
            if (auto s = file_->sync(); !s) return restore(s.error());
        }
    }

    // 3. L2, 4. L1.
    if (!l2.empty()) {
        if (auto s = write_all(l2); !s) return restore(s.error());
        if (auto s = file_->sync(); !s) return restore(s.error());
    }
    if (!l1.empty()) {
        for (const auto& [off, bytes] : l1)
            if (auto s = file_->write_at(off, bytes); !s) return restore(s.error());
        if (auto s = file_->sync(); !s) return restore(s.error());
    }

    // 5. Frees.
    return apply_frees(std::move(frees));
}

Status ImageImpl::apply_frees(std::vector<ClusterRun> frees) {
    if (frees.empty()) return {};
    std::vector<ClusterRun> zeroed;
    {
        std::lock_guard lk(meta_);
        for (const auto& run : frees) {
            for (uint64_t c = run.first; c < run.first + run.count; ++c) {
                ZQ_ASSIGN(uint64_t cur, refcounts_.get(c));
                if (cur == 0) continue;  // never counted (a failed allocation's leftovers)
                ZQ_TRY(refcounts_.set(c, cur - 1));
                if (cur - 1 != 0) continue;
                if (compressed_tail_ >> cluster_bits_ == c) compressed_tail_ = 0;
                if (!zeroed.empty() && zeroed.back().first + zeroed.back().count == c)
                    ++zeroed.back().count;
                else
                    zeroed.push_back({c, 1});
            }
        }
    }
    // Drain in-flight I/O: none may still be using a cluster about to be reused.
    { std::unique_lock gate(io_gate_); }
    queue_reclaim(zeroed);
    return {};
}

void ImageImpl::queue_reclaim(const std::vector<ClusterRun>& runs) {
    for (const ClusterRun& run : runs)
        reclaimer_.post([this, run] {
            Status s = file_->punch_hole(run.first << cluster_bits_, run.count << cluster_bits_);
            if (s) {
                std::lock_guard meta(meta_);
                refcounts_.release_to_free_map(run.first, run.count);
                return;
            }
            // Not zeroed: keep these clusters out of the allocator for this
            // session (a later open sees them free and zeroes before reuse).
            std::lock_guard lk(reclaim_mu_);
            if (!reclaim_failed_) {
                reclaim_failed_ = true;
                reclaim_error_ = s.error();
            }
        });
}

Status ImageImpl::wait_reclaimed() {
    reclaimer_.drain();
    std::lock_guard lk(reclaim_mu_);
    if (reclaim_failed_) return reclaim_error_;
    return {};
}

}  // namespace zqfs::qcow2
