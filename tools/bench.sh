#!/usr/bin/env bash
# The main command: builds Release, runs every workload of the comparison (weft's green threads and
# its stackless tasks with 1 worker and with all cores, OS threads, oneTBB, Go with GOMAXPROCS=1
# and all cores, Tokio with 1 worker and all cores), then writes
# bench/results/latest.md, latest.csv and PNG charts and prints the table. About 21 minutes on a
# 2-core machine.
#   tools/bench.sh [--runs N]   (runs of each micro benchmark; default 5)
# Raw outputs of every run stay in bench/results/raw/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/deps.sh"
source "$root/tools/http_bench.sh"
source "$root/tools/tail_bench.sh"
weft_install_deps "${WEFT_BUILD_PACKAGES[@]}" golang-go cargo librust-tokio-dev python3 wrk util-linux \
  gnuplot-nox

runs=5
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: tools/bench.sh [--runs N]" >&2; exit 2 ;;
  esac
done

build="$root/build-bench"
results="$root/bench/results"
raw="$results/raw"
mkdir -p "$raw"
cores="$(nproc)"
started=$SECONDS
steps=15
step=0
progress() {
  step=$((step + 1))
  printf '==== [%d/%d %2dm%02ds] %s\n' "$step" "$steps" $(((SECONDS - started) / 60)) \
    $(((SECONDS - started) % 60)) "$*"
}

progress "building Release, and the Go and Tokio peers"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF \
  -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j "$cores" | tail -1
for peer in micro park http_hello tcp_echo io_pingpong; do
  (cd "$root/bench/peers/go" && GOFLAGS=-mod=mod GOCACHE="$build/go-cache" go build -o "$build/go_$peer" "./$peer")
done
# Debian's cargo and rustc (not a rustup install earlier in PATH): the crates are Debian's too.
for peer in http_hello micro; do
  (cd "$root/bench/peers/tokio/$peer" &&
    PATH="/usr/bin:$PATH" CARGO_TARGET_DIR="$build/tokio-target" cargo build --release --quiet)
done
tokio_micro="$build/tokio-target/release/tokio_micro"
{
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $cores cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Linux $(uname -r), $(go version | awk '{print $3}'), $(g++ --version | head -1)"
} >"$raw/machine.txt"

# Every shape at 1 worker and at all cores, `runs` times; one run per repetition. Repetitions are
# interleaved in random order, so that a slow phase of this shared machine (they last seconds)
# falls on both worker counts alike instead of on whichever ran during it.
bench_args=(--benchmark_repetitions="$runs" --benchmark_enable_random_interleaving=true
  --benchmark_format=json --benchmark_out_format=json)
progress "weft: runtime and channel micro benchmarks, 1 worker and $cores workers"
"$build/bench/micro_runtime" "${bench_args[@]}" --benchmark_out="$raw/weft_micro.json" >/dev/null
"$build/bench/micro_channels" "${bench_args[@]}" --benchmark_out="$raw/weft_channels.json" >/dev/null
progress "weft: spawn and fork-join with glibc malloc for runtime objects (what jemalloc buys)"
WEFT_ALLOCATOR=libc "$build/bench/micro_runtime" "${bench_args[@]}" --benchmark_filter='spawn_complete|fib' \
  --benchmark_out="$raw/weft_micro_libc.json" >/dev/null

progress "Go 1.19: the same shapes, GOMAXPROCS=1 and $cores"
: >"$raw/go_micro.txt"
for workers in 1 "$cores"; do
  "$build/go_micro" -workers "$workers" -runs "$runs" >>"$raw/go_micro.txt"
done

progress "Tokio 1.24: the task shapes (create, ping-pong, fib), 1 worker and $cores"
: >"$raw/tokio_micro.txt"
for workers in 1 "$cores"; do
  "$tokio_micro" micro "$workers" "$runs" >>"$raw/tokio_micro.txt"
done

progress "I/O round trips: UDP echo and Unix-socket ping-pong, weft and Go, 1 worker and $cores"
# One process per run and worker count, weft and Go in turn, so a slow phase hits both alike.
: >"$raw/io_pingpong.txt"
for run in $(seq "$runs"); do
  for workers in 1 "$cores"; do
    "$build/bench/io_pingpong" "$workers" 1 100000 | sed 's/^/weft /' >>"$raw/io_pingpong.txt"
    "$build/go_io_pingpong" -workers "$workers" -runs 1 -round-trips 100000 |
      sed 's/^/go /' >>"$raw/io_pingpong.txt"
  done
done

progress "OS threads and oneTBB: the same shapes"
"$build/bench/thread_peers" --runs "$runs" --park 10000 >"$raw/threads.txt"
grep '^park ' "$raw/threads.txt" >"$raw/park.txt" || true

# A parked crowd: weft's green threads, its tasks, Go, Tokio, in turn.
park_all() {
  local count="$1" workers="$2"
  "$build/bench/park_million" "$count" "$workers" | sed 's/^park /park weft /' >>"$raw/park.txt"
  "$build/bench/park_million" "$count" "$workers" tasks | sed 's/^park /park weft /' >>"$raw/park.txt"
  "$build/go_park" "$count" "$workers" | sed 's/^park /park go /' >>"$raw/park.txt"
  "$tokio_micro" park "$count" "$workers" | sed 's/^park /park tokio /' >>"$raw/park.txt"
}

progress "memory per parked task: 100K parked at once, weft (green threads, tasks), Go, Tokio, 1 worker and $cores"
for run in 1 2 3; do
  for workers in 1 "$cores"; do
    park_all 100000 "$workers"
  done
done

progress "1M parked at once, weft (green threads, tasks), Go, Tokio, 1 worker and $cores, and the kernel's page floor (two runs each, ~5 min)"
: >"$raw/page_floor.txt"
for run in 1 2; do
  "$build/bench/page_floor" 1000000 >>"$raw/page_floor.txt"
  for workers in 1 "$cores"; do
    park_all 1000000 "$workers"
  done
done

progress "10M parked at once: weft tasks and Tokio, $cores workers (one run each, ~1 min; green threads would need 45 GiB)"
"$build/bench/park_million" 10000000 "$cores" tasks | sed 's/^park /park weft /' >>"$raw/park.txt"
"$tokio_micro" park 10000000 "$cores" | sed 's/^park /park tokio /' >>"$raw/park.txt"

progress "HTTP hello: server on core 0 (weft 1 worker under io_uring (the default) and under epoll, Go 1 P, Tokio 1 worker, a thread per connection), wrk on core $((cores - 1)); keep-alive, then 16 pipelined"
http_bench "$raw/http.txt" 3 5 1 100,1000 wrk epoll="$build/bench/http_hello_epoll" \
  weft="$build/bench/http_hello" weft-epoll="$build/bench/http_hello" go="$build/go_http_hello" \
  threads="$build/bench/http_hello_threads" >/dev/null
# Pipelined: pipegen (cheaper per request than wrk) for the rows; one wrk run each for the record.
pipelined_servers=(epoll="$build/bench/http_hello_epoll" weft="$build/bench/http_hello"
  weft-epoll="$build/bench/http_hello" go="$build/go_http_hello"
  tokio="$build/tokio-target/release/tokio_http_hello")
http_bench "$raw/http_pipelined.txt" 3 5 16 256,1024 pipegen="$build/bench/pipegen" \
  "${pipelined_servers[@]}" >/dev/null
http_bench "$raw/http_pipelined_wrk.txt" 1 5 16 256,1024 wrk "${pipelined_servers[@]}" >/dev/null
cat "$raw/http_pipelined_wrk.txt" >>"$raw/http_pipelined.txt"

progress "TCP echo, 64-byte messages: server on core 0 (weft 1 worker under io_uring (the default) and under epoll, Go 1 P), pipegen --echo on core $((cores - 1))"
http_bench "$raw/tcp_echo.txt" 3 5 1 100,1000 pipegen-echo="$build/bench/pipegen" \
  weft="$build/bench/tcp_echo" weft-epoll="$build/bench/tcp_echo" go="$build/go_tcp_echo" >/dev/null

progress "Connection churn, a new connection per request: server on core 0 (weft 1 worker under io_uring and under epoll, Go 1 P), pipegen --churn on core $((cores - 1))"
http_bench "$raw/http_churn.txt" 3 5 1 100 pipegen-churn="$build/bench/pipegen" \
  weft="$build/bench/http_hello" weft-epoll="$build/bench/http_hello" go="$build/go_http_hello" >/dev/null

progress "p99 under the adversary (1M parked, churn, greedy tasks), 10K req/s over 1000 connections; weft, Tokio, Go, and the busy-loop control; all cores, then each server on one core with the generator on the other (~10 min)"
tail_bench "$build" "$build/go_http_hello" 3 10 1000000 "$raw/tail.txt" \
  "weft:1,tokio:1,go:1,weft:hog weft:1:one,tokio:1:one,go:1:one,weft:hog:one" >/dev/null

progress "report and charts"
python3 "$root/tools/bench_report.py" "$results"
python3 "$root/tools/bench_charts.py" "$results"
echo
echo "Written: $results/latest.md, latest.csv, summary.png and a chart per row ($(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s)."
