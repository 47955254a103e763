// Crash consistency, proven by simulation (SPEC section 5).
//
// A workload of appends of many sizes across many zones, resets, finishes,
// explicit opens and closes, conventional writes and refcount-table growth
// runs over a RecordingFile. Then, for hundreds of crash points, we rebuild
// what a power loss could leave on disk (every synced write, plus a random
// subset of the unsynced ones, some torn) and require of each image:
// - it opens with no manual step, our check and qemu-img's (bit 5 masked)
//   find no corruption;
// - every byte acknowledged by a flush is intact, unless the zone was reset
//   after that flush;
// - no write pointer covers bytes that were not written (they must be the
//   data of one generation of the zone, zeros past what it wrote) nor old
//   data of a reset zone;
// - the device keeps working: an append and a flush succeed, check is clean.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>

#include "core/zoned_device.h"
#include "tests/unit/qcow2_test_util.h"
#include "tests/unit/recording_file.h"

using namespace zqfs;
using namespace zqfs::core;
using namespace zqfs::testing;

namespace {

constexpr uint64_t kZoneSize = 256 * 1024;
constexpr uint32_t kZones = 40;
constexpr uint32_t kConventional = 2;
constexpr uint64_t kBlock = 4096;  // conventional write unit

std::byte gen_byte(uint32_t seed, uint64_t off) {
    uint64_t h = (seed * 0x9E3779B97F4A7C15ull) ^ (off * 0xBF58476D1CE4E5B9ull);
    h ^= h >> 29;
    return static_cast<std::byte>(1 + h % 255);  // never zero: zeros mean "unwritten"
}

struct Generation {
    uint32_t seed;
    uint64_t written = 0;  // bytes appended in this generation
    bool finished = false;
};

struct ZoneModel {
    std::vector<Generation> gens;
};

struct Snapshot {
    size_t op_count;                  // log length when the flush returned
    std::vector<size_t> gen;          // generation index per zone
    std::vector<uint64_t> written;    // bytes written in that generation
    std::map<uint64_t, uint32_t> cnv;  // conventional block -> seed (absent: zeros)
};

struct Workload {
    std::vector<std::byte> base;
    std::shared_ptr<HostLog> log = std::make_shared<HostLog>();
    std::vector<ZoneModel> zones{kZones};
    std::vector<Snapshot> snaps;
    std::map<uint64_t, std::vector<uint32_t>> cnv_history;  // block -> seeds in write order
    std::map<uint64_t, uint32_t> cnv_now;
};

void dump(const std::string& path, const std::vector<std::byte>& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::unique_ptr<ZonedDevice> open_mem(std::vector<std::byte> bytes, std::shared_ptr<HostLog> log) {
    auto file = std::make_unique<RecordingFile>("crash.qcow2", std::move(bytes), std::move(log));
    DeviceOpenOptions o;
    o.commit_seconds = 0;
    auto dev = ZonedDevice::open(std::move(file), o);
    REQUIRE_MESSAGE(dev.ok(), (dev.ok() ? "" : dev.error().message));
    return std::move(dev).value();
}

void run_workload(Workload& w, const TempDir& dir) {
    // 512-byte clusters with 64-bit refcounts: 64 clusters per refcount block,
    // so the workload needs many blocks and grows the refcount table.
    CreateSpec spec;
    spec.virtual_size = kZoneSize * kZones;
    spec.cluster_size = 512;
    spec.refcount_bits = 64;
    spec.zone_size = kZoneSize;
    spec.conventional_zones = kConventional;
    spec.max_open_zones = 4;
    spec.max_active_zones = 6;
    const std::string path = dir.file("base.qcow2");
    REQUIRE(ZonedDevice::create(path, spec, nullptr).ok());
    w.base = read_whole_file(path);
    auto dev = open_mem(w.base, w.log);

    std::mt19937 rng(20261124);
    uint32_t next_seed = 1;
    for (auto& z : w.zones) z.gens.push_back({next_seed++});
    auto snapshot = [&] {
        Snapshot s;
        s.op_count = w.log->ops.size();
        for (auto& z : w.zones) {
            s.gen.push_back(z.gens.size() - 1);
            s.written.push_back(z.gens.back().written);
        }
        s.cnv = w.cnv_now;
        w.snaps.push_back(std::move(s));
    };
    snapshot();
    // Fill twelve zones first: 3 MiB of data outgrows the 2 MiB a one-cluster
    // refcount table covers here, so the table must grow (and crash points
    // land in the middle of that growth).
    for (uint32_t zi = kZones - 12; zi < kZones; ++zi) {
        Generation& g = w.zones[zi].gens.back();
        while (g.written < kZoneSize) {
            std::vector<std::byte> data(32 * 1024);
            for (uint64_t i = 0; i < data.size(); ++i) data[i] = gen_byte(g.seed, g.written + i);
            REQUIRE(dev->write(zi, dev->zone(zi).wp, data).ok());
            g.written += data.size();
        }
        REQUIRE(dev->flush().ok());
        snapshot();
    }
    for (int step = 0; step < 900; ++step) {
        // Mostly work on zones that are already active, as a real workload
        // under open/active limits does; sometimes touch any zone.
        std::vector<uint32_t> active;
        for (uint32_t z = kConventional; z < kZones; ++z) {
            ZoneCond c = dev->zone(z).cond;
            if (c == ZoneCond::implicit_open || c == ZoneCond::explicit_open || c == ZoneCond::closed) active.push_back(z);
        }
        const uint32_t zi = !active.empty() && rng() % 4 != 0 ? active[rng() % active.size()]
                                                               : kConventional + rng() % (kZones - kConventional);
        const ZoneInfo info = dev->zone(zi);
        Generation& g = w.zones[zi].gens.back();
        const int op = static_cast<int>(rng() % 100);
        if (op < 60) {
            // Append of a random size, sometimes not a multiple of 512.
            uint64_t room = info.capacity - info.written();
            if (room == 0 || g.finished) continue;
            uint64_t len = std::min<uint64_t>(room, (rng() % 2 ? 512 * (1 + rng() % 24) : 1 + rng() % 9000));
            std::vector<std::byte> data(len);
            for (uint64_t i = 0; i < len; ++i) data[i] = gen_byte(g.seed, g.written + i);
            Status s = dev->write(zi, info.wp, data);
            if (!s.ok()) {
                // Resource limits may refuse an implicit open; that is legal.
                REQUIRE_MESSAGE((s.error().code == ETOOMANYREFS || s.error().code == EOVERFLOW), s.error().message);
                continue;
            }
            g.written += len;
        } else if (op < 72) {
            REQUIRE(dev->flush().ok());
            snapshot();
        } else if (op < 78) {
            REQUIRE(dev->reset_zone(zi).ok());
            w.zones[zi].gens.push_back({next_seed++});
        } else if (op < 82) {
            if (dev->finish_zone(zi).ok()) g.finished = true;
        } else if (op < 86) {
            (void)dev->open_zone(zi);  // may hit limits
        } else if (op < 90) {
            (void)dev->close_zone(zi);
        } else {
            // Conventional: whole 4 KiB blocks at random places.
            uint32_t cz = rng() % kConventional;
            ZoneInfo ci = dev->zone(cz);
            uint64_t block = ci.start + (rng() % (ci.capacity / kBlock)) * kBlock;
            uint32_t seed = next_seed++;
            std::vector<std::byte> data(kBlock);
            for (uint64_t i = 0; i < kBlock; ++i) data[i] = gen_byte(seed, i);
            REQUIRE(dev->write(cz, block, data).ok());
            w.cnv_history[block].push_back(seed);
            w.cnv_now[block] = seed;
        }
    }
    REQUIRE(dev->close().ok());
    snapshot();
}

// Checks one crash image against the model; returns a description of the
// first violation, or "" if it holds.
std::string verify_zone(const Workload& w, const Snapshot& s, uint32_t zi, const ZoneInfo& info,
                        const std::vector<std::byte>& data) {
    const auto& gens = w.zones[zi].gens;
    const uint64_t len = info.written();
    std::string why = fmt::format("zone {}: wp at +{} matches no generation since the last flush (generation {}, {} bytes):",
                                  zi, len, s.gen[zi], s.written[zi]);
    for (size_t gi = s.gen[zi]; gi < gens.size(); ++gi) {
        const Generation& g = gens[gi];
        const uint64_t max_wp = g.finished ? info.capacity : std::min(info.capacity, (g.written + 511) & ~uint64_t{511});
        if (len > max_wp) {
            why += fmt::format(" [gen {}: wrote only {}]", gi, g.written);
            continue;
        }
        if (gi == s.gen[zi] && len < s.written[zi]) {
            why += fmt::format(" [gen {}: lost synced data]", gi);
            continue;
        }
        bool ok = true;
        for (uint64_t i = 0; i < len && ok; ++i) {
            std::byte want = i < g.written ? gen_byte(g.seed, i) : std::byte{0};
            if (data[i] == want) continue;
            // The WP is persisted rounded up to a sector: the tail of its last
            // sector may be zero padding where appends came after the flush.
            bool zero_tail = len - i < 512 && std::all_of(data.begin() + static_cast<ptrdiff_t>(i), data.end(),
                                                          [](std::byte b) { return b == std::byte{0}; });
            if (zero_tail) break;
            ok = false;
            why += fmt::format(" [gen {}: byte {} is {:#x}, it wrote {:#x}]", gi, i, int(data[i]), int(want));
        }
        if (ok) return "";
    }
    return why;
}

std::string verify_conventional(const Workload& w, const Snapshot& s, uint64_t block, const std::vector<std::byte>& data) {
    // Each sector holds the synced version of its block or any later one.
    std::vector<uint32_t> allowed;
    auto it = s.cnv.find(block);
    allowed.push_back(it == s.cnv.end() ? 0 : it->second);
    if (auto h = w.cnv_history.find(block); h != w.cnv_history.end()) allowed.insert(allowed.end(), h->second.begin(), h->second.end());
    for (uint64_t sec = 0; sec < kBlock; sec += 512) {
        bool any = false;
        for (uint32_t seed : allowed) {
            bool eq = true;
            for (uint64_t i = sec; i < sec + 512 && eq; ++i)
                eq = data[i] == (seed ? gen_byte(seed, i) : std::byte{0});
            any |= eq;
        }
        if (!any) return fmt::format("conventional block {:#x} sector {} holds data never written there", block, sec / 512);
    }
    return "";
}

}  // namespace

TEST_CASE("crash: every crash state opens clean and keeps every flushed byte") {
    TempDir dir;
    Workload w;
    run_workload(w, dir);
    const auto& ops = w.log->ops;
    size_t syncs = std::count_if(ops.begin(), ops.end(), [](const HostOp& o) { return o.kind == HostOp::sync; });
    MESSAGE("workload: " << ops.size() << " host operations, " << syncs << " syncs, " << w.snaps.size() << " flushes");
    REQUIRE(syncs > 20);
    {
        std::mt19937 none(0);
        auto final_image = crash_image(w.base, ops, 0, none);
        for (const auto& op : ops) apply_op(final_image, op);
        // The refcount table (header bytes 56..59) outgrew its first cluster.
        uint32_t table_clusters = 0;
        for (int i = 0; i < 4; ++i) table_clusters = table_clusters << 8 | static_cast<uint8_t>(final_image[56 + i]);
        CHECK(table_clusters > 1);
    }

    // Crash points: right before and after syncs, and random ones.
    std::mt19937 rng(7);
    std::vector<size_t> points;
    for (size_t i = 0; i < ops.size(); ++i)
        if (ops[i].kind == HostOp::sync && rng() % 3 == 0) {
            points.push_back(i);
            points.push_back(i + 1);
        }
    while (points.size() < 300) points.push_back(rng() % (ops.size() + 1));
    points.push_back(ops.size());

    size_t checked = 0;
    for (size_t k : points) {
        CAPTURE(k);
        auto img = crash_image(w.base, ops, k, rng);
        const Snapshot* snap = &w.snaps.front();
        for (const auto& s : w.snaps)
            if (s.op_count <= k) snap = &s;

        // qemu-img check of the raw crash state, zoned bit masked.
        const std::string masked = dir.file("masked.qcow2");
        {
            auto copy = img;
            copy[72 + 7] &= std::byte{static_cast<unsigned char>(~0x20)};
            dump(masked, copy);
        }
        std::string out;
        int rc = run("qemu-img check " + masked + " 2>&1", &out);
        REQUIRE_MESSAGE((rc == 0 || rc == 3), out);

        auto log = std::make_shared<HostLog>();
        auto dev = open_mem(img, log);
        auto report = dev->check(qcow2::RepairMode::none);
        REQUIRE(report.ok());
        REQUIRE_MESSAGE(report->corruptions == 0, (report->messages.empty() ? "" : report->messages.front()));

        for (uint32_t zi = 0; zi < kZones; ++zi) {
            ZoneInfo info = dev->zone(zi);
            if (zi < kConventional) {
                for (uint64_t b = info.start; b < info.start + info.capacity; b += kBlock) {
                    std::vector<std::byte> data(kBlock);
                    REQUIRE(dev->read(b, data).ok());
                    auto why = verify_conventional(w, *snap, b, data);
                    REQUIRE_MESSAGE(why.empty(), why);
                }
                continue;
            }
            if (info.written() > 0) CHECK(info.cond != ZoneCond::implicit_open);  // reopened: closed or full
            std::vector<std::byte> data(info.written());
            REQUIRE(dev->read(info.start, data).ok());
            auto why = verify_zone(w, *snap, zi, info, data);
            REQUIRE_MESSAGE(why.empty(), why);
        }
        // Still usable: append to an empty or partly written zone, flush, check.
        for (uint32_t zi = kConventional; zi < kZones; ++zi) {
            ZoneInfo info = dev->zone(zi);
            if (info.cond == ZoneCond::full || info.capacity - info.written() < 512) continue;
            std::vector<std::byte> more(512, std::byte{0x5a});
            Status s = dev->write(zi, info.wp, more);
            if (!s.ok() && (s.error().code == ETOOMANYREFS || s.error().code == EOVERFLOW)) continue;
            REQUIRE_MESSAGE(s.ok(), s.error().message);
            break;
        }
        REQUIRE(dev->flush().ok());
        auto after = dev->check(qcow2::RepairMode::none);
        REQUIRE(after.ok());
        CHECK(after->corruptions == 0);
        ++checked;
    }
    MESSAGE("checked " << checked << " crash states");
    CHECK(checked >= 300);
}
