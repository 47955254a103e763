// Opening an image for a zqfs-img command: the header is read first (without
// taking the lock) to learn whether the image is zoned; then either the
// zoned device (core/) or the plain qcow2 engine opens it. Read-only opens
// take no lock, so info/report/check work on a mounted image; writable opens
// take the OFD lock and fail with "image is in use" when it is held.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/zoned_device.h"
#include "qcow2/header.h"
#include "qcow2/image.h"
#include "qcow2/result.h"

namespace zqfs::tools {

// The parsed qcow2 header plus the facts a command needs before opening.
struct ProbedHeader {
    qcow2::Header header;
    uint64_t file_size = 0;
    bool zoned = false;  // incompatible bit 5 set
};

Result<ProbedHeader> probe_header(const std::string& path);

// Exactly one of `zoned` and `plain` is set.
struct OpenedImage {
    ProbedHeader probe;
    std::unique_ptr<core::ZonedDevice> zoned;
    std::unique_ptr<qcow2::Image> plain;

    uint64_t virtual_size() const;
    Status read(uint64_t offset, std::span<std::byte> buf);
    Result<std::vector<qcow2::Extent>> allocation(uint64_t offset, uint64_t length);
    Status close();
};

// `for_check` opens a zoned image even when write-pointer entries are
// invalid, so check() can report them as corruption.
Result<OpenedImage> open_image(const std::string& path, bool writable, std::vector<std::string>* warnings,
                               bool for_check = false);

}  // namespace zqfs::tools
