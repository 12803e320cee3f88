#!/usr/bin/env bash
# Installs the Debian packages weft's build, tests and benchmarks need, only those missing.
# Sourced by tools/test.sh and tools/bench.sh; usage: weft_install_deps pkg...
weft_install_deps() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  echo "weft: installing ${missing[*]}"
  local sudo=""
  ((EUID != 0)) && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || $sudo apt-get update
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

WEFT_BUILD_PACKAGES=(build-essential cmake ninja-build pkg-config
  libboost-context-dev libjemalloc-dev libtbb-dev libgtest-dev libbenchmark-dev libssl-dev spin
  liburing-dev)
