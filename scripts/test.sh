#!/usr/bin/env bash
# test.sh -- set up and run the whole daxfs test suite.
#
#   1. install the build and test dependencies (scripts/deps.sh)
#   2. make sure what the tests need is there (/dev/fuse, /dev/shm)
#   3. build ./build (normal), ./build-asan (ASan + UBSan) and
#      ./build-tsan (ThreadSanitizer)
#   4. C unit tests (tests/unit) through ctest, in all three builds
#   5. the pytest suite (tests/*.py) against build-asan and build, the two
#      passes side by side; the TSan tests (tests/test_tsan.py) use
#      build-tsan, in the normal build's pass
#
# Some work is done once, in the normal build's pass: building and
# installing the .deb, the bounded fuzzing run, the TSan daemon tests and
# the full-size million-file test (the ASan pass counts 100,000 files).
#
# Fails when anything failed, and when no test ran at all.  Logs and JUnit
# files are left in build/test-logs/.  DAXFS_TEST_QUICK=1 skips the pytest
# pass over the normal build.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
PY=/usr/bin/python3
start=$SECONDS
export PYTHONDONTWRITEBYTECODE=1

say() { printf '== %s (%ds)\n' "$*" $((SECONDS - start)); }
die() { echo "test.sh: $*" >&2; exit 1; }

# run_logged LOG CMD... -- run CMD, copy its output to LOG, return its status
run_logged() {
	local log=$1 rc
	shift
	set +e
	"$@" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	set -e
	return "$rc"
}

# --- 1. dependencies -----------------------------------------------------
say "dependencies"
bash scripts/deps.sh

# --- 2. what the tests need ----------------------------------------------
if [[ ! -e /dev/fuse && $(id -u) -eq 0 ]]; then
	modprobe fuse || true
fi
[[ -e /dev/fuse ]] ||
	echo "test.sh: note: no /dev/fuse; tests that mount will skip"
[[ -d /dev/shm && -w /dev/shm ]] ||
	die "/dev/shm is missing or not writable; file regions live there"
# FUSE over io_uring is off by default in the fuse module: turned on for
# the run, so that one pass goes over it, and put back afterwards
uring_param=/sys/module/fuse/parameters/enable_uring
uring_was=
if [[ -w $uring_param ]]; then
	uring_was=$(cat "$uring_param")
	echo 1 >"$uring_param" 2>/dev/null || uring_was=
fi
uring_restore() {
	[[ $uring_was == N ]] && echo 0 >"$uring_param" 2>/dev/null
	uring_was=
}
trap uring_restore EXIT
uring_on=0
[[ -n $uring_was ]] && uring_on=1
((uring_on)) ||
	echo "test.sh: note: FUSE over io_uring is not available; both pytest passes use /dev/fuse"

# --- 3. builds -----------------------------------------------------------
say "build: build"
bash scripts/build.sh "$root/build" || die "the normal build failed"
say "build: build-asan"
bash scripts/build.sh "$root/build-asan" -DDAXFS_SANITIZE=ON ||
	die "the ASan build failed"
say "build: build-tsan"
bash scripts/build.sh "$root/build-tsan" -DDAXFS_TSAN=ON ||
	die "the TSan build failed"

logs=$root/build/test-logs
rm -rf "$logs"
mkdir -p "$logs"
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
status=0

# --- 4. unit tests -------------------------------------------------------
for b in build build-asan build-tsan; do
	say "unit tests: $b"
	# under TSan, the test of the gate: the others are single-threaded
	only=()
	[[ $b == build-tsan ]] && only=(-R unit_test_gate)
	run_logged "$logs/ctest-$b.log" \
		ctest --test-dir "$root/$b" --output-on-failure "${only[@]}" \
		-j"$(nproc)" --timeout 300 \
		--output-junit "$logs/ctest-$b.xml" || status=1
done

# --- 5. pytest -----------------------------------------------------------
# The passes run side by side: each spends much of its time waiting on
# FUSE round trips and child processes, so two of them keep both cores of
# a small machine busy.  Each writes its own log, shown when both are done.
# The ASan pass serves its mounts over FUSE over io_uring (when the kernel
# offers it), the normal pass over /dev/fuse, what most kernels give.
passes=(build-asan)
[[ ${DAXFS_TEST_QUICK:-0} == 1 ]] || passes+=(build)
pytest_pass() {
	local b=$1 once=$2 tsan=() transport=devfuse
	# the .deb, the fuzz targets, a million files and the TSan daemon
	# tests: once, in the normal build's pass; a caller's settings win
	((once)) && tsan=(DAXFS_TSAN_BUILD="$root/build-tsan")
	[[ $b == build-asan ]] && ((uring_on)) && transport=io_uring
	env DAXFS_PACKAGE_TEST="$once" DAXFS_FUZZ="${DAXFS_FUZZ:-$once}" \
	DAXFS_FUZZ_SECONDS="${DAXFS_FUZZ_SECONDS:-$((once ? 6 : 0))}" \
	DAXFS_LIMIT_FILES="${DAXFS_LIMIT_FILES:-$((once ? 1000000 : 100000))}" \
	"${tsan[@]}" DAXFS_BUILD="$root/$b" \
	DAXFS_TEST_TRANSPORT="${DAXFS_TEST_TRANSPORT:-$transport}" \
		timeout -k 30 1500 "$PY" -m pytest -q -rfEsx -p no:cacheprovider \
		--basetemp="$(mktemp -d /tmp/daxfs-pytest-XXXXXX)" \
		--junitxml="$logs/pytest-$b.xml" tests/ >"$logs/pytest-$b.log" 2>&1
}
pids=()
for b in "${passes[@]}"; do
	once=0
	[[ $b == build ]] && once=1
	say "pytest: $b (started)"
	pytest_pass "$b" "$once" &
	pids+=($!)
done
for k in "${!passes[@]}"; do
	b=${passes[$k]}
	rc=0
	wait "${pids[$k]}" || rc=$?
	say "pytest: $b (done, exit $rc)"
	cat "$logs/pytest-$b.log"
	case $rc in
	0) ;;
	5) echo "test.sh: pytest collected no test against $b"; status=1 ;;
	124) echo "test.sh: pytest against $b timed out"; status=1 ;;
	*) status=1 ;;
	esac
done

# --- summary -------------------------------------------------------------
uring_restore
trap - EXIT
say "summary"
have_unit=0
[[ -f tests/unit/CMakeLists.txt ]] && have_unit=1
exec "$PY" - "$logs" "$have_unit" "$status" "$((SECONDS - start))" \
	"${passes[@]}" <<'PYEOF'
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter

logs, have_unit = sys.argv[1], sys.argv[2] == "1"
status, secs, passes = int(sys.argv[3]), sys.argv[4], sys.argv[5:]
total = Counter()
reasons = Counter()
failures = []
bad = []


def skip_reason(tc, skipped):
    """pytest's reason, or the line a skipping unit test printed last."""
    msg = skipped.get("message") if skipped is not None else None
    if msg and not msg.startswith("SKIP_RETURN_CODE"):
        return msg
    out = tc.findtext("system-out") or ""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    said = [ln for ln in lines if ln.upper().startswith("SKIP")] or lines
    return f"{tc.get('name')}: {said[-1]}" if said else \
        f"{tc.get('name')}: {msg or 'no reason given'}"


def count(path, build):
    """passed/failed/skipped/xfailed from a JUnit file (ctest or pytest)."""
    if not os.path.exists(path):
        return None
    c = Counter()
    for tc in ET.parse(path).getroot().iter("testcase"):
        skipped = tc.find("skipped")
        if tc.find("failure") is not None or tc.find("error") is not None:
            c["failed"] += 1
            cls = tc.get("classname") or ""
            name = (cls.replace(".", "/") + ".py::" if cls.startswith(
                "tests.") else "") + (tc.get("name") or "?")
            failures.append(f"{build:10}  {name}")
        elif skipped is not None and skipped.get("type") == "pytest.xfail":
            c["xfailed"] += 1
        elif skipped is not None or tc.get("status") == "notrun":
            c["skipped"] += 1
            reasons[skip_reason(tc, skipped)] += 1
        else:
            c["passed"] += 1
    return c


def line(c):
    s = f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"
    return s + (f", {c['xfailed']} xfailed" if c["xfailed"] else "")


for b in ("build", "build-asan", "build-tsan"):
    c = count(f"{logs}/ctest-{b}.xml", b)
    if c is None:
        bad.append(f"the unit tests in {b} left no result")
        continue
    note = ""
    if sum(c.values()) == 0:
        if have_unit:
            bad.append(f"tests/unit is configured but ctest in {b} "
                       f"found no test")
        else:
            note = "  (no tests/unit/CMakeLists.txt yet)"
    print(f"unit tests  {b:10}  {line(c)}{note}")
    total += c
for b in passes:
    c = count(f"{logs}/pytest-{b}.xml", b)
    if c is None:
        bad.append(f"pytest against {b} left no result")
        continue
    print(f"pytest      {b:10}  {line(c)}")
    if c["passed"] == 0:
        bad.append(f"no pytest test passed against {b}")
    total += c
for msg, n in sorted(reasons.items()):
    print(f"skipped {n:3}x  {msg}")
for f in failures[:30]:
    print(f"failed      {f}")
if len(failures) > 30:
    print(f"failed      ... and {len(failures) - 30} more")
if total["xfailed"]:
    print(f"xfailed {total['xfailed']:3}x  known bugs, each named in its "
          f"test's xfail reason")
if total["passed"] == 0:
    bad.append("no test ran at all")
for msg in bad:
    print(f"test.sh: {msg}")
failed = bool(bad or total["failed"] or status)
print(f"test.sh: {'FAILED' if failed else 'OK'} in {secs} s; "
      f"logs in build/test-logs/")
print(f"all: {total['passed']} passed, {total['failed']} failed, "
      f"{total['skipped'] + total['xfailed']} skipped")
sys.exit(1 if failed else 0)
PYEOF
