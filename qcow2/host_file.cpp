#include "qcow2/host_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "qcow2/worker.h"

namespace zqfs::qcow2 {
namespace {

class PosixFile final : public HostFile {
public:
    PosixFile(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
    ~PosixFile() override {
        writeback_.stop();
        ::close(fd_);
    }

    Status read_at(uint64_t offset, std::span<std::byte> buf) override {
        size_t done = 0;
        while (done < buf.size()) {
            ssize_t n = ::pread(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return io_error("read", offset + done);
            }
            if (n == 0) {  // past end of file: zeros, as the qcow2 spec reads them
                std::memset(buf.data() + done, 0, buf.size() - done);
                break;
            }
            done += static_cast<size_t>(n);
        }
        return {};
    }

    Status write_at(uint64_t offset, std::span<const std::byte> buf) override {
        size_t done = 0;
        while (done < buf.size()) {
            ssize_t n = ::pwrite(fd_, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return io_error("write", offset + done);
            }
            done += static_cast<size_t>(n);
        }
        return {};
    }

    Status sync() override {
        if (::fdatasync(fd_) != 0) return io_error("sync", 0);
        return {};
    }

    // Submitting write-back costs the host file system real work (block
    // allocation, building requests); a helper thread does it beside the
    // writer instead of inside its request.
    void start_writeback(uint64_t offset, uint64_t length) override {
        writeback_.post([fd = fd_, offset, length] {
            // Errors surface at the next fdatasync, where they are reported.
            (void)::sync_file_range(fd, static_cast<off_t>(offset), static_cast<off_t>(length), SYNC_FILE_RANGE_WRITE);
        });
    }

    Status punch_hole(uint64_t offset, uint64_t length) override {
        if (length == 0) return {};
        if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                        static_cast<off_t>(length)) == 0)
            return {};
        if (errno != EOPNOTSUPP && errno != ENOSYS) return io_error("punch hole", offset);
        // The host file system cannot punch: write zeros so the range still reads as zeros.
        static const std::byte zeros[65536] = {};
        while (length > 0) {
            uint64_t n = std::min<uint64_t>(length, sizeof zeros);
            ZQ_TRY(write_at(offset, std::span(zeros, n)));
            offset += n;
            length -= n;
        }
        return {};
    }

    Result<uint64_t> size() override {
        struct stat st;
        if (::fstat(fd_, &st) != 0) return io_error("stat", 0);
        return static_cast<uint64_t>(st.st_size);
    }

    Status truncate(uint64_t size) override {
        if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return io_error("truncate", size);
        return {};
    }

    Result<uint64_t> allocated_bytes() override {
        struct stat st;
        if (::fstat(fd_, &st) != 0) return io_error("stat", 0);
        return static_cast<uint64_t>(st.st_blocks) * 512;
    }

    const std::string& name() const override { return name_; }
    int fd() const override { return fd_; }

private:
    Error io_error(const char* what, uint64_t offset) const {
        int e = errno;
        return make_error(e, "{}: host {} at offset {} failed: {}", name_, what, offset, std::strerror(e));
    }

    int fd_;
    std::string name_;
    Worker writeback_;
};

Status lock_exclusive(int fd, const std::string& path) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0;  // whole file
    if (::fcntl(fd, F_OFD_SETLK, &fl) == 0) return {};
    if (errno == EAGAIN || errno == EACCES)
        return make_error(EBUSY, "{}: image is in use (locked by another zqfs or zqfs-img process)", path);
    return make_error(errno, "{}: cannot lock image: {}", path, std::strerror(errno));
}

}  // namespace

Result<std::unique_ptr<HostFile>> open_host_file(const std::string& path, OpenAccess access) {
    bool rw = access == OpenAccess::read_write;
    int fd = ::open(path.c_str(), (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return make_error(errno, "{}: cannot open: {}", path, std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
        ::close(fd);
        return make_error(EINVAL, "{}: not a regular file", path);
    }
    if (rw) {
        if (auto s = lock_exclusive(fd, path); !s) {
            ::close(fd);
            return s.error();
        }
    }
    return std::unique_ptr<HostFile>(new PosixFile(fd, path));
}

Result<std::unique_ptr<HostFile>> create_host_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return make_error(errno, "{}: cannot create: {}", path, std::strerror(errno));
    if (auto s = lock_exclusive(fd, path); !s) {
        ::close(fd);
        return s.error();
    }
    return std::unique_ptr<HostFile>(new PosixFile(fd, path));
}

}  // namespace zqfs::qcow2
