#include "tools/diagnostics.h"

#include <fmt/format.h>

#include <getopt.h>

#include <cstdio>

namespace zqfs::tools {

int fail(std::string_view file, std::string_view what) {
    // The engine prefixes its messages with the file name already; do not
    // print it twice.
    bool named = !file.empty() && what.size() > file.size() && what.substr(0, file.size()) == file &&
                 what[file.size()] == ':';
    if (named || file.empty())
        fmt::print(stderr, "zqfs-img: {}\n", what);
    else
        fmt::print(stderr, "zqfs-img: {}: {}\n", file, what);
    return 1;
}

int fail(std::string_view file, const Error& e) { return fail(file, e.message); }

int usage_error(std::string_view command, std::string_view what) {
    fmt::print(stderr, "zqfs-img: {}: {} (see 'zqfs-img {} --help')\n", command, what, command);
    return 1;
}

int bad_option(std::string_view command, int getopt_result, char** argv) {
    // optind already points past the offending word.
    std::string_view word = argv[optind - 1];
    if (getopt_result == ':') return usage_error(command, fmt::format("option '{}' needs a value", word));
    if (optopt != 0 && word.size() > 2 && word[0] == '-' && word[1] != '-')
        return usage_error(command, fmt::format("unknown option '-{}'", static_cast<char>(optopt)));
    return usage_error(command, fmt::format("unknown option '{}'", word));
}

void print_warnings(const std::vector<std::string>& warnings) {
    for (const auto& w : warnings) fmt::print(stderr, "zqfs-img: warning: {}\n", w);
}

}  // namespace zqfs::tools
