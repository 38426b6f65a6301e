#!/usr/bin/env bash
# Runs a local PostgreSQL server for the AppHost's LocalProcesses mode, in the foreground.
# Environment (set by the AppHost): PGPORT, TRACKER_PG_BIN, TRACKER_PG_DATA, TRACKER_PG_PASSWORD.
# - Creates the cluster on first use; the data directory survives restarts.
# - Sets the superuser password from the AppHost parameter on every start, so a changed or regenerated
#   parameter never locks the AppHost out of its own data.
# - PostgreSQL refuses to run as root: as root it runs as the 'postgres' user.
# - Ends with exec, so the orchestrator's stop signal reaches postgres itself and nothing is orphaned.
set -euo pipefail

: "${PGPORT:?PGPORT is not set}"
: "${TRACKER_PG_BIN:?TRACKER_PG_BIN is not set}"
: "${TRACKER_PG_DATA:?TRACKER_PG_DATA is not set}"
: "${TRACKER_PG_PASSWORD:?TRACKER_PG_PASSWORD is not set}"

run_as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "PostgreSQL cannot run as root and there is no 'postgres' user; create one (useradd --system postgres) or run as a normal user." >&2
    exit 1
  fi
  run_as_owner=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi

mkdir -p "$TRACKER_PG_DATA"
if [ "${#run_as_owner[@]}" -gt 0 ]; then chown postgres:postgres "$TRACKER_PG_DATA"; fi
chmod 700 "$TRACKER_PG_DATA"

if [ ! -s "$TRACKER_PG_DATA/PG_VERSION" ]; then
  echo "Creating a PostgreSQL cluster in $TRACKER_PG_DATA"
  "${run_as_owner[@]}" "$TRACKER_PG_BIN/initdb" -D "$TRACKER_PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi

socket_dir="$TRACKER_PG_DATA/sockets"
mkdir -p "$socket_dir"
if [ "${#run_as_owner[@]}" -gt 0 ]; then chown postgres:postgres "$socket_dir"; fi

# Single-user mode: no network, no clients; it only sets the password and exits.
escaped_password=${TRACKER_PG_PASSWORD//\'/\'\'}
printf "ALTER ROLE postgres PASSWORD '%s';\n" "$escaped_password" \
  | "${run_as_owner[@]}" "$TRACKER_PG_BIN/postgres" --single -D "$TRACKER_PG_DATA" postgres >/dev/null

exec "${run_as_owner[@]}" "$TRACKER_PG_BIN/postgres" -D "$TRACKER_PG_DATA" -p "$PGPORT" -k "$socket_dir" \
  -c listen_addresses=127.0.0.1 -c password_encryption=scram-sha-256
