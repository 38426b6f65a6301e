#!/usr/bin/env bash
# Installs Debian/Ubuntu packages with apt-get, as root or through sudo, without starting the services they
# bring: Tracker runs PostgreSQL and Redis itself (the AppHost's LocalProcesses mode, the tests), never as the
# packages' system services. Used by the AppHost when LocalProcesses mode finds the programs missing, and by
# test.sh.
# Usage: install-packages.sh PACKAGE...
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: $0 PACKAGE..." >&2
  exit 2
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "Installing $* needs root: run as root, or install sudo." >&2
    exit 1
  fi
  sudo=(sudo)
fi

# invoke-rc.d asks /usr/sbin/policy-rc.d whether a package may start its service; 101 means no. One that is
# already there (container images ship one) is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
  "${sudo[@]}" chmod +x "$policy"
fi

"${sudo[@]}" apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
