// The zqfs command line: `zqfs IMAGE MOUNTPOINT [-o OPT[,OPT...]] [-f] [-d]`.
//
// Contract:
// - parse_command_line() is pure (no I/O; it borrows libfuse's log hook to
//   capture fuse_opt_parse's messages and leaves the default one installed): it turns argv into the file-system
//   options, the positional arguments and the list of options passed on to
//   libfuse. Tokenising (-o lists, commas, escapes) is libfuse's fuse_opt_parse.
// - Options zqfs understands are consumed; a fixed list of libfuse / kernel
//   mount options (allow_other, fsname=, noatime, ...) is passed through;
//   anything else fails with one line naming the option.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "qcow2/result.h"

namespace zqfs::fs {

// What a host I/O error on a zone does (zonefs's errors= mount option).
enum class ErrorPolicy : uint8_t { remount_ro, zone_ro, zone_offline, repair };
const char* error_policy_name(ErrorPolicy p);

struct MountOptions {
    uint32_t uid = 0;  // defaults: the mounting user
    uint32_t gid = 0;
    uint32_t perm = 0640;
    bool explicit_open = false;
    ErrorPolicy errors = ErrorPolicy::remount_ro;
    bool aggr_cnv = false;
    bool read_only = false;
    bool strict = false;
    unsigned commit_seconds = 5;
    bool allow_other = false;
    uint32_t max_read = 0;  // libfuse's max_read=, 0 = its default
    bool splice_read = true;  // nosplice: reads always copy through a buffer
    // Test-only: enables the `debug-*` values of the user.zone.cmd xattr
    // (fault injection for the errors= policies).
    bool debug_faults = false;

    nlohmann::json to_json() const;
};

struct CommandLine {
    std::string image;
    std::string mountpoint;
    MountOptions options;
    bool foreground = false;
    bool debug = false;
    bool help = false;
    bool version = false;
    // Options for fuse_session_new(), e.g. {"zqfs", "-o", "allow_other,ro"}.
    std::vector<std::string> fuse_argv;
};

// `default_uid`/`default_gid` are the mounting user's ids.
Result<CommandLine> parse_command_line(int argc, const char* const* argv, uint32_t default_uid, uint32_t default_gid);

// The --help text.
std::string usage();

}  // namespace zqfs::fs
