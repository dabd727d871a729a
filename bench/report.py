#!/usr/bin/env python3
"""Summarises a logitkit benchmark JSON file (--benchmark_out) as Markdown tables, and plots its sweep.

For every kernel benchmark it shows its throughput (GB/s of bytes read + written), nanoseconds
per element, and its ratio to the memcpy baseline that moves the same bytes: the memcpy/...
benchmark with the same "bytes" counter, registered just before it (bench_softmax.cpp). A ratio
of 1.0 means the kernel runs as fast as copying its input to its output. When peers are present
(torch_<kernel>/..., onednn_<kernel>/...: libtorch and oneDNN on the same shape in the same run),
the last columns give logitkit's speed-up over them (their time divided by logitkit's).

The sweep (sweep/softmax/<n>, sweep/memcpy/<n>, sweep/torch_softmax/<n>, ...: rows of n
elements) gets a table of nanoseconds per element against n, and with --plot a PNG of the same
(log-log; needs matplotlib: Debian python3-matplotlib).

With --benchmark_repetitions the median of the repetitions is used and the spread is shown as
the coefficient of variation (stddev / mean) of the GB/s; without repetitions, the single run.

Usage: python3 report.py RESULTS.json [--markdown OUT.md] [--plot OUT.png] [--title TEXT]
       (Markdown goes to stdout unless --markdown is given)
"""

import argparse
import json
import sys

REAL_TIME_SUFFIX = "/real_time"


def base_name(run_name):
    """'softmax/128x1000/real_time' -> 'softmax/128x1000'."""
    if run_name.endswith(REAL_TIME_SUFFIX):
        return run_name[: -len(REAL_TIME_SUFFIX)]
    return run_name


def load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    runs = {}  # name -> {"order": int, "median": {...}, "mean": {...}, "stddev": {...}}
    for entry in data.get("benchmarks", []):
        if entry.get("error_occurred"):
            sys.exit("report.py: benchmark %s failed: %s"
                     % (entry.get("name"), entry.get("error_message", "")))
        name = base_name(entry.get("run_name", entry["name"]))
        run = runs.setdefault(name, {"order": len(runs), "iterations": []})
        if entry.get("run_type") == "aggregate":
            run[entry["aggregate_name"]] = entry
        else:
            run["iterations"].append(entry)
    rows = []
    for name, run in sorted(runs.items(), key=lambda kv: kv[1]["order"]):
        central = run.get("median") or run.get("mean")
        if central is None:
            if not run["iterations"]:
                continue
            central = sorted(run["iterations"], key=lambda e: e["bytes_per_second"])[
                len(run["iterations"]) // 2]
        cv = None
        if "mean" in run and "stddev" in run and run["mean"]["bytes_per_second"] > 0:
            cv = run["stddev"]["bytes_per_second"] / run["mean"]["bytes_per_second"]
        rows.append({
            "name": name,
            "order": run["order"],
            "gbps": central["bytes_per_second"] / 1e9,
            "ns_per_elem": central.get("ns_per_elem"),
            "bytes": central.get("bytes"),
            "cv": cv,
            "repetitions": central.get("repetitions", 1),
            "statistic": central.get("aggregate_name", "single run"),
        })
    return data.get("context", {}), rows


def pick_baseline(row, baselines):
    """The memcpy row moving the same bytes, preferring the nearest one registered before it."""
    same = [b for b in baselines if b["bytes"] is not None and b["bytes"] == row["bytes"]]
    if not same:
        return None
    before = [b for b in same if b["order"] < row["order"]]
    if before:
        return max(before, key=lambda b: b["order"])
    return min(same, key=lambda b: b["order"])


PEERS = (("torch_", "libtorch"), ("onednn_", "oneDNN"))


def split_name(name):
    """'sweep/torch_softmax/1000' -> ('sweep/', 'torch_', 'softmax/1000')."""
    prefix = "sweep/" if name.startswith("sweep/") else ""
    rest = name[len(prefix):]
    for peer, _ in PEERS:
        if rest.startswith(peer):
            return prefix, peer, rest[len(peer):]
    return prefix, "", rest


def fmt(v, digits):
    return "-" if v is None else "%.*f" % (digits, v)


def speedup(r, peer):
    return "-" if peer is None else "%.2fx" % (r["gbps"] / peer["gbps"])


def describe(context, rows):
    info = []
    if context.get("num_cpus"):
        info.append("%s CPUs @ %s MHz" % (context["num_cpus"], context.get("mhz_per_cpu", "?")))
    for key, label in (("logitkit_simd_arch", "logitkit SIMD"), ("libtorch_version", "libtorch"),
                       ("libtorch_threads", "libtorch threads"),
                       ("libtorch_cpu_capability", "ATEN_CPU_CAPABILITY"), ("onednn_version", "oneDNN")):
        if key in context:
            info.append("%s: %s" % (label, context[key]))
    reps = rows[0]["repetitions"]
    stat = rows[0]["statistic"]
    info.append("%s of %d repetition%s" % (stat, reps, "" if reps == 1 else "s")
                if stat != "single run" else "single run")
    if context.get("library_build_type") == "debug":
        info.append("the Google Benchmark library itself is a debug build")
    name = context.get("executable", "bench_softmax").rsplit("/", 1)[-1]
    return name + ": " + "; ".join(info) + "."


def kernel_table(rows):
    baselines = [r for r in rows if r["name"].startswith("memcpy/")]
    ours, peers = [], {}
    for r in rows:
        prefix, peer, rest = split_name(r["name"])
        if prefix or r["name"].startswith("memcpy/"):
            continue
        if peer:
            peers[(peer, rest)] = r
        else:
            ours.append(r)
    present = [(p, label) for p, label in PEERS if any(k[0] == p for k in peers)]
    header = ["benchmark", "GB/s", "cv", "ns/elem", "memcpy GB/s", "ratio to memcpy"]
    align = ["---", "--:", "--:", "--:", "--:", "--:"]
    for _, label in present:
        header.append("speed-up vs " + label)
        align.append("--:")
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in ours:
        b = pick_baseline(r, baselines)
        cells = [
            "`%s`" % r["name"],
            fmt(r["gbps"], 2),
            "-" if r["cv"] is None else "%.1f%%" % (100 * r["cv"]),
            fmt(r["ns_per_elem"], 3),
            "-" if b is None else fmt(b["gbps"], 2),
            "-" if b is None else fmt(r["gbps"] / b["gbps"], 2),
        ]
        for p, _ in present:
            cells.append(speedup(r, peers.get((p, r["name"]))))
        out.append("| " + " | ".join(cells) + " |")
    return out


def thread_table(rows):
    """Each .../threads:N kernel against the same kernel on one thread, beside memcpy's own
    speed-up on the same bytes (its N-thread baseline against its one-thread baseline): where a
    kernel is bound by memory, memcpy's speed-up is the most its threads can give."""
    baselines = [r for r in rows if r["name"].startswith("memcpy/")]
    by_name = {r["name"]: r for r in rows}
    out = []
    for r in rows:
        name = r["name"]
        head, sep, threads = name.rpartition("/threads:")
        if not sep or name.startswith("memcpy/") or head not in by_name:
            continue
        one = by_name[head]
        b, b1 = pick_baseline(r, baselines), pick_baseline(one, baselines)
        both = b is not None and b1 is not None and "/threads:" in b["name"]
        memcpy_speedup = b["gbps"] / b1["gbps"] if both else None
        speed = r["gbps"] / one["gbps"]
        out.append("| `%s` | %s | %s | %s | %.2fx | %s | %s |" % (
            head, threads, fmt(one["ns_per_elem"], 3), fmt(r["ns_per_elem"], 3), speed,
            "-" if memcpy_speedup is None else "%.2fx" % memcpy_speedup,
            "-" if memcpy_speedup is None else "%.2f" % (speed / memcpy_speedup)))
    if not out:
        return []
    return ["| benchmark | threads | ns/elem, 1 thread | ns/elem, threads | speed-up | memcpy's speed-up "
            "| speed-up / memcpy's |", "|---|--:|--:|--:|--:|--:|--:|"] + out


def sweep_series(rows):
    """{'logitkit': {n: ns/elem}, 'libtorch': ..., 'oneDNN': ..., 'memcpy': ...}"""
    series = {}
    for r in rows:
        prefix, peer, rest = split_name(r["name"])
        if prefix != "sweep/" or r["ns_per_elem"] is None:
            continue
        kernel, _, n = rest.partition("/")
        if kernel == "memcpy":
            label = "memcpy of the same bytes"
        else:
            label = dict(PEERS).get(peer, "logitkit") + " " + kernel
        series.setdefault(label, {})[int(n)] = r["ns_per_elem"]
    return series


def sweep_table(series):
    if not series:
        return []
    labels = sorted(series, key=lambda l: (not l.startswith("logitkit"), l.startswith("memcpy"), l))
    lengths = sorted({n for s in series.values() for n in s})
    out = ["| row length | " + " | ".join(labels) + " |", "|--:|" + "--:|" * len(labels)]
    for n in lengths:
        out.append("| %d | " % n + " | ".join(fmt(series[l].get(n), 3) for l in labels) + " |")
    return out


def plot(series, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for label in sorted(series, key=lambda l: (not l.startswith("logitkit"), l)):
        pts = sorted(series[label].items())
        style = "--" if label.startswith("memcpy") else "-"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style, marker="o", markersize=3, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("row length n (softmax along rows of n float elements)")
    ax.set_ylabel("nanoseconds per element (lower is better)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results")
    parser.add_argument("--markdown", help="write the tables to this file instead of stdout")
    parser.add_argument("--plot", help="write the sweep's plot to this PNG file")
    parser.add_argument("--title", default="softmax, 1 thread, float")
    args = parser.parse_args(argv[1:])
    context, rows = load(args.results)
    if "logitkit_bench_build" in context:
        sys.exit("report.py: %s comes from a %s build (LOGITKIT_BENCH_SMOKE)" %
                 (args.results, context["logitkit_bench_build"]))
    if not rows:
        sys.exit("report.py: no benchmark results in %s" % args.results)
    lines = [describe(context, rows), ""]
    lines += kernel_table(rows)
    threads = thread_table(rows)
    if threads:
        lines += ["", "Threads: each kernel on the pool against itself on one thread, and memcpy's speed-up "
                  "on the same bytes (its parts on the same threads):", ""] + threads
    series = sweep_series(rows)
    if series:
        lines += ["", "Row-length sweep, nanoseconds per element:", ""] + sweep_table(series)
    text = "\n".join(lines) + "\n"
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    if args.plot:
        if not series:
            sys.exit("report.py: --plot needs sweep/... results")
        plot(series, args.plot, args.title)


if __name__ == "__main__":
    main(sys.argv)
