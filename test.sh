#!/usr/bin/env bash
# ./test.sh: the set-up of run.sh, then every test, in three builds:
#   1. default (g++): all unit and integration tests through ctest;
#   2. clang with ASan+UBSan: the whole suite again, then each libFuzzer
#      target for ZQFS_FUZZ_SECONDS (default 30) over its seed corpus;
#   3. ThreadSanitizer: the concurrency and stress tests.
# ZQFS_QUICK=1 runs only the default build. Exits non-zero on any failure.
set -uo pipefail
ZQFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$ZQFS_ROOT/scripts/setup.sh"
cd "$ZQFS_ROOT"

jobs=${ZQFS_TEST_JOBS:-2}
summary=()
failed=0
started=$SECONDS

note() {  # note TEXT: one line of the final summary
    summary+=("$1")
}

run_suite() {  # run_suite NAME BUILD_DIR [cmake args...]
    local name=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    if ! zqfs_build "$dir" "$@"; then
        note "$name: BUILD FAILED"
        failed=1
        return 1
    fi
    zqfs_log "running tests ($name)"
    if ctest --test-dir "$dir" --output-on-failure -j "$jobs" | tee "$dir/ctest.log"; then
        note "$name: $(grep -Eo '[0-9]+% tests passed.*' "$dir/ctest.log" | tail -1)"
    else
        note "$name: FAILED: $(grep -Eo '[0-9]+% tests passed.*' "$dir/ctest.log" | tail -1)"
        failed=1
    fi
}

run_fuzzers() {  # run_fuzzers BUILD_DIR
    local dir=$1 fuzzer name work rc
    for fuzzer in "$dir"/bin/fuzz_*; do
        name=$(basename "$fuzzer")
        work=$(mktemp -d)
        mkdir "$work/corpus"
        zqfs_log "fuzzing $name for ${ZQFS_FUZZ_SECONDS:-30} s"
        rc=0
        # New inputs go to a scratch corpus; the seed corpus is only read.
        "$fuzzer" -max_total_time="${ZQFS_FUZZ_SECONDS:-30}" -rss_limit_mb=2048 -timeout=20 \
            -artifact_prefix="$work/" "$work/corpus" "tests/fuzz/corpus/${name#fuzz_}" >"$work/log" 2>&1 || rc=$?
        if [ $rc -eq 0 ]; then
            note "$name: $(grep -Eo 'Done [0-9]+ runs' "$work/log" | tail -1), no findings"
            rm -rf "$work"
        else
            tail -40 "$work/log"
            note "$name: FINDING (exit $rc; input and log kept in $work)"
            failed=1
        fi
    done
}

if ! zqfs_install_packages; then
    echo "test.sh: FAIL (could not install packages)"
    exit 1
fi
run_suite default "$ZQFS_ROOT/build"

if [ "${ZQFS_QUICK:-0}" != 1 ]; then
    # clang's runtimes for ASan/UBSan/libFuzzer.
    ZQFS_PACKAGES=(clang libclang-rt-14-dev)
    if zqfs_install_packages; then
        export ZQFS_SANITIZED=1
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
        if run_suite "asan+ubsan" "$ZQFS_ROOT/build-asan" -DZQFS_FUZZ=ON \
            -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++; then
            run_fuzzers "$ZQFS_ROOT/build-asan"
        fi
        unset ZQFS_SANITIZED ASAN_OPTIONS UBSAN_OPTIONS
    else
        note "asan+ubsan: could not install clang"
        failed=1
    fi

    mkdir -p "$ZQFS_ROOT/build-tsan"
    if ZQFS_BUILD_TARGET=zqfs-unit zqfs_build "$ZQFS_ROOT/build-tsan" -DZQFS_TSAN=ON; then
        zqfs_log "running concurrency tests under ThreadSanitizer"
        if TSAN_OPTIONS=halt_on_error=1 "$ZQFS_ROOT/build-tsan/bin/zqfs-unit" \
            -tc='stress:*,core:*concurren*,core:*parallel*,qcow2: parallel*,qcow2: large data writes*' >"$ZQFS_ROOT/build-tsan/tsan.log" 2>&1; then
            note "tsan: $(grep -Eo 'test cases: *[0-9]+ \| *[0-9]+ passed' "$ZQFS_ROOT/build-tsan/tsan.log")"
        else
            tail -60 "$ZQFS_ROOT/build-tsan/tsan.log"
            note "tsan: FAILED"
            failed=1
        fi
    else
        note "tsan: BUILD FAILED"
        failed=1
    fi
fi

elapsed=$((SECONDS - started))
echo
echo "== test.sh summary ($((elapsed / 60)) min $((elapsed % 60)) s)"
for line in "${summary[@]}"; do echo "   $line"; done
if [ $failed -eq 0 ]; then
    echo "test.sh: PASS"
else
    echo "test.sh: FAIL"
fi
exit $failed
