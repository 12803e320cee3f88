#!/usr/bin/env python3
"""Turns the raw outputs of tools/bench.sh (bench/results/raw/) into the comparison: one row per
claim made about green threads, one column per way of running it (weft's stackful green threads
and its stackless tasks with 1 worker and with all cores, OS threads, oneTBB, Go with GOMAXPROCS=1
and all cores, Tokio with 1 worker and all cores). Each cell is the median of the
runs with min-max; each row says which is best and by how much. Writes latest.md, latest.csv and
the gnuplot data for tools/bench_charts.py.

    bench_report.py <results dir>              the whole comparison
    bench_report.py --tail-only <results dir>  the tail-latency table of tools/tail_bench.sh
"""
import csv
import json
import pathlib
import re
import statistics
import sys
from collections import defaultdict

from bench_tables import detail_tables, tail_table

COLUMNS = [
    ("weft1", "weft, 1 worker"),
    ("weftN", "weft, all cores"),
    ("task1", "weft tasks, 1 worker"),
    ("taskN", "weft tasks, all cores"),
    ("threads", "OS threads"),
    ("tbb", "oneTBB"),
    ("go1", "Go, 1 P"),
    ("goN", "Go, all cores"),
    ("tokio1", "Tokio, 1 worker"),
    ("tokioN", "Tokio, all cores"),
]
# weft's own columns: the verdict sets the best of them against the best peer.
WEFT_COLUMNS = ("weft1", "weftN", "task1", "taskN")

# id, title, unit, higher is better, source shape, label on the summary chart
ROWS = [
    ("context_switch", "Context switch (two tasks yielding)", "ns", False, "yield", "switch"),
    ("creation", "Create + finish a task", "ns", False, "spawn_complete", "create"),
    ("wakeup", "Wake a parked task (mutex + condvar round trip)", "ns", False, "wakeup", "wake-up"),
    ("memory", "Memory per parked task (RSS + page tables)", "KiB", False, "park_memory", "memory/task"),
    ("million", "1M tasks parked at once: spawn, park, release", "s", False, "park_million", "1M parked"),
    ("pingpong", "Channel ping-pong round trip", "ns", False, "pingpong", "ping-pong"),
    ("mixed_pingpong", "The same, a task and a stackful green thread", "ns", False,
     "green_pingpong", "task-green ping-pong"),
    ("mpmc", "MPMC 4×4, capacity 1024, per message", "ns", False, "mpmc", "MPMC"),
    ("select", "select over 4 channels, per message", "ns", False, "select4", "select"),
    ("pipeline", "3-stage pipeline, per item", "ns", False, "pipeline", "pipeline"),
    ("fib", "Fork-join fib(35), a task per call > 20", "ms", False, "fib", "fib(35)"),
    ("sieve", "Go's prime sieve: 1,000 primes, a task per filter, per prime", "ns", False, "sieve",
     "prime sieve"),
    ("chain", "Go's daisy chain: 10,000 tasks pass one value, per task", "ns", False, "chain",
     "chain"),
    ("cancel", "Cancel 100K parked tasks and join them, per task", "ns", False, "cancel_parked",
     "cancel"),
    ("cancel_nothrow", "The same, parked in the no-throw recv(ec)", "ns", False,
     "cancel_parked_nothrow", "cancel, no throw"),
    ("cancel_select", "The same, parked in select on a channel and cancellation", "ns", False,
     "cancel_parked_select", "cancel select"),
    ("wake_all", "Wake 100K parked tasks (close) and join them, per task", "ns", False,
     "wake_parked", "wake all"),
    ("cancel_request", "The cancel request alone (100K parked), per task", "ns", False,
     "cancel_parked_request", "cancel call"),
    ("wake_request", "The close alone (100K parked), per task", "ns", False,
     "wake_parked_request", "close call"),
    ("throw_floor", "Throw and catch weft::cancelled, 5 frames (C++'s own cost)", "ns", False,
     "throw_cancelled", "throw+catch"),
    ("udp_echo", "UDP echo round trip, 64-byte datagrams, loopback", "ns", False, "udp_echo",
     "UDP echo"),
    ("unix_pingpong", "Unix-socket ping-pong round trip, 64-byte messages", "ns", False,
     "unix_pingpong", "Unix ping-pong"),
    ("http_100", "HTTP hello, 100 connections, server on 1 core", "req/s", True, "http_100", "HTTP 100c"),
    ("http_1000", "HTTP hello, 1000 connections, server on 1 core", "req/s", True, "http_1000",
     "HTTP 1000c"),
    ("http_pipe_256", "HTTP plaintext, 16 pipelined, 256 connections, server on 1 core", "req/s",
     True, "http_pipe_256", "pipelined 256c"),
    ("http_pipe_1024", "HTTP plaintext, 16 pipelined, 1024 connections, server on 1 core",
     "req/s", True, "http_pipe_1024", "pipelined 1024c"),
    ("http_pipe_cpu_256", "Server CPU per pipelined request, 256 connections", "µs", False,
     "http_pipe_cpu_256", "CPU/req pipelined"),
    ("tail_p99", "p99 latency under the adversary, 10K req/s", "ms", False, "tail_p99", "p99 hostile"),
    ("tail_one_p99", "p99 under the adversary, server on 1 core, generator on the other", "ms",
     False, "tail_one_p99", "p99 hostile, 1 core"),
]


def parse_kv(fields):
    return dict(f.split("=", 1) for f in fields if "=" in f)


def collect(raw):
    """{(shape, column): [value, ...]} from every raw file present."""
    values = defaultdict(list)
    for name in ("weft_micro.json", "weft_channels.json"):
        path = raw / name
        if not path.exists():
            continue
        for b in json.loads(path.read_text())["benchmarks"]:
            if b.get("run_type") != "iteration":
                continue
            shape, arg = b["run_name"].split("/")[:2]
            workers = int(arg.split(":")[1])
            kind = "weft"
            if shape.startswith("task_"):  # the same shape with stackless tasks
                shape, kind = shape[len("task_"):], "task"
            scale = 1e-6 if shape == "fib" else 1.0
            column = kind + ("1" if workers == 1 else "N")
            values[(shape, column)].append(b["ns_per_op"] * scale)
            if "request_ns_per_op" in b:
                values[(shape + "_request", column)].append(b["request_ns_per_op"])
    for line in read_lines(raw / "go_micro.txt"):
        m = re.match(r"(\w+) workers=(\d+) ns_per_op=([\d.]+)(?: request_ns_per_op=([\d.]+))?",
                     line)
        if m:
            scale = 1e-6 if m[1] == "fib" else 1.0
            column = "go1" if m[2] == "1" else "goN"
            values[(m[1], column)].append(float(m[3]) * scale)
            if m[1] == "cancel_parked":  # Go's crowd waits in select on ctx.Done(): that shape
                values[("cancel_parked_select", column)].append(float(m[3]))
            if m[4]:
                values[(m[1] + "_request", column)].append(float(m[4]))
    for line in read_lines(raw / "tokio_micro.txt"):
        m = re.match(r"(\w+) workers=(\d+) ns_per_op=([\d.]+)", line)
        if m:
            scale = 1e-6 if m[1] == "fib" else 1.0
            values[(m[1], "tokio1" if m[2] == "1" else "tokioN")].append(float(m[3]) * scale)
    for line in read_lines(raw / "io_pingpong.txt"):
        m = re.match(r"(weft|go) (\w+) workers=(\d+) ns_per_op=([\d.]+)", line)
        if m:
            column = m[1] + ("1" if m[3] == "1" else "N")
            values[(m[2], column)].append(float(m[4]))
    for line in read_lines(raw / "threads.txt"):
        m = re.match(r"(\w+) peer=(\w+) ns_per_op=([\d.]+)", line)
        if m:
            scale = 1e-6 if m[1] == "fib" else 1.0
            values[(m[1], m[2])].append(float(m[3]) * scale)
    for line in read_lines(raw / "park.txt"):
        parts = line.split()
        f = parse_kv(parts[2:])
        runtime = parts[1]
        if runtime == "weft" and f.get("kind") == "tasks":
            runtime = "task"
        column = "threads" if runtime == "threads" else runtime + ("1" if f.get("workers") == "1" else "N")
        count = int(f["count"])
        if count == 1_000_000:
            values[("park_million", column)].append(float(f["spawn_park_s"]) + float(f["release_s"]))
        elif count < 1_000_000:
            values[("park_memory", column)].append(float(f["rss_kib_per"]) + float(f["pte_kib_per"]))
        # (10M: the detail table only)
    for line in read_lines(raw / "http.txt"):
        parts = line.split()
        f = parse_kv(parts[2:])
        column = {"weft": "weft1", "go": "go1", "threads": "threads"}.get(parts[1])
        if column:  # the epoll floor has its own rows in the detail table
            values[(f"http_{f['conns']}", column)].append(float(f["rps"]))
    # Pipelined: pipegen's runs (the generator that leaves the server the busier core).
    for line in read_lines(raw / "http_pipelined.txt"):
        parts = line.split()
        f = parse_kv(parts[2:])
        if f.get("gen") != "pipegen":
            continue
        column = {"weft": "weft1", "go": "go1", "tokio": "tokio1"}.get(parts[1])
        if not column:
            continue
        values[(f"http_pipe_{f['conns']}", column)].append(float(f["rps"]))
        values[(f"http_pipe_cpu_{f['conns']}", column)].append(float(f["cpu_us_per_req"]))
    for line in read_lines(raw / "tail.txt"):
        parts = line.split()
        f = parse_kv(parts[2:])
        if f.get("adversary") != "1" or int(f.get("ok", 0)) == 0 or f.get("run") == "ready":
            continue
        if f.get("cores", "all") == "one":
            column = {"weft": "weft1", "go": "go1", "tokio": "tokio1"}.get(parts[1])
            if column:
                values[("tail_one_p99", column)].append(float(f["p99_ms"]))
            continue
        column = {"weft": "weftN", "go": "goN", "tokio": "tokioN"}.get(parts[1])
        if column:
            values[("tail_p99", column)].append(float(f["p99_ms"]))
    return values


def read_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def fmt(v, unit):
    if unit == "req/s":
        return f"{v / 1e6:.2f}M" if v >= 1e6 else f"{v / 1000:,.1f}K"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(vals, unit):
    if not vals:
        return "—"
    med = statistics.median(vals)
    if len(vals) == 1:
        return fmt(med, unit)
    return f"{fmt(med, unit)} <sub>{fmt(min(vals), unit)}–{fmt(max(vals), unit)}</sub>"


def verdict(meds, higher):
    """Best weft column against the best other column."""
    weft = {c: v for c, v in meds.items() if c in WEFT_COLUMNS}
    other = {c: v for c, v in meds.items() if c not in WEFT_COLUMNS}
    if not weft or not other:
        return ""
    pick = max if higher else min
    wc = pick(weft, key=weft.get)
    oc = pick(other, key=other.get)
    label = dict(COLUMNS)
    w, o = weft[wc], other[oc]
    if w == o:
        return f"{label[wc]} ties {label[oc]}"
    weft_wins = (w > o) if higher else (w < o)
    ratio = max(w, o) / min(w, o)
    r = f"{ratio:.2f}" if ratio < 1.1 else f"{ratio:.1f}"
    if weft_wins:
        return f"**{label[wc]}**, {r}× better than {label[oc]}"
    return f"{label[oc]}, {r}× better than {label[wc]}"


def main():
    if sys.argv[1] == "--tail-only":
        tail_table(pathlib.Path(sys.argv[2]) / "tail.txt")
        return
    results = pathlib.Path(sys.argv[1])
    raw = results / "raw"
    values = collect(raw)
    machine = (raw / "machine.txt").read_text().strip() if (raw / "machine.txt").exists() else ""
    runs = max((len(v) for v in values.values()), default=0)
    lines = [
        "## weft against OS threads, oneTBB, Go and Tokio",
        "",
        f"{machine}. Each cell: median of up to {runs} runs, min–max below it; lower is better "
        "except req/s. Peers ran in turn with weft in the same call of tools/bench.sh.",
        "",
        "| | unit | " + " | ".join(label for _, label in COLUMNS) + " | best |",
        "| --- | --- | " + " | ".join("---" for _ in COLUMNS) + " | --- |",
    ]
    table_rows = []
    for row_id, title, unit, higher, shape, _ in ROWS:
        meds = {c: statistics.median(values[(shape, c)]) for c, _ in COLUMNS if values.get((shape, c))}
        if not meds:
            continue
        cells = [cell(values.get((shape, c)), unit) for c, _ in COLUMNS]
        lines.append(f"| {title} | {unit} | " + " | ".join(cells) + f" | {verdict(meds, higher)} |")
        for c, _ in COLUMNS:
            vals = values.get((shape, c))
            if vals:
                table_rows.append([row_id, title, unit, "higher" if higher else "lower", c,
                                   statistics.median(vals), min(vals), max(vals), len(vals)])
    lines += ["", "— : no such peer for that shape (a TBB task cannot park; OS threads have no "
              "select; the HTTP server and its generator share the 2 cores, so it runs on 1 core "
              "only; the adversary runs with all cores; weft tasks and Tokio are measured on the "
              "task rows and the server rows)."]
    with open(results / "latest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["row", "title", "unit", "better", "column", "median", "min", "max", "runs"])
        w.writerows(table_rows)
    with open(results / "chart.dat", "w") as f:
        write_chart_data(f, table_rows)
    text = "\n".join(lines) + "\n"
    text += detail_tables(raw)
    (results / "latest.md").write_text(text)
    sys.stdout.write(text)


def write_chart_data(f, table_rows):
    """One line per row: title, then each column's median relative to weft's best (1 = weft's
    best; 4 = four times worse), '?' where the column has no figure."""
    by_row = defaultdict(dict)
    meta = {}
    for row_id, title, unit, better, column, med, *_ in table_rows:
        by_row[row_id][column] = med
        meta[row_id] = (title, better)
    f.write("# row " + " ".join(c for c, _ in COLUMNS) + "\n")
    for row_id, _, _, _, _, label in ROWS:
        meds = by_row.get(row_id)
        if not meds:
            continue
        weft = [v for c, v in meds.items() if c in WEFT_COLUMNS]
        if not weft:
            continue
        higher = meta[row_id][1] == "higher"
        best = max(weft) if higher else min(weft)
        rel = []
        for c, _ in COLUMNS:
            v = meds.get(c)
            rel.append("?" if v is None or v == 0 else f"{(best / v if higher else v / best):.4g}")
        f.write(f'"{label}" ' + " ".join(rel) + "\n")


if __name__ == "__main__":
    main()
