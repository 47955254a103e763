// The zoned header extension: both byte layouts of SPEC section 2 and every
// rule its fields must obey. Expected bytes are built here by hand from the
// spec's tables, independently of the codec under test.
#include <doctest/doctest.h>

#include <cerrno>
#include <cstring>

#include "core/write_pointer_table.h"
#include "core/zoned_extension.h"

using namespace zqfs;
using namespace zqfs::core;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

void put_be(std::vector<std::byte>& b, size_t at, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i, v >>= 8) b[at + i] = std::byte(v & 0xff);
}

std::vector<std::byte> seed_bytes(uint64_t zsize, uint64_t zcap, uint32_t cnv, uint32_t nr, uint32_t act,
                                  uint32_t open, uint32_t app, uint64_t msize, uint64_t moff) {
    std::vector<std::byte> b(56);
    b[0] = std::byte{1};
    put_be(b, 4, zsize, 8);
    put_be(b, 12, zcap, 8);
    put_be(b, 20, cnv, 4);
    put_be(b, 24, nr, 4);
    put_be(b, 28, act, 4);
    put_be(b, 32, open, 4);
    put_be(b, 36, app, 4);
    put_be(b, 40, msize, 8);
    put_be(b, 48, moff, 8);
    return b;
}

std::vector<std::byte> latest_bytes(uint32_t nr, uint64_t zsize, uint64_t zcap, uint64_t moff, uint32_t cnv,
                                    uint32_t act, uint32_t open) {
    std::vector<std::byte> b(44);
    b[0] = std::byte{1};
    put_be(b, 4, nr, 4);
    put_be(b, 8, zsize, 8);
    put_be(b, 16, zcap, 8);
    put_be(b, 24, moff, 8);
    put_be(b, 32, cnv, 4);
    put_be(b, 36, act, 4);
    put_be(b, 40, open, 4);
    return b;
}

// The seed's example device: 768 MiB, 12 zones of 64 MiB.
ZonedConfig example(Layout l = Layout::seed) {
    ZonedConfig c;
    c.layout = l;
    c.zone_size = 64 * kMiB;
    c.zone_capacity = 64 * kMiB;
    c.nr_zones = 12;
    c.conventional_zones = 0;
    c.max_open_zones = 6;
    c.max_active_zones = 8;
    c.max_append_bytes = l == Layout::seed ? 4096 : 0;
    c.zonedmeta_offset = 0x30000;
    return c;
}

std::string msg(const Status& s) { return s.ok() ? "" : s.error().message; }

}  // namespace

TEST_CASE("core: seed layout encodes to the 56-byte table of the spec") {
    auto want = seed_bytes(64 * kMiB, 64 * kMiB, 0, 12, 8, 6, 4096, 96, 0x30000);
    CHECK(encode_zoned_extension(example()) == want);
}

TEST_CASE("core: latest layout encodes to the 44-byte table of the spec") {
    auto want = latest_bytes(12, 64 * kMiB, 64 * kMiB, 0x30000, 0, 8, 6);
    CHECK(encode_zoned_extension(example(Layout::latest)) == want);
}

TEST_CASE("core: both layouts decode what the spec tables describe") {
    auto s = decode_zoned_extension(seed_bytes(64 * kMiB, 32 * kMiB, 2, 12, 8, 6, 4096, 96, 0x30000));
    REQUIRE(s.ok());
    CHECK(s->config.layout == Layout::seed);
    CHECK(s->config.zone_size == 64 * kMiB);
    CHECK(s->config.zone_capacity == 32 * kMiB);
    CHECK(s->config.conventional_zones == 2);
    CHECK(s->config.nr_zones == 12);
    CHECK(s->config.max_active_zones == 8);
    CHECK(s->config.max_open_zones == 6);
    CHECK(s->config.max_append_bytes == 4096);
    CHECK(s->zonedmeta_size == 96);
    CHECK(s->config.zonedmeta_offset == 0x30000);

    auto l = decode_zoned_extension(latest_bytes(12, 64 * kMiB, 32 * kMiB, 0x30000, 2, 8, 6));
    REQUIRE(l.ok());
    CHECK(l->config.layout == Layout::latest);
    CHECK(l->config.nr_zones == 12);
    CHECK(l->config.zone_size == 64 * kMiB);
    CHECK(l->config.zone_capacity == 32 * kMiB);
    CHECK(l->config.zonedmeta_offset == 0x30000);
    CHECK(l->config.conventional_zones == 2);
    CHECK(l->config.max_active_zones == 8);
    CHECK(l->config.max_open_zones == 6);
    CHECK(l->config.max_append_bytes == 0);
}

TEST_CASE("core: an extension of any other length is refused naming the length") {
    std::vector<std::byte> b(48);
    b[0] = std::byte{1};
    auto r = decode_zoned_extension(b);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("48") != std::string::npos);
}

TEST_CASE("core: zoned byte 0 (not zoned) is refused") {
    auto b = seed_bytes(64 * kMiB, 64 * kMiB, 0, 12, 8, 6, 4096, 96, 0x30000);
    b[0] = std::byte{0};
    auto r = decode_zoned_extension(b);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("zoned=0") != std::string::npos);
}

TEST_CASE("core: zoned byte other than 0 or 1 is refused") {
    auto b = latest_bytes(12, 64 * kMiB, 64 * kMiB, 0x30000, 0, 8, 6);
    b[0] = std::byte{2};
    auto r = decode_zoned_extension(b);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("zoned=2") != std::string::npos);
}

TEST_CASE("core: a valid configuration passes validation") {
    CHECK(validate_zoned_config(example(), 768 * kMiB, 65536).ok());
    CHECK(validate_zoned_config(example(Layout::latest), 768 * kMiB, 65536).ok());
}

TEST_CASE("core: rule zone_size must be a power of two") {
    auto c = example();
    c.zone_size = 48 * kMiB;
    c.zone_capacity = 48 * kMiB;
    c.nr_zones = 16;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("not a power of two") != std::string::npos);
    c.zone_size = 0;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("not a power of two") != std::string::npos);
}

TEST_CASE("core: rule zone_size must be a multiple of the cluster size") {
    auto c = example();
    c.zone_size = 1 * kMiB;
    c.zone_capacity = 1 * kMiB;
    c.nr_zones = 768;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 2 * kMiB)).find("multiple of the cluster size") !=
          std::string::npos);
}

TEST_CASE("core: rule zone_capacity must be positive") {
    auto c = example();
    c.zone_capacity = 0;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("zone_capacity is 0") != std::string::npos);
}

TEST_CASE("core: rule zone_capacity must not exceed zone_size") {
    auto c = example();
    c.zone_capacity = 65 * kMiB;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("larger than zone_size") != std::string::npos);
}

TEST_CASE("core: rule zone_capacity must be a multiple of 512") {
    auto c = example();
    c.zone_capacity = 64 * kMiB - 100;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("multiple of 512") != std::string::npos);
}

TEST_CASE("core: rule nr_zones must equal ceil(virtual size / zone_size)") {
    auto c = example();
    c.nr_zones = 11;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("nr_zones 11") != std::string::npos);
    c.nr_zones = 13;  // a runt 13th zone
    CHECK(validate_zoned_config(c, 768 * kMiB + 4096, 65536).ok());
}

TEST_CASE("core: rule conventional_zones must be below nr_zones") {
    auto c = example();
    c.conventional_zones = 12;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("conventional_zones 12") != std::string::npos);
    c.conventional_zones = 11;
    CHECK(validate_zoned_config(c, 768 * kMiB, 65536).ok());
}

TEST_CASE("core: rule max_append_bytes must be a multiple of 512") {
    auto c = example();
    c.max_append_bytes = 1000;
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("max_append_bytes 1000 is not a multiple of 512") !=
          std::string::npos);
}

TEST_CASE("core: rule max_append_bytes must be below the capacity") {
    auto c = example();
    c.max_append_bytes = static_cast<uint32_t>(64 * kMiB);
    CHECK(msg(validate_zoned_config(c, 768 * kMiB, 65536)).find("not below zone_capacity") != std::string::npos);
}

TEST_CASE("core: rule max_open_zones above the sequential zones is clamped with a warning") {
    auto c = example();
    c.conventional_zones = 2;
    c.max_open_zones = 11;
    c.max_active_zones = 0;
    std::vector<std::string> w;
    clamp_zone_limits(c, &w);
    CHECK(c.max_open_zones == 10);
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("max_open_zones 11") != std::string::npos);
}

TEST_CASE("core: rule max_active_zones above the sequential zones is clamped with a warning") {
    auto c = example();
    c.max_open_zones = 0;
    c.max_active_zones = 20;
    std::vector<std::string> w;
    clamp_zone_limits(c, &w);
    CHECK(c.max_active_zones == 12);
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("max_active_zones 20") != std::string::npos);
}

TEST_CASE("core: rule max_open_zones above a non-zero max_active_zones is clamped with a warning") {
    auto c = example();
    c.max_open_zones = 8;
    c.max_active_zones = 6;
    std::vector<std::string> w;
    clamp_zone_limits(c, &w);
    CHECK(c.max_open_zones == 6);
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("max_active_zones 6") != std::string::npos);
}

TEST_CASE("core: rule max_open_zones given alone is honoured") {
    auto c = example();
    c.max_open_zones = 6;
    c.max_active_zones = 0;
    std::vector<std::string> w;
    clamp_zone_limits(c, &w);
    CHECK(c.max_open_zones == 6);
    CHECK(c.max_active_zones == 0);
    CHECK(w.empty());
}

TEST_CASE("core: rule zonedmeta_size must equal nr_zones * 8 (seed)") {
    auto d = decode_zoned_extension(seed_bytes(64 * kMiB, 64 * kMiB, 0, 12, 8, 6, 4096, 100, 0x30000));
    REQUIRE(d.ok());
    CHECK(msg(validate_zonedmeta_location(*d, 65536, 1 << 20)).find("zonedmeta_size 100") != std::string::npos);
}

TEST_CASE("core: rule zonedmeta must be cluster-aligned") {
    auto d = decode_zoned_extension(seed_bytes(64 * kMiB, 64 * kMiB, 0, 12, 8, 6, 4096, 96, 0x30200));
    REQUIRE(d.ok());
    CHECK(msg(validate_zonedmeta_location(*d, 65536, 1 << 20)).find("not aligned to the cluster size") !=
          std::string::npos);
}

TEST_CASE("core: rule zonedmeta must lie inside the file") {
    auto d = decode_zoned_extension(seed_bytes(64 * kMiB, 64 * kMiB, 0, 12, 8, 6, 4096, 96, 0x100000));
    REQUIRE(d.ok());
    CHECK(msg(validate_zonedmeta_location(*d, 65536, 0x100000)).find("outside the file") != std::string::npos);
    CHECK(validate_zonedmeta_location(*d, 65536, 0x110000).ok());
    auto h = decode_zoned_extension(seed_bytes(64 * kMiB, 64 * kMiB, 0, 12, 8, 6, 4096, 96, 0));
    CHECK(msg(validate_zonedmeta_location(*h, 65536, 0x110000)).find("overlaps the header") != std::string::npos);
}

TEST_CASE("core: seed WP entries are little-endian with bit 59 marking conventional zones") {
    std::byte b[8];
    store_wp_entry(Layout::seed, b, {0x123456789a00ull, true});
    const uint8_t want[8] = {0x00, 0x9a, 0x78, 0x56, 0x34, 0x12, 0x00, 0x08};
    CHECK(std::memcmp(b, want, 8) == 0);
    WpEntry e = load_wp_entry(Layout::seed, b);
    CHECK(e.wp == 0x123456789a00ull);
    CHECK(e.conventional);
}

TEST_CASE("core: latest WP entries are big-endian with bit 63 marking conventional zones") {
    std::byte b[8];
    store_wp_entry(Layout::latest, b, {0x123456789a00ull, true});
    const uint8_t want[8] = {0x80, 0x00, 0x12, 0x34, 0x56, 0x78, 0x9a, 0x00};
    CHECK(std::memcmp(b, want, 8) == 0);
    WpEntry e = load_wp_entry(Layout::latest, b);
    CHECK(e.wp == 0x123456789a00ull);
    CHECK(e.conventional);
    store_wp_entry(Layout::latest, b, {4096, false});
    CHECK_FALSE(load_wp_entry(Layout::latest, b).conventional);
}

TEST_CASE("core: rule every WP entry must be 512-aligned") {
    auto c = example();
    ZoneGeometry g(768 * kMiB, c);
    CHECK(msg(validate_wp_entry(g, 1, {g.start(1) + 100, false})).find("not 512-aligned") != std::string::npos);
}

TEST_CASE("core: rule every WP entry must lie within [start, start + length]") {
    auto c = example();
    ZoneGeometry g(768 * kMiB, c);
    CHECK(validate_wp_entry(g, 1, {g.end(1), false}).ok());
    CHECK(msg(validate_wp_entry(g, 1, {g.end(1) + 512, false})).find("outside the zone") != std::string::npos);
    CHECK(msg(validate_wp_entry(g, 1, {g.start(1) - 512, false})).find("outside the zone") != std::string::npos);
}

TEST_CASE("core: rule the conventional bit is set exactly for the first conventional_zones zones") {
    auto c = example();
    c.conventional_zones = 2;
    ZoneGeometry g(768 * kMiB, c);
    CHECK(validate_wp_entry(g, 1, {g.start(1), true}).ok());
    CHECK(msg(validate_wp_entry(g, 1, {g.start(1), false})).find("conventional bit is clear") != std::string::npos);
    CHECK(msg(validate_wp_entry(g, 2, {g.start(2), true})).find("conventional bit is set") != std::string::npos);
}

TEST_CASE("core: rule nr_zones must not exceed the supported maximum") {
    ZonedConfig c = example();
    c.zone_size = 65536;
    c.zone_capacity = 65536;
    c.max_append_bytes = 4096;
    uint64_t vs = uint64_t{kMaxZones + 1} * 65536;
    c.nr_zones = kMaxZones + 1;
    CHECK(msg(validate_zoned_config(c, vs, 65536)).find("zones zqfs supports") != std::string::npos);
}

TEST_CASE("core: random extension bytes are decoded and validated without crashing") {
    uint64_t x = 0x9e3779b97f4a7c15ull;
    auto next = [&] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::byte> b(i % 2 ? 56 : 44);
        for (auto& v : b) v = std::byte(next() & 0xff);
        b[0] = std::byte{1};
        if (i % 3 == 0) b[i % 2 ? 4 : 8] = std::byte{0};  // smaller zone sizes more often
        auto d = decode_zoned_extension(b);
        REQUIRE(d.ok());
        uint64_t cluster = 512ull << (next() % 13);
        uint64_t vsize = next() >> (next() % 64);
        if (validate_zoned_config(d->config, vsize, cluster).ok()) {
            ZonedConfig c = d->config;
            clamp_zone_limits(c, nullptr);
            CHECK(c.max_open_zones <= c.nr_zones);
        }
        (void)validate_zonedmeta_location(*d, cluster, next() >> (next() % 64));
    }
}
