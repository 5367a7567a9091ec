#!/usr/bin/env bash
# Runs the lease benchmarks (lease/bench_test.go) on tmpfs and on the ext4
# disk and prints each benchmark's median and the ratios to the floor
# measured in the same run:
#
#	Renew / Floor                      target <= 1.5
#	AcquireRelease / Floor
#	one fsync = FloorFsync - Floor     (fsync of the file and its directory)
#	AcquireRelease / (3*Floor + fsync) target <= 1
#
# Usage: bench/lease.sh            (from anywhere inside the module)
# Environment: TMPFS_DIR (default /dev/shm), DISK_DIR (default /var/tmp; on
# the machine this was written on /tmp, /var/tmp and /work are all the root
# ext4 filesystem), BENCH (default .), BENCHTIME (default 2000x), COUNT
# (default 3). It prints min and median of the runs and takes the ratios
# from the minima (other load only adds time; the load average is printed
# with each run). benchstat, if installed, also summarises the raw output.
set -euo pipefail

cd "$(dirname "$0")/.."
TMPFS_DIR=${TMPFS_DIR:-/dev/shm}
DISK_DIR=${DISK_DIR:-/var/tmp}
BENCH=${BENCH:-.}
BENCHTIME=${BENCHTIME:-2000x}
COUNT=${COUNT:-3}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

fstype() { df -T "$1" | awk 'NR == 2 { print $2 }'; }

# summarize FILE: min and median per benchmark and unit, then the ratios,
# computed from the minima: other load on the machine only ever adds time,
# so the fastest of the runs is the best estimate of the cost itself.
summarize() {
	awk '
	function sortk(k,   n, i, j, t) {
		n = cnt[k]
		for (i = 1; i <= n; i++) a[i] = v[k, i]
		for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
		return n
	}
	/^Benchmark/ {
		name = $1; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", name)
		for (i = 3; i < NF; i++) {
			unit = $(i+1)
			if (unit == "ns/op" || unit == "ns/attempt" || unit == "attempts/acquire" || unit == "lostrel/acquire" || unit == "errors/acquire") {
				k = name " " unit
				if (!(k in cnt)) order[++nk] = k
				v[k, ++cnt[k]] = $i
			}
		}
	}
	END {
		printf "  %-18s %12s %12s  %s\n", "benchmark", "min", "median", "unit"
		for (i = 1; i <= nk; i++) {
			k = order[i]; n = sortk(k)
			mn[k] = a[1]; md = n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
			split(k, p, " ")
			fmt = p[2] ~ /^ns\// ? "  %-18s %12.0f %12.0f  %s (%d runs)\n" : "  %-18s %12.3f %12.3f  %s (%d runs)\n"
			printf fmt, p[1], mn[k], md, p[2], n
		}
		f = mn["Floor ns/op"]; ff = mn["FloorFsync ns/op"]
		r = mn["Renew ns/op"]; ar = mn["AcquireRelease ns/op"]
		if (f > 0 && ff > 0 && r > 0 && ar > 0) {
			fs = ff - f
			printf "  ratios of the minima:\n"
			printf "  one fsync = FloorFsync-Floor      %10.0f ns\n", fs
			printf "  Renew/Floor                       %10.2f   target <= 1.5  %s\n", r/f, (r/f <= 1.5 ? "ok" : "MISSED")
			printf "  AcquireRelease/Floor              %10.2f\n", ar/f
			printf "  AcquireRelease/(3*Floor+fsync)    %10.2f   target <= 1    %s\n", ar/(3*f+fs), (ar <= 3*f+fs ? "ok" : "MISSED")
		}
	}' "$1"
}

for run in "tmpfs $TMPFS_DIR" "disk $DISK_DIR"; do
	set -- $run
	name=$1 dir=$2
	echo "== $name: LEASE_BENCH_DIR=$dir ($(fstype "$dir"); statfs: $(stat -f -c %T "$dir")); load: $(cut -d' ' -f1-3 /proc/loadavg)"
	if [ "$name" = tmpfs ] && [ "$(fstype "$dir")" != tmpfs ]; then
		echo "warning: $dir is not tmpfs" >&2
	fi
	LEASE_BENCH_DIR=$dir go test -run '^$' -bench "$BENCH" -benchtime="$BENCHTIME" -count="$COUNT" ./lease/ | tee "$out/$name.txt"
	echo "-- $name summary"
	summarize "$out/$name.txt"
done

if command -v benchstat >/dev/null 2>&1; then
	echo "== benchstat"
	benchstat tmpfs="$out/tmpfs.txt" disk="$out/disk.txt"
fi
