#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what ucm's build, tests, examples, benchmarks and packaging (scripts/packaging.sh: the
# Debian package, the API reference) need on Debian, from Debian's packages (and the interop
# test's npm packages from the npm registry). Idempotent: installs only what is missing. Needs
# root (or sudo) only when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# libboost1.81-dev (Boost.Asio and Beast for ucm::boost_asio) conflicts with libboost1.74-dev, which
# python3-matplotlib needs (through fonttools, scipy and pythran): installing it removes them, and
# the benchmark report draws its plot without matplotlib.
packages=(cmake ninja-build g++ clang clang-format libclang-rt-14-dev catch2 libbenchmark-dev
          libasio-dev libboost1.81-dev libcpp-httplib-dev libfmt-dev libspdlog-dev pkg-config
          valgrind python3 debhelper lintian doxygen)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The W3C interop test runs OpenTelemetry's own JavaScript propagators.
if [[ -f tests/interop/package-lock.json && ! -d tests/interop/node_modules/@opentelemetry/core ]]; then
  echo "install-deps: installing the interop test's npm packages"
  npm ci --prefix tests/interop --no-audit --no-fund --loglevel=error
fi
