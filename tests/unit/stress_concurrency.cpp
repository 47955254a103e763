// Concurrency stress (run under ThreadSanitizer by ./test.sh): many threads
// appending, reading, resetting and finishing across zones, then every
// zone's content verified.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "core/zoned_device.h"
#include "tests/unit/qcow2_test_util.h"

using namespace zqfs;
using namespace zqfs::core;
using zqfs::testing::TempDir;

namespace {

constexpr uint64_t kZone = 1 << 20;
constexpr uint32_t kZones = 16;

std::byte fill(uint32_t seed, uint64_t off) { return static_cast<std::byte>(1 + (seed * 131 + off * 7 + (off >> 9)) % 251); }

std::unique_ptr<ZonedDevice> make_device(const TempDir& d, uint32_t max_open) {
    CreateSpec spec;
    spec.virtual_size = kZone * kZones;
    spec.cluster_size = 4096;
    spec.zone_size = kZone;
    spec.max_open_zones = max_open;
    spec.max_active_zones = max_open;
    spec.max_append_bytes = 64 * 1024;
    REQUIRE(ZonedDevice::create(d.file("s.qcow2"), spec, nullptr).ok());
    DeviceOpenOptions o;
    o.commit_seconds = 1;  // the commit thread runs alongside
    auto dev = ZonedDevice::open(d.file("s.qcow2"), o);
    REQUIRE(dev.ok());
    return std::move(dev).value();
}

}  // namespace

TEST_CASE("stress: concurrent zone appends to shared zones land whole and never overlap") {
    TempDir d;
    auto dev = make_device(d, 0);
    struct Record {
        uint64_t offset, len;
        uint32_t seed;
    };
    std::mutex rec_mu;
    std::vector<Record> records;
    std::atomic<uint32_t> next_seed{1};
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t) {
        ts.emplace_back([&, t] {
            std::mt19937 rng(t);
            for (int i = 0; i < 150; ++i) {
                uint32_t z = rng() % 4;  // eight threads share four zones
                uint64_t len = 512 * (1 + rng() % 16);
                uint32_t seed = next_seed++;
                std::vector<std::byte> data(len);
                for (uint64_t j = 0; j < len; ++j) data[j] = fill(seed, j);
                auto off = dev->append(z, data);
                if (!off.ok()) {
                    CHECK_MESSAGE(off.error().code == EFBIG, off.error().message);  // zone full
                    continue;
                }
                std::lock_guard lk(rec_mu);
                records.push_back({*off, len, seed});
            }
        });
    }
    for (auto& t : ts) t.join();
    REQUIRE(dev->flush().ok());
    std::sort(records.begin(), records.end(), [](auto& a, auto& b) { return a.offset < b.offset; });
    std::vector<uint64_t> covered(4, 0);
    for (const auto& r : records) {
        uint32_t z = static_cast<uint32_t>(r.offset / kZone);
        REQUIRE(z < 4);
        // Appends within a zone are back to back: no gap, no overlap.
        CHECK(r.offset == z * kZone + covered[z]);
        covered[z] += r.len;
        std::vector<std::byte> back(r.len);
        REQUIRE(dev->read(r.offset, back).ok());
        bool same = true;
        for (uint64_t j = 0; j < r.len && same; ++j) same = back[j] == fill(r.seed, j);
        CHECK_MESSAGE(same, "append at " << r.offset << " does not hold its data");
    }
    for (uint32_t z = 0; z < 4; ++z) CHECK(dev->zone(z).written() == covered[z]);
    REQUIRE(dev->close().ok());
}

TEST_CASE("stress: appends, reads, resets and finishes across zones keep every zone's content") {
    TempDir d;
    auto dev = make_device(d, 8);
    struct Model {
        std::mutex mu;  // serialises the test's view of one zone with its operations
        uint32_t seed = 0;
        uint64_t written = 0;
        bool finished = false;
    };
    std::vector<Model> models(kZones);
    std::atomic<uint32_t> next_seed{1000};
    for (auto& m : models) m.seed = next_seed++;
    std::atomic<bool> stop{false};
    std::atomic<int> failures{0};
    auto mutator = [&](int t) {
        std::mt19937 rng(100 + t);
        for (int i = 0; i < 400; ++i) {
            uint32_t z = rng() % kZones;
            Model& m = models[z];
            std::lock_guard lk(m.mu);
            int op = static_cast<int>(rng() % 20);
            if (op < 14) {
                if (m.finished || m.written == kZone) continue;
                uint64_t len = std::min<uint64_t>(kZone - m.written, 4096 * (1 + rng() % 8));
                std::vector<std::byte> data(len);
                for (uint64_t j = 0; j < len; ++j) data[j] = fill(m.seed, m.written + j);
                Status s = dev->write(z, z * kZone + m.written, data);
                if (!s.ok()) {
                    if (s.error().code != ETOOMANYREFS && s.error().code != EOVERFLOW) ++failures;
                    continue;
                }
                m.written += len;
            } else if (op < 17) {
                if (!dev->reset_zone(z).ok()) ++failures;
                m.seed = next_seed++;
                m.written = 0;
                m.finished = false;
            } else if (op < 18) {
                if (dev->finish_zone(z).ok()) m.finished = true;
            } else {
                (void)dev->flush();
            }
        }
    };
    auto reader = [&](int t) {
        std::mt19937 rng(200 + t);
        std::vector<std::byte> buf;
        while (!stop) {
            uint32_t z = rng() % kZones;
            uint32_t seed;
            uint64_t written;
            {
                std::lock_guard lk(models[z].mu);
                seed = models[z].seed;
                written = models[z].written;
            }
            if (written == 0) continue;
            buf.resize(written);
            if (!dev->read(z * kZone, buf).ok()) {
                ++failures;
                continue;
            }
            std::lock_guard lk(models[z].mu);
            if (models[z].seed != seed) continue;  // reset meanwhile: nothing to compare
            for (uint64_t j = 0; j < written; ++j)
                if (buf[j] != fill(seed, j)) {
                    ++failures;
                    break;
                }
        }
    };
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) ts.emplace_back(mutator, t);
    for (int t = 0; t < 2; ++t) ts.emplace_back(reader, t);
    for (int t = 0; t < 4; ++t) ts[t].join();
    stop = true;
    for (size_t t = 4; t < ts.size(); ++t) ts[t].join();
    CHECK(failures == 0);

    // Final verification, also after a reopen.
    auto verify = [&](ZonedDevice& dv) {
        for (uint32_t z = 0; z < kZones; ++z) {
            const Model& m = models[z];
            ZoneInfo info = dv.zone(z);
            CHECK(info.written() == (m.finished ? kZone : m.written));
            std::vector<std::byte> buf(kZone);
            REQUIRE(dv.read(z * kZone, buf).ok());
            bool ok = true;
            for (uint64_t j = 0; j < kZone && ok; ++j) ok = buf[j] == (j < m.written ? fill(m.seed, j) : std::byte{0});
            CHECK_MESSAGE(ok, "zone " << z);
        }
    };
    verify(*dev);
    REQUIRE(dev->close().ok());
    DeviceOpenOptions o;
    auto again = ZonedDevice::open(d.file("s.qcow2"), o);
    REQUIRE(again.ok());
    verify(**again);
    auto report = (*again)->check(qcow2::RepairMode::none);
    REQUIRE(report.ok());
    CHECK(report->corruptions == 0);
    CHECK(report->leaks == 0);
}
