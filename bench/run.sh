#!/usr/bin/env bash
# Tracker's benchmark: one command, a Markdown table, and a check that nothing was lost.
#   bench/run.sh [--quick] [scenario ...]
#   scenarios: baseline ingest-single-32 ingest-single-64 ingest-batch-100
#              usage-daily-32 usage-daily-64 usage-top-32 usage-top-64 usage-daily-uncached usage-top-uncached
#              limiter-on limiter-off (cached daily on one connection, with and without rate limiting: its added latency)
#              ingest-single-64-unlimited usage-top-64-unlimited (the same without rate limiting: what the limiter costs)
#              ingest-single-64-keys (single-event ingest spread over 1,000 API keys of 20 clients: each key is a
#              rate-limit partition of its own, about 20 requests/s each, instead of one key taking everything)
#              ingest-single-64-ids ingest-batch-100-ids (the same as ingest-single-64 and ingest-batch-100 with a
#              unique id on every log: what exactly-once deduplication costs)
# Builds Release; starts PostgreSQL, Redis, the migration worker and the API on free loopback ports (durable
# commits: fsync and synchronous_commit stay on); registers a client; warms each API process up with 20 s of
# ingest; runs each scenario after a warm-up of its own; after every write scenario compares the rows in
# PostgreSQL with the acknowledged logs and fails on any difference; stops everything it started. Each row also
# says how many microseconds of CPU the measured API process, the PostgreSQL cluster and Redis spent per request
# served. Before the first usage scenario, bench/DataLoader loads 10 million logs of 10,000 clients spread over
# the retention window by COPY (--quick: 100,000 logs of 1,000 clients), then one unmeasured pass reads every
# cached scenario's answers once; uncached scenarios run against a second API instance with Usage:CacheAnswers
# off. TRACKER_BENCH_LOAD_DAYS (default 89) changes the span the history is spread over.
# TRACKER_BENCH_PROFILE=DIR also samples the whole machine with perf (linux-perf) during each scenario and writes
# DIR/<scenario>.txt: where each request's CPU went, by process and, in the API, by code (bench/perf-summary.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

seconds=10 warmup=3 load_clients=10000 load_logs=10000000 key_clients=20
# 89 days: the retention window (90) less the day whose partition the retention job may be dropping.
load_days=${TRACKER_BENCH_LOAD_DAYS:-89}
scenarios=()
for argument in "$@"; do
  case "$argument" in
    --quick) seconds=2 warmup=1 load_clients=1000 load_logs=100000 key_clients=2 ;;
    *) scenarios+=("$argument") ;;
  esac
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(baseline ingest-single-32 ingest-single-64 ingest-single-64-ids ingest-single-64-unlimited ingest-single-64-keys
  ingest-batch-100 ingest-batch-100-ids
  usage-daily-32 usage-daily-64 usage-top-32 usage-top-64 usage-top-64-unlimited usage-daily-uncached usage-top-uncached
  limiter-on limiter-off)

# TRACKER_BENCH_TMPDIR: where the work directory goes (the tests give it one of their own, to find its servers).
work=$(mktemp -d "${TRACKER_BENCH_TMPDIR:-/tmp}/tracker-bench.XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; rm -f "/tmp/perf-$pid.map"; done
  [ -f "$work/pg/postmaster.pid" ] && pg_as_owner "$pg_bin/pg_ctl" -D "$work/pg" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }

# --- what the benchmark needs -------------------------------------------------------------------------------
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || ! command -v redis-server >/dev/null; then
  sudo=(); [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq postgresql redis-server >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_as_owner() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi; }

echo "Building Release..." >&2
dotnet build "$root/Tracker.ApiService" -c Release -nologo -v:q -clp:NoSummary >&2
dotnet build "$root/Tracker.MigrationService" -c Release -nologo -v:q -clp:NoSummary >&2
dotnet build "$root/bench/LoadGen" -c Release -nologo -v:q -clp:NoSummary >&2
dotnet build "$root/bench/Baseline" -c Release -nologo -v:q -clp:NoSummary >&2
dotnet build "$root/bench/DataLoader" -c Release -nologo -v:q -clp:NoSummary >&2

# --- servers ------------------------------------------------------------------------------------------------
pg_port=$(free_port); redis_port=$(free_port); api_port=$(free_port); uncached_port=$(free_port); unlimited_port=$(free_port)
baseline_port=$(free_port)
mkdir -p "$work/pg" "$work/redis"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$work/pg"
pg_as_owner "$pg_bin/initdb" -D "$work/pg" -U postgres --auth=trust -E UTF8 >/dev/null
pg_as_owner "$pg_bin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w -o \
  "-p $pg_port -k $work/pg -c listen_addresses=127.0.0.1 -c shared_buffers=512MB -c max_wal_size=4GB -c max_connections=200" start >/dev/null
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no --dir "$work/redis" >/dev/null &
redis_pid=$!
pids+=($!)

db="Host=127.0.0.1;Port=$pg_port;Username=postgres;Database=trackerdb"
psql_db() { psql -h 127.0.0.1 -p "$pg_port" -U postgres -d trackerdb -tAc "$1"; }

# CPU time in clock ticks (user + system) of one process, and of the whole PostgreSQL cluster: the postmaster, the
# backends and auxiliary processes it forked and, through its cutime and cstime, those that have already exited.
# Divided by the requests a scenario served, it says where each request's CPU went: steadier across runs on a
# noisy machine than throughput.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_ticks() {
  local postmaster total pid
  postmaster=$(head -n 1 "$work/pg/postmaster.pid")
  total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
  for pid in $(pgrep -P "$postmaster"); do total=$((total + $(ticks "$pid"))); done
  echo "$total"
}
clock_ticks=$(getconf CLK_TCK)

ConnectionStrings__trackerdb="$db" OTEL_EXPORTER_OTLP_ENDPOINT='' \
  dotnet "$root/Tracker.MigrationService/bin/Release/net10.0/Tracker.MigrationService.dll" >"$work/migrations.log" 2>&1 \
  || { cat "$work/migrations.log"; exit 1; }

signing_key=$(head -c 48 /dev/urandom | base64 -w0)
# Profiling: perf can name JIT-compiled methods only from the runtime's perf maps (/tmp/perf-PID.map), and only
# when code is not double-mapped for W^X.
profile_dir=${TRACKER_BENCH_PROFILE:-}
perf_env=()
if [ -n "$profile_dir" ]; then
  command -v perf >/dev/null || { echo "TRACKER_BENCH_PROFILE needs perf: apt-get install linux-perf" >&2; exit 2; }
  mkdir -p "$profile_dir"; profile_dir=$(cd "$profile_dir" && pwd)
  perf_env=(DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0)
fi
start_api() { # port, extra settings...
  local port=$1; shift
  env ASPNETCORE_URLS="http://127.0.0.1:$port" ASPNETCORE_ENVIRONMENT=Production \
    ConnectionStrings__trackerdb="$db;Maximum Pool Size=100" ConnectionStrings__cache="127.0.0.1:$redis_port" \
    Jwt__SigningKey="$signing_key" Logging__LogLevel__Default=Warning \
    RateLimiting__Auth__PermitLimit=1000000000 RateLimiting__Usage__PermitLimit=1000000000 \
    RateLimiting__Ingest__BurstLimit=1000000000 RateLimiting__Ingest__TokensPerSecond=1000000000 "${perf_env[@]}" "$@" \
    dotnet "$root/Tracker.ApiService/bin/Release/net10.0/Tracker.ApiService.dll" >"$work/api-$port.log" 2>&1 &
  pids+=($!)
}
start_api "$api_port"; api_pid=$!
uncached_pid=
if printf '%s\n' "${scenarios[@]}" | grep -q -- '-uncached$'; then
  start_api "$uncached_port" Usage__CacheAnswers=false; uncached_pid=$!
fi
unlimited_pid=
if printf '%s\n' "${scenarios[@]}" | grep -qE -- '^(limiter-off|.*-unlimited)$'; then
  start_api "$unlimited_port" RateLimiting__Enabled=false; unlimited_pid=$!
fi
ASPNETCORE_URLS="http://127.0.0.1:$baseline_port" dotnet "$root/bench/Baseline/bin/Release/net10.0/Baseline.dll" >"$work/baseline.log" 2>&1 &
pids+=($!)

for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$api_port/health" >/dev/null 2>&1 && curl -fsS -o /dev/null -X POST "http://127.0.0.1:$baseline_port/api/v1/logs" \
    -H 'Content-Type: application/json' -d '{}' 2>/dev/null && break
  sleep 0.5
done
for port in "$api_port" ${uncached_pid:+"$uncached_port"} ${unlimited_pid:+"$unlimited_port"}; do
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { echo "The API did not become healthy:"; cat "$work/api-$port.log"; exit 1; }
done

api_key=$(curl -fsS -X POST "http://127.0.0.1:$api_port/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d "{\"name\":\"bench\",\"email\":\"bench-$RANDOM@example.com\",\"password\":\"Bench-password-1\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["apiKey"])')

loadgen() { dotnet "$root/bench/LoadGen/bin/Release/net10.0/LoadGen.dll" --seconds "$seconds" --warmup "$warmup" "$@"; }

# Each API process is warmed up first: under full load on two cores the JIT takes 20 s and more to reach its
# optimised code, and the first scenario would otherwise measure that instead of the server.
warm_up_api() { # port
  loadgen --seconds "$((seconds * 2))" --warmup 0 --url "http://127.0.0.1:$1/api/v1/logs" --api-key "$api_key" --connections 64 >/dev/null
}
echo "Warming up..." >&2
for port in "$api_port" ${uncached_pid:+"$uncached_port"} ${unlimited_pid:+"$unlimited_port"}; do warm_up_api "$port"; done

# Analytics history, loaded once before the first usage scenario needs it.
tokens="$work/tokens"
load_history() {
  [ -f "$tokens" ] && return
  echo "Loading $load_logs logs of $load_clients clients..." >&2
  dotnet "$root/bench/DataLoader/bin/Release/net10.0/DataLoader.dll" --connection "$db" --signing-key "$signing_key" \
    --tokens "$tokens" --clients "$load_clients" --logs "$load_logs" --days "$load_days" >&2
  psql_db "CHECKPOINT" >/dev/null
  # Cached scenarios read as 1,000 different clients; uncached ones rotate through all of them.
  head -n 1000 "$tokens" >"$tokens.cached"
  for endpoint in daily top; do
    loadgen --url "http://127.0.0.1:$api_port/api/v1/usages/$endpoint" --method GET --bearer-file "$tokens.cached" --connections 8 >/dev/null
  done
}

# API keys for the many-keys scenario: 50 (the most a client may hold) for each of $key_clients clients.
api_keys="$work/api-keys"
make_api_keys() {
  [ -f "$api_keys" ] && return
  python3 "$root/bench/api-keys.py" "http://127.0.0.1:$api_port" "$key_clients" 50 >"$api_keys"
}

# --- scenarios ----------------------------------------------------------------------------------------------
results=()
failed=0
for scenario in "${scenarios[@]}"; do
  echo "Running $scenario..." >&2
  case "$scenario" in usage-*|limiter-*) load_history ;; ingest-single-64-keys) make_api_keys ;; esac
  before=$(psql_db "SELECT count(*) FROM logs")
  measured_pid=$api_pid
  case "$scenario" in
    *-unlimited|limiter-off) measured_pid=$unlimited_pid ;;
    *-uncached) measured_pid=$uncached_pid ;;
  esac
  cpu_before=("$(ticks "$measured_pid")" "$(pg_ticks)" "$(ticks "$redis_pid")")
  perf_pid=
  if [ -n "$profile_dir" ] && [ "$scenario" != baseline ]; then
    perf record -F 499 -a -g -o "$profile_dir/$scenario.data" -- sleep "$((warmup + seconds))" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  case "$scenario" in
    baseline) json=$(loadgen --scenario baseline --url "http://127.0.0.1:$baseline_port/api/v1/logs" --connections 32) ;;
    ingest-single-32) json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$api_port/api/v1/logs" --api-key "$api_key" --connections 32) ;;
    ingest-single-64) json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$api_port/api/v1/logs" --api-key "$api_key" --connections 64) ;;
    ingest-single-64-unlimited)
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$unlimited_port/api/v1/logs" --api-key "$api_key" --connections 64) ;;
    ingest-single-64-keys)
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$api_port/api/v1/logs" --api-key-file "$api_keys" --connections 64) ;;
    ingest-batch-100) json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$api_port/api/v1/logs/batch" --api-key "$api_key" --connections 32 --batch 100) ;;
    ingest-single-64-ids)
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$api_port/api/v1/logs" --api-key "$api_key" --connections 64 --ids) ;;
    ingest-batch-100-ids)
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$api_port/api/v1/logs/batch" --api-key "$api_key" --connections 32 --batch 100 --ids) ;;
    usage-daily-32|usage-daily-64|usage-top-32|usage-top-64)
      endpoint=${scenario#usage-}; endpoint=${endpoint%-*}
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$api_port/api/v1/usages/$endpoint" --method GET \
        --bearer-file "$tokens.cached" --connections "${scenario##*-}") ;;
    usage-top-64-unlimited)
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$unlimited_port/api/v1/usages/top" --method GET \
        --bearer-file "$tokens.cached" --connections 64) ;;
    usage-daily-uncached|usage-top-uncached)
      endpoint=${scenario#usage-}; endpoint=${endpoint%-uncached}
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$uncached_port/api/v1/usages/$endpoint" --method GET \
        --bearer-file "$tokens" --connections 1) ;;
    limiter-on|limiter-off)
      port=$api_port; [ "$scenario" = limiter-on ] || port=$unlimited_port
      json=$(loadgen --scenario "$scenario" --url "http://127.0.0.1:$port/api/v1/usages/daily" --method GET \
        --bearer-file "$tokens.cached" --connections 1) ;;
    *) echo "Unknown scenario: $scenario" >&2; exit 2 ;;
  esac
  cpu_after=("$(ticks "$measured_pid")" "$(pg_ticks)" "$(ticks "$redis_pid")")
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    served=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r["acknowledgedRequests"] + r["errors"])' "$json")
    python3 "$root/bench/perf-summary.py" "$profile_dir/$scenario.data" "$measured_pid" "$(head -n 1 "$work/pg/postmaster.pid")" \
      "$redis_pid" "$served" >"$profile_dir/$scenario.txt" || echo "Could not summarise the profile of $scenario" >&2
  fi
  rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$measured_pid/status")
  # Only for the harness's own test: damage the result to prove the check below catches it.
  [ -z "${TRACKER_BENCH_TAMPER_SQL:-}" ] || psql_db "$TRACKER_BENCH_TAMPER_SQL" >/dev/null
  if [[ "$scenario" == ingest-* ]]; then
    after=$(psql_db "SELECT count(*) FROM logs")
    acknowledged=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["acknowledgedLogs"])' "$json")
    if [ "$((after - before))" -ne "$acknowledged" ]; then
      echo "LOST OR DUPLICATED LOGS in $scenario: $acknowledged acknowledged, $((after - before)) rows written" >&2
      failed=1
    fi
  fi
  if [[ "$scenario" == usage-* || "$scenario" == limiter-* ]]; then
    errors=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["errors"])' "$json")
    [ "$errors" -eq 0 ] || { echo "FAILED ANSWERS in $scenario: $errors requests were not answered with 200" >&2; failed=1; }
  fi
  results+=("$(python3 -c '
import json, sys
r = json.loads(sys.argv[1]); r["rssMb"] = int(sys.argv[2]) // 1024
ticks_per_second, before, after = int(sys.argv[3]), sys.argv[4].split(), sys.argv[5].split()
served = max(1, r["acknowledgedRequests"] + r["errors"])
r["cpuMicroseconds"] = [(int(a) - int(b)) * 1e6 / ticks_per_second / served for a, b in zip(after, before)]
print(json.dumps(r))' "$json" "$rss_kb" "$clock_ticks" "${cpu_before[*]}" "${cpu_after[*]}")")
done

# --- report -------------------------------------------------------------------------------------------------
python3 - "${results[@]}" <<'PY'
import json, sys
rows = [json.loads(arg) for arg in sys.argv[1:]]
ceiling = next((r["requestsPerSecond"] for r in rows if r["scenario"] == "baseline"), None)
print("| scenario | connections | requests/s | logs/s | p50 ms | p99 ms | max ms | errors | API peak RSS MB | CPU µs per request: API / PostgreSQL / Redis | of HTTP ceiling |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for r in rows:
    ratio = f'{r["requestsPerSecond"] / ceiling:.0%}' if ceiling and r["scenario"] != "baseline" else "—"
    rss = r["rssMb"] if r["scenario"] != "baseline" else "—"
    cpu = " / ".join(f"{value:.0f}" for value in r["cpuMicroseconds"]) if r["scenario"] != "baseline" else "—"
    print(f'| {r["scenario"]} | {r["connections"]} | {r["requestsPerSecond"]:,.0f} | {r["logsPerSecond"]:,.0f} | '
          f'{r["p50Ms"]:.2f} | {r["p99Ms"]:.2f} | {r["maxMs"]:.1f} | {r["errors"]} | {rss} | {cpu} | {ratio} |')
PY
[ "$failed" -eq 0 ] || { echo "FAILED: see the lines above." >&2; exit 1; }
echo "Rows in PostgreSQL equal acknowledged logs after every write scenario." >&2
