#!/usr/bin/env bash
# ./test.sh: the set-up of run.sh, then every test (unit and integration)
# through ctest. Set ZQFS_SANITIZE_TESTS=1 to also run the suite in an
# ASan+UBSan build (build-asan/). Exits non-zero on any failure.
set -uo pipefail
ZQFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$ZQFS_ROOT/scripts/setup.sh"
cd "$ZQFS_ROOT"

jobs=${ZQFS_TEST_JOBS:-2}
summary=()
failed=0

run_suite() {  # run_suite NAME BUILD_DIR [cmake args...]
    local name=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    if ! zqfs_build "$dir" "$@"; then
        summary+=("$name: BUILD FAILED")
        failed=1
        return
    fi
    zqfs_log "running tests ($name)"
    if ctest --test-dir "$dir" --output-on-failure -j "$jobs" | tee "$dir/ctest.log"; then
        summary+=("$name: $(grep -Eo '[0-9]+% tests passed.*' "$dir/ctest.log" | tail -1)")
    else
        summary+=("$name: FAILED: $(grep -Eo '[0-9]+% tests passed.*' "$dir/ctest.log" | tail -1)")
        failed=1
    fi
}

if ! zqfs_install_packages; then
    echo "test.sh: FAIL (could not install packages)"
    exit 1
fi
run_suite default "$ZQFS_ROOT/build"
# Hook for the sanitizer run: enabled by ZQFS_SANITIZE_TESTS=1.
if [ "${ZQFS_SANITIZE_TESTS:-0}" = 1 ]; then
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
        run_suite asan+ubsan "$ZQFS_ROOT/build-asan" -DZQFS_SANITIZE=ON
fi

if [ $failed -eq 0 ]; then
    echo "test.sh: PASS (${summary[*]})"
else
    echo "test.sh: FAIL (${summary[*]})"
fi
exit $failed
