#!/usr/bin/env bash
# Builds GoToSocial v0.17.3 from the Go module proxy into a cache directory and prints the
# binary's path. The integration tests run this binary as a real Mastodon-API server.
# Recipe: ../shared/reference/gotosocial-test-server.md (GoToSocial's go.mod has a replace
# directive, so `go install pkg@version` is refused; a throw-away wrapper module repeats it).
# The wrapper module is kept out of fediops' own go.mod on purpose.
set -euo pipefail

version=v0.17.3
cache="${FEDIOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fediops}"
bin="$cache/gotosocial-$version/gotosocial"

if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/gotosocial-$version.lock"
flock 9
if [ -x "$bin" ]; then # built by a concurrent run while we waited for the lock
  echo "$bin"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
cat > go.mod <<MOD
module gtsbuild

go 1.22.2

replace modernc.org/sqlite => gitlab.com/NyaaaWhatsUpDoc/sqlite v1.33.1-concurrency-workaround

require github.com/superseriousbusiness/gotosocial $version
MOD
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/superseriousbusiness/gotosocial/cmd/gotosocial"
GO
export GONOSUMDB=github.com/superseriousbusiness,gitlab.com/NyaaaWhatsUpDoc GOFLAGS=-mod=mod GOTOOLCHAIN=local
echo "building GoToSocial $version (several minutes, once; cached in $cache)" >&2
go mod tidy >&2
mkdir -p "$(dirname "$bin")"
CGO_ENABLED=0 go build -trimpath -tags "netgo osusergo static_build kvformat timetzdata" \
  -o "$bin.tmp" github.com/superseriousbusiness/gotosocial/cmd/gotosocial >&2
mv "$bin.tmp" "$bin"
echo "$bin"
