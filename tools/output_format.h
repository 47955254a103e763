// --output=FORMAT parsing shared by info, report and check.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>
#include <string_view>

namespace zqfs::tools {

enum class OutputFormat { human, json, blkzone };

// Accepts the formats in `allowed` only; nullopt for anything else.
std::optional<OutputFormat> parse_output_format(std::string_view text, std::initializer_list<OutputFormat> allowed);

// qemu-img's human sizes: "768 MiB", "1 GiB", "512 B", "1.5 KiB".
std::string human_size(uint64_t bytes);

// Formats into a buffer that is printed in one go.
template <class... Args>
void append(fmt::memory_buffer& out, fmt::format_string<Args...> f, Args&&... args) {
    fmt::format_to(std::back_inserter(out), f, std::forward<Args>(args)...);
}

}  // namespace zqfs::tools
