#!/usr/bin/env bash
# One entry point for a fresh checkout:
#   bash scripts/bootstrap.sh demo [rapport demo options]   install everything, then run the demo end to end
#   bash scripts/bootstrap.sh test [pytest options]         install everything (+ test servers), run the tests
#   bash scripts/bootstrap.sh setup                         only install
#   bash scripts/bootstrap.sh locks {demo|test|setup}       print the lock files that command installs from
# Installs into ./.venv from the lock files (pinned, hashed) with uv; needs only Python 3.11 and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
UV_VERSION=0.13.9
say() { printf '[bootstrap %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

find_python() {
  for cand in "${PYTHON:-}" python3.11 python3 python; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 &&
       "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' 2>/dev/null; then
      echo "$cand"; return 0
    fi
  done
  echo "rapport needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

setup() {  # lock files (several: their union, pinned alike)
  local lock=$*
  if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    "$(find_python)" -m venv .venv
  fi
  if ! .venv/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
    say "installing uv $UV_VERSION (the installer that reads the lock file)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  fi
  say "installing pinned dependencies from $lock"
  # shellcheck disable=SC2086  # one argument per lock file
  # --compile-bytecode: otherwise the first `rapport run` compiles ~1,450 modules before its first task (~2.5 s)
  VIRTUAL_ENV="$ROOT/.venv" .venv/bin/uv pip sync --quiet --compile-bytecode --python .venv/bin/python $lock
  echo "$lock" > .venv/rapport-locks
  VIRTUAL_ENV="$ROOT/.venv" .venv/bin/uv pip install --quiet --python .venv/bin/python --no-deps -e .
  # the dbt manifest the DAG renders its dbt tasks from (a `dbt parse`, ~4 s), so that the first run does not
  # wait for it; a run regenerates it whenever the dbt project changed since
  .venv/bin/python -m rapport.orchestration.dbt_tasks --if-stale >/dev/null
  say "environment ready: $ROOT/.venv"
}

# The lock files a command installs. `sync` removes whatever the locks do not list, so a checkout set up for
# the tests (the dev lock: the runtime pins plus the test tools) keeps its set when the demo runs in it:
# otherwise the demo would uninstall pytest and friends under a test run going on in the same checkout.
locks_for() {
  case "$1" in
    setup) echo "requirements-dev.lock" ;;
    test) echo "requirements-dev.lock requirements-spark.lock" ;;
    demo)
      if [ -f .venv/rapport-locks ] && grep -qw "requirements-dev.lock" .venv/rapport-locks; then
        cat .venv/rapport-locks
      else
        echo "requirements.lock"
      fi ;;
  esac
}

cmd=${1:-}
shift || true
export DO_NOT_TRACK=1
case "$cmd" in
  locks)
    locks_for "${1:-}" ;;
  setup)
    # shellcheck disable=SC2046  # one argument per lock file
    setup $(locks_for setup) ;;
  demo)
    # shellcheck disable=SC2046
    setup $(locks_for demo)
    say "running: rapport demo $*"
    exec .venv/bin/rapport demo "$@" ;;
  test)
    # Servers the tests need, from Debian's packages, installed while uv installs the Python packages: both
    # mostly wait on downloads, and on a fresh machine each takes a minute or more. A failure here is
    # reported; the tests that need the missing server then skip loudly, and nothing else does.
    servers_log=$(mktemp)
    (
      bash scripts/install_chromium.sh || say "WARNING: Chromium could not be installed; report browser tests will skip"
      bash scripts/install_java.sh >/dev/null || say "WARNING: Java 17 could not be installed; Spark tests will skip"
      bash scripts/start_postgres.sh install-only || say "WARNING: PostgreSQL could not be installed; postgres tests will skip"
    ) > "$servers_log" 2>&1 &
    servers=$!
    # the spark extra too (requirements-spark.lock: dbt-spark, pyspark), for the tests that build on Spark
    # shellcheck disable=SC2046
    setup $(locks_for test)
    say "waiting for the test servers' packages (Chromium, Java 17, PostgreSQL)"
    wait "$servers" || true
    cat "$servers_log"
    rm -f "$servers_log"
    say "running the test suite"
    # Two workers, one test file each at a time (module fixtures stay per file): most slow tests wait on
    # subprocesses (Airflow, dbt, Chromium, PostgreSQL), so this roughly halves the wall time on 2 cores.
    # --no-loadscope-reorder: files start in collection order, which tests/conftest.py sets to the longest first
    # (tests/ci_order.py); xdist's own order (most tests first) left the long one-test files to run last, alone.
    # the slowest tests are listed at the end: where CI's 40 minutes go
    if [ "$#" -eq 0 ]; then set -- -n 2 --dist loadfile --no-loadscope-reorder --durations=25; fi
    exec .venv/bin/pytest "$@" ;;
  *)
    echo "usage: bash scripts/bootstrap.sh {demo|test|setup} [args]" >&2
    exit 2 ;;
esac
