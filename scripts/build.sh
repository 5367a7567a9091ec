#!/bin/sh
# Builds a static, reproducible leaserun binary with its version stamped in.
# The Dockerfile and CI both run this script, so CI exercises the image's
# build step.
#
#   scripts/build.sh [OUTPUT]     (default: ./leaserun)
#
# VERSION and COMMIT override what git says (the container build has no .git).
set -eu
cd "$(dirname "$0")/.."
out=${1:-leaserun}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
commit=${COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
CGO_ENABLED=0 go build -trimpath -buildvcs=false \
	-ldflags "-s -w -X main.version=$version -X main.commit=$commit" \
	-o "$out" ./cmd/leaserun
