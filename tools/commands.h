// The subcommands of zqfs-img. Each takes the arguments after the
// subcommand name (argv[0] is the subcommand itself) and returns the exit
// status: 0 success, 1 failure (and `check`'s qemu-img codes 2 and 3).
#pragma once

namespace zqfs::tools {

int run_create(int argc, char** argv);
int run_info(int argc, char** argv);
int run_report(int argc, char** argv);
int run_check(int argc, char** argv);
int run_zone(int argc, char** argv);
int run_convert(int argc, char** argv);

}  // namespace zqfs::tools
