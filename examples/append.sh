#!/bin/bash
# Appending to sequential zone files: shell redirection, dd with O_DIRECT,
# and what happens when a write is not at the end of the file.
. "$(dirname "$0")/_setup.sh"
mount_demo size=256M zone.size=64M zone.conventional_zones=1
cd "$MNT"

show ls cnv seq
show bash -c 'echo hello >> seq/0'          # buffered append: accepted
show bash -c 'echo world >> seq/0'
show cat seq/0
show stat -c '%n size=%s blocks=%b blksize=%o ino=%i' seq/0
show dd if=/dev/urandom of=seq/1 bs=1M count=4 oflag=direct,append conv=notrunc status=none
show stat -c '%n size=%s' seq/1
zone seq/1
echo "# A write that does not start at the end of the file is refused (EINVAL):"
show dd if=/dev/zero of=seq/1 bs=4k count=1 seek=0 conv=notrunc status=none || true
echo "# Conventional zones are ordinary fixed-size files:"
show dd if=/dev/urandom of=cnv/0 bs=4k count=1 seek=100 conv=notrunc status=none
show stat -c '%n size=%s' cnv/0
