// zqfs IMAGE MOUNTPOINT [-o OPT[,OPT...]] [-f] [-d]
//
// Start-up order, and why:
// 1. Parse the command line and create the FUSE session (validates options)
//    before forking: errors print once, as one line, from the terminal's
//    process.
// 2. Fork (unless -f). The child opens the device (its commit thread must
//    be born after the fork), mounts, then reports success or failure
//    through a pipe; the parent exits with that status, so `zqfs` returns
//    only once the mount is usable.
// 3. Run the multithreaded loop until unmount or SIGINT/SIGTERM/SIGHUP, then
//    unmount and close the device, which flushes data, metadata and write
//    pointers.
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuse/mount_options.h"
#include "fuse/zonefs.h"

namespace {

bool g_use_syslog = false;

// libfuse's messages, in our one-line format (or syslog once daemonized).
void log_line(enum fuse_log_level level, const char* fmt_str, va_list ap) {
    char buf[1024];
    vsnprintf(buf, sizeof buf, fmt_str, ap);
    std::string line = buf;
    while (!line.empty() && line.back() == '\n') line.pop_back();
    if (line.starts_with("fuse: ")) line.erase(0, 6);
    if (!line.starts_with("zqfs: ")) line = "zqfs: " + line;
    if (g_use_syslog) syslog(static_cast<int>(level), "%s", line.c_str());
    else fprintf(stderr, "%s\n", line.c_str());
}

int fail(const std::string& msg) {
    fprintf(stderr, "zqfs: %s\n", msg.c_str());
    return 1;
}

// Tells the waiting parent how the mount went; no-op in the foreground.
void report(int fd, bool ok) {
    if (fd < 0) return;
    char c = ok ? '0' : '1';
    if (::write(fd, &c, 1) != 1) {
        // The parent is gone; nothing to tell.
    }
    close(fd);
}

void detach_stdio() {
    int null = ::open("/dev/null", O_RDWR);
    if (null < 0) return;
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    if (null > 2) close(null);
    g_use_syslog = true;
    if (chdir("/") != 0) {
        // Keeping the old working directory only pins it; not fatal.
    }
}

// Runs in the daemon child (or the foreground process).
// The mount point as an absolute path (libfuse unmounts by that path after
// the daemon has left its working directory), or an error line.
zqfs::Result<std::string> resolve_mountpoint(const std::string& path) {
    char abs[PATH_MAX];
    struct stat st{};
    if (!realpath(path.c_str(), abs) || stat(abs, &st) != 0)
        return zqfs::make_error(errno, "mount point {}: {}", path, strerror(errno));
    // FUSE would happily mount the directory tree over a file.
    if (!S_ISDIR(st.st_mode)) return zqfs::make_error(ENOTDIR, "mount point {}: not a directory", path);
    return std::string(abs);
}

int serve(const zqfs::fs::CommandLine& cmd, const std::string& mountpoint, fuse_session* se, zqfs::fs::ZoneFs& fs,
          int report_fd) {
    std::vector<std::string> warnings;
    zqfs::core::DeviceOpenOptions dopts;
    dopts.writable = !cmd.options.read_only;
    dopts.commit_seconds = cmd.options.commit_seconds;
    dopts.warnings = &warnings;
    auto dev = zqfs::core::ZonedDevice::open(cmd.image, dopts);
    for (const auto& w : warnings) fprintf(stderr, "zqfs: warning: %s\n", w.c_str());
    if (!dev.ok()) {
        fail(dev.error().message);
        report(report_fd, false);
        return 1;
    }
    fs.attach(std::move(dev).value(), se);

    // libfuse installs its handlers only over SIG_DFL; a background job of a
    // non-interactive shell starts with SIGINT ignored, and must still stop
    // cleanly on it.
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal(sig, SIG_DFL);
    if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, mountpoint.c_str()) != 0) {
        // libfuse has printed why.
        (void)fs.device().close();
        report(report_fd, false);
        return 1;
    }
    report(report_fd, true);
    if (report_fd >= 0) detach_stdio();

    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_clone_fd(cfg, 0);
    // Few workers: each request is short (one pwrite/pread of at most 1 MiB)
    // and more threads than CPUs only add wake-ups (bench/README.md measured
    // 4 KiB appends 50k -> 62k IOPS going from 16 to 4 on 2 CPUs).
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    fuse_loop_cfg_set_max_threads(cfg, static_cast<unsigned>(std::max(4L, 2 * cpus)));
    int rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);

    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    zqfs::Status closed = fs.device().close();
    if (!closed.ok()) {
        fuse_log(FUSE_LOG_ERR, "closing %s: %s\n", cmd.image.c_str(), closed.error().message.c_str());
        return 1;
    }
    // The loop returns the signal number after SIGINT/SIGTERM/SIGHUP (a
    // requested, clean stop) and a negative errno on failure.
    return rc >= 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = zqfs::fs::parse_command_line(argc, argv, getuid(), getgid());
    fuse_set_log_func(log_line);
    if (!parsed.ok()) return fail(parsed.error().message);
    zqfs::fs::CommandLine& cmd = *parsed;
    zqfs::fs::settle_read_path(cmd);
    if (cmd.help) {
        fputs(zqfs::fs::usage().c_str(), stdout);
        return 0;
    }
    if (cmd.version) {
        printf("zqfs 0.1.0 (libfuse %s)\n", fuse_pkgversion());
        return 0;
    }

    auto mountpoint = resolve_mountpoint(cmd.mountpoint);
    if (!mountpoint.ok()) return fail(mountpoint.error().message);

    std::vector<char*> fargv;
    for (const auto& a : cmd.fuse_argv) fargv.push_back(const_cast<char*>(a.c_str()));
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(fargv.size()), fargv.data());
    zqfs::fs::ZoneFs fs(cmd.options);
    const fuse_lowlevel_ops& ops = zqfs::fs::ZoneFs::operations();
    fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &fs);
    fuse_opt_free_args(&args);  // the session keeps its own copy of what it needs
    if (!se) return 1;          // libfuse has printed why

    int rc;
    if (cmd.foreground) {
        rc = serve(cmd, *mountpoint, se, fs, -1);
    } else {
        int pipefd[2];
        if (pipe(pipefd) != 0) return fail(fmt::format("pipe: {}", strerror(errno)));
        pid_t pid = fork();
        if (pid < 0) return fail(fmt::format("fork: {}", strerror(errno)));
        if (pid > 0) {
            close(pipefd[1]);
            char c = '1';
            ssize_t n = ::read(pipefd[0], &c, 1);
            if (n == 1 && c == '0') _exit(0);
            int status = 0;
            waitpid(pid, &status, 0);
            _exit(1);
        }
        close(pipefd[0]);
        setsid();
        rc = serve(cmd, *mountpoint, se, fs, pipefd[1]);
    }
    fuse_session_destroy(se);
    return rc;
}
