# Sourced from the repository root by run.sh and run-cluster.sh: makes sure
# .env.local holds a SECRET, generating a random one the first time (the
# file is git-ignored), and names it in env_file.
env_file=.env.local
if [[ ! -f "$env_file" ]]; then
	(umask 077 && echo "SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '\n')" >"$env_file")
	echo "generated a new SECRET in $env_file"
fi
