// Codecs for L1 and L2 table entries (standard, compressed, extended L2).
#pragma once

#include <cstdint>

namespace zqfs::qcow2 {

inline constexpr uint64_t kOflagCopied = 1ull << 63;
inline constexpr uint64_t kOflagCompressed = 1ull << 62;
inline constexpr uint64_t kOflagZero = 1ull << 0;
inline constexpr uint64_t kOffsetMask = 0x00fffffffffffe00ull;  // bits 9..55
inline constexpr uint32_t kSubclusters = 32;

inline uint64_t l1_offset(uint64_t e) { return e & kOffsetMask; }

enum class ClusterKind { unallocated, zero_plain, zero_alloc, normal, compressed };

// One decoded L2 entry. For extended L2, `bitmap` holds the allocation bits
// (0..31) and zero bits (32..63) of the subclusters.
struct L2Entry {
    uint64_t raw = 0;
    uint64_t bitmap = 0;

    bool compressed() const { return raw & kOflagCompressed; }
    uint64_t host_offset() const { return raw & kOffsetMask; }
};

// Layout of compressed cluster descriptors, which depends on cluster_bits.
struct CompressedLayout {
    unsigned csize_shift;
    uint64_t csize_mask;
    uint64_t offset_mask;

    explicit CompressedLayout(unsigned cluster_bits)
        : csize_shift(62 - (cluster_bits - 8)),
          csize_mask((1ull << (cluster_bits - 8)) - 1),
          offset_mask((1ull << csize_shift) - 1) {}

    uint64_t offset(uint64_t raw) const { return raw & offset_mask; }
    // Bytes of compressed data, up to the end of the last 512-byte sector.
    uint64_t size(uint64_t raw) const {
        uint64_t sectors = ((raw >> csize_shift) & csize_mask) + 1;
        return sectors * 512 - (offset(raw) & 511);
    }
    uint64_t encode(uint64_t host, uint64_t bytes) const {
        uint64_t extra_sectors = ((host + bytes - 1) >> 9) - (host >> 9);
        return kOflagCompressed | (extra_sectors << csize_shift) | host;
    }
};

inline ClusterKind classify(const L2Entry& e, bool extended) {
    if (e.compressed()) return ClusterKind::compressed;
    if (extended) {
        // Subclusters decide; the cluster as a whole is "normal" if it has a host offset.
        if (e.host_offset() != 0) return ClusterKind::normal;
        return (e.bitmap >> 32) ? ClusterKind::zero_plain : ClusterKind::unallocated;
    }
    if (e.raw & kOflagZero) return e.host_offset() ? ClusterKind::zero_alloc : ClusterKind::zero_plain;
    return e.host_offset() ? ClusterKind::normal : ClusterKind::unallocated;
}

}  // namespace zqfs::qcow2
