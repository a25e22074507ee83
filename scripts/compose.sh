#!/usr/bin/env bash
# Runs docker compose on deployments/compose.yaml, creating deployments/.env
# with fresh random secrets the first time. The env file is git-ignored.
set -euo pipefail
cd "$(dirname "$0")/.."

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
