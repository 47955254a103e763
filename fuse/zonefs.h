// The zonefs-like file system over a core::ZonedDevice, on libfuse's
// low-level API.
//
// Layout and numbering (SPEC section 4):
//   /            st_ino nr_zones        FUSE node 1 (FUSE_ROOT_ID)
//   /cnv         st_ino nr_zones+1      node 2 (only with conventional zones)
//   /seq         st_ino nr_zones+2      node 3
//   /cnv/N, /seq/N  st_ino = first zone index   node 4 + file index
// File index k counts the conventional files first (one per conventional
// zone, or a single cnv/0 with aggr_cnv), then one per sequential zone. The
// kernel shows st_ino from our attribute replies; node ids are ours.
//
// All state of a file lives in one FileState, created on first use so that
// mounting a device with a million zones costs one pointer per zone.
//
// Locking: FileState::mu serialises, per file, everything that reads the
// write pointer and then acts on it (writes, truncate, zone commands, the
// explicit-open count), so an O_APPEND write and a reset never interleave.
// The device has its own per-zone locks; there is no global lock here.
#pragma once

#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>

#include "core/zoned_device.h"
#include "fuse/mount_options.h"

namespace zqfs::fs {

inline constexpr fuse_ino_t kRootNode = FUSE_ROOT_ID;
inline constexpr fuse_ino_t kCnvNode = 2;
inline constexpr fuse_ino_t kSeqNode = 3;
inline constexpr fuse_ino_t kFirstFileNode = 4;

// What the errors= policy (or a bad zone) left of a file's access.
enum class Access : uint8_t { read_write, read_only, offline };

// Attributes kept in memory only, like zonefs (chmod/chown are not persisted).
struct NodeAttrs {
    uint32_t mode = 0;  // permission bits only
    uint32_t uid = 0;
    uint32_t gid = 0;
    timespec atime{}, mtime{}, ctime{};
    Access access = Access::read_write;
};

struct FileState {
    std::mutex mu;
    NodeAttrs attrs;
    uint32_t write_opens = 0;      // open file handles with write access
    bool zone_opened = false;      // explicit-open: we opened the zone
    bool fail_next_write = false;  // debug_faults: simulate a host I/O error
    bool stale_in_kernel = false;  // size/mode changed behind the kernel's back
};

// Where a file lives on the device.
struct FileGeometry {
    uint32_t first_zone = 0;
    uint32_t nr_zones = 1;  // > 1 only for an aggregated cnv/0
    bool seq = false;
    uint64_t start = 0;     // absolute byte offset of the first zone
    uint64_t zone_len = 0;  // length of each zone of the file
    uint64_t capacity = 0;  // file size limit: sum of the zones' capacities
    uint64_t zone_capacity = 0;
};

class ZoneFs {
public:
    explicit ZoneFs(MountOptions opts);

    // Called once the device is open, before the session is mounted.
    void attach(std::unique_ptr<core::ZonedDevice> device, fuse_session* session);
    core::ZonedDevice& device() { return *device_; }
    const MountOptions& options() const { return opts_; }
    fuse_session* session() { return session_; }

    static const fuse_lowlevel_ops& operations();

    // --- inode table ---
    bool is_dir(fuse_ino_t node) const;
    uint32_t nr_cnv_files() const { return nr_cnv_files_; }
    uint32_t nr_seq_files() const { return nr_seq_files_; }
    uint32_t nr_files() const { return nr_cnv_files_ + nr_seq_files_; }
    // The file behind a node id, or nullopt for directories / unknown ids.
    std::optional<FileGeometry> file(fuse_ino_t node) const;
    fuse_ino_t file_node(uint32_t file_index) const { return kFirstFileNode + file_index; }
    // State of a node (file or directory), created on first use.
    FileState& state(fuse_ino_t node);
    // A copy of a node's attributes without creating its state.
    NodeAttrs attrs_of(fuse_ino_t node);
    // Access after combining the policy's verdict with the zone condition.
    Access access_of(const FileGeometry& g, const NodeAttrs& a) const;
    // Attributes; also the size the write path checks against.
    struct stat attributes(fuse_ino_t node);
    uint64_t file_size(const FileGeometry& g, Access access) const;
    uint64_t dir_ino(fuse_ino_t node) const;
    uint32_t block_size() const { return block_size_; }

    // --- file-system wide state ---
    bool read_only() const { return opts_.read_only || remounted_ro_.load(); }
    void remount_ro() { remounted_ro_ = true; }
    // Reads reply by splicing from the image (set by ops::init: the
    // options, as settle_read_path() left them, and the kernel allow it).
    bool splice_reads() const { return splice_reads_; }
    void set_splice_reads(bool on) { splice_reads_ = on; }
    std::atomic<uint32_t> nr_write_open_seq_files{0};  // explicit-open accounting

    // Applies the errors= policy after a host I/O error on a file's zone
    // (zonefs's zonefs_handle_io_error). Caller holds st.mu.
    void handle_io_error(const FileGeometry& g, FileState& st);
    // Drops cached pages and attributes of a node after its data changed
    // behind the kernel's back (reset, finish). Must not be called before the
    // reply of the request that changed it.
    void invalidate(fuse_ino_t node);
    // Sends invalidate(node) if handle_io_error() changed the file; call
    // after replying, without holding the file's lock.
    void invalidate_if_stale(fuse_ino_t node);

private:
    MountOptions opts_;
    std::unique_ptr<core::ZonedDevice> device_;
    fuse_session* session_ = nullptr;
    core::ZoneInfo first_cnv_{}, first_seq_{};
    uint32_t nr_cnv_zones_ = 0;
    uint32_t nr_cnv_files_ = 0;
    uint32_t nr_seq_files_ = 0;
    uint32_t block_size_ = 4096;
    timespec mount_time_{};
    std::atomic<bool> remounted_ro_{false};
    bool splice_reads_ = false;
    std::unique_ptr<std::atomic<FileState*>[]> states_;
    size_t nr_states_ = 0;
    std::mutex state_alloc_mu_;

public:
    ~ZoneFs();
};

ZoneFs& fs_of(fuse_req_t req);
timespec now();

// Read size used when splicing needs it: a 512 KiB reply fits the default
// 1 MiB pipe limit.
constexpr uint32_t kSpliceReadFallback = 512u << 10;
// Settles, once at start-up, how reads are answered. Spliced replies
// (ops::read) need libfuse's per-thread pipe to hold a whole reply. With no
// max_read= given, reads become 512 KiB requests when no pipe can hold a
// 1 MiB reply (spliced 512 KiB reads beat copied 1 MiB ones, see
// bench/README.md), and max_read= is added to cmd.fuse_argv too; when not
// even that fits, or a given max_read= does not, splicing is turned off.
void settle_read_path(CommandLine& cmd);

// The operations, one function each; grouped by file.
namespace ops {
// zonefs.cpp: namespace, attributes, open/close
void init(void* userdata, fuse_conn_info* conn);
void lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void statfs(fuse_req_t req, fuse_ino_t ino);
// file_io.cpp: data path
void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi);
void fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, fuse_file_info* fi);
// xattr.cpp: status and zone commands
void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags);
void removexattr(fuse_req_t req, fuse_ino_t ino, const char* name);
}  // namespace ops

}  // namespace zqfs::fs
