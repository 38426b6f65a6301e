#!/usr/bin/env bash
# Tracker's benchmark: one command, Markdown tables, and a check that nothing was lost.
#   bench/run.sh [--quick] [scenario ...]
#   scenarios: baseline baseline-loadgen ingest-single-32 ingest-single-64 ingest-batch-100
#              usage-daily-32 usage-daily-64 usage-top-32 usage-top-64 usage-daily-uncached usage-top-uncached
#              usage-endpoints-64 usage-series-64 usage-endpoints-uncached usage-series-uncached (the breakdowns: the
#              busiest endpoints of 30 days, and 30 daily buckets per endpoint with percentiles)
#              usage-series-64-gzip (the same from a client that accepts gzip, as browsers do: an answer of 8 KiB or
#              more is cached gzipped and sent so; usage-series-64 gets it decompressed)
#              limiter-on limiter-off (cached daily on one connection, with and without rate limiting: its added latency)
#              ingest-single-64-unlimited usage-top-64-unlimited (the same without rate limiting: what the limiter costs)
#              ingest-single-64-keys (single-event ingest spread over 1,000 API keys of 20 clients: each key is a
#              rate-limit partition of its own, about 20 requests/s each, instead of one key taking everything)
#              ingest-single-64-keys-10k (the same over 10,000 keys of 1,000 clients)
#              ingest-single-64-ids ingest-batch-100-ids (the same as ingest-single-64 and ingest-batch-100 with a
#              unique id on every log: what exactly-once deduplication costs)
#              ingest-noisy-neighbour (one client floods batches of 1,000 logs of ~900-character endpoints on 32
#              connections while another sends single logs on 4: the other's latency and share of 201s)
#              ingest-noisy-neighbour-limited (the same against an API with the product's ingest rate limits, which
#              every other row raises far above its load: what a deployment's defaults leave the other tenant)
#              ingest-single-64-instances-1 ingest-single-64-instances-2 ingest-single-64-instances-3 (single-event
#              ingest with one API key over 1, 2 or 3 API processes sharing the PostgreSQL and Redis, the 64
#              connections spread evenly: aggregate throughput, and rows == acknowledged across the processes)
# Builds Release; starts PostgreSQL, Redis, the migration worker and the API on free loopback ports (durable
# commits: fsync and synchronous_commit stay on); registers a client; warms each API process up with 20 s of
# ingest; stops everything it started at the end.
# Two load generators: wrk (C, Debian's package, installed if missing; requests from bench/wrk.lua) measures the
# throughput rows, the no-op ceiling included, because it costs the shared cores less CPU per request than
# bench/LoadGen; LoadGen (C#) awaits every request in flight at its deadline, so its count of 201s is exact. Each
# write scenario first runs LoadGen for a counted run and fails on any difference between the acknowledged logs and
# the new rows in PostgreSQL, then measures with wrk (whose uncounted requests in flight bound its check: no
# acknowledged log missing, no more rows than it could have sent). Every row says how many microseconds of CPU the
# measured API process, the PostgreSQL cluster, Redis and the load generator itself spent per request served (over
# the measured seconds only for wrk's rows; LoadGen's rows include its warm-up, and its own column its start-up), and
# throughput as a share of the no-op ceiling measured by the same generator in the same run. Before the first usage
# scenario, bench/DataLoader loads 10 million logs of 10,000 clients spread over the retention window by COPY, with
# the detailed rollups ingest would have written for them (--quick: 100,000 logs of 1,000 clients), then one
# unmeasured pass reads every cached scenario's answers once;
# uncached scenarios run against a second API instance with Usage:CacheAnswers off, whose read paths are warmed up
# the same way. TRACKER_BENCH_LOAD_DAYS
# (default 89) changes the span the history is spread over, TRACKER_BENCH_LOAD_LOGS the number of logs (a cached
# read's cost does not depend on it; loading 10 million takes minutes).
# TRACKER_BENCH_PROFILE=DIR also samples the whole machine with perf (linux-perf) during each scenario and writes
# DIR/<scenario>.txt: where each request's CPU went, by process and, in the API, by code (bench/perf-summary.py).
# TRACKER_BENCH_COMPARE=DIR builds the API of another checkout (git worktree add DIR <commit>) and runs it beside
# this one, on the same database and Redis; a scenario named with the suffix @compare runs against it, so that two
# builds are measured in one run, alternately: bench/run.sh baseline ingest-single-64 ingest-single-64@compare ...
# TRACKER_BENCH_COMPARE_SETTINGS='NAME=value ...' adds environment settings to that instance (a switch measured
# against the same build when TRACKER_BENCH_COMPARE is not set); in a value, {db} stands for the benchmark's connection
# string and %20 for a space (ConnectionStrings__trackerdb={db};Options=--plan_cache_mode=force_custom_plan). That
# instance keeps its rate buckets under its own Redis prefix: sharing them, one instance's quiet-key leases used up
# what the other's keys could lease (run 120). The instance that meets a many-key set first stays slower on it for
# the rest of the run (runs 122-128, docs/performance.md): alternate which side meets the keys first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

# The interpreter itself, found once: a version manager's shim (pyenv's, here) takes about 0.3 s to start each of
# the script's calls, several per row (40 s of the quick run's 275), where the interpreter takes 0.05.
python_path=$(python3 -c 'import sys; print(sys.executable)')
python3() { "$python_path" "$@"; }

# counted: the seconds of LoadGen's counted run before each write scenario's measured one; warm: each server's
# warm-up; fill: each read path's warm-up and cache fill before the first usage row. --quick only checks that every
# scenario runs and counts exactly (the harness's test), so it warms up for form's sake.
seconds=10 warmup=3 counted=5 warm=20 fill=10 load_clients=10000 load_logs=10000000 key_clients=20 key_clients_10k=1000
# 89 days: the retention window (90) less the day whose partition the retention job may be dropping.
load_days=${TRACKER_BENCH_LOAD_DAYS:-89}
scenarios=()
for argument in "$@"; do
  case "$argument" in
    --quick) seconds=2 warmup=1 counted=1 warm=1 fill=1 load_clients=1000 load_logs=100000 key_clients=2 key_clients_10k=100 ;;
    *) scenarios+=("$argument") ;;
  esac
done
load_logs=${TRACKER_BENCH_LOAD_LOGS:-$load_logs}
[ ${#scenarios[@]} -gt 0 ] || scenarios=(baseline baseline-loadgen ingest-single-32 ingest-single-64 ingest-single-64-ids
  ingest-single-64-unlimited ingest-single-64-keys ingest-single-64-keys-10k ingest-batch-100 ingest-batch-100-ids
  ingest-noisy-neighbour ingest-noisy-neighbour-limited
  usage-daily-32 usage-daily-64 usage-top-32 usage-top-64 usage-top-64-unlimited usage-daily-uncached usage-top-uncached
  usage-endpoints-64 usage-series-64 usage-series-64-gzip usage-endpoints-uncached usage-series-uncached limiter-on limiter-off)

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

# A free loopback port for one of the servers, distinct from every port picked before and outside the kernel's
# ephemeral range: a port the kernel hands out (bind to 0) can be taken by an outgoing connection's local end, or be
# handed out twice, before its server binds it (CI met "address already in use" once).
free_port() {
  python3 - "$work/ports" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
try:
    taken = set(map(int, open(sys.argv[1]).read().split()))
except FileNotFoundError:
    taken = set()
pool = [port for port in (range(10000, low) if low > 11000 else range(1024, 65536)) if port not in taken]
random.shuffle(pool)
for port in pool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            continue
    with open(sys.argv[1], "a") as picked:
        picked.write(f"{port}\n")
    print(port)
    break
else:
    sys.exit("no free loopback port")
PY
}

# --- what the benchmark needs -------------------------------------------------------------------------------
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || ! command -v redis-server >/dev/null || ! command -v wrk >/dev/null; then
  # The shared script keeps the packages' own services from starting: a system PostgreSQL and Redis would compete
  # with the benchmark for the two cores.
  "$root/Tracker.AppHost/Infrastructure/scripts/install-packages.sh" postgresql redis-server wrk
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_as_owner() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi; }

# TRACKER_BENCH_PREBUILT=1 skips the builds (the harness's tests set it once a run of theirs has built everything).
if [ -z "${TRACKER_BENCH_PREBUILT:-}" ]; then
  echo "Building Release..." >&2
  dotnet build "$root/Tracker.ApiService" -c Release -nologo -v:q -clp:NoSummary >&2
  dotnet build "$root/Tracker.MigrationService" -c Release -nologo -v:q -clp:NoSummary >&2
  dotnet build "$root/bench/LoadGen" -c Release -nologo -v:q -clp:NoSummary >&2
  dotnet build "$root/bench/Baseline" -c Release -nologo -v:q -clp:NoSummary >&2
  dotnet build "$root/bench/DataLoader" -c Release -nologo -v:q -clp:NoSummary >&2
fi
compare=${TRACKER_BENCH_COMPARE:-} compare_settings=(${TRACKER_BENCH_COMPARE_SETTINGS:-})
[ -n "$compare" ] || [ ${#compare_settings[@]} -eq 0 ] || compare=$root
[ -z "$compare" ] || [ "$compare" = "$root" ] || [ -n "${TRACKER_BENCH_PREBUILT:-}" ] \
  || dotnet build "$compare/Tracker.ApiService" -c Release -nologo -v:q -clp:NoSummary >&2

# --- servers ------------------------------------------------------------------------------------------------
pg_port=$(free_port); redis_port=$(free_port); api_port=$(free_port); uncached_port=$(free_port); unlimited_port=$(free_port)
limited_port=$(free_port)
compare_port=$(free_port)
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
# The measured API processes' CPU, together (measured_pids: set per scenario).
api_ticks() { local total=0 pid; for pid in "${measured_pids[@]}"; do total=$((total + $(ticks "$pid"))); done; echo "$total"; }

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
# Every limit the benchmark's load meets is set here, far above that load, so that no figure depends on the
# product's defaults; what the limiter costs is measured with it on (the *-unlimited rows turn it off). The one
# exception, --product-ingest-limits, keeps the product's ingest limits for ingest-noisy-neighbour-limited.
# MALLOC_ARENA_MAX=2: as the AppHost starts the API (its reason is there); TRACKER_BENCH_COMPARE_SETTINGS can override.
start_api() { # port, [--product-ingest-limits], extra settings...; api_root: the checkout whose API runs (default: this one)
  local port=$1; shift
  set -- "${@//\{db\}/$db}"; set -- "${@//%20/ }"
  local ingest_limits=(RateLimiting__Ingest__BurstLimit=1000000000 RateLimiting__Ingest__TokensPerSecond=1000000000)
  # Its own Redis keys too: a bucket another process left with a capacity of 10⁹ would keep its tokens here.
  [ "${1:-}" != --product-ingest-limits ] || { ingest_limits=(RateLimiting__KeyPrefix=tracker:rate:limited:); shift; }
  env ASPNETCORE_URLS="http://127.0.0.1:$port" ASPNETCORE_ENVIRONMENT=Production \
    ConnectionStrings__trackerdb="$db;Maximum Pool Size=100" ConnectionStrings__cache="127.0.0.1:$redis_port" \
    Jwt__SigningKey="$signing_key" Logging__LogLevel__Default=Warning MALLOC_ARENA_MAX=2 \
    RateLimiting__Auth__PermitLimit=1000000000 RateLimiting__Usage__PermitLimit=1000000000 \
    "${ingest_limits[@]}" "${perf_env[@]}" "$@" \
    dotnet "${api_root:-$root}/Tracker.ApiService/bin/Release/net10.0/Tracker.ApiService.dll" >"$work/api-$port.log" 2>&1 &
  pids+=($!)
}
start_api "$api_port"; api_pid=$!
# The instances scenarios' further API processes, beside the first.
instances_wanted=$(printf '%s\n' "${scenarios[@]}" | sed -n 's/^ingest-single-64-instances-\([0-9]*\)$/\1/p' | sort -n | tail -n 1)
extra_ports=() extra_pids=()
for _ in $(seq 2 "${instances_wanted:-1}"); do
  extra_ports+=("$(free_port)"); start_api "${extra_ports[-1]}"; extra_pids+=($!)
done
uncached_pid=
if printf '%s\n' "${scenarios[@]}" | grep -q -- '-uncached$'; then
  start_api "$uncached_port" Usage__CacheAnswers=false; uncached_pid=$!
fi
unlimited_pid=
if printf '%s\n' "${scenarios[@]}" | grep -qE -- '^(limiter-off|.*-unlimited)$'; then
  start_api "$unlimited_port" RateLimiting__Enabled=false; unlimited_pid=$!
fi
limited_pid=
if printf '%s\n' "${scenarios[@]}" | grep -q -- '-limited$'; then
  start_api "$limited_port" --product-ingest-limits; limited_pid=$!
fi
compare_pid=
if [ -n "$compare" ]; then
  api_root=$compare start_api "$compare_port" RateLimiting__KeyPrefix=tracker:rate:compare: "${compare_settings[@]}"; compare_pid=$!
fi
ASPNETCORE_URLS="http://127.0.0.1:$baseline_port" dotnet "$root/bench/Baseline/bin/Release/net10.0/Baseline.dll" >"$work/baseline.log" 2>&1 &
pids+=($!)
baseline_pid=$!

for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$api_port/health" >/dev/null 2>&1 && curl -fsS -o /dev/null -X POST "http://127.0.0.1:$baseline_port/api/v1/logs" \
    -H 'Content-Type: application/json' -d '{}' 2>/dev/null && break
  sleep 0.5
done
for port in "$api_port" ${uncached_pid:+"$uncached_port"} ${unlimited_pid:+"$unlimited_port"} ${limited_pid:+"$limited_port"} ${compare_pid:+"$compare_port"} "${extra_ports[@]}"; do
  for _ in $(seq 1 60); do curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.5; done
  curl -fsS "http://127.0.0.1:$port/health" >/dev/null || { echo "The API did not become healthy:"; cat "$work/api-$port.log"; exit 1; }
done

# Registers a client through the API and writes its first API key to a file.
register_client() { # name, key file
  curl -fsS -X POST "http://127.0.0.1:$api_port/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\",\"email\":\"$1-$RANDOM$RANDOM@example.com\",\"password\":\"Bench-password-1\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["apiKey"])' >"$2"
}
api_key="$work/api-key"
register_client bench "$api_key"

# A request body (bench/body.py), written afresh for each generator run so that its logs happened a second ago.
body() { # body.py's options...
  local file
  file=$(mktemp "$work/body.XXXXXX")
  python3 "$root/bench/body.py" "$file" "$@"
  echo "$file"
}

# Runs a load generator, which prints one line of JSON last, and adds to it the CPU (user + system) the generator
# spent: what it took from the two cores the servers share.
with_cpu() { # generator's name, command...
  python3 -c '
import json, resource, subprocess, sys
output = subprocess.run(sys.argv[2:], check=True, stdout=subprocess.PIPE, text=True).stdout
report = json.loads(output.strip().splitlines()[-1])
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
report["generator"], report["generatorCpuSeconds"] = sys.argv[1], usage.ru_utime + usage.ru_stime
print(json.dumps(report))' "$@"
}
loadgen() { with_cpu LoadGen dotnet "$root/bench/LoadGen/bin/Release/net10.0/LoadGen.dll" --seconds "$seconds" --warmup "$warmup" "$@"; }
# One thread: on two cores shared with the servers, a second one cost more CPU per request than it brought.
# With TRACKER_WRK_PORTS set (several API processes), one thread per process.
wrk_run() { # seconds, connections, url, bench/wrk.lua's options...
  with_cpu wrk wrk -t"$(tr ',' '\n' <<<"${TRACKER_WRK_PORTS:-0}" | wc -l)" -c"$2" -d"$1s" --timeout 10s -s "$root/bench/wrk.lua" "$3" -- connections="$2" "${@:4}"
}

# Each server process is warmed up first: under full load on two cores the JIT takes 20 s and more to reach its
# optimised code, and the first scenario would otherwise measure that instead of the server.
warm_up() { # port
  wrk_run "$warm" 64 "http://127.0.0.1:$1/api/v1/logs" scenario=warm-up method=POST \
    'header=X-API-Key: ' values="$api_key" body="$(body)" logs=1 >/dev/null
}
echo "Warming up..." >&2
for port in "$baseline_port" "$api_port" ${uncached_pid:+"$uncached_port"} ${unlimited_pid:+"$unlimited_port"} ${limited_pid:+"$limited_port"} ${compare_pid:+"$compare_port"} "${extra_ports[@]}"; do
  warm_up "$port"
done

# What each usage scenario asks: the defaults, but for the breakdowns a month (a dashboard's usual view).
usage_path() { # daily, top, endpoints or series
  case "$1" in
    endpoints) echo "/api/v1/usages/endpoints?hours=720" ;;
    series) echo "/api/v1/usages/series?days=30&groupBy=endpoint&percentiles=true" ;;
    *) echo "/api/v1/usages/$1" ;;
  esac
}

# Analytics history, loaded once before the first usage scenario needs it.
tokens="$work/tokens"
load_history() {
  [ -f "$tokens" ] && return
  echo "Loading $load_logs logs of $load_clients clients..." >&2
  dotnet "$root/bench/DataLoader/bin/Release/net10.0/DataLoader.dll" --connection "$db" --signing-key "$signing_key" \
    --tokens "$tokens" --clients "$load_clients" --logs "$load_logs" --days "$load_days" >&2
  psql_db "CHECKPOINT" >/dev/null
  # Cached scenarios read as the 1,000 busiest clients (the loader lists the busiest first). Uncached ones visit all
  # 10,000 in an order shuffled the same way in every run: one connection reaches only a thousand or so clients in a
  # row's seconds, and in the loader's order those would be the busiest tenth.
  head -n 1000 "$tokens" >"$tokens.cached"
  python3 -c 'import random, sys; lines = open(sys.argv[1]).readlines(); random.Random(1).shuffle(lines); sys.stdout.writelines(lines)' \
    "$tokens" >"$tokens.shuffled"
  # The uncached instance's read paths are warmed up as every process's ingest path was, so that no uncached row
  # measures code the JIT has not yet optimised (a row's own warm-up is a few seconds on one connection). Before the
  # cache fill: a cached answer expires a minute after it was computed, and the cached rows come soon after the fill.
  if [ -n "$uncached_pid" ]; then
    for endpoint in daily top endpoints series; do
      wrk_run "$fill" 8 "http://127.0.0.1:$uncached_port$(usage_path "$endpoint")" scenario=warm-up method=GET \
        'header=Authorization: Bearer ' values="$tokens.cached" >/dev/null
    done
  fi
  for endpoint in daily top endpoints series; do
    wrk_run "$fill" 8 "http://127.0.0.1:$api_port$(usage_path "$endpoint")" scenario=cache-fill method=GET \
      'header=Authorization: Bearer ' values="$tokens.cached" >/dev/null
  done
}

# API keys for the many-keys scenarios, made by the API for clients created directly in the database (no password
# hashing) with no history: CLIENTS clients with KEYS keys each.
make_api_keys() { # file, clients, keys per client
  [ -f "$1" ] && return
  local started=$SECONDS
  dotnet "$root/bench/DataLoader/bin/Release/net10.0/DataLoader.dll" --connection "$db" --signing-key "$signing_key" \
    --tokens "$1.tokens" --clients "$2" --logs 0 >&2
  python3 "$root/bench/api-keys.py" "http://127.0.0.1:$api_port" "$1.tokens" "$3" >"$1"
  echo "$(($2 * $3)) API keys of $2 clients in $((SECONDS - started)) s" >&2
}

# The rows in logs once ingest has settled: requests wrk left in flight at its deadline may still be committing.
settled_rows() {
  local previous current
  current=$(psql_db "SELECT count(*) FROM logs")
  for _ in $(seq 1 40); do
    sleep 0.25
    previous=$current
    current=$(psql_db "SELECT count(*) FROM logs")
    [ "$current" != "$previous" ] || break
  done
  echo "$current"
}
# Only for the harness's own test: damages a write scenario's rows to prove that its checks catch it.
tamper() { [ -z "${TRACKER_BENCH_TAMPER_SQL:-}" ] || psql_db "$TRACKER_BENCH_TAMPER_SQL" >/dev/null; }
json_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# --- scenarios ----------------------------------------------------------------------------------------------
results=() counted_results=()
failed=0
for name in "${scenarios[@]}"; do
  echo "Running $name..." >&2
  scenario=${name%@compare}
  # What the scenario sends, where, and as whom.
  port=$api_port measured_pid=$api_pid path=/api/v1/logs method=POST connections=64 body_options=() logs=1 accept_encoding=
  measured_pids=() spread=()
  auth=(--api-key-file "$api_key") header='X-API-Key: ' values=$api_key
  case "$scenario" in
    baseline|baseline-loadgen) port=$baseline_port measured_pid=$baseline_pid auth=() header= values= ;;
    ingest-single-32) connections=32 ;;
    ingest-single-64|ingest-noisy-neighbour) ;;
    ingest-noisy-neighbour-limited) port=$limited_port measured_pid=$limited_pid ;;
    ingest-single-64-ids) body_options=(--ids) ;;
    ingest-single-64-unlimited) port=$unlimited_port measured_pid=$unlimited_pid ;;
    ingest-single-64-keys) values="$work/api-keys"; make_api_keys "$values" "$key_clients" 50 ;;
    ingest-single-64-keys-10k) values="$work/api-keys-10k"; make_api_keys "$values" "$key_clients_10k" 10 ;;
    ingest-single-64-instances-*)
      count=${scenario##*-}
      measured_pids=("$api_pid" "${extra_pids[@]:0:count-1}")
      spread=("$api_port" "${extra_ports[@]:0:count-1}") ;;
    ingest-batch-100|ingest-batch-100-ids)
      path=/api/v1/logs/batch connections=32 logs=100 body_options=(--batch 100)
      [ "$scenario" = ingest-batch-100 ] || body_options+=(--ids) ;;
    usage-daily-32|usage-daily-64|usage-top-32|usage-top-64|usage-top-64-unlimited|usage-daily-uncached|usage-top-uncached|\
    usage-endpoints-64|usage-series-64|usage-series-64-gzip|usage-endpoints-uncached|usage-series-uncached|\
    limiter-on|limiter-off)
      load_history
      method=GET logs=0 header='Authorization: Bearer ' values="$tokens.cached"
      endpoint=${scenario#usage-}; endpoint=${endpoint%%-*} connections=${scenario#usage-*-}; connections=${connections%-unlimited}
      connections=${connections%-gzip}
      [[ "$scenario" != *-gzip ]] || accept_encoding=gzip
      case "$scenario" in
        limiter-*) endpoint=daily connections=1 ;;
        *-uncached) connections=1 ;;
      esac
      case "$scenario" in
        limiter-off|*-unlimited) port=$unlimited_port measured_pid=$unlimited_pid ;;
        *-uncached) port=$uncached_port measured_pid=$uncached_pid values=$tokens.shuffled ;;
      esac
      path=$(usage_path "$endpoint") ;;
    *) echo "Unknown scenario: $scenario" >&2; exit 2 ;;
  esac
  if [ "$name" != "$scenario" ]; then
    [ -n "$compare" ] && [ "$port" = "$api_port" ] && [ ${#spread[@]} -eq 0 ] \
      || { echo "$name: needs TRACKER_BENCH_COMPARE and a scenario of the main API's one process" >&2; exit 2; }
    port=$compare_port measured_pid=$compare_pid
  fi
  [ ${#measured_pids[@]} -gt 0 ] || measured_pids=("$measured_pid")
  ports_list=$(IFS=,; echo "${spread[*]}")
  [ -z "$values" ] || auth=("$([ "$method" = GET ] && echo --bearer-file || echo --api-key-file)" "$values")
  url="http://127.0.0.1:$port$path"
  wrk_options=(scenario="$name" method="$method" ${values:+"header=$header" "values=$values"} logs="$logs"
    ${accept_encoding:+"accept-encoding=$accept_encoding"})

  # A write scenario's counted run: LoadGen's exact count of acknowledged logs against the new rows.
  if [[ "$scenario" == ingest-* && "$scenario" != ingest-noisy-neighbour* ]]; then
    before=$(settled_rows)
    json=$(loadgen --seconds "$counted" --warmup 1 --scenario "$name" --url "$url" "${auth[@]}" --connections "$connections" \
      --body "$(body "${body_options[@]}")" --logs "$logs" ${ports_list:+--ports "$ports_list"})
    tamper
    after=$(settled_rows)
    acknowledged=$(json_field "$json" acknowledgedLogs)
    if [ "$((after - before))" -ne "$acknowledged" ]; then
      echo "LOST OR DUPLICATED LOGS in $name: $acknowledged acknowledged, $((after - before)) rows written" >&2
      failed=1
    fi
    counted_results+=("$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r["rows"]=int(sys.argv[2]); print(json.dumps(r))' \
      "$json" "$((after - before))")")
  fi

  # The row's warm-up, before its CPU is counted (a write scenario's counted run warmed it up; LoadGen warms up within
  # its own run). A cached answer expires a minute after it was computed, whether or not it is read, so a cached row
  # whose answers were computed 50 to 60 s before its measured seconds reloads them while measured (a longer warm-up
  # only moves that minute's end into them): its PostgreSQL column shows it.
  [ "$method" = GET ] || wrk_options+=(body="$(body "${body_options[@]}")")
  [[ "$scenario" == ingest-* || "$scenario" == baseline-loadgen ]] || wrk_run "$warmup" "$connections" "$url" "${wrk_options[@]}" >/dev/null

  # The measured run (a read row writes no logs: nothing to settle).
  [[ "$scenario" != ingest-* ]] || before=$(settled_rows)
  for pid in "${measured_pids[@]}"; do echo 5 >"/proc/$pid/clear_refs"; done # resets the peak RSS (VmHWM): the row gives the scenario's own
  cpu_before=("$(api_ticks)" "$(pg_ticks)" "$(ticks "$redis_pid")")
  perf_pid=
  if [ -n "$profile_dir" ] && [[ "$scenario" != baseline* ]]; then
    perf_seconds=$seconds
    [[ "$scenario" != ingest-noisy-neighbour* ]] || perf_seconds=$((warmup + seconds))
    # A scenario repeated in one run (two builds alternating) keeps each profile.
    profile=$name
    for repeat in $(seq 2 99); do [ -e "$profile_dir/$profile.data" ] || break; profile=$name-$repeat; done
    perf record -F 499 -a -g -o "$profile_dir/$profile.data" -- sleep "$perf_seconds" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  case "$scenario" in
    baseline-loadgen) json=$(loadgen --scenario "$scenario" --url "$url" --connections "$connections" --body "$(body)" --logs 1) ;;
    ingest-noisy-neighbour|ingest-noisy-neighbour-limited)
      # Two tenants: the flooder's batches are as large as the API takes; the victim sends what the other rows send.
      # Each variant has its own tenants: the instances' ingest limits differ, and Redis holds each key's bucket.
      flooder_key="$work/api-key-flooder${scenario#ingest-noisy-neighbour}" victim_key="$work/api-key-victim${scenario#ingest-noisy-neighbour}"
      [ -f "$victim_key" ] || { register_client flooder "$flooder_key"; register_client victim "$victim_key"; }
      loadgen --scenario flooder --url "http://127.0.0.1:$port/api/v1/logs/batch" --api-key-file "$flooder_key" --connections 32 \
        --body "$(body --batch 1000 --endpoint-length 900)" --logs 1000 >"$work/flooder.json" &
      flooder_pid=$!
      victim=$(loadgen --scenario victim --url "$url" --api-key-file "$victim_key" --connections 4 --body "$(body)" --logs 1)
      wait "$flooder_pid"
      json=$(python3 -c '
import json, sys
victim, flooder = json.loads(sys.argv[1]), json.load(open(sys.argv[2]))
row = dict(victim, scenario=sys.argv[3], connections=str(victim["connections"]) + " + " + str(flooder["connections"]))
for field in ("logsPerSecond", "acknowledgedRequests", "acknowledgedLogs", "generatorCpuSeconds"):
    row[field] = victim[field] + flooder[field]
# CPU is per request served of either tenant.
row["served"] = victim["acknowledgedRequests"] + victim["errors"] + flooder["acknowledgedRequests"] + flooder["errors"]
row["tenants"] = {"victim": victim, "flooder": flooder}
print(json.dumps(row))' "$victim" "$work/flooder.json" "$name") ;;
    *) json=$(TRACKER_WRK_PORTS=$ports_list wrk_run "$seconds" "$connections" "$url" "${wrk_options[@]}") ;;
  esac
  cpu_after=("$(api_ticks)" "$(pg_ticks)" "$(ticks "$redis_pid")")
  served=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(r.get("served", r["acknowledgedRequests"] + r["errors"]))' "$json")
  if [ -n "$perf_pid" ]; then
    wait "$perf_pid" || true
    python3 "$root/bench/perf-summary.py" "$profile_dir/$profile.data" "$measured_pid" "$(head -n 1 "$work/pg/postmaster.pid")" \
      "$redis_pid" "$served" >"$profile_dir/$profile.txt" || echo "Could not summarise the profile of $name" >&2
  fi
  # With several API processes, the largest one's.
  rss_kb=$(for pid in "${measured_pids[@]}"; do awk '/VmHWM/ {print $2}' "/proc/$pid/status"; done | sort -n | tail -n 1)
  if [[ "$scenario" == ingest-* ]]; then
    tamper
    after=$(settled_rows)
    acknowledged=$(json_field "$json" acknowledgedLogs)
    if [[ "$scenario" == ingest-noisy-neighbour* ]]; then
      # Both tenants ran LoadGen: exact.
      [ "$((after - before))" -eq "$acknowledged" ] || {
        echo "LOST OR DUPLICATED LOGS in $scenario: $acknowledged acknowledged, $((after - before)) rows written" >&2; failed=1; }
    else
      # wrk: every acknowledged log is there, and at most one more request per connection (in flight at the
      # deadline, or cut off by a socket error) was committed unacknowledged.
      in_flight=$(( (connections + $(json_field "$json" errors)) * logs ))
      if [ "$((after - before))" -lt "$acknowledged" ] || [ "$((after - before))" -gt "$((acknowledged + in_flight))" ]; then
        echo "LOST OR DUPLICATED LOGS in $name (wrk): $acknowledged acknowledged, at most $in_flight more in flight, $((after - before)) rows written" >&2
        failed=1
      fi
    fi
  fi
  if [[ "$scenario" == usage-* || "$scenario" == limiter-* ]]; then
    errors=$(json_field "$json" errors)
    [ "$errors" -eq 0 ] || { echo "FAILED ANSWERS in $name: $errors requests were not answered with 200" >&2; failed=1; }
  fi
  results+=("$(python3 -c '
import json, sys
r = json.loads(sys.argv[1]); r["rssMb"] = int(sys.argv[2]) // 1024
ticks_per_second, before, after, served = int(sys.argv[3]), sys.argv[4].split(), sys.argv[5].split(), max(1, int(sys.argv[6]))
r["cpuMicroseconds"] = [(int(a) - int(b)) * 1e6 / ticks_per_second / served for a, b in zip(after, before)]
r["cpuMicroseconds"].append(r["generatorCpuSeconds"] * 1e6 / served)
print(json.dumps(r))' "$json" "$rss_kb" "$clock_ticks" "${cpu_before[*]}" "${cpu_after[*]}" "$served")")
done

# --- report -------------------------------------------------------------------------------------------------
python3 "$root/bench/report.py" "${results[@]}" -- "${counted_results[@]}"
[ "$failed" -eq 0 ] || { echo "FAILED: see the lines above." >&2; exit 1; }
echo "Rows in PostgreSQL equal acknowledged logs after every write scenario." >&2
