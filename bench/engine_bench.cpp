// The qcow2 engine alone (no zones, no FUSE): sequential writes or reads of
// fixed-size requests through zqfs::qcow2::Image, timed the way
// `qemu-img bench` times its own run (first request to last completion), so
// bench/engine.sh can put the two side by side.
//
//   engine_bench write IMAGE COUNT [--size BYTES] [--cache none|writeback] [--flush]
//   engine_bench read  IMAGE COUNT [--size BYTES] [--cache none|writeback]
//
// `write` creates IMAGE (64 KiB clusters, virtual size COUNT x size) and
// writes it from offset 0; `read` opens an image written before and reads it
// back. --cache none routes every aligned host I/O through an O_DIRECT
// descriptor (the engine itself only has the buffered PosixFile; this
// bench-local HostFile stands in for qemu's cache=none); unaligned metadata
// I/O falls back to the buffered descriptor, which Linux keeps coherent.
// --flush adds Image::flush() (fdatasync and metadata ordering) to the
// timed region. Prints one line: `engine <op> cache=<c> count=N size=S
// seconds=T mib_per_s=R`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "qcow2/host_file.h"
#include "qcow2/image.h"

namespace {

using zqfs::Result;
using zqfs::Status;
using zqfs::make_error;

constexpr uint64_t direct_align = 4096;

bool aligned(uint64_t offset, const void* p, size_t n) {
    return offset % direct_align == 0 && n % direct_align == 0 &&
           reinterpret_cast<uintptr_t>(p) % direct_align == 0;
}

// A HostFile with two descriptors on one file: O_DIRECT for aligned
// requests, buffered for the rest. Without O_DIRECT both are buffered.
class BenchFile final : public zqfs::qcow2::HostFile {
public:
    BenchFile(int buffered, int direct, std::string name) : fd_(buffered), direct_(direct), name_(std::move(name)) {}
    ~BenchFile() override {
        ::close(fd_);
        if (direct_ >= 0) ::close(direct_);
    }

    Status read_at(uint64_t offset, std::span<std::byte> buf) override {
        int fd = pick(offset, buf.data(), buf.size());
        size_t done = 0;
        while (done < buf.size()) {
            ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return make_error(errno, "{}: read: {}", name_, std::strerror(errno));
            if (n == 0) {
                std::memset(buf.data() + done, 0, buf.size() - done);
                break;
            }
            done += static_cast<size_t>(n);
        }
        return {};
    }
    Status write_at(uint64_t offset, std::span<const std::byte> buf) override {
        int fd = pick(offset, buf.data(), buf.size());
        size_t done = 0;
        while (done < buf.size()) {
            ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return make_error(errno, "{}: write: {}", name_, std::strerror(errno));
            done += static_cast<size_t>(n);
        }
        return {};
    }
    Status sync() override {
        if (::fdatasync(fd_) != 0) return make_error(errno, "{}: fdatasync: {}", name_, std::strerror(errno));
        return {};
    }
    Status punch_hole(uint64_t offset, uint64_t length) override {
        if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                        static_cast<off_t>(length)) != 0)
            return make_error(errno, "{}: punch: {}", name_, std::strerror(errno));
        return {};
    }
    Result<uint64_t> size() override {
        struct stat st;
        if (::fstat(fd_, &st) != 0) return make_error(errno, "{}: stat: {}", name_, std::strerror(errno));
        return static_cast<uint64_t>(st.st_size);
    }
    Status truncate(uint64_t size) override {
        if (::ftruncate(fd_, static_cast<off_t>(size)) != 0)
            return make_error(errno, "{}: truncate: {}", name_, std::strerror(errno));
        return {};
    }
    Result<uint64_t> allocated_bytes() override {
        struct stat st;
        if (::fstat(fd_, &st) != 0) return make_error(errno, "{}: stat: {}", name_, std::strerror(errno));
        return static_cast<uint64_t>(st.st_blocks) * 512;
    }
    const std::string& name() const override { return name_; }
    int fd() const override { return fd_; }

private:
    int pick(uint64_t offset, const void* p, size_t n) const {
        return direct_ >= 0 && aligned(offset, p, n) ? direct_ : fd_;
    }

    int fd_;
    int direct_;
    std::string name_;
};

Result<std::unique_ptr<zqfs::qcow2::HostFile>> open_bench_file(const std::string& path, bool create, bool direct) {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return make_error(errno, "{}: open: {}", path, std::strerror(errno));
    int dfd = -1;
    if (direct) {
        dfd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_DIRECT);
        if (dfd < 0) {
            int e = errno;
            ::close(fd);
            return make_error(e, "{}: open O_DIRECT: {}", path, std::strerror(e));
        }
    }
    return std::unique_ptr<zqfs::qcow2::HostFile>(new BenchFile(fd, dfd, path));
}

[[noreturn]] void usage() {
    fmt::print(stderr,
               "usage: engine_bench write|read IMAGE COUNT [--size BYTES] [--cache none|writeback] [--flush]\n");
    std::exit(2);
}

[[noreturn]] void fail(const zqfs::Error& e) {
    fmt::print(stderr, "engine_bench: {}\n", e.message);
    std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4) usage();
    std::string op = argv[1];
    std::string path = argv[2];
    uint64_t count = std::strtoull(argv[3], nullptr, 10);
    uint64_t size = 1u << 20;
    std::string cache = "none";
    bool flush = false;
    for (int i = 4; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--size" && i + 1 < argc) size = std::strtoull(argv[++i], nullptr, 10);
        else if (a == "--cache" && i + 1 < argc) cache = argv[++i];
        else if (a == "--flush") flush = true;
        else usage();
    }
    if ((op != "write" && op != "read") || count == 0 || size == 0 || (cache != "none" && cache != "writeback"))
        usage();
    bool direct = cache == "none";

    auto file = open_bench_file(path, op == "write", direct);
    if (!file) fail(file.error());
    std::unique_ptr<zqfs::qcow2::Image> image;
    if (op == "write") {
        zqfs::qcow2::CreateOptions co;
        co.virtual_size = count * size;
        co.cluster_size = 65536;
        auto r = zqfs::qcow2::Image::create(std::move(*file), co);
        if (!r) fail(r.error());
        image = std::move(*r);
    } else {
        zqfs::qcow2::OpenOptions oo;
        oo.writable = false;
        auto r = zqfs::qcow2::Image::open(std::move(*file), oo);
        if (!r) fail(r.error());
        image = std::move(*r);
    }

    auto* raw = static_cast<std::byte*>(std::aligned_alloc(direct_align, size));
    std::span<std::byte> buf(raw, size);
    for (uint64_t i = 0; i < size; ++i) raw[i] = std::byte(static_cast<uint8_t>(i * 131 + 7));

    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < count; ++i) {
        Status s = op == "write" ? image->write(i * size, buf) : image->read(i * size, buf);
        if (!s) fail(s.error());
    }
    if (flush && op == "write") {
        if (auto s = image->flush(); !s) fail(s.error());
    }
    auto t1 = std::chrono::steady_clock::now();
    if (auto s = image->close(); !s) fail(s.error());
    std::free(raw);

    double secs = std::chrono::duration<double>(t1 - t0).count();
    fmt::print("engine {} cache={} count={} size={} seconds={:.6f} mib_per_s={:.1f}\n", op, cache, count, size, secs,
               static_cast<double>(count * size) / (1u << 20) / secs);
    return 0;
}
