#!/usr/bin/env bash
# forced-unbind.sh -- unbind a daxfs region while applications map files and
# keep I/O in flight, then check what every application saw, that the daemon
# survived and let go of the region, and that nothing acknowledged was lost.
#
#   forced-unbind.sh [--mode orderly|truncate|delete|driver|all]
#                    [--region PATH|/dev/daxX.Y] [--mount DIR] [--build DIR]
#                    [--files 64] [--file-size 1M] [--uring-depth 256]
#                    [--timeout S] [--size 1G] [--keep] [--destructive]
#
# Modes (one unbind each, on a freshly formatted region):
#   orderly   daxfsctl unbind: dirty mapped pages are written back first
#   truncate  the file region is cut to half its size under the daemon
#   delete    the file region is removed (its last name: st_nlink drops to 0)
#   driver    devdax only: the device_dax driver is unbound from the device
#   all       orderly, truncate and delete on a file region; orderly and
#             driver on a devdax device
#
# Without --region the script creates a file region on /dev/shm and removes
# it afterwards.  See tests/unbind/README.md.  Exit status: 0 when every
# check passed, 1 when one failed, 2 on a usage error.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

mode=all region="" mnt="" build=${DAXFS_BUILD:-$ROOT/build}
files=64 file_size=1M depth=256 timeout=10 size=1G keep=0 destructive=0
keep_logs=0

usage() {
	sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

die_usage() {
	echo "forced-unbind.sh: $*; see --help" >&2
	exit 2
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--mode) mode=${2:-}; shift 2 ;;
	--region) region=${2:-}; shift 2 ;;
	--mount) mnt=${2:-}; shift 2 ;;
	--build) build=${2:-}; shift 2 ;;
	--files) files=${2:-}; shift 2 ;;
	--file-size) file_size=${2:-}; shift 2 ;;
	--uring-depth) depth=${2:-}; shift 2 ;;
	--timeout) timeout=${2:-}; shift 2 ;;
	--size) size=${2:-}; shift 2 ;;
	--keep) keep=1; shift ;;
	--destructive) destructive=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) die_usage "unknown argument '$1'" ;;
	esac
done

[[ $files =~ ^[0-9]+$ && $files -ge 2 ]] || die_usage "--files must be a number >= 2"
[[ $depth =~ ^[0-9]+$ && $depth -ge 4 ]] || die_usage "--uring-depth must be a number >= 4"
[[ $timeout =~ ^[0-9]+$ && $timeout -ge 1 ]] || die_usage "--timeout must be whole seconds >= 1"
to_bytes() {
	local v=$1 n
	case $v in
	*[kK]) n=$(( ${v%?} << 10 )) ;;
	*[mM]) n=$(( ${v%?} << 20 )) ;;
	*[gG]) n=$(( ${v%?} << 30 )) ;;
	*) n=$v ;;
	esac
	echo "$n"
}
[[ $size =~ ^[0-9]+[kKmMgG]?$ ]] || die_usage "--size must be bytes with an optional K/M/G"
[[ $file_size =~ ^[0-9]+[kKmMgG]?$ ]] || die_usage "--file-size must be bytes with an optional K/M/G"
size_bytes=$(to_bytes "$size")
file_bytes=$(to_bytes "$file_size")

DAXFS=$build/daxfs CTL=$build/daxfsctl LG=$build/daxfs_loadgen
for b in "$DAXFS" "$CTL" "$LG"; do
	[[ -x $b ]] || die_usage "$b is not built (give --build DIR)"
done
[[ $(id -u) -eq 0 ]] || { echo "forced-unbind.sh: needs root (mounting, unbinding)" >&2; exit 2; }
[[ -e /dev/fuse ]] || { echo "forced-unbind.sh: no /dev/fuse on this machine" >&2; exit 2; }
# python3 reads the JSON; the system's own starts fastest
PY=$(command -v /usr/bin/python3 || command -v python3) ||
	{ echo "forced-unbind.sh: needs python3 (to read JSON)" >&2; exit 2; }

# --- the region ---------------------------------------------------------
devdax="" own_region=0
if [[ -z $region ]]; then
	region=/dev/shm/daxfs-forced-unbind-$$
	own_region=1
elif [[ $region =~ ^(/dev/)?(dax[0-9]+\.[0-9]+)$ ]]; then
	devdax=${BASH_REMATCH[2]}
	region=/dev/$devdax
	[[ -c $region ]] || die_usage "$region is not a device-DAX character device"
elif [[ -e $region && ! -f $region ]]; then
	die_usage "$region is neither a regular file nor /dev/daxX.Y"
fi
if [[ -n $devdax ]]; then
	case $mode in
	all) modes=(orderly driver) ;;
	orderly|driver) modes=("$mode") ;;
	*) die_usage "mode '$mode' needs a file region; on $region use orderly, driver or all" ;;
	esac
	cat >&2 <<-WARN
	WARNING: this reformats $region (everything on it is lost) and, in
	WARNING: driver mode, unbinds the device_dax driver from $devdax while
	WARNING: daxfs serves it (echo $devdax > /sys/bus/dax/drivers/device_dax/unbind),
	WARNING: then binds it again.  Nothing else may be using $devdax.
	WARN
	[[ $destructive -eq 1 ]] || { echo "forced-unbind.sh: pass --destructive to go ahead" >&2; exit 2; }
else
	case $mode in
	all) modes=(orderly truncate delete) ;;
	orderly|truncate|delete) modes=("$mode") ;;
	driver) die_usage "driver mode needs a device-DAX region (--region /dev/daxX.Y)" ;;
	*) die_usage "unknown mode '$mode'" ;;
	esac
	(( size_bytes >= 64 << 20 )) || die_usage "--size must be at least 64M"
fi
(( files * file_bytes * 10 / 8 < size_bytes )) || [[ -n $devdax ]] ||
	die_usage "$files files of $file_size do not fit a $size region with room to spare"

work=$(mktemp -d /tmp/daxfs-forced-unbind.XXXXXX)
own_mnt=0
if [[ -z $mnt ]]; then
	mnt=$work/mnt
	own_mnt=1
fi
mkdir -p "$mnt"
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

# --- bookkeeping and cleanup ----------------------------------------------
npass=0 nfail=0 nskip=0 mpass=0 mfail=0 mskip=0 cur=""
pids=() daemon_pid="" rebind="" failed_modes=()
orderly_line=""

say() { printf '%s\n' "$*"; }
pass() { say "PASS [$cur] $*"; npass=$((npass + 1)); mpass=$((mpass + 1)); }
fail() { say "FAIL [$cur] $*"; nfail=$((nfail + 1)); mfail=$((mfail + 1)); }
skip() { say "SKIP [$cur] $*"; nskip=$((nskip + 1)); mskip=$((mskip + 1)); }
info() { say "     [$cur] $*"; }
check() {	# check CONDITION-STATUS TEXT
	if [[ $1 -eq 0 ]]; then pass "$2"; else fail "$2"; fi
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# jget FILE EXPR -- a value from a JSON file; EXPR is python over `d`
jget() {
	"$PY" -c 'import json,sys
try:
    d = json.load(open(sys.argv[1]))
    v = eval(sys.argv[2], {"d": d})
except Exception as e:
    v = None
print(str(v).lower() if isinstance(v, bool) else ("" if v is None else v))' "$1" "$2"
}

is_mounted() { grep -q " $(realpath "$mnt") fuse" /proc/mounts; }

stop_pid() {	# stop_pid PID -- TERM, then KILL after 10 s
	local p=$1 i
	kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p" 2>/dev/null
	for i in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}

cleanup_mode() {
	local p
	exec 8>&- 2>/dev/null
	for p in "${pids[@]}"; do stop_pid "$p"; done
	pids=()
	if is_mounted; then
		umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	fi
	[[ -n $daemon_pid ]] && stop_pid "$daemon_pid"
	daemon_pid=""
	exec 9<&- 2>/dev/null
	if [[ -n $rebind ]]; then
		echo "$rebind" > /sys/bus/dax/drivers/device_dax/bind 2>/dev/null
		rebind=""
	fi
}

cleanup() {
	cleanup_mode
	if [[ $keep -eq 1 ]]; then
		say "kept: logs in $work, region $region"
		return
	fi
	[[ $own_region -eq 1 ]] && rm -f "$region" "$region".restored
	[[ -z $devdax && $own_region -eq 0 ]] && rm -f "$region".restored
	[[ $own_mnt -eq 1 ]] && rmdir "$mnt" 2>/dev/null
	if [[ $keep_logs -eq 1 ]]; then
		rm -f "$work"/*.in
		say "logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'say "interrupted"; keep_logs=1; exit 1' INT TERM

# start_daemon REGION LOG -- mount; 0 once mounted
start_daemon() {
	local reg=$1 log=$2 i
	"$DAXFS" -f -o "unbind_timeout=$timeout" "$reg" "$mnt" >>"$log" 2>&1 &
	daemon_pid=$!
	for i in $(seq 200); do
		is_mounted && return 0
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}

# stop_daemon LOG -- umount; the daemon must exit 0 with a clean log
stop_daemon() {
	local log=$1 rc i
	if umount "$mnt"; then
		pass "umount works"
	else
		fail "umount failed"
		umount -l "$mnt" 2>/dev/null
	fi
	for i in $(seq 300); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$daemon_pid" 2>/dev/null; then
		fail "the daemon did not exit within 30 s of the umount"
		stop_pid "$daemon_pid"
	else
		wait "$daemon_pid"
		rc=$?
		check $((rc != 0)) "the daemon exited $rc after the umount"
	fi
	daemon_pid=""
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer' "$log"; then
		fail "sanitizer report in the daemon's log ($log)"
	fi
}

have_fsck() { "$CTL" fsck --help >/dev/null 2>&1; }

fsck_check() {	# fsck_check REGION
	if ! have_fsck; then
		skip "fsck: 'daxfsctl fsck --help' fails in this build (fsck not there yet)"
		return
	fi
	local out
	out=$("$CTL" fsck "$1" 2>&1)
	check $? "fsck is clean${out:+: $(tail -n1 <<<"$out")}"
}

region_id() {	# device:inode of the region, to find it in /proc/PID
	stat -L -c '%d:%i' "$1" 2>/dev/null
}

# daemon_holds ID -- does the daemon still have the region open or mapped?
daemon_holds() {
	local id=$1 f ino=${1#*:}
	for f in /proc/"$daemon_pid"/fd/*; do
		[[ $(stat -L -c '%d:%i' "$f" 2>/dev/null) == "$id" ]] && return 0
	done
	awk -v ino="$ino" '$5 == ino { found = 1 } END { exit !found }' \
		/proc/"$daemon_pid"/maps
}

# mode_end -- clean up after a mode and print its summary
mode_end() {
	cleanup_mode
	rm -f "$work/$cur.hold.in"
	say "summary: mode=$cur pass=$mpass fail=$mfail skip=$mskip"
	[[ $mfail -eq 0 ]] || failed_modes+=("$cur")
}

# --- one mode --------------------------------------------------------------
run_mode() {
	local m=$1 reg=$region log=$work/$1-daemon.log st=$work/$1.status.json
	local state=$work/$1.state run=$work/$1.run.json hold=$work/$1.hold.json
	local t0 t1 tw ms rc id i lpid hpid state_now released=0 lg_args

	cur=$m mpass=0 mfail=0 mskip=0
	say "== $m: region $reg, $files mapped files of $file_size, $depth io_uring requests in flight"

	# format and mount
	if [[ -n $devdax ]]; then
		"$CTL" mkfs --force "$reg" >"$work/$m-mkfs.log" 2>&1
	else
		rm -f "$reg" "$reg".restored
		"$CTL" mkfs --force --size "$size" "$reg" >"$work/$m-mkfs.log" 2>&1
	fi
	check $? "mkfs $reg" || true
	if ! start_daemon "$reg" "$log"; then
		fail "mount: $(tail -n3 "$log")"
		mode_end
		return
	fi
	pass "mounted with unbind_timeout=$timeout"
	lg_args=(--dir "$mnt/lg")
	"$LG" "${lg_args[@]}" --phase prepare --files "$files" --size "$file_bytes" \
		>"$work/$m-prepare.log" 2>&1
	check $? "loadgen prepare: $(tail -n1 "$work/$m-prepare.log")"
	# remount, so that the kernel caches no name the run does not use
	umount "$mnt" && wait "$daemon_pid"
	rc=$?
	if [[ $rc -ne 0 ]] || ! start_daemon "$reg" "$log"; then
		fail "remount after prepare (exit $rc): $(tail -n2 "$log")"
		mode_end
		return
	fi

	# the direct checker: holds a mapping and a descriptor across the unbind
	mkfifo "$work/$m.hold.in"
	"$LG" "${lg_args[@]}" --phase hold --json <"$work/$m.hold.in" >"$hold" 2>"$work/$m-hold.err" &
	hpid=$!
	pids+=("$hpid")
	exec 8>"$work/$m.hold.in"

	# the load
	"$LG" "${lg_args[@]}" --phase run --json --state "$state" --ready "$work/$m.ready" \
		--mmap-workers 2 --uring-workers 1 --uring-depth "$depth" --rw-workers 1 \
		--open-workers 1 --duration $((timeout + 300)) >"$run" 2>"$work/$m-run.err" &
	lpid=$!
	pids+=("$lpid")
	for i in $(seq 300); do
		[[ -e $work/$m.ready ]] && grep -q ready "$hold" 2>/dev/null && break
		sleep 0.1
	done
	sleep 1
	"$CTL" status --json "$mnt" >"$st" 2>&1
	local of pu inf uo
	of=$(jget "$st" 'd["open_files"]') pu=$(jget "$st" 'd["page_users"]')
	inf=$(jget "$st" 'd["inflight"]') uo=$(jget "$st" 'd["uring_ops"]')
	if [[ -e $work/$m.ready && ${of:-0} -ge $files && ${pu:-0} -ge $files ]]; then
		pass "load flowing: $of open files, $pu inodes with cached pages, $inf requests in flight in the daemon"
	else
		fail "load not flowing (ready file: $([[ -e $work/$m.ready ]] && echo yes || echo no), open files ${of:-?}, page users ${pu:-?})"
	fi

	# the trigger
	id=$(region_id "$reg")
	[[ $m == delete ]] && exec 9<"$reg"	# keeps the data; see README
	t0=$(now_ms)
	tw=$(date +%s%3N)	# wall clock, to compare with the report
	case $m in
	orderly)
		"$CTL" unbind --json "$mnt" >"$work/$m.unbind.json" 2>"$work/$m.unbind.err"
		rc=$?
		check $rc "daxfsctl unbind exited $rc (0: released within the timeout)"
		;;
	truncate) truncate -s $((size_bytes / 2)) "$reg" ;;
	delete) rm -f "$reg" ;;
	driver)
		rebind=$devdax
		echo "$devdax" > /sys/bus/dax/drivers/device_dax/unbind
		;;
	esac
	while (( $(now_ms) - t0 < (timeout + 30) * 1000 )); do
		"$CTL" status --json "$mnt" >"$st" 2>/dev/null
		state_now=$(jget "$st" 'd["state"]')
		[[ $state_now == released ]] && { released=1; break; }
		kill -0 "$daemon_pid" 2>/dev/null || break
		sleep 0.01
	done
	t1=$(now_ms)
	ms=$((t1 - t0))
	if [[ $released -eq 1 ]]; then
		# the report dates the sequence: started_unix_ms + ms_total
		local began total
		began=$(jget "$st" 'd["unbind"]["started_unix_ms"]')
		total=$(jget "$st" 'd["unbind"]["ms_total"]')
		ms=$((began + total - tw))
		check $((ms > timeout * 1000)) "released $ms ms after the trigger (noticed after $((began - tw)) ms, sequence $total ms; timeout ${timeout} s)"
	else
		fail "not released $ms ms after the trigger (state: ${state_now:-no answer})"
	fi
	say "release: mode=$m ms=$ms"
	if ! kill -0 "$daemon_pid" 2>/dev/null; then
		fail "the daemon died: $(tail -n3 "$log")"
		mode_end
		return
	fi
	pass "the daemon is alive and answers: state ${state_now:-none}"
	local forced want_forced=true lost wb rev cause
	[[ $m == orderly ]] && want_forced=false
	forced=$(jget "$st" 'd["unbind"]["forced"]')
	lost=$(jget "$st" 'd["unbind"]["bytes_lost"]')
	wb=$(jget "$st" 'd["unbind"]["bytes_written_back"]')
	rev=$(jget "$st" 'd["unbind"]["inodes_revoked"]')
	cause=$(jget "$st" 'd["unbind"]["cause"]')
	check $([[ $forced == "$want_forced" ]]; echo $?) "report: forced=$forced ($cause)"
	check $([[ $(jget "$st" 'd["unbind"]["timed_out"]') == false ]]; echo $?) \
		"report: the drain finished before unbind_timeout"
	check $([[ ${rev:-0} -ge $files ]]; echo $?) "report: $rev inodes revoked"
	check $([[ $(jget "$st" 'd["inflight"]') == 0 ]]; echo $?) "report: nothing in flight after release"
	info "report: $wb bytes written back, $lost bytes lost, $(jget "$st" 'd["unbind"]["requests_drained"]') requests drained, $(jget "$st" 'd["unbind"]["requests_refused"]') refused"
	if [[ $m == orderly ]]; then
		check $([[ $lost == 0 ]]; echo $?) "report: no dirty data lost in an orderly unbind"
		orderly_line="orderly unbind released the region in $(jget "$st" 'd["unbind"]["ms_total"]') ms (revoke $(jget "$st" 'd["unbind"]["ms_revoke"]') ms, drain $(jget "$st" 'd["unbind"]["ms_drain"]') ms, release $(jget "$st" 'd["unbind"]["ms_release"]') ms; $wb bytes written back) -- $files mapped files, $depth io_uring requests in flight in the application ($inf in the daemon when load was checked); $ms ms from the command to the release"
		say "$orderly_line"
	elif [[ $m == truncate ]]; then
		check $([[ -n $lost ]]; echo $?) "report: the forced unbind reports $lost bytes of dirty data lost"
	fi
	if [[ -n $id ]] && kill -0 "$daemon_pid" 2>/dev/null; then
		! daemon_holds "$id"
		check $? "the daemon neither holds nor maps the region any more"
	fi
	if [[ $m == truncate ]]; then
		"$CTL" info "$reg" >"$work/$m-info.log" 2>&1
		rc=$?
		check $(( rc > 125 || (rc != 0 && $(wc -l <"$work/$m-info.log") != 1) )) \
			"daxfsctl info on the cut region answers (exit $rc): $(head -n1 "$work/$m-info.log")"
	elif [[ $m == orderly ]]; then	# deleted, or a device gone: no info
		"$CTL" info "$reg" >"$work/$m-info.log" 2>&1
		check $? "daxfsctl info works on the released region"
	fi

	# what the applications saw
	for i in $(seq 600); do kill -0 "$lpid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$lpid" 2>/dev/null; then
		fail "loadgen still running 60 s after the unbind (a worker never saw the failure)"
		kill -TERM "$lpid"
	fi
	wait "$lpid"
	rc=$?
	check $rc "loadgen run exited $rc"
	check $([[ $(jget "$run" 'd["hung"]') == false ]]; echo $?) "no loadgen operation hung"
	check $([[ $(jget "$run" 'd["all_failed"]') == true ]]; echo $?) \
		"every loadgen worker saw the failure ($(jget "$run" '", ".join("%s: %d EIO %d ENXIO %d SIGBUS" % (w["name"], w["eio"], w["enxio"], w["sigbus"]) for w in d["workers"])'))"
	check $([[ $(jget "$run" 'd["probe_ok"]') == 0 ]]; echo $?) \
		"no loadgen operation succeeded after the release ($(jget "$run" 'sum(w["probe_fail"] for w in d["workers"])') probes failed as they should)"
	check $([[ $(jget "$run" 'sum(w["sigbus"] for w in d["workers"] if w["kind"] == "mmap")') -gt 0 ]]; echo $?) \
		"mapped accesses raised SIGBUS in loadgen"
	check $([[ $(jget "$run" 'sum(1 for w in d["workers"] if w["last_other"].startswith("EBADMSG"))') == 0 ]]; echo $?) \
		"loadgen read back no invalid block while running"
	info "loadgen: $(jget "$run" 'd["acknowledged_blocks"]') blocks acknowledged; $(jget "$run" '"; ".join(w["note"] for w in d["workers"] if w["kind"] == "uring")')"
	# registered buffers inside a daxfs mapping need the kernel to pin
	# page-cache pages of a FUSE file for io_uring; kernels that refuse
	# long-term pins of file-backed memory make that impossible here
	if [[ $(jget "$run" 'sum(1 for w in d["workers"] if w["kind"] == "uring" and "failed" in w["note"])') != 0 ]]; then
		skip "io_uring registered buffers in a daxfs mapping: this kernel refuses to pin file-backed memory for io_uring; loadgen used anonymous memory"
	else
		pass "io_uring registered buffers in a daxfs mapping"
	fi
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$work/$m-run.err"; then
		fail "sanitizer report from loadgen ($work/$m-run.err)"
	fi

	echo go >&8
	exec 8>&-
	wait "$hpid"
	rc=$?
	"$PY" -c 'import json,sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
for c in json.loads(lines[-1])["checks"]:
    print("%d\t%s: %s (want %s)" % (0 if c["ok"] else 1, c["check"], c["got"], c["want"]))' \
		"$hold" 2>/dev/null >"$work/$m.hold.tsv"
	if [[ -s $work/$m.hold.tsv ]]; then
		while IFS=$'\t' read -r bad text; do check "$bad" "$text"; done <"$work/$m.hold.tsv"
	else
		fail "the hold checker printed nothing (exit $rc): $(cat "$work/$m-hold.err")"
	fi
	pids=()

	# let go
	stop_daemon "$log"

	# afterwards
	case $m in
	orderly|delete|driver)
		local again=$reg
		if [[ $m == delete ]]; then
			again=$reg.restored
			cp --sparse=always /proc/$$/fd/9 "$again"
			exec 9<&-
		elif [[ $m == driver ]]; then
			echo "$devdax" > /sys/bus/dax/drivers/device_dax/bind
			rebind=""
			for i in $(seq 100); do [[ -c $reg ]] && break; sleep 0.1; done
		fi
		if start_daemon "$again" "$log"; then
			pass "mounted again${again:+ from $again}"
			"$LG" "${lg_args[@]}" --phase verify --state "$state" >"$work/$m-verify.log" 2>&1
			check $? "verify after remount: $(head -n1 "$work/$m-verify.log")"
			stop_daemon "$log"
			fsck_check "$again"
		else
			fail "mount again: $(tail -n2 "$log")"
		fi
		;;
	truncate)
		# The cut took data with it.  Extend the file back to its size
		# (the lost part reads as zeroes) and check that daxfs either
		# mounts it or refuses it with one line -- never crashes.
		truncate -s "$size_bytes" "$reg"
		: >"$work/$m-remount.log"
		if start_daemon "$reg" "$work/$m-remount.log"; then
			pass "the cut region mounts again"
			find "$mnt" -type f -exec cat {} + >/dev/null 2>&1
			"$LG" "${lg_args[@]}" --phase verify --state "$state" >"$work/$m-verify.log" 2>&1
			info "verify after the cut (data loss expected): $(head -n1 "$work/$m-verify.log")"
			stop_daemon "$work/$m-remount.log"
		else
			wait "$daemon_pid"
			rc=$?
			daemon_pid=""
			check $(( rc == 0 || rc > 125 || $(wc -l <"$work/$m-remount.log") != 1 )) \
				"the cut region is refused with one line (exit $rc): $(head -n1 "$work/$m-remount.log")"
		fi
		if have_fsck; then
			"$CTL" fsck --repair "$reg" >"$work/$m-repair.log" 2>&1
			rc=$?
			check $(( rc > 1 )) "fsck --repair fixed the cut region (exit $rc: 0 nothing to fix, 1 fixed): $(tail -n1 "$work/$m-repair.log")"
			if start_daemon "$reg" "$log"; then
				pass "mounts after fsck --repair"
				find "$mnt" -type f -exec cat {} + >/dev/null 2>&1
				stop_daemon "$log"
				fsck_check "$reg"
			else
				fail "mount after fsck --repair: $(tail -n1 "$log")"
			fi
		else
			skip "fsck --repair after the cut: 'daxfsctl fsck --help' fails in this build"
		fi
		;;
	esac
	mode_end
}

for m in "${modes[@]}"; do
	run_mode "$m"
done

cur=all
say ""
[[ -n $orderly_line ]] && say "$orderly_line"
if [[ $nfail -eq 0 ]]; then
	say "forced-unbind: PASS ($npass checks passed, $nskip skipped; modes: ${modes[*]})"
	exit 0
fi
say "forced-unbind: FAIL ($nfail of $((npass + nfail)) checks failed in: ${failed_modes[*]}; $nskip skipped)"
keep_logs=1
exit 1
