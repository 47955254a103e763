// `zqfs-img create` options in qemu-img's spelling (SPEC section 1).
#include <doctest/doctest.h>

#include "core/create_options.h"

using namespace zqfs;
using namespace zqfs::core;

namespace {
constexpr uint64_t kMiB = 1ull << 20;
std::string err_of(const Result<CreateSpec>& r) { return r.ok() ? "" : r.error().message; }
}  // namespace

TEST_CASE("core: sizes take K/M/G/T suffixes, lower-case k, and plain bytes") {
    CHECK(*parse_size("65536") == 65536);
    CHECK(*parse_size("64K") == 65536);
    CHECK(*parse_size("64k") == 65536);
    CHECK(*parse_size("768M") == 768 * kMiB);
    CHECK(*parse_size("2G") == 2048 * kMiB);
    CHECK(*parse_size("1T") == 1ull << 40);
    CHECK(*parse_size("1.5G") == 1536 * kMiB);
    CHECK(*parse_size("512B") == 512);
    CHECK_FALSE(parse_size("").ok());
    CHECK_FALSE(parse_size("-1").ok());
    CHECK_FALSE(parse_size("12Q").ok());
    CHECK_FALSE(parse_size("abc").ok());
    CHECK_FALSE(parse_size("99999999999999999999").ok());
    CHECK_FALSE(parse_size("16E").ok());
    CHECK_FALSE(parse_size("0.3").ok());
}

TEST_CASE("core: the seed's exact create command is accepted") {
    std::vector<std::string> o = {"size=768M",
                                  "zone.size=64M",
                                  "zone.capacity=64M",
                                  "zone.conventional_zones=0",
                                  "zone.max_append_bytes=4096",
                                  "zone.max_open_zones=6",
                                  "zone.max_active_zones=8",
                                  "zone.mode=host-managed"};
    std::vector<std::string> w;
    auto r = parse_create_options(o, std::nullopt, &w);
    REQUIRE(r.ok());
    CHECK(r->virtual_size == 768 * kMiB);
    CHECK(r->zone_size == 64 * kMiB);
    CHECK(r->zone_capacity == 64 * kMiB);
    CHECK(r->conventional_zones == 0);
    CHECK(r->max_append_bytes == 4096u);
    CHECK(r->max_open_zones == 6);
    CHECK(r->max_active_zones == 8);
    CHECK(r->layout == Layout::seed);
    CHECK(w.empty());
}

TEST_CASE("core: comma-joined options and hyphen spellings are accepted") {
    auto r = parse_create_options({"zone.size=64M,zone.conventional-zones=2,zone.max-open-zones=3",
                                   "cluster-size=128K,refcount_bits=8,compression_type=zlib,zone.layout=latest"},
                                  std::string("1G"), nullptr);
    REQUIRE(r.ok());
    CHECK(r->virtual_size == 1024 * kMiB);
    CHECK(r->conventional_zones == 2);
    CHECK(r->max_open_zones == 3);
    CHECK(r->cluster_size == 128 * 1024);
    CHECK(r->refcount_bits == 8);
    CHECK(r->layout == Layout::latest);
    CHECK_FALSE(r->zone_capacity.has_value());
}

TEST_CASE("core: a doubled comma is a literal comma in an option value") {
    auto p = split_option_list("a=x,,y,b=2");
    REQUIRE(p.ok());
    REQUIRE(p->size() == 2);
    CHECK((*p)[0].second == "x,y");
    CHECK((*p)[1].first == "b");
    auto r = parse_create_options({"zone.layout=seed,,latest"}, std::string("1G"), nullptr);
    CHECK(err_of(r).find("seed,latest") != std::string::npos);
}

TEST_CASE("core: the positional SIZE wins over -o size") {
    auto r = parse_create_options({"size=1G"}, std::string("2G"), nullptr);
    REQUIRE(r.ok());
    CHECK(r->virtual_size == 2048 * kMiB);
}

TEST_CASE("core: a missing image size is an error") {
    CHECK(err_of(parse_create_options({"zone.size=64M"}, std::nullopt, nullptr)).find("size") != std::string::npos);
}

TEST_CASE("core: an unknown option is refused naming it") {
    CHECK(err_of(parse_create_options({"zone.bogus=1"}, std::string("1G"), nullptr)) ==
          "unknown option 'zone.bogus'");
}

TEST_CASE("core: an invalid value is refused naming option and value") {
    auto e = err_of(parse_create_options({"zone.size=lots"}, std::string("1G"), nullptr));
    CHECK(e.find("zone.size") != std::string::npos);
    CHECK(e.find("lots") != std::string::npos);
    e = err_of(parse_create_options({"zone.max_open_zones=six"}, std::string("1G"), nullptr));
    CHECK(e.find("zone.max_open_zones") != std::string::npos);
    CHECK(e.find("six") != std::string::npos);
    e = err_of(parse_create_options({"cluster_size=3000"}, std::string("1G"), nullptr));
    CHECK(e.find("cluster_size") != std::string::npos);
    e = err_of(parse_create_options({"refcount_bits=3"}, std::string("1G"), nullptr));
    CHECK(e.find("refcount_bits") != std::string::npos);
    e = err_of(parse_create_options({"zone.size"}, std::string("1G"), nullptr));
    CHECK(e.find("zone.size") != std::string::npos);
}

TEST_CASE("core: compression_type accepts only zlib") {
    CHECK(err_of(parse_create_options({"compression_type=zstd"}, std::string("1G"), nullptr)).find("zstd") !=
          std::string::npos);
}

TEST_CASE("core: zone.mode accepts only host-managed") {
    CHECK(err_of(parse_create_options({"zone.mode=host-aware"}, std::string("1G"), nullptr)).find("host-aware") !=
          std::string::npos);
}

TEST_CASE("core: zone.layout accepts seed and latest") {
    CHECK(parse_create_options({"zone.layout=seed"}, std::string("1G"), nullptr)->layout == Layout::seed);
    CHECK(parse_create_options({"zone.layout=latest"}, std::string("1G"), nullptr)->layout == Layout::latest);
    CHECK_FALSE(parse_create_options({"zone.layout=v9"}, std::string("1G"), nullptr).ok());
}

TEST_CASE("core: zone.max_append_bytes with layout latest is ignored with a warning") {
    std::vector<std::string> w;
    auto r = parse_create_options({"zone.layout=latest,zone.max_append_bytes=4096"}, std::string("1G"), &w);
    REQUIRE(r.ok());
    CHECK_FALSE(r->max_append_bytes.has_value());
    CHECK(w.size() == 1);
}
