// zqfs-img zone open|close|finish|reset FILE ZONE
//
// Offline zone management on a locked, writable image. finish and reset are
// persisted (the write pointer moves; reset frees the zone's clusters). Open
// and closed conditions are not stored on disk: open and close are checked
// against the zone model and reported, and the next open of the image sees
// the zone as the write pointer says.
#include <getopt.h>

#include <string>

#include <fmt/format.h>

#include "tools/commands.h"
#include "tools/diagnostics.h"
#include "tools/image_source.h"
#include "tools/zone_args.h"

namespace zqfs::tools {
namespace {

constexpr const char* kZoneUsage = "usage: zqfs-img zone open|close|finish|reset FILE ZONE\n";

enum class ZoneOp { open, close, finish, reset };

std::optional<ZoneOp> parse_op(std::string_view s) {
    if (s == "open") return ZoneOp::open;
    if (s == "close") return ZoneOp::close;
    if (s == "finish") return ZoneOp::finish;
    if (s == "reset") return ZoneOp::reset;
    return std::nullopt;
}

Status apply(core::ZonedDevice& dev, ZoneOp op, uint32_t zone) {
    switch (op) {
        case ZoneOp::open: return dev.open_zone(zone);
        case ZoneOp::close: return dev.close_zone(zone);
        case ZoneOp::finish: return dev.finish_zone(zone);
        case ZoneOp::reset: return dev.reset_zone(zone);
    }
    return {};
}

}  // namespace

int run_zone(int argc, char** argv) {
    static const option kLong[] = {{"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
    opterr = 0;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", kLong, nullptr)) != -1;) {
        if (c == 'h') {
            fmt::print("{}", kZoneUsage);
            return 0;
        }
        return bad_option("zone", c, argv);
    }
    if (argc - optind < 3) return usage_error("zone", "expected OPERATION FILE ZONE");
    if (argc - optind > 3) return usage_error("zone", fmt::format("unexpected argument '{}'", argv[optind + 3]));
    auto op = parse_op(argv[optind]);
    if (!op)
        return usage_error("zone",
                           fmt::format("unknown operation '{}' (open, close, finish or reset)", argv[optind]));
    std::string op_name = argv[optind];
    std::string path = argv[optind + 1];
    auto zone = parse_zone_number(argv[optind + 2]);
    if (!zone) return usage_error("zone", fmt::format("ZONE '{}' is not a zone number", argv[optind + 2]));

    std::vector<std::string> warnings;
    auto img = open_image(path, /*writable=*/true, &warnings);
    print_warnings(warnings);
    if (!img.ok()) return fail(path, img.error());
    if (!img->zoned) return fail(path, "not a zoned image (incompatible feature bit 5 is clear): it has no zones");
    core::ZonedDevice& dev = *img->zoned;
    if (*zone >= dev.nr_zones())
        return fail(path, fmt::format("zone {} does not exist (the image has {} zones)", *zone, dev.nr_zones()));

    if (auto s = apply(dev, *op, *zone); !s.ok()) {
        std::string why = s.error().message;
        if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);
        return fail(path, fmt::format("zone {}: {} failed: {}", *zone, op_name, why));
    }
    core::ZoneInfo z = dev.zone(*zone);
    if (auto s = dev.close(); !s.ok()) return fail(path, s.error());
    fmt::print("zone {}: {}, wp {} ({} bytes written)", *zone, core::cond_name(z.cond), z.wp, z.written());
    if (*op == ZoneOp::open || *op == ZoneOp::close)
        fmt::print(" [open/closed conditions are not stored: the image reopens with this zone {}]",
                   z.written() == 0 ? "empty" : "closed");
    fmt::print("\n");
    return 0;
}

}  // namespace zqfs::tools
