"""The detail tables under the comparison in bench/results/latest.md: parked tasks, allocator,
HTTP and tail latency, each figure from tools/bench.sh's raw outputs."""
import json
import statistics
from collections import defaultdict


def read_lines(path):
    return path.read_text().splitlines() if path.exists() else []


def kv(fields):
    return dict(f.split("=", 1) for f in fields if "=" in f)


def spread(values):
    m = statistics.median(values)
    return f"{min(values) / m * 100 - 100:+.0f}%/{max(values) / m * 100 - 100:+.0f}%" if m else "—"


def detail_tables(raw):
    return park_table(raw / "park.txt") + allocator_table(raw) + http_table(raw / "http.txt") + \
        tail_text(raw / "tail.txt")


def park_table(path):
    lines = read_lines(path)
    if not lines:
        return ""
    out = ["", "### Parked tasks, one run each", "",
           "| runtime | workers | count | spawn+park | release | RSS per task | page tables per task "
           "| RSS after trim / peak |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for line in lines:
        parts = line.split()
        f = kv(parts[2:])
        trim = f"{float(f['after_trim_share']) * 100:.0f}%" if "after_trim_share" in f else "—"
        out.append(f"| {parts[1]} | {f.get('workers', '—')} | {int(f['count']):,} | "
                   f"{float(f['spawn_park_s']):.2f} s | {float(f['release_s']):.2f} s | "
                   f"{f['rss_kib_per']} KiB | {f['pte_kib_per']} KiB | {trim} |")
    return "\n".join(out) + "\n"


def allocator_table(raw):
    shapes = {"spawn_complete": "spawn+complete, per green thread (ns)",
              "fib": "fork-join fib(35), join states too (ms)"}

    def runs(name):
        path = raw / name
        res = defaultdict(list)
        if path.exists():
            for b in json.loads(path.read_text())["benchmarks"]:
                shape = b["run_name"].split("/")[0]
                if b.get("run_type") == "iteration" and shape in shapes:
                    value = b["ns_per_op"] if shape == "spawn_complete" else b["real_time"]
                    res[(shape, b["run_name"].split("/")[1])].append(value)
        return res
    je, libc = runs("weft_micro.json"), runs("weft_micro_libc.json")
    if not libc:
        return ""
    out = ["", "### What jemalloc buys: runtime objects from jemalloc vs glibc malloc "
           "(records are reused per worker either way)", "",
           "| shape | workers | jemalloc | glibc | glibc / jemalloc |",
           "| --- | --- | --- | --- | --- |"]
    for key in sorted(libc):
        if key in je:
            j, m = statistics.median(je[key]), statistics.median(libc[key])
            out.append(f"| {shapes[key[0]]} | {key[1].split(':')[1]} | {j:.1f} | {m:.1f} | "
                       f"{m / j:.2f}× |")
    return "\n".join(out) + "\n"


def http_table(path):
    lines = read_lines(path)
    if not lines:
        return ""
    rps, p99, cpu = defaultdict(list), defaultdict(list), defaultdict(list)
    for line in lines:
        parts = line.split()
        f = kv(parts[2:])
        key = (parts[1], int(f["conns"]))
        rps[key].append(float(f["rps"]))
        p99[key].append(float(f["p99_ms"]))
        cpu[key].append(float(f["cpu_us_per_req"]))
    names = {"weft": "weft, 1 worker", "go": "Go, 1 P", "threads": "OS thread per connection"}
    out = ["", "### HTTP hello: server pinned to core 0, wrk on the other core (keep-alive)", "",
           "| connections | server | req/s | spread | wrk p99 | server CPU µs per request |",
           "| --- | --- | --- | --- | --- | --- |"]
    for conns in sorted({c for _, c in rps}):
        for server in ("weft", "go", "threads"):
            key = (server, conns)
            if key in rps:
                out.append(f"| {conns} | {names[server]} | {statistics.median(rps[key]):,.0f} | "
                           f"{spread(rps[key])} | {statistics.median(p99[key]):.2f} ms | "
                           f"{statistics.median(cpu[key]):.1f} |")
    return "\n".join(out) + "\n"


def tail_text(path):
    lines = read_lines(path)
    if not lines:
        return ""
    runs = defaultdict(list)
    for line in lines:
        parts = line.split()
        f = kv(parts[2:])
        runs[(parts[1], f["adversary"])].append(f)
    names = {"weft": "weft, budget on", "weft-nobudget": "weft, budget off", "go": "Go 1.19",
             "tokio": "Tokio 1.24"}
    loads = {"0": "none", "1": "adversary", "hog": "busy loops outside"}
    n = max(len(v) for v in runs.values())
    out = ["", f"### Tail latency: 10,000 req/s open loop over 1000 keep-alive connections, all "
           f"cores (median of {n} runs, min–max in brackets; ms)", "",
           "| server | load | p50 | p95 | p99 | p99.9 | max | generator late, p99 | errors | RSS MiB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for adversary in ("0", "1", "hog"):
        for server in ("weft", "weft-nobudget", "go", "tokio"):
            rs = runs.get((server, adversary))
            if not rs:
                continue

            def cell(key):
                vals = [float(r[key]) for r in rs if key in r and int(r.get("ok", 0)) > 0]
                if not vals:
                    return "—"
                return f"{statistics.median(vals):.2f} [{min(vals):.2f}–{max(vals):.2f}]"
            errors = statistics.median(int(r.get("errors", 0)) for r in rs)
            oks = statistics.median(int(r.get("ok", 0)) for r in rs)
            rss = statistics.median(float(r["rss_mib"]) for r in rs)
            out.append(f"| {names[server]} | {loads[adversary]} | {cell('p50_ms')} | "
                       f"{cell('p95_ms')} | {cell('p99_ms')} | {cell('p999_ms')} | {cell('max_ms')} | "
                       f"{cell('late_p99_ms')} | {errors:,.0f} of {errors + oks:,.0f} | {rss:,.0f} |")
    def p99(server):
        rs = [float(r["p99_ms"]) for r in runs.get((server, "1"), []) if int(r.get("ok", 0)) > 0]
        return statistics.median(rs) if rs else None
    wp = p99("weft")
    for peer in ("go", "tokio"):
        pp = p99(peer)
        if wp and pp:
            out += ["", f"Under the adversary, weft's p99 is {pp / wp:.1f}× lower than {names[peer]}'s."]
    return "\n".join(out) + "\n"


def tail_table(path):
    print(tail_text(path))
