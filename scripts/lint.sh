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

# Generated code must match what the committed .proto files produce. It
# lives in the SDK module (pkg/api), where buf.gen.yaml writes it.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/proto" "$tmp/pkg"
cp -r proto/. "$tmp/proto/"
(cd "$tmp/proto" && buf generate)
while IFS= read -r -d '' f; do
	rel=${f#"$tmp"/}
	if ! cmp -s "$f" "$rel"; then
		echo "stale generated code: $rel (run make generate)"; status=1
	fi
done < <(find "$tmp/pkg" -name '*.go' -print0)
committed=$(cd pkg && find . -name '*.pb.go' | sort)
fresh=$(cd "$tmp/pkg" && find . -name '*.pb.go' | sort)
if [[ "$committed" != "$fresh" ]]; then
	echo "generated files differ from the committed set"; status=1
fi

# The SDK module stands alone for its users: no replace directive, no
# requirement on another module of this repository (none is published),
# and nothing of the CLI's, the servers' or the tests' in its dependencies.
if grep -qE '^[[:space:]]*replace|grpcchatter/grpcchatter/' <(sed 1d pkg/go.mod); then
	echo "pkg/go.mod: the SDK module must not replace modules or require this repository's others"; status=1
fi
sdkdeps=$(cd pkg && GOWORK=off go list -deps -test ./... 2>&1) || { echo "$sdkdeps"; status=1; }
if banned=$(grep -E 'bubbletea|lipgloss|charm\.land|charmbracelet|jackc/pgx|gorm|go\.uber\.org/zap|grpcchatter/(internal|services|e2e|bench)' <<<"$sdkdeps"); then
	echo "the SDK module (pkg) depends on what only servers, the CLI or tests need:"; echo "$banned"; status=1
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
