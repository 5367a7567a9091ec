#!/usr/bin/env bash
# leaserun on etcd beside `etcdctl lock`, on one local etcd started here
# (loopback ports, a data directory on DISK_DIR), in one run:
#
#   1. `-- true`: `leaserun --lease etcd://... -- true` beside
#      `etcdctl lock KEY true`, beside bench/etcd's `once` (the store's
#      part alone: open a client, acquire, release), a file lease and an
#      empty Go program; hyperfine -N, the variants interleaved
#   2. hand-off to a waiting standby: from the holder's child's last
#      moment to the standby's child's first, HANDOFF rounds of each
#   3. crash takeover: SIGKILL of the holding wrapper to the standby's
#      child's first moment, TAKEOVERS rounds of each (session TTL and
#      --ttl: TTL seconds); and whether the killed holder's child lives on
#   4. what happens to the child when the session or lease is lost, for
#      both (observed: the run says what it saw)
#   5. in-process store operations (bench/etcd ops)
#   6. the weight of etcd's client: GODEBUG=inittrace=1 of an empty
#      program with and without client/v3 linked (bench/etcdweight), their
#      start-up (hyperfine -N) and the binaries' sizes
#
#   bench/etcd.sh            full run (a few minutes)
#   QUICK=1 bench/etcd.sh    fewer samples
#
# Environment: DISK_DIR=/var/tmp, ROUNDS=5/2 RUNS=20/10 (hyperfine
# rounds x runs), HANDOFF=20/5, TAKEOVERS=5/2, TTL=2 (seconds).
# Needs etcd and etcdctl (Debian: etcd-server, etcd-client), hyperfine,
# python3.
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
	if [ -n "$etcd_pid" ]; then kill "$etcd_pid" 2>/dev/null; wait "$etcd_pid" 2>/dev/null || true; fi
	rm -rf "$bin" "$work"
}
trap cleanup EXIT

echo "== building leaserun and leaserun-etcd (scripts/build.sh), bench/etcd and bench/etcdweight (with and without client/v3)"
scripts/build.sh "$bin/leaserun" >/dev/null
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
echo "== 1. -- true: one acquisition and release per process (hyperfine -N, $ROUNDS rounds x $RUNS runs, interleaved)"
L="$bin/leaserun"
for r in $(seq "$ROUNDS"); do
	hyperfine -N --warmup 2 --runs "$RUNS" --export-json "$work/once-$r.json" \
		-n "etcdctl lock KEY true" "etcdctl --endpoints=$ep lock bench-once-etcdctl true" \
		-n "leaserun --lease etcd://... -- true" "$L --lease etcd://$ep/bench-once-leaserun -- true" \
		-n "leaserun-etcd --lease etcd://... -- true" "$bin/leaserun-etcd --lease etcd://$ep/bench-once-leaserun-etcd -- true" \
		-n "bench/etcd once (the store alone)" "$bin/bench-etcd once etcd://$ep/bench-once 10s" \
		-n "leaserun --lease FILE -- true" "$L --lease $work/file.lease -- true" \
		-n "empty Go program" "$bin/empty" >/dev/null
done
python3 - "$work" "$ROUNDS" <<'PY'
import json, sys, statistics
work, rounds = sys.argv[1], int(sys.argv[2])
times = {}
for r in range(1, rounds + 1):
    for res in json.load(open(f"{work}/once-{r}.json"))["results"]:
        times.setdefault(res["command"], []).extend(res["times"])
for name, t in times.items():
    print(f"  {name:40s} min {min(t)*1e3:6.2f} ms  median {statistics.median(t)*1e3:6.2f} ms  (n={len(t)})")
PY

echo
echo "== 2. hand-off to a waiting standby ($HANDOFF rounds each): the holder's child's last moment -> the standby's child's first"
: >"$work/ho-etcdctl"
: >"$work/ho-leaserun"
for i in $(seq "$HANDOFF"); do
	"${E[@]}" lock "bench-ho-$i" -- sh -c 'sleep 0.3; date +%s%N' >"$work/h.out" &
	h=$!
	sleep 0.1
	"${E[@]}" lock "bench-ho-$i" -- date +%s%N >"$work/w.out" &
	w=$!
	wait "$h" "$w"
	echo $(($(cat "$work/w.out") - $(cat "$work/h.out"))) >>"$work/ho-etcdctl"

	"$L" --lease "etcd://$ep/bench-ho-leaserun-$i" --ttl 10s -- sh -c 'sleep 0.3; date +%s%N' >"$work/h.out" &
	h=$!
	sleep 0.1
	"$L" --lease "etcd://$ep/bench-ho-leaserun-$i" --ttl 10s --wait -- date +%s%N >"$work/w.out" &
	w=$!
	wait "$h" "$w"
	echo $(($(cat "$work/w.out") - $(cat "$work/h.out"))) >>"$work/ho-leaserun"
done
echo "  etcdctl lock:               $(stats <"$work/ho-etcdctl")"
echo "  leaserun --lease etcd://:   $(stats <"$work/ho-leaserun")"

echo
echo "== 3. crash takeover: SIGKILL of the holding wrapper -> the standby's child's first moment ($TAKEOVERS rounds each, TTL ${TTL}s)"
: >"$work/to-etcdctl"
: >"$work/to-leaserun"
orphans_etcdctl=0
orphans_leaserun=0
for i in $(seq "$TAKEOVERS"); do
	"${E[@]}" lock --ttl="$TTL" "bench-to-$i" -- sleep 301 &
	h=$!
	sleep 0.5
	"${E[@]}" lock "bench-to-$i" -- date +%s%N >"$work/w.out" &
	w=$!
	sleep 1
	k=$(now)
	{ kill -KILL "$h"; wait "$w"; wait "$h" || true; } 2>/dev/null
	echo $(($(cat "$work/w.out") - k)) >>"$work/to-etcdctl"
	if pkill -x -f "sleep 301"; then orphans_etcdctl=$((orphans_etcdctl + 1)); fi

	"$L" --lease "etcd://$ep/bench-to-leaserun-$i" --ttl "${TTL}s" -- sleep 302 &
	h=$!
	sleep 0.5
	"$L" --lease "etcd://$ep/bench-to-leaserun-$i" --ttl "${TTL}s" --wait -- date +%s%N >"$work/w.out" &
	w=$!
	sleep 1
	k=$(now)
	{ kill -KILL "$h"; wait "$w"; wait "$h" || true; } 2>/dev/null
	echo $(($(cat "$work/w.out") - k)) >>"$work/to-leaserun"
	if pkill -x -f "sleep 302"; then orphans_leaserun=$((orphans_leaserun + 1)); fi
done
echo "  etcdctl lock --ttl=$TTL:             $(stats <"$work/to-etcdctl"); the killed holder's child still ran afterwards in $orphans_etcdctl of $TAKEOVERS"
echo "  leaserun --lease etcd:// --ttl ${TTL}s: $(stats <"$work/to-leaserun"); the killed holder's child still ran afterwards in $orphans_leaserun of $TAKEOVERS (bound: TTL + 10% = $((TTL * 1100)) ms)"

echo
echo "== 4. the child when the lock's session or the lease is lost (TTL ${TTL}s)"
# observe WRAPPER NAME KEY LOSE: runs a child of 20s under the wrapper,
# loses the lock with LOSE a second in, then has another run take the
# lock (within 5s) and say whether the first child still ran then (two
# holders at once), and reports when the first child was gone (counted
# from the start of LOSE; killed, or at its end) and how the wrapper and
# the child ended.
observe() {
	local wrapper=$1 name=$2 key=$3 lose=$4 h rc t0 both=no stopped="still running 12s after"
	local child='trap "echo got SIGTERM; exit 143" TERM; sleep 20 & wait; echo ran to the end'
	local check='if pgrep -x -f "sleep 20" >/dev/null; then echo both; fi'
	if [ "$wrapper" = etcdctl ]; then
		"${E[@]}" lock --ttl="$TTL" "$key" -- sh -c "$child" >"$work/s.out" 2>&1 &
	else
		"$L" --lease "etcd://$ep/$key" --ttl "${TTL}s" -- sh -c "$child" >"$work/s.out" 2>&1 &
	fi
	h=$!
	sleep 1
	rm -f "$work/gone"
	t0=$(now)
	# When the first child is gone, polled every 20ms for up to 12s.
	(for _ in $(seq 600); do
		if ! pgrep -x -f "sleep 20" >/dev/null; then now >"$work/gone"; exit; fi
		sleep 0.02
	done) &
	local poller=$!
	eval "$lose"
	if [ "$wrapper" = etcdctl ]; then
		timeout 5 "${E[@]}" lock "$key" -- sh -c "$check" >"$work/second.out" 2>/dev/null || true
	else
		timeout 5 "$L" --lease "etcd://$ep/$key" --wait -- sh -c "$check" >"$work/second.out" 2>/dev/null || true
	fi
	grep -q both "$work/second.out" && both=yes
	wait "$poller" || true
	[ -s "$work/gone" ] && stopped="gone $(ms $(($(cat "$work/gone") - t0))) ms after"
	pkill -x -f "sleep 20" || true
	wait "$h" && rc=0 || rc=$?
	printf '  %-9s %-36s two holders at once: %-3s  first child %-26s the loss; exit %-3s  child: %s\n' \
		"$wrapper" "$name" "$both" "$stopped" "$rc" "$(grep -v '^time=' "$work/s.out" | tail -n 1)"
}
for w in etcdctl leaserun; do
	if [ "$w" = etcdctl ]; then
		observe $w "session's lease revoked by hand" bench-s1-$w '"${E[@]}" lease revoke "$("${E[@]}" lease list | sed -n 2p)" >/dev/null'
	else
		observe $w "lease's key deleted by hand" bench-s1-$w '"${E[@]}" del bench-s1-$w >/dev/null'
	fi
	observe $w "etcd frozen (SIGSTOP) for TTL + 3s" bench-s2-$w 'kill -STOP $etcd_pid; sleep $((TTL + 3)); kill -CONT $etcd_pid; sleep 0.5'
	observe $w "SIGTERM to the wrapper" bench-s3-$w 'kill -TERM $h; sleep 0.5'
done

echo
echo "== 5. store operations in one process (bench/etcd ops, 200 each)"
"$bin/bench-etcd" ops "etcd://$ep/bench-ops" 200 | sed 's/^/  /'

echo
echo "== 6. the weight of etcd's client/v3 (an empty program with and without it linked)"
for b in empty empty-etcdclient; do
	# The least of 10 runs: other load only adds time.
	for i in $(seq 10); do
		GODEBUG=inittrace=1 "$bin/$b" 2>&1 | awk '/^init / { ms += $5; bytes += $8; allocs += $10; n++ } END { printf "%d %.2f %d %d\n", n, ms, bytes, allocs }'
	done | sort -k2 -n | head -n 1 | awk -v b="$b" '{ printf "  %-18s package init (least of 10 runs): %d packages, %.2f ms, %d bytes, %d allocs; ", b, $1, $2, $3, $4 }'
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
