#!/bin/sh
# What ML_API and ML_DEPRECATED expand to for each kind of build (docs/abi.md, "Export and
# deprecation macros"), read from the preprocessor; Windows is simulated by defining _WIN32 and
# _MSC_VER, which is all the header looks at.
# Usage: export_macros.sh C_COMPILER INCLUDE_DIR
cc=$1 inc=$2
fail=0
expand() { # expected, then -D flags
  want=$1
  shift
  got=$(printf '#include <memberlist.h>\nml_marker: ML_API | ML_DEPRECATED("m")\n' |
        "$cc" -E -P -x c -I"$inc" "$@" - | sed -n 's/^ml_marker: *//p')
  if [ "$got" != "$want" ]; then
    echo "FAIL: with $* ML_API | ML_DEPRECATED expand to '$got', expected '$want'"
    fail=1
  else
    echo "ok: $* -> $got"
  fi
}
expand '__attribute__((visibility("default"))) | __attribute__((deprecated("m")))'
expand '__attribute__((visibility("default"))) | __attribute__((deprecated("m")))' -DML_BUILDING_LIBRARY
expand '| __attribute__((deprecated("m")))' -DML_STATIC
expand '|' -DML_STATIC -DML_NO_DEPRECATION_WARNINGS
expand '__declspec(dllexport) | __declspec(deprecated("m"))' -D_WIN32 -D_MSC_VER=1930 -U__GNUC__ -DML_BUILDING_LIBRARY
expand '__declspec(dllimport) | __declspec(deprecated("m"))' -D_WIN32 -D_MSC_VER=1930 -U__GNUC__
expand '| __declspec(deprecated("m"))' -D_WIN32 -D_MSC_VER=1930 -U__GNUC__ -DML_STATIC
exit $fail
