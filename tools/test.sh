#!/usr/bin/env bash
# The test command: installs what is missing, then builds and runs the whole suite three times:
# a normal build, an ASan+UBSan build and a TSan build. Exits non-zero on the first failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/deps.sh"
weft_install_deps "${WEFT_BUILD_PACKAGES[@]}"

jobs="$(nproc)"
run_suite() {
  local name="$1"
  shift
  local dir="$root/build-test-$name"
  echo "==== weft tests: $name build ===="
  cmake -S "$root" -B "$dir" -G Ninja -DWEFT_BUILD_BENCH=OFF "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" -j "$jobs" --output-on-failure --timeout 600
}

start=$SECONDS
run_suite release -DCMAKE_BUILD_TYPE=RelWithDebInfo
# Sanitizer builds: the runtime falls back to malloc so the sanitizers see every allocation.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  run_suite asan -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=address,undefined
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
  run_suite tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=thread
echo "==== weft tests: all three builds passed in $((SECONDS - start)) s ===="
