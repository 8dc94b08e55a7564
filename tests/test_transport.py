"""How requests reach the daemon: /dev/fuse, or FUSE over io_uring.

With the fuse module's enable_uring on, the daemon registers ring entries
on one queue per CPU and the kernel sends requests through them; every
handler is the same, so the rest of the suite runs over either transport
(scripts/test.sh runs the ASan pass over io_uring and the normal pass over
/dev/fuse, through $DAXFS_TEST_TRANSPORT).  These tests check the choice
itself, that the rings really carry the requests, and the edges: a mount
that goes away, a daemon killed, an unbind.
"""
import errno
import hashlib
import mmap
import os
import signal
import threading

import pytest

from conftest import binary, is_mounted, run, start_daxfs
from helpers_ops import status, wait_for

PARAM = "/sys/module/fuse/parameters/enable_uring"


def uring_offered():
    try:
        with open(PARAM) as f:
            return f.read().strip() in ("Y", "1")
    except OSError:
        return False


need_uring = pytest.mark.skipif(
    not uring_offered(),
    reason=f"FUSE over io_uring is not offered here ({PARAM} is missing or "
           f"N; scripts/test.sh turns it on as root)")


def settle_entries(mnt, want):
    """The workers register their entries once INIT is answered."""
    assert wait_for(lambda: status(mnt)["ring_entries"] >= want, timeout=10), \
        status(mnt)


def test_default_transport_follows_the_kernel(need_fuse, region, tmp_path):
    # transport=auto is the default; said here so that a pass run over
    # one transport ($DAXFS_TEST_TRANSPORT) does not choose for us
    m = start_daxfs(region, tmp_path / "mnt", opts=("-o", "transport=auto"))
    try:
        st = status(m.mnt)
        if uring_offered():
            settle_entries(m.mnt, st["ring_queues"])
            assert status(m.mnt)["transport"] == "io_uring"
        else:
            assert st["transport"] == "devfuse" and st["ring_entries"] == 0
        m.unmount()
    except BaseException:
        m.cleanup()
        raise


def test_devfuse_transport(need_fuse, region, tmp_path):
    m = start_daxfs(region, tmp_path / "mnt", opts=("-o", "transport=devfuse"))
    try:
        with open(m.path("f"), "wb") as f:
            f.write(b"x" * 100000)
        with open(m.path("f"), "rb") as f:
            assert f.read() == b"x" * 100000
        st = status(m.mnt)
        assert st["transport"] == "devfuse", st
        assert st["ring_entries"] == 0 and st["ring_requests"] == 0, st
        text = run([binary("daxfsctl"), "status", m.mnt]).out
        assert "transport:    /dev/fuse" in text, text
        m.unmount()
    except BaseException:
        m.cleanup()
        raise


def test_transport_option_errors(need_fuse, region, tmp_path):
    mnt = tmp_path / "mnt"
    os.makedirs(mnt)
    for opt, needle in (("transport=fast", "transport=fast is not one of"),
                        ("transport", "'transport' needs a value")):
        res = run([binary("daxfs"), "-f", "-o", opt, region, str(mnt)],
                  timeout=30)
        assert res.rc == 1, res
        lines = res.err.strip().split("\n")
        assert len(lines) == 1 and needle in lines[0], res
        assert not is_mounted(mnt)


def test_uring_refused_when_the_kernel_does_not_offer_it(need_fuse, region,
                                                         tmp_path):
    if uring_offered():
        pytest.skip(f"{PARAM} is on here: the refusal is checked where "
                    f"FUSE over io_uring is off")
    mnt = tmp_path / "mnt"
    os.makedirs(mnt)
    res = run([binary("daxfs"), "-f", "-o", "transport=io_uring", region,
               str(mnt)], timeout=30)
    assert res.rc == 1, res
    lines = res.err.strip().split("\n")
    assert len(lines) == 1 and "transport=io_uring" in lines[0], res
    assert not is_mounted(mnt)


@need_uring
def test_uring_carries_the_requests(need_fuse, region, tmp_path):
    """Data, metadata, mappings and xattrs, from threads on every CPU:
    the rings serve them (their count grows by at least the requests we
    know we caused) and the data is right after a remount."""
    m = start_daxfs(region, tmp_path / "mnt", opts=("-o", "transport=io_uring"))
    ncpu = os.cpu_count() or 1
    try:
        settle_entries(m.mnt, ncpu)
        before = status(m.mnt)["ring_requests"]
        sums = {}
        errors = []

        def work(cpu):
            try:
                os.sched_setaffinity(0, {cpu % ncpu})
                for k in range(20):
                    p = m.path(f"c{cpu}-{k}")
                    data = os.urandom(4096 * (k + 1) + cpu)
                    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
                    try:
                        os.pwrite(fd, data, 0)
                        os.fsync(fd)
                        os.setxattr(p, "user.k", str(k).encode())
                    finally:
                        os.close(fd)
                    with open(p, "rb") as f:
                        assert f.read() == data
                    sums[p] = hashlib.sha256(data).hexdigest()
            except Exception as e:            # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=work, args=(c,))
                   for c in range(ncpu * 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[:3]
        # a shared mapping, stored through and read back
        with open(m.path("mapped"), "wb") as f:
            f.truncate(1 << 20)
        with open(m.path("mapped"), "r+b") as f:
            mm = mmap.mmap(f.fileno(), 1 << 20)
            mm[4096:4104] = b"uring!!!"
            mm.flush()
            mm.close()
        names = sorted(os.listdir(m.mnt))
        assert len(names) == ncpu * 2 * 20 + 1
        st = status(m.mnt)
        # creates, writes, fsyncs, setxattrs, opens and reads: at least
        # four requests per file beyond the rest
        assert st["ring_requests"] - before >= 4 * ncpu * 2 * 20, st
        assert st["transport"] == "io_uring", st
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    m = start_daxfs(region, tmp_path / "mnt")
    try:
        for p, s in sums.items():
            with open(p, "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == s, p
            assert os.getxattr(p, "user.k")
        with open(m.path("mapped"), "rb") as f:
            f.seek(4096)
            assert f.read(8) == b"uring!!!"
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
    res = run([binary("daxfsctl"), "fsck", region], timeout=120)
    assert res.rc == 0, res


@need_uring
def test_uring_daemon_killed(need_fuse, region, tmp_path):
    """kill -9 of a daemon serving through rings: the applications'
    requests fail instead of hanging, and the region mounts again."""
    m = start_daxfs(region, tmp_path / "mnt", opts=("-o", "transport=io_uring"))
    try:
        settle_entries(m.mnt, os.cpu_count() or 1)
        with open(m.path("kept"), "wb") as f:
            f.write(b"kept")
            os.fsync(f.fileno())
        m.proc.send_signal(signal.SIGKILL)
        m.proc.wait(timeout=30)
        try:
            os.stat(m.path("kept"))
            raise AssertionError("a dead daemon's mount still answered")
        except OSError as e:
            assert e.errno in (errno.ENOTCONN, errno.ECONNABORTED), e
    finally:
        m.cleanup()
    m = start_daxfs(region, tmp_path / "mnt", opts=("-o", "transport=io_uring"))
    try:
        with open(m.path("kept"), "rb") as f:
            assert f.read() == b"kept"
        m.unmount()
    except BaseException:
        m.cleanup()
        raise


@need_uring
def test_uring_umount_with_requests_in_flight(need_fuse, region, tmp_path):
    """Lazy unmount while threads keep the rings busy: the workers end
    with the connection and the daemon exits 0."""
    m = start_daxfs(region, tmp_path / "mnt", opts=("-o", "transport=io_uring"))
    stop = threading.Event()
    try:
        settle_entries(m.mnt, os.cpu_count() or 1)
        fd = os.open(m.path("busy"), os.O_RDWR | os.O_CREAT, 0o644)

        def churn():
            while not stop.is_set():
                try:
                    os.pwrite(fd, b"b" * 65536, 0)
                    os.pread(fd, 65536, 0)
                except OSError:
                    return

        threads = [threading.Thread(target=churn) for _ in range(4)]
        for t in threads:
            t.start()
        assert wait_for(lambda: status(m.mnt)["ring_requests"] > 100,
                        timeout=60), status(m.mnt)
        res = run(["umount", "-l", m.mnt])
        assert res.rc == 0, res
        stop.set()
        for t in threads:
            t.join(30)
        os.close(fd)
        assert m.proc.wait(timeout=30) == 0, m.stderr()
        assert not any(t.is_alive() for t in threads)
    finally:
        stop.set()
        m.cleanup()


@need_uring
def test_uring_unbind(need_fuse, region, tmp_path):
    """The unbind sequence over rings: refused requests come back through
    the rings, status answers in every state, umount works."""
    m = start_daxfs(region, tmp_path / "mnt", opts=("-o", "transport=io_uring"))
    try:
        settle_entries(m.mnt, os.cpu_count() or 1)
        with open(m.path("f"), "wb") as f:
            f.write(b"data")
        fd = os.open(m.path("f"), os.O_RDONLY)
        res = run([binary("daxfsctl"), "unbind", m.mnt], timeout=60)
        assert res.rc == 0, res
        try:
            os.open(m.path("g"), os.O_CREAT | os.O_WRONLY, 0o644)
            raise AssertionError("create after the unbind succeeded")
        except OSError as e:
            assert e.errno == errno.ENXIO, e
        try:
            os.pread(fd, 4, 0)
            raise AssertionError("a read after the unbind succeeded")
        except OSError as e:
            assert e.errno == errno.EIO, e
        os.close(fd)
        assert status(m.mnt)["state"] == "released"
        m.unmount()
    except BaseException:
        m.cleanup()
        raise
