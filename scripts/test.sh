#!/usr/bin/env bash
# The whole test command: installs what is missing, builds, and runs every test suite —
# C++ unit, wire, simulator and runtime tests and the C ABI tests (ctest), then the Rust, Go
# and C# bindings' suites. Exits non-zero if any suite failed.
#   scripts/test.sh            # build in ./build
#   ML_BUILD_DIR=/tmp/b scripts/test.sh
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${ML_BUILD_DIR:-$root/build}"

"$root/scripts/install-deps.sh" || { echo "test.sh: installing dependencies failed"; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo || exit 1
cmake --build "$build" -j"$(nproc)" || exit 1

passed=0
failed=0
failed_names=()
run_suite() {
  local name=$1; shift
  echo "==== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failed_names+=("$name")
  fi
}

run_suite "ctest (C++ and C ABI)" ctest --test-dir "$build" --output-on-failure --timeout 900
if [ -x "$root/scripts/test-bindings.sh" ]; then
  run_suite "bindings (Rust, Go, C#)" "$root/scripts/test-bindings.sh" "$build"
fi

echo
[ $failed -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
