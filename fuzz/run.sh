#!/usr/bin/env bash
# run.sh [options] [SECONDS] -- build the daxfs fuzz targets with clang and
# run each one for SECONDS (default 30), one after the other, then replay
# every regression input.  Exits non-zero if a target found a crash, a hang
# or a broken invariant, or a regression input fails again.
#
#   --build-only        build and stop
#   --regressions       only replay fuzz/regressions/ (and the seeds)
#   --targets a,b,...   only these targets (default: all)
#   --update-seeds      regenerate fuzz/corpus/ from the templates
#
# Environment: DAXFS_FUZZ_BUILD (build directory, default ./build-fuzz),
# DAXFS_FUZZ_WORK (working corpora and crash artifacts, default
# $DAXFS_FUZZ_BUILD/work).  Working corpora start from fuzz/corpus/ and
# grow there, never in the repository.  A crash leaves its input in the
# work directory's artifacts/; copy it to fuzz/regressions/TARGET/ once
# the bug is fixed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DAXFS_FUZZ_BUILD:-$root/build-fuzz}
work=${DAXFS_FUZZ_WORK:-$build/work}
all_targets=(super journal inode extent dir xattr image)
targets=("${all_targets[@]}")
seconds=30
mode=fuzz

die() { echo "fuzz/run.sh: $*" >&2; exit 2; }

while (($#)); do
	case $1 in
	--build-only) mode=build ;;
	--regressions) mode=regressions ;;
	--update-seeds) mode=seeds ;;
	--targets) shift; IFS=, read -r -a targets <<<"${1:-}" ;;
	--targets=*) IFS=, read -r -a targets <<<"${1#--targets=}" ;;
	-h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	[0-9]*) seconds=$1 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done
for t in "${targets[@]}"; do
	[[ " ${all_targets[*]} " == *" $t "* ]] ||
		die "no target '$t'; the targets are ${all_targets[*]}"
done

# --- build ---------------------------------------------------------------
command -v clang >/dev/null ||
	die "clang is not installed (apt-get install clang libclang-rt-14-dev)"
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
	clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null; then
	die "clang cannot link libFuzzer (apt-get install libclang-rt-14-dev)"
fi
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DDAXFS_FUZZ=ON \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target \
	$(printf 'fuzz_%s ' "${all_targets[@]}") >/dev/null
[[ $mode == build ]] && exit 0

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

if [[ $mode == seeds ]]; then
	for t in "${targets[@]}"; do
		rm -rf "$root/fuzz/corpus/$t"
		mkdir -p "$root/fuzz/corpus/$t"
		FUZZ_WRITE_SEEDS="$root/fuzz/corpus/$t" "$build/fuzz/fuzz_$t"
		echo "fuzz/corpus/$t: $(ls "$root/fuzz/corpus/$t" | wc -l) seeds"
	done
	exit 0
fi

status=0
mkdir -p "$work"

# --- fuzz ------------------------------------------------------------------
if [[ $mode == fuzz ]]; then
	for t in "${targets[@]}"; do
		corpus=$work/corpus/$t
		mkdir -p "$corpus" "$work/artifacts"
		cp -n "$root/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
		log=$work/fuzz_$t.log
		rc=0
		# -timeout bounds one input (a hang is a finding); the outer
		# timeout only guards against libFuzzer itself not stopping
		(cd "$work" && timeout -k 10 $((seconds + 120)) \
			"$build/fuzz/fuzz_$t" -max_total_time="$seconds" \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix="$work/artifacts/$t-" "$corpus" \
			>"$log" 2>&1) || rc=$?
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
		if ((rc)); then
			echo "fuzz_$t: FAILED (exit $rc) after ${runs:-?} runs;" \
			     "log $log"
			grep -m1 -E 'ERROR|invariant broken|Test unit written' \
				"$log" || true
			grep 'Test unit written' "$log" || true
			status=1
		else
			echo "fuzz_$t: ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}," \
			     "corpus $(ls "$corpus" | wc -l)"
		fi
	done
fi

# --- regressions and seeds ----------------------------------------------
for t in "${targets[@]}"; do
	for set in regressions corpus; do
		dir=$root/fuzz/$set/$t
		[[ -d $dir ]] && compgen -G "$dir/*" >/dev/null || continue
		log=$work/replay_${set}_$t.log
		if (cd "$work" && timeout -k 10 600 "$build/fuzz/fuzz_$t" \
			-timeout=10 "$dir"/* >"$log" 2>&1); then
			echo "fuzz_$t: $(ls "$dir" | wc -l) inputs of" \
			     "fuzz/$set/$t pass"
		else
			echo "fuzz_$t: an input of fuzz/$set/$t FAILS; log $log"
			grep -m3 -E 'Running:|ERROR|invariant broken' "$log" |
				tail -2 || true
			status=1
		fi
	done
done
exit $status
