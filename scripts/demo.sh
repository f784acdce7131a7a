#!/usr/bin/env bash
# Installs what is missing, builds the library and the agent, and runs the demo: a 5-node
# cluster on loopback in one process that shows joins, a failure and a graceful leave.
#   scripts/demo.sh [--nodes N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build="${ML_BUILD_DIR:-$root/build}"
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target memberlist-agent
exec "$build/tools/agent/memberlist-agent" demo "$@"
