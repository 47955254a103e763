#include "tools/image_source.h"

#include <algorithm>

#include "qcow2/host_file.h"

namespace zqfs::tools {
namespace {

constexpr uint32_t kMinClusterBits = 9;
constexpr uint32_t kMaxClusterBits = 21;

uint32_t load_be32(const std::byte* p) {
    return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

Result<ProbedHeader> probe_header(const std::string& path) {
    ZQ_ASSIGN(auto file, qcow2::open_host_file(path, qcow2::OpenAccess::read_only));
    ZQ_ASSIGN(uint64_t file_size, file->size());
    std::byte fixed[24] = {};
    if (file_size < sizeof fixed) return make_error(EINVAL, "{}: not a qcow2 image (file is {} bytes)", path, file_size);
    ZQ_TRY(file->read_at(0, fixed));
    if (load_be32(fixed) != qcow2::kMagic) return make_error(EINVAL, "{}: not a qcow2 image (bad magic)", path);
    // The header lives in the first cluster; read that much (or the whole
    // file when shorter) and let the engine's parser judge every field.
    uint32_t cluster_bits = std::clamp(load_be32(fixed + 20), kMinClusterBits, kMaxClusterBits);
    std::vector<std::byte> first(std::min<uint64_t>(file_size, uint64_t{1} << cluster_bits));
    ZQ_TRY(file->read_at(0, first));
    ZQ_ASSIGN(auto header, qcow2::parse_header(first, file_size));
    ProbedHeader probe;
    probe.zoned = header.incompatible_features & core::kIncompatZoned;
    probe.header = std::move(header);
    probe.file_size = file_size;
    return probe;
}

uint64_t OpenedImage::virtual_size() const { return zoned ? zoned->virtual_size() : plain->virtual_size(); }

Status OpenedImage::read(uint64_t offset, std::span<std::byte> buf) {
    return zoned ? zoned->read(offset, buf) : plain->read(offset, buf);
}

Result<std::vector<qcow2::Extent>> OpenedImage::allocation(uint64_t offset, uint64_t length) {
    return zoned ? zoned->allocation(offset, length) : plain->allocation(offset, length);
}

Status OpenedImage::close() { return zoned ? zoned->close() : plain->close(); }

Result<OpenedImage> open_image(const std::string& path, bool writable, std::vector<std::string>* warnings,
                               bool for_check) {
    OpenedImage img;
    ZQ_ASSIGN(img.probe, probe_header(path));
    if (img.probe.zoned) {
        core::DeviceOpenOptions opts;
        opts.writable = writable;
        opts.commit_seconds = 0;  // a command flushes once, at close
        opts.warnings = warnings;
        opts.tolerate_bad_write_pointers = for_check;
        ZQ_ASSIGN(img.zoned, core::ZonedDevice::open(path, opts));
    } else {
        ZQ_ASSIGN(auto file, qcow2::open_host_file(
                                 path, writable ? qcow2::OpenAccess::read_write : qcow2::OpenAccess::read_only));
        qcow2::OpenOptions opts;
        opts.writable = writable;
        ZQ_ASSIGN(img.plain, qcow2::Image::open(std::move(file), opts));
    }
    return img;
}

}  // namespace zqfs::tools
