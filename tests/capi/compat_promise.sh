#!/bin/sh
# docs/abi.md, "Compatibility promise": within ABI 0 every 0.x is compatible with an older 0.y
# (additions only), and 1.0 is not. The installed CMake package version file, the installed
# pkg-config file and the Rust build script's pkg-config range must all say so.
# Usage: compat_promise.sh PREFIX LIBDIR CMAKE SRCROOT
set -u
prefix=$1 libdir=$2 cmake=$3 root=$4
fail() { echo "compat_promise: FAIL: $*"; exit 1; }
num() { sed -n "s/^#define $1 \([0-9]*\).*/\1/p" "$root/include/memberlist.h"; }
major=$(num ML_VERSION_MAJOR) minor=$(num ML_VERSION_MINOR) abi=$(num ML_ABI_VERSION)
[ -n "$major" ] && [ -n "$minor" ] && [ -n "$abi" ] || fail "versions not found in the header"
[ "$major" = "$abi" ] || fail "ML_VERSION_MAJOR $major is not ML_ABI_VERSION $abi"
next_abi=$((abi + 1))

# CMake: find_package(memberlist X.Y) accepts this package iff the promise says so.
ver="$prefix/$libdir/cmake/memberlist/memberlistConfigVersion.cmake"
[ -f "$ver" ] || fail "no $ver"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/find.cmake" <<'CM'
string(REPLACE "." ";" parts "${FIND}")
list(GET parts 0 PACKAGE_FIND_VERSION_MAJOR)
list(GET parts 1 PACKAGE_FIND_VERSION_MINOR)
set(PACKAGE_FIND_VERSION "${FIND}")
set(PACKAGE_FIND_VERSION_PATCH 0)
include("${VERFILE}")
message("${PACKAGE_VERSION_COMPATIBLE}")
CM
compat() { "$cmake" -DFIND="$1" -DVERFILE="$ver" -P "$tmp/find.cmake" 2>&1; }
for want in "$abi.0 TRUE" "$abi.$minor TRUE" "$abi.$((minor + 1)) FALSE" "$next_abi.0 FALSE"; do
  set -- $want
  got=$(compat "$1")
  [ "$got" = "$2" ] || fail "find_package(memberlist $1): compatible=$got, the promise says $2"
  echo "cmake: find_package(memberlist $1) compatible=$got"
done

# pkg-config: the range every binding asks for is met by the installed file.
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
pkg-config --exists "memberlist >= $major.$minor.0" "memberlist < $next_abi.0.0" ||
  fail "pkg-config: memberlist is not within >= $major.$minor.0, < $next_abi.0.0"
echo "pkg-config: $(pkg-config --modversion memberlist) is within >= $major.$minor.0, < $next_abi.0.0"

# Rust build script: the same range (Go and C# compare with the generated ML_VERSION_* and
# ML_ABI_VERSION at load time, which cannot drift).
rs="$root/bindings/rust/memberlist-sys/build.rs"
grep -q "\"memberlist >= $major.$minor.0\", \"memberlist < $next_abi.0.0\"" "$rs" ||
  fail "$rs does not ask pkg-config for >= $major.$minor.0, < $next_abi.0.0"
echo "rust: build.rs asks for >= $major.$minor.0, < $next_abi.0.0"
echo "compat_promise: ok"
