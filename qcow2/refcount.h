// Refcount table and blocks of any width (1..64 bits), and the cluster
// allocator built on them.
//
// The allocator hands out clusters from an in-memory map of free extents,
// built at open from the refcounts and fed by frees; a cluster leaves the
// map before its refcount is raised, so nested allocations (a new refcount
// block, a grown refcount table) can never pick it twice. Invariant: every
// free cluster at or beyond zero_frontier() reads as zeros on the host.
// Not thread-safe: the image's metadata lock guards every call.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "qcow2/host_file.h"
#include "qcow2/table_cache.h"

namespace zqfs::qcow2 {

struct ClusterRun {
    uint64_t first = 0;  // host cluster index
    uint64_t count = 0;
};

class Refcounts {
public:
    Refcounts(HostFile& file, TableCache& cache, uint32_t cluster_bits, uint32_t refcount_order);

    // Adopts an existing refcount table (read from the file).
    Status load(uint64_t table_offset, uint32_t table_clusters, uint64_t file_size);
    // Starts a fresh table of one cluster at `table_offset`, all entries empty.
    void init_empty(uint64_t table_offset);
    // Scans every refcount block to learn the free extents and the end of
    // allocated space. Clusters past `file_size` are free unless counted.
    Status build_free_map(uint64_t file_size);

    Result<uint64_t> get(uint64_t cluster);
    // Sets a refcount, creating refcount blocks (and growing the table) as needed.
    Status set(uint64_t cluster, uint64_t value);
    Status add(uint64_t cluster, int64_t delta);

    // `count` contiguous free clusters, each given refcount 1.
    Result<uint64_t> allocate(uint64_t count);
    // Returns clusters whose refcount already dropped to 0 (or that never
    // got one) to the free map. Caller has punched them.
    void release_to_free_map(uint64_t first, uint64_t count);
    // Takes one cluster out of the free map (repair found it referenced).
    void claim(uint64_t cluster);

    uint64_t max_refcount() const { return max_refcount_; }
    uint64_t entries_per_block() const { return entries_per_block_; }
    uint64_t end_cluster() const { return end_; }
    uint64_t zero_frontier() const { return zero_frontier_; }

    // Clusters past the end of the file that nevertheless have a refcount
    // (damage, or a crash of another writer): leaks for check to report.
    // At most kMaxBeyondEof are remembered; beyond_eof_count() has them all.
    static constexpr size_t kMaxBeyondEof = 65536;
    const std::vector<uint64_t>& beyond_eof() const { return beyond_eof_; }
    uint64_t beyond_eof_count() const { return beyond_eof_count_; }

    const std::vector<uint64_t>& table() const { return table_; }
    uint64_t table_offset() const { return table_offset_; }
    uint32_t table_clusters() const { return static_cast<uint32_t>(table_.size() * 8 >> cluster_bits_); }
    // The table must be rewritten (and, if it moved, the header too).
    bool table_dirty() const { return table_dirty_; }
    bool table_moved() const { return table_moved_; }
    void mark_table_clean() { table_dirty_ = table_moved_ = false; }
    void mark_table_dirty(bool moved) { table_dirty_ = true; table_moved_ |= moved; }
    // Clusters of an old refcount table, to be freed once the header that
    // points to the new one is durable.
    std::vector<ClusterRun> take_retired_tables();

private:
    Result<uint64_t> take_free(uint64_t count);
    Result<std::byte*> entry_slice(uint64_t cluster, bool create, size_t* bit_offset);
    Status ensure_block(uint64_t table_index);
    Status grow_table(uint64_t min_entries);
    Status zero_on_host(uint64_t cluster, uint64_t count);

    HostFile& file_;
    TableCache& cache_;
    uint32_t cluster_bits_;
    uint32_t refcount_order_;
    uint64_t cluster_size_;
    uint64_t entries_per_block_;
    uint64_t max_refcount_;

    std::vector<uint64_t> table_;  // host offsets of refcount blocks
    uint64_t table_offset_ = 0;
    bool table_dirty_ = false;
    bool table_moved_ = false;
    std::vector<ClusterRun> retired_tables_;

    std::vector<uint64_t> beyond_eof_;
    uint64_t beyond_eof_count_ = 0;
    std::map<uint64_t, uint64_t> free_;  // first cluster -> count, below end_
    uint64_t end_ = 0;                   // clusters >= end_ are all free
    uint64_t zero_frontier_ = 0;
    uint64_t cursor_ = 0;  // next-fit hint: keeps sequential allocations contiguous
};

}  // namespace zqfs::qcow2
