# Sourced by run.sh and run-cluster.sh, which keep their processes in the
# arrays pids and names and define failed NAME STATUS.

# terminate SECONDS PID...: asks the processes to stop, and kills those
# still running after SECONDS.
terminate() {
	local secs=$1 p alive
	shift
	(($#)) || return 0
	kill -TERM "$@" 2>/dev/null || true
	local deadline=$((SECONDS + secs))
	while ((SECONDS < deadline)); do
		alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	kill -KILL "$@" 2>/dev/null || true
	wait "$@" 2>/dev/null || true
}

# check_alive fails on the first started process that has exited.
check_alive() {
	local i status
	for i in "${!pids[@]}"; do
		if ! kill -0 "${pids[$i]}" 2>/dev/null; then
			status=0
			wait "${pids[$i]}" 2>/dev/null || status=$?
			failed "${names[$i]}" "$status"
		fi
	done
}
