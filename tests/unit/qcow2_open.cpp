// Opening images: feature-bit policy, refusals of what we do not support,
// rejection of damaged headers, header rewrites, and the codecs.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

#include "qcow2/endian.h"
#include "qcow2/image.h"
#include "qcow2/l2_entry.h"
#include "tests/unit/qcow2_test_util.h"

using namespace zqfs;
using namespace zqfs::qcow2;
using zqfs::testing::pattern;
using zqfs::testing::read_whole_file;
using zqfs::testing::run;
using zqfs::testing::TempDir;

namespace {

void create_plain(const std::string& path, uint64_t size = 16 << 20, uint32_t cluster = 65536,
                  std::vector<Extension> extra = {}) {
    auto f = create_host_file(path);
    REQUIRE(f.ok());
    CreateOptions o;
    o.virtual_size = size;
    o.cluster_size = cluster;
    o.extra_extensions = std::move(extra);
    auto img = Image::create(std::move(f).value(), o);
    REQUIRE(img.ok());
    auto data = pattern(3 * cluster, 1);
    REQUIRE((*img)->write(0, data).ok());
    REQUIRE((*img)->close().ok());
}

Result<std::unique_ptr<Image>> try_open(const std::string& path, bool writable, uint64_t accepted = 0) {
    auto f = open_host_file(path, writable ? OpenAccess::read_write : OpenAccess::read_only);
    if (!f) return f.error();
    OpenOptions o;
    o.writable = writable;
    o.accepted_incompatible_bits = accepted;
    return Image::open(std::move(f).value(), o);
}

template <class T>
void patch_be(const std::string& path, uint64_t off, T v) {
    std::byte b[sizeof(T)];
    store_be<T>(b, v);
    int fd = ::open(path.c_str(), O_WRONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pwrite(fd, b, sizeof b, static_cast<off_t>(off)) == static_cast<ssize_t>(sizeof b));
    ::close(fd);
}

template <class T>
T read_be(const std::string& path, uint64_t off) {
    std::byte b[sizeof(T)];
    int fd = ::open(path.c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    REQUIRE(::pread(fd, b, sizeof b, static_cast<off_t>(off)) == static_cast<ssize_t>(sizeof b));
    ::close(fd);
    return load_be<T>(b);
}

std::string open_error(const std::string& path, bool writable) {
    auto r = try_open(path, writable);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
}

bool contains(const std::string& s, const std::string& what) { return s.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("qcow2: unknown incompatible bit is refused, naming the bit") {
    TempDir d;
    auto p = d.file("i.qcow2");
    create_plain(p);
    patch_be<uint64_t>(p, 72, 1ull << 7);
    auto msg = open_error(p, false);
    CHECK_MESSAGE(contains(msg, "incompatible feature bit 7"), msg);
    // An upper layer that understands the bit may accept it.
    CHECK(try_open(p, false, 1ull << 7).ok());
}

TEST_CASE("qcow2: corrupt bit refuses read-write, allows read-only") {
    TempDir d;
    auto p = d.file("c.qcow2");
    create_plain(p);
    patch_be<uint64_t>(p, 72, kIncompatCorrupt);
    CHECK(contains(open_error(p, true), "marked corrupt"));
    CHECK(try_open(p, false).ok());
}

TEST_CASE("qcow2: dirty bit repairs refcounts on read-write open") {
    TempDir d;
    auto p = d.file("d.qcow2");
    create_plain(p);
    // Zero the refcount of the first data cluster (cluster 4: after header,
    // refcount table, refcount block, L1) and of the L2 table, then mark dirty.
    uint64_t rb = read_be<uint64_t>(p, 65536);  // refcount table entry 0
    REQUIRE(rb != 0);
    patch_be<uint16_t>(p, rb + 4 * 2, 0);
    patch_be<uint16_t>(p, rb + 5 * 2, 0);
    patch_be<uint64_t>(p, 72, kIncompatDirty);
    std::string out;
    CHECK(run("qemu-img check " + p + " >/dev/null 2>&1") != 0);
    {
        auto img = try_open(p, true);
        REQUIRE_MESSAGE(img.ok(), (img.ok() ? "" : img.error().message));
        CHECK(((*img)->header().incompatible_features & kIncompatDirty) == 0);
        std::vector<std::byte> back(3 * 65536);
        REQUIRE((*img)->read(0, back).ok());
        CHECK(back == pattern(3 * 65536, 1));
        REQUIRE((*img)->close().ok());
    }
    CHECK((read_be<uint64_t>(p, 72) & kIncompatDirty) == 0);
    int rc = run("qemu-img check " + p + " 2>&1", &out);
    CHECK_MESSAGE(rc == 0, out);
}

TEST_CASE("qcow2: unknown autoclear bits are cleared on read-write open") {
    TempDir d;
    auto p = d.file("a.qcow2");
    create_plain(p);
    patch_be<uint64_t>(p, 88, 0x8ull);
    { auto img = try_open(p, false); REQUIRE(img.ok()); }
    CHECK(read_be<uint64_t>(p, 88) == 0x8);  // read-only open changes nothing
    { auto img = try_open(p, true); REQUIRE(img.ok()); REQUIRE((*img)->close().ok()); }
    CHECK(read_be<uint64_t>(p, 88) == 0);
}

TEST_CASE("qcow2: unknown header extensions are kept byte-for-byte on rewrite") {
    TempDir d;
    auto p = d.file("e.qcow2");
    Extension odd{0x12345678, {}};
    for (int i = 0; i < 13; ++i) odd.data.push_back(static_cast<std::byte>(0xa0 + i));
    create_plain(p, 16 << 20, 65536, {odd});
    {
        auto img = try_open(p, true);
        REQUIRE(img.ok());
        std::vector<std::byte> other(8, std::byte{0x55});
        REQUIRE((*img)->update_extension(0x0badcafe, other).ok());
        REQUIRE((*img)->close().ok());
    }
    auto img = try_open(p, false);
    REQUIRE(img.ok());
    const Extension* e = (*img)->header().find_extension(0x12345678);
    REQUIRE(e != nullptr);
    CHECK(e->data == odd.data);
    REQUIRE((*img)->header().find_extension(0x0badcafe) != nullptr);
    CHECK(run("qemu-img check " + p + " >/dev/null 2>&1") == 0);
}

TEST_CASE("qcow2: feature-name table is written like qemu-img writes it") {
    TempDir d;
    auto p = d.file("f.qcow2");
    create_plain(p);
    auto img = try_open(p, false);
    REQUIRE(img.ok());
    const auto& names = (*img)->header().feature_names;
    const auto want = standard_feature_names();
    REQUIRE(names.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        CHECK(names[i].type == want[i].type);
        CHECK(names[i].bit == want[i].bit);
        CHECK(names[i].name == want[i].name);
    }
}

TEST_CASE("qcow2: backing files, external data files and encryption are refused") {
    TempDir d;
    auto base = d.file("base.qcow2"), over = d.file("over.qcow2"), ext = d.file("ext.qcow2"), enc = d.file("enc.qcow2");
    REQUIRE(run("qemu-img create -q -f qcow2 " + base + " 1M") == 0);
    REQUIRE(run("qemu-img create -q -f qcow2 -F qcow2 -b " + base + " " + over) == 0);
    CHECK(contains(open_error(over, false), "backing file"));
    REQUIRE(run("qemu-img create -q -f qcow2 -o data_file=" + d.file("data.raw") + " " + ext + " 1M") == 0);
    CHECK(contains(open_error(ext, false), "external data file"));
    create_plain(enc);
    patch_be<uint32_t>(enc, 32, 1);  // crypt_method AES
    CHECK(contains(open_error(enc, false), "encrypted"));
}

TEST_CASE("qcow2: version 2 images open read-only only") {
    TempDir d;
    auto p = d.file("v2.qcow2");
    REQUIRE(run("qemu-img create -q -f qcow2 -o compat=0.10 " + p + " 1M") == 0);
    CHECK(try_open(p, false).ok());
    CHECK(contains(open_error(p, true), "version 2"));
}

TEST_CASE("qcow2: damaged headers are refused with a clear message") {
    TempDir d;
    auto p = d.file("h.qcow2");
    auto fresh = [&] {
        std::filesystem::remove(p);
        create_plain(p);
    };
    fresh();
    patch_be<uint32_t>(p, 0, 0xdeadbeef);
    CHECK(contains(open_error(p, false), "bad magic"));
    fresh();
    patch_be<uint32_t>(p, 4, 4);
    CHECK(contains(open_error(p, false), "version 4"));
    fresh();
    patch_be<uint32_t>(p, 20, 30);
    CHECK(contains(open_error(p, false), "cluster_bits"));
    fresh();
    patch_be<uint64_t>(p, 40, 1ull << 50);  // L1 offset far past the end
    CHECK(contains(open_error(p, false), "outside the file"));
    fresh();
    patch_be<uint64_t>(p, 40, ~uint64_t{0} - 65535);  // L1 offset + size wraps around 2^64
    CHECK(contains(open_error(p, false), "outside the file"));
    fresh();
    patch_be<uint64_t>(p, 48, ~uint64_t{0} - 65535);  // refcount table offset wraps too
    CHECK(contains(open_error(p, false), "outside the file"));
    fresh();
    patch_be<uint64_t>(p, 8, ~uint64_t{0} - 47);  // backing file name offset wraps (fuzzer finding)
    patch_be<uint32_t>(p, 16, 8);
    CHECK(contains(open_error(p, false), "outside the header cluster"));
    fresh();
    uint64_t rt0 = read_be<uint64_t>(p, 48);
    patch_be<uint64_t>(p, rt0, ~uint64_t{0} - 65535);  // refcount block offset wraps
    CHECK(contains(open_error(p, false), "past the end"));
    fresh();
    patch_be<uint32_t>(p, 60, 0x7fffffffu);  // absurd snapshot count (fuzzer finding: unbounded check)
    patch_be<uint64_t>(p, 64, 65536);
    CHECK(contains(open_error(p, false), "snapshots is absurd"));
    fresh();
    patch_be<uint32_t>(p, 36, 0xffffffffu);  // absurd L1 size
    CHECK(contains(open_error(p, false), "absurd"));
    fresh();
    patch_be<uint64_t>(p, 24, 1ull << 63);  // absurd virtual size
    CHECK(contains(open_error(p, false), "absurd"));
    fresh();
    patch_be<uint64_t>(p, 48, read_be<uint64_t>(p, 40));  // refcount table on top of L1
    CHECK(contains(open_error(p, false), "overlap"));
    fresh();
    patch_be<uint32_t>(p, 96, 7);
    CHECK(contains(open_error(p, false), "refcount_order"));
    fresh();
    REQUIRE(::truncate(p.c_str(), 50) == 0);
    CHECK(contains(open_error(p, false), "too short"));
    fresh();
    REQUIRE(::truncate(p.c_str(), 65536) == 0);  // header only: tables gone
    CHECK(contains(open_error(p, false), "outside the file"));
    fresh();
    uint64_t rt = read_be<uint64_t>(p, 48);
    patch_be<uint64_t>(p, rt, 1ull << 40);  // refcount block past the end
    CHECK(contains(open_error(p, false), "past the end"));
    fresh();
    uint64_t l1 = read_be<uint64_t>(p, 40);
    patch_be<uint64_t>(p, l1, kOflagCopied | 0x123);  // unaligned L2 offset
    CHECK(contains(open_error(p, false), "L1 entry 0"));
}

TEST_CASE("qcow2: compressed cluster descriptors round-trip for every cluster size") {
    for (unsigned bits = 9; bits <= 21; ++bits) {
        CAPTURE(bits);
        CompressedLayout l(bits);
        const uint64_t cs = 1ull << bits;
        for (uint64_t host : {uint64_t{512}, uint64_t{cs * 7 + 3}, uint64_t{(uint64_t{1} << 40) + 1000}}) {
            for (uint64_t bytes : {uint64_t{1}, uint64_t{511}, uint64_t{513}, cs - 1}) {
                uint64_t raw = l.encode(host, bytes);
                CHECK((raw & kOflagCompressed) != 0);
                CHECK(l.offset(raw) == host);
                // The decoded size covers the data and ends on a sector boundary.
                CHECK(l.size(raw) >= bytes);
                CHECK((host + l.size(raw)) % 512 == 0);
                CHECK(l.size(raw) < bytes + 512);
            }
        }
    }
}

TEST_CASE("qcow2: L2 entries classify as qemu defines them") {
    L2Entry e;
    CHECK(classify(e, false) == ClusterKind::unallocated);
    e.raw = kOflagZero;
    CHECK(classify(e, false) == ClusterKind::zero_plain);
    e.raw = kOflagZero | 0x30000 | kOflagCopied;
    CHECK(classify(e, false) == ClusterKind::zero_alloc);
    e.raw = 0x30000 | kOflagCopied;
    CHECK(classify(e, false) == ClusterKind::normal);
    CHECK(e.host_offset() == 0x30000);
    e.raw = kOflagCompressed | 0x1234;
    CHECK(classify(e, false) == ClusterKind::compressed);
    L2Entry x;
    x.bitmap = 0xffffffffull << 32;
    CHECK(classify(x, true) == ClusterKind::zero_plain);
    x.bitmap = 1;
    x.raw = 0x40000;
    CHECK(classify(x, true) == ClusterKind::normal);
}

TEST_CASE("qcow2: refcounts of every width store values up to their maximum") {
    for (uint32_t bits : {1u, 2u, 4u, 8u, 16u, 32u, 64u}) {
        CAPTURE(bits);
        TempDir d;
        auto p = d.file("w.qcow2");
        auto f = create_host_file(p);
        REQUIRE(f.ok());
        CreateOptions o;
        o.virtual_size = 1 << 20;
        o.cluster_size = 512;
        o.refcount_bits = bits;
        {
        auto img = Image::create(std::move(f).value(), o);
        REQUIRE(img.ok());
        // Compressed writes of the same small cluster share host clusters up
        // to the refcount maximum, then move on: the image stays consistent.
        std::vector<std::byte> text(512, std::byte{'z'});
        for (uint64_t off = 0; off < (1 << 20); off += 512) REQUIRE((*img)->write_compressed(off, text).ok());
        REQUIRE((*img)->close().ok());
        }
        std::string out;
        CHECK_MESSAGE(run("qemu-img check " + p + " 2>&1", &out) == 0, out);
        REQUIRE(run("qemu-img convert -O raw " + p + " " + d.file("r.raw")) == 0);
        REQUIRE(run("head -c 1048576 /dev/zero | tr '\\0' z > " + d.file("z.raw")) == 0);
        CHECK(run("cmp " + d.file("r.raw") + " " + d.file("z.raw")) == 0);
    }
}

TEST_CASE("qcow2: a tiny metadata cache evicts and flushes without losing data") {
    TempDir d;
    auto p = d.file("t.qcow2");
    const uint64_t size = 256 << 20;
    std::vector<std::pair<uint64_t, uint32_t>> writes;
    {
        auto f = create_host_file(p);
        REQUIRE(f.ok());
        CreateOptions o;
        o.virtual_size = size;
        o.cluster_size = 512;  // one L2 table per 32 KiB of disk: many tables
        o.metadata_cache_bytes = 16 * 1024;
        auto img = Image::create(std::move(f).value(), o);
        REQUIRE(img.ok());
        for (uint32_t i = 0; i < 400; ++i) {
            uint64_t off = (uint64_t{i} * 7919 % 8000) * 32768;
            REQUIRE((*img)->write(off, pattern(1024, i)).ok());
            writes.emplace_back(off, i);
        }
        for (auto [off, seed] : writes) {
            std::vector<std::byte> back(1024);
            REQUIRE((*img)->read(off, back).ok());
            CHECK(back == pattern(1024, seed));
        }
        REQUIRE((*img)->close().ok());
    }
    std::string out;
    CHECK_MESSAGE(run("qemu-img check " + p + " 2>&1", &out) == 0, out);
}

TEST_CASE("qcow2: refcounts past the end of the file are leaks, never a reason to grow it") {
    TempDir d;
    auto p = d.file("eof.qcow2");
    create_plain(p);
    const uint64_t size_before = std::filesystem::file_size(p);
    // Refcount 1 for a cluster 1000 clusters past the end of the file
    // (16-bit refcounts; refcount block 0 covers the first 2 GiB).
    const uint64_t far = size_before / 65536 + 1000;
    uint64_t rb = read_be<uint64_t>(p, 65536);
    patch_be<uint16_t>(p, rb + far * 2, 1);
    patch_be<uint64_t>(p, 72, kIncompatDirty);  // a dirty image is repaired on open
    {
        auto img = try_open(p, true);
        REQUIRE(img.ok());
        REQUIRE((*img)->close().ok());
    }
    CHECK(std::filesystem::file_size(p) == size_before);
    {
        auto img = try_open(p, true);
        REQUIRE(img.ok());
        auto r = (*img)->check(RepairMode::none, {});
        REQUIRE(r.ok());
        CHECK(r->corruptions == 0);
        CHECK(r->leaks == 0);  // the dirty-bit repair already dropped it
        REQUIRE((*img)->close().ok());
    }
    // Without the dirty bit the leak is reported, and -r leaks clears it.
    patch_be<uint16_t>(p, rb + far * 2, 1);
    {
        auto img = try_open(p, true);
        REQUIRE(img.ok());
        auto r = (*img)->check(RepairMode::none, {});
        REQUIRE(r.ok());
        CHECK(r->leaks == 1);
        auto fixed = (*img)->check(RepairMode::leaks, {});
        REQUIRE(fixed.ok());
        CHECK(fixed->leaks_fixed == 1);
        REQUIRE((*img)->close().ok());
    }
    CHECK(std::filesystem::file_size(p) == size_before);
    std::string out;
    CHECK_MESSAGE(run("qemu-img check " + p + " 2>&1", &out) == 0, out);
}

TEST_CASE("qcow2: images with internal snapshots read and check like qemu-img says") {
    TempDir d;
    auto p = d.file("snap.qcow2");
    REQUIRE(run("qemu-img create -q -f qcow2 " + p + " 4M") == 0);
    REQUIRE(run("qemu-io -c 'write -P 0x61 0 1M' " + p + " >/dev/null") == 0);
    REQUIRE(run("qemu-img snapshot -c one " + p) == 0);
    REQUIRE(run("qemu-io -c 'write -P 0x62 512k 1M' -c 'discard 3M 64k' " + p + " >/dev/null") == 0);
    REQUIRE(run("qemu-img snapshot -c two " + p) == 0);
    REQUIRE(run("qemu-io -c 'write -P 0x63 0 64k' " + p + " >/dev/null") == 0);
    auto img = try_open(p, false);
    REQUIRE(img.ok());
    // Shared clusters have refcount 2 or 3; the recount over the snapshots'
    // L1 tables must agree with them exactly.
    auto r = (*img)->check(RepairMode::none, {});
    REQUIRE(r.ok());
    CHECK(r->corruptions == 0);
    CHECK(r->leaks == 0);
    REQUIRE(run("qemu-img convert -O raw " + p + " " + d.file("q.raw")) == 0);
    auto want = read_whole_file(d.file("q.raw"));
    std::vector<std::byte> got(4 << 20);
    REQUIRE((*img)->read(0, got).ok());
    CHECK(got == want);
    CHECK(contains(open_error(p, true), "snapshots"));  // read-write is refused
}
