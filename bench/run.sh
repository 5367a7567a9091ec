#!/usr/bin/env bash
# Measures what leaserun costs beside flock(1) and beside the floor (the
# least a Go wrapper of a file lease can cost: bench/floor), and prints one
# table: figure | leaserun | flock(1) baseline | floor | target | met?
#
#   bench/run.sh              full run (about 10 minutes)
#   QUICK=1 bench/run.sh      about 2 minutes, fewer samples
#
# Steps: build leaserun (scripts/build.sh), bench/floor and bench/handoff
# into a temp dir; invocation overhead with hyperfine -N, the variants
# interleaved (ROUNDS rounds of RUNS runs of each, so that load from other
# work on the machine hits all alike; minima and medians over all runs) on
# the ext4 disk and on tmpfs, beside the floor also built with -tags kong
# (its arguments parsed by kong, as leaserun's are: the least a wrapper with
# kong's command line can cost); then hand-off, crash takeover, idle
# holder, many standbys and many leases (bench/handoff); then bench/lease.sh
# (Go benchmarks of package lease against their own floor).
#
# Environment (defaults full / QUICK):
#   DISK_DIR=/var/tmp  TMPFS_DIR=/dev/shm (TMPFS=0 skips tmpfs)
#   ROUNDS=10/4  RUNS=40/20          invocation: hyperfine rounds x runs
#   HANDOFF_ROUNDS=100/30            hand-offs (each of leaserun and flock)
#   HANDOFF_INTERVAL=60s/10s         idle measuring interval
#   HANDOFF_TTL=2s/1s  HANDOFF_TAKEOVERS=10/3
#   HANDOFF_STANDBYS=100  HANDOFF_STANDBY_ROUNDS=20/5  HANDOFF_LEASES=200
#   LEASE_SH=1 (0 skips bench/lease.sh; QUICK runs it with BENCHTIME=300x COUNT=1)
# Needs hyperfine, jq and flock(1); installs hyperfine and jq with apt-get
# if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then d_rounds=4 d_runs=20 d_ho=30 d_int=10s d_ttl=1s d_take=3 d_sbr=5; else d_rounds=10 d_runs=40 d_ho=100 d_int=60s d_ttl=2s d_take=10 d_sbr=20; fi
DISK_DIR=${DISK_DIR:-/var/tmp}
TMPFS_DIR=${TMPFS_DIR:-/dev/shm}
TMPFS=${TMPFS:-1}
ROUNDS=${ROUNDS:-$d_rounds}
RUNS=${RUNS:-$d_runs}
LEASE_SH=${LEASE_SH:-1}
export HANDOFF_ROUNDS=${HANDOFF_ROUNDS:-$d_ho}
export HANDOFF_INTERVAL=${HANDOFF_INTERVAL:-$d_int}
export HANDOFF_TTL=${HANDOFF_TTL:-$d_ttl}
export HANDOFF_TAKEOVERS=${HANDOFF_TAKEOVERS:-$d_take}
export HANDOFF_STANDBYS=${HANDOFF_STANDBYS:-100}
export HANDOFF_STANDBY_ROUNDS=${HANDOFF_STANDBY_ROUNDS:-$d_sbr}
export HANDOFF_LEASES=${HANDOFF_LEASES:-200}

for tool in hyperfine jq; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "installing $tool" >&2
		apt-get install -y "$tool" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$tool" >/dev/null; }
	fi
done
command -v flock >/dev/null || { echo "flock(1) (util-linux) is missing" >&2; exit 1; }

bin=$(mktemp -d)
work=$(mktemp -d "$DISK_DIR/leaserun-bench-XXXXXX")
twork=""
cleanup() { rm -rf "$bin" "$work" ${twork:+"$twork"}; }
trap cleanup EXIT

fstype() { df -T "$1" | awk 'NR == 2 { print $2 }'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "== machine: $(nproc) CPUs, $(free -h | awk '/^Mem:/ { print $2 " RAM, " $7 " available" }'), kernel $(uname -r)"
echo "   $DISK_DIR: $(fstype "$DISK_DIR"); $TMPFS_DIR: $(fstype "$TMPFS_DIR"); $(go version | cut -d' ' -f3); load average $(load)"

echo "== building into $bin"
scripts/build.sh "$bin/leaserun"
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin/floor" ./bench/floor
CGO_ENABLED=0 go build -tags kong -trimpath -ldflags '-s -w' -o "$bin/floorkong" ./bench/floor
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin/handoff" ./bench/handoff
"$bin/leaserun" --version

res=$bin/results # name value unit, one a line
# record NAME VALUE UNIT
record() { echo "$1 $2 $3" >>"$res"; }
val() { awk -v k="$1" '$1 == k { v = $2 } END { print (v == "" ? "nan" : v) }' "$res"; }

# invocation LABEL DIR: hyperfine rounds, every variant in each round.
invocation() {
	local label=$1 dir=$2 out=$bin/inv-$1
	mkdir -p "$out"
	local cmds=(
		"$bin/leaserun --lease $dir/inv.lease -- /bin/true"
		"flock $dir/inv.flock /bin/true"
		"$bin/floor $dir/inv.floor /bin/true"
		"$bin/floor -fsync $dir/inv.floorfsync /bin/true"
		"$bin/floorkong --lease $dir/inv.floorkong -- /bin/true"
		"$bin/floorkong --fsync --lease $dir/inv.floorkongfsync -- /bin/true"
		"/bin/true"
	)
	local names=(leaserun flock floor floorfsync floorkong floorkongfsync true)
	echo "== invocation overhead on $dir ($(fstype "$dir")): $ROUNDS rounds x $RUNS runs, interleaved; load average $(load)"
	for r in $(seq "$ROUNDS"); do
		hyperfine -N -w 3 -r "$RUNS" --style none --export-json "$out/$r.json" "${cmds[@]}" >/dev/null 2>&1
	done
	for i in "${!cmds[@]}"; do
		jq -s -r --arg c "${cmds[$i]}" '[.[].results[] | select(.command == $c) | .times[]] | sort |
			"\(.[0] * 1000) \(.[(length / 2 | floor)] * 1000) \(.[((length * 0.99) | ceil) - 1] * 1000) \(length)"' "$out"/*.json |
			{
				read -r mn md p99 n
				printf '   %-10s min %7.3f  median %7.3f  p99 %7.3f ms  (%d runs)  %s\n' "${names[$i]}" "$mn" "$md" "$p99" "$n" "${cmds[$i]}"
				record "inv.$label.${names[$i]}.min" "$mn" ms
				record "inv.$label.${names[$i]}.median" "$md" ms
			}
	done
	echo "   load average after: $(load)"
}

: >"$res"
invocation disk "$work"
if [ "$TMPFS" = 1 ]; then
	twork=$(mktemp -d "$TMPFS_DIR/leaserun-bench-XXXXXX")
	invocation tmpfs "$twork"
fi

echo "== bench/handoff on $DISK_DIR; load average $(load)"
"$bin/handoff" -leaserun "$bin/leaserun" -dir "$work" all | tee "$bin/handoff.out" | grep -v '^RESULT' ||
	echo "bench/handoff failed: the figures it did not reach are missing below" >&2
awk '$1 == "RESULT" { print $2, $3, $4 }' "$bin/handoff.out" >>"$res"

if [ "$LEASE_SH" = 1 ]; then
	echo "== bench/lease.sh; load average $(load)"
	if [ "$QUICK" = 1 ]; then export BENCHTIME=${BENCHTIME:-300x} COUNT=${COUNT:-1}; fi
	DISK_DIR=$DISK_DIR TMPFS_DIR=$TMPFS_DIR bench/lease.sh 2>&1 | tee "$bin/lease.out" | grep -E '^(==|--|  )'
	awk '/^-- tmpfs summary/ { fs = "tmpfs" } /^-- disk summary/ { fs = "disk" }
		/Renew\/Floor/ { print "lease." fs ".renew_floor", $2, "x" }
		/AcquireRelease\/\(3\*Floor\+fsync\)/ { print "lease." fs ".acqrel_floor", $2, "x" }' "$bin/lease.out" >>"$res"
fi

# ---- the table
echo
echo "== summary (load average now $(load)); medians unless said; CPU in % of one core"
awk -v quick="$QUICK" '
	{ v[$1] = $2 }
	function has(k) { return (k in v) && v[k] != "nan" }
	function f(x, d) { return sprintf("%." d "f", x) }
	function met(ok) { return ok ? "yes" : "NO" }
	function row(a, b, c, d, e, g) { printf "| %s | %s | %s | %s | %s | %s |\n", a, b, c, d, e, g }
	END {
		row("figure", "leaserun", "flock(1) baseline", "floor", "target", "met?")
		row("---", "---", "---", "---", "---", "---")
		split("disk tmpfs", fss, " ")
		for (i = 1; i <= 2; i++) {
			fs = fss[i]; p = "inv." fs "."
			if (!has(p "leaserun.median")) continue
			l = v[p "leaserun.median"]; fl = v[p "flock.median"]; fo = v[p "floor.median"]; ff = v[p "floorfsync.median"]
			row("invocation, " fs " (median; min)", f(l, 2) " ms; " f(v[p "leaserun.min"], 2) " = **" f(l / fo, 2) "x floor**", \
				f(fl, 2) " ms = " f(fl / fo, 2) "x floor", f(fo, 2) " ms; with 1 fsync " f(ff, 2) " ms", "<= 1.15x floor", met(l <= 1.15 * fo))
			row("invocation, " fs ", vs floor + 1 fsync", f(l / ff, 2) "x", f(fl / ff, 2) "x", f(ff, 2) " ms", "(for reference)", "-")
			fk = v[p "floorkong.median"]; fkf = v[p "floorkongfsync.median"]
			row("invocation, " fs ", floor parsing with kong (+ 1 fsync)", f(l / fk, 2) "x (" f(l / fkf, 2) "x)", "-", \
				f(fk, 2) " ms = " f(fk / fo, 2) "x floor (" f(fkf, 2) " ms = " f(fkf / fo, 2) "x)", "(for reference)", "-")
		}
		if (has("handoff.leaserun.median")) {
			l = v["handoff.leaserun.median"]; fl = v["handoff.flock.median"]
			row("hand-off, median", f(l, 2) " ms = " f(l / fl, 2) "x flock", f(fl, 2) " ms", "-", "<= 2x flock", met(l <= 2 * fl))
			row("hand-off, p99", f(v["handoff.leaserun.p99"], 2) " ms", f(v["handoff.flock.p99"], 2) " ms", "-", "<= 20 ms", met(v["handoff.leaserun.p99"] <= 20))
		}
		if (has("takeover.leaserun.frac.max")) {
			row("crash takeover (SIGKILL holder), max / median", f(v["takeover.leaserun.frac.max"], 3) " / " f(v["takeover.leaserun.frac.median"], 3) " TTL (" f(v["takeover.leaserun.median"], 0) " ms)", \
				f(v["takeover.flock.median"], 2) " ms (flock -o)", "-", "<= 1.10 TTL", met(v["takeover.leaserun.frac.max"] <= 1.10))
		}
		if (has("idle.leaserun.rss")) {
			row("idle holder RSS (PSS)", f(v["idle.leaserun.rss"], 2) " MiB (" f(v["idle.leaserun.pss"], 2) ")", f(v["idle.flock.rss"], 2) " MiB (" f(v["idle.flock.pss"], 2) ")", "-", "<= 10 MiB", met(v["idle.leaserun.rss"] <= 10))
			row("idle holder CPU, utime+stime (schedstat)", f(v["idle.leaserun.cpu"], 4) "% (" f(v["idle.leaserun.cpu_sched"], 4) "%)", f(v["idle.flock.cpu"], 4) "%", "-", "<= 0.1%", \
				met(v["idle.leaserun.cpu"] <= 0.1 && v["idle.leaserun.cpu_sched"] <= 0.1))
		}
		if (has("standbys.leaserun.idle_cpu")) {
			row("100 standbys, total idle CPU, utime+stime (schedstat)", f(v["standbys.leaserun.idle_cpu"], 3) "% (" f(v["standbys.leaserun.idle_cpu_sched"], 3) "%)", f(v["standbys.flock.idle_cpu_sched"], 3) "%", "-", "<= 1%", \
				met(v["standbys.leaserun.idle_cpu"] <= 1 && v["standbys.leaserun.idle_cpu_sched"] <= 1))
			l = v["standbys.leaserun.handoff.median"]; fl = v["standbys.flock.handoff.median"]
			row("100 standbys, hand-off median", f(l, 2) " ms = " f(l / fl, 1) "x flock", f(fl, 2) " ms", "-", "<= 2x flock", met(l <= 2 * fl))
			row("100 standbys, hand-off p99", f(v["standbys.leaserun.handoff.p99"], 2) " ms", f(v["standbys.flock.handoff.p99"], 2) " ms", "-", "<= 20 ms", met(v["standbys.leaserun.handoff.p99"] <= 20))
		}
		if (has("leases.many.rss")) {
			row("200 leases, RSS per process (PSS) vs one", f(v["leases.many.rss"], 2) " MiB (" f(v["leases.many.pss"], 2) ") vs " f(v["leases.one.rss"], 2), "-", "-", "<= 1.1x one, <= 10 MiB", \
				met(v["leases.many.rss"] <= 1.1 * v["leases.one.rss"] && v["leases.many.rss"] <= 10))
			row("200 leases, CPU per process, utime+stime (schedstat) vs one", f(v["leases.many.cpu"], 4) "% (" f(v["leases.many.cpu_sched"], 4) "%) vs " f(v["leases.one.cpu_sched"], 4) "%", "-", "-", "<= 0.1% as for one", \
				met(v["leases.many.cpu"] <= 0.1 && v["leases.many.cpu_sched"] <= 0.1))
		}
		split("tmpfs disk", lfs, " ")
		for (i = 1; i <= 2; i++) {
			k = "lease." lfs[i] ".renew_floor"
			if (has(k)) row("lease pkg: Renew / Floor, " lfs[i], f(v[k], 2) "x", "-", "Go benchmark", "<= 1.5x", met(v[k] <= 1.5))
			k = "lease." lfs[i] ".acqrel_floor"
			if (has(k)) row("lease pkg: Acquire+Release / (3 Floor + fsync), " lfs[i], f(v[k], 2) "x", "-", "Go benchmark", "<= 1x", met(v[k] <= 1))
		}
	}' "$res"
