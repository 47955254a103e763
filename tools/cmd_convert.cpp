// zqfs-img convert -O raw FILE OUTPUT
//
// Copies the virtual disk into a raw file, zoned or plain image alike.
// Blocks that read as zeros are skipped, and the file is sized with
// ftruncate, so the output is sparse. A regular OUTPUT is written under a
// temporary name and renamed into place once complete and synced: an
// interrupted convert leaves no half-written OUTPUT.
#include <fcntl.h>
#include <getopt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tools/commands.h"
#include "tools/diagnostics.h"
#include "tools/image_source.h"

namespace zqfs::tools {
namespace {

constexpr const char* kConvertUsage = "usage: zqfs-img convert -O raw FILE OUTPUT\n";
constexpr size_t kChunk = 2 << 20;       // read granularity (the largest cluster size)
constexpr size_t kZeroBlock = 4096;      // granularity of hole detection

bool all_zero(const std::byte* p, size_t n) {
    return n == 0 || (p[0] == std::byte{0} && std::memcmp(p, p + 1, n - 1) == 0);
}

Status write_all(int fd, const std::string& name, uint64_t offset, const std::byte* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
        if (w < 0) {
            if (errno == EINTR) continue;
            return make_error(errno, "{}: write at offset {} failed: {}", name, offset, std::strerror(errno));
        }
        p += w;
        n -= static_cast<size_t>(w);
        offset += static_cast<uint64_t>(w);
    }
    return {};
}

Status copy_data_extent(OpenedImage& img, int fd, const std::string& out_name, uint64_t start, uint64_t end,
                        std::vector<std::byte>& buf);

// Reads only the extents that hold data; of those, writes the non-zero
// runs of each chunk. Everything else stays a hole.
Status copy_sparse(OpenedImage& img, int fd, const std::string& out_name) {
    ZQ_ASSIGN(std::vector<qcow2::Extent> extents, img.allocation(0, img.virtual_size()));
    std::vector<std::byte> buf(kChunk);
    for (const auto& ext : extents) {
        if (!ext.data) continue;
        ZQ_TRY(copy_data_extent(img, fd, out_name, ext.offset, ext.offset + ext.length, buf));
    }
    return {};
}

Status copy_data_extent(OpenedImage& img, int fd, const std::string& out_name, uint64_t start, uint64_t end,
                        std::vector<std::byte>& buf) {
    for (uint64_t off = start; off < end; off += kChunk) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, end - off));
        ZQ_TRY(img.read(off, std::span(buf.data(), n)));
        size_t run_start = 0;
        bool in_run = false;
        for (size_t b = 0; b < n; b += kZeroBlock) {
            size_t len = std::min(kZeroBlock, n - b);
            bool zero = all_zero(buf.data() + b, len);
            if (!zero && !in_run) {
                run_start = b;
                in_run = true;
            } else if (zero && in_run) {
                ZQ_TRY(write_all(fd, out_name, off + run_start, buf.data() + run_start, b - run_start));
                in_run = false;
            }
        }
        if (in_run) ZQ_TRY(write_all(fd, out_name, off + run_start, buf.data() + run_start, n - run_start));
    }
    return {};
}

Status finish_output(int fd, const std::string& name, uint64_t size, bool regular) {
    if (regular && ::ftruncate(fd, static_cast<off_t>(size)) != 0)
        return make_error(errno, "{}: cannot set size to {}: {}", name, size, std::strerror(errno));
    if (regular && ::fdatasync(fd) != 0) return make_error(errno, "{}: sync failed: {}", name, std::strerror(errno));
    return {};
}

}  // namespace

int run_convert(int argc, char** argv) {
    static const option kLong[] = {{"help", no_argument, nullptr, 'h'}, {nullptr, 0, nullptr, 0}};
    std::string out_format;
    opterr = 0;
    optind = 0;
    for (int c; (c = getopt_long(argc, argv, ":O:f:h", kLong, nullptr)) != -1;) {
        switch (c) {
            case 'O': out_format = optarg; break;
            case 'f':
                if (std::string_view(optarg) != "qcow2")
                    return usage_error("convert", fmt::format("input format '{}' is not supported (only qcow2)", optarg));
                break;
            case 'h': fmt::print("{}", kConvertUsage); return 0;
            default: return bad_option("convert", c, argv);
        }
    }
    if (out_format.empty()) return usage_error("convert", "missing -O raw (the only output format)");
    if (out_format != "raw")
        return usage_error("convert", fmt::format("output format '{}' is not supported (only raw)", out_format));
    if (argc - optind < 2) return usage_error("convert", "expected FILE OUTPUT");
    if (argc - optind > 2) return usage_error("convert", fmt::format("unexpected argument '{}'", argv[optind + 2]));
    std::string path = argv[optind];
    std::string output = argv[optind + 1];

    std::vector<std::string> warnings;
    auto img = open_image(path, /*writable=*/false, &warnings);
    print_warnings(warnings);
    if (!img.ok()) return fail(path, img.error());

    // Devices (and /dev/null) are written in place; files via a temporary.
    struct stat st {};
    bool regular = ::stat(output.c_str(), &st) != 0 || S_ISREG(st.st_mode);
    std::string target = regular ? fmt::format("{}.zqfs-img-{}.tmp", output, ::getpid()) : output;
    int fd = ::open(target.c_str(), regular ? (O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC) : (O_WRONLY | O_CLOEXEC), 0644);
    if (fd < 0) return fail(output, fmt::format("cannot create: {}", std::strerror(errno)));
    Status s = copy_sparse(*img, fd, output);
    if (s.ok()) s = finish_output(fd, output, img->virtual_size(), regular);
    ::close(fd);
    if (s.ok() && regular && ::rename(target.c_str(), output.c_str()) != 0)
        s = make_error(errno, "{}: cannot rename into place: {}", output, std::strerror(errno));
    if (!s.ok()) {
        if (regular) ::unlink(target.c_str());
        return fail(path, s.error());
    }
    if (auto c = img->close(); !c.ok()) return fail(path, c.error());
    return 0;
}

}  // namespace zqfs::tools
