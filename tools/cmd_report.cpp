// zqfs-img report [--output=human|json|blkzone] FILE [FIRST_ZONE [COUNT]]
//
// Output is built in a buffer and written in large chunks so a report of a
// million zones takes well under a second; JSON is streamed zone by zone
// rather than built as one document.
#include <getopt.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/zone_json.h"
#include "tools/commands.h"
#include "tools/diagnostics.h"
#include "tools/image_source.h"
#include "tools/output_format.h"
#include "tools/zone_args.h"

namespace zqfs::tools {
namespace {

constexpr const char* kReportUsage = "usage: zqfs-img report [--output=human|json|blkzone] FILE [FIRST_ZONE [COUNT]]\n";
constexpr size_t kFlushBytes = 1 << 16;

// util-linux blkzone's two-letter condition names, indexed by blk_zone code.
constexpr const char* kBlkzoneCond[16] = {"nw", "em", "oi", "oe", "cl", "x5", "x6", "x7",
                                          "x8", "x9", "xA", "xB", "xC", "ro", "fu", "of"};

void flush_if_full(fmt::memory_buffer& out, bool force = false) {
    if (out.size() >= kFlushBytes || (force && out.size() > 0)) {
        std::fwrite(out.data(), 1, out.size(), stdout);
        out.clear();
    }
}

// One line per zone exactly as `blkzone report` prints it: 512-byte sectors
// in hex, wptr relative to the zone start (0 for conventional zones).
void blkzone_line(fmt::memory_buffer& out, const core::ZoneInfo& z) {
    bool conventional = z.type == core::ZoneType::conventional;
    unsigned type_code = conventional ? 1 : 2;
    unsigned cond = static_cast<unsigned>(z.cond);
    fmt::format_to(fmt::appender(out),
                   "  start: 0x{:09x}, len 0x{:06x}, cap 0x{:06x}, wptr 0x{:06x} reset:0 non-seq:0, "
                   "zcond:{:2}({}) [type: {}({})]\n",
                   z.start >> 9, z.len >> 9, z.capacity >> 9, conventional ? 0 : (z.wp - z.start) >> 9, cond,
                   kBlkzoneCond[cond & 0xF], type_code, conventional ? "CONVENTIONAL" : "SEQ_WRITE_REQUIRED");
}

void human_line(fmt::memory_buffer& out, const core::ZoneInfo& z) {
    bool conventional = z.type == core::ZoneType::conventional;
    fmt::format_to(fmt::appender(out), "{:>8}  {:<4}  {:<17}  {:>14}  {:>12}  {:>12}  {:>14}  {:>12}\n", z.index,
                   conventional ? "cnv" : "seq", core::cond_name(z.cond), z.start, z.len, z.capacity, z.wp,
                   z.written());
}

}  // namespace

int run_report(int argc, char** argv) {
    static const option kLong[] = {
        {"output", required_argument, nullptr, 'O'}, {"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
    OutputFormat format = OutputFormat::human;
    opterr = 0;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", kLong, nullptr)) != -1;) {
        switch (c) {
            case 'O': {
                auto f = parse_output_format(optarg, {OutputFormat::human, OutputFormat::json, OutputFormat::blkzone});
                if (!f)
                    return usage_error("report",
                                       fmt::format("--output must be human, json or blkzone, not '{}'", optarg));
                format = *f;
                break;
            }
            case 'h': fmt::print("{}", kReportUsage); return 0;
            default: return bad_option("report", c, argv);
        }
    }
    int positional = argc - optind;
    if (positional < 1) return usage_error("report", "missing FILE");
    if (positional > 3) return usage_error("report", fmt::format("unexpected argument '{}'", argv[optind + 3]));
    std::string path = argv[optind];
    std::optional<uint32_t> first = 0, count;
    if (positional >= 2 && !(first = parse_zone_number(argv[optind + 1])))
        return usage_error("report", fmt::format("FIRST_ZONE '{}' is not a zone number", argv[optind + 1]));
    if (positional == 3 && !(count = parse_zone_number(argv[optind + 2])))
        return usage_error("report", fmt::format("COUNT '{}' is not a number", argv[optind + 2]));

    std::vector<std::string> warnings;
    auto img = open_image(path, /*writable=*/false, &warnings);
    print_warnings(warnings);
    if (!img.ok()) return fail(path, img.error());
    if (!img->zoned) return fail(path, "not a zoned image (incompatible feature bit 5 is clear): it has no zones");
    core::ZonedDevice& dev = *img->zoned;
    uint32_t nr = dev.nr_zones();
    if (*first >= nr) return fail(path, fmt::format("FIRST_ZONE {} is past the last zone ({} zones)", *first, nr));
    // Like blkzone, a COUNT beyond the last zone reports up to the end.
    uint32_t end = count ? static_cast<uint32_t>(std::min<uint64_t>(uint64_t{*first} + *count, nr)) : nr;

    fmt::memory_buffer out;
    if (format == OutputFormat::json) fmt::format_to(fmt::appender(out), "{{\"nr_zones\":{},\"zones\":[", nr);
    if (format == OutputFormat::human)
        fmt::format_to(fmt::appender(out), "{:>8}  {:<4}  {:<17}  {:>14}  {:>12}  {:>12}  {:>14}  {:>12}\n",
                       "zone", "type", "cond", "start", "len", "capacity", "wp", "written");
    for (uint32_t i = *first; i < end; ++i) {
        switch (format) {
            case OutputFormat::blkzone: blkzone_line(out, dev.zone(i)); break;
            case OutputFormat::human: human_line(out, dev.zone(i)); break;
            case OutputFormat::json: {
                fmt::format_to(fmt::appender(out), "{}", i == *first ? "\n" : ",\n");
                core::append_zone_json(out, dev.zone(i));
                break;
            }
        }
        flush_if_full(out);
    }
    if (format == OutputFormat::json) fmt::format_to(fmt::appender(out), "\n]}}\n");
    flush_if_full(out, /*force=*/true);
    if (std::fflush(stdout) != 0) return fail(path, "cannot write the report to standard output");
    if (auto s = img->close(); !s.ok()) return fail(path, s.error());
    return 0;
}

}  // namespace zqfs::tools
