#!/usr/bin/env bash
# HTTP hello: weft's bench/http_hello and the Go goroutine-per-connection peer (and, if given,
# the thread-per-connection server), each with one worker pinned to core 0, loaded by wrk pinned
# to the last core, in turn, several times; one line per run
# ("http <server> conns=N run=K rps=R p99_ms=P cpu_us_per_req=C"). Sourced by tools/bench.sh.
#   http_bench <weft binary> <go binary> <runs> <seconds> <out file> [threads binary]
http_bench() {
  local weft_bin="$1" go_bin="$2" runs="$3" secs="$4" out="$5" threads_bin="${6:-}"
  # 1000 connections on each side: more than the default 1024 descriptors.
  ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  local servers=(weft go)
  [[ -n $threads_bin ]] && servers+=(threads)
  local last_core=$(($(nproc) - 1))
  : >"$out"
  for conns in 100 1000; do
    for run in $(seq 1 "$runs"); do
      for server in "${servers[@]}"; do
        local port_file
        port_file="$(mktemp)"
        case "$server" in
          weft) taskset -c 0 "$weft_bin" --port 0 --workers 1 >"$port_file" & ;;
          go) taskset -c 0 "$go_bin" -port 0 -workers 1 >"$port_file" & ;;
          threads) taskset -c 0 "$threads_bin" --port 0 >"$port_file" & ;;
        esac
        local pid=$!
        local port=""
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
        local report cpu0 cpu1
        cpu0="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
        report="$(taskset -c "$last_core" wrk -t1 -c"$conns" -d"${secs}s" --latency \
          "http://127.0.0.1:$port/" 2>&1)"
        cpu1="$(awk '{print $14 + $15}' "/proc/$pid/stat")"
        kill "$pid"
        wait "$pid" 2>/dev/null || true
        rm -f "$port_file"
        local rps p99
        rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$report")"
        p99="$(awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}' <<<"$report")"
        local errors
        errors="$(awk '/Socket errors|Non-2xx/ {print}' <<<"$report" | tr '\n' ' ')"
        # Server CPU per request (clock ticks are 10 ms): what a request costs the server itself,
        # which wrk's own ceiling on one core does not hide.
        local cpu_us
        cpu_us="$(awk -v t="$((cpu1 - cpu0))" -v r="${rps:-0}" -v s="$secs" -v hz="$(getconf CLK_TCK)" \
          'BEGIN { printf "%.2f", (r > 0 ? t / hz * 1e6 / (r * s) : 0) }')"
        echo "http $server conns=$conns run=$run rps=${rps:-0} p99_ms=${p99:-0} cpu_us_per_req=$cpu_us ${errors}" | tee -a "$out"
      done
    done
  done
}
