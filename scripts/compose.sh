#!/usr/bin/env bash
# Runs docker compose on deployments/compose.yaml, creating deployments/.env
# with fresh random secrets the first time. The env file is git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

# Without Docker and its compose plugin the command below fails obscurely
# (an old docker reads "compose" as an unknown command and --env-file as an
# unknown flag): say what is missing and what runs without it.
instead="Without Docker: make run starts auth and chat on this machine, make run-cluster adds three NATS nodes and three chat instances."
if ! command -v docker >/dev/null 2>&1; then
	echo "compose: docker is not installed; this needs Docker with the compose plugin (docker compose version)." >&2
	echo "$instead" >&2
	exit 1
fi
if ! docker compose version >/dev/null 2>&1; then
	echo "compose: docker is installed but not its compose plugin: 'docker compose version' fails. Install Docker Compose v2 (the docker-compose-plugin package)." >&2
	echo "$instead" >&2
	exit 1
fi

env_file=deployments/.env
if [[ ! -f "$env_file" ]]; then
	umask 077
	{
		echo "SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')"
		echo "POSTGRES_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
	} >"$env_file"
	echo "wrote $env_file with new secrets"
fi
exec docker compose --env-file "$env_file" -f deployments/compose.yaml "$@"
