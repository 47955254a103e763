// zqfs-img create [-f qcow2] [-o OPT=VAL[,...]]... FILE [SIZE]
//
// qemu-img's syntax, unchanged: options may follow FILE (getopt permutes),
// -o may repeat or join options with commas. Images are zoned unless
// `-o zone.mode=none` asks for a plain qcow2 image (no zone.* option may
// accompany it). Option parsing and validation live in core/create_options,
// shared with anything else that creates images.
#include <getopt.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/create_options.h"
#include "core/zoned_device.h"
#include "qcow2/host_file.h"
#include "qcow2/image.h"
#include "tools/commands.h"
#include "tools/diagnostics.h"

namespace zqfs::tools {
namespace {

constexpr const char* kCreateUsage =
    "usage: zqfs-img create [-f qcow2] [-o OPT=VAL[,...]]... FILE [SIZE]\n"
    "  (see 'zqfs-img --help' for the options)\n";

// Pulls `zone.mode=none` out of the -o arguments, which come back as one
// key=value per entry. Returns true when a plain image was asked for; fails
// if zone.* options come with it.
Result<bool> take_plain_mode(std::vector<std::string>& o_args) {
    bool plain = false;
    std::vector<std::pair<std::string, std::string>> rest;
    for (const auto& arg : o_args) {
        ZQ_ASSIGN(auto pairs, core::split_option_list(arg));
        for (auto& [key, value] : pairs) {
            std::string norm = key;
            std::replace(norm.begin(), norm.end(), '-', '_');
            if (norm == "zone.mode" && value == "none")
                plain = true;
            else
                rest.emplace_back(std::move(key), std::move(value));
        }
    }
    o_args.clear();
    for (const auto& [key, value] : rest) {
        if (plain && key.rfind("zone", 0) == 0)
            return make_error(EINVAL, "option '{}' cannot be used with zone.mode=none (a plain qcow2 image)", key);
        std::string escaped;  // a literal comma is written ",," in qemu-img options
        for (char ch : value) escaped += ch == ',' ? std::string(",,") : std::string(1, ch);
        o_args.push_back(key + "=" + escaped);
    }
    return plain;
}

// qemu-img refuses to overwrite an image another process has open for
// writing; so do we (rather than renaming a new file over a mounted one).
Status refuse_if_in_use(const std::string& path) {
    if (::access(path.c_str(), F_OK) != 0) return {};
    auto probe = qcow2::open_host_file(path, qcow2::OpenAccess::read_write);
    if (!probe.ok() && probe.error().code == EBUSY) return probe.error();
    return {};
}

Status create_plain(const std::string& path, const core::CreateSpec& spec) {
    qcow2::CreateOptions opts;
    opts.virtual_size = spec.virtual_size;
    opts.cluster_size = spec.cluster_size;
    opts.refcount_bits = spec.refcount_bits;
    // Written beside the target and renamed over it, so a failure leaves
    // nothing half-written.
    std::string tmp = fmt::format("{}.zqfs-img-{}.tmp", path, ::getpid());
    auto fail_with = [&](Error e) -> Status {
        ::unlink(tmp.c_str());
        return e;
    };
    auto file = qcow2::create_host_file(tmp);
    if (!file.ok()) return file.error();
    auto image = qcow2::Image::create(std::move(file).value(), opts);
    if (!image.ok()) return fail_with(image.error());
    if (auto s = image.value()->close(); !s.ok()) return fail_with(s.error());
    image.value().reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        return fail_with(make_error(errno, "{}: cannot rename new image into place: {}", path, std::strerror(errno)));
    return {};
}

void print_formatting(const std::string& path, const core::CreateSpec& spec, bool plain) {
    std::string line = fmt::format("Formatting '{}', fmt=qcow2 cluster_size={} compression_type=zlib size={} "
                                   "refcount_bits={}",
                                   path, spec.cluster_size, spec.virtual_size, spec.refcount_bits);
    if (!plain) {
        line += fmt::format(
            " zone.mode=host-managed zone.layout={} zone.size={} zone.capacity={} zone.conventional_zones={} "
            "zone.max_open_zones={} zone.max_active_zones={}",
            core::layout_name(spec.layout), spec.zone_size, spec.zone_capacity.value_or(spec.zone_size),
            spec.conventional_zones, spec.max_open_zones, spec.max_active_zones);
        if (spec.layout == core::Layout::seed)
            line += fmt::format(" zone.max_append_bytes={}", spec.max_append_bytes.value_or(64 * 1024));
    }
    fmt::print("{}\n", line);
}

}  // namespace

int run_create(int argc, char** argv) {
    static const option kLong[] = {{"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
    std::vector<std::string> o_args;
    opterr = 0;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, ":f:o:h", kLong, nullptr)) != -1;) {
        switch (c) {
            case 'f':
                if (std::string_view(optarg) != "qcow2")
                    return usage_error("create", fmt::format("format '{}' is not supported (only qcow2)", optarg));
                break;
            case 'o': o_args.push_back(optarg); break;
            case 'h': fmt::print("{}", kCreateUsage); return 0;
            default: return bad_option("create", c, argv);
        }
    }
    if (optind >= argc) return usage_error("create", "missing FILE");
    if (argc - optind > 2) return usage_error("create", fmt::format("unexpected argument '{}'", argv[optind + 2]));
    std::string path = argv[optind];
    std::optional<std::string> size_arg;
    if (argc - optind == 2) size_arg = argv[optind + 1];

    std::vector<std::string> opts = o_args;
    auto plain = take_plain_mode(opts);
    if (!plain.ok()) return fail(path, plain.error());

    std::vector<std::string> warnings;
    auto spec = core::parse_create_options(opts, size_arg, &warnings);
    if (!spec.ok()) return fail(path, spec.error());
    if (auto s = refuse_if_in_use(path); !s.ok()) return fail(path, s.error());

    // Like qemu-img: the request first, then what came of it.
    print_formatting(path, *spec, *plain);
    std::fflush(stdout);
    Status created = *plain ? create_plain(path, *spec) : core::ZonedDevice::create(path, *spec, &warnings);
    print_warnings(warnings);
    if (!created.ok()) return fail(path, created.error());
    return 0;
}

}  // namespace zqfs::tools
