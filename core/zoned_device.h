// A zoned block device emulated in a qcow2 image with the zoned extension.
//
// Contract:
// - Zone indices run 0..nr_zones()-1; conventional zones come first.
// - All methods are thread-safe. Writes to different zones run in parallel;
//   writes to one zone are ordered. reset/finish wait for in-flight writes
//   of that zone.
// - write()/append() return once data is in the host file; flush() makes
//   all acknowledged data, the qcow2 metadata and then the write pointers
//   durable, in that order (SPEC section 5). A background commit thread
//   calls flush() every `commit_seconds` while anything is dirty.
// - Write pointers are byte-granular in memory; on disk they are persisted
//   rounded up to 512 bytes (the unwritten tail of that sector reads as zero).
// - Errors: EINVAL write not at the WP (or misaligned zone op), EFBIG write
//   crossing or at/past capacity, ETOOMANYREFS open-resource limit,
//   EOVERFLOW active-resource limit, EROFS read-only zone or device,
//   EIO offline zone or host I/O failure, ENOSPC host disk full.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/zone_types.h"
#include "qcow2/image.h"
#include "qcow2/result.h"

namespace zqfs::core {

struct DeviceOpenOptions {
    bool writable = true;
    unsigned commit_seconds = 5;  // 0 disables the background commit thread
    // Warnings (e.g. clamped limits) are appended here, one line each.
    std::vector<std::string>* warnings = nullptr;
    // For `check`: open even when write-pointer entries are invalid (those
    // zones load as empty in memory) so check() can report them as corruption.
    bool tolerate_bad_write_pointers = false;
};

// Counts of zones per condition and of open/active resources.
struct DeviceCounts {
    uint32_t per_cond[16] = {};
    uint32_t open = 0;    // implicit + explicit
    uint32_t active = 0;  // open + closed
    uint64_t seq_written = 0;     // bytes below the write pointers of sequential zones
    uint64_t capacity = 0;        // total capacity of all zones
    uint64_t cnv_capacity = 0;    // capacity of the conventional zones
};

class ZonedDevice {
public:
    virtual ~ZonedDevice() = default;

    // Creates a zoned image at `path` atomically (temp file + rename).
    static Status create(const std::string& path, const CreateSpec& spec, std::vector<std::string>* warnings);
    static Result<std::unique_ptr<ZonedDevice>> open(const std::string& path, const DeviceOpenOptions& opts);
    // Creates in place on an empty host file the caller made (no temp file,
    // no rename), e.g. a recording HostFile in crash tests.
    static Status create_on(std::unique_ptr<qcow2::HostFile> file, const CreateSpec& spec,
                            std::vector<std::string>* warnings);
    // Opens over any host file (tests use recording and fault-injecting files).
    static Result<std::unique_ptr<ZonedDevice>> open(std::unique_ptr<qcow2::HostFile> file, const DeviceOpenOptions& opts);

    virtual const ZonedConfig& config() const = 0;
    virtual uint64_t virtual_size() const = 0;
    virtual uint32_t nr_zones() const = 0;
    virtual uint32_t cluster_size() const = 0;
    virtual bool writable() const = 0;
    virtual ZoneInfo zone(uint32_t index) const = 0;
    virtual DeviceCounts counts() const = 0;

    // Reads anywhere in the virtual disk; not limited by write pointers.
    virtual Status read(uint64_t offset, std::span<std::byte> buf) = 0;
    // The same, zero-copy: see qcow2::Image::read_mapped.
    virtual Status read_mapped(uint64_t offset, uint64_t length, const qcow2::MappedConsumer& consume) = 0;
    // Conventional zone: random write inside [start, start+capacity).
    // Sequential zone: `offset` (absolute) must equal the WP and the write must
    // not cross the capacity end. Implicitly opens empty/closed zones.
    virtual Status write(uint32_t zone, uint64_t offset, std::span<const std::byte> data) = 0;
    // Zone append: data goes at the WP; returns the absolute offset written.
    // Limited to max_append_bytes when the layout records it.
    virtual Result<uint64_t> append(uint32_t zone, std::span<const std::byte> data) = 0;

    virtual Status open_zone(uint32_t zone) = 0;    // explicit open
    virtual Status close_zone(uint32_t zone) = 0;
    virtual Status finish_zone(uint32_t zone) = 0;
    virtual Status reset_zone(uint32_t zone) = 0;
    virtual Status reset_all() = 0;
    // For errors= policies and fault-injection tests: force a zone read-only
    // or offline (in memory; not persisted).
    virtual Status set_zone_condition(uint32_t zone, ZoneCond cond) = 0;

    virtual Status flush() = 0;
    // Which parts of the virtual disk hold data (see qcow2::Image::allocation).
    virtual Result<std::vector<qcow2::Extent>> allocation(uint64_t offset, uint64_t length) = 0;
    // Flushes, stops the commit thread, releases the image (and its lock).
    // Idempotent. No other call may be in flight; later I/O calls fail EBADF.
    virtual Status close() = 0;

    virtual nlohmann::ordered_json zone_json(uint32_t zone) const = 0;
    // Geometry, limits, layout, cluster size, condition counts, resources.
    virtual nlohmann::ordered_json device_json() const = 0;
    // Consistency check of the qcow2 structure plus the write-pointer table.
    virtual Result<qcow2::CheckReport> check(qcow2::RepairMode mode) = 0;
    virtual Result<qcow2::ImageStats> stats() = 0;
};

}  // namespace zqfs::core
