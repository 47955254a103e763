// Internal state of a qcow2 image, shared by image.cpp (the I/O paths),
// image_open.cpp (open/create/header), sync.cpp (the crash-safe flush) and
// check.cpp (consistency check and repair).
//
// Locking, written down once:
// - meta_ guards every metadata structure: L1, both table caches, the
//   refcounts and allocator, pending frees, allocating_. It is never held
//   during data I/O, only during metadata cache misses.
// - io_gate_ is held shared by every read/write from mapping lookup until
//   its data I/O (and, for writes, the L2 link) is done. Flush takes it
//   exclusively for an instant before freed clusters return to the
//   allocator, so no in-flight I/O can still be using a reused cluster.
// - flush_mutex_ serialises flushes (and check, header rewrites).
// - allocating_ holds guest clusters whose new host cluster is being
//   written; other writers and discards of that cluster wait on alloc_cv_.
// Lock order: flush_mutex_ -> io_gate_ -> meta_.
#pragma once

#include <condition_variable>
#include <mutex>
#include <shared_mutex>
#include <unordered_set>
#include <vector>

#include "qcow2/image.h"
#include "qcow2/l2_entry.h"
#include "qcow2/refcount.h"
#include "qcow2/table_cache.h"
#include "qcow2/worker.h"

namespace zqfs::qcow2 {

class ImageImpl final : public Image {
public:
    ImageImpl(std::unique_ptr<HostFile> file, Header header, bool writable, size_t cache_bytes);
    ~ImageImpl() override;

    const Header& header() const override { return header_; }
    uint64_t virtual_size() const override { return header_.size; }
    uint32_t cluster_size() const override { return static_cast<uint32_t>(cs_); }
    bool writable() const override { return writable_; }
    HostFile& file() override { return *file_; }

    Status read(uint64_t offset, std::span<std::byte> buf) override;
    Status read_mapped(uint64_t offset, uint64_t length, const MappedConsumer& consume) override;
    Status write(uint64_t offset, std::span<const std::byte> buf) override;
    Status write_zeroes(uint64_t offset, uint64_t length) override;
    Status discard(uint64_t offset, uint64_t length) override;
    Status write_compressed(uint64_t offset, std::span<const std::byte> cluster) override;
    Status flush() override;
    Result<std::vector<Extent>> allocation(uint64_t offset, uint64_t length) override;
    Result<uint64_t> allocate_clusters(uint64_t count) override;
    Status update_extension(uint32_t type, std::span<const std::byte> data) override;
    Result<CheckReport> check(RepairMode mode, const std::vector<HostRange>& owned) override;
    Result<ImageStats> stats() override;
    Status close() override;

    // Set-up used by open/create (image_open.cpp).
    Status load(const OpenOptions& opts);
    Status init_new();
    Status write_header();  // serialises header_ into the first cluster (no sync)

private:
    // Mapping (image.cpp); meta_ held.
    Result<std::byte*> l2_slot(uint64_t guest_cluster, bool create, uint64_t* slice_off);
    Result<L2Entry> lookup(uint64_t guest_cluster);
    void store(std::byte* slot, uint64_t slice_off, const L2Entry& e);
    void defer_free(const L2Entry& old);
    ClusterKind kind(const L2Entry& e) const;
    template <class Fn>
    Status for_each_cluster(uint64_t offset, uint64_t length, Fn&& fn);
    // Fully allocated data cluster: its bytes are the host file's, as is.
    bool plain_data(const L2Entry& e) const;
    // Reads part of one guest cluster given its entry; no lock held.
    Status read_piece(const L2Entry& e, uint64_t in_off, std::span<std::byte> out);
    Status unmap(uint64_t offset, uint64_t length, bool as_zero);
    Status flush_if_cache_full();
    Result<uint64_t> allocate_compressed(uint64_t bytes);
    Status apply_frees(std::vector<ClusterRun> frees);
    Status flush_locked();
    // Space reclamation: punching freed clusters (slow on large runs) happens
    // on a background thread; clusters return to the allocator only after
    // their punch, so nothing stale is ever reused.
    void queue_reclaim(const std::vector<ClusterRun>& runs);
    Status wait_reclaimed();

    std::unique_ptr<HostFile> file_;
    Header header_;
    bool writable_;
    unsigned cluster_bits_;
    uint64_t cs_;
    bool ext_l2_;
    size_t l2_entry_size_;
    uint64_t l2_entries_;
    size_t slice_size_;
    CompressedLayout clayout_;

    std::vector<uint64_t> l1_;
    std::vector<bool> l1_dirty_;  // per slice of the L1 table
    TableCache l2_cache_;
    TableCache rc_cache_;
    Refcounts refcounts_;
    std::vector<ClusterRun> pending_frees_;  // refcount drops owed once L2 changes are durable
    std::unordered_set<uint64_t> allocating_;
    // Next free byte in the host cluster that compressed data is packed
    // into (0: none). Several compressed clusters share one host cluster,
    // each adding one to its refcount.
    uint64_t compressed_tail_ = 0;
    bool closed_ = false;

    std::mutex reclaim_mu_;
    Error reclaim_error_;        // first punch failure, reported by close(); guarded by reclaim_mu_
    bool reclaim_failed_ = false;

    std::mutex meta_;
    std::shared_mutex io_gate_;
    std::mutex flush_mutex_;
    std::condition_variable alloc_cv_;

    // Last member: stopped (by close(), at the latest here) before
    // anything its tasks use is destroyed.
    Worker reclaimer_;

    friend struct CheckRun;
};

}  // namespace zqfs::qcow2
