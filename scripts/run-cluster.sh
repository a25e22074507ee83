#!/usr/bin/env bash
# Starts a local cluster with nothing but the built binaries and curl: three
# NATS servers (bin/tools/nats-server, JetStream, routed to one another),
# bin/auth, and three bin/chat instances that share rooms over them and one
# SQLite file. Data lives under data/cluster/, each process's log in
# data/cluster/logs/. If a process fails to start or exits, everything is
# stopped and the script fails; Ctrl-C stops everything cleanly.
#
# Ports, each changed by its variable:
#   NATS_PORT_BASE=14222  NATS clients on BASE..BASE+2, routes on
#                         BASE+2000.., monitoring on BASE+4000.. (not 4222,
#                         where a NATS server may already run)
#   CHAT_PORT_BASE=5051   chat gRPC on BASE..BASE+2
#   CHAT_METRICS_PORT_BASE=9091  chat metrics on BASE..BASE+2
#   CHAT_WEB_PORT_BASE=8091  chat web (page, WebSocket) on BASE..BASE+2
#   AUTH_PORT=8080
#   AUTH_METRICS_PORT=9090  auth metrics (its own default, 9091, is chat-1's here)
set -euo pipefail
cd "$(dirname "$0")/.."

nats_server=${NATS_SERVER:-bin/tools/nats-server}
nats_base=${NATS_PORT_BASE:-14222}
chat_base=${CHAT_PORT_BASE:-5051}
metrics_base=${CHAT_METRICS_PORT_BASE:-9091}
web_base=${CHAT_WEB_PORT_BASE:-8091}
auth_port=${AUTH_PORT:-8080}
auth_metrics_port=${AUTH_METRICS_PORT:-9090}
root=data/cluster
logs=$root/logs
n=3

die() { echo "run-cluster: $*" >&2; exit 1; }

for v in NATS_PORT_BASE:nats_base CHAT_PORT_BASE:chat_base CHAT_METRICS_PORT_BASE:metrics_base CHAT_WEB_PORT_BASE:web_base AUTH_PORT:auth_port AUTH_METRICS_PORT:auth_metrics_port; do
	var=${v#*:}
	p=${!var}
	[[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p + 4002 < 65536)) || die "${v%:*}=$p is not a usable port"
done
for bin in "$nats_server" bin/auth bin/chat; do
	[[ -x $bin ]] || die "$bin is missing: run make build tools (or make run-cluster)"
done
command -v curl >/dev/null || die "curl is needed to tell when the servers are ready"

nats_port() { echo $((nats_base + $1 - 1)); }
route_port() { echo $((nats_base + 2000 + $1 - 1)); }
monitor_port() { echo $((nats_base + 4000 + $1 - 1)); }
chat_port() { echo $((chat_base + $1 - 1)); }
metrics_port() { echo $((metrics_base + $1 - 1)); }
web_port() { echo $((web_base + $1 - 1)); }

# A port taken by another program would fail a server late and obscurely.
busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for i in $(seq $n); do
	for p in "$(nats_port "$i")" "$(route_port "$i")" "$(monitor_port "$i")"; do
		busy "$p" && die "port $p is in use; choose other NATS ports with NATS_PORT_BASE"
	done
	busy "$(chat_port "$i")" && die "port $(chat_port "$i") is in use; set CHAT_PORT_BASE"
	busy "$(metrics_port "$i")" && die "port $(metrics_port "$i") is in use; set CHAT_METRICS_PORT_BASE"
	busy "$(web_port "$i")" && die "port $(web_port "$i") is in use; set CHAT_WEB_PORT_BASE"
done
busy "$auth_port" && die "port $auth_port is in use; set AUTH_PORT"
busy "$auth_metrics_port" && die "port $auth_metrics_port is in use; set AUTH_METRICS_PORT"

# shellcheck source=scripts/env-local.sh
source scripts/env-local.sh
# shellcheck source=scripts/procs.sh
source scripts/procs.sh
mkdir -p "$logs" "$root/auth" "$root/chat"

# Each child runs in a process group of its own (job control on), so that
# Ctrl-C reaches this script alone, which then stops the children once
# each: a second signal would cut a chat instance's graceful shutdown short.
set -m
names=()
pids=()

# start NAME COMMAND...: runs COMMAND in the background, its output in
# $logs/NAME.log.
start() {
	local name=$1
	shift
	"$@" >"$logs/$name.log" 2>&1 &
	names+=("$name")
	pids+=($!)
}

# failed NAME STATUS: reports a process that exited, with its last words.
failed() {
	echo "run-cluster: $1 exited with status $2; the end of $logs/$1.log:" >&2
	tail -n 15 "$logs/$1.log" >&2
	exit 1
}

# ready NAME URL: waits until URL answers 2xx, for at most 60 s.
ready() {
	local deadline=$((SECONDS + 60))
	until curl -fsS -o /dev/null --max-time 2 "$2" 2>/dev/null; do
		check_alive
		((SECONDS < deadline)) || die "$1 is not ready after 60 s (no answer from $2); see $logs/$1.log"
		sleep 0.2
	done
}

# stop stops the chat instances and auth first, so that the instances
# leave NATS before it goes, then the NATS servers.
stopping=
stop() {
	[[ -z $stopping ]] || return 0
	stopping=1
	# The timeouts below bound the stop; a second Ctrl-C must not cut it
	# short and leave servers running.
	trap '' INT TERM
	local i services=() nats=()
	for i in "${!pids[@]}"; do
		if [[ ${names[$i]} == nats-* ]]; then nats+=("${pids[$i]}"); else services+=("${pids[$i]}"); fi
	done
	((${#pids[@]})) && echo "run-cluster: stopping" >&2
	terminate 15 "${services[@]}"
	terminate 10 "${nats[@]}"
}
trap stop EXIT
trap 'exit 0' INT TERM

# NATS: all three at once, since JetStream needs a quorum to elect its
# meta leader. Ready is the full /healthz: in touch with the meta leader,
# and every stream kept here led and current. On a restart the streams
# get their leaders a moment after the meta leader is elected, and a chat
# instance started in between times out on its history stream;
# js-enabled-only would even pass on a lone node.
routes=$(for i in $(seq $n); do printf 'nats://127.0.0.1:%s,' "$(route_port "$i")"; done)
routes=${routes%,}
nats_urls=$(for i in $(seq $n); do printf 'nats://127.0.0.1:%s,' "$(nats_port "$i")"; done)
nats_urls=${nats_urls%,}
for i in $(seq $n); do
	start "nats-$i" "$nats_server" --addr 127.0.0.1 --port "$(nats_port "$i")" --name "nats-$i" \
		--jetstream --store_dir "$root/nats-$i" --http_port "$(monitor_port "$i")" \
		--cluster_name grpcchatter-local --cluster "nats://127.0.0.1:$(route_port "$i")" --routes "$routes"
done
for i in $(seq $n); do
	ready "nats-$i" "http://127.0.0.1:$(monitor_port "$i")/healthz"
done

# Auth on embedded SQLite, as scripts/run.sh has it; a DATABASE_URL from
# the caller's environment is cleared.
# The pages served by the chat instances call auth: their origins are let
# through (CORS).
origins=$(for i in $(seq $n); do printf 'http://127.0.0.1:%s,' "$(web_port "$i")"; done)
start auth env DATABASE_URL= REST_SERVER_ADDRESS=127.0.0.1 REST_SERVER_PORT="$auth_port" \
	METRICS_ADDRESS="127.0.0.1:$auth_metrics_port" \
	CORS_ALLOWED_ORIGINS="${origins%,}" DATA_DIR="$root/auth" bin/auth --config "$env_file"
ready auth "http://127.0.0.1:$auth_port/healthz"

# The chat instances share one SQLite file, which the first one migrates
# before the others open it.
chat() {
	start "chat-$1" env DATABASE_URL= DATA_DIR="$root/chat" INSTANCE_ID="chat-$1" \
		NATS_URL="$nats_urls" NATS_REPLICAS=$n \
		NATS_CREDS_FILE= NATS_TLS_CA_FILE= NATS_TLS_CERT_FILE= NATS_TLS_KEY_FILE= \
		GRPC_SERVER_ADDRESS=127.0.0.1 GRPC_SERVER_PORT="$(chat_port "$1")" \
		WEB_SERVER_ADDRESS=127.0.0.1 WEB_SERVER_PORT="$(web_port "$1")" WEB_AUTH_URL="http://127.0.0.1:$auth_port" \
		METRICS_ADDRESS="127.0.0.1:$(metrics_port "$1")" bin/chat --config "$env_file"
}
chat 1
ready chat-1 "http://127.0.0.1:$(metrics_port 1)/metrics"
for i in $(seq 2 $n); do chat "$i"; done
for i in $(seq 2 $n); do ready "chat-$i" "http://127.0.0.1:$(metrics_port "$i")/metrics"; done

chat_addrs=$(for i in $(seq $n); do printf '127.0.0.1:%s,' "$(chat_port "$i")"; done)
chat_addrs=${chat_addrs%,}
cat <<MSG

  GRPCChatter cluster is up:
    nats   $nats_urls
           (JetStream, replicas $n; monitoring on http://127.0.0.1:$(monitor_port 1)-$(monitor_port $n))
    auth   http://127.0.0.1:$auth_port   (POST /register, POST /login; metrics on http://127.0.0.1:$auth_metrics_port/metrics)
    chat   $chat_addrs
           (gRPC, instances chat-1..chat-$n; metrics on http://127.0.0.1:$(metrics_port 1)-$(metrics_port $n)/metrics)
    web    http://127.0.0.1:$(web_port 1) .. http://127.0.0.1:$(web_port $n)
           (the page of each instance: chat in a browser)

  NATS ports start at NATS_PORT_BASE=$nats_base, not 4222 by default, where
  a NATS server may already run. Data: $root/, logs: $logs/.

  In another terminal:
    bin/chatter --auth-url http://127.0.0.1:$auth_port --chat-addr $chat_addrs
  A room created on one instance can be joined on any other.
  Press Ctrl-C to stop everything.

MSG

# Any exit is a failure: the cluster runs until Ctrl-C.
exited= status=0
wait -n -p exited "${pids[@]}" || status=$?
for i in "${!pids[@]}"; do
	[[ ${pids[$i]} != "$exited" ]] || failed "${names[$i]}" "$status"
done
die "a process exited (status $status)"
