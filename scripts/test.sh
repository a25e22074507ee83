#!/usr/bin/env bash
# Runs the tests of every module in the workspace. `go test ./...` does not
# work at a go.work root, so iterate the modules go.work lists.
set -euo pipefail
cd "$(dirname "$0")/.."

flags=(-race -count=1 -timeout "${TEST_TIMEOUT:-30m}")
status=0
for dir in $(go list -m -f '{{.Dir}}'); do
	echo "==> $(realpath --relative-to=. "$dir")"
	(cd "$dir" && go test "${flags[@]}" ./...) || status=1
done
exit $status
