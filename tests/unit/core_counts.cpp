// The device's running totals (behind statfs) always equal the per-zone sums.
#include <doctest/doctest.h>

#include "core/zoned_device.h"
#include "tests/unit/qcow2_test_util.h"

using namespace zqfs;
using namespace zqfs::core;

namespace {

void expect_totals_match(ZonedDevice& d) {
    uint64_t written = 0, capacity = 0, cnv = 0;
    for (uint32_t z = 0; z < d.nr_zones(); ++z) {
        ZoneInfo i = d.zone(z);
        capacity += i.capacity;
        if (i.type == ZoneType::conventional)
            cnv += i.capacity;
        else
            written += i.written();
    }
    DeviceCounts c = d.counts();
    CHECK(c.seq_written == written);
    CHECK(c.capacity == capacity);
    CHECK(c.cnv_capacity == cnv);
}

}  // namespace

TEST_CASE("core: written and capacity totals follow writes, finish, reset and reopen") {
    testing::TempDir t;
    CreateSpec s;
    s.virtual_size = (8u << 20) + (3u << 20);  // a runt last zone of 3 MiB
    s.zone_size = 2 << 20;
    s.zone_capacity = (3u << 20) / 2;
    s.conventional_zones = 2;
    REQUIRE(ZonedDevice::create(t.file("c.qcow2"), s, nullptr).ok());
    auto d = ZonedDevice::open(t.file("c.qcow2"), DeviceOpenOptions{});
    REQUIRE(d.ok());
    expect_totals_match(**d);
    std::vector<std::byte> data(70000, std::byte{1});
    REQUIRE((*d)->write(2, (*d)->zone(2).wp, data).ok());
    REQUIRE((*d)->write(3, (*d)->zone(3).wp, data).ok());
    REQUIRE((*d)->write(0, (*d)->zone(0).start, data).ok());  // conventional: no change
    expect_totals_match(**d);
    CHECK((*d)->counts().seq_written == 140000);
    REQUIRE((*d)->finish_zone(4).ok());
    expect_totals_match(**d);
    REQUIRE((*d)->reset_zone(2).ok());
    expect_totals_match(**d);
    REQUIRE((*d)->close().ok());
    auto again = ZonedDevice::open(t.file("c.qcow2"), DeviceOpenOptions{});
    REQUIRE(again.ok());
    expect_totals_match(**again);
    REQUIRE((*again)->reset_all().ok());
    expect_totals_match(**again);
    CHECK((*again)->counts().seq_written == 0);
}
