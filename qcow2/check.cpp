// Consistency check and repair: recount every reference from the header,
// L1/L2 tables, refcount structures, snapshots and upper-layer ranges, and
// compare with the stored refcounts. Refcounts too low are corruptions;
// too high are leaks. Repair sets them to the recounted value.
#include <algorithm>

#include "qcow2/endian.h"
#include "qcow2/image_impl.h"

namespace zqfs::qcow2 {

struct CheckRun {
    ImageImpl& img;
    CheckReport& report;
    uint64_t file_clusters;
    std::vector<uint32_t> refs;  // recounted references per host cluster
    // L2 tables we may walk in all. Snapshots legitimately share L2 tables
    // and each sharing is walked again, but a damaged snapshot table could
    // make that unbounded; no real image needs more than this.
    uint64_t l2_walk_budget;

    void problem(std::string msg) {
        ++report.corruptions;
        if (report.messages.size() < 1000) report.messages.push_back("ERROR " + std::move(msg));
    }

    void reference(uint64_t offset, uint64_t length, const char* what) {
        if (length == 0) return;
        const uint64_t first = offset >> img.cluster_bits_;
        const uint64_t last = (offset + length - 1) >> img.cluster_bits_;
        for (uint64_t c = first; c <= last; ++c) {
            if (c >= file_clusters) {
                problem(fmt::format("{} at {:#x} is beyond the end of the image file", what, c << img.cluster_bits_));
                return;
            }
            if (refs[c] != UINT32_MAX) ++refs[c];
        }
    }

    Status l1_table(uint64_t offset, uint32_t size, bool active) {
        reference(offset, uint64_t{size} * 8, "L1 table");
        std::vector<std::byte> raw(uint64_t{size} * 8);
        ZQ_TRY(img.file_->read_at(offset, raw));
        std::vector<std::byte> l2(img.cs_);
        for (uint32_t i = 0; i < size; ++i) {
            uint64_t e = active ? img.l1_[i] : load_be<uint64_t>(raw.data() + i * 8);
            uint64_t l2off = l1_offset(e);
            if (!l2off) continue;
            if (l2off % img.cs_ || (l2off >> img.cluster_bits_) >= file_clusters) {
                problem(fmt::format("L1 entry {} points at invalid L2 offset {:#x}", i, l2off));
                continue;
            }
            if (l2_walk_budget == 0) {
                problem("snapshot L1 tables reference more L2 tables than the image can hold; not walking further");
                return {};
            }
            --l2_walk_budget;
            reference(l2off, img.cs_, "L2 table");
            // The active tables are read through the cache (it may hold newer entries).
            for (uint64_t off = 0; off < img.cs_; off += img.slice_size_) {
                if (active) {
                    ZQ_ASSIGN(std::byte * s, img.l2_cache_.get(l2off + off));
                    std::copy(s, s + img.slice_size_, l2.begin() + static_cast<ptrdiff_t>(off));
                } else {
                    ZQ_TRY(img.file_->read_at(l2off + off, std::span(l2.data() + off, img.slice_size_)));
                }
            }
            for (uint64_t j = 0; j < img.l2_entries_; ++j) {
                L2Entry le;
                le.raw = load_be<uint64_t>(l2.data() + j * img.l2_entry_size_);
                if (img.ext_l2_) le.bitmap = load_be<uint64_t>(l2.data() + j * img.l2_entry_size_ + 8);
                ClusterKind k = img.kind(le);
                if (k == ClusterKind::compressed) {
                    ++report.data_clusters;
                    reference(img.clayout_.offset(le.raw), img.clayout_.size(le.raw), "compressed cluster");
                } else if (k == ClusterKind::normal || k == ClusterKind::zero_alloc) {
                    if (le.host_offset() % img.cs_) {
                        problem(fmt::format("L2 entry {:#x} is not cluster-aligned", le.raw));
                        continue;
                    }
                    ++report.data_clusters;
                    reference(le.host_offset(), img.cs_, "data cluster");
                }
            }
        }
        return {};
    }

    Status snapshots() {
        const Header& h = img.header_;
        uint64_t off = h.snapshots_offset;
        std::vector<std::byte> e(40);
        uint64_t start = off;
        for (uint32_t i = 0; i < h.nb_snapshots; ++i) {
            ZQ_TRY(img.file_->read_at(off, e));
            uint64_t l1off = load_be<uint64_t>(e.data());
            uint32_t l1size = load_be<uint32_t>(e.data() + 8);
            uint16_t id_len = load_be<uint16_t>(e.data() + 12);
            uint16_t name_len = load_be<uint16_t>(e.data() + 14);
            uint32_t extra = load_be<uint32_t>(e.data() + 36);
            if (l1size > (32u << 20) / 8 || l1off % img.cs_ || l1off > file_clusters * img.cs_ ||
                uint64_t{l1size} * 8 > file_clusters * img.cs_ - l1off) {
                problem(fmt::format("snapshot {} has an invalid L1 table", i));
                return {};
            }
            ZQ_TRY(l1_table(l1off, l1size, false));
            off += (40 + extra + id_len + name_len + 7) & ~uint64_t{7};
            if (off >= file_clusters * img.cs_) {
                problem("snapshot table runs past the end of the file");
                return {};
            }
        }
        reference(start, off - start, "snapshot table");
        return {};
    }
};

Result<CheckReport> ImageImpl::check(RepairMode mode, const std::vector<HostRange>& owned) {
    if (mode != RepairMode::none && !writable_) return make_error(EROFS, "{}: repair needs the image open for writing", file_->name());
    CheckReport report;
    std::lock_guard fl(flush_mutex_);
    ZQ_ASSIGN(uint64_t file_size, file_->size());
    std::vector<std::pair<uint64_t, int64_t>> fixes;  // cluster, new refcount
    {
        std::lock_guard lk(meta_);
        const uint64_t end = std::max((file_size + cs_ - 1) >> cluster_bits_, refcounts_.end_cluster());
        CheckRun run{*this, report, end, std::vector<uint32_t>(end, 0), 64 * end + 65536};
        run.reference(0, cs_, "header");
        ZQ_TRY(run.l1_table(header_.l1_table_offset, header_.l1_size, true));
        run.reference(refcounts_.table_offset(), uint64_t{refcounts_.table_clusters()} << cluster_bits_, "refcount table");
        for (uint64_t rb : refcounts_.table())
            if (rb) run.reference(rb, cs_, "refcount block");
        if (header_.nb_snapshots) ZQ_TRY(run.snapshots());
        for (const auto& r : owned) run.reference(r.offset, r.length, "zoned metadata");
        // Clusters whose refcount drop is still pending count as referenced.
        for (const auto& f : pending_frees_)
            for (uint64_t c = f.first; c < f.first + f.count && c < end; ++c) ++run.refs[c];

        for (uint64_t c = 0; c < end; ++c) {
            ZQ_ASSIGN(uint64_t have, refcounts_.get(c));
            const uint64_t want = run.refs[c];
            if (want) ++report.allocated_clusters;
            if (have == want) continue;
            if (have < want) {
                run.problem(fmt::format("cluster {} refcount={} reference={}", c, have, want));
                if (mode == RepairMode::all) fixes.emplace_back(c, static_cast<int64_t>(want));
            } else {
                ++report.leaks;
                if (report.messages.size() < 1000)
                    report.messages.push_back(fmt::format("Leaked cluster {} refcount={} reference={}", c, have, want));
                if (mode != RepairMode::none) fixes.emplace_back(c, static_cast<int64_t>(want));
            }
        }
        // Refcounts of clusters past the end of the file: leaks.
        for (uint64_t c : refcounts_.beyond_eof()) {
            if (c < end) continue;  // since allocated for real
            ZQ_ASSIGN(uint64_t have, refcounts_.get(c));
            if (have == 0) continue;
            ++report.leaks;
            if (report.messages.size() < 1000)
                report.messages.push_back(fmt::format("Leaked cluster {} refcount={} reference=0 (past the end of the file)", c, have));
            if (mode != RepairMode::none) fixes.emplace_back(c, 0);
        }
        if (refcounts_.beyond_eof_count() > refcounts_.beyond_eof().size())
            report.messages.push_back(fmt::format("{} more clusters past the end of the file have refcounts",
                                                  refcounts_.beyond_eof_count() - refcounts_.beyond_eof().size()));
        report.image_end_offset = end << cluster_bits_;
        // Raise too-low refcounts before lowering leaked ones, and keep raised
        // clusters out of the allocator so a new refcount block cannot land there.
        std::stable_sort(fixes.begin(), fixes.end(), [&](auto& a, auto& b) {
            return (a.second > 0) > (b.second > 0);
        });
        for (auto [c, want] : fixes) {
            ZQ_ASSIGN(uint64_t have, refcounts_.get(c));
            if (static_cast<uint64_t>(want) > have) {
                refcounts_.claim(c);
                ZQ_TRY(refcounts_.set(c, static_cast<uint64_t>(want)));
                ++report.corruptions_fixed;
            } else {
                ZQ_TRY(refcounts_.set(c, static_cast<uint64_t>(want)));
                ++report.leaks_fixed;
            }
        }
    }
    if (!fixes.empty()) {
        ZQ_TRY(flush_locked());
        // Leaked clusters now have refcount 0: zero them and hand them back.
        std::lock_guard lk(meta_);
        for (auto [c, want] : fixes) {
            if (want != 0 || c >= refcounts_.end_cluster()) continue;  // past the end: already free space
            ZQ_TRY(file_->punch_hole(c << cluster_bits_, cs_));
            refcounts_.release_to_free_map(c, 1);
        }
    }
    return report;
}

}  // namespace zqfs::qcow2
