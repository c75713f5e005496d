#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the orders-extractor tests and for trying the production path.
#
#   bash scripts/start_postgres.sh [DIR] [PORT]     init a cluster in DIR (default ./.pg) if needed, start it on
#                                                   127.0.0.1:PORT (default 55432), print its SQLAlchemy URL
#   bash scripts/start_postgres.sh stop [DIR]       stop the server of DIR (no-op when it is not running)
#   bash scripts/start_postgres.sh install-only     only make sure Debian's postgresql binaries are installed
#
# Idempotent: a running server is left alone and its URL printed again. Auth is `trust` for local connections
# (loopback only: this is a test server, never expose it). PostgreSQL refuses to run as root, so as root the
# cluster belongs to the `postgres` system user. Diagnostics go to stderr, the URL alone to stdout.
set -euo pipefail

say() { printf '[start_postgres] %s\n' "$*" >&2; }

find_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

ensure_installed() {
  if find_bindir >/dev/null; then return 0; fi
  if [ "$(id -u)" != 0 ]; then
    say "PostgreSQL binaries not found under /usr/lib/postgresql and not root: cannot apt-get install postgresql"
    return 1
  fi
  say "installing Debian's postgresql (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
  find_bindir >/dev/null || { say "postgresql installed but initdb/pg_ctl still not found"; return 1; }
}

# run a command as the cluster owner (root cannot run postgres)
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=start
case "${1:-}" in
  stop|install-only|start) cmd=$1; shift ;;
esac

ensure_installed
[ "$cmd" = install-only ] && exit 0
BIN=$(find_bindir)

DIR=${1:-./.pg}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
DATA="$DIR/data"

if [ "$cmd" = stop ]; then
  if [ -f "$DATA/postmaster.pid" ]; then
    as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
  fi
  exit 0
fi

PORT=${2:-55432}
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || { say "no 'postgres' system user to own the cluster"; exit 1; }
  chown postgres:postgres "$DIR"
  [ -d "$DATA" ] && chown -R postgres:postgres "$DATA"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  say "initialising a cluster in $DATA"
  as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >&2 \
    || as_owner "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-locale >&2
fi

if as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  # already running: report the port it really listens on
  PORT=$(sed -n 4p "$DATA/postmaster.pid")
  say "already running on port $PORT"
else
  # the socket lives in the cluster directory: /var/run/postgresql may not exist or belong to someone else
  as_owner "$BIN/pg_ctl" -D "$DATA" -l "$DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c full_page_writes=off" start >&2 || {
      say "PostgreSQL failed to start; server log follows"
      tail -n 30 "$DIR/server.log" >&2 || true
      exit 1
    }
fi

echo "postgresql+psycopg://postgres@127.0.0.1:$PORT/postgres"
