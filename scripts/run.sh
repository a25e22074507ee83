#!/usr/bin/env bash
# Starts bin/auth (embedded SQLite) and bin/chat (in memory) together on
# local defaults. A random SECRET is generated once into .env.local, which
# is git-ignored; data lives under data/. Ctrl-C stops both cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/env-local.sh
source scripts/env-local.sh

auth_port=${AUTH_PORT:-8080}
chat_port=${CHAT_PORT:-5050}
web_port=${WEB_PORT:-8081}
metrics_addr=${CHAT_METRICS_ADDRESS:-127.0.0.1:9090}
auth_metrics_addr=${AUTH_METRICS_ADDRESS:-127.0.0.1:9091}
mkdir -p data/auth data/chat

pids=()
stop() {
	trap - INT TERM EXIT
	if ((${#pids[@]})); then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
	fi
}
trap stop INT TERM EXIT

# Embedded defaults: a DATABASE_URL from the caller's environment would
# point both services at one database, so it is cleared here.
# The page is served by chat on its web port and calls auth from there.
DATABASE_URL= REST_SERVER_ADDRESS=127.0.0.1 REST_SERVER_PORT=$auth_port DATA_DIR=data/auth METRICS_ADDRESS=$auth_metrics_addr \
	CORS_ALLOWED_ORIGINS="http://127.0.0.1:$web_port,http://localhost:$web_port" \
	bin/auth --config "$env_file" &
pids+=($!)
DATABASE_URL= GRPC_SERVER_ADDRESS=127.0.0.1 GRPC_SERVER_PORT=$chat_port DATA_DIR=data/chat METRICS_ADDRESS=$metrics_addr \
	WEB_SERVER_ADDRESS=127.0.0.1 WEB_SERVER_PORT=$web_port WEB_AUTH_URL="http://127.0.0.1:$auth_port" \
	bin/chat --config "$env_file" &
pids+=($!)

cat <<MSG

  GRPCChatter is starting:
    auth  http://127.0.0.1:$auth_port   (POST /register, POST /login; metrics on http://$auth_metrics_addr/metrics)
    chat  127.0.0.1:$chat_port          (gRPC; metrics on http://$metrics_addr/metrics)

  Chat in a browser:    http://127.0.0.1:$web_port
  In another terminal:  bin/chatter
  Press Ctrl-C to stop both.

MSG

# Stop everything as soon as either process exits.
wait -n "${pids[@]}" || true
