// Host I/O errors travel up unchanged (ENOSPC stays ENOSPC), leave the write
// pointer where it was, and writing resumes once the host recovers.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <atomic>
#include <filesystem>

#include "core/zoned_device.h"
#include "tests/unit/forwarding_file.h"

using namespace zqfs;
using namespace zqfs::core;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

// Fails writes (and optionally syncs) with a chosen errno while armed.
class FaultFile final : public testing::ForwardingFile {
public:
    FaultFile(std::unique_ptr<qcow2::HostFile> inner, std::atomic<int>* write_errno, std::atomic<int>* sync_errno)
        : ForwardingFile(std::move(inner)), write_errno_(write_errno), sync_errno_(sync_errno) {}
    Status write_at(uint64_t o, std::span<const std::byte> b) override {
        if (int e = write_errno_->load()) return make_error(e, "{}: injected write failure at {}", name(), o);
        return ForwardingFile::write_at(o, b);
    }
    Status sync() override {
        if (int e = sync_errno_->load()) return make_error(e, "{}: injected sync failure", name());
        return ForwardingFile::sync();
    }

private:
    std::atomic<int>* write_errno_;
    std::atomic<int>* sync_errno_;
};

struct Faulty {
    std::string dir, img;
    std::atomic<int> write_errno{0}, sync_errno{0};
    std::unique_ptr<ZonedDevice> dev;
    Faulty() {
        char tmpl[] = "/tmp/zqfs-core-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        img = dir + "/a.qcow2";
        CreateSpec s;
        s.virtual_size = 256 * kMiB;
        s.zone_size = 64 * kMiB;
        REQUIRE(ZonedDevice::create(img, s, nullptr).ok());
        reopen();
    }
    void reopen() {
        dev.reset();
        auto f = qcow2::open_host_file(img, qcow2::OpenAccess::read_write);
        REQUIRE(f.ok());
        DeviceOpenOptions o;
        o.commit_seconds = 0;
        auto d = ZonedDevice::open(std::unique_ptr<qcow2::HostFile>(new FaultFile(std::move(*f), &write_errno, &sync_errno)), o);
        REQUIRE(d.ok());
        dev = std::move(*d);
    }
    ~Faulty() {
        write_errno = 0;
        sync_errno = 0;
        dev.reset();
        std::filesystem::remove_all(dir);
    }
};

std::vector<std::byte> data(size_t n, uint8_t v) { return std::vector<std::byte>(n, std::byte{v}); }

}  // namespace

TEST_CASE("core: a host write failing with ENOSPC fails the append with ENOSPC and keeps the WP") {
    Faulty f;
    REQUIRE(f.dev->append(1, data(65536, 1)).ok());
    f.write_errno = ENOSPC;
    auto a = f.dev->append(1, data(65536, 2));
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().code == ENOSPC);
    CHECK(f.dev->zone(1).wp == 64 * kMiB + 65536);
    // A first write that fails leaves the zone empty, not open.
    CHECK(f.dev->append(2, data(4096, 3)).error().code == ENOSPC);
    CHECK(f.dev->zone(2).cond == ZoneCond::empty);
    CHECK(f.dev->counts().open == 1);
}

TEST_CASE("core: writing resumes at the same WP once host space is back") {
    Faulty f;
    REQUIRE(f.dev->append(1, data(65536, 1)).ok());
    f.write_errno = ENOSPC;
    CHECK_FALSE(f.dev->append(1, data(65536, 2)).ok());
    f.write_errno = 0;
    auto a = f.dev->append(1, data(65536, 3));
    REQUIRE(a.ok());
    CHECK(*a == 64 * kMiB + 65536);
    REQUIRE(f.dev->flush().ok());
    f.reopen();
    CHECK(f.dev->zone(1).wp == 64 * kMiB + 2 * 65536);
    std::vector<std::byte> buf(65536);
    REQUIRE(f.dev->read(64 * kMiB + 65536, buf).ok());
    CHECK(buf == data(65536, 3));
    auto c = f.dev->check(qcow2::RepairMode::none);
    REQUIRE(c.ok());
    CHECK(c->corruptions == 0);
}

TEST_CASE("core: a failed flush is retried by the next flush and loses no write pointer") {
    Faulty f;
    REQUIRE(f.dev->append(3, data(8192, 4)).ok());
    f.sync_errno = EIO;
    auto s = f.dev->flush();
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == EIO);
    f.sync_errno = 0;
    REQUIRE(f.dev->flush().ok());
    f.reopen();
    CHECK(f.dev->zone(3).wp == 3 * 64 * kMiB + 8192);
    CHECK(f.dev->zone(3).cond == ZoneCond::closed);
}

TEST_CASE("core: a reset whose WP cannot be persisted fails and a later flush persists it") {
    Faulty f;
    REQUIRE(f.dev->append(1, data(65536, 1)).ok());
    REQUIRE(f.dev->flush().ok());
    f.write_errno = EIO;
    CHECK(f.dev->reset_zone(1).error().code == EIO);
    f.write_errno = 0;
    REQUIRE(f.dev->flush().ok());
    f.reopen();
    CHECK(f.dev->zone(1).cond == ZoneCond::empty);
}
