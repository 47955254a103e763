// The zoned device end to end on real image files: create/open, the seed's
// 768 MiB scenario, persistence, reset freeing space, layouts, concurrency.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <thread>

#include "core/zone_json.h"
#include "core/zoned_device.h"
#include "qcow2/endian.h"

using namespace zqfs;
using namespace zqfs::core;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/zqfs-core-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const char* name) const { return path + "/" + name; }
};

// The seed's example: 768 MiB, 12 x 64 MiB zones, max open 6, max active 8.
CreateSpec example_spec(Layout layout = Layout::seed) {
    CreateSpec s;
    s.virtual_size = 768 * kMiB;
    s.zone_size = 64 * kMiB;
    s.zone_capacity = 64 * kMiB;
    s.max_open_zones = 6;
    s.max_active_zones = 8;
    s.layout = layout;
    return s;
}

std::unique_ptr<ZonedDevice> open_dev(const std::string& path, bool writable = true) {
    DeviceOpenOptions o;
    o.writable = writable;
    o.commit_seconds = 0;
    auto r = ZonedDevice::open(path, o);
    if (!r) FAIL_CHECK(r.error().message);
    REQUIRE(r.ok());
    return std::move(*r);
}

std::vector<std::byte> pattern(size_t n, uint8_t seed) {
    std::vector<std::byte> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = std::byte(static_cast<uint8_t>(seed + i * 7));
    return v;
}

int err(const Status& s) { return s.ok() ? 0 : s.error().code; }
template <class T>
int err(const Result<T>& r) {
    return r.ok() ? 0 : r.error().code;
}

ZoneCond cond(ZonedDevice& d, uint32_t z) { return d.zone(z).cond; }

// Reads/patches raw bytes of the image file.
std::vector<std::byte> read_raw(const std::string& path, uint64_t off, size_t n) {
    std::vector<std::byte> b(n);
    int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pread(fd, b.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n));
    ::close(fd);
    return b;
}

void write_raw(const std::string& path, uint64_t off, std::span<const std::byte> b) {
    int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, b.data(), b.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(b.size()));
    ::close(fd);
}

// Finds the zoned extension in the header by walking the extension list as
// qcow2.txt describes it: returns {payload offset, length}.
std::pair<uint64_t, uint32_t> find_zoned_ext(const std::string& path) {
    auto h = read_raw(path, 0, 4096);
    uint64_t off = load_be<uint32_t>(h.data() + 100);  // header_length
    while (off + 8 <= h.size()) {
        uint32_t type = load_be<uint32_t>(h.data() + off);
        uint32_t len = load_be<uint32_t>(h.data() + off + 4);
        if (type == 0) break;
        if (type == kZonedExtensionType) return {off + 8, len};
        off += 8 + (len + 7) / 8 * 8;
    }
    FAIL("no zoned extension");
    return {0, 0};
}

}  // namespace

TEST_CASE("core: create then open gives the configured geometry and all zones empty") {
    TempDir t;
    std::vector<std::string> w;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), example_spec(), &w).ok());
    CHECK(w.empty());
    auto d = open_dev(t.file("a.qcow2"));
    CHECK(d->nr_zones() == 12);
    CHECK(d->virtual_size() == 768 * kMiB);
    CHECK(d->config().max_open_zones == 6);
    CHECK(d->config().max_active_zones == 8);
    CHECK(d->config().max_append_bytes == 64 * 1024);
    CHECK(d->config().zonedmeta_offset % d->cluster_size() == 0);
    for (uint32_t z = 0; z < 12; ++z) {
        CHECK(cond(*d, z) == ZoneCond::empty);
        CHECK(d->zone(z).wp == z * 64 * kMiB);
    }
    CHECK(d->counts().per_cond[1] == 12);
    REQUIRE(d->close().ok());
}

TEST_CASE("core: create refuses a bad configuration and leaves no file behind") {
    TempDir t;
    CreateSpec s = example_spec();
    s.zone_size = 48 * kMiB;
    auto r = ZonedDevice::create(t.file("bad.qcow2"), s, nullptr);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("not a power of two") != std::string::npos);
    CHECK(r.error().message.find("bad.qcow2") != std::string::npos);
    CHECK(std::filesystem::is_empty(t.path));
}

TEST_CASE("core: create clamps over-large limits with a warning") {
    TempDir t;
    CreateSpec s = example_spec();
    s.max_open_zones = 20;
    s.max_active_zones = 30;
    std::vector<std::string> w;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), s, &w).ok());
    CHECK(w.size() == 2);
    auto d = open_dev(t.file("a.qcow2"));
    CHECK(d->config().max_open_zones == 12);
    CHECK(d->config().max_active_zones == 12);
}

TEST_CASE("core: scenario on 12 x 64 MiB zones with max open 6 and max active 8") {
    TempDir t;
    const std::string img = t.file("zbc.qcow2");
    REQUIRE(ZonedDevice::create(img, example_spec(), nullptr).ok());
    auto d = open_dev(img);
    const uint64_t Z = 64 * kMiB;

    // Appends of 4 KiB then 8 KiB return the offsets they were written at.
    auto a1 = d->append(0, pattern(4096, 1));
    REQUIRE(a1.ok());
    CHECK(*a1 == 0);
    auto a2 = d->append(0, pattern(8192, 2));
    REQUIRE(a2.ok());
    CHECK(*a2 == 4096);
    CHECK(d->zone(0).wp == 12288);
    CHECK(cond(*d, 0) == ZoneCond::implicit_open);
    CHECK(d->counts().open == 1);
    CHECK(d->counts().active == 1);
    auto j = d->zone_json(0);
    CHECK(j["size"] == 12288);
    CHECK(j["cond"] == "open-implicit");

    // Zones 1..5 fill the open limit.
    for (uint32_t z = 1; z <= 5; ++z) {
        auto a = d->append(z, pattern(4096, 3));
        REQUIRE(a.ok());
        CHECK(*a == z * Z);
    }
    CHECK(d->counts().open == 6);
    CHECK(d->counts().active == 6);

    // Zone 6: at the open limit, the least recently used (zone 0) is closed.
    REQUIRE(d->append(6, pattern(4096, 4)).ok());
    CHECK(cond(*d, 0) == ZoneCond::closed);
    CHECK(d->counts().open == 6);
    CHECK(d->counts().active == 7);
    REQUIRE(d->append(7, pattern(4096, 5)).ok());
    CHECK(cond(*d, 1) == ZoneCond::closed);
    CHECK(d->counts().active == 8);

    // Active limit reached: an empty zone cannot be opened.
    CHECK(err(d->append(8, pattern(4096, 6))) == EOVERFLOW);
    CHECK(err(d->open_zone(8)) == EOVERFLOW);
    CHECK(cond(*d, 8) == ZoneCond::empty);

    // Finishing one zone frees an active resource.
    REQUIRE(d->finish_zone(2).ok());
    CHECK(cond(*d, 2) == ZoneCond::full);
    CHECK(d->zone(2).wp == 2 * Z + Z);
    CHECK(d->counts().active == 7);
    REQUIRE(d->open_zone(8).ok());
    CHECK(cond(*d, 8) == ZoneCond::explicit_open);
    CHECK(d->counts().open == 6);
    CHECK(d->counts().active == 8);

    // Data reads back where the appends put it.
    std::vector<std::byte> buf(8192);
    REQUIRE(d->read(4096, buf).ok());
    CHECK(buf == pattern(8192, 2));

    // Reopen: open zones come back closed, full stays full.
    REQUIRE(d->close().ok());
    d = open_dev(img);
    CHECK(cond(*d, 0) == ZoneCond::closed);
    CHECK(d->zone(0).wp == 12288);
    CHECK(cond(*d, 2) == ZoneCond::full);
    CHECK(cond(*d, 7) == ZoneCond::closed);
    CHECK(cond(*d, 8) == ZoneCond::empty);  // explicitly opened, never written
    CHECK(d->counts().open == 0);
    CHECK(d->counts().active == 7);
    REQUIRE(d->read(4096, buf).ok());
    CHECK(buf == pattern(8192, 2));

    // Reset-all empties every zone and frees the resources.
    REQUIRE(d->reset_all().ok());
    for (uint32_t z = 0; z < 12; ++z) CHECK(cond(*d, z) == ZoneCond::empty);
    CHECK(d->counts().active == 0);
    REQUIRE(d->read(0, buf).ok());
    CHECK(buf == std::vector<std::byte>(8192));
    REQUIRE(d->close().ok());
    d = open_dev(img);
    for (uint32_t z = 0; z < 12; ++z) CHECK(cond(*d, z) == ZoneCond::empty);
}

TEST_CASE("core: append beyond max_append_bytes fails with EINVAL") {
    TempDir t;
    CreateSpec s = example_spec();
    s.max_append_bytes = 4096;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), s, nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    CHECK(*d->append(0, pattern(4096, 1)) == 0);
    CHECK(err(d->append(0, pattern(8192, 1))) == EINVAL);
    CHECK(d->zone(0).wp == 4096);
}

TEST_CASE("core: device writes follow the WP and capacity rules") {
    TempDir t;
    CreateSpec s = example_spec();
    s.conventional_zones = 1;
    s.zone_capacity = 32 * kMiB;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), s, nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    const uint64_t Z = 64 * kMiB;
    CHECK(err(d->write(1, Z + 4096, pattern(512, 1))) == EINVAL);
    REQUIRE(d->write(1, Z, pattern(4096, 1)).ok());
    CHECK(err(d->write(1, Z + 4096, std::vector<std::byte>(32 * kMiB))) == EFBIG);
    CHECK(err(d->append(0, pattern(512, 1))) == EINVAL);
    CHECK(err(d->open_zone(0)) == EINVAL);
    CHECK(err(d->reset_zone(0)) == EINVAL);
    // Conventional: random writes inside the capacity.
    REQUIRE(d->write(0, 8192, pattern(512, 9)).ok());
    REQUIRE(d->write(0, 0, pattern(512, 8)).ok());
    CHECK(err(d->write(0, 32 * kMiB - 512, pattern(1024, 1))) == EFBIG);
    CHECK(cond(*d, 0) == ZoneCond::not_wp);
    CHECK(err(d->write(20, 0, pattern(512, 1))) == EINVAL);
}

TEST_CASE("core: WPs persist rounded up to 512 bytes") {
    TempDir t;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), example_spec(), nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    REQUIRE(d->append(3, pattern(100, 1)).ok());
    CHECK(d->zone(3).wp == 3 * 64 * kMiB + 100);
    REQUIRE(d->flush().ok());
    REQUIRE(d->close().ok());
    d = open_dev(t.file("a.qcow2"));
    CHECK(d->zone(3).wp == 3 * 64 * kMiB + 512);
    CHECK(cond(*d, 3) == ZoneCond::closed);
    std::vector<std::byte> buf(512);
    REQUIRE(d->read(3 * 64 * kMiB, buf).ok());
    CHECK(std::equal(buf.begin(), buf.begin() + 100, pattern(100, 1).begin()));
    CHECK(std::all_of(buf.begin() + 100, buf.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_CASE("core: finish is durable and survives reopen") {
    TempDir t;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), example_spec(), nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    REQUIRE(d->append(4, pattern(4096, 1)).ok());
    REQUIRE(d->finish_zone(4).ok());
    REQUIRE(d->finish_zone(5).ok());  // an empty zone finishes too
    d.reset();                        // destructor closes
    d = open_dev(t.file("a.qcow2"));
    CHECK(cond(*d, 4) == ZoneCond::full);
    CHECK(cond(*d, 5) == ZoneCond::full);
    CHECK(d->zone(5).wp == 6 * 64 * kMiB);
}

TEST_CASE("core: reset frees the zone's host space and reads back zeros") {
    TempDir t;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), example_spec(), nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    auto data = pattern(1 * kMiB, 5);
    for (int i = 0; i < 16; ++i) REQUIRE(d->append(1, std::span(data).subspan(0, 64 * 1024)).ok());
    for (int i = 0; i < 15; ++i) REQUIRE(d->write(1, d->zone(1).wp, data).ok());
    REQUIRE(d->flush().ok());
    auto before = d->stats();
    REQUIRE(before.ok());
    REQUIRE(d->reset_zone(1).ok());
    auto after = d->stats();
    REQUIRE(after.ok());
    CHECK(before->host_allocated_bytes - after->host_allocated_bytes >= 15 * kMiB);
    CHECK(cond(*d, 1) == ZoneCond::empty);
    std::vector<std::byte> buf(64 * 1024);
    REQUIRE(d->read(64 * kMiB, buf).ok());
    CHECK(buf == std::vector<std::byte>(64 * 1024));
    REQUIRE(d->close().ok());
    d = open_dev(t.file("a.qcow2"));
    CHECK(cond(*d, 1) == ZoneCond::empty);
}

TEST_CASE("core: both layouts round-trip through create, write and reopen") {
    for (Layout l : {Layout::seed, Layout::latest}) {
        CAPTURE(layout_name(l));
        TempDir t;
        const std::string img = t.file("a.qcow2");
        CreateSpec s = example_spec(l);
        s.conventional_zones = 2;
        REQUIRE(ZonedDevice::create(img, s, nullptr).ok());
        auto [ext_off, ext_len] = find_zoned_ext(img);
        CHECK(ext_len == (l == Layout::seed ? 56u : 44u));
        auto d = open_dev(img);
        CHECK(d->config().layout == l);
        CHECK(d->config().conventional_zones == 2);
        CHECK(d->config().max_append_bytes == (l == Layout::seed ? 64u * 1024 : 0u));
        REQUIRE(d->write(0, 4096, pattern(4096, 1)).ok());
        REQUIRE(d->write(2, 2 * 64 * kMiB, pattern(8192, 2)).ok());
        REQUIRE(d->close().ok());
        // Entries on disk use the layout's byte order and conventional bit.
        uint64_t meta = d->config().zonedmeta_offset;
        auto raw = read_raw(img, meta, 24);
        if (l == Layout::seed) {
            CHECK(load_le<uint64_t>(raw.data()) == (1ull << 59));
            CHECK(load_le<uint64_t>(raw.data() + 8) == ((1ull << 59) | 64 * kMiB));
            CHECK(load_le<uint64_t>(raw.data() + 16) == 2 * 64 * kMiB + 8192);
        } else {
            CHECK(load_be<uint64_t>(raw.data()) == (1ull << 63));
            CHECK(load_be<uint64_t>(raw.data() + 8) == ((1ull << 63) | 64 * kMiB));
            CHECK(load_be<uint64_t>(raw.data() + 16) == 2 * 64 * kMiB + 8192);
        }
        d = open_dev(img);
        CHECK(cond(*d, 0) == ZoneCond::not_wp);
        CHECK(cond(*d, 2) == ZoneCond::closed);
        CHECK(d->zone(2).wp == 2 * 64 * kMiB + 8192);
        std::vector<std::byte> buf(4096);
        REQUIRE(d->read(4096, buf).ok());
        CHECK(buf == pattern(4096, 1));
    }
}

namespace {
void put_be(std::byte* p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i, v >>= 8) p[i] = std::byte(v & 0xff);
}
void put_le(std::byte* p, uint64_t v) {
    for (int i = 0; i < 8; ++i, v >>= 8) p[i] = std::byte(v & 0xff);
}
}  // namespace

TEST_CASE("core: images written by an independent encoder from the spec tables open correctly") {
    for (Layout l : {Layout::seed, Layout::latest}) {
        CAPTURE(layout_name(l));
        TempDir t;
        const std::string img = t.file("a.qcow2");
        CreateSpec s = example_spec(l);
        REQUIRE(ZonedDevice::create(img, s, nullptr).ok());
        uint64_t meta;
        {
            auto d = open_dev(img, false);
            meta = d->config().zonedmeta_offset;
        }
        auto [off, len] = find_zoned_ext(img);
        // 10 zones of 64 MiB plus... no: 12 zones, 1 conventional, limits 3/5.
        const uint64_t Z = 64 * kMiB;
        std::vector<std::byte> e(len);
        e[0] = std::byte{1};
        if (l == Layout::seed) {
            put_be(&e[4], Z, 8);           // zone_size
            put_be(&e[12], 32 * kMiB, 8);  // zone_capacity
            put_be(&e[20], 1, 4);          // conventional_zones
            put_be(&e[24], 12, 4);         // nr_zones
            put_be(&e[28], 5, 4);          // max_active_zones
            put_be(&e[32], 3, 4);          // max_open_zones
            put_be(&e[36], 8192, 4);       // max_append_bytes
            put_be(&e[40], 96, 8);         // zonedmeta_size
            put_be(&e[48], meta, 8);       // zonedmeta_offset
        } else {
            put_be(&e[4], 12, 4);
            put_be(&e[8], Z, 8);
            put_be(&e[16], 32 * kMiB, 8);
            put_be(&e[24], meta, 8);
            put_be(&e[32], 1, 4);
            put_be(&e[36], 5, 4);
            put_be(&e[40], 3, 4);
        }
        write_raw(img, off, e);
        std::vector<std::byte> table(96);
        for (uint32_t z = 0; z < 12; ++z) {
            uint64_t wp = z * Z;
            if (z == 3) wp += 1 * kMiB;   // closed
            if (z == 4) wp += 32 * kMiB;  // full at capacity
            if (z == 5) wp += Z;          // full at zone end
            bool cnv = z == 0;
            if (l == Layout::seed)
                put_le(&table[z * 8], wp | (cnv ? 1ull << 59 : 0));
            else
                put_be(&table[z * 8], wp | (cnv ? 1ull << 63 : 0), 8);
        }
        write_raw(img, meta, table);

        auto d = open_dev(img);
        const ZonedConfig& c = d->config();
        CHECK(c.zone_capacity == 32 * kMiB);
        CHECK(c.conventional_zones == 1);
        CHECK(c.max_active_zones == 5);
        CHECK(c.max_open_zones == 3);
        CHECK(c.max_append_bytes == (l == Layout::seed ? 8192u : 0u));
        CHECK(cond(*d, 0) == ZoneCond::not_wp);
        CHECK(cond(*d, 1) == ZoneCond::empty);
        CHECK(cond(*d, 3) == ZoneCond::closed);
        CHECK(d->zone(3).wp == 3 * Z + kMiB);
        CHECK(cond(*d, 4) == ZoneCond::full);
        CHECK(cond(*d, 5) == ZoneCond::full);
        CHECK(d->counts().active == 1);
    }
}

namespace {
// Creates the example image, applies `patch` to the raw file, and returns the open error.
std::string open_error_after(const std::function<void(const std::string&, uint64_t ext_off, uint64_t meta)>& patch,
                             Layout l = Layout::seed) {
    TempDir t;
    const std::string img = t.file("a.qcow2");
    REQUIRE(ZonedDevice::create(img, example_spec(l), nullptr).ok());
    uint64_t meta;
    {
        auto d = open_dev(img, false);
        meta = d->config().zonedmeta_offset;
    }
    patch(img, find_zoned_ext(img).first, meta);
    DeviceOpenOptions o;
    o.writable = false;
    auto r = ZonedDevice::open(img, o);
    return r.ok() ? std::string() : r.error().message;
}
void patch_be(const std::string& img, uint64_t off, uint64_t v, int n) {
    std::vector<std::byte> b(n);
    put_be(b.data(), v, n);
    write_raw(img, off, b);
}
}  // namespace

TEST_CASE("core: open refuses nr_zones that does not match the virtual size") {
    auto m = open_error_after([](auto& img, uint64_t ext, uint64_t) { patch_be(img, ext + 24, 11, 4); });
    CHECK(m.find("nr_zones 11") != std::string::npos);
    CHECK(m.find("a.qcow2") != std::string::npos);
}

TEST_CASE("core: open refuses a zone capacity larger than the zone size") {
    auto m = open_error_after([](auto& img, uint64_t ext, uint64_t) { patch_be(img, ext + 16, 128 * kMiB, 8); },
                              Layout::latest);
    CHECK(m.find("larger than zone_size") != std::string::npos);
}

TEST_CASE("core: open refuses zonedmeta outside the file") {
    auto m = open_error_after([](auto& img, uint64_t ext, uint64_t) { patch_be(img, ext + 48, 1ull << 40, 8); });
    CHECK(m.find("outside the file") != std::string::npos);
}

TEST_CASE("core: open refuses a wrong zonedmeta_size") {
    auto m = open_error_after([](auto& img, uint64_t ext, uint64_t) { patch_be(img, ext + 40, 95, 8); });
    CHECK(m.find("zonedmeta_size 95") != std::string::npos);
}

TEST_CASE("core: open refuses a WP entry that is not 512-aligned") {
    auto m = open_error_after([](auto& img, uint64_t, uint64_t meta) {
        std::vector<std::byte> b(8);
        put_le(b.data(), 64 * kMiB + 100);
        write_raw(img, meta + 8, b);
    });
    CHECK(m.find("zone 1") != std::string::npos);
    CHECK(m.find("not 512-aligned") != std::string::npos);
}

TEST_CASE("core: open refuses incompatible bit 5 without the zoned extension") {
    auto m = open_error_after([](auto& img, uint64_t ext, uint64_t) { patch_be(img, ext - 8, 0x12345678, 4); });
    CHECK(m.find("extension is missing") != std::string::npos);
}

TEST_CASE("core: open refuses the zoned extension without incompatible bit 5") {
    auto m = open_error_after([](auto& img, uint64_t, uint64_t) {
        auto f = read_raw(img, 72, 8);
        uint64_t bits = load_be<uint64_t>(f.data()) & ~kIncompatZoned;
        patch_be(img, 72, bits, 8);
    });
    CHECK(m.find("bit 5") != std::string::npos);
}

TEST_CASE("core: a second writable open fails with image is in use") {
    TempDir t;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), example_spec(), nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    DeviceOpenOptions o;
    auto r = ZonedDevice::open(t.file("a.qcow2"), o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("image is in use") != std::string::npos);
    auto c = ZonedDevice::create(t.file("a.qcow2"), example_spec(), nullptr);
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().message.find("image is in use") != std::string::npos);
    o.writable = false;
    CHECK(ZonedDevice::open(t.file("a.qcow2"), o).ok());
}

TEST_CASE("core: check is clean on a used image and reports bad WP entries as corruption") {
    TempDir t;
    const std::string img = t.file("a.qcow2");
    REQUIRE(ZonedDevice::create(img, example_spec(), nullptr).ok());
    uint64_t meta;
    {
        auto d = open_dev(img);
        meta = d->config().zonedmeta_offset;
        REQUIRE(d->append(0, pattern(4096, 1)).ok());
        REQUIRE(d->finish_zone(1).ok());
        auto r = d->check(qcow2::RepairMode::none);
        REQUIRE(r.ok());
        CHECK(r->corruptions == 0);
        CHECK(r->leaks == 0);
    }
    std::vector<std::byte> b(8);
    put_le(b.data(), 5 * 64 * kMiB + 100);
    write_raw(img, meta + 5 * 8, b);
    DeviceOpenOptions o;
    o.commit_seconds = 0;
    o.tolerate_bad_write_pointers = true;
    std::vector<std::string> w;
    o.warnings = &w;
    auto d = ZonedDevice::open(img, o);
    REQUIRE(d.ok());
    CHECK(w.size() == 1);
    auto r = (*d)->check(qcow2::RepairMode::none);
    REQUIRE(r.ok());
    CHECK(r->corruptions == 1);
    r = (*d)->check(qcow2::RepairMode::all);
    REQUIRE(r.ok());
    CHECK(r->corruptions_fixed == 1);
    r = (*d)->check(qcow2::RepairMode::none);
    REQUIRE(r.ok());
    CHECK(r->corruptions == 0);
}

TEST_CASE("core: zone JSON has exactly the fields of the spec example") {
    TempDir t;
    CreateSpec s = example_spec();
    s.conventional_zones = 1;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), s, nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    REQUIRE(d->append(5, pattern(4096, 1)).ok());
    auto j = d->zone_json(5);
    // Byte for byte the example of SPEC section 4, keys in its order.
    CHECK(j.dump() ==
          R"({"zone":5,"type":"seq","cond":"open-implicit","cond_code":2,"start":335544320,"len":67108864,)"
          R"("capacity":67108864,"wp":335548416,"size":4096})");
    auto c = d->zone_json(0);
    CHECK(c["type"] == "cnv");
    CHECK(c["cond"] == "not-write-pointer");
    CHECK(c["size"] == 64 * kMiB);
    auto dj = d->device_json();
    CHECK(dj["layout"] == "seed");
    CHECK(dj["nr_zones"] == 12);
    CHECK(dj["sequential_zones"] == 11);
    CHECK(dj["conditions"]["open-implicit"] == 1);
    CHECK(dj["max_wro_seq_files"] == 6);
    CHECK(dj["nr_wro_seq_files"] == 1);
    CHECK(dj["max_active_seq_files"] == 8);
    CHECK(dj["nr_active_seq_files"] == 1);
    CHECK(dj.dump().size() < 2048);
}

TEST_CASE("core: the streamed zone JSON of report equals the JSON object, for every condition") {
    for (ZoneCond cond : {ZoneCond::not_wp, ZoneCond::empty, ZoneCond::implicit_open, ZoneCond::explicit_open,
                          ZoneCond::closed, ZoneCond::read_only, ZoneCond::full, ZoneCond::offline}) {
        ZoneInfo z;
        z.index = 1048575;
        z.type = cond == ZoneCond::not_wp ? ZoneType::conventional : ZoneType::sequential;
        z.cond = cond;
        z.start = uint64_t{1048575} << 26;
        z.len = 64 * kMiB;
        z.capacity = 48 * kMiB;
        z.wp = z.start + 12345;
        fmt::memory_buffer out;
        append_zone_json(out, z);
        CAPTURE(static_cast<int>(cond));
        CHECK(fmt::to_string(out) == zone_info_json(z).dump());
    }
}

// The example device without open/active limits and with the commit
// thread flushing every second, for the concurrency tests.
static std::unique_ptr<ZonedDevice> unlimited_device(const TempDir& t) {
    CreateSpec s = example_spec();
    s.max_open_zones = 0;
    s.max_active_zones = 0;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), s, nullptr).ok());
    DeviceOpenOptions o;
    o.commit_seconds = 1;
    auto r = ZonedDevice::open(t.file("a.qcow2"), o);
    REQUIRE(r.ok());
    return std::move(r).value();
}

TEST_CASE("core: threads appending to different zones in parallel keep every zone ordered") {
    TempDir t;
    auto d = unlimited_device(t);
    constexpr int kThreads = 6, kAppends = 100;
    std::vector<std::thread> th;
    std::atomic<int> failures{0};
    for (int i = 0; i < kThreads; ++i)
        th.emplace_back([&, i] {
            for (int k = 0; k < kAppends; ++k) {
                auto a = d->append(i, pattern(4096, static_cast<uint8_t>(k)));
                if (!a || *a != i * 64 * kMiB + k * 4096ull) failures++;
                if (k % 25 == 0 && !d->flush()) failures++;
            }
        });
    // Another thread contends for the same zones with misplaced writes.
    th.emplace_back([&] {
        for (int k = 0; k < 200; ++k) (void)d->write(k % kThreads, 1, pattern(512, 0));
    });
    for (auto& x : th) x.join();
    CHECK(failures == 0);
    REQUIRE(d->close().ok());
    auto d2 = open_dev(t.file("a.qcow2"));
    std::vector<std::byte> buf(4096);
    for (int i = 0; i < kThreads; ++i) {
        CHECK(d2->zone(i).wp == i * 64 * kMiB + kAppends * 4096ull);
        for (int k = 0; k < kAppends; k += 17) {
            REQUIRE(d2->read(i * 64 * kMiB + k * 4096ull, buf).ok());
            CHECK(buf == pattern(4096, static_cast<uint8_t>(k)));
        }
    }
}

TEST_CASE("core: read-only device refuses writes with EROFS") {
    TempDir t;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), example_spec(), nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"), false);
    CHECK(err(d->append(0, pattern(512, 1))) == EROFS);
    CHECK(err(d->reset_zone(0)) == EROFS);
    CHECK(d->flush().ok());
}

TEST_CASE("core: a forced offline zone fails reads with EIO") {
    TempDir t;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), example_spec(), nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    REQUIRE(d->set_zone_condition(2, ZoneCond::offline).ok());
    std::vector<std::byte> buf(512);
    CHECK(err(d->read(2 * 64 * kMiB, buf)) == EIO);
    CHECK(d->read(0, buf).ok());
    CHECK(err(d->append(2, buf)) == EIO);
}

TEST_CASE("core: a runt last zone is shorter and fills to its own capacity") {
    TempDir t;
    CreateSpec s = example_spec();
    s.virtual_size = 768 * kMiB + 2 * kMiB;
    s.max_open_zones = 0;
    s.max_active_zones = 0;
    REQUIRE(ZonedDevice::create(t.file("a.qcow2"), s, nullptr).ok());
    auto d = open_dev(t.file("a.qcow2"));
    REQUIRE(d->nr_zones() == 13);
    ZoneInfo last = d->zone(12);
    CHECK(last.len == 2 * kMiB);
    CHECK(last.capacity == 2 * kMiB);
    REQUIRE(d->write(12, last.start, std::vector<std::byte>(2 * kMiB, std::byte{7})).ok());
    CHECK(cond(*d, 12) == ZoneCond::full);
    REQUIRE(d->close().ok());
    d = open_dev(t.file("a.qcow2"));
    CHECK(cond(*d, 12) == ZoneCond::full);
    CHECK(d->zone(12).wp == last.start + 2 * kMiB);
}

namespace {
struct RulePatch {
    const char* rule;
    uint64_t offset;  // into the seed extension payload
    uint64_t value;
    int width;
    const char* expect;
};
}  // namespace

TEST_CASE("core: open checks every rule of the zoned extension, each with its own message") {
    const RulePatch patches[] = {
        {"zoned byte must be 1", 0, 2, 1, "zoned=2"},
        {"zone_size a power of two", 4, 48 * kMiB, 8, "not a power of two"},
        {"zone_size a multiple of the cluster size", 4, 32 * 1024, 8, "multiple of the cluster size"},
        {"zone_capacity positive", 12, 0, 8, "zone_capacity is 0"},
        {"zone_capacity at most zone_size", 12, 64 * kMiB + 512, 8, "larger than zone_size"},
        {"zone_capacity a multiple of 512", 12, 64 * kMiB - 100, 8, "not a multiple of 512"},
        {"conventional_zones below nr_zones", 20, 12, 4, "conventional_zones 12 is not below"},
        {"nr_zones = ceil(virtual size / zone_size)", 24, 13, 4, "nr_zones 13"},
        {"max_append_bytes a multiple of 512", 36, 1000, 4, "max_append_bytes 1000"},
        {"max_append_bytes below capacity", 36, 64 * kMiB, 4, "not below zone_capacity"},
        {"zonedmeta_size = nr_zones * 8", 40, 8, 8, "zonedmeta_size 8"},
        {"zonedmeta cluster-aligned", 48, 0x40200, 8, "not aligned"},
        {"zonedmeta inside the file", 48, 1ull << 40, 8, "outside the file"},
    };
    for (const RulePatch& p : patches) {
        SUBCASE(p.rule) {
            auto m = open_error_after([&](auto& img, uint64_t ext, uint64_t) {
                std::vector<std::byte> b(p.width);
                put_be(b.data(), p.value, p.width);
                write_raw(img, ext + p.offset, b);
            });
            CHECK_MESSAGE(m.find(p.expect) != std::string::npos, m);
            CHECK(m.find("a.qcow2: ") != std::string::npos);
            CHECK(m.find('\n') == std::string::npos);
        }
    }
}

TEST_CASE("core: open clamps over-large stored limits with a warning") {
    TempDir t;
    const std::string img = t.file("a.qcow2");
    REQUIRE(ZonedDevice::create(img, example_spec(), nullptr).ok());
    auto ext = find_zoned_ext(img).first;
    std::vector<std::byte> b(4);
    put_be(b.data(), 40, 4);
    write_raw(img, ext + 28, b);  // max_active_zones 40 > 12 sequential zones
    DeviceOpenOptions o;
    o.writable = false;
    std::vector<std::string> w;
    o.warnings = &w;
    auto d = ZonedDevice::open(img, o);
    REQUIRE(d.ok());
    CHECK((*d)->config().max_active_zones == 12);
    REQUIRE(w.size() == 1);
    CHECK(w[0].find("max_active_zones 40") != std::string::npos);
}

TEST_CASE("core: create checks every rule, each with its own message, and leaves no file") {
    struct Case {
        const char* rule;
        std::function<void(CreateSpec&)> set;
        const char* expect;
    };
    const Case cases[] = {
        {"size positive", [](CreateSpec& s) { s.virtual_size = 0; }, "size must be positive"},
        {"zone_size a power of two", [](CreateSpec& s) { s.zone_size = 48 * kMiB; }, "not a power of two"},
        {"zone_size a multiple of the cluster size", [](CreateSpec& s) { s.zone_size = 32 * 1024; s.zone_capacity = 32 * 1024; s.max_append_bytes = 4096; },
         "multiple of the cluster size"},
        {"zone_capacity positive", [](CreateSpec& s) { s.zone_capacity = 0; }, "zone_capacity is 0"},
        {"zone_capacity at most zone_size", [](CreateSpec& s) { s.zone_capacity = 128 * kMiB; }, "larger than zone_size"},
        {"zone_capacity a multiple of 512", [](CreateSpec& s) { s.zone_capacity = 1000 * 1000; }, "not a multiple of 512"},
        {"conventional_zones below nr_zones", [](CreateSpec& s) { s.conventional_zones = 12; }, "conventional_zones 12"},
        {"max_append_bytes a multiple of 512", [](CreateSpec& s) { s.max_append_bytes = 1000; }, "max_append_bytes 1000"},
        {"max_append_bytes below capacity", [](CreateSpec& s) { s.max_append_bytes = 64 * kMiB; }, "not below zone_capacity"},
        {"cluster_size a power of two", [](CreateSpec& s) { s.cluster_size = 3000; }, "cluster_size 3000"},
    };
    for (const Case& c : cases) {
        SUBCASE(c.rule) {
            TempDir t;
            CreateSpec s = example_spec();
            c.set(s);
            auto r = ZonedDevice::create(t.file("a.qcow2"), s, nullptr);
            REQUIRE_FALSE(r.ok());
            CHECK_MESSAGE(r.error().message.find(c.expect) != std::string::npos, r.error().message);
            CHECK(std::filesystem::is_empty(t.path));
        }
    }
}

TEST_CASE("core: create replaces an existing file that is not in use, as qemu-img does") {
    TempDir t;
    const std::string img = t.file("a.qcow2");
    {
        std::vector<std::byte> junk(12345, std::byte{0x42});
        int fd = ::open(img.c_str(), O_CREAT | O_WRONLY, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
        ::close(fd);
    }
    REQUIRE(ZonedDevice::create(img, example_spec(), nullptr).ok());
    auto d = open_dev(img);
    CHECK(d->nr_zones() == 12);
    std::vector<std::string> left;
    for (auto& e : std::filesystem::directory_iterator(t.path)) left.push_back(e.path().filename());
    CHECK(left == std::vector<std::string>{"a.qcow2"});
}

TEST_CASE("core: open refuses zonedmeta overlapping the L1 or refcount table") {
    for (uint64_t header_field : {40u, 48u}) {  // l1_table_offset, refcount_table_offset
        CAPTURE(header_field);
        auto m = open_error_after([&](auto& img, uint64_t ext, uint64_t) {
            auto f = read_raw(img, header_field, 8);
            patch_be(img, ext + 48, load_be<uint64_t>(f.data()), 8);
        });
        CHECK(m.find(header_field == 40 ? "overlaps the L1 table" : "overlaps the refcount table") !=
              std::string::npos);
    }
}

TEST_CASE("core: flushes racing with appends that allocate new clusters lose no data") {
    // Every 16th 4 KiB append starts a new 64 KiB cluster while other threads
    // (and the commit thread) flush; data of clusters allocated during a
    // flush must survive it.
    for (int round = 0; round < 10; ++round) {
        CAPTURE(round);
        TempDir t;
        auto d = unlimited_device(t);
        constexpr int kThreads = 6, kAppends = 100;
        std::vector<std::thread> th;
        for (int i = 0; i < kThreads; ++i)
            th.emplace_back([&, i] {
                for (int k = 0; k < kAppends; ++k) {
                    (void)d->append(i, pattern(4096, static_cast<uint8_t>(k + 1)));
                    if (k % 25 == 0) (void)d->flush();
                }
            });
        for (auto& x : th) x.join();
        std::vector<std::byte> buf(4096);
        int lost = 0;
        for (int i = 0; i < kThreads; ++i)
            for (int k = 0; k < kAppends; ++k) {
                REQUIRE(d->read(i * 64 * kMiB + k * 4096ull, buf).ok());
                lost += buf != pattern(4096, static_cast<uint8_t>(k + 1));
            }
        REQUIRE(lost == 0);
    }
}
