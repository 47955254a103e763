// The data path: read, write, fsync, and what a host I/O error does to a
// file (the errors= policy).
//
// Sequential files follow zonefs's write checks (zonefs_write_checks): EFBIG
// at or past the capacity, a write crossing it is cut short, then EINVAL
// unless the write starts at the write pointer. O_APPEND writes go at the
// write pointer whatever offset the kernel believes in.
#include <fcntl.h>

#include <memory>

#include "fuse/zonefs.h"

namespace zqfs::fs {

// zonefs_handle_io_error: a zone the device reports offline or read-only
// takes that state; otherwise the errors= policy decides. errors=repair
// leaves access alone: sizes always follow the device's write pointer here.
void ZoneFs::handle_io_error(const FileGeometry& g, FileState& st) {
    st.stale_in_kernel = true;  // mode or size may change below
    core::ZoneCond cond = device_->zone(g.first_zone).cond;
    if (cond == core::ZoneCond::offline || opts_.errors == ErrorPolicy::zone_offline) {
        st.attrs.access = Access::offline;
    } else if (cond == core::ZoneCond::read_only || opts_.errors == ErrorPolicy::zone_ro) {
        st.attrs.access = Access::read_only;
    }
    if (opts_.errors == ErrorPolicy::remount_ro && !remounted_ro_.exchange(true))
        fuse_log(FUSE_LOG_ERR, "zqfs: I/O error on zone %u: file system is now read-only (errors=remount-ro)\n",
                 g.first_zone);
}

namespace ops {

namespace {

// Calls `fn(absolute_offset, buffer_offset, length)` for each piece of the
// file range [pos, pos+len): a file of several (aggregated conventional)
// zones maps each zone's capacity onto the device in turn.
template <class Fn>
Status for_each_piece(const FileGeometry& g, uint64_t pos, uint64_t len, Fn&& fn) {
    uint64_t done = 0;
    while (done < len) {
        uint64_t file_off = pos + done;
        uint64_t zone = file_off / g.zone_capacity;
        uint64_t in_zone = file_off % g.zone_capacity;
        uint64_t chunk = std::min(len - done, g.zone_capacity - in_zone);
        ZQ_TRY(fn(static_cast<uint32_t>(g.first_zone + zone), g.start + zone * g.zone_len + in_zone, done, chunk));
        done += chunk;
    }
    return {};
}

// Replies with the pieces of a mapped read; libfuse splices descriptor
// pieces into the reply pipe, so their bytes are never copied here.
void reply_pieces(fuse_req_t req, std::span<const qcow2::MappedPiece> pieces) {
    if (pieces.empty()) {
        fuse_reply_buf(req, nullptr, 0);
        return;
    }
    // fuse_bufvec ends in a one-element array that holds `count` buffers.
    const size_t bytes = sizeof(fuse_bufvec) + (pieces.size() - 1) * sizeof(fuse_buf);
    std::unique_ptr<std::byte[]> storage(new std::byte[bytes]());
    auto* bv = new (storage.get()) fuse_bufvec{};
    bv->count = pieces.size();
    for (size_t i = 0; i < pieces.size(); ++i) {
        fuse_buf& b = bv->buf[i];
        b = fuse_buf{};
        b.size = pieces[i].length;
        if (pieces[i].fd >= 0) {
            b.flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
            b.fd = pieces[i].fd;
            b.pos = static_cast<off_t>(pieces[i].host_offset);
        } else {
            b.mem = const_cast<std::byte*>(pieces[i].mem);
        }
    }
    fuse_reply_data(req, bv, static_cast<fuse_buf_copy_flags>(0));
}

}  // namespace

void read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
    ZoneFs& fs = fs_of(req);
    auto g = fs.file(ino);
    if (!g) {
        fuse_reply_err(req, fs.is_dir(ino) ? EISDIR : ENOENT);
        return;
    }
    Access acc = fs.access_of(*g, fs.attrs_of(ino));
    if (acc == Access::offline) {
        fuse_reply_err(req, EIO);
        return;
    }
    // Direct I/O reads are not clipped by the kernel: stop at end of file.
    uint64_t file_size = fs.file_size(*g, acc);
    uint64_t pos = static_cast<uint64_t>(off);
    if (pos >= file_size || size == 0) {
        fuse_reply_buf(req, nullptr, 0);
        return;
    }
    uint64_t n = std::min<uint64_t>(size, file_size - pos);
    core::ZonedDevice& dev = fs.device();
    std::unique_ptr<std::byte[]> buf;
    Status s;
    if (fs.splice_reads() && pos / g->zone_capacity == (pos + n - 1) / g->zone_capacity) {
        // One device range (one piece): reply straight from the image's pages.
        s = for_each_piece(*g, pos, n, [&](uint32_t, uint64_t abs, uint64_t, uint64_t len) {
            return dev.read_mapped(abs, len, [&](std::span<const qcow2::MappedPiece> pieces) -> Status {
                reply_pieces(req, pieces);
                return {};
            });
        });
        if (s.ok()) return;
    } else {
        buf.reset(new std::byte[n]);
        s = for_each_piece(*g, pos, n, [&](uint32_t, uint64_t abs, uint64_t at, uint64_t len) {
            return dev.read(abs, std::span<std::byte>(buf.get() + at, len));
        });
    }
    if (!s.ok()) {
        core::ZoneCond c = dev.zone(g->first_zone).cond;
        if (c == core::ZoneCond::offline || c == core::ZoneCond::read_only) {
            FileState& st = fs.state(ino);
            std::lock_guard lock(st.mu);
            fs.handle_io_error(*g, st);
        }
        fuse_reply_err(req, s.error().code);
        fs.invalidate_if_stale(ino);
        return;
    }
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), n);
}

namespace {

// Checks and performs one write; returns bytes written or a negative errno.
// Caller holds st.mu.
int64_t write_locked(ZoneFs& fs, const FileGeometry& g, FileState& st, std::span<const std::byte> data,
                     uint64_t off, int open_flags) {
    if (fs.read_only()) return -EROFS;
    Access acc = fs.access_of(g, st.attrs);
    if (acc == Access::offline) return -EIO;
    if (acc == Access::read_only) return -EROFS;
    core::ZonedDevice& dev = fs.device();
    uint64_t pos = off;
    if (g.seq) {
        // zonefs takes only direct writes on sequential files; we also take
        // buffered ones (the kernel sends them through unchanged because the
        // file is open with direct_io) unless mounted with `strict`.
        if (fs.options().strict && !(open_flags & O_DIRECT)) return -EIO;
        uint64_t wp = dev.zone(g.first_zone).written();
        if (open_flags & O_APPEND) pos = wp;
        if (pos >= g.capacity) return -EFBIG;
        data = data.first(std::min<uint64_t>(data.size(), g.capacity - pos));
        if (pos != wp) return -EINVAL;
    } else {
        if (open_flags & O_APPEND) return -EINVAL;
        if (pos >= g.capacity) return -EFBIG;
        data = data.first(std::min<uint64_t>(data.size(), g.capacity - pos));
    }
    Status s;
    if (st.fail_next_write) {
        st.fail_next_write = false;
        s = make_error(EIO, "zone {}: injected host I/O error (debug-fail-io)", g.first_zone);
    } else if (g.seq) {
        s = dev.write(g.first_zone, g.start + pos, data);
    } else {
        s = for_each_piece(g, pos, data.size(), [&](uint32_t zone, uint64_t abs, uint64_t at, uint64_t len) {
            return dev.write(zone, abs, data.subspan(at, len));
        });
    }
    if (!s.ok()) {
        int e = s.error().code;
        if (e == EIO || e == EROFS) fs.handle_io_error(g, st);
        return -e;
    }
    st.attrs.mtime = st.attrs.ctime = now();
    return static_cast<int64_t>(data.size());
}

}  // namespace

void write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
    ZoneFs& fs = fs_of(req);
    auto g = fs.file(ino);
    if (!g) {
        fuse_reply_err(req, fs.is_dir(ino) ? EISDIR : ENOENT);
        return;
    }
    if (size == 0) {
        fuse_reply_write(req, 0);
        return;
    }
    FileState& st = fs.state(ino);
    int64_t r;
    {
        // Held across the device write: the WP check and the write it
        // guards must be one step, or two appenders could both pass it.
        std::lock_guard lock(st.mu);
        r = write_locked(fs, *g, st, std::span(reinterpret_cast<const std::byte*>(buf), size),
                         static_cast<uint64_t>(off), fi->flags);
    }
    if (r < 0) fuse_reply_err(req, static_cast<int>(-r));
    else fuse_reply_write(req, static_cast<size_t>(r));
    if (r < 0) fs.invalidate_if_stale(ino);
}

void fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
    // The device flushes as a whole: data, then qcow2 metadata, then WPs.
    Status s = fs_of(req).device().flush();
    fuse_reply_err(req, s.ok() ? 0 : s.error().code);
}

void fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) { fsync(req, ino, datasync, fi); }

void fallocate(fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) { fuse_reply_err(req, EOPNOTSUPP); }

}  // namespace ops
}  // namespace zqfs::fs
