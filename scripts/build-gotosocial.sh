#!/usr/bin/env bash
# Builds GoToSocial v0.17.3 from the Go module proxy into a cache directory and prints the
# binary's path. The integration tests run this binary as a real Mastodon-API server.
# Recipe: GoToSocial's go.mod has a replace directive (modernc.org/sqlite → a fork), so
# `go install pkg@version` is refused. Instead a throw-away wrapper module in a temporary
# directory requires gotosocial at that version, repeats the replace directive, imports its
# cmd/gotosocial from a tools.go file, and `go build`s it with GoToSocial's release build tags.
# The wrapper module is kept out of fediops' own go.mod on purpose.
#
# Cached in ${FEDIOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fediops}/gotosocial-v0.17.3/:
#   gotosocial      the binary
#   web/template/   the HTML and email templates it needs at run time (web-template-base-dir)
#   web/assets/     its static files (web-asset-base-dir)
#   wazero/         WebAssembly compilation cache (GTS_WAZERO_COMPILATION_CACHE, filled by the tests)
#
# Toolchain: GoToSocial v0.17.3 runs SQLite (ncruces/go-sqlite3) and ffmpeg as WebAssembly under
# wazero v1.8.1, whose compiled code crashes when the binary is built with Go >= 1.24 ("panic:
# wasm error: out of bounds memory access" in the first migration; tetratelabs/wazero#2375,
# fixed in wazero v1.9.0). So it is built with a Go 1.23 toolchain, which the go command
# downloads (it is a module on the Go module proxy), and a cached binary built with any other
# Go version is rebuilt.
set -euo pipefail

version=v0.17.3
toolchain=go1.23.12
cache="${FEDIOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fediops}"
dir="$cache/gotosocial-$version"
bin="$dir/gotosocial"
web="$dir/web"

bin_ok() {
  [ -x "$bin" ] && GOTOOLCHAIN=local go version "$bin" 2>/dev/null | grep -q ": ${toolchain%.*}\."
}
web_ok() {
  [ -f "$web/template/index.tmpl" ] && [ -d "$web/assets" ]
}

if bin_ok && web_ok; then
  echo "$bin"
  exit 0
fi

mkdir -p "$dir"
exec 9>"$cache/gotosocial-$version.lock"
flock 9
if bin_ok && web_ok; then # built by a concurrent run while we waited for the lock
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
export GONOSUMDB=github.com/superseriousbusiness,gitlab.com/NyaaaWhatsUpDoc GOFLAGS=-mod=mod GOTOOLCHAIN=$toolchain

if ! bin_ok; then
  echo "building GoToSocial $version with $toolchain (several minutes, once; cached in $dir)" >&2
  go mod tidy >&2
  CGO_ENABLED=0 go build -trimpath -tags "netgo osusergo static_build kvformat timetzdata" \
    -o "$bin.tmp" github.com/superseriousbusiness/gotosocial/cmd/gotosocial >&2
  mv "$bin.tmp" "$bin"
fi

if ! web_ok; then
  moddir=$(go mod download -json "github.com/superseriousbusiness/gotosocial@$version" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  if [ ! -f "$moddir/web/template/index.tmpl" ]; then
    echo "GoToSocial's web templates not found in the module cache (dir: '$moddir')" >&2
    exit 1
  fi
  rm -rf "$web.tmp"
  mkdir -p "$web.tmp"
  cp -R "$moddir/web/template" "$moddir/web/assets" "$web.tmp/"
  chmod -R u+w "$web.tmp" # the module cache is read-only
  rm -rf "$web"
  mv "$web.tmp" "$web"
fi
echo "$bin"
