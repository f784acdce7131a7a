#!/bin/sh
# Tests of the memberlist-agent program (run by ctest):
#   agent.sh demo AGENT     the demo exits 0 and shows joins, suspect/dead, left, final table
#   agent.sh signal AGENT   two agents; SIGTERM makes one leave gracefully, the other sees it
#   agent.sh secure AGENT   --key (hex and base64 of one key) + --label: two agents join; a
#                           wrong key or another label cannot; a malformed key is refused
#   agent.sh reconnect AGENT  --reconnect-interval: b is killed, a marks it dead; b restarts
#                           at its address without --join, and a reconnects to it well
#                           before the default 30 s interval; bad values are refused
#   agent.sh tcp-only AGENT  --transport tcp-only with --key: three agents join and each sees
#                           3 alive, none has a UDP socket (a sockets agent has, so the check
#                           can fail); garbage on the port is counted and closed; a node
#                           with another key is refused (the "no reply" answer); one killed
#                           is seen dead, one that leaves is seen left; a join to an address
#                           where nothing listens fails with a clear error and status 1
set -u
step=$1 agent=$2
fail() { echo "FAIL: $*" >&2; [ -n "${work:-}" ] && for f in "$work"/*.out; do echo "== $f"; cat "$f"; done; exit 1; }
work=$(mktemp -d)
trap 'kill $pa $pb $pc $px 2>/dev/null; rm -rf "$work"' EXIT
pa=""; pb=""; pc=""; px=""
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
tcp-only)
  "$agent" agent --help | grep -q -- "--transport" || fail "agent --help lacks --transport"
  "$agent" agent --name x --bind 127.0.0.1:0 --transport udp >"$work/x.out" 2>&1
  [ $? -eq 2 ] || fail "an unknown --transport must fail with 2"
  "$agent" agent --name x --bind 0.0.0.0:0 --transport tcp-only >"$work/x.out" 2>&1
  [ $? -eq 2 ] || fail "tcp-only on 0.0.0.0 (nothing to advertise) must fail with 2"
  grep -q "not a specific address" "$work/x.out" || fail "no message for tcp-only on 0.0.0.0"
  # The inodes of process $1's sockets that are in /proc/net/$2 and $2""6 (udp or tcp).
  sockets_of() {
    ls -l /proc/$1/fd 2>/dev/null | sed -n 's/.*socket:\[\([0-9]*\)\].*/\1/p' > "$work/inodes"
    awk 'FNR > 1 { print $10 }' /proc/net/$2 /proc/net/${2}6 2>/dev/null | grep -F -x -f "$work/inodes"
  }
  # The check sees a sockets agent's UDP socket (so it can fail)...
  "$agent" agent --name x --bind 127.0.0.1:0 --preset local >"$work/x.out" 2>&1 &
  px=$!
  wait_for "$work/x.out" "running at" || fail "sockets agent x did not start"
  [ -n "$(sockets_of $px udp)" ] || fail "no UDP socket found for a sockets agent: the check is broken"
  kill -TERM $px; wait $px; px=""
  run() { # name, extra arguments
    n=$1; shift
    "$agent" agent --name $n --bind 127.0.0.1:0 --preset local --transport tcp-only \
      --key $key_hex "$@" >"$work/$n.out" 2>&1 &
  }
  run a; pa=$!
  wait_for "$work/a.out" "running at .*transport tcp-only" || fail "agent a did not start"
  addr=$(sed -n 's/.*running at \([^ ]*\).*/\1/p' "$work/a.out" | head -n1)
  run b --join "$addr"; pb=$!
  run c --join "$addr"; pc=$!
  for o in a b c; do
    for n in a b c; do
      wait_for "$work/$o.out" "join   $n .*(alive)" 60 || fail "$o does not see $n alive"
    done
  done
  # ...and none here: no UDP at all, the TCP listener is there.
  for p in $pa $pb $pc; do
    [ -z "$(sockets_of $p udp)" ] || fail "tcp-only agent $p has a UDP socket"
    [ -n "$(sockets_of $p tcp)" ] || fail "tcp-only agent $p has no TCP socket"
  done
  # Garbage on a's port: a bad kind byte, a 4 GiB length, a sender address that is not
  # ip:port. Each connection is closed and counted; a carries on.
  port=${addr##*:}
  for junk in 'GARBAGE' 'P\011127.0.0.1\377\377\377\377' 'P\005hello\000\000\000\001x'; do
    # cat returns when a closes the connection (or resets it: unread bytes); 124: it did not
    timeout 30 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 3
                        printf "$2" >&3 2>/dev/null; cat <&3 >/dev/null 2>&1; exit 0' _ "$port" "$junk"
    rc=$?
    [ $rc -eq 0 ] || fail "garbage $junk: a did not close the connection ($rc)"
  done
  # Another key: a's library refuses the join, its transport answers "no reply" and e's
  # join fails as refused (ML_E_REJECTED), not as a broken connection.
  timeout 60 "$agent" agent --name e --bind 127.0.0.1:0 --preset local --transport tcp-only \
    --key 0f0e0d0c0b0a09080706050403020100 --join "$addr" >"$work/e.out" 2>&1
  rc=$?
  [ $rc -eq 1 ] || fail "a join with another key must fail with 1, got $rc"
  grep -q "join: .*closed the connection right after our message" "$work/e.out" \
    || fail "a join with another key did not fail as refused"
  grep -q "join   e " "$work/a.out" && fail "a let in a node with another key"
  # A crash: c is killed; a and b mark it dead.
  caddr=$(sed -n 's/.*running at \([^ ]*\).*/\1/p' "$work/c.out" | head -n1)
  kill -KILL $pc; wait $pc 2>/dev/null; pc=""
  wait_for "$work/a.out" "leave  c .*(dead)" 60 || fail "a did not mark c dead"
  wait_for "$work/b.out" "leave  c .*(dead)" 60 || fail "b did not mark c dead"
  # A graceful leave: b goes, a sees it left.
  kill -TERM $pb; wait $pb; rc=$?
  [ $rc -eq 0 ] || fail "agent b exited with $rc after SIGTERM"
  wait_for "$work/a.out" "leave  b .*(left)" 60 || fail "a did not see b leave"
  kill -TERM $pa; wait $pa; rc=$?
  [ $rc -eq 0 ] || fail "agent a exited with $rc after SIGTERM"
  pa=""; pb=""
  bad=$(sed -n 's/.*tcp-only transport: .*bad frames \([0-9]*\)$/\1/p' "$work/a.out")
  [ "${bad:-0}" -ge 3 ] || fail "a counted ${bad:-no} bad frames, not the 3 garbage ones"
  # Nothing listens at c's address any more: a join there fails, clearly.
  timeout 60 "$agent" agent --name d --bind 127.0.0.1:0 --preset local --transport tcp-only \
    --join "$caddr" >"$work/d.out" 2>&1
  rc=$?
  [ $rc -eq 1 ] || fail "a join where nothing listens must fail with 1, got $rc"
  grep -q "join: .*connect to $caddr: Connection refused" "$work/d.out" \
    || fail "no clear error for a join where nothing listens"
  cat "$work/a.out" "$work/b.out" "$work/d.out" "$work/e.out"
  echo "tcp-only: ok"
  ;;
*) fail "unknown step $step" ;;
esac
