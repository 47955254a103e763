// Times one file operation on a path, without the cost of starting a
// program around it (which `time truncate ...` would include):
//
//   zone_op_time truncate PATH SIZE      truncate(2)  (reset: 0, finish: capacity)
//   zone_op_time xattr PATH VALUE        setxattr(PATH, "user.zone.cmd", VALUE)
//
// Prints `seconds=T` and exits non-zero (with the errno text) on failure.
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

int main(int argc, char** argv) {
    if (argc != 4) {
        fmt::print(stderr, "usage: zone_op_time truncate PATH SIZE | xattr PATH VALUE\n");
        return 2;
    }
    std::string op = argv[1];
    const char* path = argv[2];
    const char* arg = argv[3];
    int rc;
    auto t0 = std::chrono::steady_clock::now();
    if (op == "truncate") {
        rc = ::truncate(path, static_cast<off_t>(std::strtoull(arg, nullptr, 10)));
    } else if (op == "xattr") {
        rc = ::setxattr(path, "user.zone.cmd", arg, std::strlen(arg), 0);
    } else {
        fmt::print(stderr, "zone_op_time: unknown operation '{}'\n", op);
        return 2;
    }
    auto t1 = std::chrono::steady_clock::now();
    if (rc != 0) {
        fmt::print(stderr, "zone_op_time: {} {}: {}\n", op, path, std::strerror(errno));
        return 1;
    }
    fmt::print("seconds={:.6f}\n", std::chrono::duration<double>(t1 - t0).count());
    return 0;
}
