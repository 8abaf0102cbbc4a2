# Shared by scripts/run and scripts/test: packages, build, a private PostgreSQL.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3   # Debian's python, where python3-pytest & co. are installed

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# need_packages PKG… — installs what is missing (as root) or prints the apt-get line.
need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    } || die "apt-get install ${missing[*]} failed"
  else
    die "missing packages; run: sudo apt-get install -y ${missing[*]}"
  fi
}

BUILD_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libpq-dev
                uuid-dev libjwt-dev libcmocka-dev postgresql-15 postgresql-client-15 curl)

# build DIR [cmake args…]
build() {
  local dir=$1; shift
  say "building in ${dir#"$ROOT"/}"
  cmake -S "$ROOT" -B "$dir" "$@" >/dev/null || die "cmake configure failed"
  cmake --build "$dir" -j"$(nproc)" >/dev/null 2>"$dir.log" || { cat "$dir.log" >&2; die "build failed"; }
}

# As root, PostgreSQL must run as an unprivileged user: the postgres system user.
pg_user_prefix() {
  if [ "$(id -u)" = 0 ]; then echo "runuser -u postgres --"; fi
}

# pg_start NAME — a private cluster under .data/NAME, Unix socket only, trust auth.
# Sets PGDATA_DIR, PGSOCK_DIR and SEGMENTD_DATABASE_URL.
pg_start() {
  local name=$1 as; as=$(pg_user_prefix)
  PGDATA_DIR="$ROOT/.data/$name/pg"
  PGSOCK_DIR="$ROOT/.data/$name/run"
  mkdir -p "$PGDATA_DIR" "$PGSOCK_DIR"
  if [ -n "$as" ]; then
    chown postgres: "$ROOT/.data/$name" "$PGDATA_DIR" "$PGSOCK_DIR"
    $as test -x "$ROOT/.data/$name" 2>/dev/null ||
      die "the postgres user cannot reach $ROOT (check the permissions of its parent folders)"
  fi
  chmod 700 "$PGDATA_DIR"
  if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
    say "creating a PostgreSQL 15 cluster in .data/$name"
    $as "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null ||
      die "initdb failed"
  fi
  if ! $as "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    $as "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$ROOT/.data/$name/postgres.log" -w -t 60 \
      -o "-c listen_addresses='' -c unix_socket_directories='$PGSOCK_DIR' -c port=5432 -c max_connections=200" \
      start >/dev/null || { tail -20 "$ROOT/.data/$name/postgres.log" >&2; die "PostgreSQL did not start"; }
  fi
  $as "$PGBIN/psql" -h "$PGSOCK_DIR" -U postgres -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'segmentd'" | grep -q 1 ||
    $as "$PGBIN/createdb" -h "$PGSOCK_DIR" -U postgres segmentd
  export SEGMENTD_DATABASE_URL="host=$PGSOCK_DIR port=5432 dbname=segmentd user=postgres"
}

pg_stop() {
  local as; as=$(pg_user_prefix)
  [ -n "${PGDATA_DIR:-}" ] && [ -s "$PGDATA_DIR/postmaster.pid" ] &&
    $as "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
}

# A development HMAC secret kept in .data so tokens survive restarts.
dev_secret_file() {
  local f="$ROOT/.data/dev-jwt-secret"
  mkdir -p "$ROOT/.data"
  if [ ! -s "$f" ]; then
    (umask 077; head -c 48 /dev/urandom | base64 | tr -d '\n=+/' > "$f")
  fi
  echo "$f"
}
