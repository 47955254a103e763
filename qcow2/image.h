// A qcow2 (v3, and v2 read-only) virtual disk.
//
// Contract:
// - read/write/write_zeroes/discard/flush take byte offsets into the virtual
//   disk and are safe to call from many threads. Writes to different clusters
//   run their data I/O in parallel; metadata updates are serialised inside.
// - A write returns once its data is in the host file (page cache); it is
//   durable, with the metadata that makes it reachable, after flush() returns.
// - flush() performs the crash-safe ordering of SPEC section 5 (see
//   Image::flush in image.cpp, the one place it is written down).
// - The engine knows nothing about zones. Layers above may add a header
//   extension, own extra incompatible bits and own host clusters outside the
//   L1/L2 tree (allocate_clusters); they tell check() which ranges they own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qcow2/header.h"
#include "qcow2/host_file.h"
#include "qcow2/result.h"

namespace zqfs::qcow2 {

// A range of host bytes, used for clusters owned by an upper layer.
struct HostRange {
    uint64_t offset = 0;
    uint64_t length = 0;
};

// A run of the virtual disk that holds data (allocated or compressed
// clusters) or reads as zeros without touching the host file.
struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
    bool data = false;
};

struct CreateOptions {
    uint64_t virtual_size = 0;
    uint32_t cluster_size = 65536;
    uint32_t refcount_bits = 16;
    bool compression_zlib = true;  // compression_type=zlib (the only one we write)
    // Added to the header as is (e.g. the zoned extension), in this order.
    std::vector<Extension> extra_extensions;
    // Extra incompatible bits to set, with their feature-table names.
    uint64_t extra_incompatible_bits = 0;
    std::vector<FeatureName> extra_feature_names;
    // Bound on cached L2 and refcount slices (dirty ones are flushed when full).
    size_t metadata_cache_bytes = 40u << 20;
};

// One piece of a mapped read (Image::read_mapped): `length` bytes at
// `host_offset` of descriptor `fd`, or, when fd < 0, at `mem`.
struct MappedPiece {
    uint64_t length = 0;
    int fd = -1;
    uint64_t host_offset = 0;
    const std::byte* mem = nullptr;
};
using MappedConsumer = std::function<Status(std::span<const MappedPiece>)>;

struct OpenOptions {
    bool writable = false;
    // Incompatible bits an upper layer understands (e.g. bit 5, zoned).
    uint64_t accepted_incompatible_bits = 0;
    // Host ranges an upper layer owns, derived from the header extensions;
    // used when refcounts must be rebuilt (dirty bit) so they are kept.
    std::function<Result<std::vector<HostRange>>(const Header&)> owned_ranges;
    size_t metadata_cache_bytes = 40u << 20;
};

enum class RepairMode { none, leaks, all };

struct CheckReport {
    uint64_t corruptions = 0;
    uint64_t leaks = 0;
    uint64_t corruptions_fixed = 0;
    uint64_t leaks_fixed = 0;
    uint64_t allocated_clusters = 0;  // clusters referenced by the image
    uint64_t data_clusters = 0;       // guest-visible data clusters
    uint64_t image_end_offset = 0;
    std::vector<std::string> messages;  // one line each, for the human output
};

struct ImageStats {
    uint64_t host_file_size = 0;
    uint64_t host_allocated_bytes = 0;
};

class Image {
public:
    virtual ~Image() = default;

    // Writes a new empty image into `file` (which must be empty).
    static Result<std::unique_ptr<Image>> create(std::unique_ptr<HostFile> file, const CreateOptions& opts);
    static Result<std::unique_ptr<Image>> open(std::unique_ptr<HostFile> file, const OpenOptions& opts);

    virtual const Header& header() const = 0;
    virtual uint64_t virtual_size() const = 0;
    virtual uint32_t cluster_size() const = 0;
    virtual bool writable() const = 0;
    virtual HostFile& file() = 0;

    virtual Status read(uint64_t offset, std::span<std::byte> buf) = 0;
    // Zero-copy read: describes [offset, offset+length) as pieces, each
    // either a range of a host file descriptor or bytes in memory (zeros,
    // decompressed data, partial subclusters, or everything when the host
    // file has no descriptor), and calls `consume` with all of them. The
    // host ranges hold this data until `consume` returns: in-flight I/O
    // protection is held, so no reset or discard can free and reuse them.
    // `consume` must not call back into the image.
    virtual Status read_mapped(uint64_t offset, uint64_t length, const MappedConsumer& consume) = 0;
    virtual Status write(uint64_t offset, std::span<const std::byte> buf) = 0;
    // Makes the range read as zeros, deallocating whole clusters where it can.
    virtual Status write_zeroes(uint64_t offset, uint64_t length) = 0;
    // Deallocates the range: whole clusters inside it are unmapped, their
    // refcounts dropped and host space punched once the unmapping is durable
    // (at the next flush). Partial clusters at the edges are zeroed.
    virtual Status discard(uint64_t offset, uint64_t length) = 0;
    // Writes one whole cluster compressed (zlib); offset must be cluster-aligned.
    virtual Status write_compressed(uint64_t offset, std::span<const std::byte> cluster) = 0;
    virtual Status flush() = 0;
    // Which parts of [offset, offset+length) hold data, in order, merged.
    // Lets copies skip unallocated space without reading it.
    virtual Result<std::vector<Extent>> allocation(uint64_t offset, uint64_t length) = 0;

    // Allocates `count` contiguous host clusters with refcount 1 for an upper
    // layer's own metadata; returns the host offset. Their refcounts become
    // durable at the next flush().
    virtual Result<uint64_t> allocate_clusters(uint64_t count) = 0;
    // Replaces the payload of the header extension `type` and rewrites the header.
    virtual Status update_extension(uint32_t type, std::span<const std::byte> data) = 0;

    // Consistency check of the qcow2 structure. `owned` lists host ranges an
    // upper layer references (they count as referenced once).
    virtual Result<CheckReport> check(RepairMode mode, const std::vector<HostRange>& owned) = 0;
    virtual Result<ImageStats> stats() = 0;

    // Flushes and writes the header one last time; called by the destructor
    // too, but callers that care about errors call it explicitly.
    virtual Status close() = 0;
};

}  // namespace zqfs::qcow2
