// ZonedDevice::create: a new zoned image, written to a temporary file next to
// the target and renamed over it only when complete, so a failed or killed
// create never leaves a half-written image under the target name.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cstdio>
#include <cstring>

#include "core/write_pointer_table.h"
#include "core/zone_geometry.h"
#include "core/zoned_device.h"
#include "core/zoned_extension.h"

namespace zqfs::core {
namespace {

constexpr uint32_t kDefaultMaxAppend = 64 * 1024;

Result<ZonedConfig> config_from_spec(const CreateSpec& spec) {
    if (spec.virtual_size == 0) return make_error(EINVAL, "size 0: the image size must be positive");
    if (spec.cluster_size < 512 || spec.cluster_size > (2u << 20) || !std::has_single_bit(spec.cluster_size))
        return make_error(EINVAL, "cluster_size {} is not a power of two between 512 and 2M", spec.cluster_size);
    ZonedConfig c;
    c.layout = spec.layout;
    c.zone_size = spec.zone_size;
    c.zone_capacity = spec.zone_capacity.value_or(spec.zone_size);
    c.conventional_zones = spec.conventional_zones;
    c.max_open_zones = spec.max_open_zones;
    c.max_active_zones = spec.max_active_zones;
    if (c.layout == Layout::seed) {
        // The default must itself obey "below capacity" for tiny zones.
        uint64_t def = kDefaultMaxAppend;
        if (c.zone_capacity <= def) def = c.zone_capacity >= 512 ? (c.zone_capacity - 1) / 512 * 512 : 0;
        c.max_append_bytes = spec.max_append_bytes.value_or(static_cast<uint32_t>(def));
    } else {
        c.max_append_bytes = 0;
    }
    if (c.zone_size != 0) {
        uint64_t n = spec.virtual_size / c.zone_size + (spec.virtual_size % c.zone_size != 0);
        if (n > UINT32_MAX)
            return make_error(EINVAL, "size {} / zone_size {} gives {} zones, more than {}", spec.virtual_size,
                              c.zone_size, n, UINT32_MAX);
        c.nr_zones = static_cast<uint32_t>(n);
    }
    ZQ_TRY(validate_zoned_config(c, spec.virtual_size, spec.cluster_size));
    return c;
}

Status build_image(std::unique_ptr<qcow2::HostFile> file, const CreateSpec& spec, ZonedConfig cfg) {
    qcow2::CreateOptions co;
    co.virtual_size = spec.virtual_size;
    co.cluster_size = spec.cluster_size;
    co.refcount_bits = spec.refcount_bits;
    co.compression_zlib = true;
    co.extra_extensions.push_back({kZonedExtensionType, encode_zoned_extension(cfg)});
    co.extra_incompatible_bits = kIncompatZoned;
    co.extra_feature_names.push_back({0, 5, "zoned format"});
    ZQ_ASSIGN(auto image, qcow2::Image::create(std::move(file), co));

    uint64_t table_bytes = zonedmeta_cluster_bytes(cfg, spec.cluster_size);
    ZQ_ASSIGN(cfg.zonedmeta_offset, image->allocate_clusters(table_bytes / spec.cluster_size));
    ZoneGeometry geo(spec.virtual_size, cfg);
    WritePointerTable table(cfg.layout, geo, cfg.zonedmeta_offset);
    ZQ_TRY(table.write_all(image->file(), table_bytes));
    ZQ_TRY(image->update_extension(kZonedExtensionType, encode_zoned_extension(cfg)));
    ZQ_TRY(image->flush());
    ZQ_TRY(image->close());
    return {};
}

void sync_parent_dir(const std::string& path) {
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    (void)::fsync(fd);
    ::close(fd);
}

}  // namespace

// The spec's geometry, validated, with over-large limits clamped (and a
// warning for each, prefixed with the image name).
static Result<ZonedConfig> checked_config(const std::string& name, const CreateSpec& spec, std::vector<std::string>* warnings) {
    const std::string ctx = name + ": ";
    auto cfg = config_from_spec(spec);
    if (!cfg) return with_context(cfg.error(), ctx);
    std::vector<std::string> clamp_warnings;
    clamp_zone_limits(*cfg, &clamp_warnings);
    if (warnings)
        for (auto& w : clamp_warnings) warnings->push_back(ctx + w);
    return cfg;
}

Status ZonedDevice::create_on(std::unique_ptr<qcow2::HostFile> file, const CreateSpec& spec,
                              std::vector<std::string>* warnings) {
    ZQ_ASSIGN(ZonedConfig cfg, checked_config(file->name(), spec, warnings));
    return build_image(std::move(file), spec, cfg);
}

Status ZonedDevice::create(const std::string& path, const CreateSpec& spec, std::vector<std::string>* warnings) {
    const std::string ctx = path + ": ";
    ZQ_ASSIGN(ZonedConfig cfg, checked_config(path, spec, warnings));

    // Like qemu-img we overwrite an existing file, but never one in use:
    // holding its lock until the rename also keeps others out meanwhile.
    std::unique_ptr<qcow2::HostFile> existing;
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
        // A file we may not write is not ours to replace either (as qemu-img).
        auto r = qcow2::open_host_file(path, qcow2::OpenAccess::read_write);
        if (!r) return r.error();
        existing = std::move(*r);
    }

    const std::string tmp = fmt::format("{}.tmp-{}", path, ::getpid());
    ::unlink(tmp.c_str());  // a stale one from a killed create of ours
    auto file = qcow2::create_host_file(tmp);
    if (!file) return file.error();
    if (auto s = build_image(std::move(*file), spec, cfg); !s) {
        ::unlink(tmp.c_str());
        return s;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int e = errno;
        ::unlink(tmp.c_str());
        return make_error(e, "{}cannot rename {} over it: {}", ctx, tmp, std::strerror(e));
    }
    sync_parent_dir(path);
    return {};
}

}  // namespace zqfs::core
