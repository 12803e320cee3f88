#!/usr/bin/env bash
# Tail latency under adversarial load (issue: "Tail latency under adversarial load"). Runs
# tools/loadgen at a fixed rate over keep-alive connections against bench/http_hello with all
# workers, budget on and budget off, and against the Go and Tokio peers, each calm and then
# carrying the in-process adversary (bench/adversary.hpp). One line per run:
#   tail <server> adversary=<0|1|hog> cores=<all|one> run=K ok=N errors=N p50_ms=.. p95_ms=.. p99_ms=.. p999_ms=..
#        max_ms=.. late_p99_ms=.. rss_mib=..
# run=ready is the window right after a server with the adversary says it is ready (from 1 s
# after, no warm-up); the other runs come later, in rotation, after a 2 s warm-up.
# late_p99_ms is how late the generator itself sent its requests (p99): its own wait for a CPU,
# which no server can take back. adversary=hog is the control: the calm server while plain
# busy-loop processes, one per core, saturate the machine from outside, so the tail that any
# server shows when the cores it shares with the generator are saturated.
#
# The servers of a group are all started first, each stopped (SIGSTOP) once ready, and then
# measured in alternation, one run each per round, in an order rotated every round: only the
# measured one runs (a stopped process takes no CPU), and a slow phase of this shared machine
# (they last seconds to minutes) falls on every server alike instead of on whichever ran then.
#
# One-core scenarios (":one" after the load) confine the server with all its threads (monitor,
# spares, blocking pool) to the last core with taskset and one worker (weft --workers 1, Go
# GOMAXPROCS=1, Tokio one worker), and run the generator alone on core 0: the instrument no
# longer shares a core with the server. Their control (hog:one) is one busy loop on the
# server's core. Their lines say cores=one; the others cores=all.
# Standalone: tools/tail_bench.sh [--runs N] [--seconds S] [--parked N]  (after tools/bench.sh
# built build-bench/); tools/bench.sh sources it and calls tail_bench.
#   tail_bench <build dir> <go binary> <runs> <seconds> <parked> <out file> [groups]
# groups: "server:load[:one],server:load ..." (space between groups, commas within one; by
# default the calm servers, then budget off under the adversary alone, then the rest under
# load, then the one-core group). The Tokio peer is
# <build dir>/tokio-target/release/tokio_http_hello, which tools/bench.sh builds.
tail_bench() {
  local build="$1" go_bin="$2" runs="$3" secs="$4" parked="$5" out="$6"
  tail_ready_out="$out" tail_ready_secs="$secs"
  local groups="${7:-weft:0,weft-nobudget:0,go:0,tokio:0 weft-nobudget:1 weft:1,tokio:1,go:1,weft:hog weft:1:one,tokio:1:one,go:1:one,weft:hog:one}"
  : >"$out"
  # 1000 connections on each side, plus the adversary's bookkeeping: more than the default 1024.
  ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  local group
  for group in $groups; do
    tail_group "$build" "$go_bin" "$runs" "$secs" "$parked" "$out" "${group//,/ }" || return 1
  done
}

# Starts a scenario's server and stops it once it is ready; sets tail_pid and tail_port.
tail_start() {
  local build="$1" go_bin="$2" parked="$3" server="$4" adversary="$5" cores="${6:-all}"
  local workers cmd=()
  workers="$(nproc)"
  [[ $cores == one ]] && workers=1
  case "$server" in
    weft) cmd=("$build/bench/http_hello" --port 0 --workers "$workers") ;;
    weft-nobudget) cmd=("$build/bench/http_hello" --port 0 --workers "$workers" --coop-budget 0) ;;
    go) cmd=("$go_bin" -port 0 -workers "$workers") ;;
    tokio) cmd=("$build/tokio-target/release/tokio_http_hello" -port 0 -workers "$workers") ;;
    *) echo "tail_bench: unknown server $server" >&2; return 1 ;;
  esac
  if [[ $adversary == 1 ]]; then
    if [[ $server == weft* ]]; then cmd+=(--adversary --parked "$parked"); else cmd+=(-adversary -parked "$parked"); fi
  fi
  # Every thread the server ever starts inherits the mask.
  [[ $cores == one ]] && cmd=(taskset -c "$(($(nproc) - 1))" "${cmd[@]}")
  local stdout_file stderr_file
  stdout_file="$(mktemp)"
  stderr_file="$(mktemp)"
  "${cmd[@]}" >"$stdout_file" 2>"$stderr_file" &
  tail_pid=$!
  tail_port=""
  local waited=0
  while ((waited < 3000)); do # up to 300 s: spawning a million parked tasks takes a while
    tail_port="$(sed -n 's/^listening on //p' "$stdout_file")"
    if [[ -n $tail_port ]] && { [[ $adversary != 1 ]] || grep -q "adversary ready" "$stderr_file"; }; then break; fi
    if ! kill -0 "$tail_pid" 2>/dev/null; then break; fi
    sleep 0.1
    waited=$((waited + 1))
  done
  if [[ -z $tail_port ]] || ! kill -0 "$tail_pid" 2>/dev/null; then
    echo "tail_bench: $server (adversary=$adversary) did not start:" >&2
    cat "$stderr_file" >&2
    kill "$tail_pid" 2>/dev/null || true
    rm -f "$stdout_file" "$stderr_file"
    return 1
  fi
  [[ $adversary == 1 ]] && sed 's/^/  /' "$stderr_file"
  rm -f "$stdout_file" "$stderr_file"
  # The seconds right after the server says it is ready: one run from 1 s after, with no
  # warm-up, before the server is stopped to wait for its turn.
  if [[ $adversary == 1 && -n $tail_ready_out ]]; then
    sleep 1
    tail_measure "$build" "$tail_pid" "$tail_port" "$server" "$adversary" "$cores" ready 0 \
      "$tail_ready_secs" "$tail_ready_out"
  fi
  kill -STOP "$tail_pid"
  return 0
}

# One run of the generator against a running server; appends its line to <out>.
#   tail_measure <build> <pid> <port> <server> <load> <cores> <run> <warm-up s> <seconds> <out>
tail_measure() {
  local build="$1" pid="$2" port="$3" server="$4" adversary="$5" cores="$6" run="$7"
  local warmup="$8" secs="$9" out="${10}"
  local gen=() report line rss fields
  # One-core: the generator alone on core 0, the server (and its control's hog) on the last.
  [[ $cores == one ]] && gen=(taskset -c 0)
  report="$("${gen[@]}" "$build/bench/loadgen" --port "$port" --rate 10000 \
    --connections 1000 --duration "$secs" --warmup "$warmup" 2>&1)" || true
  line="$(awk '/^loadgen / {print}' <<<"$report")"
  # A run with errors keeps the generator's whole report (which errors: connect, bad, lost).
  if ! grep -q ' errors=0 ' <<<"$line"; then
    echo "tail_bench: $server (adversary=$adversary cores=$cores) run $run had errors:" >&2
    sed 's/^/  /' <<<"$report" >&2
  fi
  rss="$(awk '/^VmRSS:/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status")"
  fields="$(tr ' ' '\n' <<<"$line" | grep -E '^(ok|errors|p50_ms|p95_ms|p99_ms|p999_ms|max_ms|late_p99_ms)=' | tr '\n' ' ')"
  echo "tail $server adversary=$adversary cores=$cores run=$run ${fields}rss_mib=$rss" |
    tee -a "$out"
}

# Kernel threads bound to no CPU, moved to the server's core for a one-core group and moved
# back after it. The kernel's memory scanners among them work in proportion to the servers'
# memory: on this project's VMs the host runs DAMON's proactive reclaim (kdamond), whose bursts
# on the generator's core made the generator itself late by 1.3-1.9 ms at p99 against a server
# holding the adversary's 5 GB (0.1 ms with kdamond on the server's core). Left where they are,
# they charge a server's memory to the instrument. "pid:mask" of each thread moved.
tail_moved_kthreads=()
tail_kthreads_to() {
  local cpu="$1" all pid mask
  all="$(printf '%x' $(((1 << $(nproc)) - 1)))"
  tail_moved_kthreads=()
  for pid in $(ps -e -o pid=,ppid= | awk '$2 == 2 {print $1}'); do
    mask="$(taskset -p "$pid" 2>/dev/null | sed -n 's/.*mask: //p')" || continue
    [[ $mask == "$all" ]] || continue  # per-CPU threads (ksoftirqd/N, kworker/N:M) stay
    taskset -pc "$cpu" "$pid" >/dev/null 2>&1 && tail_moved_kthreads+=("$pid:$mask")
  done
  echo "tail_bench: ${#tail_moved_kthreads[@]} unbound kernel threads moved to core $cpu" \
    "($(for e in "${tail_moved_kthreads[@]}"; do cat "/proc/${e%%:*}/comm" 2>/dev/null; done |
      sed 's/[0-9:/-].*//' | sort -u | tr '\n' ' ' | sed 's/ $//'))" >&2
}
tail_kthreads_back() {
  local e
  for e in "${tail_moved_kthreads[@]}"; do taskset -p "${e#*:}" "${e%%:*}" >/dev/null 2>&1 || true; done
  tail_moved_kthreads=()
}

# One group: its servers live together, stopped but for the one measured.
tail_group() {
  local build="$1" go_bin="$2" runs="$3" secs="$4" parked="$5" out="$6"
  local -a scenarios=($7) pids=() ports=()
  local i
  if [[ $7 == *:one* ]]; then
    tail_kthreads_to "$(($(nproc) - 1))"
    trap tail_kthreads_back EXIT  # also if the run is interrupted
  fi
  for i in "${!scenarios[@]}"; do
    local -a part
    IFS=: read -r -a part <<<"${scenarios[i]}"
    if ! tail_start "$build" "$go_bin" "$parked" "${part[0]}" "${part[1]}" "${part[2]:-all}"; then
      ((${#pids[@]})) && { kill -CONT "${pids[@]}"; kill "${pids[@]}"; wait "${pids[@]}"; } 2>/dev/null
      tail_kthreads_back
      return 1
    fi
    pids[i]=$tail_pid
    ports[i]=$tail_port
  done
  local n=${#scenarios[@]} run k
  for run in $(seq 1 "$runs"); do
    for k in $(seq 0 $((n - 1))); do
      i=$(((k + run - 1) % n)) # rotated each round
      local pid="${pids[i]}" part
      IFS=: read -r -a part <<<"${scenarios[i]}"
      local server="${part[0]}" adversary="${part[1]}" cores="${part[2]:-all}"
      local hogs=()
      if [[ $adversary == hog ]]; then
        local h
        if [[ $cores == one ]]; then
          taskset -c "$(($(nproc) - 1))" bash -c 'while :; do :; done' &
          hogs+=($!)
        else
          for h in $(seq 1 "$(nproc)"); do
            bash -c 'while :; do :; done' &
            hogs+=($!)
          done
        fi
      fi
      kill -CONT "$pid"
      tail_measure "$build" "$pid" "${ports[i]}" "$server" "$adversary" "$cores" "$run" 2 "$secs" \
        "$out"
      kill -STOP "$pid"
      if ((${#hogs[@]})); then
        kill "${hogs[@]}" 2>/dev/null || true
        wait "${hogs[@]}" 2>/dev/null || true
      fi
    done
  done
  kill -CONT "${pids[@]}" 2>/dev/null || true
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  tail_kthreads_back
  return 0
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  runs=3 secs=15 parked=1000000
  while (($#)); do
    case "$1" in
      --runs) runs="$2"; shift 2 ;;
      --seconds) secs="$2"; shift 2 ;;
      --parked) parked="$2"; shift 2 ;;
      *) echo "usage: tools/tail_bench.sh [--runs N] [--seconds S] [--parked N]" >&2; exit 2 ;;
    esac
  done
  mkdir -p "$root/bench/results"
  tail_bench "$root/build-bench" "$root/build-bench/go_http_hello" "$runs" "$secs" "$parked" \
    "$root/bench/results/tail.txt"
  python3 "$root/tools/bench_report.py" --tail-only "$root/bench/results"
fi
