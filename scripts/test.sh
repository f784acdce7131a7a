#!/usr/bin/env bash
# The whole test command: installs what is missing, builds, and runs every test suite —
# C++ unit, wire, simulator and runtime tests and the C ABI tests (ctest), a short fuzz run of
# every decoder and framing layer, the same tests again under AddressSanitizer +
# UndefinedBehaviorSanitizer and under ThreadSanitizer, then the Rust, Go and C# bindings'
# suites, then the Debian packages (built, installed with dpkg -i, used, purged). Each suite's
# wall time is printed with its result.
# Exits non-zero if any suite failed.
#   scripts/test.sh                 # build in ./build
#   ML_BUILD_DIR=/tmp/b scripts/test.sh
#   ML_FUZZ_SECONDS=60 scripts/test.sh   # longer fuzz runs (default 10 s per target)
#   ML_SKIP_SANITIZERS=1 scripts/test.sh # skip the sanitizer builds (quicker local runs)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(realpath -m "${ML_BUILD_DIR:-$root/build}")  # absolute: steps cd elsewhere

"$root/scripts/install-deps.sh" || { echo "test.sh: installing dependencies failed"; exit 1; }

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo || exit 1
cmake --build "$build" -j"$(nproc)" || exit 1

passed=0
failed=0
failed_names=()
run_suite() {
  local name=$1; shift
  local start=$SECONDS
  echo "==== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "==== $name: passed in $((SECONDS - start)) s"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "==== $name: FAILED after $((SECONDS - start)) s"
  fi
}

run_suite "ctest (C++ and C ABI)" ctest --test-dir "$build" --output-on-failure --timeout 900
run_suite "fuzz (${ML_FUZZ_SECONDS:-10} s per target)" "$root/fuzz/run.sh" "${ML_FUZZ_SECONDS:-10}"
if [ -z "${ML_SKIP_SANITIZERS:-}" ]; then
  run_suite "ctest under ASan+UBSan" "$root/scripts/test-sanitizers.sh" asan
  run_suite "ctest under TSan" "$root/scripts/test-sanitizers.sh" tsan
fi
if [ -x "$root/scripts/test-bindings.sh" ]; then
  # The bindings build against an installed copy, as their users do.
  run_suite "bindings (Rust, Go, Python, C#)" bash -c 'cmake --install "$1" --prefix "$1/prefix" >/dev/null &&
    ML_BUILD_DIR="$1/bindings" "$2/scripts/test-bindings.sh" "$1/prefix"' _ "$build" "$root"
fi
# The Debian packages, installed into this machine with dpkg -i and removed again (needs root).
run_suite "packages (.deb)" env ML_BUILD_DIR="$build-deb" "$root/scripts/test-packages.sh"

echo
[ $failed -eq 0 ] || echo "failed suites: ${failed_names[*]}"
echo "suites: $passed passed, $failed failed"
[ $failed -eq 0 ]
