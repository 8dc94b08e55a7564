"""report.py -- turn the figures of one bench/run into Markdown and a chart.

Every figure is the median over the runs, with the spread (min-max) in
parentheses.  A ratio is computed per run from the figures of that run
(the targets ran back to back), then its median and spread are taken.
Ratios are speed ratios: above 1 means daxfs did better, for times too.
They compare daxfs as mounted by default (FUSE over io_uring when the
kernel offers it); the "daxfs /dev/fuse" column is the same daemon told
to use /dev/fuse only, for kernels without io_uring.
"""
import statistics

TARGETS = ("tmpfs", "bindfs", "daxfs", "daxfs-devfuse")
UNITS = {"GBps": "GB/s", "iops": "IOPS", "ops": "ops/s", "secs": "s",
         "meta": "ops/s"}
META_LABELS = {"create": "create (open O_CREAT + close)",
               "stat": "stat (caches dropped first)",
               "readdir": "readdir (entries/s)", "unlink": "unlink"}
RSS_LIMIT_MIB = 64

# the targets from the issue: key -> (reference target, factor); met when
# the median ratio daxfs/reference is at least factor
TARGET_OF = {
    "seqread_cold_psync": ("tmpfs", 0.6),
    "seqread_cold_io_uring": ("tmpfs", 0.6),
    "seqread_warm_psync": ("tmpfs", 0.9),
    "seqread_warm_io_uring": ("tmpfs", 0.9),
    "randread_warm_1j": ("tmpfs", 0.9),
    "mmap_seq_warm": ("tmpfs", 0.9),
    "mmap_randread": ("tmpfs", 0.9),
    "seqwrite_cold_psync": ("tmpfs", 0.5),
    "seqwrite_cold_io_uring": ("tmpfs", 0.5),
    "seqwrite_warm_psync": ("tmpfs", 0.5),
    "seqwrite_warm_io_uring": ("tmpfs", 0.5),
    "randread_cold_1j": ("bindfs", 1.5),
    "randread_cold_2j": ("bindfs", 1.5),
    "meta_create": ("bindfs", 1.5),
    "meta_stat": ("bindfs", 1.5),
    "meta_readdir": ("bindfs", 1.5),
    "meta_unlink": ("bindfs", 1.5),
}


def rows(wl):
    """(key, label, unit) for each table row; metadata gives four."""
    out = []
    for key, label, unit, _fn in wl:
        if unit == "meta":
            for ph, text in META_LABELS.items():
                out.append((f"meta_{ph}", f"{text}, N files", "meta"))
        else:
            out.append((key, label, unit))
    return out


def num(v, unit):
    if v is None:
        return "—"
    if unit == "GBps":
        return f"{v / 1e9:.2f}"
    if unit == "secs":
        return f"{v:.2f}"
    if v >= 1e6:
        return f"{v / 1e6:.2f}M"
    if v >= 1e4:
        return f"{v / 1e3:.0f}k"
    if v >= 1e3:
        return f"{v / 1e3:.1f}k"
    return f"{v:.0f}"


def summary(vals):
    """(median, min, max) of the values that were measured, or None."""
    v = [x for x in vals if x is not None]
    if not v:
        return None
    return statistics.median(v), min(v), max(v)


def cell(s, fmt):
    if s is None:
        return "failed"
    med, lo, hi = s
    if lo == hi:
        return fmt(med)
    return f"{fmt(med)} ({fmt(lo)}–{fmt(hi)})"


def ratios(res, key, ref, unit):
    """Per-run daxfs/ref speed ratios."""
    d = res.get(key, {})
    out = []
    for a, b in zip(d.get("daxfs", []), d.get(ref, [])):
        if a and b:
            out.append(b / a if unit == "secs" else a / b)
    return out


def ratio_fmt(x):
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def markdown(data, wl, png):
    info, res = data["info"], data["results"]
    m = info["machine"]
    n = info["sizes"]
    L = []
    dirty = " + uncommitted changes in the work tree" if info["dirty"] \
        else ""
    L.append(f"# daxfs benchmark, {info['started'].replace('T', ' ')}")
    L.append("")
    subj = info["subject"]
    if len(subj) > 72:
        subj = subj[:70].rstrip() + "…"
    L.append(f"- **daxfs**: commit `{info['commit']}`{dirty} "
             f"({subj}), Release build")
    L.append(f"- **machine**: {m['nproc']} CPUs ({m.get('cpu', '?')}), "
             f"{m.get('mem_gib', 0):.1f} GiB memory, kernel {m['kernel']}; "
             f"{m['fio']}, bindfs {m['bindfs'].split()[-1]}")
    lb, la = info["load_before"], info["load_after"]
    rl = ", ".join(f"{x[0]:.2f}" for x in info["run_loads"])
    L.append(f"- **load average** (1/5/15 min): before "
             f"{lb[0]:.2f}/{lb[1]:.2f}/{lb[2]:.2f}, after "
             f"{la[0]:.2f}/{la[1]:.2f}/{la[2]:.2f}; at the start of each "
             f"run: {rl}")
    peak = max([lb[0], la[0]] + [x[0] for x in info["run_loads"]])
    if peak > 1.5:
        L.append(f"- **the machine was busy**: a 1-minute load average up "
                 f"to {peak:.1f} on {m['nproc']} CPUs means other work ran "
                 f"beside the benchmark; read the spreads before the "
                 f"medians")
    mode = "quick (CI smoke) mode, " if info["quick"] else ""
    L.append(f"- **runs**: {mode}{info['runs']}, targets interleaved in "
             f"each run; figures are medians with (min–max) over runs; "
             f"{info['secs'] / 60:.1f} min in all")
    tr = info.get("transport", "?")
    L.append(f"- **daxfs transport**: {tr} for the daxfs column (its "
             f"default, auto); /dev/fuse for the daxfs /dev/fuse column")
    L.append(f"- **sizes**: sequential and random files "
             f"{n['seq_size'] >> 20} MiB, timed jobs {n['runtime']:g} s, "
             f"metadata {n['meta_files']} files, daxfs region "
             f"{n['region']}")
    L.append("")
    L.append("Ratios are speed ratios (daxfs ÷ peer for rates, peer ÷ daxfs "
             "for times): above 1 daxfs did better. tmpfs has no cold "
             "cache; its \"cold\" rows are the same measurement as warm.")
    L.append("")
    L.append("| workload | unit | tmpfs | bindfs | daxfs | daxfs /dev/fuse "
             "| daxfs/tmpfs | daxfs/bindfs | target | met |")
    L.append("|---|---|--:|--:|--:|--:|--:|--:|---|:-:|")
    for key, label, unit in rows(wl):
        label = label.replace("N files", f"{n['meta_files']} files")
        d = res.get(key, {})
        cells = [cell(summary(d.get(t, [])), lambda v, u=unit: num(v, u))
                 for t in TARGETS]
        rt = ratios(res, key, "tmpfs", unit)
        rb = ratios(res, key, "bindfs", unit)
        st, sb = summary(rt), summary(rb)
        ct = cell(st, ratio_fmt) if rt else "—"
        cb = cell(sb, ratio_fmt) if rb else "—"
        tgt, met = "", ""
        if key in TARGET_OF:
            ref, f = TARGET_OF[key]
            tgt = f"≥ {f}× {ref}"
            s = st if ref == "tmpfs" else sb
            met = "—" if s is None else ("✓" if s[0] >= f else "✗")
        if unit == "secs" and st:
            ct += f" ({1 / st[0]:.1f}× the time)"
        L.append(f"| {label} | {UNITS[unit]} | {' | '.join(cells)} | {ct} "
                 f"| {cb} | {tgt} | {met} |")
    L.append("")
    L.append(f"![daxfs ratios]({png})")
    L.append("")

    rss = data["rss"]
    L.append("## daxfs daemon memory")
    L.append("")
    L.append("From /proc/PID/status of the daxfs process. The region is a "
             "file on /dev/shm mapped MAP_SHARED, so every region page the "
             "daemon has touched counts in VmRSS as RssShmem; the daemon's "
             "own memory is VmRSS − RssShmem (RssAnon + RssFile).")
    L.append("")
    L.append("| when | VmRSS | own (RssAnon + RssFile) | region pages "
             "(RssShmem) | VmHWM | threads |")
    L.append("|---|--:|--:|--:|--:|--:|")
    for k, text in (("after_mount", "right after mounting"),
                    ("after_runs", "after all the runs above"),
                    ("with_files", f"after creating {n['rss_files']} files"),
                    ("after_stat_all", "after a stat of each of them")):
        if k in rss:
            s = rss[k]
            L.append(f"| {text} | {s['VmRSS']:.1f} MiB | "
                     f"{s['RssAnon'] + s['RssFile']:.1f} MiB | "
                     f"{s['RssShmem']:.1f} MiB | {s['VmHWM']:.1f} MiB | "
                     f"{s.get('Threads', '?')} |")
    if "with_files" in rss:
        last = rss.get("after_stat_all", rss["with_files"])
        own = last["RssAnon"] + last["RssFile"]
        note = "" if n["rss_files"] >= 100000 else \
            f" (quick mode: {n['rss_files']} files, not 100,000)"
        L.append("")
        L.append(f"Target: daemon RSS under {RSS_LIMIT_MIB} MiB with 100,000 "
                 f"files{note}: own memory **{own:.1f} MiB "
                 f"{'✓' if own < RSS_LIMIT_MIB else '✗'}**; VmRSS including "
                 f"the region pages {last['VmRSS']:.1f} MiB "
                 f"{'✓' if last['VmRSS'] < RSS_LIMIT_MIB else '✗'}. "
                 f"Creating the files took {rss['create_secs']:.1f} s "
                 f"({rss['create_rate']:.0f}/s).")
        if "after_runs" in rss:
            a = rss["after_runs"]
            grow = own - a["RssAnon"] - a["RssFile"]
            L.append(f"The daemon's own memory grew by {grow:.1f} MiB with "
                     f"the files: {grow * 1024 * 1024 / n['rss_files']:.0f} "
                     f"bytes per file.")
    L.append("")

    L.append("## daxfs unbind latency")
    L.append("")
    L.append("N files each mapped MAP_SHARED with one dirtied page, and N "
             "threads issuing 1 MiB O_DIRECT reads, when `daxfsctl unbind "
             "--json` starts; a fresh mount for each measurement. ms_total "
             "and its phases are the daemon's report; wall is the "
             "`daxfsctl unbind` command as timed by the caller.")
    L.append("")
    L.append("| N | ms_total | wall ms | revoke ms | drain ms | release ms | "
             "inodes revoked | written back | requests drained / refused | "
             "timed out |")
    L.append("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for nn, reps in data["unbind"].items():
        if not reps:
            L.append(f"| {nn} | failed | | | | | | | | |")
            continue

        def col(k, fmt=lambda v: f"{v:.0f}"):
            return cell(summary([r[k] for r in reps]), fmt)
        wb = summary([r["bytes_written_back"] for r in reps])
        to = sum(1 for r in reps if r["timed_out"])
        L.append(f"| {nn} | {col('ms_total')} | {col('wall_ms')} | "
                 f"{col('ms_revoke')} | {col('ms_drain')} | "
                 f"{col('ms_release')} | {col('inodes_revoked')} | "
                 f"{wb[0] / 1024:.0f} KiB | {col('requests_drained')} / "
                 f"{col('requests_refused')} | {to} of {len(reps)} |")
    L.append("")
    if info["errors"]:
        L.append("## Measurements that failed")
        L.append("")
        for e in info["errors"]:
            L.append(f"- {e}")
        L.append("")
    L.append("How each workload is run: `bench/README.md`.")
    L.append("")
    return "\n".join(L)


def chart(data, wl, path):
    """Horizontal bars of the two ratios per workload, log scale, with the
    spread as error bars and the target as a marker."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = data["results"]
    rs = rows(wl)
    labels, bars = [], {"tmpfs": [], "bindfs": []}
    for key, label, unit in rs:
        labels.append(label.replace(", N files", ""))
        for ref in bars:
            s = summary(ratios(res, key, ref, unit))
            bars[ref].append(s)
    fig, ax = plt.subplots(figsize=(10, 0.36 * len(rs) + 1.6))
    h = 0.38
    colors = {"tmpfs": "#4477aa", "bindfs": "#ee7733"}
    # the axis follows the medians; a wild run's spread is cut at the edge
    meds = [s[0] for b in bars.values() for s in b if s and s[0] > 0]
    meds += [f for f in (TARGET_OF[k][1] for k, _l, _u in rs
                         if k in TARGET_OF)]
    lo, hi = min(meds + [0.5]) / 3, max(meds + [2.0]) * 3
    for k, ref in enumerate(bars):
        ys = [i + (k - 0.5) * h for i in range(len(rs))]
        med = [s[0] if s else 0 for s in bars[ref]]
        err = [[s[0] - max(s[1], lo) if s else 0 for s in bars[ref]],
               [min(s[2], hi) - s[0] if s else 0 for s in bars[ref]]]
        ax.barh(ys, med, height=h, color=colors[ref], xerr=err,
                error_kw={"elinewidth": 0.8, "capsize": 2},
                label=f"daxfs / {ref}")
    for i, (key, _l, _u) in enumerate(rs):
        if key in TARGET_OF:
            ref, f = TARGET_OF[key]
            k = 0 if ref == "tmpfs" else 1
            ax.plot([f], [i + (k - 0.5) * h], marker="|", color="black",
                    markersize=12, markeredgewidth=2)
    ax.axvline(1.0, color="grey", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_yticks(range(len(rs)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("speed ratio (log scale; > 1: daxfs better; "
                  "black tick: target)")
    info = data["info"]
    ax.set_title(f"daxfs {info['commit']} vs tmpfs and bindfs, "
                 f"median of {info['runs']} run(s), "
                 f"{info['started'][:10]}", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", linewidth=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv):
    """report.py RESULT.json -- write RESULT.md and RESULT.png again from
    the figures of an earlier run (after changing this file)."""
    import json
    import os
    import sys
    import types

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import driver

    if len(argv) != 2 or not argv[1].endswith(".json"):
        print("usage: report.py RESULT.json", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        data = json.load(f)
    base = argv[1][:-5]
    wl = driver.workloads(types.SimpleNamespace(s=data["info"]["sizes"]))
    with open(base + ".md", "w") as f:
        f.write(markdown(data, wl, os.path.basename(base) + ".png"))
    chart(data, wl, base + ".png")
    print(f"wrote {base}.md and {base}.png")
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv))
