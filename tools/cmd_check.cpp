// zqfs-img check [-r leaks|all] [--output=human|json] FILE
//
// qemu-img check's exit codes and wording: 0 clean, 2 corruption, 3 leaked
// clusters only, 1 the check could not run. Zoned images are checked by
// core (qcow2 structure plus the write-pointer table); a zoned image whose
// zoned metadata is too broken to open, while its qcow2 structure opens,
// counts as corrupted rather than uncheckable. After a repair the image is
// checked again, as qemu-img does, and that second result decides the exit
// code.
#include <getopt.h>

#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "qcow2/host_file.h"
#include "tools/commands.h"
#include "tools/diagnostics.h"
#include "tools/image_source.h"
#include "tools/output_format.h"

namespace zqfs::tools {
namespace {

constexpr const char* kCheckUsage = "usage: zqfs-img check [-r leaks|all] [--output=human|json] FILE\n";

enum ExitCode { kClean = 0, kCouldNotCheck = 1, kCorrupt = 2, kLeaksOnly = 3 };

Result<qcow2::CheckReport> run_check_on(OpenedImage& img, qcow2::RepairMode mode) {
    if (img.zoned) return img.zoned->check(mode);
    return img.plain->check(mode, {});
}

// The zoned open failed. If the qcow2 structure itself opens, the fault is in
// the zoned extension or write-pointer table: that is a corruption.
bool zoned_metadata_is_corrupt(const std::string& path, const Error& e) {
    if (e.code == EBUSY || e.code == EIO || e.code == ENOMEM || e.code == EACCES || e.code == ENOENT) return false;
    auto file = qcow2::open_host_file(path, qcow2::OpenAccess::read_only);
    if (!file.ok()) return false;
    qcow2::OpenOptions opts;
    opts.accepted_incompatible_bits = core::kIncompatZoned;
    return qcow2::Image::open(std::move(file).value(), opts).ok();
}

void print_human(const qcow2::CheckReport& r, const qcow2::CheckReport* repaired, uint64_t total_clusters) {
    fmt::memory_buffer out;
    if (repaired)
        for (const auto& m : repaired->messages) append(out, "{}\n", m);
    for (const auto& m : r.messages) append(out, "{}\n", m);
    if (repaired && (repaired->leaks_fixed || repaired->corruptions_fixed))
        append(out, "The following inconsistencies were found and repaired:\n\n"
            "    {} leaked clusters\n    {} corruptions\n\nDouble checking the fixed image now...\n",
            repaired->leaks_fixed, repaired->corruptions_fixed);
    if (r.corruptions == 0 && r.leaks == 0) {
        append(out, "No errors were found on the image.\n");
    } else {
        if (r.corruptions)
            append(out, "\n{} errors were found on the image.\n"
                "Data may be corrupted, or further writes to the image may corrupt it.\n",
                r.corruptions);
        if (r.leaks)
            append(out, "\n{} leaked clusters were found on the image.\n"
                "This means waste of disk space, but no harm to data.\n",
                r.leaks);
    }
    if (total_clusters && r.data_clusters)
        append(out, "{}/{} = {:.2f}% allocated\n", r.data_clusters, total_clusters,
            100.0 * static_cast<double>(r.data_clusters) / static_cast<double>(total_clusters));
    if (r.image_end_offset) append(out, "Image end offset: {}\n", r.image_end_offset);
    fmt::print("{}", fmt::to_string(out));
}

nlohmann::json report_json(const std::string& path, const qcow2::CheckReport& r, const qcow2::CheckReport* repaired,
                           uint64_t total_clusters) {
    nlohmann::json j = {
        {"filename", path},
        {"format", "qcow2"},
        {"check-errors", 0},
        {"corruptions", r.corruptions},
        {"leaks", r.leaks},
        {"total-clusters", total_clusters},
        {"allocated-clusters", r.data_clusters},
        {"image-end-offset", r.image_end_offset},
        {"messages", r.messages},
    };
    if (repaired) {
        j["leaks-fixed"] = repaired->leaks_fixed;
        j["corruptions-fixed"] = repaired->corruptions_fixed;
    }
    return j;
}

}  // namespace

int run_check(int argc, char** argv) {
    static const option kLong[] = {{"output", required_argument, nullptr, 'O'},
                                   {"repair", required_argument, nullptr, 'r'},
                                   {"help", no_argument, nullptr, 'h'},
                                   {nullptr, 0, nullptr, 0}};
    OutputFormat format = OutputFormat::human;
    qcow2::RepairMode mode = qcow2::RepairMode::none;
    opterr = 0;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, ":r:h", kLong, nullptr)) != -1;) {
        switch (c) {
            case 'O': {
                auto f = parse_output_format(optarg, {OutputFormat::human, OutputFormat::json});
                if (!f) return usage_error("check", fmt::format("--output must be human or json, not '{}'", optarg));
                format = *f;
                break;
            }
            case 'r':
                if (std::string_view(optarg) == "leaks")
                    mode = qcow2::RepairMode::leaks;
                else if (std::string_view(optarg) == "all")
                    mode = qcow2::RepairMode::all;
                else
                    return usage_error("check", fmt::format("-r must be leaks or all, not '{}'", optarg));
                break;
            case 'h': fmt::print("{}", kCheckUsage); return 0;
            default: return bad_option("check", c, argv);
        }
    }
    if (optind >= argc) return usage_error("check", "missing FILE");
    if (argc - optind > 1) return usage_error("check", fmt::format("unexpected argument '{}'", argv[optind + 1]));
    std::string path = argv[optind];

    std::vector<std::string> warnings;
    auto img = open_image(path, /*writable=*/mode != qcow2::RepairMode::none, &warnings, /*for_check=*/true);
    print_warnings(warnings);
    if (!img.ok()) {
        fail(path, img.error());
        auto probe = probe_header(path);
        if (probe.ok() && probe->zoned && zoned_metadata_is_corrupt(path, img.error())) {
            if (format == OutputFormat::json) {
                qcow2::CheckReport r;
                r.corruptions = 1;
                r.messages.push_back("ERROR " + img.error().message);
                fmt::print("{}\n", report_json(path, r, nullptr, 0).dump(4));
            } else {
                fmt::print("ERROR {}\n\n1 errors were found on the image.\n"
                           "Data may be corrupted, or further writes to the image may corrupt it.\n",
                           img.error().message);
            }
            return kCorrupt;
        }
        return kCouldNotCheck;
    }

    std::optional<qcow2::CheckReport> repaired;
    if (mode != qcow2::RepairMode::none) {
        auto r = run_check_on(*img, mode);
        if (!r.ok()) {
        fail(path, r.error());
        return kCouldNotCheck;
    }
        repaired = std::move(r).value();
    }
    auto result = run_check_on(*img, qcow2::RepairMode::none);
    if (!result.ok()) {
        fail(path, result.error());
        return kCouldNotCheck;
    }
    const qcow2::CheckReport& r = *result;
    uint64_t cluster = img->probe.header.cluster_size();
    uint64_t total_clusters = (img->virtual_size() + cluster - 1) / cluster;

    if (format == OutputFormat::json)
        fmt::print("{}\n", report_json(path, r, repaired ? &*repaired : nullptr, total_clusters).dump(4));
    else
        print_human(r, repaired ? &*repaired : nullptr, total_clusters);
    if (auto s = img->close(); !s.ok()) {
        fail(path, s.error());
        return kCouldNotCheck;
    }
    if (r.corruptions) return kCorrupt;
    if (r.leaks) return kLeaksOnly;
    return kClean;
}

}  // namespace zqfs::tools
