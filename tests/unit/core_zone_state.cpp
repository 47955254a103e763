// The zone state machine and resource limits (SPEC section 3), without I/O.
#include <doctest/doctest.h>

#include <cerrno>

#include "core/zone_state.h"

using namespace zqfs;
using namespace zqfs::core;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

// 1 conventional + `seq` sequential zones of 1 MiB (capacity 768 KiB).
struct Fixture {
    ZonedConfig cfg;
    ZoneGeometry g;
    ZoneState s;
    Fixture(uint32_t seq, uint32_t max_open, uint32_t max_active, uint32_t cnv = 1)
        : cfg(make_cfg(seq + cnv, cnv)), g((seq + cnv) * kMiB, cfg), s(g, max_open, max_active) {}
    static ZonedConfig make_cfg(uint32_t n, uint32_t cnv) {
        ZonedConfig c;
        c.zone_size = kMiB;
        c.zone_capacity = 768 * 1024;
        c.nr_zones = n;
        c.conventional_zones = cnv;
        return c;
    }
    ZoneCond cond(uint32_t z) const { return s.info(z).cond; }
    uint64_t wp(uint32_t z) const { return s.info(z).wp; }
    // A complete write of `len` bytes at the zone's WP.
    Status write(uint32_t z, uint64_t len = 4096) {
        uint64_t at = wp(z);
        ZQ_TRY(s.begin_write(z, at, len));
        s.end_write(z, at + len, true);
        return {};
    }
};

int err(const Status& s) { return s.ok() ? 0 : s.error().code; }

}  // namespace

TEST_CASE("core: zones start not-write-pointer (conventional) and empty (sequential)") {
    Fixture f(4, 0, 0);
    CHECK(f.cond(0) == ZoneCond::not_wp);
    for (uint32_t z = 1; z < 5; ++z) CHECK(f.cond(z) == ZoneCond::empty);
    auto c = f.s.counts();
    CHECK(c.per_cond[0] == 1);
    CHECK(c.per_cond[1] == 4);
    CHECK(c.open == 0);
    CHECK(c.active == 0);
}

TEST_CASE("core: a write to an empty zone opens it implicitly and moves the WP") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1, 4096).ok());
    CHECK(f.cond(1) == ZoneCond::implicit_open);
    CHECK(f.wp(1) == f.g.start(1) + 4096);
    CHECK(f.s.counts().open == 1);
    CHECK(f.s.counts().active == 1);
}

TEST_CASE("core: a write to a closed zone opens it implicitly") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.close(1).ok());
    CHECK(f.cond(1) == ZoneCond::closed);
    REQUIRE(f.write(1).ok());
    CHECK(f.cond(1) == ZoneCond::implicit_open);
}

TEST_CASE("core: a sequential write not at the WP fails with EINVAL") {
    Fixture f(4, 0, 0);
    CHECK(err(f.s.begin_write(1, f.g.start(1) + 512, 512)) == EINVAL);
    REQUIRE(f.write(1).ok());
    CHECK(err(f.s.begin_write(1, f.g.start(1), 512)) == EINVAL);
    CHECK(f.cond(1) == ZoneCond::implicit_open);
}

TEST_CASE("core: a write crossing the capacity fails with EFBIG") {
    Fixture f(4, 0, 0);
    CHECK(err(f.s.begin_write(1, f.g.start(1), f.g.capacity(1) + 512)) == EFBIG);
    CHECK(f.cond(1) == ZoneCond::empty);
}

TEST_CASE("core: reaching the capacity makes the zone full and frees its resources") {
    Fixture f(4, 2, 2);
    REQUIRE(f.write(1, f.g.capacity(1)).ok());
    CHECK(f.cond(1) == ZoneCond::full);
    CHECK(f.wp(1) == f.g.capacity_end(1));
    CHECK(f.s.counts().open == 0);
    CHECK(f.s.counts().active == 0);
}

TEST_CASE("core: a write at or past the capacity of a full zone fails with EFBIG") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1, f.g.capacity(1)).ok());
    CHECK(err(f.s.begin_write(1, f.g.capacity_end(1), 512)) == EFBIG);
}

TEST_CASE("core: implicit open at the open limit closes the least recently used implicitly open zone") {
    Fixture f(4, 2, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.write(2).ok());
    REQUIRE(f.write(1).ok());  // zone 2 is now the least recently used
    REQUIRE(f.write(3).ok());
    CHECK(f.cond(2) == ZoneCond::closed);
    CHECK(f.cond(1) == ZoneCond::implicit_open);
    CHECK(f.cond(3) == ZoneCond::implicit_open);
    CHECK(f.s.counts().open == 2);
    CHECK(f.s.counts().active == 3);
}

TEST_CASE("core: implicit open at the open limit with no implicitly open zone to close fails with ETOOMANYREFS") {
    Fixture f(4, 2, 0);
    REQUIRE(f.s.open(1).ok());
    REQUIRE(f.s.open(2).ok());
    CHECK(err(f.s.begin_write(3, f.g.start(3), 512)) == ETOOMANYREFS);
    CHECK(f.cond(3) == ZoneCond::empty);
    CHECK(f.s.counts().open == 2);
}

TEST_CASE("core: implicit open at the open limit skips zones with a write in flight") {
    Fixture f(4, 1, 0);
    REQUIRE(f.s.begin_write(1, f.g.start(1), 512).ok());  // still in flight
    CHECK(err(f.s.begin_write(2, f.g.start(2), 512)) == ETOOMANYREFS);
    f.s.end_write(1, f.g.start(1) + 512, true);
    REQUIRE(f.write(2).ok());
    CHECK(f.cond(1) == ZoneCond::closed);
}

TEST_CASE("core: implicit open of an empty zone at the active limit fails with EOVERFLOW") {
    Fixture f(4, 0, 2);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.write(2).ok());
    CHECK(err(f.s.begin_write(3, f.g.start(3), 512)) == EOVERFLOW);
    CHECK(f.cond(3) == ZoneCond::empty);
}

TEST_CASE("core: implicit open at the open limit fails with EOVERFLOW when the active limit forbids closing") {
    Fixture f(4, 2, 2);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.write(2).ok());
    CHECK(err(f.s.begin_write(3, f.g.start(3), 512)) == EOVERFLOW);
    CHECK(f.cond(1) == ZoneCond::implicit_open);
    CHECK(f.cond(2) == ZoneCond::implicit_open);
}

TEST_CASE("core: implicit open of a closed zone at both limits closes the LRU zone (active count unchanged)") {
    Fixture f(4, 2, 3);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.close(1).ok());
    REQUIRE(f.write(2).ok());
    REQUIRE(f.write(3).ok());
    CHECK(f.s.counts().active == 3);
    REQUIRE(f.write(1).ok());
    CHECK(f.cond(2) == ZoneCond::closed);
    CHECK(f.s.counts().open == 2);
    CHECK(f.s.counts().active == 3);
}

TEST_CASE("core: explicit open of an empty zone") {
    Fixture f(4, 0, 0);
    REQUIRE(f.s.open(1).ok());
    CHECK(f.cond(1) == ZoneCond::explicit_open);
    CHECK(f.wp(1) == f.g.start(1));
    CHECK(f.s.counts().open == 1);
    CHECK(f.s.counts().active == 1);
}

TEST_CASE("core: explicit open of a closed zone") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.close(1).ok());
    REQUIRE(f.s.open(1).ok());
    CHECK(f.cond(1) == ZoneCond::explicit_open);
    CHECK(f.s.counts().active == 1);
}

TEST_CASE("core: explicit open of an implicitly open zone makes it explicitly open") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.open(1).ok());
    CHECK(f.cond(1) == ZoneCond::explicit_open);
    CHECK(f.s.counts().open == 1);
}

TEST_CASE("core: explicit open of a full zone leaves it full") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1, f.g.capacity(1)).ok());
    REQUIRE(f.s.open(1).ok());
    CHECK(f.cond(1) == ZoneCond::full);
    CHECK(f.s.counts().open == 0);
}

TEST_CASE("core: explicit open at the open limit closes an implicitly open zone") {
    Fixture f(4, 1, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.open(2).ok());
    CHECK(f.cond(1) == ZoneCond::closed);
    CHECK(f.cond(2) == ZoneCond::explicit_open);
}

TEST_CASE("core: explicit open at the open limit with only explicitly open zones fails with ETOOMANYREFS") {
    Fixture f(4, 1, 0);
    REQUIRE(f.s.open(1).ok());
    CHECK(err(f.s.open(2)) == ETOOMANYREFS);
    CHECK(f.cond(2) == ZoneCond::empty);
}

TEST_CASE("core: explicit open of an empty zone at the active limit fails with EOVERFLOW") {
    Fixture f(4, 0, 1);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.close(1).ok());
    CHECK(err(f.s.open(2)) == EOVERFLOW);
    REQUIRE(f.s.open(1).ok());  // a closed zone is already active
}

TEST_CASE("core: close of an explicitly open empty zone makes it empty") {
    Fixture f(4, 0, 0);
    REQUIRE(f.s.open(1).ok());
    REQUIRE(f.s.close(1).ok());
    CHECK(f.cond(1) == ZoneCond::empty);
    CHECK(f.s.counts().open == 0);
    CHECK(f.s.counts().active == 0);
}

TEST_CASE("core: close of a written open zone makes it closed and keeps it active") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.open(2).ok());
    REQUIRE(f.write(2).ok());
    REQUIRE(f.s.close(1).ok());
    REQUIRE(f.s.close(2).ok());
    CHECK(f.cond(1) == ZoneCond::closed);
    CHECK(f.cond(2) == ZoneCond::closed);
    CHECK(f.s.counts().open == 0);
    CHECK(f.s.counts().active == 2);
}

TEST_CASE("core: close of an empty, closed or full zone changes nothing") {
    Fixture f(4, 0, 0);
    REQUIRE(f.s.close(1).ok());
    CHECK(f.cond(1) == ZoneCond::empty);
    REQUIRE(f.write(2).ok());
    REQUIRE(f.s.close(2).ok());
    REQUIRE(f.s.close(2).ok());
    CHECK(f.cond(2) == ZoneCond::closed);
    REQUIRE(f.write(3, f.g.capacity(3)).ok());
    REQUIRE(f.s.close(3).ok());
    CHECK(f.cond(3) == ZoneCond::full);
}

namespace {
// Puts zone 1 of a fresh fixture into `c`.
void make_cond(Fixture& f, ZoneCond c) {
    switch (c) {
        case ZoneCond::empty: break;
        case ZoneCond::implicit_open: REQUIRE(f.write(1).ok()); break;
        case ZoneCond::explicit_open: REQUIRE(f.s.open(1).ok()); REQUIRE(f.write(1).ok()); break;
        case ZoneCond::closed: REQUIRE(f.write(1).ok()); REQUIRE(f.s.close(1).ok()); break;
        case ZoneCond::full: REQUIRE(f.write(1, f.g.capacity(1)).ok()); break;
        default: FAIL("unsupported");
    }
    REQUIRE(f.cond(1) == c);
}
}  // namespace

TEST_CASE("core: finish of every sequential condition makes the zone full with WP at the capacity end") {
    for (ZoneCond c : {ZoneCond::empty, ZoneCond::implicit_open, ZoneCond::explicit_open, ZoneCond::closed,
                       ZoneCond::full}) {
        CAPTURE(cond_name(c));
        Fixture f(4, 2, 2);
        make_cond(f, c);
        REQUIRE(f.s.check_finish(1).ok());
        f.s.apply_finish(1);
        CHECK(f.cond(1) == ZoneCond::full);
        CHECK(f.wp(1) == f.g.capacity_end(1));
        CHECK(f.s.counts().open == 0);
        CHECK(f.s.counts().active == 0);
        CHECK(f.s.counts().per_cond[static_cast<int>(ZoneCond::full)] == 1);
    }
}

TEST_CASE("core: finish of an empty zone at the active limit fails with EOVERFLOW") {
    Fixture f(4, 0, 1);
    REQUIRE(f.write(2).ok());
    CHECK(err(f.s.check_finish(1)) == EOVERFLOW);
    REQUIRE(f.s.check_finish(2).ok());  // an active zone can always finish
}

TEST_CASE("core: reset of every sequential condition makes the zone empty with WP at the start") {
    for (ZoneCond c : {ZoneCond::empty, ZoneCond::implicit_open, ZoneCond::explicit_open, ZoneCond::closed,
                       ZoneCond::full}) {
        CAPTURE(cond_name(c));
        Fixture f(4, 2, 2);
        make_cond(f, c);
        REQUIRE(f.s.check_reset(1).ok());
        f.s.apply_reset(1);
        CHECK(f.cond(1) == ZoneCond::empty);
        CHECK(f.wp(1) == f.g.start(1));
        CHECK(f.s.counts().open == 0);
        CHECK(f.s.counts().active == 0);
        CHECK(f.s.counts().per_cond[static_cast<int>(ZoneCond::empty)] == 4);
    }
}

TEST_CASE("core: zone management on a conventional zone fails with EINVAL") {
    Fixture f(4, 0, 0);
    CHECK(err(f.s.open(0)) == EINVAL);
    CHECK(err(f.s.close(0)) == EINVAL);
    CHECK(err(f.s.check_finish(0)) == EINVAL);
    CHECK(err(f.s.check_reset(0)) == EINVAL);
    CHECK(f.cond(0) == ZoneCond::not_wp);
}

TEST_CASE("core: conventional writes are random inside the capacity and EFBIG beyond it") {
    Fixture f(4, 0, 0);
    CHECK(f.s.check_conventional_write(0, 4096, 512).ok());
    CHECK(f.s.check_conventional_write(0, 0, 512).ok());
    CHECK(err(f.s.check_conventional_write(0, f.g.capacity(0) - 512, 1024)) == EFBIG);
    CHECK(err(f.s.check_conventional_write(0, f.g.capacity(0), 512)) == EFBIG);
}

TEST_CASE("core: a read-only zone refuses writes and management with EROFS") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.s.set_condition(1, ZoneCond::read_only).ok());
    CHECK(f.s.counts().open == 0);
    CHECK(f.s.counts().active == 0);
    CHECK(err(f.s.begin_write(1, f.wp(1), 512)) == EROFS);
    CHECK(err(f.s.open(1)) == EROFS);
    CHECK(err(f.s.check_reset(1)) == EROFS);
    CHECK(f.s.check_readable(1).ok());
    REQUIRE(f.s.set_condition(0, ZoneCond::read_only).ok());
    CHECK(err(f.s.check_conventional_write(0, 0, 512)) == EROFS);
}

TEST_CASE("core: an offline zone fails reads, writes and management with EIO") {
    Fixture f(4, 0, 0);
    REQUIRE(f.s.set_condition(1, ZoneCond::offline).ok());
    CHECK(err(f.s.begin_write(1, f.wp(1), 512)) == EIO);
    CHECK(err(f.s.check_readable(1)) == EIO);
    CHECK(err(f.s.close(1)) == EIO);
    CHECK(err(f.s.set_condition(1, ZoneCond::full)) == EINVAL);
}

TEST_CASE("core: after reopen partly written zones are closed and count as active") {
    Fixture f(4, 0, 0);
    f.s.load(1, f.g.start(1));
    f.s.load(2, f.g.start(2) + 8192);
    f.s.load(3, f.g.capacity_end(3));
    f.s.load(4, f.g.end(4));  // anything up to the zone end counts as full
    CHECK(f.cond(1) == ZoneCond::empty);
    CHECK(f.cond(2) == ZoneCond::closed);
    CHECK(f.cond(3) == ZoneCond::full);
    CHECK(f.cond(4) == ZoneCond::full);
    CHECK(f.wp(4) == f.g.capacity_end(4));
    CHECK(f.s.counts().open == 0);
    CHECK(f.s.counts().active == 1);
}

TEST_CASE("core: a failed first write returns the zone to empty") {
    Fixture f(4, 0, 0);
    REQUIRE(f.s.begin_write(1, f.g.start(1), 512).ok());
    f.s.end_write(1, f.g.start(1) + 512, false);
    CHECK(f.cond(1) == ZoneCond::empty);
    CHECK(f.s.counts().active == 0);
}

TEST_CASE("core: a runt last zone has the remaining length and capacity min(capacity, length)") {
    ZonedConfig c = Fixture::make_cfg(3, 0);
    ZoneGeometry g(2 * kMiB + 256 * 1024, c);
    CHECK(g.len(2) == 256 * 1024);
    CHECK(g.capacity(2) == 256 * 1024);
    CHECK(g.capacity(1) == 768 * 1024);
    ZoneGeometry g2(2 * kMiB + 900 * 1024, c);
    CHECK(g2.len(2) == 900 * 1024);
    CHECK(g2.capacity(2) == 768 * 1024);
}

TEST_CASE("core: WPs changed since the last snapshot are reported once") {
    Fixture f(4, 0, 0);
    REQUIRE(f.write(1).ok());
    REQUIRE(f.write(1).ok());
    REQUIRE(f.write(2).ok());
    auto d = f.s.take_dirty();
    REQUIRE(d.size() == 2);
    CHECK(d[0].first == 1);
    CHECK(d[0].second == f.g.start(1) + 8192);
    CHECK(f.s.take_dirty().empty());
}

TEST_CASE("core: state for 1,048,576 zones is compact and operations stay O(1)") {
    ZonedConfig c;
    c.zone_size = 1 << 20;
    c.zone_capacity = 1 << 20;
    c.nr_zones = 1u << 20;
    ZoneGeometry g(uint64_t{1} << 40, c);
    ZoneState s(g, 128, 256);
    for (uint32_t z = 0; z < (1u << 20); z += 997) s.load(z, g.start(z) + (z % 3) * 4096);
    for (uint32_t i = 0; i < 20000; ++i) {
        uint32_t z = (i * 7919u) % (1u << 20);
        ZoneInfo zi = s.info(z);
        if (zi.cond == ZoneCond::full) continue;
        Status st = s.begin_write(z, zi.wp, 4096);
        if (st.ok()) s.end_write(z, zi.wp + 4096, true);
    }
    CHECK(s.counts().open <= 128);
    CHECK(s.counts().active <= 256 + 1100);  // loaded closed zones may exceed the limit
}
