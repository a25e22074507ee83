#!/usr/bin/env bash
# Runs the load generator: it builds the chat and auth services and the
# baseline server, drives them over loopback and rewrites
# docs/BENCHMARKS.md, docs/img/*.png and bench/results/latest.json.
# The cross-instance section also runs a nats-server (2.11 or later):
# $NATS_SERVER_BIN, else bin/tools/nats-server (`make tools`), else one the
# generator builds from tools/go.mod; `-skip cluster` leaves it out.
# Extra arguments go to the generator (see `go run ./bench/cmd/chatbench -h`),
# e.g. scripts/bench.sh -idle 20000 -duration 10s.
set -euo pipefail
cd "$(dirname "$0")/.."

# The idle-connections run holds one socket per stream in the generator
# and one in the chat process: raise the soft limit as far as allowed.
hard=$(ulimit -Hn)
if [[ "$hard" == unlimited ]]; then hard=1048576; fi
ulimit -n "$hard" 2>/dev/null || true
need=12000
if (( $(ulimit -n) < need )); then
	echo "bench.sh: open-file limit is $(ulimit -n); the 10,000-stream run needs about $need in each of the generator and the chat process" >&2
	echo "bench.sh: (raise it with 'ulimit -n' as root, or pass a smaller -idle)" >&2
fi

exec go run ./bench/cmd/chatbench -out docs -json bench/results/latest.json "$@"
