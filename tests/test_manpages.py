"""The man pages in man/ against the --help of the binaries they describe.

For daxfs, daxfsctl (and each of its commands) and mkfs.daxfs, every
option the --help output names -- short (-x), long (--name), the daxfs -o
mount options (name= and bare names) -- must appear in the corresponding
man page, a daxfsctl command's options in that command's section.  Every
page must render with groff and man(1) without a warning, and CMake must
install the three pages.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, binary, run

MAN = os.path.join(ROOT, "man")
PAGES = ("daxfs.8", "daxfsctl.8", "mkfs.daxfs.8")
COMMANDS = ("mkfs", "fsck", "info", "list", "status", "unbind")

# -x and --long, not inside words ("read-only"), paths ("/dev/x") or
# placeholders ("daxX.Y")
SHORT = re.compile(r"(?<![\w/.\-])-[A-Za-z](?![\w\-])")
LONG = re.compile(r"(?<![\w/.\-])--[a-z][a-z0-9\-]*")
# a daxfs -o option as --help lists it: "name", "name=VALUE", "x-*"
MOUNT_OPT = re.compile(r"^(?:[a-z_]+(?:=\S*)?|x-\*)$")
EXIT_STATUS = re.compile(r"Exit status:(.*?)(?:\n\n|\Z)", re.S)


def need_groff():
    if not shutil.which("groff"):
        pytest.skip("groff is not installed (Debian: groff-base)")


def render(page):
    """The page as plain text on lines long enough never to wrap."""
    need_groff()
    res = subprocess.run(
        ["groff", "-man", "-Tutf8", "-rLL=1000n", "-P-cbou",
         os.path.join(MAN, page)], capture_output=True, text=True,
        timeout=60, env=dict(os.environ, LC_ALL="C.UTF-8"))
    assert res.returncode == 0, res.stderr
    text = res.stdout
    for dash in ("\u2010", "\u2011", "\u2012", "\u2013", "\u2212"):
        text = text.replace(dash, "-")
    return text


def section(text, name, level=3):
    """The text under a heading: level 0 for .SH, 3 for .SS."""
    lines = text.splitlines()
    for k, ln in enumerate(lines):
        if ln == " " * level + name:
            end = k + 1
            while end < len(lines):
                nxt = lines[end]
                if nxt.strip() and len(nxt) - len(nxt.lstrip()) <= level:
                    break
                end += 1
            return "\n".join(lines[k:end])
    raise AssertionError(f"no section '{name}' in the page")


def help_text(argv):
    res = run(argv, timeout=30)
    assert res.rc == 0, f"{argv}: {res}"
    assert res.out.strip(), f"{argv} printed no help"
    return res.out


def options(help_out):
    """Every -x and --long that a --help output names."""
    return set(SHORT.findall(help_out)) | set(LONG.findall(help_out))


def mount_options(help_out):
    """The -o options of daxfs --help: the block after '-o OPTIONS'."""
    found = set()
    lines = help_out.splitlines()
    start = next(k for k, ln in enumerate(lines)
                 if ln.lstrip().startswith("-o OPTIONS"))
    for ln in lines[start + 1:]:
        if SHORT.match(ln.strip()) or not ln.strip():
            break                       # the next option, or the end
        left = re.split(r"\s{2,}", ln.strip())[0]
        words = [w.strip() for w in left.split(",") if w.strip()]
        if words and all(MOUNT_OPT.match(w) for w in words):
            found.update(w.split("=")[0] + ("=" if "=" in w else "")
                         for w in words)
    return found


def mentions(text, opt):
    if opt.endswith("=") or opt.endswith("*"):
        pat = r"(?<![\w\-])" + re.escape(opt)
    else:
        pat = r"(?<![\w\-])" + re.escape(opt) + r"(?![\w\-])"
    return re.search(pat, text) is not None


def missing(text, opts):
    return sorted(o for o in opts if not mentions(text, o))


def exit_statuses(help_out):
    m = EXIT_STATUS.search(help_out)
    return set(re.findall(r"\b\d+\b", m.group(1))) if m else set()


# --- options ---------------------------------------------------------------

def test_daxfs_options_documented():
    out = help_text([binary("daxfs"), "--help"])
    text = render("daxfs.8")
    opts = options(out)
    assert {"-f", "-o", "--help", "--version"} <= opts, opts
    assert not missing(text, opts), \
        f"daxfs.8 lacks options that daxfs --help names: {missing(text, opts)}"
    mopts = mount_options(out)
    assert {"unbind_timeout=", "ro", "allow_other", "x-*"} <= mopts, mopts
    body = section(text, "MOUNT OPTIONS", 0)
    assert not missing(body, mopts), \
        f"daxfs.8 MOUNT OPTIONS lacks: {missing(body, mopts)}"


def test_daxfsctl_commands_documented():
    out = help_text([binary("daxfsctl"), "--help"])
    text = render("daxfsctl.8")
    listed = re.findall(r"^  ([a-z]+) ", out, re.M)
    assert sorted(listed) == sorted(COMMANDS), listed
    for cmd in listed:
        section(text, cmd)              # each command has its section
    opts = options(out)
    assert not missing(text, opts), \
        f"daxfsctl.8 lacks options that daxfsctl --help names: " \
        f"{missing(text, opts)}"
    for opt in ("-h", "--help", "-V", "--version"):
        assert mentions(section(text, "GLOBAL OPTIONS", 0), opt), opt


@pytest.mark.parametrize("cmd", COMMANDS)
def test_daxfsctl_command_options_documented(cmd):
    out = help_text([binary("daxfsctl"), cmd, "--help"])
    body = section(render("daxfsctl.8"), cmd)
    opts = options(out)
    assert "--help" in opts
    assert not missing(body, opts), \
        f"daxfsctl.8, section {cmd}, lacks options that 'daxfsctl {cmd} " \
        f"--help' names: {missing(body, opts)}"
    statuses = exit_statuses(out)
    for st in statuses:
        assert re.search(rf"(?<![\w.]){st}(?![\w.])", body), \
            f"daxfsctl.8, section {cmd}, lacks exit status {st}"
    if cmd == "fsck":
        assert statuses == {"0", "1", "4", "8", "16"}, statuses
    if cmd == "unbind":
        assert statuses == {"0", "1", "3"}, statuses


def test_mkfs_daxfs_options_documented(tmp_path):
    link = tmp_path / "mkfs.daxfs"
    os.symlink(binary("daxfsctl"), link)
    out = help_text([str(link), "--help"])
    text = render("mkfs.daxfs.8")
    opts = options(out)
    assert {"--size", "--label", "--inodes", "--force"} <= opts, opts
    assert not missing(text, opts), \
        f"mkfs.daxfs.8 lacks options that mkfs.daxfs --help names: " \
        f"{missing(text, opts)}"
    exit_sec = section(text, "EXIT STATUS", 0)
    for st in ("0", "1", "2"):
        assert re.search(rf"^\s+{st}\b", exit_sec, re.M), st


def test_unbind_effects_documented():
    """What applications see during and after an unbind."""
    for page in ("daxfs.8", "daxfsctl.8"):
        text = render(page)
        for word in ("ENXIO", "EIO", "SIGBUS", "released", "revoking",
                     "draining"):
            assert word in text, f"{page} never mentions {word}"
    fstab = section(render("daxfs.8"), "fstab")
    assert "fuse.daxfs" in fstab and "nofail" in fstab
    assert "x-systemd.device-timeout=" in fstab


# --- rendering ---------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_groff_renders_without_warnings(page):
    need_groff()
    res = run(["groff", "-man", "-Tutf8", "-ww", "-z",
               os.path.join(MAN, page)], timeout=60)
    assert res.rc == 0 and not res.err.strip(), f"{page}: {res.err}"


@pytest.mark.parametrize("page", PAGES)
def test_man_renders_without_warnings(page):
    """The way lintian checks a page: man --warnings."""
    if not shutil.which("man"):
        pytest.skip("man is not installed (Debian: man-db)")
    need_groff()
    env = dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ="", MANWIDTH="80")
    res = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z",
               os.path.join(MAN, page)], timeout=60, env=env)
    assert res.rc == 0 and not res.err.strip(), f"{page}: {res.err}"


def test_cmake_installs_man_pages(tmp_path):
    if not os.path.exists(os.path.join(BUILD, "cmake_install.cmake")):
        pytest.skip(f"{BUILD} is not a CMake build directory")
    res = run(["cmake", "--install", BUILD, "--prefix", str(tmp_path)],
              timeout=120)
    assert res.rc == 0, res
    man8 = tmp_path / "share" / "man" / "man8"
    for page in PAGES:
        assert (man8 / page).is_file(), f"{page} not installed in {man8}"
        with open(man8 / page) as a, open(os.path.join(MAN, page)) as b:
            assert a.read() == b.read()
