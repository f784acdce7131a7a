#!/bin/sh
# Side-by-side benchmarks of libmemberlist against hashicorp/memberlist (docs/benchmarks.md).
# Installs golang-go and golang-github-hashicorp-memberlist-dev if missing (needs root).
# Usage: scripts/bench.sh [--quick] [--n 8,32,...] [--presets local,lan] [--repeat K] [--study K]
#        scripts/bench.sh --soak 2000   (only the soak: ours at 2000 nodes, Go at 250, 500, ...)
#        (all flags: tools/bench/run.py --help)
set -eu
cd "$(dirname "$0")/.."
if [ ! -d /usr/share/gocode/src/github.com/hashicorp/memberlist ] || ! command -v go >/dev/null; then
  # The Go side: Debian's hashicorp/memberlist 0.2.2 (GOPATH mode, no network needed).
  echo "bench.sh: installing golang-go and golang-github-hashicorp-memberlist-dev" >&2
  apt-get update -qq && apt-get install -y -q -o DPkg::Lock::Timeout=600 \
    golang-go golang-github-hashicorp-memberlist-dev >/dev/null
fi
exec python3 tools/bench/run.py "$@"
