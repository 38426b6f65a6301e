#!/usr/bin/env bash
# Runs a local Redis server for the AppHost's LocalProcesses mode, in the foreground.
# Environment (set by the AppHost): TRACKER_REDIS_PORT, TRACKER_REDIS_SERVER, TRACKER_REDIS_DATA,
# TRACKER_REDIS_PASSWORD.
# The password goes into a config file only its owner can read, never onto the command line (where any
# local user could see it in the process list). Ends with exec so the stop signal reaches redis-server.
set -euo pipefail

: "${TRACKER_REDIS_PORT:?TRACKER_REDIS_PORT is not set}"
: "${TRACKER_REDIS_SERVER:?TRACKER_REDIS_SERVER is not set}"
: "${TRACKER_REDIS_DATA:?TRACKER_REDIS_DATA is not set}"
: "${TRACKER_REDIS_PASSWORD:?TRACKER_REDIS_PASSWORD is not set}"

mkdir -p "$TRACKER_REDIS_DATA"
chmod 700 "$TRACKER_REDIS_DATA"
config="$TRACKER_REDIS_DATA/redis.conf"
umask 077
# Redis config values are quoted strings; escape backslashes and quotes in the password.
escaped_password=${TRACKER_REDIS_PASSWORD//\\/\\\\}
escaped_password=${escaped_password//\"/\\\"}
cat > "$config" <<CONF
bind 127.0.0.1
port $TRACKER_REDIS_PORT
protected-mode yes
daemonize no
dir "$TRACKER_REDIS_DATA"
save 300 1
appendonly no
requirepass "$escaped_password"
CONF

exec "$TRACKER_REDIS_SERVER" "$config"
