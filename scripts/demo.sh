#!/usr/bin/env bash
# demo.sh -- set up daxfs on this machine and show it working: format a
# file region on /dev/shm, mount it, write a file, map it from another
# process, and leave it mounted for you to explore.
#
#   sudo bash scripts/demo.sh            # region /dev/shm/daxfs-demo, 1G
#   REGION=/dev/dax0.0 MNT=/mnt/pmem sudo -E bash scripts/demo.sh
set -euo pipefail

cd "$(dirname "$0")/.."
REGION=${REGION:-/dev/shm/daxfs-demo}
MNT=${MNT:-/mnt/daxfs-demo}
SIZE=${SIZE:-1G}

bash scripts/deps.sh
bash scripts/build.sh build >/dev/null
B=$PWD/build

if grep -qs " $MNT fuse.daxfs " /proc/mounts; then
	echo "demo: $MNT is already mounted; unmounting the old demo first"
	umount "$MNT"
	# the daemon writes the region back and exits once unmounted
	for _ in $(seq 50); do [ -z "$(pgrep -f "daxfs $REGION $MNT")" ] && break; sleep 0.1; done
fi

echo "== format $REGION ($SIZE)"
if [ -b "$REGION" ] || [ -c "$REGION" ]; then
	"$B/daxfsctl" mkfs --force --label demo "$REGION"
else
	"$B/daxfsctl" mkfs --force --size "$SIZE" --label demo "$REGION"
fi

echo "== mount it at $MNT"
mkdir -p "$MNT"
"$B/daxfs" "$REGION" "$MNT"
grep " $MNT " /proc/mounts

echo "== write a file, then change it through a shared mapping in another process"
echo "hello from daxfs" > "$MNT/hello.txt"
/usr/bin/python3 - "$MNT/hello.txt" <<'PY'
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
with mmap.mmap(fd, 0, mmap.MAP_SHARED) as m:
    m[0:5] = b"HELLO"        # a store into the page cache of the daxfs file
    m.flush()                 # msync: written back into the region
os.close(fd)
PY
echo -n "read back with cat: "
cat "$MNT/hello.txt"

echo "== copy a source tree in and compare"
cp -a /usr/include/linux "$MNT/linux-headers"
diff -r --no-dereference /usr/include/linux "$MNT/linux-headers" && echo "identical: $(find "$MNT/linux-headers" | wc -l) entries"

echo "== the region"
"$B/daxfsctl" info "$REGION"
if "$B/daxfsctl" status "$MNT" >/dev/null 2>&1; then
	echo "== the daemon"
	"$B/daxfsctl" status "$MNT"
fi

cat <<MSG

daxfs is mounted at $MNT (region $REGION).  Try:
  ls -l $MNT; df -h $MNT
  $B/daxfsctl status $MNT
  $B/daxfsctl unbind $MNT     # revoke mappings, drain I/O, release the region
Unmount with:
  umount $MNT
MSG
