// zqfs-img info [--output=human|json] FILE
//
// The qcow2 facts qemu-img info shows (plus feature bits and header
// extensions), and for zoned images the geometry, limits and zone condition
// counts. JSON output nests core's device_json() under "zoned".
#include <getopt.h>
#include <sys/stat.h>

#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/zone_types.h"
#include "tools/commands.h"
#include "tools/diagnostics.h"
#include "tools/image_source.h"
#include "tools/output_format.h"

namespace zqfs::tools {
namespace {

constexpr const char* kInfoUsage = "usage: zqfs-img info [--output=human|json] FILE\n";

std::string extension_name(uint32_t type) {
    switch (type) {
        case core::kZonedExtensionType: return "zoned format";
        case qcow2::kExtBackingFormat: return "backing file format";
        case qcow2::kExtFeatureTable: return "feature name table";
        case qcow2::kExtBitmaps: return "bitmaps";
        case qcow2::kExtEncryption: return "full disk encryption";
        case qcow2::kExtExternalData: return "external data file";
        default: return "unknown";
    }
}

// Names of the set bits of one feature field, from the image's own table.
nlohmann::json feature_bits(const qcow2::Header& h, uint64_t bits, uint8_t type) {
    nlohmann::json out = nlohmann::json::array();
    for (unsigned bit = 0; bit < 64; ++bit) {
        if (!(bits & (1ull << bit))) continue;
        std::string name = fmt::format("bit {}", bit);
        for (const auto& f : h.feature_names)
            if (f.type == type && f.bit == bit) name = f.name;
        out.push_back({{"bit", bit}, {"name", name}});
    }
    return out;
}

uint64_t allocated_on_host(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

nlohmann::json info_json(const std::string& path, const OpenedImage& img) {
    const qcow2::Header& h = img.probe.header;
    nlohmann::json extensions = nlohmann::json::array();
    for (const auto& e : h.extensions)
        extensions.push_back(
            {{"type", fmt::format("0x{:08x}", e.type)}, {"name", extension_name(e.type)}, {"length", e.data.size()}});
    nlohmann::json j = {
        {"filename", path},
        {"format", "qcow2"},
        {"virtual-size", img.virtual_size()},
        {"actual-size", allocated_on_host(path)},
        {"file-size", img.probe.file_size},
        {"cluster-size", h.cluster_size()},
        {"dirty-flag", (h.incompatible_features & qcow2::kIncompatDirty) != 0},
        {"format-specific",
         {{"type", "qcow2"},
          {"data",
           {{"compat", h.version >= 3 ? "1.1" : "0.10"},
            {"compression-type", h.compression_type == 0 ? "zlib" : "zstd"},
            {"lazy-refcounts", (h.compatible_features & qcow2::kCompatLazyRefcounts) != 0},
            {"refcount-bits", h.refcount_bits()},
            {"corrupt", (h.incompatible_features & qcow2::kIncompatCorrupt) != 0},
            {"extended-l2", h.extended_l2()}}}}},
        {"features",
         {{"incompatible", feature_bits(h, h.incompatible_features, 0)},
          {"compatible", feature_bits(h, h.compatible_features, 1)},
          {"autoclear", feature_bits(h, h.autoclear_features, 2)}}},
        {"extensions", extensions},
        {"zoned-format", img.zoned != nullptr},
    };
    if (img.zoned) j["zoned"] = img.zoned->device_json();
    return j;
}

std::string limit_text(uint32_t v) { return v == 0 ? std::string("no limit") : std::to_string(v); }

void print_zoned(fmt::memory_buffer& out, const core::ZonedDevice& dev) {
    const core::ZonedConfig& c = dev.config();
    auto line = [&](std::string_view key, const std::string& value) {
        fmt::format_to(fmt::appender(out), "    {}: {}\n", key, value);
    };
    fmt::format_to(fmt::appender(out), "Zoned device:\n");
    line("model", "host-managed");
    line("layout", fmt::format("{} ({}-byte extension)", core::layout_name(c.layout),
                               c.layout == core::Layout::seed ? core::kSeedExtensionLength
                                                              : core::kLatestExtensionLength));
    line("zones", fmt::format("{} ({} conventional, {} sequential)", c.nr_zones, c.conventional_zones,
                              c.nr_zones - c.conventional_zones));
    line("zone size", fmt::format("{} ({} bytes)", human_size(c.zone_size), c.zone_size));
    line("zone capacity", fmt::format("{} ({} bytes)", human_size(c.zone_capacity), c.zone_capacity));
    if (dev.nr_zones() > 0) {
        core::ZoneInfo last = dev.zone(dev.nr_zones() - 1);
        if (last.len != c.zone_size)
            line("last zone", fmt::format("{} bytes long, capacity {} bytes (smaller than the others)", last.len,
                                          last.capacity));
    }
    line("max open zones", limit_text(c.max_open_zones));
    line("max active zones", limit_text(c.max_active_zones));
    line("max append bytes", c.layout == core::Layout::seed ? std::to_string(c.max_append_bytes)
                                                            : std::string("not recorded (latest layout)"));
    line("write-pointer table", fmt::format("offset 0x{:x}, {} bytes", c.zonedmeta_offset, uint64_t{c.nr_zones} * 8));
    core::DeviceCounts counts = dev.counts();
    std::string conds;
    for (unsigned code = 0; code < 16; ++code) {
        if (counts.per_cond[code] == 0) continue;
        if (!conds.empty()) conds += ", ";
        conds += fmt::format("{} {}", core::cond_name(static_cast<core::ZoneCond>(code)), counts.per_cond[code]);
    }
    line("zone conditions", conds.empty() ? std::string("none") : conds);
    line("open zones", std::to_string(counts.open));
    line("active zones", std::to_string(counts.active));
}

void print_human(const std::string& path, const OpenedImage& img) {
    const qcow2::Header& h = img.probe.header;
    fmt::memory_buffer out;
    append(out, "image: {}\n", path);
    append(out, "file format: qcow2\n");
    append(out, "virtual size: {} ({} bytes)\n", human_size(img.virtual_size()), img.virtual_size());
    append(out, "disk size: {}\n", human_size(allocated_on_host(path)));
    append(out, "cluster_size: {}\n", h.cluster_size());
    append(out, "Format specific information:\n");
    append(out, "    compat: {}\n", h.version >= 3 ? "1.1" : "0.10");
    append(out, "    compression type: {}\n", h.compression_type == 0 ? "zlib" : "zstd");
    append(out, "    lazy refcounts: {}\n", (h.compatible_features & qcow2::kCompatLazyRefcounts) != 0);
    append(out, "    refcount bits: {}\n", h.refcount_bits());
    append(out, "    corrupt: {}\n", (h.incompatible_features & qcow2::kIncompatCorrupt) != 0);
    append(out, "    extended l2: {}\n", h.extended_l2());
    auto bit_list = [&](uint64_t bits, uint8_t type) {
        std::string s;
        for (const auto& b : feature_bits(h, bits, type)) {
            if (!s.empty()) s += ", ";
            s += fmt::format("{} (bit {})", b["name"].get<std::string>(), b["bit"].get<unsigned>());
        }
        return s.empty() ? std::string("none") : s;
    };
    append(out, "    incompatible features: {}\n", bit_list(h.incompatible_features, 0));
    append(out, "    compatible features: {}\n", bit_list(h.compatible_features, 1));
    append(out, "    autoclear features: {}\n", bit_list(h.autoclear_features, 2));
    for (const auto& e : h.extensions)
        append(out, "    header extension: 0x{:08x} {} ({} bytes)\n", e.type, extension_name(e.type), e.data.size());
    if (img.zoned) print_zoned(out, *img.zoned);
    fmt::print("{}", fmt::to_string(out));
}

}  // namespace

int run_info(int argc, char** argv) {
    static const option kLong[] = {
        {"output", required_argument, nullptr, 'O'}, {"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
    OutputFormat format = OutputFormat::human;
    opterr = 0;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, ":h", kLong, nullptr)) != -1;) {
        switch (c) {
            case 'O': {
                auto f = parse_output_format(optarg, {OutputFormat::human, OutputFormat::json});
                if (!f) return usage_error("info", fmt::format("--output must be human or json, not '{}'", optarg));
                format = *f;
                break;
            }
            case 'h': fmt::print("{}", kInfoUsage); return 0;
            default: return bad_option("info", c, argv);
        }
    }
    if (optind >= argc) return usage_error("info", "missing FILE");
    if (argc - optind > 1) return usage_error("info", fmt::format("unexpected argument '{}'", argv[optind + 1]));
    std::string path = argv[optind];

    std::vector<std::string> warnings;
    auto img = open_image(path, /*writable=*/false, &warnings);
    print_warnings(warnings);
    if (!img.ok()) return fail(path, img.error());
    if (format == OutputFormat::json)
        fmt::print("{}\n", info_json(path, *img).dump(4));
    else
        print_human(path, *img);
    if (auto s = img->close(); !s.ok()) return fail(path, s.error());
    return 0;
}

}  // namespace zqfs::tools
