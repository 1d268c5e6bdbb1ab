#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script). On a fresh machine it needs
# only Go and the Go module proxy: it builds the GoToSocial test server first (cached), then
# checks formatting and vet, runs every test, and gives each fuzz target a short run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "PostgreSQL server (throw-away clusters stand in for Cloud SQL clones)"
# Debian's postgresql package: the tests run initdb and postgres from /usr/lib/postgresql/*/bin
# (as the postgres user when run as root: shared/testsupport/pgserver).
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && ! command -v postgres >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "PostgreSQL is not installed and cannot be installed here: run apt-get install postgresql as root" >&2
    exit 1
  fi
fi
ls -d /usr/lib/postgresql/*/bin 2>/dev/null || command -v postgres
export FEDIOPS_REQUIRE_POSTGRES=1 # the database tests fail, rather than skip, without a server

step "GoToSocial test server"
export FEDIOPS_GOTOSOCIAL_BIN="$(scripts/build-gotosocial.sh)"
echo "$FEDIOPS_GOTOSOCIAL_BIN"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

if [ -d infra ]; then
  step "terraform fmt"
  if command -v terraform >/dev/null; then
    terraform fmt -check -recursive -diff infra
  else
    echo "terraform is not installed; the HCL policy test (go test ./infra/...) still parses infra/*.tf"
  fi
fi

step "go test"
if command -v gcloud >/dev/null; then
  echo "gcloud found ($(command -v gcloud)): the gcloud commands fediops prints and documents are parsed with its parser"
else
  echo "gcloud is not installed: the gcloud command checks (TestHintsParseWithGcloud, TestDocumentedGcloudCommandsParse, gcloudcheck) are SKIPPED"
fi
go test -count=1 -timeout 30m ./...

step "fuzz (short runs)"
fuzztime="${FEDIOPS_FUZZTIME:-10s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "$pkg $target"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg" >/dev/null
  done
done

step "all checks passed"
