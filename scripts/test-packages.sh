#!/usr/bin/env bash
# Builds the Debian packages (cmake/Package.cmake), checks their contents, installs them into
# this machine with dpkg -i, uses them the way their users do, and removes them again:
#   - libmemberlist0: the .so.0 and its SONAME link, stripped, a shlibs file, dependencies
#     from dpkg-shlibdeps, found by the dynamic linker through ldconfig (no LD_LIBRARY_PATH);
#   - libmemberlist-dev: a C program built against /usr through pkg-config and one through
#     CMake's find_package(memberlist);
#   - memberlist-agent: two agents join and one leaves (tests/capi/agent.sh signal);
#   - memberlist-dbg: gdb finds the library's debug info by its build id.
# Then the same build installed with `cmake --install --prefix` elsewhere: the agent there runs
# through its $ORIGIN-relative RUNPATH, without ldconfig or LD_LIBRARY_PATH.
#
#   scripts/test-packages.sh          # needs root (dpkg -i); builds in ./build-deb
#   ML_BUILD_DIR=/tmp/d scripts/test-packages.sh
#
# The packages are purged on exit, whatever happens, so that no later test picks up a copy in
# /usr. Packages of these names installed before the test are purged too (it says so).
set -euo pipefail
# grep without -q: -q quits at the first match, the writer of the pipe may then die of
# SIGPIPE, and pipefail turns a match into a failure.
quiet() { grep "$@" >/dev/null; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${ML_BUILD_DIR:-$root/build-deb}")  # absolute: steps cd elsewhere
packages=(memberlist-dbg memberlist-agent libmemberlist-dev libmemberlist0)
fail() { echo "test-packages: FAIL: $*" >&2; exit 1; }
step() { echo "---- $*"; }

[ "$(id -u)" -eq 0 ] || fail "needs root: it installs the packages with dpkg -i"
for tool in dpkg-shlibdeps dpkg-deb file readelf objcopy pkg-config cc; do
  command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install dpkg-dev file binutils pkg-config gcc)"
done

purge() {
  local installed=()
  for p in "${packages[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | quiet 'ok installed\|config-files'; then
      installed+=("$p")
    fi
  done
  if [ ${#installed[@]} -gt 0 ]; then
    echo "purging ${installed[*]}"
    dpkg --purge "${installed[@]}" >/dev/null
  fi
}
purge
trap purge EXIT

# ---- build ------------------------------------------------------------------------------------
step "build (RelWithDebInfo, prefix /usr) and cpack -G DEB in $build"
launcher=()
command -v ccache >/dev/null &&
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
  -DML_INSTALL_RPATH=OFF -DML_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
cmake --build "$build" -j"${ML_JOBS:-2}" --target memberlist memberlist-agent >/dev/null
rm -f "$build"/*.deb
(cd "$build" && cpack -G DEB) >"$build/cpack.log" 2>&1 || { cat "$build/cpack.log"; fail "cpack"; }
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build/CMakeCache.txt")
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
libdir=/usr/lib/$multiarch
# Where the dynamic linker finds it: /usr/lib/... or, on a merged /usr, /lib/...
linked="libmemberlist.so.0 => (/usr)?/lib/$multiarch/libmemberlist.so.0"
deb() { ls "$build/$1"_*.deb; }
for p in "${packages[@]}"; do deb "$p" >/dev/null || fail "no package $p"; done
ls -l "$build"/*.deb

# ---- contents ---------------------------------------------------------------------------------
step "contents and control fields"
field() { dpkg-deb -f "$(deb "$1")" "$2"; }
has() { dpkg-deb -c "$(deb "$1")" | awk '{print $6}' | quiet -x "\./${2#/}" || fail "$1 lacks $2"; }
lacks() { dpkg-deb -c "$(deb "$1")" | awk '{print $6}' | quiet "$2" && fail "$1 has $2"; true; }
has libmemberlist0 "$libdir/libmemberlist.so.$version"
has libmemberlist0 "$libdir/libmemberlist.so.0"
lacks libmemberlist0 'libmemberlist\.so$'
lacks libmemberlist0 '/include/'
has libmemberlist-dev "$libdir/libmemberlist.so"
has libmemberlist-dev /usr/include/memberlist.h
has libmemberlist-dev "$libdir/pkgconfig/memberlist.pc"
has libmemberlist-dev "$libdir/cmake/memberlist/memberlistConfig.cmake"
has libmemberlist-dev "$libdir/cmake/memberlist/memberlistTargets.cmake"
lacks libmemberlist-dev "libmemberlist\.so\.$version"
has memberlist-agent /usr/bin/memberlist-agent
dpkg-deb -c "$(deb memberlist-dbg)" | quiet '/usr/lib/debug/\.build-id/../.*\.debug$' ||
  fail "memberlist-dbg has no .build-id debug file"

# dpkg-shlibdeps found what the library and the agent link; the agent depends on the library.
depends=$(field libmemberlist0 Depends)
echo "libmemberlist0 Depends: $depends"
for d in libc6 libstdc++6 libgcc-s1 libssl3 zlib1g; do
  case ", $depends" in *", $d "* | *", $d,"* | *", $d") ;; *) fail "libmemberlist0 does not depend on $d" ;; esac
done
agent_depends=$(field memberlist-agent Depends)
echo "memberlist-agent Depends: $agent_depends"
case "$agent_depends" in *"libmemberlist0 (= $version"*) ;; *) fail "agent does not depend on libmemberlist0" ;; esac
case "$agent_depends" in *libc6*) ;; *) fail "agent has no shlibdeps dependencies" ;; esac
case "$(field libmemberlist-dev Depends)" in *"libmemberlist0 (= $version"*) ;; *) fail "-dev does not depend on libmemberlist0" ;; esac

# The shlibs file: any program built against this version runs with a later 0.x (docs/abi.md).
shlibs=$(dpkg-deb -I "$(deb libmemberlist0)" shlibs)
echo "shlibs: $shlibs"
[ "$shlibs" = "libmemberlist 0 libmemberlist0 (>= $(field libmemberlist0 Version))" ] ||
  fail "shlibs file"
dpkg-deb -I "$(deb libmemberlist0)" postinst | quiet ldconfig || fail "no ldconfig in postinst"

# ---- install ----------------------------------------------------------------------------------
step "dpkg -i"
dpkg -i "$(deb libmemberlist0)" "$(deb libmemberlist-dev)" "$(deb memberlist-agent)" \
  "$(deb memberlist-dbg)" >/dev/null
dpkg -s "${packages[@]}" | grep -c '^Status: install ok installed' | quiet -x 4 ||
  fail "not all four packages are installed"
ldconfig -p | grep -Eq "libmemberlist.so.0 .*=> (/usr)?/lib/$multiarch/libmemberlist.so.0" ||
  fail "ldconfig does not know libmemberlist.so.0"
lib=$(readlink -f "$libdir/libmemberlist.so.0")
readelf -S --wide "$lib" | quiet '\.debug_' && fail "the installed library is not stripped"
readelf -S --wide "$lib" | quiet '\.gnu_debuglink' || fail "the installed library has no debuglink"
readelf -d /usr/bin/memberlist-agent | quiet 'R\(UN\)\?PATH' && fail "/usr/bin/memberlist-agent has an RPATH"
echo "installed: $lib ($(stat -c %s "$lib") bytes, stripped)"

work=$(mktemp -d)
trap 'rm -rf "$work"; purge' EXIT
run_clean() { env -u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u CMAKE_PREFIX_PATH "$@"; }

step "a C program against /usr through pkg-config"
[ "$(run_clean pkg-config --modversion memberlist)" = "$version" ] || fail "pkg-config --modversion"
[ "$(run_clean pkg-config --variable=prefix memberlist)" = /usr ] || fail "memberlist.pc's prefix is not /usr"
# shellcheck disable=SC2046
run_clean cc -std=c99 -Wall -Wextra -Werror -I"$root/tests/capi" \
  "$root/tests/capi/pkgconfig_consumer.c" $(run_clean pkg-config --cflags --libs memberlist) \
  -o "$work/pkgconfig_consumer"
ldd "$work/pkgconfig_consumer" | grep -Eq "$linked" ||
  fail "the pkg-config consumer does not use $libdir"
run_clean "$work/pkgconfig_consumer"

step "a C program against /usr through find_package(memberlist)"
run_clean cmake -S "$root/tests/capi/cmake_consumer" -B "$work/cmake" >/dev/null
run_clean cmake --build "$work/cmake" >/dev/null
grep -q "$libdir/cmake/memberlist" "$work/cmake/CMakeCache.txt" || fail "CMake did not find /usr's package"
ldd "$work/cmake/cmake_consumer" | grep -Eq "$linked" ||
  fail "the CMake consumer does not use $libdir"
run_clean "$work/cmake/cmake_consumer"

step "the agent from /usr/bin"
run_clean sh "$root/tests/capi/agent.sh" signal /usr/bin/memberlist-agent

if command -v gdb >/dev/null; then
  step "gdb finds the debug info in /usr/lib/debug"
  gdb -batch -nx -ex 'info line ml_memberlist_create' "$lib" 2>&1 | tee "$work/gdb.out" | tail -n 1
  grep -q 'memberlist.cpp' "$work/gdb.out" || fail "gdb found no line info for the library"
fi

step "dpkg --purge"
purge
[ ! -e "$libdir/libmemberlist.so.0" ] && [ ! -e /usr/include/memberlist.h ] &&
  [ ! -e /usr/bin/memberlist-agent ] || fail "files left in /usr after purge"
ldconfig -p | quiet libmemberlist && fail "ldconfig still lists libmemberlist after purge"

# ---- another prefix ---------------------------------------------------------------------------
# The same build, installed elsewhere with an $ORIGIN-relative RUNPATH (ML_INSTALL_RPATH=ON, the
# default): the agent finds the library next to itself, no ldconfig needed.
step "cmake --install --prefix elsewhere: the agent runs through its RUNPATH"
cmake -S "$root" -B "$build" -DML_INSTALL_RPATH=ON >/dev/null
cmake --build "$build" -j"${ML_JOBS:-2}" --target memberlist memberlist-agent >/dev/null
prefix=$work/usr/local
# A relative --prefix, as people type it: the pkg-config file must still say where it is.
(cd "$work" && cmake --install "$build" --prefix usr/local >/dev/null)
pc_prefix=$(sed -n 's/^prefix=//p' "$prefix/lib/$multiarch/pkgconfig/memberlist.pc")
[ "$pc_prefix" = "$prefix" ] || fail "memberlist.pc says prefix=$pc_prefix, not $prefix"
runpath=$(readelf -d "$prefix/bin/memberlist-agent" | sed -n 's/.*RUNPATH.*\[\(.*\)\]/\1/p')
echo "RUNPATH: $runpath"
[ "$runpath" = "\$ORIGIN/../lib/$multiarch" ] || fail "RUNPATH is '$runpath'"
agent_libs=$(env -u LD_LIBRARY_PATH ldd "$prefix/bin/memberlist-agent")
echo "$agent_libs" | quiet -F "libmemberlist.so.0 => $prefix/bin/../lib/$multiarch/libmemberlist.so.0" ||
  fail "the agent does not find the library through its RUNPATH; ldd says: $agent_libs"
run_clean sh "$root/tests/capi/agent.sh" signal "$prefix/bin/memberlist-agent"

echo "packages: all checks passed"
