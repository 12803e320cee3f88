#!/usr/bin/env bash
# HTTP hello: weft's bench/http_hello and its peers, each with one worker pinned to core 0,
# loaded by wrk (one thread) pinned to the last core, in turn, several times. Sourced by
# tools/bench.sh. One line per run:
#   http <server> conns=N depth=D gen=G run=K rps=R p99_ms=P cpu_us_per_req=C
#        server_core_busy=S gen_core_busy=W [errors]
# depth 1 is plain keep-alive; depth 16 is TechEmpower's plaintext shape (16 pipelined requests
# per write). The generator is wrk (with tools/pipeline.lua when pipelining) or pipegen
# (tools/loadgen/pipegen.cpp), which costs less per request than wrk: at depth 16 wrk saturates
# its core before any of the servers does, and pipegen on epoll did too at times (a system call
# costs ~1 us here); on io_uring it leaves its core 10-30% idle while the server's is saturated. cpu_us_per_req is the server's utime + stime over the
# timed window per request; *_core_busy is each core's busy share over that window, so a reader
# sees which side was the bottleneck. p99 is per request with wrk, per batch with pipegen.
#   http_bench <out file> <runs> <seconds> <depth> <conns,...> <wrk|pipegen=binary|
#              pipegen-echo=binary|pipegen-churn=binary> <server=binary>...
#   (server: weft (its default backend), weft-epoll or weft-uring (WEFT_POLLER=epoll or
#   io_uring), go, tokio, threads or epoll;
#   pipegen-echo loads a TCP echo server with 64-byte messages instead of HTTP;
#   pipegen-churn opens a new connection for every request: the accept path)

# The busy and total jiffies of one CPU from /proc/stat ("busy total").
http_cpu_jiffies() {
  awk -v cpu="cpu$1" '$1 == cpu {
    total = 0; for (i = 2; i <= NF; i++) total += $i
    print total - $5 - $6, total }' /proc/stat
}

http_bench() {
  local out="$1" runs="$2" secs="$3" depth="$4" conns_list="$5" gen="${6%%=*}" gen_bin="${6#*=}"
  shift 6
  local -a servers=("$@")
  # 1000 connections on each side: more than the default 1024 descriptors.
  ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  local server_core=0 wrk_core=$(($(nproc) - 1))
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  local -a script=()
  ((depth > 1)) && script=(-s "$here/pipeline.lua")
  local conns run spec
  for conns in ${conns_list//,/ }; do
    for run in $(seq 1 "$runs"); do
      for spec in "${servers[@]}"; do
        local server="${spec%%=*}" bin="${spec#*=}" port_file
        port_file="$(mktemp)"
        case "$server" in
          weft | threads | epoll) taskset -c "$server_core" "$bin" --port 0 --workers 1 >"$port_file" & ;;
          weft-uring | weft-epoll)
            local backend="${server#weft-}"
            [[ $backend == uring ]] && backend=io_uring
            WEFT_POLLER="$backend" taskset -c "$server_core" "$bin" --port 0 --workers 1 \
              >"$port_file" &
            ;;
          go | tokio) taskset -c "$server_core" "$bin" -port 0 -workers 1 >"$port_file" & ;;
          *) echo "http_bench: unknown server $server" >&2; return 1 ;;
        esac
        local pid=$! port=""
        for _ in $(seq 1 100); do
          port="$(sed -n 's/^listening on //p' "$port_file")"
          [[ -n $port ]] && break
          sleep 0.05
        done
        if [[ -z $port ]]; then
          echo "http_bench: $server did not start" >&2
          kill "$pid" 2>/dev/null || true
          return 1
        fi
        local cpu0 cpu1 s0 s1 w0 w1 report
        cpu0="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
        s0="$(http_cpu_jiffies "$server_core")"
        w0="$(http_cpu_jiffies "$wrk_core")"
        if [[ $gen == pipegen* ]]; then
          # The server's CPU is read after pipegen's warm-up second, for its timed window only.
          local gen_out
          gen_out="$(mktemp)"
          local -a echo_flag=()
          [[ $gen == pipegen-echo ]] && echo_flag=(--echo)
          [[ $gen == pipegen-churn ]] && echo_flag=(--churn)
          taskset -c "$wrk_core" "$gen_bin" "${echo_flag[@]}" --port "$port" --connections "$conns" \
            --depth "$depth" --duration "$secs" --warmup 1 >"$gen_out" 2>&1 &
          local gen_pid=$!
          sleep 1
          cpu0="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
          s0="$(http_cpu_jiffies "$server_core")"
          w0="$(http_cpu_jiffies "$wrk_core")"
          wait "$gen_pid" || true
          report="$(cat "$gen_out")"
          rm -f "$gen_out"
        else
          report="$(taskset -c "$wrk_core" wrk -t1 -c"$conns" -d"${secs}s" --latency \
            "${script[@]}" "http://127.0.0.1:$port/plaintext" ${script:+-- "$depth"} 2>&1)"
        fi
        cpu1="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
        s1="$(http_cpu_jiffies "$server_core")"
        w1="$(http_cpu_jiffies "$wrk_core")"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -f "$port_file"
        local rps p99 errors cpu_us server_busy wrk_busy
        rps="$(awk '/^Requests\/sec:/ {print $2} /^pipegen / {sub(/rps=/, "", $2); print $2}' <<<"$report")"
        p99="$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$report")"
        [[ $gen == pipegen* ]] && p99="$(sed -n 's/.*batch_p99_ms=\([0-9.]*\).*/\1/p' <<<"$report")"
        errors="$(awk '/Socket errors|Non-2xx/ {print} /^pipegen / && $4 != "errors=0" {print $4}' \
          <<<"$report" | tr '\n' ' ')"
        # Clock ticks are 10 ms: over 5 s and ~100K req/s, still within a few per cent.
        cpu_us="$(awk -v t="$((cpu1 - cpu0))" -v r="${rps:-0}" -v s="$secs" -v hz="$(getconf CLK_TCK)" \
          'BEGIN { printf "%.2f", (r > 0 ? t / hz * 1e6 / (r * s) : 0) }')"
        server_busy="$(awk -v a="$s0" -v b="$s1" 'BEGIN { split(a, x); split(b, y);
          printf "%.2f", (y[2] > x[2] ? (y[1] - x[1]) / (y[2] - x[2]) : 0) }')"
        wrk_busy="$(awk -v a="$w0" -v b="$w1" 'BEGIN { split(a, x); split(b, y);
          printf "%.2f", (y[2] > x[2] ? (y[1] - x[1]) / (y[2] - x[2]) : 0) }')"
        echo "http $server conns=$conns depth=$depth gen=$gen run=$run rps=${rps:-0}" \
          "p99_ms=${p99:-0} cpu_us_per_req=$cpu_us server_core_busy=$server_busy" \
          "gen_core_busy=$wrk_busy ${errors}" |
          tee -a "$out"
      done
    done
  done
}
