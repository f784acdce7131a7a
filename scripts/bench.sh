#!/bin/sh
# Side-by-side benchmarks of libmemberlist against hashicorp/memberlist (docs/benchmarks.md).
# Needs: apt-get install golang-go golang-github-hashicorp-memberlist-dev
# Usage: scripts/bench.sh [--quick] [--n 8,32,...] [--presets local,lan] [--repeat K] [--study K]
#        scripts/bench.sh --soak 2000   (only the soak: ours at 2000 nodes, Go at 250, 500, ...)
#        (all flags: tools/bench/run.py --help)
set -eu
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/gocode/src/github.com/hashicorp/memberlist ] || ! command -v go >/dev/null; then
  echo "bench.sh: install golang-go and golang-github-hashicorp-memberlist-dev first" >&2
  exit 1
fi
exec python3 tools/bench/run.py "$@"
