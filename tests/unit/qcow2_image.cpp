// Engine behaviour through the virtual-disk API, cross-checked with qemu-img.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <thread>

#include "qcow2/image.h"
#include "tests/unit/qcow2_test_util.h"

using namespace zqfs;
using namespace zqfs::qcow2;
using zqfs::testing::pattern;
using zqfs::testing::read_whole_file;
using zqfs::testing::run;
using zqfs::testing::TempDir;

namespace {

std::unique_ptr<Image> make_image(const std::string& path, uint64_t size, uint32_t cluster, uint32_t refbits = 16) {
    auto f = create_host_file(path);
    REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
    CreateOptions o;
    o.virtual_size = size;
    o.cluster_size = cluster;
    o.refcount_bits = refbits;
    auto img = Image::create(std::move(f).value(), o);
    REQUIRE_MESSAGE(img.ok(), (img.ok() ? "" : img.error().message));
    return std::move(img).value();
}

std::unique_ptr<Image> open_image(const std::string& path, bool writable) {
    auto f = open_host_file(path, writable ? OpenAccess::read_write : OpenAccess::read_only);
    REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
    OpenOptions o;
    o.writable = writable;
    auto img = Image::open(std::move(f).value(), o);
    REQUIRE_MESSAGE(img.ok(), (img.ok() ? "" : img.error().message));
    return std::move(img).value();
}

// Checks an image with qemu-img: no errors, no leaks; raw export equals `expect`.
void expect_qemu_agrees(const TempDir& d, const std::string& path, const std::vector<std::byte>& expect) {
    std::string out;
    int rc = run("qemu-img check " + path + " 2>&1", &out);
    CHECK_MESSAGE(rc == 0, out);
    const std::string raw = d.file("export.raw");
    REQUIRE(run("qemu-img convert -O raw " + path + " " + raw) == 0);
    auto got = read_whole_file(raw);
    REQUIRE(got.size() == expect.size());
    CHECK(got == expect);
}

}  // namespace

TEST_CASE("qcow2: a new image passes qemu-img check and reads as zeros") {
    TempDir d;
    auto path = d.file("a.qcow2");
    { auto img = make_image(path, 64 << 20, 65536); REQUIRE(img->close().ok()); }
    expect_qemu_agrees(d, path, std::vector<std::byte>(64 << 20));
}

TEST_CASE("qcow2: written data reads back, survives reopen and matches qemu-img") {
    for (uint32_t cluster : {512u, 4096u, 65536u, 2u << 20}) {
        for (uint32_t bits : {1u, 16u, 64u}) {
            CAPTURE(cluster);
            CAPTURE(bits);
            TempDir d;
            auto path = d.file("w.qcow2");
            const uint64_t size = 8 << 20;
            std::vector<std::byte> model(size);
            {
                auto img = make_image(path, size, cluster, bits);
                std::mt19937 rng(cluster + bits);
                for (int i = 0; i < 60; ++i) {
                    uint64_t off = rng() % size;
                    uint64_t len = std::min<uint64_t>(size - off, 1 + rng() % (300 * 1024));
                    int op = static_cast<int>(rng() % 10);
                    if (op < 7) {
                        auto data = pattern(len, static_cast<uint32_t>(rng()));
                        REQUIRE(img->write(off, data).ok());
                        std::memcpy(model.data() + off, data.data(), len);
                    } else if (op < 9) {
                        auto s = img->discard(off, len);
                        REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
                        std::memset(model.data() + off, 0, len);
                    } else {
                        REQUIRE(img->write_zeroes(off, len).ok());
                        std::memset(model.data() + off, 0, len);
                    }
                    if (i % 20 == 0) REQUIRE(img->flush().ok());
                }
                std::vector<std::byte> back(size);
                REQUIRE(img->read(0, back).ok());
                CHECK(back == model);
                REQUIRE(img->close().ok());
            }
            {
                auto img = open_image(path, false);
                std::vector<std::byte> back(size);
                REQUIRE(img->read(0, back).ok());
                CHECK(back == model);
            }
            expect_qemu_agrees(d, path, model);
        }
    }
}

TEST_CASE("qcow2: refcount table grows past several refcount blocks") {
    TempDir d;
    auto path = d.file("g.qcow2");
    const uint64_t size = 64 << 20;
    std::vector<std::byte> model(size);
    {
        // 512-byte clusters with 64-bit refcounts: 64 clusters per refcount
        // block, so a few MiB of data needs hundreds of blocks and a table
        // that outgrows its first cluster many times.
        auto img = make_image(path, size, 512, 64);
        for (uint64_t off = 0; off < (6 << 20); off += 96 * 1024) {
            auto data = pattern(40 * 1024, static_cast<uint32_t>(off));
            REQUIRE(img->write(off, data).ok());
            std::memcpy(model.data() + off, data.data(), data.size());
        }
        REQUIRE(img->close().ok());
        CHECK(img->header().refcount_table_clusters > 1);
    }
    expect_qemu_agrees(d, path, model);
}

TEST_CASE("qcow2: freed clusters are reused and host space is punched") {
    TempDir d;
    auto path = d.file("r.qcow2");
    auto data = pattern(16 << 20, 7);
    {
    auto img = make_image(path, 64 << 20, 65536);
    REQUIRE(img->write(0, data).ok());
    REQUIRE(img->flush().ok());
    auto before = img->stats().value();
    REQUIRE(img->discard(0, 16 << 20).ok());
    REQUIRE(img->flush().ok());
    auto after = img->stats().value();
    CHECK(after.host_allocated_bytes + (15 << 20) < before.host_allocated_bytes);
    REQUIRE(img->write(32 << 20, data).ok());
    REQUIRE(img->flush().ok());
    auto again = img->stats().value();
    CHECK(again.host_file_size == before.host_file_size);  // reused, not appended
    REQUIRE(img->close().ok());
    }
    std::vector<std::byte> model(64 << 20);
    std::memcpy(model.data() + (32 << 20), data.data(), data.size());
    expect_qemu_agrees(d, path, model);
}

TEST_CASE("qcow2: compressed clusters written by us read back through qemu-img") {
    TempDir d;
    auto path = d.file("c.qcow2");
    std::vector<std::byte> model(4 << 20);
    {
        auto img = make_image(path, 4 << 20, 65536);
        std::vector<std::byte> text(65536);
        for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<std::byte>("zoned storage "[i % 14]);
        for (uint64_t off = 0; off < (2 << 20); off += 65536) {
            REQUIRE(img->write_compressed(off, text).ok());
            std::memcpy(model.data() + off, text.data(), text.size());
        }
        // Overwrite part of a compressed cluster: read-modify-write.
        auto patch = pattern(1000, 3);
        REQUIRE(img->write(65536 + 100, patch).ok());
        std::memcpy(model.data() + 65536 + 100, patch.data(), patch.size());
        std::vector<std::byte> back(4 << 20);
        REQUIRE(img->read(0, back).ok());
        CHECK(back == model);
        REQUIRE(img->close().ok());
        CHECK(img->stats().value().host_file_size < (1 << 20));
    }
    expect_qemu_agrees(d, path, model);
}

TEST_CASE("qcow2: parallel writers to different clusters") {
    TempDir d;
    auto path = d.file("p.qcow2");
    const uint64_t size = 64 << 20;
    {
    auto img = make_image(path, size, 65536);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < 16; ++i) {
                auto data = pattern(1 << 20, static_cast<uint32_t>(t * 100 + i));
                CHECK(img->write((uint64_t(t) * 16 + i) << 20, data).ok());
                if (i % 5 == 0) CHECK(img->flush().ok());
            }
        });
    }
    for (auto& t : ts) t.join();
    REQUIRE(img->close().ok());
    }
    std::vector<std::byte> model(size);
    for (int t = 0; t < 4; ++t)
        for (int i = 0; i < 16; ++i) {
            auto data = pattern(1 << 20, static_cast<uint32_t>(t * 100 + i));
            std::memcpy(model.data() + ((uint64_t(t) * 16 + i) << 20), data.data(), data.size());
        }
    expect_qemu_agrees(d, path, model);
}

TEST_CASE("qcow2: writes into images qemu wrote keep them consistent and readable by qemu") {
    struct Case {
        const char* create;  // qemu-img create options
        const char* io;      // qemu-io commands that shape the image
    };
    const Case cases[] = {
        {"extended_l2=on,cluster_size=64k", "-c 'write -P 0x11 4k 2k' -c 'write -z 70k 6k' -c 'write -P 0x12 130k 1k'"},
        {"cluster_size=4k,refcount_bits=1", "-c 'write -P 0x21 0 10k' -c 'discard 4k 4k' -c 'write -z 20k 8k'"},
        {"preallocation=metadata,cluster_size=64k", "-c 'write -P 0x31 100k 3k'"},
        {"preallocation=falloc,cluster_size=4k", "-c 'write -P 0x41 1k 1k'"},
        {"cluster_size=512,refcount_bits=64", "-c 'write -P 0x51 0 100k' -c 'write -z 1k 2k' -c 'discard 50k 10k'"},
        {"compressed", ""},  // qemu-img convert -c output
    };
    for (const auto& c : cases) {
        std::string which = c.create;
        CAPTURE(which);
        TempDir d;
        auto path = d.file("q.qcow2");
        const uint64_t size = 2 << 20;
        if (std::string(c.create) == "compressed") {
            auto raw = d.file("src.raw");
            REQUIRE(run("head -c 2097152 /dev/urandom | base64 | head -c 2097152 > " + raw) == 0);
            REQUIRE(run("qemu-img convert -q -c -O qcow2 -f raw " + raw + " " + path) == 0);
        } else {
            REQUIRE(run(std::string("qemu-img create -q -f qcow2 -o ") + c.create + " " + path + " 2M") == 0);
            if (*c.io) REQUIRE(run(std::string("qemu-io -f qcow2 ") + c.io + " " + path + " >/dev/null") == 0);
        }
        REQUIRE(run("qemu-img convert -O raw " + path + " " + d.file("before.raw")) == 0);
        std::vector<std::byte> model = read_whole_file(d.file("before.raw"));
        REQUIRE(model.size() == size);
        {
            auto img = open_image(path, true);
            std::mt19937 rng(99);
            for (int i = 0; i < 40; ++i) {
                uint64_t off = rng() % size;
                uint64_t len = std::min<uint64_t>(size - off, 1 + rng() % 20000);
                if (rng() % 5 == 0) {
                    REQUIRE(img->discard(off, len).ok());
                    std::memset(model.data() + off, 0, len);
                } else {
                    auto data = pattern(len, static_cast<uint32_t>(rng()));
                    REQUIRE(img->write(off, data).ok());
                    std::memcpy(model.data() + off, data.data(), len);
                }
            }
            std::vector<std::byte> back(size);
            REQUIRE(img->read(0, back).ok());
            auto diff = std::mismatch(back.begin(), back.end(), model.begin());
            CHECK_MESSAGE(diff.first == back.end(), "first difference at byte " << (diff.first - back.begin()));
            REQUIRE(img->close().ok());
        }
        expect_qemu_agrees(d, path, model);
    }
}

TEST_CASE("qcow2: discard across one cluster boundary zeroes both partial clusters") {
    TempDir d;
    auto path = d.file("b.qcow2");
    std::vector<std::byte> model(1 << 20);
    {
        auto img = make_image(path, 1 << 20, 65536);
        // Cluster 0 stays unallocated, cluster 1 holds data.
        auto data = pattern(200000, 5);
        REQUIRE(img->write(65536, data).ok());
        std::memcpy(model.data() + 65536, data.data(), data.size());
        // [60000, 70000): the tail of cluster 0 and the head of cluster 1,
        // no whole cluster in between.
        REQUIRE(img->discard(60000, 10000).ok());
        std::memset(model.data() + 60000, 0, 10000);
        REQUIRE(img->write_zeroes(130000, 2000).ok());
        std::memset(model.data() + 130000, 0, 2000);
        std::vector<std::byte> back(1 << 20);
        REQUIRE(img->read(0, back).ok());
        CHECK(back == model);
        REQUIRE(img->close().ok());
    }
    expect_qemu_agrees(d, path, model);
}

TEST_CASE("qcow2: allocation reports data where clusters are mapped and zeros elsewhere") {
    TempDir d;
    auto img = make_image(d.file("m.qcow2"), 64 << 20, 65536);
    REQUIRE(img->write(100000, pattern(70000, 1)).ok());      // clusters 1..2
    REQUIRE(img->write(40 << 20, pattern(65536, 2)).ok());    // one cluster at 40 MiB
    REQUIRE(img->write_zeroes(40 << 20, 65536).ok());         // ...now a zero cluster
    REQUIRE(img->write_compressed(50 << 20, pattern(65536, 3)).ok());
    auto ext = img->allocation(0, 64 << 20);
    REQUIRE(ext.ok());
    std::vector<std::pair<uint64_t, uint64_t>> data;
    uint64_t covered = 0;
    for (const auto& e : *ext) {
        CHECK(e.offset == covered);  // contiguous and in order
        covered += e.length;
        if (e.data) data.emplace_back(e.offset, e.length);
    }
    CHECK(covered == (64u << 20));
    REQUIRE(data.size() == 2);
    CHECK(data[0] == std::pair<uint64_t, uint64_t>{65536, 2 * 65536});
    CHECK(data[1] == std::pair<uint64_t, uint64_t>{50u << 20, 65536});
    // A sub-range starts and ends where asked.
    auto part = img->allocation(70000, 100);
    REQUIRE(part.ok());
    REQUIRE(part->size() == 1);
    CHECK((*part)[0].offset == 70000);
    CHECK((*part)[0].length == 100);
    CHECK((*part)[0].data);
    REQUIRE(img->close().ok());
}
