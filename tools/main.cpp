// zqfs-img: create, inspect, check and convert zoned qcow2 images offline.
// Dispatches to one function per subcommand (commands.h).
#include <fmt/format.h>

#include <cstdio>
#include <cstring>
#include <string_view>

#include "tools/commands.h"

namespace {

constexpr const char* kUsage = R"(usage: zqfs-img COMMAND [OPTIONS] ...

Commands:
  create [-f qcow2] [-o OPT=VAL[,...]]... FILE [SIZE]
        Create a zoned qcow2 image (qemu-img syntax). Options:
          size, cluster_size, refcount_bits, compression_type=zlib,
          zone.mode=host-managed|none, zone.layout=seed|latest, zone.size,
          zone.capacity, zone.conventional_zones, zone.max_open_zones,
          zone.max_active_zones, zone.max_append_bytes
        (hyphens are accepted in place of underscores; sizes take K/M/G/T).
  info [--output=human|json] FILE
        Describe an image: qcow2 fields, and zone geometry for zoned images.
  report [--output=human|json|blkzone] FILE [FIRST_ZONE [COUNT]]
        List zones; blkzone prints util-linux `blkzone report` lines.
  check [-r leaks|all] [--output=human|json] FILE
        Check (and with -r repair) the image. Exit status: 0 clean,
        2 corruption, 3 leaked clusters only, 1 the check could not run.
  zone open|close|finish|reset FILE ZONE
        Offline zone management. finish and reset are persisted; open and
        close conditions live in memory, so they are validated and reported.
  convert -O raw FILE OUTPUT
        Write the virtual disk as a sparse raw file.

Writing commands lock the image and fail with "image is in use" while it is
mounted; info, report and check without -r open it read-only.
)";

struct Command {
    std::string_view name;
    int (*run)(int, char**);
};

constexpr Command kCommands[] = {
    {"create", zqfs::tools::run_create}, {"info", zqfs::tools::run_info},   {"report", zqfs::tools::run_report},
    {"check", zqfs::tools::run_check},   {"zone", zqfs::tools::run_zone},   {"convert", zqfs::tools::run_convert},
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        fmt::print(stderr, "{}", kUsage);
        return 1;
    }
    std::string_view name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") {
        fmt::print("{}", kUsage);
        return 0;
    }
    if (name == "-V" || name == "--version") {
        fmt::print("zqfs-img 0.1.0\n");
        return 0;
    }
    for (const auto& c : kCommands)
        if (c.name == name) return c.run(argc - 1, argv + 1);
    fmt::print(stderr, "zqfs-img: unknown command '{}' (see 'zqfs-img --help')\n", name);
    return 1;
}
