"""Crash consistency at every persist point: tests/crash/daxfs_crashsim.

The simulator runs a seeded random workload on an in-process daxfs,
records every store, flush and drain, and at every drain rebuilds the
images a crash could leave (what was durable, everything, and random
parts of what was not), then checks each with fsck, a mount and a
comparison with the state before or after the operation in flight.  The
rules are written at the top of tests/crash/daxfs_crashsim.c.

Bounded runs here (a few hundred operations in each configuration);
DAXFS_CRASH_LONG=1 adds long ones.  DAXFS_CRASH_SEED=N fixes the seed
(otherwise each run picks one and prints it: a failure says how to replay
it).  The simulator must also fail when told to lie about the trace
(--break), which proves it can see a broken commit protocol.
"""
import glob
import os
import random
import re

import subprocess

import pytest

from conftest import BUILD, run

LONG = os.environ.get("DAXFS_CRASH_LONG") == "1"


def crashsim_path():
    path = os.path.join(BUILD, "tests", "crash", "daxfs_crashsim")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built; run cmake --build first")
    return path


def sanitized():
    """An ASan build runs several times slower: do less there."""
    with open(crashsim_path(), "rb") as f:
        return b"__asan_init" in f.read()


def seed():
    s = os.environ.get("DAXFS_CRASH_SEED")
    return int(s, 0) if s else random.randrange(1, 1 << 48)


def crashsim(*args, timeout=600):
    """Run the simulator: (rc, output, the command that replays it).
    Also checks that it left nothing in /dev/shm."""
    s = seed()
    argv = [crashsim_path(), "--seed", str(s), *map(str, args)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(argv)} ran over {timeout} s\n{out[-4000:]}")
    left = glob.glob(f"/dev/shm/daxfs-crash-{proc.pid}-*")
    for path in left:
        os.unlink(path)
    assert not left, f"the simulator left {left} in /dev/shm"
    return proc.returncode, out, " ".join(argv)


def ops(n):
    return max(40, n // 2) if sanitized() else n


def assert_clean(rc, out, cmd):
    assert rc == 0 and "daxfs_crashsim: OK" in out, \
        f"crash images failed; replay with:\n  {cmd}\n{out[-20000:]}"
    m = re.search(r"(\d+) drain points, (\d+) crash images \((\d+) "
                  r"distinct checked\), 0 failures", out)
    assert m, out[-4000:]
    drains, images, checked = map(int, m.groups())
    assert drains > 0 and checked > drains, out[-4000:]


@pytest.mark.parametrize("config", [
    # page granularity (file regions: data durable at msync)
    ("--ops", 400, "--partials", 3),
    # cache-line granularity: non-temporal data stores, durable at drain
    ("--cacheline", "--ops", 300, "--partials", 3),
    # no fsync after writes (the unsynced-data rule, lazy sizes), and
    # many clean unmounts (evictions, the superblock update)
    ("--fsync-pct", 0, "--remount-pct", 8, "--ops", 200, "--partials", 2),
    # a small region and big files: ENOSPC paths
    ("--size", "16M", "--max-file", "6M", "--ops", 120, "--partials", 2),
], ids=["page", "cacheline", "unsynced", "enospc"])
def test_crash_images_are_consistent(config):
    args = list(config)
    k = args.index("--ops")
    args[k + 1] = ops(args[k + 1])
    rc, out, cmd = crashsim(*args, timeout=300)
    assert_clean(rc, out, cmd)


@pytest.mark.parametrize("mode", ["commit-fence", "inode-flush"])
def test_crashsim_sees_a_broken_protocol(mode):
    """--break makes the recorded trace lie (the drain fencing each
    journal commit, or every flush of the inode table, never happened):
    the simulator must report inconsistent images."""
    rc, out, cmd = crashsim("--break", mode, "--ops", ops(60),
                            "--partials", 2, "--show", 1, timeout=300)
    assert rc == 1, f"{cmd}\n{out[-4000:]}"
    m = re.search(r"(\d+) failures", out)
    assert m and int(m.group(1)) > 0, out[-4000:]
    assert "FAIL: op " in out, out[-4000:]


def test_crashsim_usage():
    res = run([crashsim_path(), "--bogus"], timeout=30)
    assert res.rc == 2 and "usage:" in res.err
    res = run([crashsim_path(), "--size", "1M"], timeout=30)
    assert res.rc == 2 and "16M" in res.err


@pytest.mark.skipif(not LONG, reason="long crash runs: DAXFS_CRASH_LONG=1")
@pytest.mark.parametrize("config", [
    ("--long", "--partials", 4),
    ("--long", "--cacheline", "--partials", 4),
    ("--long", "--fsync-pct", 10, "--remount-pct", 5, "--partials", 3),
    ("--long", "--size", "16M", "--max-file", "6M", "--partials", 3),
], ids=["page", "cacheline", "unsynced", "enospc"])
def test_crash_long(config):
    rc, out, cmd = crashsim(*config, timeout=3 * 3600)
    assert_clean(rc, out, cmd)
