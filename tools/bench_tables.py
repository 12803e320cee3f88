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
    return park_table(raw / "park.txt", raw / "page_floor.txt") + allocator_table(raw) + \
        http_table(raw / "http.txt", "HTTP hello: server pinned to core 0, the generator on the "
                   "other core (keep-alive)") + \
        http_table(raw / "http_pipelined.txt", "HTTP plaintext, TechEmpower's shape: 16 "
                   "pipelined requests per write; server pinned to core 0, the generator on the "
                   "other (p99: per request with wrk, per batch of 16 with pipegen)") + \
        http_table(raw / "tcp_echo.txt", "TCP echo, 64-byte messages: server pinned to core 0, "
                   "pipegen --echo on the other (a message counts as a request)") + \
        http_table(raw / "http_churn.txt", "HTTP hello, a new connection per request "
                   "(pipegen --churn: the accept path); server pinned to core 0, the generator "
                   "on the other") + \
        tail_text(raw / "tail.txt")


def page_floor(path):
    """{threads: (map_touch_s, retouch_s)}, medians of bench/page_floor's runs."""
    runs = defaultdict(list)
    for line in read_lines(path):
        f = kv(line.split()[1:])
        runs[int(f["threads"])].append((float(f["map_touch_s"]), float(f["retouch_s"])))
    return {t: (statistics.median(a for a, _ in r), statistics.median(b for _, b in r))
            for t, r in runs.items()}


def park_table(path, floor_path):
    lines = read_lines(path)
    if not lines:
        return ""
    floor = page_floor(floor_path)
    out = ["", "### Parked tasks, one run each", "",
           "| runtime | workers | count | spawn+park | release | × page floor | RSS per task "
           "| page tables per task | RSS after trim / peak |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for line in lines:
        parts = line.split()
        f = kv(parts[2:])
        trim = f"{float(f['after_trim_share']) * 100:.0f}%" if "after_trim_share" in f else "—"
        spawn, release = float(f["spawn_park_s"]), float(f["release_s"])
        times = floor.get(int(f.get("workers", 0)))
        multiple = "—"
        if times and int(f["count"]) == 1_000_000:
            multiple = f"{(spawn + release) / sum(times):.2f}×"
        runtime = parts[1] + (" tasks" if parts[1] != "tokio" and f.get("kind") == "tasks" else "")
        out.append(f"| {runtime} | {f.get('workers', '—')} | {int(f['count']):,} | "
                   f"{spawn:.2f} s | {release:.2f} s | {multiple} | "
                   f"{f['rss_kib_per']} KiB | {f['pte_kib_per']} KiB | {trim} |")
    for threads, (touch, again) in sorted(floor.items()):
        out.append(f"| page floor (bench/page_floor, no runtime) | {threads} thread"
                   f"{'s' if threads > 1 else ''} | 1,000,000 | {touch:.2f} s | {again:.2f} s | 1× "
                   f"| — | — | — |")
    out += ["", "× page floor: spawn+park plus release of 1M, over the floor's map and first touch "
            "plus its second touch, from as many threads as workers, same run (1M rows only)."]
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


def http_table(path, title):
    lines = read_lines(path)
    if not lines:
        return ""
    runs = defaultdict(list)
    for line in lines:
        parts = line.split()
        f = kv(parts[2:])
        runs[(int(f["conns"]), f.get("gen", "wrk"), parts[1])].append(f)
    names = {"epoll": "floor: plain epoll, 1 thread", "weft": "weft, 1 worker (io_uring)",
             "weft-epoll": "weft, 1 worker, epoll", "weft-uring": "weft, 1 worker, io_uring",
             "go": "Go, 1 P",
             "tokio": "Tokio, 1 worker", "threads": "OS thread per connection"}
    out = ["", f"### {title}", "",
           "| connections | generator | server | req/s | spread | p99 | server CPU µs per request "
           "| server core busy | generator core busy | bound by |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key in sorted(runs, key=lambda k: (k[0], k[1], list(names).index(k[2]))):
        rs = runs[key]

        def med(field):
            vals = [float(r[field]) for r in rs if field in r]
            return statistics.median(vals) if vals else None
        rps = [float(r["rps"]) for r in rs]
        server_busy, gen_busy = med("server_core_busy"), med("gen_core_busy")
        bound = "—"
        if server_busy is not None and gen_busy is not None:
            if min(server_busy, gen_busy) >= 0.95:
                bound = "both saturated"
            else:
                bound = "**generator**" if gen_busy > server_busy else "server"
        pct = lambda v: "—" if v is None else f"{v * 100:.0f}%"
        out.append(f"| {key[0]} | {key[1]} | {names[key[2]]} | {statistics.median(rps):,.0f} | "
                   f"{spread(rps)} | {med('p99_ms'):.2f} ms | {med('cpu_us_per_req'):.2f} | "
                   f"{pct(server_busy)} | {pct(gen_busy)} | {bound} |")
    return "\n".join(out) + "\n"


def tail_text(path):
    lines = read_lines(path)
    if not lines:
        return ""
    runs = defaultdict(list)
    for line in lines:
        parts = line.split()
        f = kv(parts[2:])
        load = "ready" if f.get("run") == "ready" else f["adversary"]
        runs[(f.get("cores", "all"), parts[1], load)].append(f)
    out = []
    titles = {
        "all": "all cores, the generator sharing them",
        "one": "server and all its threads confined to one core with one worker, the generator "
               "alone on the other",
    }
    for cores in ("all", "one"):
        if any(k[0] == cores for k in runs):
            out += tail_group_table(runs, cores, titles[cores])
    return "\n".join(out) + "\n"


def tail_group_table(runs, cores, title):
    names = {"weft": "weft, budget on", "weft-nobudget": "weft, budget off", "go": "Go 1.19",
             "tokio": "Tokio 1.24"}
    loads = {"0": "none", "ready": "adversary, from 1 s after ready", "1": "adversary",
             "hog": "busy loops outside" if cores == "all" else "one busy loop on its core"}
    n = max(len(v) for k, v in runs.items() if k[0] == cores)
    out = ["", f"### Tail latency: 10,000 req/s open loop over 1000 keep-alive connections, "
           f"{title} (median of {n} runs, min–max in brackets; ms)", "",
           "| server | load | p50 | p95 | p99 | p99.9 | max | generator late, p99 | errors | RSS MiB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for adversary in ("0", "ready", "1", "hog"):
        for server in ("weft", "weft-nobudget", "go", "tokio"):
            rs = runs.get((cores, server, adversary))
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

    def p99(server, load="1"):
        rs = [float(r["p99_ms"]) for r in runs.get((cores, server, load), [])
              if int(r.get("ok", 0)) > 0]
        return statistics.median(rs) if rs else None
    wp = p99("weft")
    for peer in ("go", "tokio"):
        pp = p99(peer)
        if wp and pp:
            out += ["", f"Under the adversary, weft's p99 is {pp / wp:.1f}× lower than {names[peer]}'s."]
    control = p99("weft", "hog")
    if wp and control:
        out += ["", f"weft's p99 under the adversary is {wp / control:.2f}× the control's."]
    return out


def tail_table(path):
    print(tail_text(path))
