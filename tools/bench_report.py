#!/usr/bin/env python3
"""Prints weft's micro benchmark medians next to the Go peer's, with ratios (markdown table)."""
import json
import pathlib
import re
import statistics
import sys
from collections import defaultdict


def weft_runs(path):
    """{(shape, workers): [ns_per_op, ...]} from a google-benchmark JSON file."""
    runs = defaultdict(list)
    data = json.loads(path.read_text())
    for b in data["benchmarks"]:
        if b.get("run_type") != "iteration":
            continue
        parts = b["run_name"].split("/")
        workers = int(parts[1].split(":")[1]) if parts[1].startswith("workers:") else 0
        runs[(parts[0], workers)].append(b["ns_per_op"])
    return runs, data["context"]


def go_runs(path):
    runs = defaultdict(list)
    for line in path.read_text().splitlines():
        m = re.match(r"(\w+) workers=(\d+) ns_per_op=([\d.]+)", line)
        if m:
            runs[(m[1], int(m[2]))].append(float(m[3]))
    return runs


def fmt(ns):
    return f"{ns / 1e6:,.1f} ms" if ns >= 1e6 else f"{ns:,.1f} ns"


def spread(values):
    return f"{min(values) / statistics.median(values) * 100 - 100:+.0f}%/{max(values) / statistics.median(values) * 100 - 100:+.0f}%"


def main():
    if sys.argv[1] == "--tail-only":
        tail_table(pathlib.Path(sys.argv[2]) / "tail.txt")
        return
    results = pathlib.Path(sys.argv[1])
    weft, context = weft_runs(results / "weft_micro.json")
    channels, _ = weft_runs(results / "weft_channels.json")
    os_peers = {k: v for k, v in channels.items() if k[1] == 0}
    weft.update({k: v for k, v in channels.items() if k[1] != 0})
    libc, _ = weft_runs(results / "weft_micro_libc.json")
    go = go_runs(results / "go_micro.txt")
    print(f"\n## weft vs Go 1.19 — micro benchmarks ({context.get('num_cpus')} CPUs, "
          f"medians of {max(len(v) for v in weft.values())} runs, spread min/max)\n")
    print("| shape | workers | weft | spread | Go | spread | Go / weft |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    order = ["spawn_complete", "yield", "wakeup", "fib", "pingpong", "mpmc", "select4", "pipeline"]
    for key in sorted(weft, key=lambda k: (order.index(k[0]), k[1])):
        w = statistics.median(weft[key])
        row = f"| {key[0]} | {key[1]} | {fmt(w)} | {spread(weft[key])} |"
        if key in go:
            g = statistics.median(go[key])
            row += f" {fmt(g)} | {spread(go[key])} | {g / w:.1f}× |"
        else:
            row += " — | — | — |"
        print(row)
    print("\nmpmc (4 producers x 4 consumers, capacity 1024) on OS threads, ns per message:\n")
    print("| queue | ns | weft 2 workers / it |")
    print("| --- | --- | --- |")
    w2 = statistics.median(weft[("mpmc", 2)])
    for (name, _), v in sorted(os_peers.items()):
        print(f"| {name.removeprefix('os_mpmc_')} | {fmt(statistics.median(v))} | {w2 / statistics.median(v):.2f} |")
    print("\nspawn_complete per green thread, runtime objects from jemalloc vs glibc malloc:\n")
    print("| workers | jemalloc | glibc | glibc / jemalloc |")
    print("| --- | --- | --- | --- |")
    for key in sorted(libc):
        j, m = statistics.median(weft[key]), statistics.median(libc[key])
        print(f"| {key[1]} | {fmt(j)} | {fmt(m)} | {m / j:.2f}× |")
    park_table(results / "park.txt")
    http_table(results / "http.txt")
    tail_table(results / "tail.txt")


def park_table(path):
    if not path.exists():
        return
    print("\n100K parked at once on one channel, then released (one run each):\n")
    print("| runtime | workers | spawn+park | release | RSS per task | page tables per task | RSS after trim / peak |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for line in path.read_text().splitlines():
        f = dict(kv.split("=") for kv in line.split()[2:])
        print(f"| {line.split()[1]} | {f['workers']} | {float(f['spawn_park_s']):.2f} s | "
              f"{float(f['release_s']):.2f} s | {f['rss_kib_per']} KiB | {f['pte_kib_per']} KiB | "
              f"{float(f['after_trim_share']) * 100:.0f}% |")


def http_table(path):
    if not path.exists():
        return
    runs = defaultdict(list)
    p99s = defaultdict(list)
    cpu = defaultdict(list)
    for line in path.read_text().splitlines():
        parts = line.split()
        f = dict(kv.split("=") for kv in parts[2:7])
        key = (parts[1], int(f["conns"]))
        runs[key].append(float(f["rps"]))
        p99s[key].append(float(f["p99_ms"]))
        cpu[key].append(float(f["cpu_us_per_req"]))
    print("\nHTTP hello, keep-alive, 1 worker pinned to one core, wrk on the other "
          f"(median of {max(len(v) for v in runs.values())} runs):\n")
    print("| connections | weft req/s | spread | Go req/s | spread | weft / Go | p99 weft | p99 Go "
          "| server CPU µs/req weft | Go | Go / weft |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for conns in sorted({c for _, c in runs}):
        w, g = runs[("weft", conns)], runs[("go", conns)]
        print(f"| {conns} | {statistics.median(w):,.0f} | {spread(w)} | {statistics.median(g):,.0f} | "
              f"{spread(g)} | {statistics.median(w) / statistics.median(g):.2f}× | "
              f"{statistics.median(p99s[('weft', conns)]):.2f} ms | {statistics.median(p99s[('go', conns)]):.2f} ms | "
              f"{statistics.median(cpu[('weft', conns)]):.1f} | {statistics.median(cpu[('go', conns)]):.1f} | "
              f"{statistics.median(cpu[('go', conns)]) / statistics.median(cpu[('weft', conns)]):.2f}× |")


def tail_table(path):
    if not path.exists():
        return
    runs = defaultdict(lambda: defaultdict(list))
    for line in path.read_text().splitlines():
        parts = line.split()
        f = dict(kv.split("=") for kv in parts[2:])
        runs[(parts[1], int(f["adversary"]))]["all"].append(f)
    names = {"weft": "weft, budget on", "weft-nobudget": "weft, budget off", "go": "Go 1.19"}
    n = max(len(v["all"]) for v in runs.values())
    print(f"\nTail latency, 10,000 req/s open loop over 1000 keep-alive connections, all workers "
          f"(median of {n} runs, min–max in brackets; ms):\n")
    print("| server | adversary | p50 | p95 | p99 | p99.9 | max | errors | RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for adversary in (0, 1):
        for server in ("weft", "weft-nobudget", "go"):
            rs = runs.get((server, adversary), {}).get("all")
            if not rs:
                continue
            def cell(key):
                vals = [float(r[key]) for r in rs if key in r and int(r.get("ok", 0)) > 0]
                if not vals:
                    return "—"
                return f"{statistics.median(vals):.2f} [{min(vals):.2f}–{max(vals):.2f}]"
            errors = [int(r.get("errors", 0)) for r in rs]
            oks = [int(r.get("ok", 0)) for r in rs]
            err = f"{statistics.median(errors):,.0f} of {statistics.median(errors) + statistics.median(oks):,.0f}"
            rss = statistics.median(float(r["rss_mib"]) for r in rs)
            print(f"| {names[server]} | {'on' if adversary else 'off'} | {cell('p50_ms')} | "
                  f"{cell('p95_ms')} | {cell('p99_ms')} | {cell('p999_ms')} | {cell('max_ms')} | "
                  f"{err} | {rss:,.0f} |")
    w = runs.get(("weft", 1), {}).get("all")
    g = runs.get(("go", 1), {}).get("all")
    if w and g:
        wp = statistics.median(float(r["p99_ms"]) for r in w)
        gp = statistics.median(float(r["p99_ms"]) for r in g)
        if wp > 0:
            print(f"\nUnder the adversary, weft's p99 is {gp / wp:.1f}× lower than Go's.")


if __name__ == "__main__":
    main()
