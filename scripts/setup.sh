# Shared set-up for run.sh and test.sh: install missing Debian packages and
# build the project. Sourced, not executed; defines functions only.

ZQFS_PACKAGES=(cmake g++ pkg-config libfuse3-dev fuse3 libfmt-dev doctest-dev zlib1g-dev
               nlohmann-json3-dev qemu-utils fio attr python3)

zqfs_log() { printf '==> %s\n' "$*"; }

# Installs only what is missing, so a ready machine never touches apt.
zqfs_install_packages() {
    local missing=() pkg
    for pkg in "${ZQFS_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    zqfs_log "installing missing packages: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null; then
            echo "error: need root or sudo to install: ${missing[*]}" >&2
            return 1
        fi
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# zqfs_build BUILD_DIR [extra cmake arguments...]: configure and build.
zqfs_build() {
    local dir=$1
    shift
    local jobs=${ZQFS_JOBS:-$(nproc 2>/dev/null || echo 2)}
    zqfs_log "building in $dir"
    cmake -S "$ZQFS_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >"$dir/configure.log" 2>&1 || {
        cat "$dir/configure.log" >&2
        return 1
    }
    cmake --build "$dir" -j "$jobs" ${ZQFS_BUILD_TARGET:+--target "$ZQFS_BUILD_TARGET"}
}
