#!/bin/bash
# Resetting and finishing zones: truncate, O_TRUNC and the user.zone.cmd
# extended attribute.
. "$(dirname "$0")/_setup.sh"
mount_demo size=256M zone.size=64M
cd "$MNT"

show bash -c 'seq 1 100000 >> seq/0'
show stat -c '%n size=%s' seq/0
zone seq/0
echo "# truncate to 0 = zone reset; the data is gone and the zone is empty:"
show truncate -s 0 seq/0
zone seq/0
echo "# truncate to the capacity = zone finish:"
show truncate -s 64M seq/0
zone seq/0
echo "# any other size is refused:"
show truncate -s 1M seq/0 || true
echo "# O_TRUNC (shell '>') also resets:"
show bash -c ': > seq/0'
show stat -c '%n size=%s' seq/0
echo "# zone commands through an extended attribute:"
show bash -c 'echo data >> seq/1'
show setfattr -n user.zone.cmd -v finish seq/1
zone seq/1
show setfattr -n user.zone.cmd -v reset seq/1
zone seq/1
