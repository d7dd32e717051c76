#!/usr/bin/env bash
# Installs the tools the test suite drives when they are missing. CI runs as
# root on a fresh machine; a developer without root gets a clear message.
set -euo pipefail

need_apt=()
command -v aws >/dev/null 2>&1 || need_apt+=(awscli)
# e2e's audit fail-closed test limits the server's file size with prlimit.
command -v prlimit >/dev/null 2>&1 || need_apt+=(util-linux)
# internal/audit checks its documented auditor recipes with these.
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v sha256sum >/dev/null 2>&1 || need_apt+=(coreutils)
# internal/dbtest starts PostgreSQL and MariaDB servers from these binaries.
have_pg=
for dir in /usr/lib/postgresql/*/bin; do
  if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then have_pg=1; fi
done
[ -n "$have_pg" ] || need_apt+=(postgresql)
if ! { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } ||
   ! command -v mariadb-install-db >/dev/null 2>&1; then
  need_apt+=(mariadb-server)
fi

# internal/dbtest starts Redis and RabbitMQ nodes of their own for the
# rotators' tests; the custom-function e2e tests run psql from their scripts.
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
{ command -v rabbitmq-server >/dev/null 2>&1 || [ -x /usr/sbin/rabbitmq-server ]; } || need_apt+=(rabbitmq-server)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)

if [ ${#need_apt[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "test-deps: missing ${need_apt[*]}; install them (apt-get install ${need_apt[*]}) or run as root" >&2
  exit 1
fi
echo "test-deps: installing ${need_apt[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
