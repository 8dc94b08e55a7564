#!/usr/bin/env bash
# build-deb.sh -- build the daxfs .deb from this source tree.
#
#   bash packaging/build-deb.sh [OUTDIR]      (default: packaging/out)
#
# dpkg-buildpackage wants debian/ at the top of the source tree, and the
# packaging lives in packaging/debian, so this copies the tree (the files
# git knows plus untracked ones not ignored: no build directories) into a
# temporary directory, puts packaging/debian there as debian/, runs
# "dpkg-buildpackage -us -uc -b" and moves the .deb(s) to OUTDIR.  The
# temporary directory is removed afterwards, whatever happened.
#
# Needs dpkg-dev, debhelper (compat 13) and the build dependencies in
# packaging/debian/control (dpkg-buildpackage checks them and names any
# that are missing); not fakeroot (Rules-Requires-Root: no).  DAXFS_KEEP_BUILD=1 keeps the temporary directory
# and prints where it is.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/packaging/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() { echo "build-deb.sh: $*" >&2; exit 1; }

for tool in dpkg-buildpackage dh dpkg-parsechangelog; do
	command -v "$tool" >/dev/null ||
		die "$tool is missing; install dpkg-dev and debhelper"
done

version=$(dpkg-parsechangelog -l "$root/packaging/debian/changelog" \
	-S Version)
upstream=${version%-*}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/daxfs-deb.XXXXXX")
if [[ ${DAXFS_KEEP_BUILD:-0} == 1 ]]; then
	trap 'echo "build-deb.sh: build tree kept in $tmp"' EXIT
else
	trap 'rm -rf "$tmp"' EXIT
fi
src=$tmp/daxfs-$upstream
mkdir "$src"

# the source tree, without build products
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(
		cd "$root"
		git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do
				# tracked files deleted in the work tree
				[[ -e $f || -L $f ]] && printf '%s\0' "$f"
			done |
			tar --null -T - -cf -
	) | tar -xf - -C "$src"
else
	tar -C "$root" --exclude='./build*' --exclude=./packaging/out \
		--exclude=./.git --exclude=./debian -cf - . | tar -xf - -C "$src"
fi
rm -rf "$src/debian" "$src/packaging/out"
cp -a "$root/packaging/debian" "$src/debian"

echo "build-deb.sh: building daxfs $version in $src"
(
	cd "$src"
	dpkg-buildpackage -us -uc -b -J"$(nproc)"
)

shopt -s nullglob
debs=("$tmp"/*.deb)
((${#debs[@]} > 0)) || die "dpkg-buildpackage made no .deb"
mv -f "${debs[@]}" "$out"/
for d in "${debs[@]}"; do
	echo "build-deb.sh: $out/$(basename "$d")"
done
