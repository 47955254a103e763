// libFuzzer target: the option parsers users reach from the command line:
// zqfs-img create's -o lists and size (qemu-img syntax) and zqfs's mount
// command line. Input lines are arguments; the first byte picks the parser.
#include <cstdint>
#include <string>
#include <vector>

#include "core/create_options.h"
#include "fuse/mount_options.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    std::vector<std::string> args;
    std::string cur;
    for (size_t i = 1; i < size; ++i) {
        if (data[i] == '\n') {
            args.push_back(cur);
            cur.clear();
        } else {
            cur.push_back(static_cast<char>(data[i]));
        }
    }
    args.push_back(cur);
    if (data[0] % 2 == 0) {
        std::optional<std::string> size_arg;
        if (data[0] % 4 == 0 && !args.empty()) {
            size_arg = args.back();
            args.pop_back();
        }
        std::vector<std::string> warnings;
        (void)zqfs::core::parse_create_options(args, size_arg, &warnings);
        for (const auto& a : args) (void)zqfs::core::parse_size(a);
    } else {
        std::vector<const char*> argv{"zqfs"};
        for (const auto& a : args) argv.push_back(a.c_str());
        (void)zqfs::fs::parse_command_line(static_cast<int>(argv.size()), argv.data(), 1000, 1000);
    }
    return 0;
}
