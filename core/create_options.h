// `zqfs-img create` options in qemu-img's spelling: each -o argument is a
// comma-separated list of key=value (",," is a literal comma), keys such as
// size, cluster_size, refcount_bits, compression_type, zone.size,
// zone.capacity, zone.conventional_zones, zone.max_append_bytes,
// zone.max_open_zones, zone.max_active_zones, zone.mode, zone.layout.
// Hyphens and underscores in keys are interchangeable. Later values win; a
// positional SIZE wins over -o size= (as in qemu-img).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/zone_types.h"
#include "qcow2/result.h"

namespace zqfs::core {

// "65536", "64K", "64k", "1M", "1.5G", "2T", "512B": bytes. Refuses
// negative, empty, unknown suffixes, fractions of a byte and overflow.
Result<uint64_t> parse_size(std::string_view text);

// Splits one -o argument into key=value pairs, honouring ",," escapes.
Result<std::vector<std::pair<std::string, std::string>>> split_option_list(std::string_view arg);

Result<CreateSpec> parse_create_options(const std::vector<std::string>& o_args, std::optional<std::string> size_arg,
                                        std::vector<std::string>* warnings);

}  // namespace zqfs::core
