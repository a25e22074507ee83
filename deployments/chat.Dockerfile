# syntax=docker/dockerfile:1
# Builds bin/chat as a static binary and runs it as an unprivileged user on
# a distroless base. Build context: the repository root (it needs go.work).
# The image has no shell, so it carries grpc-health-probe for compose's
# healthcheck: it asks the service's gRPC health service.
FROM golang:1.26-bookworm AS build
WORKDIR /src
# Before the sources, so that it stays cached when they change.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOBIN=/out go install -trimpath -ldflags="-s -w" github.com/grpc-ecosystem/grpc-health-probe@v0.4.63
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    mkdir -p /out/data && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chat ./services/chat/cmd/chat

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chat /out/grpc-health-probe /usr/local/bin/
# DATA_DIR must be writable by the nonroot user (uid 65532); a named volume
# mounted here takes this ownership on first use.
COPY --from=build --chown=65532:65532 /out/data /var/lib/grpcchatter
WORKDIR /var/lib/grpcchatter
ENV DATA_DIR=/var/lib/grpcchatter
EXPOSE 5050
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/chat"]
