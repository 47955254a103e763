// A bounded write-back cache of metadata slices (parts of L2 tables or
// refcount blocks), keyed by host offset. Not thread-safe: the owner's
// metadata lock guards it. Pointers returned stay valid until trim() or
// drop(); the owner calls trim() only at points where it holds none.
#pragma once

#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "qcow2/host_file.h"

namespace zqfs::qcow2 {

class TableCache {
public:
    TableCache(HostFile& file, size_t slice_size, size_t capacity) : file_(file), slice_size_(slice_size), capacity_(capacity) {}

    size_t slice_size() const { return slice_size_; }
    // The slice at host offset `off` (slice-aligned), read from the file on a miss.
    Result<std::byte*> get(uint64_t off);
    void mark_dirty(uint64_t off);
    // Forgets slices within [off, off+len) (a table cluster was freed).
    void drop(uint64_t off, uint64_t len);

    struct DirtySlice {
        uint64_t offset;
        std::vector<std::byte> data;
    };
    // Copies out all dirty slices and marks them clean. If writing them
    // fails, the owner calls redirty() so nothing is lost.
    std::vector<DirtySlice> take_dirty();
    void redirty(const std::vector<DirtySlice>& slices);

    // Evicts least recently used clean slices while over capacity. Returns
    // true if still over capacity because of dirty slices (owner should flush).
    bool trim();
    size_t size() const { return map_.size(); }

private:
    struct Slice {
        std::vector<std::byte> data;
        bool dirty = false;
        std::list<uint64_t>::iterator lru;
    };
    void touch(Slice& s);

    HostFile& file_;
    size_t slice_size_;
    size_t capacity_;
    size_t dirty_count_ = 0;
    std::unordered_map<uint64_t, Slice> map_;
    std::list<uint64_t> lru_;  // front = most recently used
};

}  // namespace zqfs::qcow2
