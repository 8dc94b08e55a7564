"""Packaging, boot-time mounting and udev integration (packaging/).

Against the build under test ($DAXFS_BUILD), in every pytest pass:

- daxfs@.service passes "systemd-analyze verify", and its ExecStartPre,
  ExecStart and ExecStop command lines, run as systemd would run them,
  mount a region and unbind, unmount and stop it;
- the documented fstab line (packaging/examples/fstab) mounts through
  "mount --fstab" and unmounts;
- 60-daxfs.rules parses (udevadm test) and runs the unbind helper for a
  dax device that is unbound or removed, and the helper, given a device
  name, unbinds the daxfs mounts of that device.

Once per CI run (DAXFS_PACKAGE_TEST=1, set for the normal build's pass):
test_deb builds the .deb with packaging/build-deb.sh, installs it, uses
only installed files (mount -t fuse.daxfs, fstab, the unit's commands, the
udev helper), then purges it and checks that nothing is left.  The
package is never left installed.

systemd does not run as PID 1 here, so units are not started by systemd:
their command lines are run directly, with systemd's expansion of
specifiers and environment variables.
"""
import fnmatch
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import uuid

import pytest

from conftest import (ROOT, binary, is_mounted, is_root, new_region_path,
                      run)

PKG = os.path.join(ROOT, "packaging")
UNIT = os.path.join(PKG, "systemd", "daxfs@.service")
SERVICE_HELPER = os.path.join(PKG, "systemd", "daxfs-service")
RULES = os.path.join(PKG, "udev", "60-daxfs.rules")
UDEV_HELPER = os.path.join(PKG, "udev", "daxfs-udev-unbind")
FSTAB_EXAMPLE = os.path.join(PKG, "examples", "fstab")
SYS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# where the package puts things
INSTALLED = {
    "daxfs": "/usr/sbin/daxfs",
    "daxfsctl": "/usr/sbin/daxfsctl",
    "mkfs": "/usr/sbin/mkfs.daxfs",
    "unit": "/usr/lib/systemd/system/daxfs@.service",
    "rules": "/usr/lib/udev/rules.d/60-daxfs.rules",
    "udev_helper": "/usr/libexec/daxfs/daxfs-udev-unbind",
    "service_helper": "/usr/libexec/daxfs/daxfs-service",
}
MAN_PAGES = ["/usr/share/man/man8/daxfs.8.gz",
             "/usr/share/man/man8/daxfsctl.8.gz",
             "/usr/share/man/man8/mkfs.daxfs.8.gz"]


# --- helpers -----------------------------------------------------------------

def need_root_fuse():
    if not is_root():
        pytest.skip("not root: mounting needs root here")
    if not os.path.exists("/dev/fuse"):
        pytest.skip("no /dev/fuse on this machine")


def need(tool, package):
    if not shutil.which(tool):
        pytest.skip(f"{tool} is not installed (Debian: {package})")


def status(daxfsctl, mnt):
    res = run([daxfsctl, "status", "--json", mnt], timeout=30)
    assert res.rc == 0, res
    return json.loads(res.out)


def region_state(daxfsctl, region):
    res = run([daxfsctl, "info", "--json", region], timeout=30)
    assert res.rc == 0, res
    return json.loads(res.out)["state"]


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child counts as gone
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(cond, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def mounted_pids(mnt):
    """pids of daemons (any binary) whose command line names mnt."""
    pids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if mnt.encode() in argv and argv[0].endswith(b"daxfs"):
            pids.append(int(p))
    return pids


def force_cleanup(mnt, pids=()):
    """Best effort after a failure: unmount and stop what we started."""
    for _ in range(3):
        if not any(is_mounted(mnt, t) for t in ("fuse.daxfs", "fuse")):
            break
        run(["umount", mnt], timeout=30)
        if any(is_mounted(mnt, t) for t in ("fuse.daxfs", "fuse")):
            run(["umount", "-l", mnt], timeout=30)
    for pid in set(pids) | set(mounted_pids(mnt)):
        if pid_alive(pid) and not wait_for(lambda: not pid_alive(pid), 5):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Scratch:
    """Regions, mount points and /dev symlinks of one test; removed after."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.paths = []
        self.mounts = []
        self.pids = []

    def region(self, daxfsctl, size="32M"):
        path = new_region_path("pkg")
        self.paths.append(path)
        res = run([daxfsctl, "mkfs", "--size", size, path], timeout=60)
        assert res.rc == 0, res
        return path

    def mountpoint(self, name="mnt"):
        mnt = str(self.tmp / f"{name}-{uuid.uuid4().hex[:6]}")
        os.makedirs(mnt)
        self.mounts.append(mnt)
        return mnt

    def dev_link(self, target):
        """/dev/daxfs-test-XXXX -> target: a name a mount source can have
        under /dev without a device-DAX device."""
        name = f"daxfs-test-{uuid.uuid4().hex[:8]}"
        os.symlink(target, f"/dev/{name}")
        self.paths.append(f"/dev/{name}")
        return name

    def cleanup(self):
        for mnt in self.mounts:
            force_cleanup(mnt, self.pids)
        for p in self.paths:
            if os.path.lexists(p):
                os.unlink(p)


@pytest.fixture
def scratch(tmp_path):
    s = Scratch(tmp_path)
    yield s
    s.cleanup()


# --- systemd units -----------------------------------------------------------

def unit_lines(path, key):
    """The values of key= in a unit file (no continuation lines used)."""
    with open(path) as f:
        return [ln.split("=", 1)[1].strip() for ln in f
                if ln.startswith(key + "=")]


def unescape_path(instance):
    """%f of an instance escaped with systemd-escape -p."""
    s = instance.replace("-", "/")
    s = re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), s)
    return "/" + s


def escape_path(path):
    res = run(["systemd-escape", "-p", path], timeout=10)
    assert res.rc == 0, res
    return res.out.strip()


def expand(cmdline, instance, env, exe_map):
    """argv of an Exec*= line as systemd builds it: specifiers, then
    "${VAR}" as one word and "$VAR" split on white space."""
    argv = shlex.split(cmdline.lstrip("-@:+!"))
    spec = {"%f": unescape_path(instance), "%i": instance, "%I":
            unescape_path(instance)[1:], "%%": "%"}
    out = []
    for w in argv:
        w = re.sub(r"%[fiI%]", lambda m: spec[m.group(0)], w)
        m = re.fullmatch(r"\$\{(\w+)\}", w)
        if m:
            out.append(env.get(m.group(1), ""))
            continue
        m = re.fullmatch(r"\$(\w+)", w)
        if m:
            out.extend(env.get(m.group(1), "").split())
            continue
        out.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""),
                          w))
    out[0] = exe_map.get(out[0], out[0])
    return out


def unit_env(unit, conf):
    env = {}
    for line in unit_lines(unit, "Environment"):
        for assign in shlex.split(line):
            k, v = assign.split("=", 1)
            env[k] = v
    with open(conf) as f:
        for ln in f:
            ln = ln.strip()
            if ln and not ln.startswith(("#", ";")):
                k, v = ln.split("=", 1)
                env[k] = v.strip().strip('"')
    return env


def unit_start(unit, instance, conf, exe_map, daxfsctl, path_env):
    """ExecStartPre= and ExecStart= of daxfs@instance as systemd runs
    them; returns the environment and the daemon's status."""
    env = unit_env(unit, conf)
    assert unit_lines(unit, "Type") == ["forking"]
    assert unit_lines(unit, "EnvironmentFile") == ["/etc/daxfs/%i.conf"]
    mnt = unescape_path(instance)
    proc_env = dict(os.environ, PATH=path_env)
    for line in unit_lines(unit, "ExecStartPre"):
        res = run(expand(line, instance, env, exe_map), env=proc_env,
                  timeout=60)
        assert res.rc == 0, f"ExecStartPre={line}: {res}"
    (start,) = unit_lines(unit, "ExecStart")
    res = run(expand(start, instance, env, exe_map), env=proc_env,
              timeout=60)
    # Type=forking: the first process exits 0 once the mount is there
    assert res.rc == 0, f"ExecStart={start}: {res}"
    assert is_mounted(mnt)
    st = status(daxfsctl, mnt)
    assert st["state"] == "live"
    return env, st


def unit_stop(unit, instance, env, main_pid, exe_map, path_env):
    """ExecStop= lines, with $MAINPID; returns their output."""
    env_stop = dict(env, MAINPID=str(main_pid))
    proc_env = dict(os.environ, PATH=path_env, MAINPID=str(main_pid))
    out = ""
    for line in unit_lines(unit, "ExecStop"):
        res = run(expand(line, instance, env_stop, exe_map), env=proc_env,
                  timeout=120)
        assert res.rc == 0, f"ExecStop={line}: {res}"
        out += res.out + res.err
    return out


def run_unit(unit, instance, conf, exe_map, daxfsctl, path_env):
    """Start and stop daxfs@instance as systemd would; check each step."""
    mnt = unescape_path(instance)
    env, st = unit_start(unit, instance, conf, exe_map, daxfsctl, path_env)
    with open(os.path.join(mnt, "hello"), "w") as f:
        f.write("hello from the unit\n")
    with open(os.path.join(mnt, "hello")) as f:
        assert f.read() == "hello from the unit\n"
    out = unit_stop(unit, instance, env, st["pid"], exe_map, path_env)
    assert not is_mounted(mnt)
    assert not pid_alive(st["pid"]), "the daemon outlived ExecStop"
    return st, out


def write_unit_for(tmp_path, exe_map):
    """The unit with its executables pointing at exe_map's targets."""
    d = tmp_path / "units"
    d.mkdir()
    with open(UNIT) as f:
        text = f.read()
    for src, dst in exe_map.items():
        text = text.replace(src, dst)
    (d / "daxfs@.service").write_text(text)
    return str(d / "daxfs@.service")


def build_exe_map():
    return {INSTALLED["daxfs"]: binary("daxfs"),
            INSTALLED["service_helper"]: SERVICE_HELPER}


def build_path():
    """PATH with the build under test first: daxfsctl for the helpers."""
    return os.path.dirname(binary("daxfsctl")) + ":" + SYS_PATH


def man_dir(tmp_path):
    d = tmp_path / "man" / "man8"
    d.mkdir(parents=True)
    for page in glob.glob(os.path.join(ROOT, "man", "*.8")):
        os.symlink(page, d / os.path.basename(page))
    return str(tmp_path / "man")


def verify_unit(unit_path, instance, manpath=None):
    env = dict(os.environ)
    if manpath:
        env["MANPATH"] = manpath
    inst = os.path.join(os.path.dirname(unit_path),
                        f"daxfs@{instance}.service")
    res = run(["systemd-analyze", "verify", "--man=yes", inst], env=env,
              timeout=60)
    assert res.rc == 0 and not res.err.strip(), res


def test_unit_verify(tmp_path):
    need("systemd-analyze", "systemd")
    need("man", "man-db")
    # executables must exist for verify: use the build and packaging/
    unit = write_unit_for(tmp_path, build_exe_map())
    verify_unit(unit, "mnt-dax", man_dir(tmp_path))


def test_unit_commands(scratch, tmp_path):
    need_root_fuse()
    need("systemd-escape", "systemd")
    daxfsctl = binary("daxfsctl")
    region = scratch.region(daxfsctl)
    mnt = scratch.mountpoint("unit")
    os.rmdir(mnt)                       # ExecStartPre creates it
    instance = escape_path(mnt)
    conf = tmp_path / f"{instance}.conf"
    conf.write_text(f"REGION={region}\nOPTIONS=unbind_timeout=4\n"
                    "UNBIND_TIMEOUT=3\n")
    unit = write_unit_for(tmp_path, build_exe_map())
    st, out = run_unit(unit, instance, str(conf), {}, daxfsctl,
                       build_path())
    assert st["unbind_timeout_ms"] == 4000      # OPTIONS reached daxfs
    assert "released" in out and "orderly" in out, out
    assert region_state(daxfsctl, region) == "clean"


def test_unit_stop_busy(scratch, tmp_path):
    """A file still open at stop: released, detached, no wait for it."""
    need_root_fuse()
    need("systemd-escape", "systemd")
    daxfsctl = binary("daxfsctl")
    region = scratch.region(daxfsctl)
    mnt = scratch.mountpoint("busy")
    instance = escape_path(mnt)
    conf = tmp_path / f"{instance}.conf"
    conf.write_text(f"REGION={region}\n")
    unit = write_unit_for(tmp_path, build_exe_map())
    env, st = unit_start(unit, instance, str(conf), {}, daxfsctl,
                         build_path())
    scratch.pids.append(st["pid"])
    fd = os.open(os.path.join(mnt, "held"), os.O_CREAT | os.O_RDWR)
    try:
        out = unit_stop(unit, instance, env, st["pid"], {}, build_path())
        assert "released" in out and "umount -l" in out, out
        assert not is_mounted(mnt)
        with pytest.raises(OSError) as e:
            os.write(fd, b"x")
        assert e.value.errno == 5           # EIO: released
        assert pid_alive(st["pid"])         # until the file is closed
    finally:
        os.close(fd)
    assert wait_for(lambda: not pid_alive(st["pid"]), 30), \
        "daxfs did not exit once the last file was closed"
    assert region_state(daxfsctl, region) == "clean"


def test_service_helper_usage():
    res = run([SERVICE_HELPER], timeout=10)
    assert res.rc == 2 and "usage" in res.err
    res = run([SERVICE_HELPER, "prepare", "/tmp/x", ""], timeout=10)
    assert res.rc == 1 and "REGION" in res.err, res
    res = run([SERVICE_HELPER, "stop", "/nonexistent/daxfs"], timeout=10)
    assert res.rc == 0 and "no daxfs mounted" in res.err, res
    # a device-DAX region that does not show up in time
    t0 = time.monotonic()
    res = run([SERVICE_HELPER, "prepare", "/nonexistent/daxfs", "dax97.5",
               "1"], timeout=30)
    assert res.rc == 1 and "/dev/dax97.5: no such device" in res.err, res
    assert time.monotonic() - t0 < 10


# --- fstab -------------------------------------------------------------------

def documented_fstab_line():
    with open(FSTAB_EXAMPLE) as f:
        lines = [ln.split() for ln in f
                 if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 1, lines
    line = lines[0]
    assert line[2] == "fuse.daxfs" and len(line) == 6, line
    opts = line[3].split(",")
    assert "nofail" in opts
    assert any(o.startswith("x-systemd.device-timeout=") for o in opts)
    assert any(o.startswith("x-systemd.requires=dev-") for o in opts)
    return line


def fstab_for(tmp_path, region, mnt):
    """The documented line, for this region and mount point."""
    line = documented_fstab_line()
    line[0], line[1] = region, mnt
    path = tmp_path / "fstab"
    path.write_text("# daxfs test fstab\n" + " ".join(line) + "\n")
    return str(path), line[3]


FSTAB_SCRIPT = """
set -eu
fail() { echo "FAIL: $*"; exit 1; }
[ -z "${BINDIR:-}" ] || mount --bind "$BINDIR" /usr/local/bin
mount --fstab "$FSTAB" "$MNT" || fail "mount exited $?"
grep " $MNT fuse.daxfs " /proc/self/mounts || fail "not mounted"
pid=$("$DAXFSCTL" status --json "$MNT" |
      sed -n 's/.*"pid": *\\([0-9]*\\).*/\\1/p')
echo "exe $(readlink /proc/$pid/exe)"
echo hello > "$MNT/hello"
[ "$(cat "$MNT/hello")" = hello ] || fail "read back"
"$DAXFSCTL" status --json "$MNT"; echo
umount "$MNT" || fail "umount exited $?"
k=0
while kill -0 "$pid" 2>/dev/null; do
    k=$((k + 1)); [ $k -lt 300 ] || fail "daxfs still running"
    sleep 0.1
done
echo "daemon gone"
"""


def mount_fstab(fstab, mnt, daxfsctl, bindir=None):
    """mount --fstab + umount.  With bindir, in a private mount namespace
    with bindir over /usr/local/bin: mount(8) drops PATH, so mount.fuse3's
    "sh -c daxfs" searches the shell's default PATH, where /usr/local/bin
    comes before /usr/sbin."""
    env = dict(os.environ, FSTAB=fstab, MNT=mnt, DAXFSCTL=daxfsctl,
               PATH=SYS_PATH)
    argv = ["/bin/sh", "-c", FSTAB_SCRIPT]
    if bindir:
        env["BINDIR"] = bindir
        argv = ["unshare", "--mount", "--propagation", "private"] + argv
    res = run(argv, env=env, timeout=120)
    assert res.rc == 0, res
    lines = res.out.splitlines()
    exe = [ln[4:] for ln in lines if ln.startswith("exe ")]
    st = [json.loads(ln) for ln in lines if ln.startswith("{")]
    assert "daemon gone" in lines, res
    return exe[0], st[0], res.out


def test_fstab_line(scratch, tmp_path):
    need_root_fuse()
    need("unshare", "util-linux")
    if not os.path.exists("/sbin/mount.fuse3"):
        pytest.skip("mount.fuse3 (package fuse3) is not installed")
    daxfsctl = binary("daxfsctl")
    region = scratch.region(daxfsctl)
    mnt = scratch.mountpoint("fstab")
    fstab, opts = fstab_for(tmp_path, region, mnt)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(binary("daxfs"), bindir / "daxfs")
    exe, st, _ = mount_fstab(fstab, mnt, daxfsctl, str(bindir))
    assert os.path.realpath(exe) == os.path.realpath(binary("daxfs"))
    want = [o for o in opts.split(",") if o.startswith("unbind_timeout=")]
    assert st["unbind_timeout_ms"] == \
        int(float(want[0].split("=")[1]) * 1000)
    assert st["region"] == region
    assert not is_mounted(mnt)
    assert region_state(daxfsctl, region) == "clean"


# --- udev --------------------------------------------------------------------

def parse_rules(path):
    """[(key, op, value)] per rule line; udev's syntax, as far as used."""
    rules = []
    pair = re.compile(r'\s*([A-Z_]+(?:\{[^}]*\})?)\s*(==|!=|\+=|=|:=|-=)'
                      r'\s*"([^"]*)"\s*(?:,|$)')
    with open(path) as f:
        for n, ln in enumerate(f, 1):
            ln = ln.strip()
            if not ln or ln.startswith("#"):
                continue
            pos, items = 0, []
            while pos < len(ln):
                m = pair.match(ln, pos)
                assert m, f"{path}:{n}: cannot parse at {ln[pos:]!r}"
                items.append(m.groups())
                pos = m.end()
            rules.append(items)
    return rules


def udev_eval(rules, event):
    """What the rules do for an event: (tags, run), udev's semantics for
    the keys used (==/!= with |-alternatives and globs, GOTO, LABEL)."""
    tags, runs, skip_to = [], [], None
    for items in rules:
        keys = dict((k, (op, v)) for k, op, v in items)
        if skip_to is not None:
            if keys.get("LABEL", (None, None))[1] == skip_to:
                skip_to = None
            continue
        ok = True
        for k, op, v in items:
            if op in ("==", "!="):
                assert k in event, f"the evaluator knows no key {k}"
                hit = any(fnmatch.fnmatchcase(event[k], alt)
                          for alt in v.split("|"))
                ok = ok and (hit if op == "==" else not hit)
        if not ok:
            continue
        for k, op, v in items:
            if k == "TAG" and op == "+=":
                tags.append(v)
            elif k == "RUN" and op == "+=":
                runs.append(v.replace("%k", event["KERNEL"]))
            elif k == "GOTO":
                skip_to = v
            elif op not in ("==", "!=") and k != "LABEL":
                raise AssertionError(f"the evaluator knows no {k}{op}")
    return tags, runs


@pytest.mark.parametrize("event,tags,runs", [
    (dict(ACTION="add", SUBSYSTEM="dax", KERNEL="dax0.0"), ["systemd"], []),
    (dict(ACTION="bind", SUBSYSTEM="dax", KERNEL="dax1.2"), ["systemd"],
     []),
    (dict(ACTION="unbind", SUBSYSTEM="dax", KERNEL="dax0.0"), ["systemd"],
     [INSTALLED["udev_helper"] + " dax0.0"]),
    (dict(ACTION="remove", SUBSYSTEM="dax", KERNEL="dax12.3"), [],
     [INSTALLED["udev_helper"] + " dax12.3"]),
    (dict(ACTION="remove", SUBSYSTEM="block", KERNEL="dax0.0"), [], []),
    (dict(ACTION="unbind", SUBSYSTEM="dax", KERNEL="dax_region0"), [], []),
])
def test_udev_rule_matches(event, tags, runs):
    assert udev_eval(parse_rules(RULES), event) == (tags, runs)


def udevadm_test(rules_file, name="60-daxfs.rules"):
    """udevadm test with rules_file in /run/udev/rules.d, in a private
    mount namespace with a private /run: udevadm 252 has no 'verify' and
    reads rules only from the system's directories."""
    script = """
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/udev/rules.d
cp "$RULES" "/run/udev/rules.d/$NAME"
udevadm test --action=remove /sys/class/mem/null 2>&1
"""
    res = run(["unshare", "--mount", "--propagation", "private", "/bin/sh",
               "-c", script], env=dict(os.environ, RULES=rules_file,
                                       NAME=name), timeout=60)
    assert res.rc == 0, res
    return res.out


def check_udevadm_parses(rules_file):
    need("udevadm", "udev")
    need("unshare", "util-linux")
    if not is_root():
        pytest.skip("not root: udevadm test needs a private mount namespace")
    if not os.path.exists("/sys/class/mem/null"):
        pytest.skip("no /sys/class/mem/null to run udevadm test on")
    out = udevadm_test(rules_file)
    assert "Reading rules file: /run/udev/rules.d/60-daxfs.rules" in out, out
    bad = [ln for ln in out.splitlines() if "60-daxfs.rules:" in ln]
    assert not bad, "\n".join(bad)
    return out


def test_udev_rule_parses():
    check_udevadm_parses(RULES)


def test_udevadm_check_catches_errors(tmp_path):
    """The check above would see a broken rule."""
    broken = tmp_path / "broken.rules"
    broken.write_text('SUBSYSTEM="dax", RUN+="/bin/true"\n')
    with pytest.raises(AssertionError, match="60-daxfs.rules:1"):
        check_udevadm_parses(str(broken))


def wait_released(daxfsctl, mnt, timeout=30):
    return wait_for(lambda: status(daxfsctl, mnt)["state"] == "released",
                    timeout, 0.1)


def check_udev_helper(scratch, daxfsctl, helper, path_env, daxfs_exe):
    """Three mounts: one whose source is /dev/NAME, one whose source is a
    path /dev/NAME2 resolves to, and one of another device; the helper
    unbinds the first two for their names and leaves the third alone."""
    env = dict(os.environ, PATH=path_env)
    procs = []
    try:
        cases = []
        for kind in ("name", "realpath", "other"):
            region = scratch.region(daxfsctl)
            mnt = scratch.mountpoint(f"udev-{kind}")
            name = scratch.dev_link(region)
            source = f"/dev/{name}" if kind == "name" else region
            p = subprocess.Popen([daxfs_exe, "-f", source, mnt],
                                 stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True)
            procs.append(p)
            scratch.pids.append(p.pid)
            assert wait_for(lambda: is_mounted(mnt) or p.poll() is not None,
                            20), f"{mnt} not mounted"
            assert p.poll() is None, p.stderr.read()
            with open(os.path.join(mnt, "f"), "w") as f:
                f.write("data\n")
            cases.append((kind, region, mnt, name, p))
        for kind, region, mnt, name, p in cases:
            if kind == "other":
                continue
            res = run([helper, name], env=env, timeout=30)
            assert res.rc == 0, res
            assert f"unbinding the daxfs at {mnt}" in res.err, res
            assert wait_released(daxfsctl, mnt), status(daxfsctl, mnt)
            rep = status(daxfsctl, mnt)["unbind"]
            assert rep and not rep["timed_out"], rep
            with pytest.raises(OSError) as e:
                open(os.path.join(mnt, "f")).close()
            assert e.value.errno == 6       # ENXIO
        # a device without a mount: nothing happens, status 0
        res = run([helper, "dax97.5"], env=env, timeout=30)
        assert res.rc == 0 and "no daxfs mount" in res.err, res
        res = run([helper, "../etc"], env=env, timeout=30)
        assert res.rc == 2, res
        other = cases[2]
        assert status(daxfsctl, other[2])["state"] == "live"
        for kind, region, mnt, name, p in cases:
            assert run(["umount", mnt], timeout=60).rc == 0
            assert p.wait(timeout=60) == 0, p.stderr.read()
            assert region_state(daxfsctl, region) == "clean"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_udev_helper_unbinds(scratch):
    need_root_fuse()
    check_udev_helper(scratch, binary("daxfsctl"), UDEV_HELPER,
                      build_path(), binary("daxfs"))


# --- the .deb ----------------------------------------------------------------

def dpkg_status(pkg):
    res = run(["dpkg-query", "-W", "-f=${db:Status-Status}", pkg],
              timeout=30)
    return res.out.strip() if res.rc == 0 else ""


def installed_daxfs_pids():
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                exe = os.readlink(f"/proc/{p}/exe")
            except OSError:
                continue
            if exe in (INSTALLED["daxfs"], INSTALLED["daxfs"] + " (deleted)"):
                pids.append(int(p))
    return pids


def apt_env():
    return dict(os.environ, DEBIAN_FRONTEND="noninteractive", PATH=SYS_PATH)


def purge():
    return run(["apt-get", "purge", "-y", "-q", "-o",
                "DPkg::Lock::Timeout=120", "daxfs"], env=apt_env(),
               timeout=300)


def need_deb_tools():
    if os.environ.get("DAXFS_PACKAGE_TEST") != "1":
        pytest.skip("builds and installs the .deb: runs once per CI run, "
                    "in the pass with DAXFS_PACKAGE_TEST=1 (the normal "
                    "build), not against the ASan build")
    need_root_fuse()
    for tool, pkg in (("dpkg-buildpackage", "dpkg-dev"),
                      ("dh", "debhelper"), ("apt-get", "apt"),
                      ("unshare", "util-linux"),
                      ("systemd-escape", "systemd")):
        need(tool, pkg)
    if not os.path.exists("/sbin/mount.fuse3"):
        pytest.skip("mount.fuse3 (package fuse3) is not installed")
    if dpkg_status("daxfs"):
        pytest.skip("a daxfs package is already installed here; this test "
                    "would replace and then purge it")
    for path in INSTALLED.values():
        if os.path.lexists(path):
            pytest.skip(f"{path} exists outside the package; installing "
                        f"the package would overwrite it")


def test_deb(scratch, tmp_path):
    need_deb_tools()
    t0 = time.monotonic()
    out = tmp_path / "out"
    res = run(["bash", os.path.join(PKG, "build-deb.sh"), str(out)],
              timeout=600)
    assert res.rc == 0, f"build-deb.sh failed:\n{res.out[-3000:]}\n" \
        f"{res.err[-3000:]}"
    debs = glob.glob(str(out / "daxfs_*.deb"))
    assert len(debs) == 1, os.listdir(out)
    deb = debs[0]
    t_build = time.monotonic() - t0

    if shutil.which("lintian"):
        res = run(["lintian", "--fail-on", "error", deb], timeout=300)
        assert res.rc == 0, f"lintian:\n{res.out}{res.err}"

    files = []
    try:
        res = run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                   "-o", "DPkg::Lock::Timeout=120", deb], env=apt_env(),
                  timeout=300)
        assert res.rc == 0, res
        assert dpkg_status("daxfs") == "installed"
        res = run(["dpkg", "-L", "daxfs"], timeout=30)
        assert res.rc == 0, res
        files = res.out.split()
        for path in list(INSTALLED.values()) + MAN_PAGES:
            assert path in files, f"{path} is not in the package"
        assert os.readlink(INSTALLED["mkfs"]) == "daxfsctl"
        exercise_installed(scratch, tmp_path)
    finally:
        for mnt in scratch.mounts:
            force_cleanup(mnt, scratch.pids)
        for pid in installed_daxfs_pids():
            if pid in scratch.pids or any(
                    pid in mounted_pids(m) for m in scratch.mounts):
                os.kill(pid, signal.SIGKILL)
        purged = purge()
    assert purged.rc == 0, purged
    assert dpkg_status("daxfs") in ("", "not-installed"), \
        dpkg_status("daxfs")
    left = [f for f in files if os.path.lexists(f) and
            not os.path.isdir(f)]
    assert not left, f"left behind after purge: {left}"
    for d in ("/usr/libexec/daxfs", "/usr/share/doc/daxfs"):
        assert not os.path.exists(d), f"{d} left behind after purge"
    assert not installed_daxfs_pids(), "an installed daxfs still runs"
    # every step above has its own timeout; the total is only reported
    print(f"the package test took {time.monotonic() - t0:.0f} s "
          f"(build {t_build:.0f} s)")


def exercise_installed(scratch, tmp_path):
    """Everything through installed files only (PATH without the build)."""
    daxfsctl = INSTALLED["daxfsctl"]
    env = dict(os.environ, PATH=SYS_PATH)

    # man pages, for man(1)
    for page in ("daxfs", "daxfsctl", "mkfs.daxfs"):
        res = run(["man", "-w", page], env=env, timeout=30) \
            if shutil.which("man") else None
        assert res is None or res.rc == 0, res

    # mkfs(8) finds mkfs.daxfs
    region = new_region_path("pkg")
    scratch.paths.append(region)
    res = run(["mkfs", "-t", "daxfs", "--size", "32M", region], env=env,
              timeout=60)
    assert res.rc == 0, res

    # mount -t fuse.daxfs runs /usr/sbin/daxfs through mount.fuse3
    mnt = scratch.mountpoint("deb")
    res = run(["mount", "-t", "fuse.daxfs", "-o", "unbind_timeout=7",
               region, mnt], env=env, timeout=60)
    assert res.rc == 0, res
    st = status(daxfsctl, mnt)
    scratch.pids.append(st["pid"])
    assert os.readlink(f"/proc/{st['pid']}/exe") == INSTALLED["daxfs"]
    assert st["unbind_timeout_ms"] == 7000
    with open(os.path.join(mnt, "file"), "w") as f:
        f.write("written through the installed daxfs\n")
    with open(os.path.join(mnt, "file")) as f:
        assert f.read() == "written through the installed daxfs\n"
    res = run(["umount", mnt], env=env, timeout=60)
    assert res.rc == 0, res
    assert wait_for(lambda: not pid_alive(st["pid"]), 30), \
        "daxfs did not exit after umount"
    assert region_state(daxfsctl, region) == "clean"

    # the documented fstab line, no namespace needed: daxfs is installed
    mnt2 = scratch.mountpoint("deb-fstab")
    fstab, _ = fstab_for(tmp_path, region, mnt2)
    exe, st2, _ = mount_fstab(fstab, mnt2, daxfsctl)
    assert exe == INSTALLED["daxfs"]

    # the installed unit: verify, then its command lines as installed
    if shutil.which("systemd-analyze"):
        d = tmp_path / "installed-unit"
        d.mkdir()
        shutil.copy(INSTALLED["unit"], d / "daxfs@.service")
        verify_unit(str(d / "daxfs@.service"), "mnt-dax")
    mnt3 = scratch.mountpoint("deb-unit")
    instance = escape_path(mnt3)
    conf = tmp_path / f"{instance}.conf"
    conf.write_text(f"REGION={region}\nUNBIND_TIMEOUT=5\n")
    _, out = run_unit(INSTALLED["unit"], instance, str(conf), {}, daxfsctl,
                      SYS_PATH)
    assert "released" in out, out

    # the installed udev rule parses; the installed helper unbinds
    if shutil.which("udevadm"):
        check_udevadm_parses(INSTALLED["rules"])
    check_udev_helper(scratch, daxfsctl, INSTALLED["udev_helper"], SYS_PATH,
                      INSTALLED["daxfs"])
