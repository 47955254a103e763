#include "fuse/mount_options.h"

#include <fuse_lowlevel.h>
#include <fuse_opt.h>

#include <charconv>
#include <cstdarg>
#include <cstdio>
#include <string_view>

namespace zqfs::fs {

const char* error_policy_name(ErrorPolicy p) {
    switch (p) {
        case ErrorPolicy::remount_ro: return "remount-ro";
        case ErrorPolicy::zone_ro: return "zone-ro";
        case ErrorPolicy::zone_offline: return "zone-offline";
        case ErrorPolicy::repair: return "repair";
    }
    return "?";
}

nlohmann::json MountOptions::to_json() const {
    return {
        {"uid", uid},
        {"gid", gid},
        {"perm", fmt::format("0{:o}", perm)},
        {"explicit_open", explicit_open},
        {"errors", error_policy_name(errors)},
        {"aggr_cnv", aggr_cnv},
        {"ro", read_only},
        {"strict", strict},
        {"commit", commit_seconds},
        {"allow_other", allow_other},
        {"max_read", max_read},
        {"splice", splice_read},
        {"debug_faults", debug_faults},
    };
}

namespace {

enum Key {
    kKeyForeground,
    kKeyDebug,
    kKeyHelp,
    kKeyVersion,
    kKeyUid,
    kKeyGid,
    kKeyPerm,
    kKeyExplicitOpen,
    kKeyErrors,
    kKeyAggrCnv,
    kKeyReadOnly,
    kKeyReadWrite,
    kKeyStrict,
    kKeyCommit,
    kKeyAllowOther,
    kKeyDebugFaults,
    kKeyMaxRead,
    kKeyNoSplice,
};

const fuse_opt kTemplates[] = {
    FUSE_OPT_KEY("-f", kKeyForeground),
    FUSE_OPT_KEY("-d", kKeyDebug),
    FUSE_OPT_KEY("debug", kKeyDebug),
    FUSE_OPT_KEY("-h", kKeyHelp),
    FUSE_OPT_KEY("--help", kKeyHelp),
    FUSE_OPT_KEY("-V", kKeyVersion),
    FUSE_OPT_KEY("--version", kKeyVersion),
    FUSE_OPT_KEY("uid=", kKeyUid),
    FUSE_OPT_KEY("gid=", kKeyGid),
    FUSE_OPT_KEY("perm=", kKeyPerm),
    FUSE_OPT_KEY("explicit-open", kKeyExplicitOpen),
    FUSE_OPT_KEY("explicit_open", kKeyExplicitOpen),
    FUSE_OPT_KEY("errors=", kKeyErrors),
    FUSE_OPT_KEY("aggr_cnv", kKeyAggrCnv),
    FUSE_OPT_KEY("aggr-cnv", kKeyAggrCnv),
    FUSE_OPT_KEY("ro", kKeyReadOnly),
    FUSE_OPT_KEY("rw", kKeyReadWrite),
    FUSE_OPT_KEY("strict", kKeyStrict),
    FUSE_OPT_KEY("commit=", kKeyCommit),
    FUSE_OPT_KEY("allow_other", kKeyAllowOther),
    FUSE_OPT_KEY("debug_faults", kKeyDebugFaults),
    FUSE_OPT_KEY("max_read=", kKeyMaxRead),
    FUSE_OPT_KEY("nosplice", kKeyNoSplice),
    FUSE_OPT_END,
};

// libfuse / kernel mount options passed through unchanged. Names ending in
// '=' take a value.
constexpr std::string_view kPassThrough[] = {
    "allow_root", "auto_unmount", "default_permissions", "fsname=", "subtype=",
    "nodev", "dev", "nosuid", "suid", "exec", "noexec", "atime", "noatime", "diratime",
    "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "lazytime",
    "nolazytime", "sync", "async", "dirsync", "context=", "fscontext=", "defcontext=",
    "rootcontext=",
};

bool is_pass_through(std::string_view opt) {
    for (std::string_view p : kPassThrough) {
        if (p.ends_with('=') ? opt.starts_with(p) : opt == p) return true;
    }
    return false;
}

struct ParseState {
    CommandLine* cmd = nullptr;
    std::vector<std::string> positional;
    std::vector<std::string> pass_through;
    std::string error;  // first error, one line
};

std::string_view value_of(std::string_view arg) {
    auto eq = arg.find('=');
    return eq == std::string_view::npos ? std::string_view{} : arg.substr(eq + 1);
}

bool parse_number(std::string_view text, int base, uint64_t max, uint64_t& out) {
    if (text.empty()) return false;
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
    if (ec != std::errc{} || end != text.data() + text.size() || v > max) return false;
    out = v;
    return true;
}

int fail(ParseState& st, std::string msg) {
    if (st.error.empty()) st.error = std::move(msg);
    return -1;
}

int on_option(void* data, const char* arg_c, int key, fuse_args*) {
    auto& st = *static_cast<ParseState*>(data);
    MountOptions& o = st.cmd->options;
    std::string_view arg = arg_c;
    std::string_view val = value_of(arg);
    uint64_t n = 0;
    switch (key) {
        case FUSE_OPT_KEY_NONOPT:
            st.positional.emplace_back(arg);
            return 0;
        case FUSE_OPT_KEY_OPT:
            if (arg.starts_with('-')) return fail(st, fmt::format("unknown argument '{}' (see zqfs --help)", arg));
            if (!is_pass_through(arg)) return fail(st, fmt::format("unknown mount option '{}' (see zqfs --help)", arg));
            st.pass_through.emplace_back(arg);
            return 0;
        case kKeyForeground: st.cmd->foreground = true; return 0;
        case kKeyDebug: st.cmd->debug = st.cmd->foreground = true; return 0;
        case kKeyHelp: st.cmd->help = true; return 0;
        case kKeyVersion: st.cmd->version = true; return 0;
        case kKeyUid:
        case kKeyGid:
            if (!parse_number(val, 10, UINT32_MAX - 1, n))
                return fail(st, fmt::format("mount option '{}': expected a numeric id", arg));
            (key == kKeyUid ? o.uid : o.gid) = static_cast<uint32_t>(n);
            return 0;
        case kKeyPerm:
            if (!parse_number(val, 8, 0777, n))
                return fail(st, fmt::format("mount option '{}': expected octal permissions 0 to 0777", arg));
            o.perm = static_cast<uint32_t>(n);
            return 0;
        case kKeyErrors:
            if (val == "remount-ro") o.errors = ErrorPolicy::remount_ro;
            else if (val == "zone-ro") o.errors = ErrorPolicy::zone_ro;
            else if (val == "zone-offline") o.errors = ErrorPolicy::zone_offline;
            else if (val == "repair") o.errors = ErrorPolicy::repair;
            else return fail(st, fmt::format("mount option '{}': expected remount-ro, zone-ro, zone-offline or repair", arg));
            return 0;
        case kKeyCommit:
            if (!parse_number(val, 10, 86400, n))
                return fail(st, fmt::format("mount option '{}': expected seconds from 0 to 86400", arg));
            o.commit_seconds = static_cast<unsigned>(n);
            return 0;
        case kKeyExplicitOpen: o.explicit_open = true; return 0;
        case kKeyAggrCnv: o.aggr_cnv = true; return 0;
        case kKeyReadOnly: o.read_only = true; return 0;
        case kKeyReadWrite: o.read_only = false; return 0;
        case kKeyStrict: o.strict = true; return 0;
        case kKeyAllowOther: o.allow_other = true; return 0;
        case kKeyDebugFaults: o.debug_faults = true; return 0;
        case kKeyNoSplice: o.splice_read = false; return 0;
        case kKeyMaxRead:
            if (!parse_number(val, 10, 1u << 20, n) || n < 4096)
                return fail(st, fmt::format("mount option '{}': expected bytes from 4096 to 1048576", arg));
            o.max_read = static_cast<uint32_t>(n);
            st.pass_through.emplace_back(arg);  // libfuse needs it too
            return 0;
    }
    return fail(st, fmt::format("unhandled option '{}'", arg));
}

// fuse_opt_parse reports its own syntax errors (e.g. "-o" without a value)
// through the libfuse log; capture them so the caller prints one line.
thread_local std::string* g_captured_log = nullptr;

void capture_log(enum fuse_log_level, const char* fmt_str, va_list ap) {
    if (!g_captured_log || !g_captured_log->empty()) return;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt_str, ap);
    std::string line = buf;
    while (!line.empty() && line.back() == '\n') line.pop_back();
    if (line.starts_with("fuse: ")) line.erase(0, 6);
    *g_captured_log = line;
}

}  // namespace

Result<CommandLine> parse_command_line(int argc, const char* const* argv, uint32_t default_uid, uint32_t default_gid) {
    CommandLine cmd;
    cmd.options.uid = default_uid;
    cmd.options.gid = default_gid;
    ParseState st;
    st.cmd = &cmd;

    std::vector<char*> args_copy;
    for (int i = 0; i < argc; ++i) args_copy.push_back(const_cast<char*>(argv[i]));
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(args_copy.size()), args_copy.data());

    // libfuse offers no way to read back the current log function, so the
    // caller re-installs its own after this (zqfs's main does).
    std::string log_line;
    g_captured_log = &log_line;
    fuse_set_log_func(capture_log);
    int rc = fuse_opt_parse(&args, &st, kTemplates, on_option);
    fuse_set_log_func(nullptr);
    g_captured_log = nullptr;
    fuse_opt_free_args(&args);

    if (rc != 0) {
        std::string msg = !st.error.empty() ? st.error : !log_line.empty() ? log_line : "invalid command line";
        return Error{EINVAL, msg};
    }
    if (cmd.help || cmd.version) return cmd;
    if (st.positional.size() < 2) return make_error(EINVAL, "expected IMAGE and MOUNTPOINT (see zqfs --help)");
    if (st.positional.size() > 2) return make_error(EINVAL, "unexpected argument '{}' (see zqfs --help)", st.positional[2]);
    cmd.image = st.positional[0];
    cmd.mountpoint = st.positional[1];

    // Permission checks are the kernel's, as for zonefs: without
    // default_permissions uid/gid/perm would be decoration only.
    std::string fuse_opts = "default_permissions,subtype=zqfs";
    bool has_fsname = false;
    for (const auto& p : st.pass_through) has_fsname |= p.starts_with("fsname=");
    if (!has_fsname) {
        // fuse_opt syntax: commas inside a value are escaped with a backslash.
        std::string escaped;
        for (char c : cmd.image) {
            if (c == ',' || c == '\\') escaped += '\\';
            escaped += c;
        }
        fuse_opts += ",fsname=" + escaped;
    }
    if (cmd.options.read_only) fuse_opts += ",ro";
    if (cmd.options.allow_other) fuse_opts += ",allow_other";
    for (const auto& p : st.pass_through) fuse_opts += "," + p;
    cmd.fuse_argv = {"zqfs", "-o", fuse_opts};
    if (cmd.debug) cmd.fuse_argv.push_back("-d");
    return cmd;
}

std::string usage() {
    return R"(usage: zqfs IMAGE MOUNTPOINT [-o OPT[,OPT...]] [-f] [-d]

Mounts the zones of a zoned qcow2 image as files (like Linux zonefs):
MOUNTPOINT/cnv/N (conventional zones) and MOUNTPOINT/seq/N (sequential zones).

  -f                 stay in the foreground
  -d                 debug output (implies -f)
  -h, --help         this text
  -V, --version      print the version

Options (-o):
  uid=N, gid=N       owner of the zone files (default: the mounting user)
  perm=OCTAL         permissions of the zone files (default 0640)
  explicit-open      the first write-open of a sequential file explicitly
                     opens its zone (EBUSY beyond max_open_zones); the last
                     close closes it
  errors=POLICY      on a host I/O error: remount-ro (default), zone-ro,
                     zone-offline or repair (as zonefs)
  aggr_cnv           contiguous conventional zones form one file cnv/0
  ro                 read-only mount
  strict             sequential writes need O_DIRECT (zonefs behaviour)
  commit=SECONDS     flush interval for unsynced writes (default 5, 0 = off)
  allow_other        let other users access the mount
  max_read=BYTES     largest read request (4096 to 1048576)
  nosplice           copy read data through a buffer instead of splicing it
                     from the image (splicing needs a pipe that holds a
                     whole read: 1M with CAP_SYS_RESOURCE or a raised
                     fs.pipe-max-size, else zqfs picks max_read=512K; a
                     max_read= too large to splice turns it off by itself)
  debug_faults       test only: user.zone.cmd accepts debug-offline,
                     debug-readonly and debug-fail-io
  and libfuse's own: allow_root, auto_unmount, fsname=, noatime, ...

Unmount with: fusermount3 -u MOUNTPOINT
)";
}

}  // namespace zqfs::fs
