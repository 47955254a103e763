// Host failures below the device: a full disk and failing I/O. Writes fail
// with the host's errno, the image stays consistent, acknowledged data
// survives, and work resumes once the host recovers.
#include <doctest/doctest.h>

#include <fstream>

#include "core/zoned_device.h"
#include "tests/unit/qcow2_test_util.h"
#include "tests/unit/recording_file.h"

using namespace zqfs;
using namespace zqfs::core;
using namespace zqfs::testing;

namespace {

struct FaultyDevice {
    RecordingFile* file = nullptr;
    std::shared_ptr<HostLog> log = std::make_shared<HostLog>();
    std::unique_ptr<ZonedDevice> dev;
};

FaultyDevice open_faulty(const TempDir& d, std::vector<std::byte> bytes = {}) {
    if (bytes.empty()) {
        CreateSpec spec;
        spec.virtual_size = 64 << 20;
        spec.zone_size = 4 << 20;
        spec.conventional_zones = 1;
        REQUIRE(ZonedDevice::create(d.file("f.qcow2"), spec, nullptr).ok());
        bytes = read_whole_file(d.file("f.qcow2"));
    }
    FaultyDevice f;
    auto file = std::make_unique<RecordingFile>("f.qcow2", std::move(bytes), f.log);
    f.file = file.get();
    DeviceOpenOptions o;
    o.commit_seconds = 0;
    auto dev = ZonedDevice::open(std::move(file), o);
    REQUIRE(dev.ok());
    f.dev = std::move(dev).value();
    return f;
}

std::vector<std::byte> current_bytes(FaultyDevice& f) {
    uint64_t size = f.file->size().value();
    std::vector<std::byte> b(size);
    REQUIRE(f.file->read_at(0, b).ok());
    return b;
}

}  // namespace

TEST_CASE("faults: a full host disk fails writes with ENOSPC, keeps the image consistent, and writing resumes") {
    TempDir d;
    auto f = open_faulty(d);
    std::vector<std::byte> mib(1 << 20, std::byte{0x61});
    REQUIRE(f.dev->write(1, f.dev->zone(1).wp, mib).ok());
    REQUIRE(f.dev->flush().ok());

    // The disk fills up: nothing may grow the host file any more.
    const uint64_t limit = f.file->size().value();
    f.file->fault = [limit](const HostOp& op) {
        if (op.kind == HostOp::write && op.offset + op.data.size() > limit) return ENOSPC;
        if (op.kind == HostOp::truncate && op.length > limit) return ENOSPC;
        return 0;
    };
    Status s = f.dev->write(1, f.dev->zone(1).wp, mib);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == ENOSPC);
    CHECK(f.dev->zone(1).written() == (1u << 20));  // the WP did not move
    Status s2 = f.dev->write(2, f.dev->zone(2).wp, mib);
    CHECK_FALSE(s2.ok());
    (void)f.dev->flush();

    // What is on the host now opens clean, with the acknowledged data.
    {
        auto g = open_faulty(d, current_bytes(f));
        auto r = g.dev->check(qcow2::RepairMode::none);
        REQUIRE(r.ok());
        CHECK(r->corruptions == 0);
        CHECK(g.dev->zone(1).written() == (1u << 20));
        std::vector<std::byte> back(1 << 20);
        REQUIRE(g.dev->read(g.dev->zone(1).start, back).ok());
        CHECK(back == mib);
        REQUIRE(g.dev->close().ok());
    }

    // Space is freed: the same device writes again.
    f.file->fault = nullptr;
    REQUIRE(f.dev->write(1, f.dev->zone(1).wp, mib).ok());
    REQUIRE(f.dev->flush().ok());
    CHECK(f.dev->zone(1).written() == (2u << 20));
    auto r = f.dev->check(qcow2::RepairMode::none);
    REQUIRE(r.ok());
    CHECK(r->corruptions == 0);
    REQUIRE(f.dev->close().ok());
}

TEST_CASE("faults: a failing host sync reports EIO and loses nothing already durable") {
    TempDir d;
    auto f = open_faulty(d);
    std::vector<std::byte> a(256 * 1024, std::byte{0x41}), b(256 * 1024, std::byte{0x42});
    REQUIRE(f.dev->write(3, f.dev->zone(3).wp, a).ok());
    REQUIRE(f.dev->flush().ok());
    REQUIRE(f.dev->write(3, f.dev->zone(3).wp, b).ok());
    f.file->fault = [](const HostOp& op) { return op.kind == HostOp::sync ? EIO : 0; };
    Status s = f.dev->flush();
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == EIO);
    // The host recovers: the retried flush makes the second write durable too.
    f.file->fault = nullptr;
    REQUIRE(f.dev->flush().ok());
    auto g = open_faulty(d, current_bytes(f));
    CHECK(g.dev->zone(3).written() == a.size() + b.size());
    std::vector<std::byte> back(a.size() + b.size());
    REQUIRE(g.dev->read(g.dev->zone(3).start, back).ok());
    CHECK(std::equal(a.begin(), a.end(), back.begin()));
    CHECK(std::equal(b.begin(), b.end(), back.begin() + static_cast<ptrdiff_t>(a.size())));
    auto r = g.dev->check(qcow2::RepairMode::none);
    REQUIRE(r.ok());
    CHECK(r->corruptions == 0);
}
