#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks the forms ucm is installed in, each by a build that uses it (scripts/test.sh runs this
# after the presets; the presets' consumer tests check add_subdirectory, find_package after
# `cmake --install` and pkg-config on that prefix):
#   single-include  single_include/ is what scripts/single_include.py generates from include/,
#                   and ucm's core, Task, manager, window, channel, W3C and both-Asios tests
#                   build against it alone (no header of include/ reachable) and pass
#   deb             the Debian package libucm-dev, built with `dpkg-buildpackage -us -uc -b` in a
#                   copy of the tree, is lintian-clean and apt would install it; unpacked into a
#                   scratch root (`dpkg -x`), a user's project builds against it with find_package
#                   and with pkg-config
#   doxygen         the API reference (docs/Doxyfile) builds into build/doxygen without a warning
# Pass step names to run only those. Everything is written under build/packaging and
# build/doxygen.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh

steps=("$@")
if ((${#steps[@]} == 0)); then steps=(single-include deb doxygen); fi
out="$PWD/build/packaging"
version=$(sed -n 's/^project(ucm VERSION \([0-9.]*\) .*/\1/p' CMakeLists.txt)
cxx=${CXX:-g++}

single_include() {
  python3 scripts/single_include.py --check
  local dir="$out/single-include"
  cmake -S tests/single_include -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
  nice cmake --build "$dir" -j2
  # Every ucm header the tests compiled is single_include/'s or a forwarder to it.
  if ninja -C "$dir" -t deps | grep -E "^ +$PWD/include/"; then
    echo "single-include: a header of include/ was reached (above)" >&2
    return 1
  fi
  for test in core_test task_test manager_test window_test fast_path_test channel_test tracing_channel_test w3c_test both_asios_test; do
    if [[ -x "$dir/$test" ]]; then echo "$test: $("$dir/$test" | tail -n 2 | head -n 1)"; fi
  done
}

deb() {
  local dir="$out/deb"
  rm -rf "$dir"
  mkdir -p "$dir/ucm" "$dir/root"
  # The package is built from a copy of the tree as git sees it (tracked and new files, not
  # ignored ones such as build/), so the build leaves the checkout untouched.
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e $f ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -x -C "$dir/ucm"
  local changelog_version
  changelog_version=$(cd "$dir/ucm" && dpkg-parsechangelog -S Version)
  if [[ $changelog_version != "$version" ]]; then
    echo "deb: debian/changelog is at $changelog_version, CMakeLists.txt at $version" >&2
    return 1
  fi
  (cd "$dir/ucm" && nice dpkg-buildpackage -us -uc -b >"$dir/build.log" 2>&1) ||
    { tail -n 40 "$dir/build.log"; return 1; }
  local deb_file="$dir/libucm-dev_${version}_all.deb"
  dpkg-deb --info "$deb_file" | grep -E '^ (Package|Version|Architecture):'
  # lintian refuses to run as root only with a warning on stderr.
  lintian --fail-on error,warning --display-info "$deb_file" 2> >(grep -v 'root privileges' >&2)
  echo "deb: lintian clean ($(basename "$deb_file"))"
  # `apt install ./libucm-dev_*.deb` resolves (simulated: nothing is installed on this machine).
  apt-get install --simulate "$deb_file" | grep -E '^(Inst|Conf) libucm-dev'
  dpkg -x "$deb_file" "$dir/root"
  # find_package(ucm), the package's CMake files (the user's project of tests/consumer).
  cmake -S tests/consumer/project -B "$dir/consumer" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
    -DCMAKE_BUILD_TYPE=Release -DUCM_CONSUMER_MODE=find_package \
    -DCMAKE_PREFIX_PATH="$dir/root/usr" >/dev/null
  grep -qx "ucm_DIR:PATH=$dir/root/usr/share/ucm/cmake" "$dir/consumer/CMakeCache.txt" ||
    { echo "deb: find_package(ucm) did not find the package's files" >&2; return 1; }
  nice cmake --build "$dir/consumer" -j2
  "$dir/consumer/consumer"
  # pkg-config: the package's ucm.pc alone, its prefix moved to the scratch root.
  local flags
  flags=$(PKG_CONFIG_LIBDIR="$dir/root/usr/share/pkgconfig" pkg-config \
    --define-variable=prefix="$dir/root/usr" --cflags --libs ucm)
  echo "deb: pkg-config --cflags --libs ucm: $flags"
  # shellcheck disable=SC2086  # the flags are words
  nice "$cxx" tests/consumer/project/main.cpp $flags -o "$dir/pkg-config-consumer"
  "$dir/pkg-config-consumer"
}

doxygen_reference() {
  rm -rf build/doxygen
  UCM_VERSION="$version" doxygen docs/Doxyfile
  echo "doxygen: build/doxygen/html/index.html"
}

for step in "${steps[@]}"; do
  echo "== packaging: ${step}"
  start=$SECONDS
  case "$step" in
    single-include) single_include ;;
    deb) deb ;;
    doxygen) doxygen_reference ;;
    *) echo "packaging: unknown step ${step} (single-include, deb, doxygen)" >&2; exit 2 ;;
  esac
  echo "== packaging: ${step}: passed in $((SECONDS - start)) s"
done
