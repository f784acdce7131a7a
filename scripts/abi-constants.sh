#!/usr/bin/env bash
# The values of the header's constants (abi/constants.txt): abidiff cannot see #define values,
# so this table pins them.
#   scripts/abi-constants.sh update [HEADER]  # rewrite abi/constants.txt (after adding constants)
#   scripts/abi-constants.sh check  [HEADER]  # ctest capi.abi_constants: fails on a changed or
#                                             # removed constant; new ones pass (and are listed)
# Every object-like ML_ macro with an integer value is in it, evaluated by the C compiler ($CC,
# default cc), except ML_VERSION_MAJOR/MINOR/PATCH, which change at every release, and
# ML_CALLBACKS_VERSION and ML_TRANSPORT_VERSION, the newest versions (ML_CALLBACKS_VERSION_<n> are pinned). See
# docs/abi.md, "ABI baseline".
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
table="$root/abi/constants.txt"
mode=${1:-}
header=${2:-$root/include/memberlist.h}
cc=${CC:-cc}
if [ "$mode" != update ] && [ "$mode" != check ] || [ $# -gt 2 ]; then
  echo "usage: $0 update|check [HEADER]" >&2
  exit 2
fi
[ -f "$header" ] || { echo "abi-constants: no header at $header" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Object-like macros only (a name followed by blank space, not by "("); the export and
# deprecation macros expand to attributes, not integers.
names=$(sed -n 's/^#define \(ML_[A-Z0-9_]*\)[ \t][ \t]*[^ \t].*/\1/p' "$header" |
        grep -Ev '^ML_(API|EXPERIMENTAL_API|VERSION_MAJOR|VERSION_MINOR|VERSION_PATCH|CALLBACKS_VERSION|TRANSPORT_VERSION)$' | sort -u)
{
  echo '#include <stdio.h>'
  echo "#include \"$header\""
  echo 'int main(void) {'
  for n in $names; do
    echo "  printf(\"%s %lld\\n\", \"$n\", (long long)($n));"
  done
  echo '  return 0;'
  echo '}'
} > "$tmp/constants.c"
"$cc" -std=c99 -o "$tmp/constants" "$tmp/constants.c"
"$tmp/constants" | LC_ALL=C sort > "$tmp/now.txt"

case "$mode" in
  update)
    { echo "# ML_ constants of include/memberlist.h and their values: scripts/abi-constants.sh"
      cat "$tmp/now.txt"; } > "$table"
    echo "abi-constants: wrote $table ($(wc -l < "$tmp/now.txt") constants)"
    ;;
  check)
    grep -v '^#' "$table" | LC_ALL=C sort > "$tmp/then.txt"
    # Lines of the table missing now: a constant removed or given another value.
    changed=$(LC_ALL=C comm -23 "$tmp/then.txt" "$tmp/now.txt")
    added=$(LC_ALL=C comm -13 "$tmp/then.txt" "$tmp/now.txt")
    if [ -n "$added" ]; then
      echo "abi-constants: new constants (record them with 'scripts/abi-constants.sh update'):"
      echo "$added" | sed 's/^/  /'
    fi
    if [ -n "$changed" ]; then
      echo "abi-constants: FAILED: constants changed or removed (recorded value, then now):"
      while read -r name value; do
        echo "  $name: $value -> $(awk -v n="$name" '$1 == n { print $2 }' "$tmp/now.txt")"
      done <<< "$changed"
      exit 1
    fi
    echo "abi-constants: all $(wc -l < "$tmp/then.txt") recorded constants unchanged"
    ;;
esac
