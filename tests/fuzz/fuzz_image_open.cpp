// libFuzzer target: open arbitrary bytes as an image, the way zqfs and every
// zqfs-img command do (header, extensions, L1/L2, refcounts, the zoned
// extension and write-pointer table), then read, report and check it.
// Anything but a clean error or a consistent image is a finding: a crash,
// a sanitizer report, a hang, or an allocation the file does not justify.
#include <cstdint>
#include <cstring>

#include "core/zoned_device.h"
#include "qcow2/image.h"
#include "tests/unit/recording_file.h"

using namespace zqfs;

namespace {

std::unique_ptr<qcow2::HostFile> mem_file(const uint8_t* data, size_t size) {
    std::vector<std::byte> bytes(size);
    if (size) std::memcpy(bytes.data(), data, size);
    return std::make_unique<testing::RecordingFile>("fuzz.qcow2", std::move(bytes), std::make_shared<testing::HostLog>());
}

void exercise_image(qcow2::Image& img) {
    // Read a few places of the virtual disk (never all of a huge one).
    std::vector<std::byte> buf(64 * 1024);
    const uint64_t size = img.virtual_size();
    for (uint64_t off : {uint64_t{0}, size / 2, size > buf.size() ? size - buf.size() : 0}) {
        uint64_t n = std::min<uint64_t>(buf.size(), size - std::min(off, size));
        (void)img.read(off, std::span(buf.data(), n));
    }
    (void)img.check(qcow2::RepairMode::none, {});
}

void exercise_device(core::ZonedDevice& dev) {
    std::vector<std::byte> buf(4096);
    const uint32_t n = dev.nr_zones();
    for (uint32_t z : {0u, n / 2, n - 1}) {
        core::ZoneInfo info = dev.zone(z);
        (void)dev.zone_json(z).dump();
        (void)dev.read(info.start, std::span(buf.data(), std::min<uint64_t>(buf.size(), info.len)));
    }
    (void)dev.device_json().dump();
    (void)dev.check(qcow2::RepairMode::none);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    {
        qcow2::OpenOptions o;
        o.writable = false;
        auto img = qcow2::Image::open(mem_file(data, size), o);
        if (img.ok()) exercise_image(**img);
    }
    {
        core::DeviceOpenOptions o;
        o.writable = false;
        o.commit_seconds = 0;
        auto dev = core::ZonedDevice::open(mem_file(data, size), o);
        if (dev.ok()) exercise_device(**dev);
    }
    {
        // Read-write open as the mount does (repairs dirty images, writes
        // headers) on a private copy, then a write and a flush.
        core::DeviceOpenOptions o;
        o.commit_seconds = 0;
        auto dev = core::ZonedDevice::open(mem_file(data, size), o);
        if (dev.ok()) {
            core::ZonedDevice& d = **dev;
            std::vector<std::byte> blk(512, std::byte{0x42});
            core::ZoneInfo last = d.zone(d.nr_zones() - 1);
            (void)d.write(last.index, last.wp, blk);
            (void)d.reset_zone(last.index);
            (void)d.flush();
            (void)d.close();
        }
    }
    return 0;
}
