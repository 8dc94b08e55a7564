#!/usr/bin/env bash
# deps.sh -- install everything daxfs needs to build and test, from Debian 12.
#
# Idempotent and quiet: when every package is already installed it does
# nothing (and needs no root); otherwise it runs apt-get update and one
# apt-get install, as root.
set -euo pipefail

PACKAGES=(
	# build
	cmake gcc make pkg-config
	libfuse3-dev libpmem2-dev libdaxctl-dev liburing-dev
	# run: fusermount3, mount.fuse3
	fuse3
	# tests: pytest, loop devices and fifos, modprobe, peers and load
	python3 python3-pytest util-linux mount coreutils kmod fio bindfs
	# fuzzers
	clang libclang-rt-dev
	# packaging, man pages, units and udev rules
	debhelper lintian groff-base man-db udev systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
	s=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $s == installed ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "deps.sh: must run as root to install ${missing[*]} (try: sudo bash scripts/deps.sh)" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! apt-get -qq update >"$log" 2>&1 ||
   ! apt-get -qq install -y --no-install-recommends "${missing[@]}" \
	>>"$log" 2>&1; then
	cat "$log" >&2
	echo "deps.sh: apt-get failed installing ${missing[*]}" >&2
	exit 1
fi
