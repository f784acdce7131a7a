#!/usr/bin/env bash
# Builds the library and every C/C++ test with sanitizers and runs them.
#   scripts/test-sanitizers.sh asan   # AddressSanitizer + UndefinedBehaviorSanitizer (CI runs it)
#   scripts/test-sanitizers.sh tsan   # ThreadSanitizer
# The two scale tests (1,000 simulated nodes, 200 real ones) are left out: under a sanitizer
# they measure the sanitizer, not the library. Everything else runs.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kind=${1:-asan}
case "$kind" in
  asan) sanitize=address,undefined ;;
  tsan) sanitize=thread ;;
  *) echo "usage: $0 asan|tsan" >&2; exit 2 ;;
esac
build="${ML_SANITIZER_BUILD_DIR:-$root/build-$kind}"

"$root/scripts/install-deps.sh" || exit 1
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DML_SANITIZE="$sanitize" \
  -DCMAKE_CXX_FLAGS="-O1" -DCMAKE_C_FLAGS="-O1" || exit 1
cmake --build "$build" -j"$(nproc)" || exit 1

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
ctest --test-dir "$build" --output-on-failure --timeout 900 \
  -E 'ThousandNodesConverge|TwoHundredNodesOnTwoThreads'
