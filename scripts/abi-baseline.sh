#!/usr/bin/env bash
# The ABI baseline of libmemberlist.so.0 (abi/libmemberlist.abi), read with libabigail.
#   scripts/abi-baseline.sh update BUILD_DIR|LIBRARY  # at a release: rewrite the baseline
#   scripts/abi-baseline.sh check  BUILD_DIR|LIBRARY  # ctest capi.abi_baseline: only additions
# Builds nothing: BUILD_DIR must hold a RelWithDebInfo or Debug build (debug info) of the
# memberlist target. Only what include/memberlist.h declares is compared (the headers dir
# restriction keeps the library's internal C++ types out). See docs/abi.md, "ABI baseline".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
baseline="$root/abi/libmemberlist.abi"
suppr="$root/abi/abidiff.suppr"
skip=77 # ctest SKIP_RETURN_CODE

mode=${1:-}
target=${2:-}
if [ -z "$mode" ] || [ -z "$target" ] || [ $# -ne 2 ]; then
  echo "usage: $0 update|check BUILD_DIR|LIBRARY" >&2
  exit 2
fi
lib="$target"
[ -d "$target" ] && lib="$target/src/capi/libmemberlist.so"
if [ ! -f "$lib" ]; then
  echo "abi-baseline: no library at $lib (build the memberlist target first)" >&2
  exit 2
fi

if ! command -v abidw >/dev/null || ! command -v abidiff >/dev/null; then
  echo "abi-baseline: SKIPPED: abidw/abidiff not installed (Debian: abigail-tools;" \
       "scripts/install-deps.sh installs it)"
  [ "$mode" = check ] && exit $skip
  exit 1
fi
# Without DWARF abidiff sees symbol names only (exported_symbols already checks those).
if ! readelf -S "$lib" | grep '\.debug_info' >/dev/null; then
  echo "abi-baseline: SKIPPED: $lib has no debug info (build RelWithDebInfo or Debug)"
  [ "$mode" = check ] && exit $skip
  exit 1
fi

case "$mode" in
  update)
    # No absolute paths, no source locations, hashed type ids: the file depends only on the
    # ABI, not on where or when it was built.
    tmp=$(mktemp)
    trap 'rm -f "$tmp"' EXIT
    abidw --headers-dir "$root/include" --drop-private-types --exported-interfaces-only \
      --drop-undefined-syms --no-corpus-path --no-comp-dir-path --no-show-locs --no-elf-needed \
      --type-id-style hash --out-file "$tmp" "$lib"
    # Translation units are named by absolute source path: make them relative to the tree.
    sed "s|path='$root/|path='|" "$tmp" > "$baseline"
    echo "abi-baseline: wrote $baseline ($(grep -c '<elf-symbol ' "$baseline") symbols)"
    ;;
  check)
    # abidiff's status is a bitmask: 1 error, 2 usage error, 4 ABI change, 8 incompatible
    # change. abidiff.suppr hides new functions and variables; whatever is left, even a bare
    # 4 (a changed parameter or field type is a 4 without 8), fails.
    # No --headers-dir here: the baseline is already restricted to the header, and since it
    # has no source locations abidiff would take its types as private and hide their changes.
    set +e
    abidiff --suppressions "$suppr" --exported-interfaces-only --no-corpus-path \
      "$baseline" "$lib"
    rc=$?
    set -e
    if [ $rc -ne 0 ]; then
      echo "abi-baseline: FAILED (abidiff status $rc): the library's ABI differs from" \
           "abi/libmemberlist.abi by more than additions (see docs/abi.md)"
      exit 1
    fi
    echo "abi-baseline: no change but additions against abi/libmemberlist.abi"
    ;;
  *)
    echo "usage: $0 update|check BUILD_DIR|LIBRARY" >&2
    exit 2
    ;;
esac
