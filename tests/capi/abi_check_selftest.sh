#!/usr/bin/env bash
# Proves that the ABI checks catch what they are for. In a scratch copy of the header, abi/ and
# the check scripts, it builds a stand-in libmemberlist.so (every ML_API function of the header
# with an empty body, compiled with debug info as C++, as the library is) and runs the same
# checks ctest runs on the real library:
#   - the unmodified copy passes abidiff against abi/libmemberlist.abi and the constants table
#     (so that each failure below comes from its edit);
#   - a field inserted into ml_callbacks, and two fields swapped, fail abidiff;
#   - a renumbered constant and a removed constant fail scripts/abi-constants.sh (abidiff cannot
#     see #define values: it is shown passing on the renumbered one).
# Usage: abi_check_selftest.sh SRCROOT CXX CC. Exit 77 (skipped) without abidiff.
set -uo pipefail
root=$1 cxx=$2 cc=$3
command -v abidiff >/dev/null && command -v abidw >/dev/null ||
  { echo "SKIPPED: abidiff not installed (Debian: abigail-tools)"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# A fresh scratch tree: include/, abi/, scripts/, cmake/memberlist.map.
fresh() {
  rm -rf "$work/tree"
  mkdir -p "$work/tree/cmake"
  cp -r "$root/include" "$root/abi" "$root/scripts" "$work/tree/"
  cp "$root/cmake/memberlist.map" "$work/tree/cmake/"
}
# The stand-in library from the scratch header.
stub() {
  python3 - "$work/tree/include/memberlist.h" > "$work/stub.cpp" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
print('#include <memberlist.h>')
for decl in re.findall(r'\nML_API [^;]*;', text):
    void = re.match(r'ML_API (ML_DEPRECATED\("[^"]*"\)\s*)?void\s+ml_', decl.strip())
    print(decl.strip()[:-1] + (' {}' if void else ' { return {}; }'))
PY
  "$cxx" -g -shared -fPIC -fvisibility=hidden -Wno-deprecated-declarations \
    -I"$work/tree/include" "$work/stub.cpp" -Wl,--version-script="$work/tree/cmake/memberlist.map" \
    -Wl,-soname,libmemberlist.so.0 -o "$work/libmemberlist.so"
}
abi_check() { bash "$work/tree/scripts/abi-baseline.sh" check "$work/libmemberlist.so" > "$work/out" 2>&1; }
constants_check() {
  CC=$cc bash "$work/tree/scripts/abi-constants.sh" check "$work/tree/include/memberlist.h" > "$work/out" 2>&1
}
edit() { # perl substitution on the scratch header; fails the test if it changed nothing
  cp "$work/tree/include/memberlist.h" "$work/before.h"
  perl -0pi -e "$1" "$work/tree/include/memberlist.h"
  cmp -s "$work/before.h" "$work/tree/include/memberlist.h" && { bad "edit '$1' changed nothing"; return 1; }
  return 0
}

echo "-- control: the unmodified copy passes both checks"
fresh
stub || { bad "the stand-in library does not build"; exit 1; }
if abi_check; then ok "abidiff: unmodified"; else bad "abidiff fails on the unmodified copy"; cat "$work/out"; exit 1; fi
if constants_check; then ok "constants: unmodified"; else bad "constants fail unmodified"; cat "$work/out"; exit 1; fi

echo "-- a field inserted into ml_callbacks"
fresh
edit 's/(  void \*user_data;\n)/$1  uint32_t flags;\n/' && stub
if abi_check; then bad "abidiff passed an inserted field"; else ok "abidiff fails: $(grep -m1 'Functions changes summary' "$work/out")"; fi

echo "-- two fields of ml_callbacks swapped"
fresh
edit 's/(  void \*user_data;\n)(.*?)(  void \(\*user_data_free\)\(void \*user_data\);\n)/$3$2$1/s' && stub
if abi_check; then bad "abidiff passed swapped fields"; else ok "abidiff fails: $(grep -m1 'Functions changes summary' "$work/out")"; fi

echo "-- a renumbered constant"
fresh
edit 's/#define ML_E_TIMEOUT \(-10\)/#define ML_E_TIMEOUT (-15)/' && stub
if abi_check; then echo "note: abidiff passes it (it cannot see #define values)"; else echo "note: abidiff failed:"; cat "$work/out"; fi
if constants_check; then bad "the constants check passed a renumbered ML_E_TIMEOUT"; else ok "constants fail: $(grep -m1 'ML_E_TIMEOUT:' "$work/out")"; fi

echo "-- a removed constant"
fresh
edit 's/#define ML_STATE_LEFT 3\n//'
if constants_check; then bad "the constants check passed a removed ML_STATE_LEFT"; else ok "constants fail on a removed constant"; fi

echo "-- an added constant passes"
fresh
edit 's/(#define ML_STATE_LEFT 3\n)/$1#define ML_STATE_NEW 4\n/'
if constants_check; then ok "constants pass an addition"; else bad "the constants check refused an addition"; cat "$work/out"; fi

[ $fails -eq 0 ] && echo "abi_check_selftest: ok" || echo "abi_check_selftest: $fails failed"
[ $fails -eq 0 ]
