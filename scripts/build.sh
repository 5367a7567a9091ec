#!/bin/sh
# Builds static, reproducible leaserun executables with their version
# stamped in: leaserun at OUTPUT, and beside it every other cmd/leaserun-*
# (the executables that add a network store or the health server, to which
# leaserun hands a lease of theirs or a run with --health-addr). The Dockerfile and CI both run this script, so CI
# exercises the image's build step.
#
#   scripts/build.sh [OUTPUT]     (default: ./leaserun)
#
# VERSION and COMMIT override what git says (the container build has no .git).
set -eu
cd "$(dirname "$0")/.."
out=${1:-leaserun}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
pkg=github.com/leaserun/leaserun/internal/cli
for dir in cmd/leaserun cmd/leaserun-*; do
	[ -d "$dir" ] || continue
	name=$(basename "$dir")
	target=$out
	[ "$name" = leaserun ] || target=$(dirname "$out")/$name
	CGO_ENABLED=0 go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X $pkg.version=$version -X $pkg.commit=$commit" \
		-o "$target" "./$dir"
done
