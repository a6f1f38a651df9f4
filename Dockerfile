# syntax=docker/dockerfile:1
# Multi-stage build: a static binary on a small non-root base image.
#   docker build -t tapwars .
#   docker run -p 8080:8080 -e REDIS_URL=... -e KAFKA_BROKERS=... -e SESSION_SECRET=... tapwars
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: a static binary that needs no libc; -trimpath and -s -w keep it small.
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tapwars ./cmd/tapwars \
 && mkdir -p /out/data

# distroless/static: CA certificates, tzdata and /etc/passwd with a
# "nonroot" user (65532), and nothing else: no shell, no curl.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tapwars /tapwars
# DATA_DIR holds the generated session key and admin token (and the
# embedded broker and store when REDIS_URL / KAFKA_BROKERS are not set). It
# is created owned by nonroot so that a named volume mounted there starts
# writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV ADDR=:8080 DATA_DIR=/data LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532
# No curl in the image: the binary probes its own /readyz.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 CMD ["/tapwars", "-healthcheck"]
# SIGTERM (docker stop) shuts down gracefully within 10 s: keep docker's
# default 10 s stop timeout or raise it, never lower it.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/tapwars"]
