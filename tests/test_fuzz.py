"""The libFuzzer targets in fuzz/: every input in fuzz/regressions/ (each
once a crash, a hang or a broken invariant, since fixed) and every seed in
fuzz/corpus/ must pass, always; and in CI each target is fuzzed for a
bounded time (DAXFS_FUZZ_SECONDS, 20 by default when $CI is set;
scripts/test.sh sets 6).
DAXFS_FUZZ=0 skips the module.

The targets are built with clang (-fsanitize=fuzzer,address,undefined)
by fuzz/run.sh into $DAXFS_FUZZ_BUILD (default ./build-fuzz).  Without
clang or libFuzzer the tests skip, saying which is missing; scripts/deps.sh
installs both (clang, libclang-rt-14-dev).
"""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, run

FUZZ = os.path.join(ROOT, "fuzz")
TARGETS = ["super", "journal", "inode", "extent", "dir", "xattr", "image"]
BUILD = os.environ.get("DAXFS_FUZZ_BUILD", os.path.join(ROOT, "build-fuzz"))

# The targets are built here, with their own sanitizers, whatever
# $DAXFS_BUILD is: a second pass over another build would only repeat them.
pytestmark = pytest.mark.skipif(
    os.environ.get("DAXFS_FUZZ") == "0",
    reason="DAXFS_FUZZ=0: the fuzz targets do not depend on the build under "
           "test; scripts/test.sh runs them once, in the normal build's pass")


def fuzz_seconds():
    s = os.environ.get("DAXFS_FUZZ_SECONDS")
    if s:
        return int(s)
    return 20 if os.environ.get("CI") else 0


def have_libfuzzer():
    """None if clang can link a libFuzzer target, else why not."""
    if not shutil.which("clang"):
        return "clang is not installed (scripts/deps.sh installs it)"
    res = subprocess.run(
        ["clang", "-x", "c", "-fsanitize=fuzzer", "-o", "/dev/null", "-"],
        input="int LLVMFuzzerTestOneInput(const char *d, long n) "
              "{ return 0; }\n", capture_output=True, text=True)
    if res.returncode:
        return ("clang cannot link libFuzzer (libclang-rt-14-dev is "
                "missing): " + res.stderr.strip().splitlines()[-1])
    return None


@pytest.fixture(scope="module")
def fuzz_build():
    why = have_libfuzzer()
    if why:
        pytest.skip(why)
    res = subprocess.run(["bash", os.path.join(FUZZ, "run.sh"),
                          "--build-only"], capture_output=True, text=True,
                         timeout=1800,
                         env=dict(os.environ, DAXFS_FUZZ_BUILD=BUILD))
    assert res.returncode == 0, f"building the fuzz targets failed:\n" \
                                f"{res.stdout}\n{res.stderr}"
    return BUILD


def replay(build, target, files, tmp_path):
    exe = os.path.join(build, "fuzz", f"fuzz_{target}")
    # libFuzzer runs each file once; -timeout turns a hang into a failure
    res = run([exe, "-timeout=10", "-rss_limit_mb=2048", *files],
              timeout=900, env=dict(
                  os.environ, ASAN_OPTIONS="detect_leaks=1:halt_on_error=1",
                  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"))
    out = res.out + res.err
    assert res.rc == 0, f"fuzz_{target} fails on an input:\n" + \
        "\n".join(out.splitlines()[-60:])
    return out


def inputs(kind, target):
    d = os.path.join(FUZZ, kind, target)
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, f) for f in os.listdir(d))


@pytest.mark.parametrize("target", TARGETS)
def test_regressions_and_seeds(target, fuzz_build, tmp_path):
    files = inputs("regressions", target) + inputs("corpus", target)
    assert inputs("corpus", target), f"fuzz/corpus/{target} is empty"
    replay(fuzz_build, target, files, tmp_path)


@pytest.mark.parametrize("target", TARGETS)
def test_bounded_fuzzing(target, fuzz_build, tmp_path):
    secs = fuzz_seconds()
    if not secs:
        pytest.skip("bounded fuzzing is off here (DAXFS_FUZZ_SECONDS=0 "
                    "or unset outside CI); scripts/test.sh runs it once, "
                    "in the normal build's pass")
    exe = os.path.join(fuzz_build, "fuzz", f"fuzz_{target}")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for f in inputs("corpus", target):
        shutil.copy(f, corpus)
    res = run([exe, f"-max_total_time={secs}", "-timeout=10",
               "-rss_limit_mb=2048", "-print_final_stats=1",
               f"-artifact_prefix={tmp_path}/", str(corpus)],
              timeout=secs + 300, env=dict(
                  os.environ, ASAN_OPTIONS="detect_leaks=1:halt_on_error=1",
                  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"))
    out = res.out + res.err
    crashes = [f for f in os.listdir(tmp_path) if "-" in f and
               f.split("-")[0] in ("crash", "timeout", "oom", "leak")]
    assert res.rc == 0 and not crashes, \
        f"fuzz_{target} found a problem (inputs: {crashes}):\n" + \
        "\n".join(out.splitlines()[-80:])
    runs = [ln for ln in out.splitlines()
            if ln.startswith("stat::number_of_executed_units")]
    print(f"fuzz_{target}: {runs[-1].split()[-1] if runs else '?'} runs "
          f"in {secs} s")
