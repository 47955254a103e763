// Parsing of zone numbers given on the command line.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace zqfs::tools {

// A decimal (or 0x-prefixed hex) unsigned 32-bit number; nullopt otherwise.
std::optional<uint32_t> parse_zone_number(std::string_view text);

}  // namespace zqfs::tools
