// Syscall-level rules of the zone file system (SPEC section 4), checked
// through a real zqfs mount: each TEST_CASE mounts a fresh image on a
// directory under its own mkdtemp folder and unmounts it on the way out.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "core/zoned_device.h"

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kZone = 4 * kMiB;

// A mounted image: zqfs runs in the foreground as our child, so the
// destructor can unmount and then wait for the image to be flushed.
class Mount {
public:
    explicit Mount(const std::string& opts = "", uint32_t cnv_zones = 2, uint32_t max_open = 0) {
        char tmpl[] = "/tmp/zqfs-fuse-cpp.XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        img_ = dir_ + "/img.qcow2";
        mnt_ = dir_ + "/mnt";
        std::string err = start(opts, cnv_zones, max_open);
        if (!err.empty()) {
            // The destructor does not run when the constructor fails.
            teardown();
            FAIL(err);
        }
    }
    ~Mount() { teardown(); }
    std::string path(const std::string& rel) const { return mnt_ + "/" + rel; }

private:
    // Creates the image and mounts it; returns an error message or "".
    std::string start(const std::string& opts, uint32_t cnv_zones, uint32_t max_open) {
        if (mkdir(mnt_.c_str(), 0755) != 0) return "mkdir " + mnt_ + ": " + strerror(errno);
        zqfs::core::CreateSpec spec;
        spec.virtual_size = 8 * kZone;
        spec.zone_size = kZone;
        spec.conventional_zones = cnv_zones;
        spec.max_open_zones = max_open;
        auto st = zqfs::core::ZonedDevice::create(img_, spec, nullptr);
        if (!st.ok()) return st.error().message;
        struct stat parent{};
        if (stat(dir_.c_str(), &parent) != 0) return "stat " + dir_;
        pid_ = fork();
        if (pid_ < 0) return "fork failed";
        if (pid_ == 0) {
            std::string bin = std::string(ZQFS_BIN_DIR) + "/zqfs";
            if (opts.empty()) execl(bin.c_str(), "zqfs", img_.c_str(), mnt_.c_str(), "-f", nullptr);
            else execl(bin.c_str(), "zqfs", img_.c_str(), mnt_.c_str(), "-f", "-o", opts.c_str(), nullptr);
            _exit(127);
        }
        for (int i = 0; i < 250; ++i) {
            struct stat m{};
            if (stat(mnt_.c_str(), &m) == 0 && m.st_dev != parent.st_dev) return "";
            usleep(20000);
        }
        return "zqfs did not mount " + mnt_;
    }

    // Unmounts, waits for the daemon (so the image is flushed and unlocked),
    // removes the temporary folder.
    void teardown() {
        if (pid_ > 0) {
            std::string cmd = "fusermount3 -u '" + mnt_ + "' 2>/dev/null";
            if (system(cmd.c_str()) != 0) kill(pid_, SIGTERM);
            int status = 0;
            waitpid(pid_, &status, 0);
            pid_ = -1;
        }
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    std::string dir_, img_, mnt_;
    pid_t pid_ = -1;
};

int open_file(const std::string& p, int flags) {
    int fd = ::open(p.c_str(), flags);
    REQUIRE_MESSAGE(fd >= 0, p << ": " << strerror(errno));
    return fd;
}

off_t size_of(const std::string& p) {
    struct stat s{};
    REQUIRE(stat(p.c_str(), &s) == 0);
    return s.st_size;
}

std::string xattr(const std::string& p, const char* name) {
    ssize_t n = getxattr(p.c_str(), name, nullptr, 0);
    REQUIRE(n >= 0);
    std::string v(static_cast<size_t>(n), '\0');
    REQUIRE(getxattr(p.c_str(), name, v.data(), v.size()) == n);
    return v;
}

std::string cond_of(const std::string& p) {
    return nlohmann::json::parse(xattr(p, "user.zone"))["cond"].get<std::string>();
}

// Returns -errno or the byte count.
ssize_t try_pwrite(int fd, const std::string& data, off_t off) {
    ssize_t n = pwrite(fd, data.data(), data.size(), off);
    return n < 0 ? -errno : n;
}

}  // namespace

TEST_CASE("a sequential write not at the write pointer is EINVAL") {
    Mount m;
    int fd = open_file(m.path("seq/0"), O_WRONLY);
    std::string block(4096, 'a');
    CHECK(try_pwrite(fd, block, 4096) == -EINVAL);
    CHECK(try_pwrite(fd, block, 0) == 4096);
    CHECK(try_pwrite(fd, block, 0) == -EINVAL);
    CHECK(try_pwrite(fd, block, 8192) == -EINVAL);
    CHECK(try_pwrite(fd, block, 4096) == 4096);
    CHECK(size_of(m.path("seq/0")) == 8192);
    close(fd);
}

TEST_CASE("a write crossing the capacity is short; at or past it EFBIG") {
    Mount m;
    int fd = open_file(m.path("seq/1"), O_WRONLY);
    std::string big(kZone - 4096, 'b');
    CHECK(try_pwrite(fd, big, 0) == static_cast<ssize_t>(big.size()));
    CHECK(try_pwrite(fd, std::string(12288, 'c'), kZone - 4096) == 4096);
    CHECK(size_of(m.path("seq/1")) == static_cast<off_t>(kZone));
    CHECK(try_pwrite(fd, "x", kZone) == -EFBIG);
    CHECK(try_pwrite(fd, "x", kZone + 4096) == -EFBIG);
    CHECK(cond_of(m.path("seq/1")) == "full");
    close(fd);
}

TEST_CASE("O_APPEND writes go at the write pointer, even after a reset behind the kernel's back") {
    Mount m;
    int fd = open_file(m.path("seq/2"), O_WRONLY | O_APPEND);
    CHECK(write(fd, "hello", 5) == 5);
    CHECK(write(fd, "world", 5) == 5);
    CHECK(size_of(m.path("seq/2")) == 10);
    REQUIRE(setxattr(m.path("seq/2").c_str(), "user.zone.cmd", "reset", 5, 0) == 0);
    CHECK(write(fd, "again", 5) == 5);
    close(fd);
    CHECK(size_of(m.path("seq/2")) == 5);
    char buf[16] = {};
    int rfd = open_file(m.path("seq/2"), O_RDONLY);
    CHECK(read(rfd, buf, sizeof buf) == 5);
    CHECK(std::string(buf, 5) == "again");
    close(rfd);
}

TEST_CASE("truncate: 0 resets, capacity finishes, current size is a no-op, anything else EPERM") {
    Mount m;
    std::string p = m.path("seq/3");
    int fd = open_file(p, O_WRONLY);
    CHECK(try_pwrite(fd, std::string(8192, 'd'), 0) == 8192);
    CHECK(ftruncate(fd, 8192) == 0);
    CHECK(ftruncate(fd, 4096) == -1);
    CHECK(errno == EPERM);
    CHECK(ftruncate(fd, 12288) == -1);
    CHECK(errno == EPERM);
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(size_of(p) == 0);
    CHECK(cond_of(p) == "empty");
    CHECK(truncate(p.c_str(), kZone) == 0);
    CHECK(cond_of(p) == "full");
    CHECK(size_of(p) == static_cast<off_t>(kZone));
    close(fd);
    int tfd = ::open(p.c_str(), O_WRONLY | O_TRUNC);
    CHECK(tfd >= 0);
    CHECK(size_of(p) == 0);
    CHECK(cond_of(p) == "empty");
    close(tfd);
}

TEST_CASE("conventional files: fixed size, random I/O, O_APPEND EINVAL, truncate EPERM, EFBIG past capacity") {
    Mount m;
    std::string p = m.path("cnv/1");
    CHECK(size_of(p) == static_cast<off_t>(kZone));
    int fd = open_file(p, O_RDWR);
    std::string a(5000, 'x'), b(3000, 'y');
    CHECK(try_pwrite(fd, a, 100000) == 5000);
    CHECK(try_pwrite(fd, b, 10) == 3000);
    CHECK(try_pwrite(fd, a, kZone - 1000) == 1000);
    CHECK(try_pwrite(fd, a, kZone) == -EFBIG);
    std::string back(5000, '\0');
    CHECK(pread(fd, back.data(), back.size(), 100000) == 5000);
    CHECK(back == a);
    CHECK(ftruncate(fd, 0) == -1);
    CHECK(errno == EPERM);
    close(fd);
    int afd = open_file(p, O_WRONLY | O_APPEND);
    CHECK(write(afd, "z", 1) == -1);
    CHECK(errno == EINVAL);
    close(afd);
    CHECK(size_of(p) == static_cast<off_t>(kZone));
}

TEST_CASE("a writable shared mmap of a sequential file is refused; private and read-only maps work") {
    Mount m;
    std::string p = m.path("seq/4");
    int fd = open_file(p, O_RDWR);
    CHECK(try_pwrite(fd, std::string(8192, 'm'), 0) == 8192);
    void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(map == MAP_FAILED);
    // The kernel refuses MAP_SHARED on FUSE direct-I/O files with ENODEV;
    // zonefs says EINVAL. Either way no page-cache write can sneak in.
    CHECK((errno == ENODEV || errno == EINVAL));
    close(fd);
    REQUIRE(truncate(p.c_str(), kZone) == 0);  // full: read-only opens use the page cache
    int rfd = open_file(p, O_RDONLY);
    void* ro = mmap(nullptr, 8192, PROT_READ, MAP_SHARED, rfd, 0);
    REQUIRE(ro != MAP_FAILED);
    CHECK(static_cast<const char*>(ro)[8191] == 'm');
    munmap(ro, 8192);
    close(rfd);
}

TEST_CASE("concurrent O_APPEND appenders: no byte lost, no write interleaved") {
    Mount m;
    std::string p = m.path("seq/5");
    constexpr int kWriters = 4, kRecords = 150;
    // Record sizes vary and are not multiples of 512.
    auto record_size = [](int w, int i) { return 700 + (w * 97 + i * 31) % 3000; };
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int w = 0; w < kWriters; ++w) {
        threads.emplace_back([&, w] {
            int fd = ::open(p.c_str(), O_WRONLY | O_APPEND);
            if (fd < 0) {
                ++failures;
                return;
            }
            for (int i = 0; i < kRecords; ++i) {
                std::string rec(static_cast<size_t>(record_size(w, i)), static_cast<char>('A' + w));
                rec.replace(0, 8, fmt::format("{:c}{:06d}|", 'a' + w, i));
                if (write(fd, rec.data(), rec.size()) != static_cast<ssize_t>(rec.size())) ++failures;
            }
            close(fd);
        });
    }
    for (auto& t : threads) t.join();
    REQUIRE(failures == 0);
    size_t total = 0;
    for (int w = 0; w < kWriters; ++w)
        for (int i = 0; i < kRecords; ++i) total += static_cast<size_t>(record_size(w, i));
    REQUIRE(size_of(p) == static_cast<off_t>(total));

    std::string data(total, '\0');
    int fd = open_file(p, O_RDONLY);
    size_t got = 0;
    while (got < total) {
        ssize_t n = pread(fd, data.data() + got, total - got, static_cast<off_t>(got));
        REQUIRE(n > 0);
        got += static_cast<size_t>(n);
    }
    close(fd);
    // Walk the records: each must be whole, and each writer's in order.
    std::map<int, int> next;
    size_t pos = 0;
    while (pos < total) {
        int w = data[pos] - 'a';
        REQUIRE((w >= 0 && w < kWriters));
        int i = std::stoi(data.substr(pos + 1, 6));
        REQUIRE(i == next[w]);
        size_t len = static_cast<size_t>(record_size(w, i));
        REQUIRE(pos + len <= total);
        CHECK(data.find_first_not_of(static_cast<char>('A' + w), pos + 8) >= pos + len);
        ++next[w];
        pos += len;
    }
    for (int w = 0; w < kWriters; ++w) CHECK(next[w] == kRecords);
}

TEST_CASE("xattrs: size probe, ERANGE, ENODATA, listing, read-only names") {
    Mount m;
    std::string p = m.path("seq/0");
    ssize_t n = getxattr(p.c_str(), "user.zone", nullptr, 0);
    REQUIRE(n > 10);
    std::string small(static_cast<size_t>(n - 1), '\0');
    CHECK(getxattr(p.c_str(), "user.zone", small.data(), small.size()) == -1);
    CHECK(errno == ERANGE);
    auto j = nlohmann::json::parse(xattr(p, "user.zone"));
    CHECK(j["zone"] == 2);
    CHECK(j["type"] == "seq");
    CHECK(j["cond"] == "empty");
    CHECK(j["cond_code"] == 1);
    CHECK(j["start"] == 2 * kZone);
    CHECK(j["wp"] == 2 * kZone);
    CHECK(j["size"] == 0);
    CHECK(getxattr(p.c_str(), "user.other", nullptr, 0) == -1);
    CHECK(errno == ENODATA);
    CHECK(getxattr(m.path("").c_str(), "user.zone", nullptr, 0) == -1);
    CHECK(errno == ENODATA);
    char names[256];
    ssize_t ln = listxattr(p.c_str(), names, sizeof names);
    CHECK(std::string(names, static_cast<size_t>(ln)) == std::string("user.zone\0user.zone.cmd\0", 24));
    ln = listxattr(m.path("cnv/0").c_str(), names, sizeof names);
    CHECK(std::string(names, static_cast<size_t>(ln)) == std::string("user.zone\0", 10));
    ln = listxattr(m.path("").c_str(), names, sizeof names);
    CHECK(std::string(names, static_cast<size_t>(ln)) == std::string("user.zqfs\0", 10));
    CHECK(setxattr(p.c_str(), "user.zone", "x", 1, 0) == -1);
    CHECK(errno == EPERM);
    CHECK(setxattr(m.path("cnv/0").c_str(), "user.zone.cmd", "reset", 5, 0) == -1);
    CHECK(errno == EINVAL);
    auto root = nlohmann::json::parse(xattr(m.path(""), "user.zqfs"));
    CHECK(root["nr_zones"] == 8);
    CHECK(root["mount"]["perm"] == "0640");
    CHECK(xattr(m.path(""), "user.zqfs").size() < 4096);
}

TEST_CASE("inode numbers: zone index for files, nr_zones.. for directories; readdir lists zone 0") {
    Mount m;
    struct stat s{};
    REQUIRE(stat(m.path("cnv/0").c_str(), &s) == 0);
    CHECK(s.st_ino == 0);
    REQUIRE(stat(m.path("seq/5").c_str(), &s) == 0);
    CHECK(s.st_ino == 7);
    CHECK(s.st_blocks == static_cast<blkcnt_t>(kZone / 512));
    REQUIRE(stat(m.path("").c_str(), &s) == 0);
    CHECK(s.st_ino == 8);
    REQUIRE(stat(m.path("cnv").c_str(), &s) == 0);
    CHECK(s.st_ino == 9);
    REQUIRE(stat(m.path("seq").c_str(), &s) == 0);
    CHECK(s.st_ino == 10);
    std::vector<std::string> names;
    for (auto& e : std::filesystem::directory_iterator(m.path("cnv"))) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"0", "1"});
}

TEST_CASE("explicit-open: write-opens beyond max_open_zones are EBUSY") {
    Mount m("explicit-open", 2, 2);
    int a = open_file(m.path("seq/0"), O_WRONLY);
    int b = open_file(m.path("seq/1"), O_WRONLY);
    CHECK(cond_of(m.path("seq/0")) == "open-explicit");
    CHECK(::open(m.path("seq/2").c_str(), O_WRONLY) == -1);
    CHECK(errno == EBUSY);
    int r = open_file(m.path("seq/2"), O_RDONLY);
    close(r);
    close(a);
    int c = ::open(m.path("seq/2").c_str(), O_WRONLY);
    CHECK(c >= 0);
    close(c);
    close(b);
}

TEST_CASE("without conventional zones there is no cnv directory") {
    Mount m("", 0);
    struct stat s{};
    CHECK(stat(m.path("cnv").c_str(), &s) == -1);
    CHECK(errno == ENOENT);
    REQUIRE(stat(m.path("").c_str(), &s) == 0);
    CHECK(s.st_size == 1);
    REQUIRE(stat(m.path("seq/0").c_str(), &s) == 0);
    CHECK(s.st_ino == 0);
}

TEST_CASE("a reader with cached pages sees later appends and resets") {
    Mount m;
    std::string p = m.path("seq/3");
    int w = open_file(p, O_WRONLY | O_APPEND);
    int r = open_file(p, O_RDONLY);
    CHECK(write(w, "first", 5) == 5);
    char buf[64] = {};
    CHECK(pread(r, buf, sizeof buf, 0) == 5);  // caches the partial first page
    CHECK(write(w, "second", 6) == 6);
    CHECK(pread(r, buf, sizeof buf, 0) == 11);
    CHECK(std::string(buf, 11) == "firstsecond");
    REQUIRE(setxattr(p.c_str(), "user.zone.cmd", "reset", 5, 0) == 0);
    CHECK(size_of(p) == 0);
    CHECK(pread(r, buf, sizeof buf, 0) == 0);
    CHECK(write(w, "third", 5) == 5);
    CHECK(pread(r, buf, sizeof buf, 0) == 5);
    CHECK(std::string(buf, 5) == "third");
    close(w);
    close(r);
}
