#!/bin/bash
# The walk-throughs in examples/ run to completion and show what they claim.
. "$(dirname "$0")/fuse_common.bash"
EX=$ZQFS_SRC/examples
export ZQFS_BIN
run_example() {
    timeout 120 bash "$EX/$1" > "$TMP/$1.out" 2>&1 || { cat "$TMP/$1.out" >&2; fail "examples/$1 failed"; }
}
run_example append.sh
grep -q "Invalid argument" "$TMP/append.sh.out" || fail "append.sh: EINVAL not shown"
run_example reset.sh
grep -q '"cond":"empty"' "$TMP/reset.sh.out" || fail "reset.sh: reset not shown"
run_example limits.sh
grep -q "File too large" "$TMP/limits.sh.out" || fail "limits.sh: EFBIG not shown"
run_example explicit-open.sh
grep -q "Device or resource busy" "$TMP/explicit-open.sh.out" || fail "explicit-open.sh: EBUSY not shown"
pass "examples/*.sh"
