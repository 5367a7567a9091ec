#!/usr/bin/env bash
# The lease on etcd beside `etcdctl lock`, on one local etcd started here
# (loopback ports, a data directory on DISK_DIR), in one run:
#
#   1. one acquisition and release per process: `etcdctl lock KEY true`
#      beside bench/etcd's `once` (open a client, acquire, release,
#      close: what `leaserun --lease etcd://... -- true` does to the
#      store) and beside an empty Go program; hyperfine -N, interleaved
#   2. hand-off to a waiting standby: from the holder's last moment to
#      the standby's first, HANDOFF rounds of each
#   3. crash takeover: SIGKILL of the holding process to the standby's
#      first moment, TAKEOVERS rounds of each, session TTL / lease TTL
#      TTL (etcd's session TTL is whole seconds)
#   4. what happens to the child when etcdctl lock's session is lost
#      (observed: the run says what it saw)
#   5. in-process store operations (bench/etcd ops)
#   6. the weight of etcd's client: GODEBUG=inittrace=1 of an empty
#      program with and without client/v3 linked (bench/etcdweight), their
#      start-up (hyperfine -N) and binary sizes
#
# leaserun's own command line does not run etcd:// locations yet (the
# dispatch to a leaserun-etcd binary comes later): steps 1-3 measure the
# store through bench/etcd, which a leaserun-etcd adds a supervisor and a
# child to.
#
#   bench/etcd.sh            full run (a few minutes)
#   QUICK=1 bench/etcd.sh    fewer samples
#
# Environment: DISK_DIR=/var/tmp, ROUNDS=5/2 RUNS=20/10 (hyperfine
# rounds x runs), HANDOFF=20/5, TAKEOVERS=5/2, TTL=2 (seconds).
# Needs etcd and etcdctl (Debian: etcd-server, etcd-client), hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then d_rounds=2 d_runs=10 d_ho=5 d_take=2; else d_rounds=5 d_runs=20 d_ho=20 d_take=5; fi
DISK_DIR=${DISK_DIR:-/var/tmp}
ROUNDS=${ROUNDS:-$d_rounds}
RUNS=${RUNS:-$d_runs}
HANDOFF=${HANDOFF:-$d_ho}
TAKEOVERS=${TAKEOVERS:-$d_take}
TTL=${TTL:-2}

for tool in etcd etcdctl hyperfine; do
	command -v "$tool" >/dev/null || { echo "bench/etcd.sh needs $tool (Debian: etcd-server, etcd-client, hyperfine)" >&2; exit 1; }
done

bin=$(mktemp -d)
work=$(mktemp -d "$DISK_DIR/leaserun-etcd-bench-XXXXXX")
etcd_pid=""
cleanup() {
	[ -n "$etcd_pid" ] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
	rm -rf "$bin" "$work"
}
trap cleanup EXIT

echo "== building bench/etcd and bench/etcdweight (with and without client/v3)"
go build -trimpath -ldflags=-s -o "$bin/bench-etcd" ./bench/etcd
go build -trimpath -ldflags=-s -o "$bin/empty" ./bench/etcdweight
go build -trimpath -ldflags=-s -tags etcdclient -o "$bin/empty-etcdclient" ./bench/etcdweight

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cport=$(free_port)
pport=$(free_port)
etcd --name bench --data-dir "$work/data" \
	--listen-client-urls "http://127.0.0.1:$cport" --advertise-client-urls "http://127.0.0.1:$cport" \
	--listen-peer-urls "http://127.0.0.1:$pport" --initial-advertise-peer-urls "http://127.0.0.1:$pport" \
	--initial-cluster "bench=http://127.0.0.1:$pport" \
	--logger zap --log-outputs "$work/etcd.log" >"$work/etcd.out" 2>&1 &
etcd_pid=$!
ep="127.0.0.1:$cport"
E=(etcdctl --endpoints="$ep")
for _ in $(seq 100); do "${E[@]}" endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
"${E[@]}" endpoint health
echo "etcd $(etcd --version | sed -n 's/etcd Version: //p') on $ep, data in $work ($(df -T "$work" | awk 'NR == 2 { print $2 }')); $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
# stats: min, median, max (ms) of the numbers (ns) on stdin
stats() { sort -n | awk '{ a[NR] = $1 } END { printf "min %.1f ms, median %.1f ms, max %.1f ms (n=%d)", a[1]/1e6, a[int((NR+1)/2)]/1e6, a[NR]/1e6, NR }'; }
now() { date +%s%N; }

echo
echo "== 1. one acquisition and release per process (hyperfine -N, $ROUNDS rounds x $RUNS runs, interleaved)"
for r in $(seq "$ROUNDS"); do
	hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$work/once-$r.json" \
		-n "etcdctl lock KEY true" "etcdctl --endpoints=$ep lock bench-once-etcdctl true" \
		-n "bench/etcd once (the store's part of leaserun -- true)" "$bin/bench-etcd once etcd://$ep/bench-once 10s" \
		-n "empty Go program" "$bin/empty" >/dev/null
done
python3 - "$work" "$ROUNDS" <<'EOF'
import json, sys, statistics
work, rounds = sys.argv[1], int(sys.argv[2])
times = {}
for r in range(1, rounds + 1):
    for res in json.load(open(f"{work}/once-{r}.json"))["results"]:
        times.setdefault(res["command"], []).extend(res["times"])
for name, t in times.items():
    print(f"  {name:55s} min {min(t)*1e3:6.2f} ms  median {statistics.median(t)*1e3:6.2f} ms  (n={len(t)})")
EOF

echo
echo "== 2. hand-off to a waiting standby ($HANDOFF rounds each): holder's last moment -> standby's first"
: >"$work/ho-etcdctl"
: >"$work/ho-lease"
for i in $(seq "$HANDOFF"); do
	# etcdctl lock: the holder's child prints its last moment; the
	# standby's child (date) prints its first.
	"${E[@]}" lock "bench-ho-$i" -- sh -c 'sleep 0.3; date +%s%N' >"$work/h.out" &
	h=$!
	sleep 0.1
	"${E[@]}" lock "bench-ho-$i" -- date +%s%N >"$work/w.out" &
	w=$!
	wait "$h" "$w"
	echo $(($(cat "$work/w.out") - $(cat "$work/h.out"))) >>"$work/ho-etcdctl"
	# The lease: the holder says when it starts to release; the standby
	# when its WaitStore returned.
	"$bin/bench-etcd" hold "etcd://$ep/bench-ho-lease-$i" 10s 300ms >"$work/h.out" &
	h=$!
	sleep 0.1
	"$bin/bench-etcd" wait "etcd://$ep/bench-ho-lease-$i" 10s >"$work/w.out" &
	w=$!
	wait "$h" "$w"
	echo $(($(awk '/acquired/ { print $2 }' "$work/w.out") - $(awk '/releasing/ { print $2 }' "$work/h.out"))) >>"$work/ho-lease"
done
echo "  etcdctl lock (child exits -> next child starts):       $(stats <"$work/ho-etcdctl")"
echo "  lease on etcd (Release begins -> WaitStore returns):  $(stats <"$work/ho-lease")"

echo
echo "== 3. crash takeover, SIGKILL of the holding process -> the standby's first moment ($TAKEOVERS rounds each, TTL ${TTL}s)"
: >"$work/to-etcdctl"
: >"$work/to-lease"
orphans=0
for i in $(seq "$TAKEOVERS"); do
	"${E[@]}" lock --ttl="$TTL" "bench-to-$i" -- sleep 300 &
	h=$!
	sleep 0.5
	"${E[@]}" lock "bench-to-$i" -- date +%s%N >"$work/w.out" &
	w=$!
	sleep 1
	k=$(now)
	kill -KILL "$h"
	wait "$w"
	echo $(($(cat "$work/w.out") - k)) >>"$work/to-etcdctl"
	# The holder's child lives on, holding nothing.
	if pkill -x -f "sleep 300"; then orphans=$((orphans + 1)); fi

	"$bin/bench-etcd" hold "etcd://$ep/bench-to-lease-$i" "${TTL}s" >"$work/h.out" &
	h=$!
	sleep 0.5
	"$bin/bench-etcd" wait "etcd://$ep/bench-to-lease-$i" "${TTL}s" >"$work/w.out" &
	w=$!
	sleep 1
	k=$(now)
	kill -KILL "$h"
	wait "$w" || true
	wait "$h" 2>/dev/null || true
	echo $(($(awk '/acquired/ { print $2 }' "$work/w.out") - k)) >>"$work/to-lease"
done
echo "  etcdctl lock --ttl=$TTL:  $(stats <"$work/to-etcdctl"); the killed holder's child was still running afterwards in $orphans of $TAKEOVERS rounds"
echo "  lease on etcd, TTL ${TTL}s: $(stats <"$work/to-lease") (bound: TTL + 10% = $((TTL * 1100)) ms)"

echo
echo "== 4. etcdctl lock when its session is lost (what the child does)"
observe() { # name, key, command to lose the session
	"${E[@]}" lock --ttl="$TTL" "$2" -- sh -c 'echo started; sleep 6; echo "ran to the end"' >"$work/s.out" 2>&1 &
	local h=$!
	sleep 1
	eval "$3"
	local second="no"
	if timeout 3 "${E[@]}" lock "$2" -- true 2>/dev/null; then second="yes"; fi
	local alive="no"
	if pgrep -x -f "sleep 6" >/dev/null; then alive="yes"; fi
	wait "$h" && rc=0 || rc=$?
	printf '  %-45s child still running: %-3s  second holder got the lock meanwhile: %-3s  etcdctl exit %s; child: %s\n' \
		"$1" "$alive" "$second" "$rc" "$(tail -n 1 "$work/s.out")"
}
observe "session lease revoked (etcdctl lease revoke)" bench-s1 \
	'"${E[@]}" lease revoke "$("${E[@]}" lease list | sed -n 2p)" >/dev/null'
observe "etcd frozen (SIGSTOP) for TTL + 3s" bench-s2 \
	'kill -STOP $etcd_pid; sleep $((TTL + 3)); kill -CONT $etcd_pid; sleep 0.5'
"${E[@]}" lock bench-s3 -- sh -c 'trap "echo child got SIGTERM; exit 143" TERM; sleep 3 & wait; echo "ran to the end"' >"$work/s.out" 2>&1 &
h=$!
sleep 1
kill -TERM "$h"
wait "$h" && rc=0 || rc=$?
printf '  %-45s etcdctl exit %s; child: %s\n' "SIGTERM to etcdctl lock" "$rc" "$(tail -n 1 "$work/s.out")"

echo
echo "== 5. store operations in one process (bench/etcd ops, 200 each)"
"$bin/bench-etcd" ops "etcd://$ep/bench-ops" 200 | sed 's/^/  /'

echo
echo "== 6. the weight of etcd's client/v3 (an empty program with and without it linked)"
for b in empty empty-etcdclient; do
	GODEBUG=inittrace=1 "$bin/$b" 2>"$work/$b.init"
	awk -v b="$b" '/^init / { ms += $5; bytes += $8; allocs += $10; n++ } END { printf "  %-18s package init: %d packages, %.2f ms, %d bytes, %d allocs; ", b, n, ms, bytes, allocs }' "$work/$b.init"
	echo "binary $(($(stat -c %s "$bin/$b") / 1024)) KiB"
done
hyperfine -N --warmup 5 --runs $((RUNS * 5)) -n "empty" "$bin/empty" -n "empty + client/v3" "$bin/empty-etcdclient" \
	--export-json "$work/weight.json" >/dev/null
python3 - "$work/weight.json" <<'EOF'
import json, sys, statistics
for res in json.load(open(sys.argv[1]))["results"]:
    t = res["times"]
    print(f"  start-up of {res['command']:20s} min {min(t)*1e3:6.2f} ms  median {statistics.median(t)*1e3:6.2f} ms")
EOF
