#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script). On a fresh machine it needs
# only Go and the Go module proxy: it builds the GoToSocial test server first (cached), then
# checks formatting and vet, runs every test, and gives each fuzz target a short run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

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

step "benchmarks (one run each: they must keep working; figures in README.md)"
go test -count=1 -run '^$' -benchtime=1x -benchmem \
  -bench 'BenchmarkMergeCommand50x20000|BenchmarkCollect50x20000GCS|BenchmarkMerge50x20000$|BenchmarkCompute100k' \
  ./cmd/fediops ./functions/blocklist ./functions/blocklist/merge ./functions/blocklist/plan

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
