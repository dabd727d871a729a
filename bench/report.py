#!/usr/bin/env python3
"""Summarises a bench_softmax JSON file (--benchmark_out) as a Markdown table.

For every kernel benchmark it shows its throughput (GB/s of bytes read + written), nanoseconds
per element, and its ratio to the memcpy baseline that moves the same bytes: the memcpy/...
benchmark with the same "bytes" counter, registered just before it (bench_softmax.cpp). A ratio
of 1.0 means the kernel runs as fast as copying its input to its output. When libtorch peers
(torch_softmax/..., torch_log_softmax/...) are present, a last column gives logitkit's speed-up
over them on the same shape.

With --benchmark_repetitions the median of the repetitions is used and the spread is shown as
the coefficient of variation (stddev / mean) of the GB/s; without repetitions, the single run.

Usage: python3 report.py RESULTS.json      (standard library only)
"""

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


def fmt(v, digits):
    return "-" if v is None else "%.*f" % (digits, v)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    context, rows = load(argv[1])
    if not rows:
        sys.exit("report.py: no benchmark results in %s" % argv[1])
    baselines = [r for r in rows if r["name"].startswith("memcpy/")]
    kernels = [r for r in rows if not r["name"].startswith("memcpy/")]
    torch = {r["name"][len("torch_"):]: r for r in kernels if r["name"].startswith("torch_")}

    info = []
    if context.get("num_cpus"):
        info.append("%s CPUs @ %s MHz" % (context["num_cpus"], context.get("mhz_per_cpu", "?")))
    for key, label in (("logitkit_simd_arch", "logitkit SIMD"), ("libtorch_version", "libtorch")):
        if key in context:
            info.append("%s: %s" % (label, context[key]))
    reps = rows[0]["repetitions"]
    stat = rows[0]["statistic"]
    info.append("%s of %d repetition%s" % (stat, reps, "" if reps == 1 else "s")
                if stat != "single run" else "single run")
    if context.get("library_build_type") == "debug":
        info.append("the Google Benchmark library itself is a debug build")
    print("bench_softmax: " + "; ".join(info) + ".")
    print()

    header = ["benchmark", "GB/s", "cv", "ns/elem", "memcpy baseline", "memcpy GB/s",
              "ratio to memcpy"]
    align = ["---", "--:", "--:", "--:", "---", "--:", "--:"]
    if torch:
        header.append("speed-up vs libtorch")
        align.append("--:")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(align) + "|")
    for r in kernels:
        b = pick_baseline(r, baselines)
        cells = [
            "`%s`" % r["name"],
            fmt(r["gbps"], 2),
            "-" if r["cv"] is None else "%.1f%%" % (100 * r["cv"]),
            fmt(r["ns_per_elem"], 3),
            "-" if b is None else "`%s`" % b["name"],
            "-" if b is None else fmt(b["gbps"], 2),
            "-" if b is None else fmt(r["gbps"] / b["gbps"], 2),
        ]
        if torch:
            peer = torch.get(r["name"])
            cells.append("-" if peer is None else "%.2fx" % (r["gbps"] / peer["gbps"]))
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv)
