#!/usr/bin/env bash
# The main command: builds Release, runs weft's micro benchmarks and the Go peers of the same
# shapes in turn, and prints medians side by side with ratios. Raw results go to bench/results/.
#   tools/bench.sh [--runs N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/deps.sh"
source "$root/tools/http_bench.sh"
source "$root/tools/tail_bench.sh"
weft_install_deps "${WEFT_BUILD_PACKAGES[@]}" golang-go python3 wrk util-linux

runs=5
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    *) echo "usage: tools/bench.sh [--runs N]" >&2; exit 2 ;;
  esac
done

build="$root/build-bench"
results="$root/bench/results"
mkdir -p "$results"
echo "==== building (Release) ===="
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"
(cd "$root/bench/peers/go" && GOFLAGS=-mod=mod GOCACHE="$build/go-cache" go build -o "$build/go_micro" ./micro &&
  GOFLAGS=-mod=mod GOCACHE="$build/go-cache" go build -o "$build/go_park" ./park &&
  GOFLAGS=-mod=mod GOCACHE="$build/go-cache" go build -o "$build/go_http_hello" ./http_hello &&
  GOFLAGS=-mod=mod GOCACHE="$build/go-cache" go build -o "$build/go_tcp_echo" ./tcp_echo)

bench_args=(--benchmark_repetitions="$runs" --benchmark_format=json)
echo "==== weft micro benchmarks (jemalloc for runtime objects) ===="
"$build/bench/micro_runtime" "${bench_args[@]}" --benchmark_out="$results/weft_micro.json" \
  --benchmark_out_format=json >/dev/null
echo "==== weft channel benchmarks, with TBB and mutex+condvar queues on OS threads ===="
"$build/bench/micro_channels" "${bench_args[@]}" --benchmark_out="$results/weft_channels.json" \
  --benchmark_out_format=json >/dev/null
echo "==== weft spawn with glibc malloc for runtime objects ===="
WEFT_ALLOCATOR=libc "$build/bench/micro_runtime" "${bench_args[@]}" \
  --benchmark_filter=spawn_complete --benchmark_out="$results/weft_micro_libc.json" \
  --benchmark_out_format=json >/dev/null
: >"$results/go_micro.txt"
for workers in 1 2; do
  echo "==== Go peer, GOMAXPROCS=$workers ===="
  "$build/go_micro" -workers "$workers" -runs "$runs" | tee -a "$results/go_micro.txt"
done
: >"$results/park.txt"
for workers in 1 2; do
  echo "==== 100K parked green threads / goroutines, $workers worker(s) ===="
  "$build/bench/park_million" 100000 "$workers" | sed 's/^park /park weft /' | tee -a "$results/park.txt"
  "$build/go_park" 100000 "$workers" | sed 's/^park /park go /' | tee -a "$results/park.txt"
done
echo "==== HTTP hello: 1 worker on core 0, wrk on the last core, weft and Go in turn ===="
http_bench "$build/bench/http_hello" "$build/go_http_hello" 3 5 "$results/http.txt"
echo "==== tail latency: 10,000 req/s over 1000 connections, calm and under the adversary ===="
tail_bench "$build" "$build/go_http_hello" 3 15 1000000 "$results/tail.txt"
python3 "$root/tools/bench_report.py" "$results" | tee "$results/latest.md"
