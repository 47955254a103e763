// Image::read_mapped, the zero-copy read the file system splices replies
// from: the pieces it describes must hold exactly what read() returns, for
// every kind of cluster, and descriptor pieces must never reach past the
// host file's end.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>

#include "qcow2/image.h"
#include "tests/unit/qcow2_test_util.h"

using namespace zqfs;
using namespace zqfs::qcow2;
using zqfs::testing::pattern;
using zqfs::testing::run;
using zqfs::testing::TempDir;

namespace {

struct Assembled {
    std::vector<std::byte> bytes;
    size_t fd_pieces = 0;
    size_t mem_pieces = 0;
    bool past_eof = false;  // a descriptor piece reached past the host file's end
};

// Builds the bytes a consumer would send: pread for descriptor pieces.
Assembled assemble(Image& img, uint64_t offset, uint64_t length) {
    Assembled a;
    bool called = false;
    Status s = img.read_mapped(offset, length, [&](std::span<const MappedPiece> pieces) -> Status {
        called = true;
        auto host_size = img.file().size();
        REQUIRE(host_size.ok());
        for (const auto& p : pieces) {
            REQUIRE(p.length > 0);
            size_t at = a.bytes.size();
            a.bytes.resize(at + p.length);
            if (p.fd >= 0) {
                ++a.fd_pieces;
                if (p.host_offset + p.length > *host_size) a.past_eof = true;
                ssize_t n = ::pread(p.fd, a.bytes.data() + at, p.length, static_cast<off_t>(p.host_offset));
                REQUIRE(n == static_cast<ssize_t>(p.length));
            } else {
                ++a.mem_pieces;
                REQUIRE(p.mem != nullptr);
                std::memcpy(a.bytes.data() + at, p.mem, p.length);
            }
        }
        return {};
    });
    REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
    REQUIRE(called);
    return a;
}

std::vector<std::byte> read_all(Image& img, uint64_t offset, uint64_t length) {
    std::vector<std::byte> v(length);
    REQUIRE(img.read(offset, v).ok());
    return v;
}

}  // namespace

TEST_CASE("qcow2: mapped reads describe exactly the data read() returns") {
    TempDir d;
    const std::string path = d.file("m.qcow2");
    auto f = create_host_file(path);
    REQUIRE(f.ok());
    CreateOptions o;
    o.virtual_size = 8 << 20;
    auto made = Image::create(std::move(f).value(), o);
    REQUIRE(made.ok());
    auto img = std::move(made).value();
    constexpr uint64_t C = 65536;

    REQUIRE(img->write(100000, pattern(70000, 1)).ok());     // partial clusters 1 and 2
    REQUIRE(img->write(16 * C, pattern(2 * C, 2)).ok());     // two whole clusters
    REQUIRE(img->write(20 * C, pattern(C, 3)).ok());
    REQUIRE(img->write_zeroes(20 * C, C).ok());              // ...now a zero cluster
    REQUIRE(img->write_compressed(32 * C, pattern(C, 4)).ok());
    // Last allocation: 4 KiB into a new cluster, so the host file ends
    // inside it and the rest of the cluster exists only as "reads zero".
    REQUIRE(img->write(48 * C + 8192, pattern(4096, 5)).ok());
    auto host_size = img->file().size();
    REQUIRE(host_size.ok());
    REQUIRE_MESSAGE(*host_size % C != 0, "precondition: the host file must end inside a cluster");

    const std::pair<uint64_t, uint64_t> ranges[] = {
        {0, 8 << 20},             // everything
        {100000, 70000},          // the partial write exactly
        {99999, 3},               // straddles the start of the data
        {16 * C - 10, 2 * C + 20},  // around the whole clusters
        {20 * C, C},              // zero cluster
        {32 * C + 123, 1000},     // inside the compressed cluster
        {48 * C, C},              // the cluster the host file ends in
        {48 * C + 8192 + 4000, 200},  // straddles the host file's end
        {7 << 20, 1 << 20},       // never written
    };
    for (const auto& range : ranges) {
        const uint64_t off = range.first, len = range.second;
        CAPTURE(off);
        CAPTURE(len);
        Assembled a = assemble(*img, off, len);
        CHECK_FALSE(a.past_eof);
        CHECK(a.bytes == read_all(*img, off, len));
    }
    // The point of it: written data comes as descriptor ranges, holes and
    // compressed data as memory.
    Assembled whole = assemble(*img, 0, 8 << 20);
    CHECK(whole.fd_pieces >= 3);
    CHECK(whole.mem_pieces >= 3);
    Assembled data = assemble(*img, 16 * C, 2 * C);
    CHECK(data.fd_pieces == 1);  // contiguous host clusters merge
    CHECK(data.mem_pieces == 0);

    // Out of range: an error, and the consumer is never called.
    bool called = false;
    Status s = img->read_mapped((8 << 20) - 10, 20, [&](std::span<const MappedPiece>) -> Status {
        called = true;
        return {};
    });
    CHECK(s.error().code == EINVAL);
    CHECK_FALSE(called);
    // The consumer's status is the call's.
    s = img->read_mapped(0, 10, [](std::span<const MappedPiece>) -> Status { return make_error(EPIPE, "gone"); });
    CHECK(s.error().code == EPIPE);
    REQUIRE(img->close().ok());
}

TEST_CASE("qcow2: mapped reads of an extended-L2 image with partial subclusters") {
    TempDir d;
    const std::string path = d.file("x.qcow2");
    REQUIRE(run("qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k " + path + " 4M") == 0);
    // Subclusters of 2 KiB: allocate some, leave others unallocated or zero.
    REQUIRE(run("qemu-io -f qcow2 -c 'write -P 0x5a 8k 6k' -c 'write -P 0x33 70k 2k' -c 'write -z 72k 2k' "
                "-c 'write -P 0x77 1M 64k' " + path + " >/dev/null") == 0);
    auto f = open_host_file(path, OpenAccess::read_only);
    REQUIRE(f.ok());
    OpenOptions oo;
    auto opened = Image::open(std::move(f).value(), oo);
    REQUIRE_MESSAGE(opened.ok(), (opened.ok() ? "" : opened.error().message));
    auto img = std::move(opened).value();
    for (const auto& range : {std::pair<uint64_t, uint64_t>{0, 4 << 20}, {8192, 6144}, {7000, 70000}, {1 << 20, 65536}}) {
        const uint64_t off = range.first, len = range.second;
        CAPTURE(off);
        Assembled a = assemble(*img, off, len);
        CHECK(a.bytes == read_all(*img, off, len));
    }
    auto full = assemble(*img, 1 << 20, 65536);  // fully allocated cluster: one descriptor piece
    CHECK(full.fd_pieces == 1);
    CHECK(full.mem_pieces == 0);
}
