// Large data writes ask the host to start writing them out at once
// (HostFile::start_writeback), so an fsync after a stream of appends finds
// little left to do; small writes and metadata do not.
#include <doctest/doctest.h>

#include <mutex>

#include "qcow2/image.h"
#include "tests/unit/forwarding_file.h"
#include "tests/unit/qcow2_test_util.h"

using namespace zqfs;
using namespace zqfs::qcow2;
using zqfs::testing::pattern;
using zqfs::testing::TempDir;

namespace {

// Forwards to a real file and records the write-behind hints.
class HintFile final : public zqfs::testing::ForwardingFile {
public:
    HintFile(std::unique_ptr<HostFile> inner, std::vector<std::pair<uint64_t, uint64_t>>* hints)
        : ForwardingFile(std::move(inner)), hints_(hints) {}
    void start_writeback(uint64_t o, uint64_t n) override {
        {
            std::lock_guard lk(mu_);
            hints_->emplace_back(o, n);
        }
        ForwardingFile::start_writeback(o, n);
    }

private:
    std::vector<std::pair<uint64_t, uint64_t>>* hints_;
    std::mutex mu_;
};

}  // namespace

TEST_CASE("qcow2: large data writes start their write-back, small ones and metadata do not") {
    TempDir d;
    auto f = create_host_file(d.file("w.qcow2"));
    REQUIRE(f.ok());
    std::vector<std::pair<uint64_t, uint64_t>> hints;
    CreateOptions o;
    o.virtual_size = 64 << 20;
    auto made = Image::create(std::make_unique<HintFile>(std::move(f).value(), &hints), o);
    REQUIRE(made.ok());
    auto img = std::move(made).value();

    REQUIRE(img->write(0, pattern(4096, 1)).ok());
    REQUIRE(img->write(1 << 20, pattern(64 << 10, 2)).ok());
    REQUIRE(img->flush().ok());  // metadata: L2, refcounts, header
    CHECK(hints.empty());

    const auto data = pattern(1 << 20, 3);
    REQUIRE(img->write(8 << 20, data).ok());
    // The hints cover exactly the host ranges now holding the data.
    std::vector<std::pair<uint64_t, uint64_t>> held;
    REQUIRE(img->read_mapped(8 << 20, 1 << 20, [&](std::span<const MappedPiece> pieces) -> Status {
                   for (const auto& p : pieces) {
                       REQUIRE(p.fd >= 0);
                       held.emplace_back(p.host_offset, p.length);
                   }
                   return {};
               }).ok());
    CHECK(hints == held);
    std::vector<std::byte> back(1 << 20);
    REQUIRE(img->read(8 << 20, back).ok());
    CHECK(back == data);
    REQUIRE(img->close().ok());
}
