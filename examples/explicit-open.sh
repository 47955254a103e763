#!/bin/bash
# Mount option explicit-open: opening a sequential file for writing
# explicitly opens its zone, and opening more such files than
# max_open_zones fails with EBUSY; the last close closes the zone.
. "$(dirname "$0")/_setup.sh"
mount_demo size=256M zone.size=32M zone.max_open_zones=2 -- -o explicit-open
cd "$MNT"

exec 3>>seq/0
exec 4>>seq/1
echo "# seq/0 and seq/1 are held open for writing:"
zone seq/0
echo "# a third write-open:"
show bash -c 'exec 5>>seq/2' || true
echo "# reading is not limited:"
show cat seq/2
echo data >&3
exec 3>&- 4>&-
echo "# after the last close:"
zone seq/0
zone seq/1
