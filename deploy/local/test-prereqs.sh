#!/usr/bin/env bash
# What `make test` needs beyond the two virtual environments: real servers from Debian's packages.
# Idempotent: installs only what is missing. Needs root (as CI and the dev machines here are).
set -euo pipefail
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v redis-server >/dev/null || need+=(redis-server)
command -v haproxy >/dev/null || need+=(haproxy)
# PostgreSQL's server binaries live in /usr/lib/postgresql/<major>/bin, off PATH (the tests look
# there); the package also creates the `postgres` user the tests run the server as.
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
