// Raw deflate (zlib, window bits -12) as qemu stores compressed clusters.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "qcow2/result.h"

namespace zqfs::qcow2 {

// Inflates `in` into exactly out.size() bytes; trailing input is ignored.
Status inflate_cluster(std::span<const std::byte> in, std::span<std::byte> out);
// Deflates a cluster; returns an empty vector if it does not shrink.
Result<std::vector<std::byte>> deflate_cluster(std::span<const std::byte> in);

}  // namespace zqfs::qcow2
