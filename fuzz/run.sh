#!/bin/sh
# Builds the libFuzzer targets with clang and runs each for the given seconds (default 10),
# then prints the executions per target. Usage: fuzz/run.sh [seconds]
# Crashes are written to build-fuzz/artifacts/<target>/ and make the script fail.
set -eu
secs=${1:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${ML_FUZZ_BUILD_DIR:-$root/build-fuzz}
cmake -S "$root/fuzz" -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target fuzz_decode fuzz_open_packet fuzz_stream fuzz_seal fuzz_core_packet fuzz_hashicorp fuzz_transport gen_corpus >/dev/null
"$build/gen_corpus" "$build/seeds"
status=0
for target in fuzz_decode fuzz_open_packet fuzz_stream fuzz_seal fuzz_core_packet fuzz_hashicorp fuzz_transport; do
  corpus=$build/corpus/$target
  mkdir -p "$corpus" "$build/artifacts/$target" "$build/seeds/$target"
  log=$build/$target.log
  # The growing corpus lives in the build dir; the seeds are read-only inputs.
  if "$build/$target" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 \
      -artifact_prefix="$build/artifacts/$target/" "$corpus" "$build/seeds/$target" >"$log" 2>&1; then
    result=ok
  else
    result=FAILED; status=1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  echo "$target: ${execs:-?} executions in ${secs}s, $result (log: $log)"
done
exit $status
