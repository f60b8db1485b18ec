#!/usr/bin/env bash
# Installs the PostgreSQL server the test suite starts on loopback (tests/services.py) from the
# distribution's packages, where it is missing. Never fails the build: where it cannot install
# (no root, no package manager), it says so and the PostgreSQL tests skip with that reason.
set -u
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "setup_services: PostgreSQL is not installed and installing it needs root; its tests will skip"; exit 0
  fi
fi
echo "setup_services: installing the PostgreSQL server from the distribution's packages"
if command -v apt-get >/dev/null 2>&1; then
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 \
    || { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive \
           apt-get install -y -qq --no-install-recommends postgresql >/dev/null; } \
    || echo "setup_services: apt-get could not install postgresql; its tests will skip"
elif command -v dnf >/dev/null 2>&1; then
  $SUDO dnf install -y -q postgresql-server || echo "setup_services: dnf could not install postgresql-server"
else
  echo "setup_services: no apt-get or dnf here; install a PostgreSQL server to run its tests"
fi
exit 0
