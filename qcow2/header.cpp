#include "qcow2/header.h"

#include <algorithm>
#include <cstring>

#include "qcow2/endian.h"

namespace zqfs::qcow2 {
namespace {

constexpr size_t kV2HeaderLength = 72;
constexpr size_t kV3MinHeaderLength = 104;
constexpr size_t kV3HeaderLength = 112;
constexpr size_t kFeatureEntrySize = 48;

size_t pad8(size_t n) { return (n + 7) & ~size_t{7}; }

// [off, off+len) lies within [0, size), without overflowing on hostile values.
bool fits(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

}  // namespace

const Extension* Header::find_extension(uint32_t type) const {
    for (const auto& e : extensions)
        if (e.type == type) return &e;
    return nullptr;
}

std::vector<FeatureName> standard_feature_names() {
    // The entries and order qemu-img 7.2 writes.
    return {
        {0, 0, "dirty bit"},
        {0, 1, "corrupt bit"},
        {0, 2, "external data file"},
        {0, 3, "compression type"},
        {0, 4, "extended L2 entries"},
        {1, 0, "lazy refcounts"},
        {2, 0, "bitmaps"},
        {2, 1, "raw external data"},
    };
}

Result<Header> parse_header(std::span<const std::byte> buf, uint64_t file_size) {
    if (buf.size() < kV2HeaderLength) return make_error(EINVAL, "file too short for a qcow2 header ({} bytes)", buf.size());
    const std::byte* p = buf.data();
    if (load_be<uint32_t>(p) != kMagic) return make_error(EINVAL, "not a qcow2 image (bad magic)");
    Header h;
    h.version = load_be<uint32_t>(p + 4);
    if (h.version != 2 && h.version != 3) return make_error(ENOTSUP, "unsupported qcow2 version {}", h.version);
    h.backing_file_offset = load_be<uint64_t>(p + 8);
    h.backing_file_size = load_be<uint32_t>(p + 16);
    h.cluster_bits = load_be<uint32_t>(p + 20);
    h.size = load_be<uint64_t>(p + 24);
    h.crypt_method = load_be<uint32_t>(p + 32);
    h.l1_size = load_be<uint32_t>(p + 36);
    h.l1_table_offset = load_be<uint64_t>(p + 40);
    h.refcount_table_offset = load_be<uint64_t>(p + 48);
    h.refcount_table_clusters = load_be<uint32_t>(p + 56);
    h.nb_snapshots = load_be<uint32_t>(p + 60);
    h.snapshots_offset = load_be<uint64_t>(p + 64);

    if (h.cluster_bits < 9 || h.cluster_bits > 21)
        return make_error(EINVAL, "cluster_bits {} out of range (9..21: 512 B to 2 MiB)", h.cluster_bits);
    const uint64_t cs = h.cluster_size();

    size_t ext_start = kV2HeaderLength;
    if (h.version == 3) {
        if (buf.size() < kV3MinHeaderLength) return make_error(EINVAL, "file too short for a version 3 header");
        h.incompatible_features = load_be<uint64_t>(p + 72);
        h.compatible_features = load_be<uint64_t>(p + 80);
        h.autoclear_features = load_be<uint64_t>(p + 88);
        h.refcount_order = load_be<uint32_t>(p + 96);
        h.header_length = load_be<uint32_t>(p + 100);
        if (h.header_length < kV3MinHeaderLength || h.header_length % 8 != 0 || h.header_length > std::min<uint64_t>(cs, buf.size()))
            return make_error(EINVAL, "header_length {} invalid (must be a multiple of 8, >= 104 and inside the first cluster)",
                              h.header_length);
        if (h.header_length > 104) h.compression_type = static_cast<uint8_t>(p[104]);
        ext_start = h.header_length;
    } else {
        h.refcount_order = 4;
        h.header_length = kV2HeaderLength;
    }
    if (h.refcount_order > 6) return make_error(EINVAL, "refcount_order {} out of range (0..6)", h.refcount_order);
    if ((h.incompatible_features & kIncompatCompressionType) && h.compression_type != 0)
        return make_error(ENOTSUP, "compression type {} not supported (only zlib)", h.compression_type);
    if (!(h.incompatible_features & kIncompatCompressionType) && h.compression_type != 0)
        return make_error(EINVAL, "compression_type is {} but the compression type feature bit is clear", h.compression_type);

    // Sizes and offsets against the file: refuse anything that would make us
    // read outside the file or allocate more than the file can justify.
    if (h.size > (1ull << 62)) return make_error(EINVAL, "virtual size {} is absurd", h.size);
    const uint64_t l2_entries = cs / ((h.incompatible_features & kIncompatExtendedL2) ? 16 : 8);
    const uint64_t bytes_per_l1 = l2_entries * cs;
    const uint64_t needed_l1 = (h.size + bytes_per_l1 - 1) / bytes_per_l1;
    if (h.l1_size < needed_l1)
        return make_error(EINVAL, "L1 table too small: {} entries for a virtual size needing {}", h.l1_size, needed_l1);
    if (h.l1_size > (32u << 20) / 8) return make_error(EINVAL, "L1 table size {} entries is absurd", h.l1_size);
    if (h.l1_size > 0) {
        if (h.l1_table_offset % cs != 0) return make_error(EINVAL, "L1 table offset {:#x} not cluster-aligned", h.l1_table_offset);
        if (h.l1_table_offset == 0 || !fits(h.l1_table_offset, uint64_t{h.l1_size} * 8, file_size))
            return make_error(EINVAL, "L1 table at {:#x} ({} entries) lies outside the file ({} bytes)", h.l1_table_offset,
                              h.l1_size, file_size);
    }
    if (h.refcount_table_offset == 0 || h.refcount_table_offset % cs != 0)
        return make_error(EINVAL, "refcount table offset {:#x} not cluster-aligned", h.refcount_table_offset);
    if (h.refcount_table_clusters == 0 || h.refcount_table_clusters > (8u << 20) / cs + 1)
        return make_error(EINVAL, "refcount table size {} clusters is absurd", h.refcount_table_clusters);
    if (!fits(h.refcount_table_offset, uint64_t{h.refcount_table_clusters} * cs, file_size))
        return make_error(EINVAL, "refcount table at {:#x} ({} clusters) lies outside the file ({} bytes)",
                          h.refcount_table_offset, h.refcount_table_clusters, file_size);
    auto overlaps = [](uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) { return a < b + blen && b < a + alen; };
    if (h.l1_size > 0 && overlaps(h.l1_table_offset, uint64_t{h.l1_size} * 8, h.refcount_table_offset,
                                  uint64_t{h.refcount_table_clusters} * cs))
        return make_error(EINVAL, "L1 table and refcount table overlap");
    if ((h.l1_size > 0 && h.l1_table_offset < cs) || h.refcount_table_offset < cs)
        return make_error(EINVAL, "a metadata table overlaps the header cluster");
    if (h.nb_snapshots > 65536) return make_error(EINVAL, "{} snapshots is absurd (qemu allows 65536)", h.nb_snapshots);
    if (h.nb_snapshots > 0 && (h.snapshots_offset % cs != 0 || h.snapshots_offset >= file_size))
        return make_error(EINVAL, "snapshot table offset {:#x} invalid", h.snapshots_offset);
    if (h.backing_file_offset != 0 &&
        (h.backing_file_size > 1023 || !fits(h.backing_file_offset, h.backing_file_size, std::min<uint64_t>(cs, buf.size()))))
        return make_error(EINVAL, "backing file name lies outside the header cluster");

    // Header extensions, up to the end marker or the end of the first cluster.
    const size_t limit = std::min<size_t>(buf.size(), cs);
    size_t off = ext_start;
    bool ended = false;
    while (off + 8 <= limit) {
        uint32_t type = load_be<uint32_t>(p + off);
        uint32_t len = load_be<uint32_t>(p + off + 4);
        off += 8;
        if (type == kExtEnd) {
            ended = true;
            break;
        }
        if (len > limit - off) return make_error(EINVAL, "header extension {:#010x} of {} bytes overruns the header cluster", type, len);
        if (type == kExtFeatureTable) {
            for (size_t i = 0; i + kFeatureEntrySize <= len; i += kFeatureEntrySize) {
                const std::byte* e = p + off + i;
                FeatureName f;
                f.type = static_cast<uint8_t>(e[0]);
                f.bit = static_cast<uint8_t>(e[1]);
                const char* name = reinterpret_cast<const char*>(e + 2);
                f.name.assign(name, strnlen(name, 46));
                h.feature_names.push_back(std::move(f));
            }
        } else {
            Extension ext;
            ext.type = type;
            ext.data.assign(p + off, p + off + len);
            h.extensions.push_back(std::move(ext));
        }
        off += pad8(len);
    }
    if (!ended && h.version == 3 && off < limit) return make_error(EINVAL, "header extensions have no end marker");
    return h;
}

Result<std::vector<std::byte>> serialize_header(const Header& h, size_t limit) {
    auto build = [&](bool with_features) {
        std::vector<std::byte> out(h.version == 3 ? kV3HeaderLength : kV2HeaderLength);
        std::byte* p = out.data();
        store_be<uint32_t>(p, kMagic);
        store_be<uint32_t>(p + 4, h.version);
        store_be<uint64_t>(p + 8, h.backing_file_offset);
        store_be<uint32_t>(p + 16, h.backing_file_size);
        store_be<uint32_t>(p + 20, h.cluster_bits);
        store_be<uint64_t>(p + 24, h.size);
        store_be<uint32_t>(p + 32, h.crypt_method);
        store_be<uint32_t>(p + 36, h.l1_size);
        store_be<uint64_t>(p + 40, h.l1_table_offset);
        store_be<uint64_t>(p + 48, h.refcount_table_offset);
        store_be<uint32_t>(p + 56, h.refcount_table_clusters);
        store_be<uint32_t>(p + 60, h.nb_snapshots);
        store_be<uint64_t>(p + 64, h.snapshots_offset);
        if (h.version == 3) {
            store_be<uint64_t>(p + 72, h.incompatible_features);
            store_be<uint64_t>(p + 80, h.compatible_features);
            store_be<uint64_t>(p + 88, h.autoclear_features);
            store_be<uint32_t>(p + 96, h.refcount_order);
            store_be<uint32_t>(p + 100, static_cast<uint32_t>(kV3HeaderLength));
            p[104] = static_cast<std::byte>(h.compression_type);
        }
        auto add_ext = [&](uint32_t type, std::span<const std::byte> data) {
            size_t at = out.size();
            out.resize(at + 8 + pad8(data.size()));
            store_be<uint32_t>(out.data() + at, type);
            store_be<uint32_t>(out.data() + at + 4, static_cast<uint32_t>(data.size()));
            std::copy(data.begin(), data.end(), out.begin() + static_cast<ptrdiff_t>(at + 8));
        };
        // qemu-img writes the feature table first, then the other extensions.
        if (with_features && !h.feature_names.empty()) {
            std::vector<std::byte> table(h.feature_names.size() * kFeatureEntrySize);
            for (size_t i = 0; i < h.feature_names.size(); ++i) {
                std::byte* e = table.data() + i * kFeatureEntrySize;
                e[0] = static_cast<std::byte>(h.feature_names[i].type);
                e[1] = static_cast<std::byte>(h.feature_names[i].bit);
                std::memcpy(e + 2, h.feature_names[i].name.data(), std::min<size_t>(h.feature_names[i].name.size(), 46));
            }
            add_ext(kExtFeatureTable, table);
        }
        for (const auto& e : h.extensions) add_ext(e.type, e.data);
        if (h.version == 3) add_ext(kExtEnd, {});
        return out;
    };
    auto out = build(true);
    // The feature-name table is optional: with tiny clusters it may not fit.
    if (out.size() > limit) out = build(false);
    if (out.size() > limit)
        return make_error(ENOSPC, "header and extensions ({} bytes) do not fit in the first cluster ({} bytes)", out.size(), limit);
    if (h.backing_file_offset != 0) return make_error(ENOTSUP, "rewriting headers of images with a backing file is not supported");
    return out;
}

}  // namespace zqfs::qcow2
