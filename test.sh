#!/usr/bin/env bash
# Runs every Tracker test against real PostgreSQL and Redis.
# Installs the two servers' programs and Debian's chromium (for the browser tests) when they are missing (the tests start their own throwaway servers on
# free loopback ports), builds in Release with warnings as errors, runs the whole suite, and ends with the
# line "N passed, N failed". Exits non-zero on any failure, or when no test ran.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

configuration=Release
results_dir="$PWD/TestResults"

have_postgres() {
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null
}

have_redis() {
  command -v redis-server >/dev/null
}

# The browser tests drive this exact path (Debian's package; Playwright's own browser downloads are not used).
have_chromium() {
  [ -x /usr/bin/chromium ]
}

install_servers() {
  if have_postgres && have_redis && have_chromium; then
    return
  fi
  if ! command -v apt-get >/dev/null; then
    echo "PostgreSQL, Redis and Chromium are needed and this is not a Debian/Ubuntu machine." >&2
    echo "Install the PostgreSQL server (initdb, postgres), redis-server and chromium (as /usr/bin/chromium) with your package manager, then rerun." >&2
    exit 1
  fi
  echo "Installing PostgreSQL, Redis and Chromium (apt-get)..."
  # The same script the AppHost uses; the packages' own services are not started (tests start their own servers).
  Tracker.AppHost/Infrastructure/scripts/install-packages.sh postgresql redis-server chromium
  have_postgres && have_redis && have_chromium || { echo "PostgreSQL, Redis or Chromium is still missing after apt-get." >&2; exit 1; }
}

# Everything the tests create on disk goes in a directory of this run's own (TRACKER_TEST_ROOT), so runs in
# other checkouts are never touched. Servers the tests start work in it; if a test host crashed, nothing else
# would stop them: at exit, every process working there is killed (matched by working directory, since
# redis-server rewrites its command line), then the directory is removed.
test_root=$(mktemp -d "${TMPDIR:-/tmp}/tracker-tests.XXXXXX")
# Readable by the postgres user, which the servers run as when the tests run as root.
chmod 755 "$test_root"
export TRACKER_TEST_ROOT="$test_root"
# Temporary files of everything the run starts go there too, and with it at exit: the SDK leaves two empty
# directories in the temporary directory per `dotnet build` (the bench harness test builds several times), and
# a killed .NET process leaves its diagnostics sockets behind.
mkdir -m 1777 "$test_root/tmp"
export TMPDIR="$test_root/tmp"
cleanup_test_servers() {
  local proc round
  for round in 1 2 3 4 5; do
    local found=0
    for proc in /proc/[0-9]*; do
      case "$(readlink "$proc/cwd" 2>/dev/null)" in
        "$test_root"|"$test_root"/*) kill -KILL "${proc#/proc/}" 2>/dev/null && found=1 ;;
      esac
    done
    [ "$found" -eq 0 ] && break
    sleep 1
  done
  rm -rf "$test_root"
}

trap cleanup_test_servers EXIT
install_servers

dotnet build Tracker.sln -c "$configuration" -warnaserror -nologo -clp:NoSummary -v:q

rm -rf "$results_dir"
set +e
dotnet test Tracker.sln -c "$configuration" --no-build --nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=minimal" \
  --results-directory "$results_dir"
test_exit=$?
set -e

trx=$(find "$results_dir" -name '*.trx' | head -n 1)
if [ -z "$trx" ]; then
  echo "No test results were written."
  echo "0 passed, 0 failed"
  exit 1
fi
counters=$(grep -o '<Counters [^>]*>' "$trx")
passed=$(sed -E 's/.* passed="([0-9]+)".*/\1/' <<<"$counters")
failed=$(sed -E 's/.* failed="([0-9]+)".*/\1/' <<<"$counters")
total=$(sed -E 's/.* total="([0-9]+)".*/\1/' <<<"$counters")

echo "$passed passed, $failed failed"
if [ "$total" -eq 0 ] || [ "$failed" -ne 0 ] || [ "$test_exit" -ne 0 ]; then
  exit 1
fi
