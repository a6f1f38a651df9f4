# syntax=docker/dockerfile:1
# Multi-stage build: a static binary on a small non-root base image.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/tapwars ./cmd/tapwars

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tapwars /tapwars
# DATA_DIR holds the generated session key (and the embedded broker and
# store when REDIS_URL / KAFKA_BROKERS are not set).
ENV ADDR=:8080 DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER nonroot:nonroot
HEALTHCHECK NONE
ENTRYPOINT ["/tapwars"]
