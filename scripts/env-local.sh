# shellcheck shell=bash
# Sourced from the repository root by run.sh and run-cluster.sh: makes sure
# .env.local holds a SECRET, generating a random one the first time (the
# file is git-ignored), and names it in env_file. Both services read the
# file (--config), and run.sh takes the addresses from it; the environment
# wins over it.
env_file=.env.local
if [[ ! -f "$env_file" ]]; then
	(
		umask 077
		cat >"$env_file" <<ENV
SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')
# make run listens on these; uncomment to change them (the environment wins):
# REST_SERVER_PORT=8080
# GRPC_SERVER_PORT=5050
# WEB_SERVER_PORT=8081
# AUTH_METRICS_ADDRESS=127.0.0.1:9091
# METRICS_ADDRESS=127.0.0.1:9090
ENV
	)
	echo "generated a new SECRET in $env_file"
fi
