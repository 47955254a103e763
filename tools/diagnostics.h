// How zqfs-img talks to its user when something goes wrong: every error is
// one line "zqfs-img: <file>: <what>" on stderr, warnings likewise with
// "warning:"; usage errors name the subcommand and the bad option.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "qcow2/result.h"

namespace zqfs::tools {

// Prints the error; prefixes `file` unless the message already names it.
// Returns 1 so callers can `return fail(...)`.
int fail(std::string_view file, const Error& e);
int fail(std::string_view file, std::string_view what);
// "zqfs-img: <command>: <what> (see ...--help)"; returns 1.
int usage_error(std::string_view command, std::string_view what);
// Reports what getopt_long (run with a leading ':' in its optstring)
// rejected: an unknown option or one missing its value. Returns 1.
int bad_option(std::string_view command, int getopt_result, char** argv);
void print_warnings(const std::vector<std::string>& warnings);

}  // namespace zqfs::tools
