"""kill -9 storms: the daxfs daemon is killed with SIGKILL at a random
moment while several client processes create, write, fsync, rename,
unlink and truncate files; after each kill the crashed region passes
fsck, remounts, and holds exactly what the clients were promised.

Each client works in its own directory and writes a log outside the
mount: before an operation an "intent" line, once it returned a "done"
line (so at most one operation per client is in flight when the daemon
dies).  Replaying a log gives the state the client was promised:

  - every namespace change (create, mkdir, rename, unlink, rmdir) and
    every truncate that returned is there, exactly;
  - every file whose write (or create, or rewrite) and fsync returned
    holds exactly those bytes;
  - the operation in flight happened entirely or not at all, except that
    the data of a file it was writing may be anything;
  - a file written without fsync holds unknown contents until it is
    rewritten (daxfs keeps its size lazily until an fsync);
  - once checked, every file is grown a little and the bytes uncovered
    must read zero: nothing a crash left past the end of a file (data
    beyond a size that was lost, blocks a truncate had not freed yet)
    may come back.

The clients carry on in the same directories from round to round,
starting from the state verified after the last kill, so whatever a
crash left behind (a size kept lazily, blocks past the end of a file) is
built upon by later rounds.  A clean unmount and mount in between must
change nothing.  Odd rounds run the daemon with the cache-line data path.
10 rounds by default, 100 with DAXFS_STRESS=1; DAXFS_KILLSTORM_SEED=N
replays a run (the seed is in every failure).
"""
import json
import multiprocessing
import os
import random
import signal
import stat
import time

import pytest

from conftest import is_mounted, start_daxfs
from helpers_ops import FALLOC_FL_KEEP_SIZE, fallocate, mounted

pytestmark = pytest.mark.usefixtures("need_fuse")

STRESS = os.environ.get("DAXFS_STRESS") == "1"
ROUNDS = 100 if STRESS else 10
WORKERS = 4
MAX_FILE = 256 << 10
MAX_PATHS = 40
UNKNOWN = object()         # file contents nobody promised


# --- the model: path -> None (a directory) or bytes or UNKNOWN -------------

def data_of(seed, n):
    return random.Random(seed).randbytes(n)


def is_dir(model, p):
    return p in model and model[p] is None


def children(model, p):
    pre = p + "/"
    return [q for q in model if q.startswith(pre)]


def apply_op(model, op):
    """The state after op returned; op must be valid for model."""
    kind = op["op"]
    p = op.get("path")
    if kind == "mkdir":
        model[p] = None
    elif kind == "create":
        model[p] = data_of(op["seed"], op["len"])
    elif kind == "rewrite":
        model[p] = data_of(op["seed"], op["len"])
    elif kind == "write":
        old = model[p]
        if old is UNKNOWN or not op["sync"]:
            model[p] = UNKNOWN
        else:
            d = data_of(op["seed"], op["len"])
            off = op["off"]
            buf = bytearray(old)
            if len(buf) < off:
                buf.extend(bytes(off - len(buf)))
            buf[off:off + len(d)] = d
            model[p] = bytes(buf)
    elif kind == "truncate":
        old, n = model[p], op["size"]
        if n == 0:
            model[p] = b""
        elif old is not UNKNOWN:
            model[p] = old[:n] + bytes(max(0, n - len(old)))
    elif kind == "rename":
        src, dst = op["src"], op["dst"]
        if is_dir(model, dst):
            del model[dst]
        moved = {q: model.pop(q) for q in [src] + children(model, src)}
        for q, v in moved.items():
            model[dst + q[len(src):]] = v
    elif kind in ("unlink", "rmdir"):
        del model[p]
    elif kind == "append-open":
        model[p] = UNKNOWN
    elif kind in ("prealloc", "close"):
        pass
    else:
        raise AssertionError(f"unknown op {op!r}")


def touched_data(op):
    """The file whose data an op in flight may leave half written."""
    if op["op"] in ("create", "rewrite", "write", "append-open"):
        return op["path"]
    return None


# --- a client ----------------------------------------------------------------

def choose(rnd, model, nopen=0):
    """A valid operation for model (nopen files are held open)."""
    dirs = [p for p in model if model[p] is None]
    files = [p for p in model if model[p] is not None]

    def fresh(parent):
        for _ in range(20):
            p = f"{parent}/{rnd.choice('fdxy')}{rnd.randrange(12)}"
            if p not in model:
                return p
        return None

    while True:
        r = rnd.randrange(100)
        if r < 18 and len(model) < MAX_PATHS:
            p = fresh(rnd.choice(dirs))
            if p:
                return {"op": "create", "path": p, "seed": rnd.getrandbits(
                    48), "len": rnd.choice([0, 1, 100, 4096, 5000,
                                            rnd.randrange(MAX_FILE)])}
        elif r < 25 and len(model) < MAX_PATHS:
            parent = rnd.choice(dirs)
            if parent.count("/") < 4:
                p = fresh(parent)
                if p:
                    return {"op": "mkdir", "path": p}
        elif r < 48 and files:
            p = rnd.choice(files)
            size = 0 if model[p] is UNKNOWN else len(model[p])
            off = rnd.choice([0, size, rnd.randrange(size + 1),
                              size + rnd.randrange(1, 20000)])
            n = rnd.choice([1, 37, 4096, rnd.randrange(1, 70000)])
            if off + n <= MAX_FILE:
                return {"op": "write", "path": p, "off": off, "len": n,
                        "seed": rnd.getrandbits(48),
                        "sync": rnd.random() < 0.85}
        elif r < 55 and files:
            return {"op": "rewrite", "path": rnd.choice(files),
                    "seed": rnd.getrandbits(48),
                    "len": rnd.randrange(MAX_FILE // 2)}
        elif r < 65 and files:
            p = rnd.choice(files)
            size = 0 if model[p] is UNKNOWN else len(model[p])
            return {"op": "truncate", "path": p,
                    "size": rnd.choice([0, size // 2, size + 1,
                                        rnd.randrange(MAX_FILE)])}
        elif r < 80 and len(model) > 1:
            src = rnd.choice([p for p in model if p])
            if is_dir(model, src):
                cands = [d for d in dirs if d and not children(model, d)
                         and d != src]
            else:
                cands = files
            if rnd.random() < 0.4 and cands:
                dst = rnd.choice(cands)
            else:
                dst = fresh(rnd.choice(dirs))
            if (dst and dst != src and not dst.startswith(src + "/")
                    and not src.startswith(dst + "/")):
                return {"op": "rename", "src": src, "dst": dst}
        elif r < 90 and files:
            return {"op": "unlink", "path": rnd.choice(files)}
        elif r < 93 and files:
            # blocks past the end of file, zeroed
            p = rnd.choice(files)
            size = 0 if model[p] is UNKNOWN else len(model[p])
            n = rnd.choice([4096, 65536, rnd.randrange(1, 200000)])
            if size + n <= MAX_FILE:
                return {"op": "prealloc", "path": p, "len": n}
        elif r < 96 and files and nopen < 3:
            # an append left unsynced and the file kept open: its new
            # size stays in the daemon's memory until the file is closed
            p = rnd.choice(files)
            return {"op": "append-open", "path": p,
                    "seed": rnd.getrandbits(48),
                    "len": rnd.choice([1, 100, 3000, rnd.randrange(1, 70000)])}
        elif r < 98 and nopen:
            return {"op": "close"}
        else:
            empty = [d for d in dirs if d and not children(model, d)]
            if empty:
                return {"op": "rmdir", "path": rnd.choice(empty)}


def do_op(root, op, held):
    """Run op against the mount (raises OSError).  held: open files."""
    def j(p):
        return root + p
    kind = op["op"]
    if kind == "append-open":
        fd = os.open(j(op["path"]), os.O_WRONLY)
        held.append(fd)
        d = data_of(op["seed"], op["len"])
        off = os.fstat(fd).st_size
        done = 0
        while done < len(d):
            done += os.pwrite(fd, d[done:], off + done)
    elif kind == "close":
        os.close(held.pop(0))
    elif kind == "prealloc":
        fd = os.open(j(op["path"]), os.O_WRONLY)
        try:
            fallocate(fd, FALLOC_FL_KEEP_SIZE, os.fstat(fd).st_size,
                      op["len"])
        finally:
            os.close(fd)
    if kind == "mkdir":
        os.mkdir(j(op["path"]))
    elif kind in ("create", "rewrite"):
        flags = os.O_WRONLY | (os.O_CREAT | os.O_EXCL if kind == "create"
                               else os.O_TRUNC)
        fd = os.open(j(op["path"]), flags, 0o644)
        try:
            d = data_of(op["seed"], op["len"])
            view = memoryview(d)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
    elif kind == "write":
        fd = os.open(j(op["path"]), os.O_WRONLY)
        try:
            d = data_of(op["seed"], op["len"])
            done = 0
            while done < len(d):
                done += os.pwrite(fd, d[done:], op["off"] + done)
            if op["sync"]:
                os.fsync(fd)
        finally:
            os.close(fd)
    elif kind == "truncate":
        os.truncate(j(op["path"]), op["size"])
    elif kind == "rename":
        os.rename(j(op["src"]), j(op["dst"]))
    elif kind == "unlink":
        os.unlink(j(op["path"]))
    elif kind == "rmdir":
        os.rmdir(j(op["path"]))


def client(root, logpath, seed, max_ops=None, start=None):
    """A forked client: operations until one fails (the daemon died),
    from the state start (verified after the last kill)."""
    rnd = random.Random(seed)
    model = dict(start or {"": None})
    fd = os.open(logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def log(obj):
        os.write(fd, (json.dumps(obj) + "\n").encode())
    n = 0
    held = []
    try:
        while max_ops is None or n < max_ops:
            op = choose(rnd, model, len(held))
            log({"n": n, "ev": "intent", "op": op})
            do_op(root, op, held)
            log({"n": n, "ev": "done"})
            apply_op(model, op)
            n += 1
    except OSError as e:
        log({"n": n, "ev": "error", "errno": e.errno,
             "t": time.monotonic()})
    except BaseException as e:          # a bug in the client: say so
        log({"n": n, "ev": "crash", "what": repr(e)})
    finally:
        os._exit(0)


# --- checking ----------------------------------------------------------------

def replay(logpath, start=None, killed_at=None):
    """(model after every operation that returned, the one in flight,
    ops done, the last lines of the log), from the state start.  An
    operation that failed before killed_at is an error of its own."""
    model = dict(start or {"": None})
    inflight = None
    done = 0
    lines = []
    with open(logpath) as f:
        for line in f:
            lines.append(line.rstrip())
            ev = json.loads(line)
            if ev["ev"] == "intent":
                inflight = ev["op"]
            elif ev["ev"] == "done":
                apply_op(model, inflight)
                inflight = None
                done += 1
            elif ev["ev"] == "crash":
                raise AssertionError(f"client bug: {ev['what']}")
            elif ev["ev"] == "error" and killed_at is not None and \
                    ev["t"] < killed_at:
                raise AssertionError(
                    f"{inflight} failed with {os.strerror(ev['errno'])} "
                    f"while the daemon was alive")
    return model, inflight, done, lines[-6:]


def actual_tree(root):
    """path (relative, "" the root) -> None for a directory, bytes."""
    tree = {"": None}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = p[len(root):]
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                tree[rel] = None
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    tree[rel] = f.read()
            else:
                tree[rel] = f"unexpected file type {st.st_mode:o}"
    return tree


def differences(want, got):
    out = []
    for p in sorted(set(want) | set(got)):
        if p not in got:
            out.append(f"missing {p!r}")
        elif p not in want:
            out.append(f"unexpected {p!r}")
        elif (want[p] is None) != (got[p] is None):
            out.append(f"{p!r} is a {'file' if want[p] is None else 'dir'}"
                       f", should be a {'dir' if want[p] is None else 'file'}")
        elif want[p] is not None and want[p] is not UNKNOWN and \
                want[p] != got[p]:
            w, g = want[p], got[p]
            at = next((k for k in range(min(len(w), len(g)))
                       if w[k] != g[k]), min(len(w), len(g)))
            out.append(f"{p!r}: {len(g)} bytes, want {len(w)}; first "
                       f"difference at byte {at}")
    return out


def check_client(root, logpath, start=None, killed_at=None):
    """The client's directory against its log; returns ops done."""
    model, inflight, done, tail = replay(logpath, start, killed_at)
    got = actual_tree(root)
    alts = []
    before = dict(model)
    if inflight:
        after = dict(model)
        apply_op(after, inflight)
        p = touched_data(inflight)
        for m in (before, after):
            if p in m:
                m[p] = UNKNOWN
        alts = [before, after]
    else:
        alts = [before]
    diffs = [differences(m, got) for m in alts]
    if all(diffs):
        why = "\n    ".join(min(diffs, key=len))
        raise AssertionError(
            f"{root}: not the promised state ({done} operations returned,"
            f" in flight: {inflight}):\n    {why}\n  log tail:\n    "
            + "\n    ".join(tail))
    return done


def extend_all(root, tree):
    """Grow every file a little: the bytes uncovered must read zero,
    whatever a crash left past its end (a size kept in the daemon's
    memory only, blocks a truncate had not freed yet).  Returns the
    problems found."""
    bad = []
    for p, v in sorted(tree.items()):
        if v is None:
            continue
        n = len(v) + 1 + (len(v) * 7919 + 4093) % 9000
        os.truncate(root + p, n)
        with open(root + p, "rb") as f:
            got = f.read()
        if got != v + bytes(n - len(v)):
            at = next(k for k in range(len(got)) if k >= len(v) and got[k])
            bad.append(f"{p!r} grown from {len(v)} to {n} bytes reads "
                       f"{got[at]:#x} at byte {at}: stale data came back")
    return bad


def fsck_crashed(daxfsctl, region):
    res = daxfsctl("fsck", region, timeout=300)
    assert res.rc == 0, f"fsck of the killed region: {res!r}"


def test_kill9_storm(daxfsctl, region, tmp_path):
    base = int(os.environ.get("DAXFS_KILLSTORM_SEED", "0")) or \
        random.randrange(1, 1 << 30)
    rnd = random.Random(base)
    mnt = tmp_path / "mnt"
    logs = tmp_path / "logs"
    logs.mkdir()
    ctx = multiprocessing.get_context("fork")
    # each client's directory as last verified; clients carry on from it,
    # so what a crash left (sizes, blocks past the end) is built upon
    trees = {f"w{w}": {"": None} for w in range(WORKERS)}
    total_done = inflight_rounds = 0
    t0 = time.monotonic()
    for rnd_no in range(ROUNDS):
        where = f"seed {base}, round {rnd_no}"
        procs = []
        # odd rounds: the cache-line data path (non-temporal stores)
        env = {"PMEM2_FORCE_GRANULARITY": "CACHE_LINE"} if rnd_no % 2 \
            else None
        m = start_daxfs(region, mnt, env=env)
        try:
            if rnd_no == 0:
                for d in trees:
                    os.mkdir(m.path(d))
            # a clean unmount and mount changed nothing
            for d, tree in trees.items():
                diffs = differences(tree, actual_tree(m.path(d)))
                assert not diffs, f"{where}: {d} changed: {diffs}"
            assert sorted(os.listdir(m.mnt)) == sorted(trees), where
            for w, d in enumerate(trees):
                lp = str(logs / f"r{rnd_no}{d}.log")
                p = ctx.Process(target=client, args=(
                    m.path(d), lp, base * 1000 + rnd_no * 10 + w, None,
                    trees[d]))
                p.start()
                procs.append((d, lp, p))
            time.sleep(rnd.uniform(0.05, 1.5))
            # the daemon dies; clients see their calls fail (ENOTCONN)
            # and stop before the dead mount is detached, so none of
            # them can reach the directory underneath
            killed_at = time.monotonic()
            m.proc.send_signal(signal.SIGKILL)
            m.proc.wait(timeout=30)
            for _, _, p in procs:
                p.join(timeout=30)
            m.kill9()
        except BaseException:
            m.cleanup()
            raise
        finally:
            for _, _, p in procs:
                if p.is_alive():
                    os.kill(p.pid, signal.SIGKILL)
                p.join()
        assert not is_mounted(mnt), where
        fsck_crashed(daxfsctl, region)
        m = start_daxfs(region, mnt)
        try:
            for d, lp, _ in procs:
                try:
                    total_done += check_client(m.path(d), lp, trees[d],
                                               killed_at)
                except AssertionError as e:
                    raise AssertionError(f"{where}, client {d}: {e}")
                _, inflight, _, _ = replay(lp, trees[d])
                inflight_rounds += inflight is not None
                bad = extend_all(m.path(d), actual_tree(m.path(d)))
                assert not bad, f"{where}, client {d}: {bad}"
                trees[d] = actual_tree(m.path(d))
            m.unmount()
        except BaseException:
            m.cleanup()
            raise
    # a last look: cleanly unmounted, everything verified is there
    res = daxfsctl("fsck", region, timeout=300)
    assert res.rc == 0, res
    with mounted(region, mnt) as m:
        for d, tree in trees.items():
            assert not differences(tree, actual_tree(m.path(d))), d
    assert total_done >= ROUNDS * WORKERS, \
        f"only {total_done} operations returned in {ROUNDS} rounds"
    print(f"kill9 storm: seed {base}, {ROUNDS} rounds, {total_done} "
          f"operations returned, {inflight_rounds} clients caught in "
          f"flight, {time.monotonic() - t0:.0f} s")


def test_killstorm_checker_notices_a_lost_change(region, tmp_path):
    """The oracle above must be able to fail: a client runs to the end of
    its operations, then a file's byte, and then a name, are changed
    behind its back; each must be reported."""
    mnt = tmp_path / "mnt"
    lp = str(tmp_path / "client.log")
    with mounted(region, mnt) as m:
        root = m.path("w")
        os.mkdir(root)
        p = multiprocessing.get_context("fork").Process(
            target=client, args=(root, lp, 12345, 150))
        p.start()
        p.join(timeout=60)
        assert p.exitcode == 0
        check_client(root, lp)
        model, inflight, done, _ = replay(lp)
        assert done == 150 and inflight is None
        files = sorted(q for q, v in model.items()
                       if v is not None and v is not UNKNOWN and len(v))
        assert files, "the client wrote no file with known contents"
        with open(root + files[0], "r+b") as f:
            b = f.read(1)
            f.seek(0)
            f.write(bytes([b[0] ^ 1]))
        with pytest.raises(AssertionError, match="first difference"):
            check_client(root, lp)
        with open(root + files[0], "r+b") as f:
            f.write(b)
        check_client(root, lp)
        os.rename(root + files[0], root + files[0] + ".moved")
        with pytest.raises(AssertionError, match="missing"):
            check_client(root, lp)


@pytest.mark.parametrize("grow", ["truncate", "write", "fallocate"])
def test_kill9_lost_size_exposes_nothing(region, tmp_path, grow):
    """An append the daemon kept in memory (no fsync, the file still
    open) is lost with the daemon, size and all; growing the file after
    the remount must show zeros there, not the lost bytes (regression:
    growing a file did not zero what lay past its end)."""
    mnt = tmp_path / "mnt"
    m = start_daxfs(region, mnt)
    try:
        fd = os.open(m.path("f"), os.O_RDWR | os.O_CREAT, 0o644)
        os.write(fd, b"A" * 10)
        os.fsync(fd)
        os.pwrite(fd, b"B" * 10, 10)        # the size stays in memory
        m.kill9()
        try:
            os.close(fd)
        except OSError:
            pass
    except BaseException:
        m.cleanup()
        raise
    with mounted(region, mnt) as m:
        p = m.path("f")
        assert os.stat(p).st_size in (10, 20)
        if os.stat(p).st_size == 20:
            pytest.skip("the append's size survived the kill here")
        if grow == "truncate":
            os.truncate(p, 30)
        else:
            fd = os.open(p, os.O_WRONLY)
            try:
                if grow == "write":
                    os.pwrite(fd, b"C", 29)
                else:
                    fallocate(fd, 0, 10, 20)
            finally:
                os.close(fd)
        got = open(p, "rb").read()
        want = b"A" * 10 + bytes(19) + (b"C" if grow == "write" else b"\0")
        assert got == want
