// Images our engine creates and writes are valid qcow2 to qemu: random
// writes, overwrites, zero writes, discards, compressed clusters and a
// reopen, with growth past many refcount blocks (512-byte clusters) and at
// every refcount width class; then `qemu-img check` finds no error and no
// leak, and `qemu-img convert -O raw` yields exactly the bytes we wrote.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "qcow2/host_file.h"
#include "qcow2/image.h"
#include "tests/integration/qemu_compat_util.h"

using namespace zqfs;
using zqfs_test::quote;

namespace {

struct Workload {
    uint32_t cluster_size;
    uint32_t refcount_bits;
    uint64_t virtual_size;
    uint64_t bytes_to_write;
    uint64_t max_write;
};

std::unique_ptr<qcow2::Image> open_rw(const std::string& path) {
    auto file = qcow2::open_host_file(path, qcow2::OpenAccess::read_write);
    REQUIRE_MESSAGE(file.ok(), file.error().message);
    qcow2::OpenOptions opts;
    opts.writable = true;
    auto img = qcow2::Image::open(std::move(file).value(), opts);
    REQUIRE_MESSAGE(img.ok(), img.error().message);
    return std::move(img).value();
}

void fill_random(std::mt19937_64& rng, std::byte* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = rng();
        std::memcpy(p + i, &v, std::min<size_t>(8, n - i));
    }
}

// Runs the workload, returning the bytes the virtual disk must hold.
std::vector<std::byte> write_workload(const std::string& path, const Workload& w) {
    qcow2::CreateOptions opts;
    opts.virtual_size = w.virtual_size;
    opts.cluster_size = w.cluster_size;
    opts.refcount_bits = w.refcount_bits;
    auto file = qcow2::create_host_file(path);
    REQUIRE_MESSAGE(file.ok(), file.error().message);
    auto created = qcow2::Image::create(std::move(file).value(), opts);
    REQUIRE_MESSAGE(created.ok(), created.error().message);
    std::unique_ptr<qcow2::Image> img = std::move(created).value();

    std::vector<std::byte> expected(w.virtual_size);
    std::vector<std::byte> buf(std::max<uint64_t>(w.max_write, w.cluster_size));
    std::mt19937_64 rng(w.cluster_size * 131 + w.refcount_bits);
    uint64_t written = 0;
    bool reopened = false;
    for (unsigned op = 0; written < w.bytes_to_write; ++op) {
        uint64_t off = rng() % w.virtual_size;
        uint64_t len = std::min<uint64_t>(1 + rng() % w.max_write, w.virtual_size - off);
        unsigned kind = rng() % 20;
        if (kind < 14) {
            fill_random(rng, buf.data(), len);
            auto s = img->write(off, std::span(buf.data(), len));
            REQUIRE_MESSAGE(s.ok(), s.error().message);
            std::copy_n(buf.data(), len, expected.begin() + off);
            written += len;
        } else if (kind < 16) {
            auto s = img->write_zeroes(off, len);
            REQUIRE_MESSAGE(s.ok(), s.error().message);
            std::fill_n(expected.begin() + off, len, std::byte{0});
        } else if (kind < 18) {
            auto s = img->discard(off, len);
            REQUIRE_MESSAGE(s.ok(), s.error().message);
            std::fill_n(expected.begin() + off, len, std::byte{0});
        } else if (kind < 19) {
            // A compressible whole cluster, written compressed.
            uint64_t coff = off / w.cluster_size * w.cluster_size;
            if (coff + w.cluster_size > w.virtual_size) continue;
            for (size_t i = 0; i < w.cluster_size; ++i) buf[i] = std::byte(uint8_t((i / 64 + op) & 0xff));
            auto s = img->write_compressed(coff, std::span(buf.data(), w.cluster_size));
            REQUIRE_MESSAGE(s.ok(), s.error().message);
            std::copy_n(buf.data(), w.cluster_size, expected.begin() + coff);
        } else {
            auto s = img->flush();
            REQUIRE_MESSAGE(s.ok(), s.error().message);
        }
        if (!reopened && written >= w.bytes_to_write / 2) {
            auto s = img->close();
            REQUIRE_MESSAGE(s.ok(), s.error().message);
            img.reset();
            img = open_rw(path);
            reopened = true;
        }
    }
    // The last byte of the disk, so the image spans the whole virtual size.
    std::byte last{0x5a};
    REQUIRE(img->write(w.virtual_size - 1, std::span(&last, 1)).ok());
    expected.back() = last;

    // Our own reading agrees before qemu is asked.
    std::vector<std::byte> got(w.virtual_size);
    REQUIRE(img->read(0, got).ok());
    CHECK(zqfs_test::first_difference(got, expected) == -1);
    auto s = img->close();
    REQUIRE_MESSAGE(s.ok(), s.error().message);
    return expected;
}

// Returns the host file size reached.
uint64_t check_with_qemu(const Workload& w) {
    zqfs_test::TempDir dir;
    std::string img = dir.file("ours.qcow2");
    std::string raw = dir.file("ours.raw");
    std::vector<std::byte> expected = write_workload(img, w);

    uint64_t host_size = std::filesystem::file_size(img);
    uint64_t per_refblock = uint64_t{w.cluster_size} * w.cluster_size * 8 / w.refcount_bits;
    INFO("host file ", host_size, " bytes, one refcount block covers ", per_refblock);

    auto check = zqfs_test::run("qemu-img check " + quote(img));
    INFO("qemu-img check output:\n", check.output);
    CHECK_MESSAGE(check.status == 0, "qemu-img check must find no corruption and no leak");

    auto convert = zqfs_test::run("qemu-img convert -f qcow2 -O raw " + quote(img) + " " + quote(raw));
    REQUIRE_MESSAGE(convert.status == 0, convert.output);
    CHECK_MESSAGE(zqfs_test::first_difference(zqfs_test::read_file(raw), expected) == -1,
                  "qemu-img reads back different bytes than we wrote");
    return host_size;
}

// How many refcount blocks a host file of `bytes` needs.
uint64_t refcount_blocks(uint64_t bytes, uint32_t cluster_size, uint32_t refcount_bits) {
    uint64_t per_block = uint64_t{cluster_size} * cluster_size * 8 / refcount_bits;
    return (bytes + per_block - 1) / per_block;
}

}  // namespace

TEST_CASE("512-byte clusters, 16-bit refcounts: growth past many refcount blocks and the refcount table") {
    uint64_t host = check_with_qemu({512, 16, 32 << 20, 14 << 20, 16 << 10});
    // One refcount-table cluster (64 entries) covers 64 blocks of 128 KiB:
    // the image must have outgrown it.
    CHECK(refcount_blocks(host, 512, 16) > 64);
}

TEST_CASE("512-byte clusters, 1-bit refcounts") {
    uint64_t host = check_with_qemu({512, 1, 16 << 20, 6 << 20, 16 << 10});
    CHECK(refcount_blocks(host, 512, 1) >= 2);
}

TEST_CASE("512-byte clusters, 64-bit refcounts") {
    uint64_t host = check_with_qemu({512, 64, 16 << 20, 6 << 20, 16 << 10});
    CHECK(refcount_blocks(host, 512, 64) > 64);
}

TEST_CASE("64 KiB clusters, 16-bit refcounts, large writes") {
    (void)check_with_qemu({65536, 16, 128 << 20, 24 << 20, 512 << 10});
}

TEST_CASE("4 KiB clusters, 64-bit refcounts") {
    uint64_t host = check_with_qemu({4096, 64, 32 << 20, 8 << 20, 64 << 10});
    CHECK(refcount_blocks(host, 4096, 64) >= 3);
}
