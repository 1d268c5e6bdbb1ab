#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script). On a fresh machine it needs
# only Go, git and the Go module proxy: it checks that the repository stands alone and that
# go.mod is tidy, builds the GoToSocial test server (cached), checks formatting and vet,
# cross-compiles the CLI, runs every test, runs a few again in a fresh clone with nothing beside
# it, and gives each fuzz target a short run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

step "self-contained"
# Tests and scripts read only what the repository holds (testdata/). The developers' reference
# folder beside the repository (shared/, one level up) is not there for someone who clones it.
# (The patterns are bracketed so that this line does not match itself.)
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  outside=$(git grep -n -I -e '[.][.]/shared' -e 'shared/refe[r]ence' -- . || true)
else # a source archive: every file
  outside=$(grep -rn -I -e '[.][.]/shared' -e 'shared/refe[r]ence' . || true)
fi
if [ -n "$outside" ]; then
  echo "these lines refer to files outside the repository:"; echo "$outside"; exit 1
fi
echo "nothing refers to the reference folder beside the repository"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # No built binary or other large blob is committed by mistake (the largest test data is far below 2 MB).
  big=$(git ls-files -z | xargs -0 -r du -k 2>/dev/null | awk '$1 > 2048 {print $2 " (" $1 " KiB)"}')
  if [ -n "$big" ]; then
    echo "files over 2 MiB are tracked (a built binary?):"; echo "$big"; exit 1
  fi
fi

step "go mod tidy"
if ! go mod tidy -diff; then
  echo "go.mod or go.sum is not tidy: run go mod tidy"; exit 1
fi

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

step "cross-compile the CLI"
# The CLI runs on the operator's machine: Linux, macOS or Windows, on amd64 or arm64. Packages
# stay in the build cache, so only a first run compiles them for each target (about 2 minutes
# each on 2 cores; then seconds). This proves that it compiles and links, so optimisation is
# off (-N -l), which saves a third of that first run.
for target in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do
  echo "$target"
  CGO_ENABLED=0 GOOS=${target%/*} GOARCH=${target#*/} go build -gcflags=all='-N -l' -o /dev/null ./cmd/fediops
done

step "go test"
if command -v gcloud >/dev/null; then
  echo "gcloud found ($(command -v gcloud)): the gcloud commands fediops prints and documents are parsed with its parser"
else
  echo "gcloud is not installed: the gcloud command checks (TestHintsParseWithGcloud, TestDocumentedGcloudCommandsParse, gcloudcheck) are SKIPPED"
fi
go test -count=1 -timeout 30m ./...

step "from a fresh clone"
# What a stranger gets from git clone, in a directory with nothing beside it: the packages that
# read test data, and the CLI's version (built from the clone, with its git revision).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git clone -q --no-hardlinks . "$tmp/fediops"
  if [ -n "$(git status --porcelain)" ]; then
    echo "(uncommitted changes are not in the clone: it tests HEAD)"
  fi
else # a source archive: a copy of it
  mkdir "$tmp/fediops" && cp -R . "$tmp/fediops/"
fi
(cd "$tmp/fediops" &&
  go test -count=1 ./functions/blocklist/lists/ ./functions/blocklist/merge/ &&
  go test -count=1 -run 'TestFediBlockHoleConfigsLoadUnchanged' ./functions/blocklist/ &&
  go test -count=1 -run 'Version' ./cmd/fediops/)

step "benchmarks (one run each: they must keep working; figures in README.md)"
go test -count=1 -run '^$' -benchtime=1x -benchmem \
  -bench 'BenchmarkMergeCommand50x20000|BenchmarkCollect50x20000GCS|BenchmarkMerge50x20000$|BenchmarkCompute100k|BenchmarkSignUpToDecision' \
  ./cmd/fediops ./functions/blocklist ./functions/blocklist/merge ./functions/blocklist/plan ./e2e

step "fuzz (short runs)"
fuzztime="${FEDIOPS_FUZZTIME:-10s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "$pkg $target"
    if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg" >"$tmp/fuzz.log" 2>&1; then
      # A failure the fuzzer found is saved under testdata/fuzz and fails again when rerun.
      # One with no saved input (a worker killed on a loaded machine) is retried once.
      if [ -n "$(git status --porcelain -- "$dir/testdata/fuzz" 2>/dev/null)" ] ||
        ! grep -q -e 'fuzzing process hung or terminated unexpectedly' -e 'context deadline exceeded' "$tmp/fuzz.log"; then
        cat "$tmp/fuzz.log"; exit 1
      fi
      echo "  (the fuzzer's worker died without an input to show; once more)"
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg" >/dev/null
    fi
  done
done

step "all checks passed"
