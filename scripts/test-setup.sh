#!/usr/bin/env bash
# Everything the test suite needs on a fresh Debian machine of the project's kind (root, the
# package registries reachable, PostgreSQL and MariaDB installed), done idempotently: a second run
# on a prepared machine changes nothing and takes a few seconds.
#
#   bash scripts/test-setup.sh && npm test        # README's test command
#
# What it does, in order (each step checks first and acts only when something is missing):
#   1. Debian packages: OpenSSH server and client, the PostgreSQL and MariaDB clients, Chromium
#      (the console tests drive it through playwright-core; no browser is ever downloaded),
#      nftables and iproute2 (real packet filtering in network namespaces).
#   2. What the daemons need: sshd's privilege separation directory.
#   3. PostgreSQL: running, and one database (firebreak_pwtest) that requires passwords, because
#      the machine's server trusts 127.0.0.1 and the connector tests must prove an issued password
#      logs in and a revoked one does not.
#   4. MariaDB: running, with the event scheduler on (the connector's expiry backstop).
#   5. npm packages: `npm ci` when node_modules does not match package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s%N)
say() { printf '== %s\n' "$*"; }
fail() {
  printf 'test-setup: %s\n' "$*" >&2
  exit 1
}
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
    fail "needs root for: $* (run as root, or install sudo)"
  fi
}
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }

say "debian packages"
need=()
have sshd || need+=(openssh-server)
{ have ssh && have ssh-keygen; } || need+=(openssh-client)
have psql || need+=(postgresql-client)
have mariadb || need+=(mariadb-client)
[ -x /usr/bin/chromium ] || need+=(chromium)
have nft || need+=(nftables)
have ip || need+=(iproute2)
have pgbouncer || need+=(pgbouncer) # the gateway benchmark compares with it (session pooling)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

say "sshd"
# Debian's sshd refuses to start as root without its privilege separation directory, which only
# the service unit creates; the tests start sshd themselves.
[ -d /run/sshd ] || as_root install -d -m 0755 /run/sshd

say "postgresql"
pg_version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
[ -n "$pg_version" ] || fail "no PostgreSQL server under /etc/postgresql (apt-get install postgresql)"
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || fail "PostgreSQL does not answer on 127.0.0.1:5432"
hba="/etc/postgresql/$pg_version/main/pg_hba.conf"
if ! grep -q '^host[[:space:]]\+firebreak_pwtest' "$hba"; then
  # Before the first 127.0.0.1 line, so it wins over the machine's trust rule.
  as_root sed -i '0,/^host[[:space:]]\+all[[:space:]]\+all[[:space:]]\+127\.0\.0\.1\/32/s||host firebreak_pwtest all 127.0.0.1/32 scram-sha-256\n&|' "$hba"
  grep -q '^host[[:space:]]\+firebreak_pwtest' "$hba" || fail "could not add the firebreak_pwtest rule to $hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$pg_version" main reload
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'firebreak_pwtest'" | grep -q 1 ||
  psql -h 127.0.0.1 -U postgres -d postgres -qc "create database firebreak_pwtest"

say "mariadb"
if ! mariadb -uroot -h127.0.0.1 -e "select 1" >/dev/null 2>&1; then
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mariadb -uroot -h127.0.0.1 -e "select 1" >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -uroot -h127.0.0.1 -e "select 1" >/dev/null 2>&1 || fail "MariaDB does not answer on 127.0.0.1:3306"
mariadb -uroot -h127.0.0.1 -e "SET GLOBAL event_scheduler = ON"

say "npm packages"
# `npm ci` reinstalls from scratch; it runs only when the lock file differs from the one the
# installed tree was made from (npm keeps that copy in node_modules/.package-lock.json).
stamp=node_modules/.firebreak-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund
  printf '%s\n' "$want" >"$stamp"
fi

say "ready in $((($(date +%s%N) - started) / 1000000)) ms"
