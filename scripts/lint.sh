#!/usr/bin/env bash
# Static checks for every workspace module and the protobuf definitions.
# Expects the pinned tools on PATH (make lint puts bin/tools there).
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
for dir in $(go list -m -f '{{.Dir}}'); do
	(cd "$dir" && go vet ./...) || status=1
done

unformatted=$(gofmt -l $(go list -m -f '{{.Dir}}'))
if [[ -n "$unformatted" ]]; then
	echo "gofmt needed on:"; echo "$unformatted"; status=1
fi

(cd proto && buf lint) || status=1

# Generated code must match what the committed .proto files produce.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd proto && buf generate -o "$tmp")
while IFS= read -r -d '' f; do
	rel=${f#"$tmp"/}
	if ! cmp -s "$f" "proto/$rel"; then
		echo "stale generated code: proto/$rel (run make generate)"; status=1
	fi
done < <(find "$tmp" -name '*.go' -print0)
committed=$(cd proto && find . -name '*.pb.go' | sort)
fresh=$(cd "$tmp" && find . -name '*.pb.go' | sort)
if [[ "$committed" != "$fresh" ]]; then
	echo "generated files differ from the committed set"; status=1
fi

# Wire compatibility with the last commit on main, once there is one.
if git rev-parse --verify -q main >/dev/null && git cat-file -e main:proto/buf.yaml 2>/dev/null; then
	(cd proto && buf breaking --against "../.git#branch=main,subdir=proto") || status=1
fi

# The compose file, through the compose-spec reference loader and the
# deployment's rules; the checker's own tests show that each rule bites.
(cd tools && GOWORK=off go run ./composecheck ../deployments/compose.yaml ../deployments/env.example) || status=1
(cd tools && GOWORK=off go test ./composecheck) || status=1

exit $status
