#!/bin/sh
# Tests of the memberlist-agent program (run by ctest):
#   agent.sh demo AGENT     the demo exits 0 and shows joins, suspect/dead, left, final table
#   agent.sh signal AGENT   two agents; SIGTERM makes one leave gracefully, the other sees it
#   agent.sh secure AGENT   --key (hex and base64 of one key) + --label: two agents join; a
#                           wrong key or another label cannot; a malformed key is refused
#   agent.sh reconnect AGENT  --reconnect-interval: b is killed, a marks it dead; b restarts
#                           at its address without --join, and a reconnects to it well
#                           before the default 30 s interval; bad values are refused
set -u
step=$1 agent=$2
fail() { echo "FAIL: $*" >&2; [ -n "${work:-}" ] && for f in "$work"/*.out; do echo "== $f"; cat "$f"; done; exit 1; }
work=$(mktemp -d)
trap 'kill $pa $pb 2>/dev/null; rm -rf "$work"' EXIT
pa=""; pb=""
key_hex=000102030405060708090a0b0c0d0e0f
key_b64=AAECAwQFBgcICQoLDA0ODw==

# Waits up to $3 seconds (default 30) for a line matching $2 in file $1.
wait_for() {
  i=0
  while ! grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt $((${3:-30} * 10)) ] && return 1
    sleep 0.1
  done
}

case "$step" in
demo)
  "$agent" --help | grep -q "demo" || fail "--help"
  "$agent" demo --help | grep -q -- "--nodes" || fail "demo --help"
  "$agent" bogus >/dev/null 2>&1 && fail "an unknown command must fail"
  timeout 120 "$agent" demo >"$work/demo.out" 2>&1 || fail "demo exited with $?"
  cat "$work/demo.out"
  for pattern in "all 5 nodes see 5 members" "DEAD after" "LEFT after" "final membership" \
                 "demo finished"; do
    grep -q "$pattern" "$work/demo.out" || fail "demo output lacks '$pattern'"
  done
  # the final table lists node-0..node-2 and not the dead or left nodes
  sed -n '/final membership/,$p' "$work/demo.out" > "$work/table.out"
  for n in node-0 node-1 node-2; do grep -q "$n " "$work/table.out" || fail "$n missing from table"; done
  grep -q "node-3 \|node-4 " "$work/table.out" && fail "dead/left node in the final table"
  echo "demo: ok"
  ;;
signal)
  "$agent" agent --help | grep -q -- "--bind" || fail "agent --help"
  "$agent" agent --name x >/dev/null 2>&1 && fail "--bind is required"
  "$agent" agent --name x --bind nonsense >/dev/null 2>&1 && fail "a bad --bind must fail"
  "$agent" agent --name a --bind 127.0.0.1:0 --preset local >"$work/a.out" 2>&1 &
  pa=$!
  wait_for "$work/a.out" "running at" || fail "agent a did not start"
  addr=$(sed -n 's/.*running at \([^ ]*\).*/\1/p' "$work/a.out" | head -n1)
  "$agent" agent --name b --bind 127.0.0.1:0 --preset local --join "$addr" >"$work/b.out" 2>&1 &
  pb=$!
  wait_for "$work/a.out" "join   b " || fail "a did not see b join"
  wait_for "$work/b.out" "join   a " || fail "b did not see a join"
  kill -TERM $pb
  wait $pb; rc=$?
  [ $rc -eq 0 ] || fail "agent b exited with $rc after SIGTERM"
  grep -q "leaving" "$work/b.out" || fail "b did not leave"
  wait_for "$work/a.out" "leave  b .*(left)" || fail "a did not see b leave"
  kill -INT $pa
  wait $pa; rc=$?
  [ $rc -eq 0 ] || fail "agent a exited with $rc after SIGINT"
  pa=""; pb=""
  cat "$work/a.out" "$work/b.out"
  echo "signal: ok"
  ;;
secure)
  "$agent" agent --help | grep -q -- "--key" || fail "agent --help lacks --key"
  "$agent" agent --name x --bind 127.0.0.1:0 --key "bad*key" >"$work/x.out" 2>&1
  [ $? -eq 2 ] || fail "a malformed --key must fail with 2"
  grep -q "not hex or base64" "$work/x.out" || fail "no message for a malformed key"
  "$agent" agent --name x --bind 127.0.0.1:0 --key AAECAw== >"$work/x.out" 2>&1
  [ $? -eq 2 ] || fail "a 4-byte --key must fail with 2"
  "$agent" agent --name a --bind 127.0.0.1:0 --preset local --key $key_hex --label blue \
    >"$work/a.out" 2>&1 &
  pa=$!
  wait_for "$work/a.out" "running at" || fail "agent a did not start"
  addr=$(sed -n 's/.*running at \([^ ]*\).*/\1/p' "$work/a.out" | head -n1)
  "$agent" agent --name b --bind 127.0.0.1:0 --preset local --key $key_b64 --label blue \
    --join "$addr" >"$work/b.out" 2>&1 &
  pb=$!
  wait_for "$work/a.out" "join   b " || fail "a did not see b join"
  timeout 60 "$agent" agent --name c --bind 127.0.0.1:0 --preset local \
    --key 0f0e0d0c0b0a09080706050403020100 --label blue --join "$addr" >"$work/c.out" 2>&1
  [ $? -eq 1 ] || fail "a wrong key must fail the join"
  grep -q "join:" "$work/c.out" || fail "no join error for a wrong key"
  timeout 60 "$agent" agent --name d --bind 127.0.0.1:0 --preset local --key $key_hex \
    --label green --join "$addr" >"$work/d.out" 2>&1
  [ $? -eq 1 ] || fail "another label must fail the join"
  grep -q "join   [cd] " "$work/a.out" && fail "a let in a node with a wrong key or label"
  kill -TERM $pb; wait $pb
  kill -TERM $pa; wait $pa
  pa=""; pb=""
  cat "$work/a.out" "$work/c.out" "$work/d.out"
  echo "secure: ok"
  ;;
reconnect)
  "$agent" agent --help | grep -q -- "--reconnect-interval" || fail "agent --help lacks --reconnect-interval"
  "$agent" agent --name x --bind 127.0.0.1:0 --reconnect-interval soon >/dev/null 2>&1
  [ $? -eq 2 ] || fail "a malformed --reconnect-interval must fail with 2"
  "$agent" agent --name x --bind 127.0.0.1:0 --reconnect-seeds 2 >/dev/null 2>&1
  [ $? -eq 2 ] || fail "--reconnect-seeds 2 must fail with 2"
  "$agent" agent --name a --bind 127.0.0.1:0 --preset local --reconnect-interval 200 \
    >"$work/a.out" 2>&1 &
  pa=$!
  wait_for "$work/a.out" "running at" || fail "agent a did not start"
  addr=$(sed -n 's/.*running at \([^ ]*\).*/\1/p' "$work/a.out" | head -n1)
  "$agent" agent --name b --bind 127.0.0.1:0 --preset local --join "$addr" >"$work/b.out" 2>&1 &
  pb=$!
  wait_for "$work/b.out" "running at" || fail "agent b did not start"
  baddr=$(sed -n 's/.*running at \([^ ]*\).*/\1/p' "$work/b.out" | head -n1)
  wait_for "$work/a.out" "join   b " || fail "a did not see b join"
  kill -KILL $pb; wait $pb 2>/dev/null
  wait_for "$work/a.out" "leave  b .*(dead)" 60 || fail "a did not mark b dead"
  # b comes back at the same address and joins nobody: a finds it (default: 30 s).
  "$agent" agent --name b --bind "$baddr" --preset local >"$work/b2.out" 2>&1 &
  pb=$!
  wait_for "$work/b2.out" "running at" || fail "agent b did not restart at $baddr"
  wait_for "$work/b2.out" "join   a " 15 || fail "a did not reconnect to the restarted b"
  wait_for "$work/a.out" "join   b .*(alive)" 15 || fail "a does not see b alive again"
  kill -TERM $pb; wait $pb
  kill -TERM $pa; wait $pa
  pa=""; pb=""
  cat "$work/a.out" "$work/b2.out"
  echo "reconnect: ok"
  ;;
*) fail "unknown step $step" ;;
esac
