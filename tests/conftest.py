"""Shared fixtures for the daxfs test suite.

Binaries come from the build directory named by $DAXFS_BUILD (default:
./build under the project root).  Every test that needs a region gets a
fresh file region on /dev/shm that is removed afterwards, whatever happened.
"""
import os
import shutil
import subprocess
import uuid

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("DAXFS_BUILD", os.path.join(ROOT, "build"))
SHM = "/dev/shm"


def binary(name):
    path = os.path.join(BUILD, name)
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not built; run cmake --build first")
    return path


class Result:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def __repr__(self):
        return f"<rc={self.rc} out={self.out!r} err={self.err!r}>"


def run(argv, timeout=120, input=None, env=None):
    """Run a command, capture text output, never raise on failure."""
    proc = subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, input=input, env=env)
    return Result(proc)


@pytest.fixture
def daxfsctl():
    """Call daxfsctl: daxfsctl('info', path) -> Result."""
    exe = binary("daxfsctl")

    def call(*args, timeout=120, env=None):
        return run([exe, *map(str, args)], timeout=timeout, env=env)
    return call


def new_region_path(tag="r"):
    return os.path.join(SHM, f"daxfs-test-{tag}-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def region_path():
    """A path on /dev/shm for a region that does not exist yet."""
    path = new_region_path()
    yield path
    if os.path.lexists(path):
        os.unlink(path)


@pytest.fixture
def region(region_path, daxfsctl):
    """A formatted 64 MiB file region."""
    res = daxfsctl("mkfs", "--size", "64M", region_path)
    assert res.rc == 0, res
    return region_path


@pytest.fixture
def scratch_dir(tmp_path):
    """A scratch directory (not on the region)."""
    return tmp_path


def is_root():
    return os.geteuid() == 0


def have_fuse():
    return os.path.exists("/dev/fuse") and shutil.which("fusermount3")
