#include "tools/output_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <string>

namespace zqfs::tools {

std::optional<OutputFormat> parse_output_format(std::string_view text, std::initializer_list<OutputFormat> allowed) {
    std::optional<OutputFormat> f;
    if (text == "human") f = OutputFormat::human;
    if (text == "json") f = OutputFormat::json;
    if (text == "blkzone") f = OutputFormat::blkzone;
    if (f && std::find(allowed.begin(), allowed.end(), *f) == allowed.end()) f.reset();
    return f;
}

std::string human_size(uint64_t bytes) {
    static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(bytes);
    int unit = 0;
    while (v >= 1024 && unit < 6) {
        v /= 1024;
        ++unit;
    }
    if (unit == 0) return fmt::format("{} B", bytes);
    std::string s = fmt::format("{:.3g} {}", v, kUnits[unit]);
    return s;
}

}  // namespace zqfs::tools
