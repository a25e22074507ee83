# syntax=docker/dockerfile:1
# Builds bin/chat as a static binary and runs it as an unprivileged user on
# a distroless base. Build context: the repository root (it needs go.work).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    mkdir -p /out/data && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/chat ./services/chat/cmd/chat

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chat /usr/local/bin/chat
# DATA_DIR must be writable by the nonroot user (uid 65532); a named volume
# mounted here takes this ownership on first use.
COPY --from=build --chown=65532:65532 /out/data /var/lib/grpcchatter
WORKDIR /var/lib/grpcchatter
ENV DATA_DIR=/var/lib/grpcchatter
EXPOSE 5050
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/chat"]
