# leaserun as a container image: static binaries on scratch, for use as an
# entrypoint or to COPY --from= into other images. /leaserun hands a lease in
# S3 or etcd to /leaserun-s3 or /leaserun-etcd beside it, and a run with
# --health-addr to /leaserun-http (scripts/build.sh builds every
# cmd/leaserun-*):
#
#   docker build -t leaserun .
#   COPY --from=leaserun /leaserun* /usr/local/bin/     (in your Dockerfile)
#
# The build step is scripts/build.sh, the same script CI runs.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=unknown
RUN VERSION="$VERSION" COMMIT="$COMMIT" scripts/build.sh /out/leaserun

FROM scratch
COPY --from=build /out/ /
# Non-root by default; mount the lease directory writable for this uid, or
# run with --user to match the volume's owner.
USER 65532:65532
ENTRYPOINT ["/leaserun"]
