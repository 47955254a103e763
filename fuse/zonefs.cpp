// Namespace, attributes, open/close, truncate and statfs of the zone file
// system. The data path is in file_io.cpp, extended attributes in xattr.cpp.
#include "fuse/zonefs.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <string_view>
#include <utility>

namespace zqfs::fs {

namespace {

// Names never change: let the kernel keep them. Attributes may be cached
// too: the mount is the only writer of the image (it holds the lock), the
// kernel updates a file's size itself after writes through it and marks the
// attributes stale, and every change the kernel cannot see (a reset or
// finish by zone command, an errors= verdict, a debug fault) is followed by
// ZoneFs::invalidate(). A zero timeout would cost a GETATTR per read(2).
constexpr double kEntryTimeout = 3600.0;
constexpr double kDirAttrTimeout = 1.0;
constexpr double kCnvAttrTimeout = 1.0;
constexpr double kSeqAttrTimeout = 1.0;

constexpr uint32_t kMaxWrite = 1u << 20;

}  // namespace

timespec now() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts;
}

ZoneFs& fs_of(fuse_req_t req) { return *static_cast<ZoneFs*>(fuse_req_userdata(req)); }

ZoneFs::ZoneFs(MountOptions opts) : opts_(opts) {}

ZoneFs::~ZoneFs() {
    for (size_t i = 0; i < nr_states_; ++i) delete states_[i].load();
}

void ZoneFs::attach(std::unique_ptr<core::ZonedDevice> device, fuse_session* session) {
    device_ = std::move(device);
    session_ = session;
    mount_time_ = now();
    const core::ZonedConfig& cfg = device_->config();
    nr_cnv_zones_ = cfg.conventional_zones;
    nr_cnv_files_ = nr_cnv_zones_ == 0 ? 0 : opts_.aggr_cnv ? 1 : nr_cnv_zones_;
    nr_seq_files_ = device_->nr_zones() - nr_cnv_zones_;
    // Writes are byte-granular, but 4 KiB is what the host file system and
    // the page cache like; fall back to 512 when capacities are not 4 KiB
    // multiples (they always are multiples of 512).
    block_size_ = (cfg.zone_capacity % 4096 == 0 && cfg.zone_size % 4096 == 0) ? 4096 : 512;
    nr_states_ = kFirstFileNode + nr_files();
    states_ = std::make_unique<std::atomic<FileState*>[]>(nr_states_);
}

bool ZoneFs::is_dir(fuse_ino_t node) const {
    return node == kRootNode || node == kSeqNode || (node == kCnvNode && nr_cnv_files_ > 0);
}

std::optional<FileGeometry> ZoneFs::file(fuse_ino_t node) const {
    if (node < kFirstFileNode || node >= kFirstFileNode + nr_files()) return std::nullopt;
    uint32_t k = static_cast<uint32_t>(node - kFirstFileNode);
    FileGeometry g;
    if (k < nr_cnv_files_) {
        g.first_zone = opts_.aggr_cnv ? 0 : k;
        g.nr_zones = opts_.aggr_cnv ? nr_cnv_zones_ : 1;
    } else {
        g.first_zone = nr_cnv_zones_ + (k - nr_cnv_files_);
        g.seq = true;
    }
    core::ZoneInfo z = device_->zone(g.first_zone);
    g.start = z.start;
    g.zone_len = z.len;
    g.zone_capacity = z.capacity;
    g.capacity = z.capacity * g.nr_zones;
    return g;
}

uint64_t ZoneFs::dir_ino(fuse_ino_t node) const {
    uint64_t n = device_->nr_zones();
    return node == kRootNode ? n : node == kCnvNode ? n + 1 : n + 2;
}

FileState& ZoneFs::state(fuse_ino_t node) {
    std::atomic<FileState*>& slot = states_[node];
    FileState* st = slot.load(std::memory_order_acquire);
    if (st) return *st;
    auto fresh = std::make_unique<FileState>();
    fresh->attrs.mode = is_dir(node) ? 0555 : opts_.perm;
    fresh->attrs.uid = opts_.uid;
    fresh->attrs.gid = opts_.gid;
    fresh->attrs.atime = fresh->attrs.mtime = fresh->attrs.ctime = mount_time_;
    FileState* expected = nullptr;
    if (slot.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) return *fresh.release();
    return *expected;
}

NodeAttrs ZoneFs::attrs_of(fuse_ino_t node) {
    if (FileState* st = states_[node].load(std::memory_order_acquire)) {
        std::lock_guard lock(st->mu);
        return st->attrs;
    }
    NodeAttrs a;
    a.mode = is_dir(node) ? 0555 : opts_.perm;
    a.uid = opts_.uid;
    a.gid = opts_.gid;
    a.atime = a.mtime = a.ctime = mount_time_;
    return a;
}

Access ZoneFs::access_of(const FileGeometry& g, const NodeAttrs& a) const {
    // A zone the device reports bad wins over the policy's verdict.
    core::ZoneCond c = device_->zone(g.first_zone).cond;
    if (c == core::ZoneCond::offline || a.access == Access::offline) return Access::offline;
    if (c == core::ZoneCond::read_only || a.access == Access::read_only) return Access::read_only;
    return Access::read_write;
}

uint64_t ZoneFs::file_size(const FileGeometry& g, Access access) const {
    if (access == Access::offline) return 0;
    if (!g.seq) return g.capacity;
    return device_->zone(g.first_zone).written();
}

struct stat ZoneFs::attributes(fuse_ino_t node) {
    struct stat s{};
    NodeAttrs a = attrs_of(node);
    s.st_uid = a.uid;
    s.st_gid = a.gid;
    s.st_atim = a.atime;
    s.st_mtim = a.mtime;
    s.st_ctim = a.ctime;
    s.st_blksize = block_size_;
    if (is_dir(node)) {
        s.st_ino = dir_ino(node);
        s.st_mode = S_IFDIR | a.mode;
        if (node == kRootNode) {
            s.st_size = (nr_cnv_files_ > 0 ? 1 : 0) + 1;
            s.st_nlink = 2 + s.st_size;
        } else {
            s.st_size = node == kCnvNode ? nr_cnv_files_ : nr_seq_files_;
            s.st_nlink = 2;
        }
        return s;
    }
    auto g = file(node);
    if (!g) return s;
    Access acc = access_of(*g, a);
    // As zonefs: a read-only zone loses its write bits, an offline one all.
    uint32_t mode = a.mode;
    if (acc == Access::read_only) mode &= ~0222u;
    if (acc == Access::offline) mode &= ~0777u;
    s.st_ino = g->first_zone;
    s.st_mode = S_IFREG | mode;
    s.st_nlink = 1;
    s.st_size = static_cast<off_t>(file_size(*g, acc));
    s.st_blocks = static_cast<blkcnt_t>(g->capacity / 512);
    return s;
}

void ZoneFs::invalidate(fuse_ino_t node) {
    if (session_) fuse_lowlevel_notify_inval_inode(session_, node, 0, 0);
}

void ZoneFs::invalidate_if_stale(fuse_ino_t node) {
    FileState* st = states_[node].load(std::memory_order_acquire);
    if (!st) return;
    bool stale;
    {
        std::lock_guard lock(st->mu);
        stale = std::exchange(st->stale_in_kernel, false);
    }
    if (stale) invalidate(node);
}

const fuse_lowlevel_ops& ZoneFs::operations() {
    static const fuse_lowlevel_ops table = [] {
        fuse_lowlevel_ops o{};
        o.init = ops::init;
        o.lookup = ops::lookup;
        o.getattr = ops::getattr;
        o.setattr = ops::setattr;
        o.opendir = ops::opendir;
        o.readdir = ops::readdir;
        o.open = ops::open;
        o.release = ops::release;
        o.flush = ops::flush;
        o.statfs = ops::statfs;
        o.read = ops::read;
        o.write = ops::write;
        o.fsync = ops::fsync;
        o.fsyncdir = ops::fsyncdir;
        o.fallocate = ops::fallocate;
        o.getxattr = ops::getxattr;
        o.listxattr = ops::listxattr;
        o.setxattr = ops::setxattr;
        o.removexattr = ops::removexattr;
        // Nothing can be created, removed or renamed.
        o.mknod = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { fuse_reply_err(req, EPERM); };
        o.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) { fuse_reply_err(req, EPERM); };
        o.unlink = [](fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); };
        o.rmdir = [](fuse_req_t req, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); };
        o.symlink = [](fuse_req_t req, const char*, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); };
        o.rename = [](fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
            fuse_reply_err(req, EPERM);
        };
        o.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { fuse_reply_err(req, EPERM); };
        o.create = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
            fuse_reply_err(req, EPERM);
        };
        return o;
    }();
    return table;
}

namespace {

// Whether this process may size a pipe to hold `bytes` (up to
// fs.pipe-max-size, beyond it only with CAP_SYS_RESOURCE).
bool pipe_can_hold(size_t bytes) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return false;
    bool ok = ::fcntl(p[0], F_SETPIPE_SZ, static_cast<int>(bytes)) >= static_cast<int>(bytes);
    ::close(p[0]);
    ::close(p[1]);
    return ok;
}

// A spliced reply needs the data plus a few header pages in libfuse's pipe.
size_t splice_pipe_bytes(uint32_t max_read) { return size_t{max_read} + 8 * 4096; }

}  // namespace

void settle_read_path(CommandLine& cmd) {
    MountOptions& o = cmd.options;
    if (!o.splice_read) return;
    if (o.max_read != 0) {
        // The user's read size: splice it if it fits, copy otherwise.
        o.splice_read = pipe_can_hold(splice_pipe_bytes(o.max_read));
        return;
    }
    if (pipe_can_hold(splice_pipe_bytes(kMaxWrite))) return;
    if (!pipe_can_hold(splice_pipe_bytes(kSpliceReadFallback))) {
        o.splice_read = false;
        return;
    }
    o.max_read = kSpliceReadFallback;
    // fuse_session_new must see it too (libfuse checks init() against it).
    for (size_t i = 0; i + 1 < cmd.fuse_argv.size(); ++i)
        if (cmd.fuse_argv[i] == "-o") cmd.fuse_argv[i + 1] += fmt::format(",max_read={}", o.max_read);
}

namespace ops {

namespace {

double attr_timeout(ZoneFs& fs, fuse_ino_t node) {
    if (fs.is_dir(node)) return kDirAttrTimeout;
    auto g = fs.file(node);
    return g && g->seq ? kSeqAttrTimeout : kCnvAttrTimeout;
}

// "0", "1", ... exactly: no sign, no leading zeros, no trailing junk.
std::optional<uint32_t> parse_file_name(std::string_view name, uint32_t count) {
    if (name.empty() || name.size() > 10 || (name.size() > 1 && name[0] == '0')) return std::nullopt;
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), v);
    if (ec != std::errc{} || end != name.data() + name.size() || v >= count) return std::nullopt;
    return v;
}

}  // namespace

void init(void* userdata, fuse_conn_info* conn) {
    auto& fs = *static_cast<ZoneFs*>(userdata);
    conn->max_write = kMaxWrite;  // libfuse derives max_pages from it
    // libfuse refuses to mount unless init() repeats -o max_read.
    if (fs.options().max_read != 0) conn->max_read = fs.options().max_read;
    // Every write must reach us synchronously and in order: no writeback
    // cache, and no parallel async submission of one direct write's chunks.
    conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ASYNC_DIO);
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    // Cached pages of a sequential file go stale when it grows or is reset;
    // the kernel drops them when it sees size or mtime change.
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA) conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    // Read replies spliced from the image save the daemon a copy;
    // settle_read_path() has already made sure libfuse's pipe can hold them
    // (otherwise libfuse would fall back, per read, to a slower path than
    // plain copying).
    const bool splice = fs.options().splice_read && (conn->capable & FUSE_CAP_SPLICE_WRITE);
    if (splice) conn->want |= FUSE_CAP_SPLICE_WRITE;
    fs.set_splice_reads(splice);
    conn->time_gran = 1;
}

void lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    ZoneFs& fs = fs_of(req);
    std::string_view n = name;
    fuse_ino_t node = 0;
    if (parent == kRootNode) {
        if (n == "seq") node = kSeqNode;
        else if (n == "cnv" && fs.nr_cnv_files() > 0) node = kCnvNode;
    } else if (parent == kCnvNode || parent == kSeqNode) {
        uint32_t count = parent == kCnvNode ? fs.nr_cnv_files() : fs.nr_seq_files();
        if (auto idx = parse_file_name(n, count))
            node = fs.file_node(parent == kCnvNode ? *idx : fs.nr_cnv_files() + *idx);
    } else {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    if (node == 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fuse_entry_param e{};
    e.ino = node;
    e.attr = fs.attributes(node);
    e.attr_timeout = attr_timeout(fs, node);
    e.entry_timeout = kEntryTimeout;
    fuse_reply_entry(req, &e);
}

void getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    ZoneFs& fs = fs_of(req);
    if (!fs.is_dir(ino) && !fs.file(ino)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    struct stat s = fs.attributes(ino);
    fuse_reply_attr(req, &s, attr_timeout(fs, ino));
}

namespace {

// truncate(2) of a zone file (zonefs_file_truncate): 0 resets a sequential
// zone, its capacity finishes it, its current size is a no-op, anything else
// is refused. Caller holds st.mu. Returns an errno.
int truncate_file(ZoneFs& fs, const FileGeometry& g, FileState& st, uint64_t new_size, bool& changed) {
    Access acc = fs.access_of(g, st.attrs);
    uint64_t size = fs.file_size(g, acc);
    if (new_size == size) return 0;
    if (!g.seq) return EPERM;
    if (new_size != 0 && new_size != g.capacity) return EPERM;
    if (fs.read_only()) return EROFS;
    if (acc == Access::offline) return EIO;
    if (acc == Access::read_only) return EROFS;
    core::ZonedDevice& dev = fs.device();
    Status s = new_size == 0 ? dev.reset_zone(g.first_zone) : dev.finish_zone(g.first_zone);
    if (!s.ok()) {
        if (s.error().code == EIO) fs.handle_io_error(g, st);
        return s.error().code;
    }
    changed = true;
    st.attrs.mtime = st.attrs.ctime = now();
    // With explicit-open, a reset zone is re-opened so the writer holding the
    // file open can go on; a finished zone is no longer open.
    if (st.zone_opened) {
        if (new_size == 0 && dev.open_zone(g.first_zone).ok()) return 0;
        st.zone_opened = false;
    }
    return 0;
}

}  // namespace

void setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
    ZoneFs& fs = fs_of(req);
    auto g = fs.file(ino);
    if (!g && !fs.is_dir(ino)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) && !g) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    FileState& st = fs.state(ino);
    bool changed = false;
    int err = 0;
    {
        std::lock_guard lock(st.mu);
        if (to_set & FUSE_SET_ATTR_SIZE) err = truncate_file(fs, *g, st, static_cast<uint64_t>(attr->st_size), changed);
    }
    if (err != 0) {
        fuse_reply_err(req, err);
        fs.invalidate_if_stale(ino);  // an errors= verdict may have changed the file
        return;
    }
    {
        std::lock_guard lock(st.mu);
        timespec t = now();
        if (to_set & FUSE_SET_ATTR_MODE) st.attrs.mode = attr->st_mode & 07777;
        if (to_set & FUSE_SET_ATTR_UID) st.attrs.uid = attr->st_uid;
        if (to_set & FUSE_SET_ATTR_GID) st.attrs.gid = attr->st_gid;
        if (to_set & FUSE_SET_ATTR_ATIME) st.attrs.atime = attr->st_atim;
        if (to_set & FUSE_SET_ATTR_ATIME_NOW) st.attrs.atime = t;
        if (to_set & FUSE_SET_ATTR_MTIME) st.attrs.mtime = attr->st_mtim;
        if (to_set & FUSE_SET_ATTR_MTIME_NOW) st.attrs.mtime = t;
        st.attrs.ctime = t;
    }
    struct stat s = fs.attributes(ino);
    fuse_reply_attr(req, &s, attr_timeout(fs, ino));
    if (changed) fs.invalidate(ino);
}

void opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    ZoneFs& fs = fs_of(req);
    if (!fs.is_dir(ino)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    fi->cache_readdir = 1;  // the listing never changes
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    ZoneFs& fs = fs_of(req);
    if (!fs.is_dir(ino)) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    // Entry i of a directory has offset i+1. The root: ".", "..", cnv, seq.
    uint64_t count;
    if (ino == kRootNode) count = 2 + (fs.nr_cnv_files() > 0 ? 1 : 0) + 1;
    else count = 2 + (ino == kCnvNode ? fs.nr_cnv_files() : fs.nr_seq_files());
    uint32_t base = ino == kSeqNode ? fs.nr_cnv_files() : 0;

    std::string buf(size, '\0');
    size_t used = 0;
    for (uint64_t i = static_cast<uint64_t>(off); i < count; ++i) {
        struct stat s{};
        std::string name;
        if (i == 0) {
            name = ".";
            s.st_ino = fs.dir_ino(ino);
            s.st_mode = S_IFDIR;
        } else if (i == 1) {
            name = "..";
            s.st_ino = fs.dir_ino(kRootNode);
            s.st_mode = S_IFDIR;
        } else if (ino == kRootNode) {
            bool cnv = fs.nr_cnv_files() > 0 && i == 2;
            name = cnv ? "cnv" : "seq";
            s.st_ino = fs.dir_ino(cnv ? kCnvNode : kSeqNode);
            s.st_mode = S_IFDIR;
        } else {
            uint32_t idx = static_cast<uint32_t>(i - 2);
            name = std::to_string(idx);
            auto g = fs.file(fs.file_node(base + idx));
            s.st_ino = g->first_zone;
            // glibc's readdir() skips entries whose d_ino is 0 as deleted, so
            // zone 0 would vanish from listings; stat() still shows 0.
            if (s.st_ino == 0) s.st_ino = fs.dir_ino(kRootNode) + 3;
            s.st_mode = S_IFREG;
        }
        size_t need = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &s,
                                        static_cast<off_t>(i + 1));
        if (need > size - used) break;
        used += need;
    }
    fuse_reply_buf(req, buf.data(), used);
}

void open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    ZoneFs& fs = fs_of(req);
    auto g = fs.file(ino);
    if (!g) {
        fuse_reply_err(req, fs.is_dir(ino) ? EISDIR : ENOENT);
        return;
    }
    bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
    if (writing && fs.read_only()) {
        fuse_reply_err(req, EROFS);
        return;
    }
    core::ZonedDevice& dev = fs.device();
    FileState& st = fs.state(ino);
    bool changed = false;
    {
        std::lock_guard lock(st.mu);
        // An offline zone has neither data nor access (zonefs gives it mode
        // 0 and size 0; root bypasses modes, so refuse the open itself).
        if (fs.access_of(*g, st.attrs) == Access::offline) {
            fuse_reply_err(req, EIO);
            return;
        }
        if (writing && (fi->flags & O_TRUNC)) {
            int err = truncate_file(fs, *g, st, 0, changed);
            if (err != 0) {
                fuse_reply_err(req, err);
                return;
            }
        }
        if (g->seq && writing) {
            if (fs.options().explicit_open && st.write_opens == 0) {
                // zonefs_seq_file_write_open: one open zone per write-open
                // file, counted against max_open_zones.
                uint32_t max_open = dev.config().max_open_zones;
                if (max_open != 0 && fs.nr_write_open_seq_files.fetch_add(1) + 1 > max_open) {
                    fs.nr_write_open_seq_files.fetch_sub(1);
                    fuse_reply_err(req, EBUSY);
                    return;
                }
                if (max_open == 0) fs.nr_write_open_seq_files.fetch_add(1);
                core::ZoneInfo z = dev.zone(g->first_zone);
                if (z.wp < z.start + z.capacity && z.cond != core::ZoneCond::explicit_open) {
                    Status s = dev.open_zone(g->first_zone);
                    if (!s.ok()) {
                        fs.nr_write_open_seq_files.fetch_sub(1);
                        int e = s.error().code;
                        fuse_reply_err(req, (e == ETOOMANYREFS || e == EOVERFLOW) ? EBUSY : e);
                        return;
                    }
                    st.zone_opened = true;
                }
            }
            ++st.write_opens;
            // Writes bypass the page cache, so each one reaches us in order
            // with its own result.
            fi->direct_io = 1;
        } else if (!g->seq || fs.device().zone(g->first_zone).written() >= g->capacity) {
            fi->keep_cache = 1;  // conventional and full zones do not change under us
        }
    }
    fuse_reply_open(req, fi);
    if (changed) fs.invalidate(ino);
}

void release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    ZoneFs& fs = fs_of(req);
    auto g = fs.file(ino);
    bool writing = (fi->flags & O_ACCMODE) != O_RDONLY;
    if (g && g->seq && writing) {
        FileState& st = fs.state(ino);
        std::lock_guard lock(st.mu);
        if (st.write_opens > 0 && --st.write_opens == 0 && fs.options().explicit_open) {
            fs.nr_write_open_seq_files.fetch_sub(1);
            if (st.zone_opened) {
                st.zone_opened = false;
                core::ZonedDevice& dev = fs.device();
                if (dev.zone(g->first_zone).cond == core::ZoneCond::explicit_open) {
                    Status s = dev.close_zone(g->first_zone);
                    if (!s.ok()) fuse_log(FUSE_LOG_ERR, "zqfs: closing zone %u: %s\n", g->first_zone,
                                          s.error().message.c_str());
                }
            }
        }
    }
    fuse_reply_err(req, 0);
}

void flush(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
    // close(2) promises nothing about durability; fsync does.
    fuse_reply_err(req, 0);
}

void statfs(fuse_req_t req, fuse_ino_t) {
    ZoneFs& fs = fs_of(req);
    core::ZonedDevice& dev = fs.device();
    const uint64_t bs = fs.block_size();
    // As zonefs: conventional space counts as used, sequential space as far
    // as it is written. The device keeps these totals, so this is O(1).
    const core::DeviceCounts c = dev.counts();
    const uint64_t total = c.capacity;
    const uint64_t used = c.cnv_capacity + (c.seq_written + bs - 1) / bs * bs;
    struct statvfs s{};
    s.f_bsize = bs;
    s.f_frsize = bs;
    s.f_blocks = total / bs;
    s.f_bfree = s.f_bavail = (total - std::min(used, total)) / bs;
    s.f_files = fs.nr_files() + 1 + 1 + (fs.nr_cnv_files() > 0 ? 1 : 0);
    s.f_ffree = s.f_favail = 0;
    s.f_namemax = 255;
    fuse_reply_statfs(req, &s);
}

}  // namespace ops
}  // namespace zqfs::fs
