#!/usr/bin/env bash
# What `make test` needs beyond the two virtual environments: real servers from Debian's packages.
# Idempotent: installs only what is missing. Needs root (as CI and the dev machines here are).
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v redis-server >/dev/null || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
