#!/usr/bin/env bash
# Starts bin/auth (embedded SQLite) and bin/chat together, waits until both
# answer, then prints where they are; Ctrl-C stops both cleanly. If a
# service exits or does not answer within 30 s, its own error is printed,
# the other one is stopped and the script fails.
#
# Addresses are the services' own keys, taken from the environment or else
# from .env.local (environment wins), else these defaults:
#   REST_SERVER_ADDRESS=127.0.0.1  REST_SERVER_PORT=8080  auth (HTTP)
#   AUTH_METRICS_ADDRESS=127.0.0.1:9091    auth's METRICS_ADDRESS ("" for none)
#   GRPC_SERVER_ADDRESS=127.0.0.1  GRPC_SERVER_PORT=5050  chat (gRPC)
#   WEB_SERVER_ADDRESS=127.0.0.1   WEB_SERVER_PORT=8081   chat's page, WebSocket and HTTP/JSON
#   METRICS_ADDRESS=127.0.0.1:9090         chat's metrics ("" for none)
# WEB_AUTH_URL and CORS_ALLOWED_ORIGINS follow from them unless set. The
# older AUTH_PORT and CHAT_PORT, in the environment, still stand for
# REST_SERVER_PORT and GRPC_SERVER_PORT. A random SECRET is generated once
# into .env.local (git-ignored); data lives under data/, the services'
# logs in data/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/env-local.sh
source scripts/env-local.sh
# shellcheck source=scripts/procs.sh
source scripts/procs.sh

die() {
	echo "run: $*" >&2
	exit 1
}

# env_local KEY prints KEY's value in .env.local, the last one set there,
# and fails if it is not set. It reads the file as the services do
# (godotenv): KEY=VALUE lines, optionally after "export", the value
# optionally quoted, a " #" after an unquoted value starting a comment.
env_local() {
	local line value found=
	while IFS= read -r line || [[ -n $line ]]; do
		[[ $line =~ ^[[:space:]]*(export[[:space:]]+)?$1[[:space:]]*=[[:space:]]*(.*)$ ]] || continue
		value=${BASH_REMATCH[2]}
		if [[ $value =~ ^\"(.*)\"[[:space:]]*$ || $value =~ ^\'(.*)\'[[:space:]]*$ ]]; then
			value=${BASH_REMATCH[1]}
		else
			value=${value%%[[:space:]]#*}
			value=${value%"${value##*[![:space:]]}"}
		fi
		found=1
	done <"$env_file"
	[[ -n $found ]] && printf '%s' "$value"
}

# setting KEY DEFAULT [OLD_NAME]: KEY from the environment, else OLD_NAME
# from the environment, else KEY from .env.local, else DEFAULT. An empty
# value counts as unset, except for the metrics addresses (see optional).
setting() {
	local v
	if [[ -n ${!1:-} ]]; then
		printf '%s' "${!1}"
	elif [[ -n ${3:-} && -n ${!3:-} ]]; then
		printf '%s' "${!3}"
	elif v=$(env_local "$1") && [[ -n $v ]]; then
		printf '%s' "$v"
	else
		printf '%s' "$2"
	fi
}

# optional KEY DEFAULT: like setting, but an empty value, which turns the
# listener off, is kept.
optional() {
	local v
	if [[ -v $1 ]]; then
		printf '%s' "${!1}"
	elif v=$(env_local "$1"); then
		printf '%s' "$v"
	else
		printf '%s' "$2"
	fi
}

auth_host=$(setting REST_SERVER_ADDRESS 127.0.0.1)
auth_port=$(setting REST_SERVER_PORT 8080 AUTH_PORT)
auth_metrics=$(optional AUTH_METRICS_ADDRESS 127.0.0.1:9091)
chat_host=$(setting GRPC_SERVER_ADDRESS 127.0.0.1)
chat_port=$(setting GRPC_SERVER_PORT 5050 CHAT_PORT)
web_host=$(setting WEB_SERVER_ADDRESS 127.0.0.1)
web_port=$(setting WEB_SERVER_PORT 8081)
chat_metrics=$(optional METRICS_ADDRESS 127.0.0.1:9090)

for v in REST_SERVER_PORT:$auth_port GRPC_SERVER_PORT:$chat_port WEB_SERVER_PORT:$web_port; do
	p=${v#*:}
	[[ $p =~ ^[0-9]+$ ]] && ((p > 0 && p < 65536)) ||
		die "${v%%:*}=$p: make run needs a port from 1 to 65535 (0, any free port, would leave the page and chatter not knowing where)"
done
for bin in bin/auth bin/chat; do
	[[ -x $bin ]] || die "$bin is missing: run make build (or make run)"
done
command -v curl >/dev/null || die "curl is needed to tell when the services are ready"

# dial HOST prints the host to connect to for a listener on HOST: loopback
# for the wildcard addresses; url_host brackets an IPv6 address.
dial() {
	case $1 in
	0.0.0.0 | "") echo 127.0.0.1 ;;
	:: | "[::]") echo ::1 ;;
	*) echo "$1" ;;
	esac
}
url_host() {
	local h=${1#[}
	h=${h%]}
	if [[ $h == *:* ]]; then echo "[$h]"; else echo "$h"; fi
}
# metrics_url ADDRESS: where a metrics listener on host:port is scraped.
metrics_url() {
	[[ -n $1 ]] || {
		echo "off"
		return
	}
	echo "http://$(url_host "$(dial "$(url_host "${1%:*}")")"):${1##*:}/metrics"
}

auth_url="http://$(url_host "$(dial "$auth_host")"):$auth_port"
chat_dial="$(url_host "$(dial "$chat_host")"):$chat_port"
web_url="http://$(url_host "$(dial "$web_host")"):$web_port"
web_auth_url=$(setting WEB_AUTH_URL "$auth_url")
origins="http://127.0.0.1:$web_port,http://localhost:$web_port"
[[ $web_url == "http://127.0.0.1:$web_port" ]] || origins="$web_url,$origins"
cors=$(setting CORS_ALLOWED_ORIGINS "$origins")

logs=data/logs
mkdir -p data/auth data/chat "$logs"

# Each service runs in a process group of its own (job control on), so
# that Ctrl-C reaches this script alone, which then stops each service
# once: a second signal would cut chat's graceful shutdown short.
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

# failed NAME STATUS: reports a service that exited, in its own words:
# what it printed that is not a JSON log line (the error it exits with,
# naming the key and address, or a panic), or else its last log lines.
failed() {
	local log=$logs/$1.log own
	own=$(grep -v '^{' "$log" | tail -n 20 || true)
	echo "run: $1 exited with status $2:" >&2
	if [[ -n $own ]]; then echo "$own" >&2; else tail -n 10 "$log" >&2; fi
	echo "run: its log: $log" >&2
	exit 1
}

# The probes ask each service something only it answers, so that another
# program holding its port is not taken for it: auth's readiness (its
# database answers), and the page's config.json on chat's web listener,
# which chat binds with its gRPC one before serving either.
auth_ready() { [[ $(curl -fsS --max-time 2 "$auth_url/readyz" 2>/dev/null) == *'"ready"'* ]]; }
chat_ready() {
	[[ $(curl -fsS --max-time 2 "$web_url/config.json" 2>/dev/null) == *'"authUrl"'* ]] &&
		(exec 3<>"/dev/tcp/$(dial "$chat_host")/$chat_port") 2>/dev/null
}

stopping=
stop() {
	[[ -z $stopping ]] || return 0
	stopping=1
	# The bound below ends the stop; a second Ctrl-C must not cut it short
	# and leave a service running.
	trap '' INT TERM
	terminate 20 "${pids[@]}"
}
trap stop EXIT
trap 'exit 0' INT TERM

# Embedded defaults: a DATABASE_URL from the caller's environment would
# point both services at one database, so it is cleared here. Every
# address is passed in the environment, which the services prefer to
# .env.local, so that they listen where the probes and the banner look.
start auth env DATABASE_URL= DATA_DIR=data/auth \
	REST_SERVER_ADDRESS="$auth_host" REST_SERVER_PORT="$auth_port" METRICS_ADDRESS="$auth_metrics" \
	CORS_ALLOWED_ORIGINS="$cors" bin/auth --config "$env_file"
start chat env DATABASE_URL= DATA_DIR=data/chat \
	GRPC_SERVER_ADDRESS="$chat_host" GRPC_SERVER_PORT="$chat_port" METRICS_ADDRESS="$chat_metrics" \
	WEB_SERVER_ADDRESS="$web_host" WEB_SERVER_PORT="$web_port" WEB_AUTH_URL="$web_auth_url" \
	bin/chat --config "$env_file"

deadline=$((SECONDS + 30))
auth_up='' chat_up=''
until [[ -n $auth_up && -n $chat_up ]]; do
	check_alive
	[[ -n $auth_up ]] || ! auth_ready || auth_up=1
	[[ -n $chat_up ]] || ! chat_ready || chat_up=1
	if ((SECONDS >= deadline)); then
		[[ -n $auth_up ]] || die "auth did not answer on $auth_url/readyz within 30 s; its log: $logs/auth.log"
		die "chat did not answer on $web_url/config.json and $chat_dial within 30 s; its log: $logs/chat.log"
	fi
	[[ -n $auth_up && -n $chat_up ]] || sleep 0.2
done
check_alive

chatter=bin/chatter
[[ $auth_url == http://127.0.0.1:8080 ]] || chatter+=" --auth-url $auth_url"
[[ $chat_dial == 127.0.0.1:5050 ]] || chatter+=" --chat-addr $chat_dial"
printf '\n  GRPCChatter is up:\n'
printf '    auth  %-26s (POST /register, POST /login; metrics: %s)\n' "$auth_url" "$(metrics_url "$auth_metrics")"
printf '    chat  %-26s (gRPC; metrics: %s)\n\n' "$chat_dial" "$(metrics_url "$chat_metrics")"
printf '  Chat in a browser:    %s\n' "$web_url"
printf '  In another terminal:  %s\n' "$chatter"
printf '  Logs:                 %s\n' "$logs/auth.log, $logs/chat.log"
printf '  Press Ctrl-C to stop both.\n\n'

# Both run until Ctrl-C: a service that exits is a failure.
exited='' status=0
wait -n -p exited "${pids[@]}" || status=$?
for i in "${!pids[@]}"; do
	[[ ${pids[$i]} != "$exited" ]] || failed "${names[$i]}" "$status"
done
die "a service exited (status $status)"
