// The durability order of SPEC section 5 as the host file sees it: every
// write and sync is recorded through a wrapping HostFile.
#include <doctest/doctest.h>

#include <stdlib.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "core/zoned_device.h"
#include "qcow2/endian.h"
#include "tests/unit/forwarding_file.h"

using namespace zqfs;
using namespace zqfs::core;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

struct Op {
    enum Kind { write, sync, punch } kind;
    uint64_t offset = 0;
    uint64_t length = 0;
};

class RecordingFile final : public testing::ForwardingFile {
public:
    RecordingFile(std::unique_ptr<qcow2::HostFile> inner, std::vector<Op>* log, std::mutex* mu)
        : ForwardingFile(std::move(inner)), log_(log), mu_(mu) {}
    Status write_at(uint64_t o, std::span<const std::byte> b) override {
        record({Op::write, o, b.size()});
        return ForwardingFile::write_at(o, b);
    }
    Status sync() override {
        record({Op::sync});
        return ForwardingFile::sync();
    }
    Status punch_hole(uint64_t o, uint64_t l) override {
        record({Op::punch, o, l});
        return ForwardingFile::punch_hole(o, l);
    }

private:
    void record(Op op) {
        std::lock_guard g(*mu_);
        log_->push_back(op);
    }
    std::vector<Op>* log_;
    std::mutex* mu_;
};

struct Recorded {
    std::string dir;
    std::string img;
    std::vector<Op> log;
    std::mutex mu;
    std::unique_ptr<ZonedDevice> dev;
    uint64_t meta = 0, meta_len = 0;

    explicit Recorded(unsigned commit_seconds = 0) {
        char tmpl[] = "/tmp/zqfs-core-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        img = dir + "/a.qcow2";
        CreateSpec s;
        s.virtual_size = 768 * kMiB;
        s.zone_size = 64 * kMiB;
        REQUIRE(ZonedDevice::create(img, s, nullptr).ok());
        auto f = qcow2::open_host_file(img, qcow2::OpenAccess::read_write);
        REQUIRE(f.ok());
        DeviceOpenOptions o;
        o.commit_seconds = commit_seconds;
        auto d = ZonedDevice::open(std::unique_ptr<qcow2::HostFile>(new RecordingFile(std::move(*f), &log, &mu)), o);
        REQUIRE(d.ok());
        dev = std::move(*d);
        meta = dev->config().zonedmeta_offset;
        meta_len = dev->cluster_size();
    }
    ~Recorded() {
        dev.reset();
        std::filesystem::remove_all(dir);
    }
    size_t mark() {
        std::lock_guard g(mu);
        return log.size();
    }
    std::vector<Op> since(size_t m) {
        std::lock_guard g(mu);
        return {log.begin() + static_cast<long>(m), log.end()};
    }
    bool is_wp(const Op& op) const { return op.kind == Op::write && op.offset >= meta && op.offset < meta + meta_len; }
};

std::vector<std::byte> data(size_t n) { return std::vector<std::byte>(n, std::byte{0x5a}); }

}  // namespace

TEST_CASE("core: flush makes data and metadata durable before the write pointers") {
    Recorded r;
    REQUIRE(r.dev->append(1, data(64 * 1024)).ok());
    size_t m = r.mark();
    REQUIRE(r.dev->flush().ok());
    auto ops = r.since(m);
    auto first_wp = std::find_if(ops.begin(), ops.end(), [&](const Op& o) { return r.is_wp(o); });
    REQUIRE(first_wp != ops.end());
    // A sync separates everything else from the WP write, and one follows it.
    auto last_sync_before = std::find_if(std::make_reverse_iterator(first_wp), ops.rend(),
                                         [](const Op& o) { return o.kind == Op::sync; });
    REQUIRE(last_sync_before != ops.rend());
    for (auto it = first_wp; it != ops.end(); ++it) CHECK((it->kind == Op::sync || r.is_wp(*it)));
    CHECK(ops.back().kind == Op::sync);
}

TEST_CASE("core: reset persists the write pointer before the zone's clusters are freed") {
    Recorded r;
    REQUIRE(r.dev->append(2, data(64 * 1024)).ok());
    REQUIRE(r.dev->append(2, data(64 * 1024)).ok());
    REQUIRE(r.dev->flush().ok());
    size_t m = r.mark();
    REQUIRE(r.dev->reset_zone(2).ok());
    // Punching runs in the background; stats() waits until space is reclaimed.
    REQUIRE(r.dev->stats().ok());
    auto ops = r.since(m);
    REQUIRE(ops.size() >= 3);
    CHECK(r.is_wp(ops[0]));
    CHECK(ops[1].kind == Op::sync);
    bool punched = false;
    for (auto& o : ops) punched |= o.kind == Op::punch;
    CHECK(punched);
    // The new WP (zone start) is what the table holds.
    std::byte raw[8];
    REQUIRE(r.dev->flush().ok());
    auto f = qcow2::open_host_file(r.img, qcow2::OpenAccess::read_only);
    REQUIRE(f.ok());
    REQUIRE((*f)->read_at(r.meta + 2 * 8, raw).ok());
    CHECK(load_le<uint64_t>(raw) == 2 * 64 * kMiB);
}

TEST_CASE("core: finish makes the zone's data durable before the write pointer covers it") {
    Recorded r;
    REQUIRE(r.dev->append(3, data(64 * 1024)).ok());
    size_t m = r.mark();
    REQUIRE(r.dev->finish_zone(3).ok());
    auto ops = r.since(m);
    auto first_wp = std::find_if(ops.begin(), ops.end(), [&](const Op& o) { return r.is_wp(o); });
    REQUIRE(first_wp != ops.end());
    CHECK(std::any_of(ops.begin(), first_wp, [](const Op& o) { return o.kind == Op::sync; }));
    CHECK(ops.back().kind == Op::sync);
}

TEST_CASE("core: the commit thread persists write pointers within commit seconds") {
    Recorded r(1);
    REQUIRE(r.dev->append(4, data(4096)).ok());
    auto f = qcow2::open_host_file(r.img, qcow2::OpenAccess::read_only);
    REQUIRE(f.ok());
    std::byte raw[8];
    uint64_t wp = 0;
    for (int i = 0; i < 40 && wp != 4 * 64 * kMiB + 4096; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        REQUIRE((*f)->read_at(r.meta + 4 * 8, raw).ok());
        wp = load_le<uint64_t>(raw);
    }
    CHECK(wp == 4 * 64 * kMiB + 4096);
}
