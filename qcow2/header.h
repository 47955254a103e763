// qcow2 header, header extensions and feature-name table: parsing with
// validation against the file size, and serialisation as qemu-img writes it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "qcow2/result.h"

namespace zqfs::qcow2 {

inline constexpr uint32_t kMagic = 0x514649fb;  // "QFI\xfb"
inline constexpr uint32_t kExtEnd = 0x00000000;
inline constexpr uint32_t kExtBackingFormat = 0xe2792aca;
inline constexpr uint32_t kExtFeatureTable = 0x6803f857;
inline constexpr uint32_t kExtBitmaps = 0x23852875;
inline constexpr uint32_t kExtEncryption = 0x0537be77;
inline constexpr uint32_t kExtExternalData = 0x44415441;

// Incompatible feature bits the engine itself implements.
inline constexpr uint64_t kIncompatDirty = 1ull << 0;
inline constexpr uint64_t kIncompatCorrupt = 1ull << 1;
inline constexpr uint64_t kIncompatExternalData = 1ull << 2;
inline constexpr uint64_t kIncompatCompressionType = 1ull << 3;
inline constexpr uint64_t kIncompatExtendedL2 = 1ull << 4;
inline constexpr uint64_t kCompatLazyRefcounts = 1ull << 0;

struct Extension {
    uint32_t type = 0;
    std::vector<std::byte> data;
};

struct FeatureName {
    uint8_t type = 0;  // 0 incompatible, 1 compatible, 2 autoclear
    uint8_t bit = 0;
    std::string name;
};

struct Header {
    uint32_t version = 3;
    uint64_t backing_file_offset = 0;
    uint32_t backing_file_size = 0;
    uint32_t cluster_bits = 16;
    uint64_t size = 0;  // virtual disk size in bytes
    uint32_t crypt_method = 0;
    uint32_t l1_size = 0;
    uint64_t l1_table_offset = 0;
    uint64_t refcount_table_offset = 0;
    uint32_t refcount_table_clusters = 0;
    uint32_t nb_snapshots = 0;
    uint64_t snapshots_offset = 0;
    // v3 fields (v2 images read these as their defaults)
    uint64_t incompatible_features = 0;
    uint64_t compatible_features = 0;
    uint64_t autoclear_features = 0;
    uint32_t refcount_order = 4;
    uint32_t header_length = 112;
    uint8_t compression_type = 0;  // 0 zlib

    // Extensions in file order, except the feature-name table and end marker,
    // which are regenerated. Unknown ones are kept byte-for-byte.
    std::vector<Extension> extensions;
    std::vector<FeatureName> feature_names;

    uint64_t cluster_size() const { return 1ull << cluster_bits; }
    uint32_t refcount_bits() const { return 1u << refcount_order; }
    bool extended_l2() const { return incompatible_features & kIncompatExtendedL2; }
    const Extension* find_extension(uint32_t type) const;
};

// Parses the header in `buf` (the first cluster of the file, or as much of it
// as exists). Checks structure only: field ranges, offsets and sizes against
// `file_size`. Feature-bit policy is the Image's business.
Result<Header> parse_header(std::span<const std::byte> buf, uint64_t file_size);

// Serialises header, extensions, feature-name table and end marker.
// Fails if the result does not fit in `limit` bytes (the first cluster).
Result<std::vector<std::byte>> serialize_header(const Header& h, size_t limit);

// The feature-name entries qemu-img writes for the bits the engine knows.
std::vector<FeatureName> standard_feature_names();

}  // namespace zqfs::qcow2
