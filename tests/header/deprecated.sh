#!/bin/sh
# ML_DEPRECATED works with this compiler: using a deprecated form is diagnosed, naming its
# replacement, and ML_NO_DEPRECATION_WARNINGS silences it.
# Usage: deprecated.sh COMPILER c|c++ STD INCLUDE_DIR SOURCE
cc=$1 lang=$2 std=$3 inc=$4 src=$5
if out=$("$cc" -x "$lang" -std="$std" -Werror=deprecated-declarations -I"$inc" -fsyntax-only "$src" 2>&1); then
  echo "FAIL: $cc accepted a deprecated call without a diagnostic"
  exit 1
fi
case $out in
  *ml_runtime_create*) ;;
  *) echo "FAIL: the diagnostic does not name the replacement:"; echo "$out"; exit 1 ;;
esac
"$cc" -x "$lang" -std="$std" -Wall -Wextra -Werror -DML_NO_DEPRECATION_WARNINGS -I"$inc" \
  -fsyntax-only "$src" || { echo "FAIL: ML_NO_DEPRECATION_WARNINGS did not silence it"; exit 1; }
echo "ok: $cc ($lang, $std) warns on deprecated forms, and not with ML_NO_DEPRECATION_WARNINGS"
