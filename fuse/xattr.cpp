// Extended attributes (zonefs has none; this is how zqfs shows status and
// takes zone commands):
//   user.zone      every zone file: the zone's JSON status (read-only)
//   user.zqfs      the root: device geometry, limits, counts, mount options,
//                  host bytes used (read-only)
//   user.zone.cmd  sequential files, write-only: open, close, finish, reset;
//                  with -o debug_faults also debug-offline, debug-readonly,
//                  debug-fail-io (fault injection for the errors= policies)
#include <sys/xattr.h>

#include <string>
#include <string_view>

#include "fuse/zonefs.h"

namespace zqfs::fs::ops {

namespace {

constexpr std::string_view kZone = "user.zone";
constexpr std::string_view kZqfs = "user.zqfs";
constexpr std::string_view kZoneCmd = "user.zone.cmd";

// getxattr/listxattr size protocol: size 0 asks for the length; a buffer
// too small is ERANGE.
void reply_value(fuse_req_t req, const std::string& value, size_t size) {
    if (size == 0) fuse_reply_xattr(req, value.size());
    else if (size < value.size()) fuse_reply_err(req, ERANGE);
    else fuse_reply_buf(req, value.data(), value.size());
}

std::string zone_status(ZoneFs& fs, const FileGeometry& g, fuse_ino_t ino) {
    auto j = fs.device().zone_json(g.first_zone);
    if (g.nr_zones > 1) {
        // An aggregated cnv/0 spans several zones: say how many and how big.
        j["nr_zones"] = g.nr_zones;
        j["file_capacity"] = g.capacity;
    }
    Access acc = fs.access_of(g, fs.attrs_of(ino));
    if (acc != Access::read_write) j["file_access"] = acc == Access::offline ? "offline" : "read-only";
    return j.dump();
}

std::string fs_status(ZoneFs& fs) {
    auto j = fs.device().device_json();
    j["mount"] = fs.options().to_json();
    j["read_only"] = fs.read_only();
    j["splice_reads"] = fs.splice_reads();
    j["files"] = {{"cnv", fs.nr_cnv_files()}, {"seq", fs.nr_seq_files()}};
    j["nr_wro_seq_files"] = fs.nr_write_open_seq_files.load();
    if (auto st = fs.device().stats(); st.ok()) j["host_bytes_used"] = st->host_allocated_bytes;
    return j.dump();
}

}  // namespace

void getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    ZoneFs& fs = fs_of(req);
    std::string_view n = name;
    if (ino == kRootNode && n == kZqfs) {
        reply_value(req, fs_status(fs), size);
        return;
    }
    if (auto g = fs.file(ino)) {
        if (n == kZone) {
            reply_value(req, zone_status(fs, *g, ino), size);
            return;
        }
        if (n == kZoneCmd && g->seq) {
            reply_value(req, "", size);  // write-only: reads as empty
            return;
        }
    }
    fuse_reply_err(req, ENODATA);
}

void listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    ZoneFs& fs = fs_of(req);
    std::string names;
    auto add = [&](std::string_view n) {
        names += n;
        names += '\0';
    };
    if (ino == kRootNode) add(kZqfs);
    if (auto g = fs.file(ino)) {
        add(kZone);
        if (g->seq) add(kZoneCmd);
    }
    reply_value(req, names, size);
}

namespace {

// Runs one user.zone.cmd command; returns an errno.
int zone_command(ZoneFs& fs, fuse_ino_t ino, const FileGeometry& g, std::string_view cmd) {
    core::ZonedDevice& dev = fs.device();
    const bool debug = fs.options().debug_faults;
    FileState& st = fs.state(ino);
    std::lock_guard lock(st.mu);
    Status s;
    if (cmd == "debug-fail-io" && debug) {
        st.fail_next_write = true;
        return 0;
    }
    if ((cmd == "debug-offline" || cmd == "debug-readonly") && debug) {
        s = dev.set_zone_condition(g.first_zone,
                                   cmd == "debug-offline" ? core::ZoneCond::offline : core::ZoneCond::read_only);
        return s.ok() ? 0 : s.error().code;
    }
    if (fs.read_only()) return EROFS;
    if (!g.seq) return EINVAL;
    if (cmd == "open") s = dev.open_zone(g.first_zone);
    else if (cmd == "close") s = dev.close_zone(g.first_zone);
    else if (cmd == "finish") s = dev.finish_zone(g.first_zone);
    else if (cmd == "reset") s = dev.reset_zone(g.first_zone);
    else return EINVAL;
    if (!s.ok()) {
        if (s.error().code == EIO) fs.handle_io_error(g, st);
        return s.error().code;
    }
    if (cmd == "finish" || cmd == "reset") st.attrs.mtime = st.attrs.ctime = now();
    return 0;
}

}  // namespace

void setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int) {
    ZoneFs& fs = fs_of(req);
    std::string_view n = name;
    auto g = fs.file(ino);
    if (n == kZoneCmd && g) {
        std::string_view cmd(value, size);
        while (!cmd.empty() && (cmd.back() == '\n' || cmd.back() == ' ' || cmd.back() == '\0')) cmd.remove_suffix(1);
        int err = zone_command(fs, ino, *g, cmd);
        fuse_reply_err(req, err);
        // A reset, a finish or a debug fault changed size, data or mode
        // behind the kernel's cached attributes and pages.
        if (err == 0 && cmd != "open" && cmd != "close" && cmd != "debug-fail-io") fs.invalidate(ino);
        else fs.invalidate_if_stale(ino);
        return;
    }
    if (n == kZone || n == kZqfs || n == kZoneCmd) {
        fuse_reply_err(req, EPERM);
        return;
    }
    fuse_reply_err(req, ENOTSUP);
}

void removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    std::string_view n = name;
    bool known = (ino == kRootNode && n == kZqfs) || (fs_of(req).file(ino) && (n == kZone || n == kZoneCmd));
    fuse_reply_err(req, known ? EPERM : ENODATA);
}

}  // namespace zqfs::fs::ops
