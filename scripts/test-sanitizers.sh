#!/usr/bin/env bash
# Builds the library and every C/C++ test with sanitizers and runs them (scripts/test.sh runs both).
#   scripts/test-sanitizers.sh asan   # AddressSanitizer + UndefinedBehaviorSanitizer
#   scripts/test-sanitizers.sh tsan   # ThreadSanitizer
# The two scale tests (1,000 simulated nodes, 200 real ones) are left out: under a sanitizer
# they measure the sanitizer, not the library. Everything else runs.
# A sanitizer report fails the test it happened in (halt_on_error). There are no TSan
# suppressions: every report so far was a real bug and was fixed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
kind=${1:-asan}
flags="-O1"
case "$kind" in
  asan) sanitize=address,undefined ;;
  tsan)
    sanitize=thread
    # GCC warns that TSan does not model atomic_thread_fence, at every Boost.Asio handler
    # (its fenced blocks; its queues are mutex-protected, which TSan does model): noise.
    "${CXX:-c++}" --version 2>/dev/null | grep -i clang >/dev/null || flags="$flags -Wno-tsan"
    ;;
  *) echo "usage: $0 asan|tsan" >&2; exit 2 ;;
esac
build="${ML_SANITIZER_BUILD_DIR:-$root/build-$kind}"

"$root/scripts/install-deps.sh" || exit 1
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DML_SANITIZE="$sanitize" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="-O1" || exit 1

# TSan runtimes older than LLVM 18's (GCC 12's libtsan2, clang 14's) assume at most 28 bits
# of mmap randomisation; kernels set to more (vm.mmap_rnd_bits = 32, as on Ubuntu 24.04) make
# every TSan program die at start with "unexpected memory mapping". A tiny TSan program, built
# with the configured compiler, tells whether that happens here; if so the tests run with
# address randomisation off (setarch -R, inherited by ctest's children), which needs the
# personality syscall (some container seccomp profiles refuse it: then lower mmap_rnd_bits).
wrap=()
if [ "$kind" = tsan ]; then
  cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
  probe="$build/tsan-probe"
  printf '#include <thread>\nint main() { std::thread([] {}).join(); }\n' |
    "$cxx" -x c++ -fsanitize=thread -o "$probe" - || exit 1
  if ! "$probe" >/dev/null 2>&1; then
    if setarch "$(uname -m)" -R "$probe" >/dev/null 2>&1; then
      echo "test-sanitizers: TSan needs address randomisation off here (vm.mmap_rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null)): running under setarch -R"
      wrap=(setarch "$(uname -m)" -R)
    else
      "$probe"
      echo "test-sanitizers: TSan programs cannot run here; try 'sudo sysctl vm.mmap_rnd_bits=28'" >&2
      exit 1
    fi
  fi
fi

cmake --build "$build" -j"$(nproc)" || exit 1

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
# Not the netns fault scenarios (label faults): they time real protocol behaviour against
# the formula's bounds, which a sanitizer's slowdown would stretch; the plain run has them.
"${wrap[@]}" ctest --test-dir "$build" --output-on-failure --timeout 900 \
  -E 'ThousandNodesConverge|TwoHundredNodesOnTwoThreads' -LE faults
