#!/usr/bin/python3
"""driver.py -- the measuring half of bench/run.

bench/run installs, builds and prepares the scratch directories, then runs
this.  It mounts the three targets (tmpfs, bindfs over tmpfs, daxfs on a
file region), runs every workload on each, interleaving the targets in each
run, measures the daxfs-only figures (unbind latency, daemon memory), and
writes the Markdown table, a JSON file of every figure and a chart.

It measures and reports; it never asserts.  Every process it starts is
recorded (pid) in WORK/pids so that bench/run's trap can end it.
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import time

TARGETS = ("tmpfs", "bindfs", "daxfs", "daxfs-devfuse")
MiB = 1 << 20


class BenchError(Exception):
    """A one-line reason to stop the whole benchmark."""


# --------------------------------------------------------------------------
# configuration


def sizes(quick):
    """What a run measures: the full set or the short CI smoke version."""
    if quick:
        return dict(seq_size=256 * MiB, runtime=0.5, meta_files=5000,
                    cp_src="/usr/include/linux", rss_files=20000,
                    warmup=1 << 30, region="1G", unbind_n=(1, 16, 64),
                    fsync_size=16 * MiB)
    return dict(seq_size=1 << 30, runtime=2.0, meta_files=10000,
                cp_src="/usr/include", rss_files=100000,
                warmup=6 << 30, region="4G", unbind_n=(1, 16, 64),
                fsync_size=64 * MiB)


# --------------------------------------------------------------------------
# small helpers


def log(msg):
    print(f"bench: {msg}", flush=True)


def drop_caches():
    """Evict clean page cache, dentries and inodes (FUSE data included;
    tmpfs keeps its pages, which are its storage)."""
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def prefetch(path):
    """Read a file once so that its pages are in the page cache."""
    buf = bytearray(MiB)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def run(cmd, timeout=300, check=True):
    """Run a command, return its stdout; a failure is a BenchError."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{cmd[0]} timed out after {timeout} s")
    if check and p.returncode != 0:
        msg = (p.stderr.strip() or p.stdout.strip()).splitlines()
        raise BenchError(f"{' '.join(cmd[:3])}... exited {p.returncode}: "
                         f"{msg[-1] if msg else 'no output'}")
    return p.stdout


def loadavg():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def proc_status(pid, keys=("VmRSS", "VmHWM", "RssAnon", "RssFile",
                            "RssShmem")):
    """kB figures from /proc/PID/status, as MiB, and the thread count."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in keys:
                out[k] = int(v.split()[0]) / 1024.0
            elif k == "Threads":
                out[k] = int(v)
    return out


def is_mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


# --------------------------------------------------------------------------
# targets


class Target:
    """A directory to run the workloads in, plus how to set it up."""

    def __init__(self, name, root):
        self.name = name
        self.dir = root
        self.proc = None

    def start(self):
        os.makedirs(self.dir, exist_ok=True)

    def stop(self):
        pass

    def path(self, name):
        return os.path.join(self.dir, name)


class FuseTarget(Target):
    """A FUSE daemon run in the foreground, so its pid is ours."""

    def __init__(self, name, mnt, ctx):
        super().__init__(name, mnt)
        self.mnt = mnt
        self.ctx = ctx
        self.logf = None

    def argv(self):
        raise NotImplementedError

    def start(self):
        os.makedirs(self.mnt, exist_ok=True)
        if is_mounted(self.mnt):
            raise BenchError(f"{self.mnt} is already mounted")
        self.logf = open(os.path.join(self.ctx.work, f"{self.name}.log"),
                         "a")
        self.proc = subprocess.Popen(self.argv(), stdout=self.logf,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.ctx.track(self.proc.pid)
        deadline = time.monotonic() + 15
        while not is_mounted(self.mnt):
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited "
                                 f"{self.proc.returncode} before mounting "
                                 f"{self.mnt}; see its log")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.name} did not mount {self.mnt} "
                                 f"within 15 s")
            time.sleep(0.02)

    def stop(self):
        if self.proc is None:
            return
        if is_mounted(self.mnt):
            subprocess.run(["umount", self.mnt], capture_output=True)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            if is_mounted(self.mnt):
                subprocess.run(["umount", "-l", self.mnt],
                               capture_output=True)
        rc = self.proc.returncode
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None
        if rc != 0:
            log(f"note: {self.name} exited {rc} after unmounting")
        return rc


class Bindfs(FuseTarget):
    def __init__(self, ctx):
        super().__init__("bindfs", os.path.join(ctx.mnt, "bindfs"), ctx)
        self.src = os.path.join(ctx.work, "bindfs-src")

    def argv(self):
        os.makedirs(self.src, exist_ok=True)
        # Debian's bindfs is built on libfuse 2, which without big_writes
        # has the kernel split every write into 4 KiB requests
        return ["bindfs", "-f", "--multithreaded", "-o", "big_writes",
                self.src, self.mnt]


class Daxfs(FuseTarget):
    """daxfs with its default options (FUSE over io_uring when the kernel
    offers it, which bench/run arranges), or with transport= given."""

    def __init__(self, ctx, name="daxfs", region=None, mnt=None,
                 transport=None):
        super().__init__(name, mnt or os.path.join(ctx.mnt, name), ctx)
        self.region = region or os.path.join(ctx.work, f"{name}.region")
        self.transport = transport

    def argv(self):
        opts = ["-o", f"transport={self.transport}"] if self.transport \
            else []
        return [self.ctx.daxfs, "-f", *opts, self.region, self.mnt]

    def transport_used(self, within=5):
        """The transport the mount settled on: its workers register their
        ring entries once INIT has been answered, so io_uring shows up a
        moment after the mount, if the kernel offers it at all."""
        deadline = time.monotonic() + within
        while True:
            out = run([self.ctx.daxfsctl, "status", "--json", self.mnt])
            st = json.loads(out)
            if st["transport"] == "io_uring" or \
                    self.transport == "devfuse" or \
                    not self.uring_offered() or time.monotonic() > deadline:
                return st["transport"]
            time.sleep(0.02)

    @staticmethod
    def uring_offered():
        try:
            with open("/sys/module/fuse/parameters/enable_uring") as f:
                return f.read().strip() in ("Y", "1")
        except OSError:
            return False

    def mkfs(self, size):
        # touch every page of the region file first: fresh guest memory is
        # slow on first touch and would otherwise land in the first run
        run(["fallocate", "-l", size, self.region])
        run([self.ctx.daxfsctl, "mkfs", "--force", "--size", size,
             self.region])


# --------------------------------------------------------------------------
# workloads


def runtime_arg(secs):
    """fio reads a bare number as whole seconds: give it milliseconds."""
    return f"--runtime={int(secs * 1000)}ms"


def fio(ctx, rw, filename, bs, engine="psync", size=None, runtime=None,
        numjobs=1, invalidate=1, direct=0, iodepth=1, extra=()):
    """One fio job; returns (bytes/s, IOPS) of the direction measured."""
    cmd = ["fio", "--output-format=json", "--name=bench",
           f"--filename={filename}", f"--rw={rw}", f"--bs={bs}",
           f"--ioengine={engine}", f"--iodepth={iodepth}",
           f"--numjobs={numjobs}", "--group_reporting",
           f"--invalidate={invalidate}", f"--direct={direct}",
           "--fallocate=none", f"--size={size}"]
    if runtime:
        cmd += [runtime_arg(runtime), "--time_based"]
    cmd += list(extra)
    out = run(cmd, timeout=300)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    d = job["read"] if "read" in rw else job["write"]
    if d["io_bytes"] == 0:
        raise BenchError(f"fio {rw} on {filename} moved no data")
    return d["bw_bytes"], d["iops"]


def mmapbench(ctx, *args):
    out = run([ctx.mmapbench] + [str(a) for a in args], timeout=600)
    return json.loads(out.strip().splitlines()[-1])


def unlink_quiet(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def w_seqwrite_cold(ctx, t, engine):
    f = t.path("seq.dat")
    unlink_quiet(f)
    drop_caches()
    return fio(ctx, "write", f, "1M", engine, ctx.s["seq_size"],
               iodepth=4 if engine == "io_uring" else 1)[0]


def w_seqwrite_warm(ctx, t, engine):
    f = t.path("seq.dat")
    prefetch(f)
    return fio(ctx, "write", f, "1M", engine, ctx.s["seq_size"],
               runtime=ctx.s["runtime"], invalidate=0,
               iodepth=4 if engine == "io_uring" else 1)[0]


def w_seqread_cold(ctx, t, engine):
    drop_caches()
    return fio(ctx, "read", t.path("seq.dat"), "1M", engine,
               ctx.s["seq_size"], invalidate=1,
               iodepth=4 if engine == "io_uring" else 1)[0]


def w_seqread_warm(ctx, t, engine):
    f = t.path("seq.dat")
    prefetch(f)
    return fio(ctx, "read", f, "1M", engine, ctx.s["seq_size"],
               runtime=ctx.s["runtime"], invalidate=0,
               iodepth=4 if engine == "io_uring" else 1)[0]


def split_jobs(ctx, jobs):
    """fio arguments giving each job its own slice of seq.dat."""
    per = ctx.s["seq_size"] // jobs
    return per, ([f"--offset_increment={per}"] if jobs > 1 else [])


def w_randread_cold(ctx, t, jobs):
    # fio's random map visits each block of a job's slice at most once, so
    # with the cache dropped every 4 KiB read misses: the job ends after
    # one pass or the runtime, whichever comes first
    per, extra = split_jobs(ctx, jobs)
    drop_caches()
    return fio(ctx, "randread", t.path("seq.dat"), "4k", size=per,
               numjobs=jobs, invalidate=1,
               extra=extra + [runtime_arg(ctx.s["runtime"])])[1]


def w_randread_warm(ctx, t, jobs):
    f = t.path("seq.dat")
    prefetch(f)
    return fio(ctx, "randread", f, "4k", size=ctx.s["seq_size"],
               runtime=ctx.s["runtime"], numjobs=jobs, invalidate=0)[1]


def w_randwrite(ctx, t, jobs):
    per, extra = split_jobs(ctx, jobs)
    return fio(ctx, "randwrite", t.path("seq.dat"), "4k", size=per,
               runtime=ctx.s["runtime"], numjobs=jobs, invalidate=0,
               extra=extra)[1]


def w_fsync(ctx, t):
    f = t.path("fsync.dat")
    unlink_quiet(f)
    iops = fio(ctx, "write", f, "4k", size=ctx.s["fsync_size"],
               runtime=ctx.s["runtime"], extra=["--fsync=1"])[1]
    unlink_quiet(f)
    return iops


def w_mmap_seq_cold(ctx, t):
    drop_caches()
    return mmapbench(ctx, "seqread", t.path("seq.dat"))["gbps"] * 1e9


def w_mmap_seq_warm(ctx, t):
    f = t.path("seq.dat")
    prefetch(f)
    return mmapbench(ctx, "seqread", f)["gbps"] * 1e9


def w_mmap_rand(ctx, t, write):
    f = t.path("seq.dat")
    prefetch(f)
    r = mmapbench(ctx, "randwrite" if write else "randread", f,
                  ctx.s["runtime"])
    return r["ops_per_s"]


def w_meta(ctx, t):
    d = t.path("meta")
    shutil.rmtree(d, ignore_errors=True)
    return mmapbench(ctx, "meta", d, ctx.s["meta_files"], "--drop")


def w_cp(ctx, t):
    dst = t.path("cp")
    shutil.rmtree(dst, ignore_errors=True)
    os.makedirs(dst)
    t0 = time.monotonic()
    run(["cp", "-a", ctx.s["cp_src"], dst], timeout=600)
    secs = time.monotonic() - t0
    shutil.rmtree(dst, ignore_errors=True)
    return secs


# key, label, unit kind, function; the order is the order of the table.
# Units: "GBps" (bytes/s), "iops", "ops", "secs" (lower is better).
def workloads(ctx):
    wl = []
    for eng in ("psync", "io_uring"):
        wl.append((f"seqwrite_cold_{eng}",
                   f"seq write 1 MiB, {eng}, cold (new file)", "GBps",
                   lambda t, e=eng: w_seqwrite_cold(ctx, t, e)))
    for eng in ("psync", "io_uring"):
        wl.append((f"seqwrite_warm_{eng}",
                   f"seq write 1 MiB, {eng}, warm (overwrite, cached)",
                   "GBps", lambda t, e=eng: w_seqwrite_warm(ctx, t, e)))
    for eng in ("psync", "io_uring"):
        wl.append((f"seqread_cold_{eng}", f"seq read 1 MiB, {eng}, cold",
                   "GBps", lambda t, e=eng: w_seqread_cold(ctx, t, e)))
    for eng in ("psync", "io_uring"):
        wl.append((f"seqread_warm_{eng}", f"seq read 1 MiB, {eng}, warm",
                   "GBps", lambda t, e=eng: w_seqread_warm(ctx, t, e)))
    for j in (1, 2):
        wl.append((f"randread_cold_{j}j",
                   f"rand read 4 KiB, {j} job{'s' if j > 1 else ''}, cold",
                   "iops", lambda t, j=j: w_randread_cold(ctx, t, j)))
    wl.append(("randread_warm_1j", "rand read 4 KiB, 1 job, warm", "iops",
               lambda t: w_randread_warm(ctx, t, 1)))
    for j in (1, 2):
        wl.append((f"randwrite_{j}j",
                   f"rand write 4 KiB, {j} job{'s' if j > 1 else ''}",
                   "iops", lambda t, j=j: w_randwrite(ctx, t, j)))
    wl.append(("fsync", "write 4 KiB + fsync", "iops",
               lambda t: w_fsync(ctx, t)))
    wl.append(("mmap_seq_cold", "mmap seq read, cold", "GBps",
               lambda t: w_mmap_seq_cold(ctx, t)))
    wl.append(("mmap_seq_warm", "mmap seq read, warm", "GBps",
               lambda t: w_mmap_seq_warm(ctx, t)))
    wl.append(("mmap_randread", "mmap rand read 4 KiB, warm", "ops",
               lambda t: w_mmap_rand(ctx, t, False)))
    wl.append(("mmap_randwrite", "mmap rand write 4 KiB + msync", "ops",
               lambda t: w_mmap_rand(ctx, t, True)))
    wl.append(("meta", None, "meta", lambda t: w_meta(ctx, t)))
    wl.append(("cp", f"cp -a {ctx.s['cp_src']}", "secs",
               lambda t: w_cp(ctx, t)))
    return wl


META_PHASES = ("create", "stat", "readdir", "unlink")

# --------------------------------------------------------------------------
# the daxfs-only measurements


def unbind_once(ctx, n, region):
    """Mount, hold n mapped files with a dirty page and n O_DIRECT readers
    in flight, unbind, and return the report plus the command's wall time."""
    t = Daxfs(ctx, name="daxfs-unbind", region=region)
    t.start()
    loader = None
    try:
        loader = subprocess.Popen([ctx.mmapbench, "unbindload",
                                   t.path("load"), str(n)],
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        ctx.track(loader.pid)
        line = loader.stdout.readline().strip()
        if line != "ready":
            loader.kill()
            _, err = loader.communicate(timeout=10)
            raise BenchError(f"the unbind load did not start: "
                             f"{err.strip() or 'no reason given'}")
        t0 = time.monotonic()
        p = subprocess.run([ctx.daxfsctl, "unbind", "--json", t.mnt],
                           capture_output=True, text=True, timeout=120)
        wall = (time.monotonic() - t0) * 1000
        if p.returncode not in (0, 3):
            raise BenchError(f"daxfsctl unbind exited {p.returncode}: "
                             f"{p.stderr.strip()}")
        rep = json.loads(p.stdout)["unbind"]
        try:
            out, _ = loader.communicate(timeout=20)
            lr = json.loads(out.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            loader.kill()
            loader.communicate()
            lr = {"error": "load still running 20 s after the unbind"}
        rep["wall_ms"] = wall
        rep["load"] = lr
        rep["status"] = p.returncode
        return rep
    finally:
        if loader and loader.poll() is None:
            loader.kill()
            loader.wait()
        t.stop()


def measure_unbind(ctx, runs):
    region = os.path.join(ctx.work, "unbind-region")
    Daxfs(ctx, region=region).mkfs("512M")
    res = {n: [] for n in ctx.s["unbind_n"]}
    for r in range(runs):
        for n in ctx.s["unbind_n"]:
            try:
                res[n].append(unbind_once(ctx, n, region))
            except (BenchError, OSError, ValueError, KeyError,
                    subprocess.TimeoutExpired) as e:
                ctx.errors.append(f"unbind with {n} mapped files, run "
                                  f"{r + 1}: {e}")
    os.unlink(region)
    return res


def measure_rss(ctx, dax):
    """Daemon memory with many files: create them, read /proc/PID/status."""
    pid = dax.proc.pid
    out = {"after_runs": proc_status(pid)}
    d = dax.path("rss")
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.monotonic()
    r = mmapbench(ctx, "create", d, ctx.s["rss_files"])
    out["create_secs"] = time.monotonic() - t0
    out["create_rate"] = r["create"]
    out["with_files"] = proc_status(pid)
    # a stat of every file: the kernel now holds a lookup on each inode
    t0 = time.monotonic()
    n = 0
    with os.scandir(d) as it:
        for e in it:
            e.stat()
            n += 1
    out["stat_all_secs"] = time.monotonic() - t0
    out["after_stat_all"] = proc_status(pid)
    out["files"] = n
    return out


# --------------------------------------------------------------------------
# the whole run


class Ctx:
    def __init__(self, a):
        self.work, self.mnt = a.work, a.mnt
        self.daxfs = os.path.join(a.build, "daxfs")
        self.daxfsctl = os.path.join(a.build, "daxfsctl")
        self.mmapbench = a.mmapbench
        self.s = sizes(a.quick)
        self.errors = []
        self.durations = {}     # seconds each workload took, for budgeting
        self.pidfile = os.path.join(a.work, "pids")

    def track(self, pid):
        with open(self.pidfile, "a") as f:
            f.write(f"{pid}\n")


def warm_up(ctx):
    """First touch of fresh guest memory is slow: touch some first."""
    f = os.path.join(ctx.work, "warmup")
    log(f"warming up: writing and reading {ctx.s['warmup'] >> 20} MiB on "
        f"/dev/shm")
    run(["dd", "if=/dev/zero", f"of={f}", "bs=1M",
         f"count={ctx.s['warmup'] >> 20}"], timeout=600)
    prefetch(f)
    os.unlink(f)


def machine():
    m = {"nproc": os.cpu_count(), "kernel": os.uname().release}
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                m["mem_gib"] = int(line.split()[1]) / (1 << 20)
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                m["cpu"] = line.split(":", 1)[1].strip()
                break
    for tool, cmd in (("fio", ["fio", "--version"]),
                      ("bindfs", ["bindfs", "--version"])):
        try:
            m[tool] = run(cmd, check=False).strip().splitlines()[0]
        except (BenchError, IndexError, OSError):
            m[tool] = "?"
    return m


def git_info(root, rev):
    """(short hash, built from a work tree with changes?, subject)"""
    def git(*a):
        return subprocess.run(["git", "-C", root] + list(a),
                              capture_output=True, text=True).stdout.strip()
    h = git("rev-parse", "--short", rev or "HEAD") or "nogit"
    dirty = not rev and bool(git("status", "--porcelain", "--", ".",
                                 ":!bench"))
    return h, dirty, git("log", "-1", "--format=%s", rev or "HEAD")


def main_runs(ctx, runs):
    tmp = Target("tmpfs", os.path.join(ctx.work, "tmpfs"))
    bfs = Bindfs(ctx)
    dax = Daxfs(ctx)
    dev = Daxfs(ctx, "daxfs-devfuse", transport="devfuse")
    dax.mkfs(ctx.s["region"])
    dev.mkfs(ctx.s["region"])
    targets = {"tmpfs": tmp, "bindfs": bfs, "daxfs": dax,
               "daxfs-devfuse": dev}
    wl = workloads(ctx)
    res = {}
    rss = {}
    try:
        for t in targets.values():
            t.start()
        rss["after_mount"] = proc_status(dax.proc.pid)
        ctx.transport = dax.transport_used()
        log(f"daxfs serves its requests through {ctx.transport}")
        for r in range(runs):
            la = loadavg()
            log(f"run {r + 1}/{runs} (load average {la[0]:.2f})")
            ctx.run_loads.append(la)
            # interleave: every target once per run, in a rotating order
            k = r % len(TARGETS)
            order = TARGETS[k:] + TARGETS[:k]
            for name in order:
                t = targets[name]
                t0 = time.monotonic()
                for key, _label, unit, fn in wl:
                    t1 = time.monotonic()
                    try:
                        v = fn(t)
                    except (BenchError, OSError, ValueError,
                            KeyError) as e:
                        ctx.errors.append(f"{key} on {name}, run {r + 1}: "
                                          f"{e}")
                        v = None
                    ctx.durations.setdefault(key, {}).setdefault(
                        name, []).append(round(time.monotonic() - t1, 2))
                    if unit == "meta":
                        for ph in META_PHASES:
                            res.setdefault(f"meta_{ph}", {}).setdefault(
                                name, []).append(v and v[ph])
                    else:
                        res.setdefault(key, {}).setdefault(
                            name, []).append(v)
                log(f"  {name}: {time.monotonic() - t0:.0f} s")
        log(f"daemon memory: creating {ctx.s['rss_files']} files on daxfs")
        try:
            rss.update(measure_rss(ctx, dax))
        except (BenchError, OSError) as e:
            ctx.errors.append(f"daemon memory: {e}")
    finally:
        for t in targets.values():
            t.stop()
    return res, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--mnt", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--mmapbench", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rev", help="the commit daxfs was built from")
    a = ap.parse_args()

    ctx = Ctx(a)
    ctx.run_loads = []
    started = datetime.datetime.now()
    t_start = time.monotonic()
    info = {"machine": machine(), "load_before": loadavg(),
            "started": started.isoformat(timespec="seconds"),
            "runs": a.runs, "quick": a.quick, "sizes": ctx.s}
    info["commit"], info["dirty"], info["subject"] = git_info(a.root, a.rev)
    warm_up(ctx)
    res, rss = main_runs(ctx, a.runs)
    log("unbind latency (daxfs only)")
    unb = measure_unbind(ctx, a.runs)
    info["transport"] = getattr(ctx, "transport", "?")
    info["load_after"] = loadavg()
    info["run_loads"] = ctx.run_loads
    info["secs"] = time.monotonic() - t_start
    info["errors"] = ctx.errors
    info["durations"] = ctx.durations

    import report
    stamp = started.strftime("%Y-%m-%d-%H%M")
    base = f"{stamp}-{info['commit']}{'-quick' if a.quick else ''}"
    latest = "latest-quick" if a.quick else "latest"
    os.makedirs(a.out, exist_ok=True)
    data = {"info": info, "results": res, "rss": rss,
            "unbind": {str(k): v for k, v in unb.items()}}
    md = report.markdown(data, workloads(ctx), f"{base}.png")
    with open(os.path.join(a.out, f"{base}.json"), "w") as f:
        json.dump(data, f, indent=1)
    for name in (f"{base}.md", f"{latest}.md"):
        with open(os.path.join(a.out, name), "w") as f:
            f.write(md.replace(f"]({base}.png)", f"]({latest}.png)")
                    if name.startswith("latest") else md)
    png = os.path.join(a.out, f"{base}.png")
    try:
        report.chart(data, workloads(ctx), png)
        shutil.copyfile(png, os.path.join(a.out, f"{latest}.png"))
    except Exception as e:  # the table matters more than the picture
        log(f"could not draw the chart: {e}")
    print(md)
    log(f"wrote {os.path.join(a.out, base)}.md/.png/.json and "
        f"{latest}.md/.png in {info['secs']:.0f} s")
    if ctx.errors:
        log(f"{len(ctx.errors)} measurement(s) failed; they are listed in "
            f"the report")


def on_term(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    # bench/run's trap sends SIGTERM: unwind, so that targets unmount
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    try:
        main()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        sys.exit(130)
