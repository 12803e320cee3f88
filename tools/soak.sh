#!/usr/bin/env bash
# The soak: tools/soak.sh [--minutes N] (default 20; not part of CI).
# Builds bench/soak.cpp (Release) and runs it for N minutes while tools/loadgen drives its HTTP
# server from outside the whole time (keep-alive, 2,000 requests/s over 200 connections, in
# windows of 30 s that must each end with errors=0). The soak samples RSS, open descriptors, live
# green threads and stacks every second and fails on growth after warm-up or on anything lost.
# Writes bench/results/soak.csv and the chart bench/results/soak.png.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
minutes=20
while (($#)); do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    *) echo "usage: tools/soak.sh [--minutes N]" >&2; exit 2 ;;
  esac
done
source "$root/tools/deps.sh"
weft_install_deps "${WEFT_BUILD_PACKAGES[@]}" gnuplot-nox

build="$root/build-soak"
out="$root/bench/results"
mkdir -p "$out"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DWEFT_BUILD_TESTS=OFF \
  -DWEFT_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target weft_soak loadgen

ulimit -n 65536 2>/dev/null || true
log="$out/soak.log"
"$build/bench/weft_soak" --minutes "$minutes" --csv "$out/soak.csv" >"$log" 2>&1 &
soak=$!
port=""
for _ in $(seq 100); do
  port="$(awk '/^listening on/ {print $3}' "$log")"
  [[ -n $port ]] && break
  sleep 0.1
done
if [[ -z $port ]]; then
  echo "soak: the soak program did not start:" >&2
  cat "$log" >&2
  exit 1
fi

load_errors=0 windows=0
# Only windows that end before the soak stops serving (at N minutes) are judged.
last_start=$((SECONDS + minutes * 60 - 40))
while kill -0 "$soak" 2>/dev/null && ((SECONDS < last_start)); do
  report="$("$build/bench/loadgen" --port "$port" --rate 2000 --connections 200 --duration 30 \
    --warmup 1 2>&1)" || true
  kill -0 "$soak" 2>/dev/null || break  # cut off by the soak's end: not judged
  line="$(awk '/^loadgen / {print}' <<<"$report")"
  windows=$((windows + 1))
  if ! grep -q ' errors=0 ' <<<"$line"; then
    load_errors=$((load_errors + 1))
    echo "soak: load window $windows had errors:" >&2
    sed 's/^/  /' <<<"$report" >&2
  fi
done
status=0
wait "$soak" || status=$?
cat "$log"
echo "soak: $windows HTTP load windows of 30 s, $load_errors with errors"

gnuplot <<EOF
set terminal pngcairo size 1000,460 font ",10"
set output "$out/soak.png"
set datafile separator ","
set key autotitle columnhead outside bottom center horizontal
set xlabel "seconds"
set autoscale xfix
set ylabel "RSS (MiB)"
set y2label "descriptors, green threads / 100"
set y2tics
set ytics nomirror
set yrange [0:*]
set y2range [0:*]
set title "weft soak: $minutes min of HTTP under the adversary, channels, timers, sockets, cancellation"
plot "$out/soak.csv" using 1:2 with lines lw 2 title "RSS (MiB)", \
     "" using 1:3 axes x1y2 with lines title "open descriptors", \
     "" using 1:(\$4/100) axes x1y2 with lines title "live green threads / 100"
EOF
echo "soak: chart in $out/soak.png"
((status == 0 && load_errors == 0)) || { echo "soak: FAILED" >&2; exit 1; }
echo "soak: passed"
