#!/bin/bash
# Capacity and resource limits: a zone whose capacity is smaller than its
# size, short writes and EFBIG at the end, and max_open_zones with implicit
# opens (the least recently used implicitly open zone gets closed).
. "$(dirname "$0")/_setup.sh"
mount_demo size=64M zone.size=16M zone.capacity=12M zone.max_open_zones=2 zone.max_active_zones=3
cd "$MNT"

show stat -c '%n size=%s blocks=%b (capacity/512)' seq/0
show dd if=/dev/zero of=seq/0 bs=1M count=11 oflag=append conv=notrunc status=none
echo "# A write crossing the capacity is cut short:"
show bash -c 'head -c 2M /dev/zero | dd of=seq/0 bs=2M oflag=append conv=notrunc 2>&1 | tail -1' || true
show stat -c '%n size=%s' seq/0
echo "# At the capacity: EFBIG"
show bash -c 'echo x >> seq/0' || true
zone seq/0
echo "# Two zones open at most (max_open_zones=2), three active (max_active_zones=3):"
for i in 1 2 3; do show bash -c "echo x >> seq/$i"; done
getfattr --absolute-names -n user.zqfs --only-values . |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print({k: d[k] for k in ("open_zones", "active_zones", "max_open_zones", "max_active_zones")})'
