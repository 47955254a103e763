// The one interface through which every byte of an image reaches the host.
//
// Engine and zone layers never call pread/pwrite/fdatasync directly; they go
// through HostFile so tests can substitute a file that records, reorders,
// drops or fails writes (crash simulation, fault injection). Implementations
// must be safe to call from many threads at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "qcow2/result.h"

namespace zqfs::qcow2 {

class HostFile {
public:
    virtual ~HostFile() = default;

    // Reads exactly buf.size() bytes; bytes past end-of-file read as zeros.
    virtual Status read_at(uint64_t offset, std::span<std::byte> buf) = 0;
    // Writes exactly buf.size() bytes (retrying short writes).
    virtual Status write_at(uint64_t offset, std::span<const std::byte> buf) = 0;
    // Makes every completed write durable (fdatasync).
    virtual Status sync() = 0;
    // Hint: start writing [offset, offset+length) to stable storage without
    // waiting (sync_file_range WRITE). Promises nothing; sync() still does.
    virtual void start_writeback(uint64_t, uint64_t) {}
    // Deallocates host space; the range reads back as zeros afterwards.
    virtual Status punch_hole(uint64_t offset, uint64_t length) = 0;
    virtual Result<uint64_t> size() = 0;
    virtual Status truncate(uint64_t size) = 0;
    // Bytes of host storage actually allocated (st_blocks * 512).
    virtual Result<uint64_t> allocated_bytes() = 0;
    // Name used to prefix error messages.
    virtual const std::string& name() const = 0;
    // Underlying descriptor for zero-copy paths, or -1 when there is none.
    virtual int fd() const { return -1; }
};

enum class OpenAccess { read_only, read_write };

// Opens an existing host file. With read_write, an exclusive OFD lock is taken
// on the whole file: a second writer fails at once with "image is in use".
Result<std::unique_ptr<HostFile>> open_host_file(const std::string& path, OpenAccess access);

// Creates (or truncates) a host file for writing, locked like read_write.
Result<std::unique_ptr<HostFile>> create_host_file(const std::string& path);

}  // namespace zqfs::qcow2
