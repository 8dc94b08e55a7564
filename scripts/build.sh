#!/usr/bin/env bash
# build.sh [BUILD_DIR] [extra cmake args] -- configure and build daxfs with
# warnings as errors.  BUILD_DIR defaults to ./build under the repository.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$root/build}
(($# > 0)) && shift

cmake -S "$root" -B "$dir" -DDAXFS_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
