#!/bin/sh
# Tests of the installed copy of libmemberlist (run by ctest):
#   installed.sh install  BUILD PREFIX LIBDIR VERSION CMAKE  cmake --install + file checks
#   installed.sh pkgconfig PREFIX LIBDIR VERSION CC SRCDIR  build + run through pkg-config
#   installed.sh cmake    PREFIX CMAKE SRCDIR WORKDIR       build + run through find_package
# ML_CONSUMER_CFLAGS: extra compiler flags (sanitizer builds pass -fsanitize=... so that the
# sanitizer runtime is loaded first).
set -eu
step=$1; shift
extra=${ML_CONSUMER_CFLAGS:-}
fail() { echo "FAIL: $*" >&2; exit 1; }

case "$step" in
install)
  build=$1 prefix=$2 libdir=$3 version=$4 cmake=$5
  rm -rf "$prefix"
  "$cmake" --install "$build" --prefix "$prefix" >/dev/null || fail "cmake --install"
  for f in include/memberlist.h "$libdir/libmemberlist.so" "$libdir/libmemberlist.so.0" \
           "$libdir/libmemberlist.so.$version" "$libdir/pkgconfig/memberlist.pc" \
           "$libdir/cmake/memberlist/memberlistConfig.cmake" \
           "$libdir/cmake/memberlist/memberlistConfigVersion.cmake" \
           "$libdir/cmake/memberlist/memberlistTargets.cmake"; do
    [ -e "$prefix/$f" ] || fail "not installed: $f"
    echo "installed $f"
  done
  [ "$(readlink "$prefix/$libdir/libmemberlist.so")" = libmemberlist.so.0 ] ||
    fail "libmemberlist.so does not point to the SONAME"
  # Nothing else from the source tree's include/ or src/ may be installed as a header.
  [ "$(find "$prefix/include" -type f | wc -l)" -eq 1 ] || fail "extra headers installed"
  echo "install: ok"
  ;;
pkgconfig)
  prefix=$1 libdir=$2 version=$3 cc=$4 srcdir=$5
  export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
  [ "$(pkg-config --modversion memberlist)" = "$version" ] || fail "pkg-config --modversion"
  cflags=$(pkg-config --cflags memberlist)
  libs=$(pkg-config --libs memberlist)
  static=$(pkg-config --libs --static memberlist)
  echo "cflags: $cflags"; echo "libs: $libs"; echo "libs --static: $static"
  case "$cflags" in *"$prefix/include"*) ;; *) fail "cflags do not point into $prefix" ;; esac
  case "$static" in *-lstdc++*) ;; *) fail "Libs.private lacks -lstdc++" ;; esac
  out="$prefix/pkgconfig_consumer"
  # shellcheck disable=SC2086
  "$cc" -std=c99 -Wall -Wextra -Wpedantic -Werror $extra -I"$srcdir" "$srcdir/pkgconfig_consumer.c" \
    $cflags $libs -Wl,-rpath,"$prefix/$libdir" -o "$out" || fail "compile"
  # The binary must resolve the installed copy, not the build tree's.
  ldd "$out" | grep -q "$prefix/$libdir/libmemberlist.so.0" || fail "not linked to the installed copy"
  "$out"
  ;;
cmake)
  prefix=$1 cmake=$2 srcdir=$3 work=$4
  rm -rf "$work"
  "$cmake" -S "$srcdir/cmake_consumer" -B "$work" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" >/dev/null ||
    fail "configure against the installed package"
  "$cmake" --build "$work" >/dev/null || fail "build"
  ldd "$work/cmake_consumer" | grep -q "$prefix/.*libmemberlist.so.0" || fail "not linked to the installed copy"
  "$work/cmake_consumer"
  ;;
*) fail "unknown step $step" ;;
esac
