#!/bin/bash
# bench/metricsweight/run.sh: what serving leaserun's eight metrics on
# /metrics costs with each way of writing them (README, "Why /metrics is
# written with the standard library"). Four programs, each in a directory
# here: empty (an empty Go program, for reference); stdlib (net/http and
# the standard-library writer of internal/health); victoria
# (github.com/VictoriaMetrics/metrics); clientgolang
# (github.com/prometheus/client_golang with promhttp). Each exits at once
# at the top of main when given no argument, and serves /metrics on the
# address given as its argument.
#
# For each it prints: the executable's size (CGO_ENABLED=0, -trimpath,
# -ldflags '-s -w'); the packages linked (go list -deps, the main package
# included) and how many are outside the standard library; package
# initialisation (GODEBUG=inittrace=1: the init times, bytes and
# allocations summed per run, the median of RUNS runs taken in turn); the
# start-up of the program that exits at once (hyperfine -N --warmup 10 -r
# 200, ROUNDS rounds: hyperfine runs each command's 200 runs in one block,
# so each round rotates the order, and the median of the rounds' medians
# is reported); and whether each server's /metrics parses with
# github.com/prometheus/common/expfmt's text parser (program parse).
#
# This directory is a module of its own, so that the libraries weighed
# stay out of leaserun's go.mod; its versions of the modules both share
# (prometheus/common, client_model, protobuf, x/sys) are leaserun's.
# Run it on an otherwise idle machine if you can, and compare figures of
# one run only:
#
#	nice -n 19 bench/metricsweight/run.sh       # RUNS=41 ROUNDS=12
#	RUNS=101 ROUNDS=24 bench/metricsweight/run.sh
#
# It needs go, hyperfine, curl and python3, and a free port from 19191 to
# 19193 on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")"
RUNS=${RUNS:-41} ROUNDS=${ROUNDS:-12}
progs=(empty stdlib victoria clientgolang)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin" "$work/out"
for p in "${progs[@]}" parse; do
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o $work/bin/$p ./$p
done
echo "# $(uptime)"
echo "# $(go version), nproc $(nproc), $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-)"
printf '%-13s %10s %9s %6s\n' program bytes packages nonstd
for p in "${progs[@]}"; do
	printf '%-13s %10d %9d %6d\n' $p $(stat -c %s $work/bin/$p) \
		$(CGO_ENABLED=0 go list -deps ./$p | wc -l) \
		$(CGO_ENABLED=0 go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./$p | grep -c .)
done

# inittrace: one line per run and program: clock ms, bytes, allocs, inits;
# and every package's line, in inittrace.PROGRAM.
for ((i = 0; i < RUNS; i++)); do
	for p in "${progs[@]}"; do
		GODEBUG=inittrace=1 $work/bin/$p 2>&1 | tee -a $work/out/inittrace.$p | awk -v p=$p '
			/^init / { ms += $5; b += $8; a += $10; n++ }
			END { printf "%s %.3f %d %d %d\n", p, ms, b, a, n }'
	done
done > $work/out/inittrace
echo "# inittrace, median of $RUNS runs; $(uptime)"
printf '%-13s %9s %9s %7s %6s\n' program init_ms bytes allocs inits
for p in "${progs[@]}"; do
	printf '%-13s %9s %9s %7s %6s\n' $p $(for k in 2 3 4 5; do
		awk -v p=$p -v k=$k '$1 == p { print $k }' $work/out/inittrace | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
	done)
done

echo "# the packages whose init stdlib does not run, median ms, bytes, allocs"
for p in victoria clientgolang; do
	python3 - $work/out/inittrace.stdlib $work/out/inittrace.$p <<'PY'
import statistics, sys
def inits(path):
    d = {}
    for line in open(path):
        f = line.split()
        if f and f[0] == "init":
            d.setdefault(f[1], []).append((float(f[4]), int(f[7]), int(f[9])))
    return d
base, d = inits(sys.argv[1]), inits(sys.argv[2])
prog = sys.argv[2].rsplit(".", 1)[-1]
extra = {k: v for k, v in d.items() if k not in base}
for k in sorted(extra, key=lambda k: -statistics.median(x[0] for x in extra[k])):
    v = extra[k]
    print(f"{prog:13s} {k:62s} {statistics.median(x[0] for x in v):6.3f} ms {statistics.median(x[1] for x in v):6.0f} B {statistics.median(x[2] for x in v):4.0f} allocs")
PY
	echo "$p: goroutines at the top of main: $($work/bin/$p -goroutines)"
done

# start-up: hyperfine runs each command's runs in one block, so the
# rounds rotate the order and the medians of the rounds are reported.
for ((r = 0; r < ROUNDS; r++)); do
	order=("${progs[@]:r%4}" "${progs[@]:0:r%4}")
	echo "# round $r: $(uptime)"
	hyperfine -N --warmup 10 -r 200 --export-json $work/out/hyperfine.$r.json \
		"${order[@]/#/$work/bin/}" >$work/out/hyperfine.$r.txt 2>&1
done
echo "# start-up, ms: median of each round, then the median of the rounds; $(uptime)"
python3 - "$ROUNDS" "$work" <<'PY'
import json, statistics, sys
rounds, work = int(sys.argv[1]), sys.argv[2]; res = {}
for r in range(rounds):
    for x in json.load(open(f"{work}/out/hyperfine.{r}.json"))["results"]:
        res.setdefault(x["command"].rsplit("/", 1)[-1], []).append((x["median"] * 1e3, x["min"] * 1e3))
for p in ["empty", "stdlib", "victoria", "clientgolang"]:
    med = [m for m, _ in res[p]]
    print(f"{p:13s} median {statistics.median(med):6.3f}  min {min(m for _, m in res[p]):6.3f}  rounds", " ".join(f"{m:.3f}" for m in med))
PY

# /metrics through expfmt's text parser.
port=19191
for p in stdlib victoria clientgolang; do
	$work/bin/$p 127.0.0.1:$port & pid=$!
	for ((i = 0; i < 50; i++)); do curl -sf -o $work/out/metrics.$p http://127.0.0.1:$port/metrics && break; sleep 0.1; done
	kill $pid; wait $pid 2>/dev/null || true
	if $work/bin/parse <$work/out/metrics.$p >$work/out/parsed.$p; then echo "$p: parses, $(wc -l <$work/out/parsed.$p) families, $(grep -vc ' ""' $work/out/parsed.$p) with a HELP text"; else echo "$p: DOES NOT PARSE"; fi
	port=$((port + 1))
done
