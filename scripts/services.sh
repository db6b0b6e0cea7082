#!/usr/bin/env bash
# The production profile's servers on this machine: Postgres 15 and Redis from Debian's packages,
# listening on 127.0.0.1 only, with their data under the project.
#
#   scripts/services.sh up       install (apt-get, as root) when missing, initialise, start; idempotent
#   scripts/services.sh down     stop both (data kept)
#   scripts/services.sh status   one line per server
#   scripts/services.sh env      the CAMPAIGN_* variables of the production profile for these servers
#
# Configuration (environment):
#   CAMPAIGN_SERVICES_DIR   where the data lives (default <project>/data/services)
#   CAMPAIGN_PG_PORT        Postgres port on 127.0.0.1 (default 55432)
#   CAMPAIGN_REDIS_PORT     Redis port on 127.0.0.1 (default 56379)
#   CAMPAIGN_PG_PASSWORD    password of the `campaign` role (default: a development password)
#
# Postgres refuses to run as root: as root the cluster is owned by and run as the unprivileged
# system user `campaign_pg` (created when missing); otherwise as the calling user. The role
# `campaign` owns three databases: dagster (run/event/schedule storage), mlflow (tracking and
# registry) and warehouse (dbt's postgres target, raw tables and marts).
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVICES_DIR="${CAMPAIGN_SERVICES_DIR:-$PROJECT_DIR/data/services}"
PG_PORT="${CAMPAIGN_PG_PORT:-55432}"
REDIS_PORT="${CAMPAIGN_REDIS_PORT:-56379}"
PG_PASSWORD="${CAMPAIGN_PG_PASSWORD:-campaign-development-password}"
PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR="$SERVICES_DIR/postgres"
PG_DATA="$PG_DIR/data"
REDIS_DIR="$SERVICES_DIR/redis"
PG_SYSTEM_USER=campaign_pg
DATABASES=(dagster mlflow warehouse)

log() { echo "services: $*" >&2; }

install_packages() {
  local missing=()
  [ -x "$PG_BIN/initdb" ] || missing+=(postgresql-15)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v psql >/dev/null 2>&1 || missing+=(postgresql-client-15)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    log "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  log "installing ${missing[*]} with apt-get"
  apt-get update -qq
  # The packages' own clusters and services are not used: policy-rc.d keeps them from starting.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Run a command as the owner of the Postgres cluster.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_SYSTEM_USER" -- "$@"
  else
    "$@"
  fi
}

pg_owner_ready() {
  [ "$(id -u)" = 0 ] || return 0
  id "$PG_SYSTEM_USER" >/dev/null 2>&1 ||
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_SYSTEM_USER"
  mkdir -p "$PG_DIR"
  chown "$PG_SYSTEM_USER" "$PG_DIR"
  chmod 700 "$PG_DIR"
  # The cluster owner must be able to reach its directory.
  local dir="$PG_DIR"
  while [ "$dir" != / ]; do
    dir="$(dirname "$dir")"
    if ! runuser -u "$PG_SYSTEM_USER" -- test -x "$dir"; then
      log "$PG_SYSTEM_USER cannot enter $dir; make it world-executable (chmod o+x) or set CAMPAIGN_SERVICES_DIR"
      exit 1
    fi
  done
}

pg_running() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; }

psql_campaign() {
  PGPASSWORD="$PG_PASSWORD" psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U campaign "$@"
}

postgres_up() {
  mkdir -p "$PG_DIR"
  pg_owner_ready
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    log "initialising Postgres in $PG_DATA"
    local pwfile="$PG_DIR/.pwfile"
    (umask 077 && printf '%s\n' "$PG_PASSWORD" >"$pwfile")
    [ "$(id -u)" = 0 ] && chown "$PG_SYSTEM_USER" "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U campaign --pwfile="$pwfile" \
      --auth-host=scram-sha-256 --auth-local=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
  fi
  if ! pg_running; then
    # TCP on 127.0.0.1 only; the Unix socket lives in the cluster's own directory.
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DIR" \
      start >/dev/null
  fi
  for db in "${DATABASES[@]}"; do
    if ! psql_campaign -d postgres -tAc "select 1 from pg_database where datname = '$db'" | grep -q 1; then
      psql_campaign -d postgres -c "create database $db"
    fi
    # Day truncation and interval arithmetic on timestamptz use the session time zone (as the
    # DuckDB target pins TimeZone: UTC).
    psql_campaign -d postgres -c "alter database $db set timezone to 'UTC'"
  done
  log "postgres on 127.0.0.1:$PG_PORT (databases: ${DATABASES[*]})"
}

postgres_down() {
  if [ -s "$PG_DATA/PG_VERSION" ] && pg_running; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null
    log "postgres stopped"
  fi
}

redis_running() {
  [ -s "$REDIS_DIR/redis.pid" ] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null
}

redis_up() {
  mkdir -p "$REDIS_DIR"
  if ! redis_running; then
    # Append-only file fsynced every second plus a snapshot on shutdown: a restart loses nothing
    # that was acknowledged before a clean stop.
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
      --dir "$REDIS_DIR" --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" \
      --appendonly yes --appendfsync everysec --save "900 1" --dbfilename dump.rdb
  fi
  # Ready when it answers PONG (while it loads its data it answers LOADING).
  for _ in $(seq 1 300); do
    [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && break
    sleep 0.1
  done
  if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" != PONG ]; then
    log "redis did not answer on 127.0.0.1:$REDIS_PORT; see $REDIS_DIR/redis.log"
    exit 1
  fi
  log "redis on 127.0.0.1:$REDIS_PORT (data in $REDIS_DIR)"
}

redis_down() {
  if redis_running; then
    local pid
    pid="$(cat "$REDIS_DIR/redis.pid")"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown save >/dev/null 2>&1 || kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    log "redis stopped"
  fi
}

print_env() {
  local dsn="postgresql://campaign:$PG_PASSWORD@127.0.0.1:$PG_PORT"
  cat <<EOF
export CAMPAIGN_PROFILE=production
export CAMPAIGN_POSTGRES_URL=$dsn
export CAMPAIGN_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export CAMPAIGN_DAGSTER_POSTGRES_URL=$dsn/dagster
export MLFLOW_TRACKING_URI=$dsn/mlflow
EOF
}

case "${1:-}" in
  up)
    install_packages
    postgres_up
    redis_up
    ;;
  down)
    redis_down
    postgres_down
    ;;
  status)
    if pg_running 2>/dev/null; then echo "postgres: running on 127.0.0.1:$PG_PORT"; else echo "postgres: stopped"; fi
    if redis_running; then echo "redis: running on 127.0.0.1:$REDIS_PORT"; else echo "redis: stopped"; fi
    ;;
  env)
    print_env
    ;;
  *)
    echo "usage: $0 up|down|status|env" >&2
    exit 2
    ;;
esac
