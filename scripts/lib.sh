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
BUILD_PACKAGES+=(libcurl4-openssl-dev)  # libcurl: fetches of the JWKS URL, webhook deliveries

# build DIR [cmake args…]
build() {
  local dir=$1; shift
  say "building in ${dir#"$ROOT"/}"
  cmake -S "$ROOT" -B "$dir" "$@" >/dev/null || die "cmake configure failed"
  cmake --build "$dir" -j"$(nproc)" >/dev/null 2>"$dir.log" || { cat "$dir.log" >&2; die "build failed"; }
}

# As root, PostgreSQL must run as an unprivileged user: the postgres system user. It starts
# in / because the caller's folder may be closed to it (a clone in /root, mode 0700).
pg_user_prefix() {
  if [ "$(id -u)" = 0 ]; then echo "runuser -u postgres -- env -C /"; fi
}

# Where root keeps the private clusters: the postgres user cannot enter a checkout in /root
# (mode 0700 on Debian), and /var/tmp is swept by systemd-tmpfiles after 30 days.
PG_CLUSTERS=/var/lib/segmentd

# pg_checkout_dir — this checkout's folder of private clusters. Non-root: .data (PostgreSQL
# runs as the caller, who can reach it). Root: PG_CLUSTERS/<folder name>-<hash of the
# checkout's real path>, so two checkouts never share a cluster and a re-run finds its own.
pg_checkout_dir() {
  if [ "$(id -u)" != 0 ]; then echo "$ROOT/.data"; return; fi
  local real label
  real=$(cd "$ROOT" && pwd -P)
  label=$(basename "$real" | tr -c 'A-Za-z0-9._\n-' _ | cut -c1-24)
  echo "$PG_CLUSTERS/$label-$(printf %s "$real" | sha256sum | cut -c1-12)"
}

# pg_start NAME — a private cluster NAME in pg_checkout_dir, Unix socket only, trust auth.
# Sets PGHOME_DIR (its folder), PGDATA_DIR, PGSOCK_DIR, PGLOG_FILE and SEGMENTD_DATABASE_URL.
# As root, .data/NAME becomes a symbolic link to PGHOME_DIR unless it is a folder of its own
# (an older cluster, left alone).
pg_start() {
  local name=$1 as; as=$(pg_user_prefix)
  local checkout real; checkout=$(pg_checkout_dir); real=$(cd "$ROOT" && pwd -P)
  PGHOME_DIR="$checkout/$name"
  PGDATA_DIR="$PGHOME_DIR/pg"
  PGSOCK_DIR="$PGHOME_DIR/run"
  PGLOG_FILE="$PGHOME_DIR/postgres.log"
  # sun_path holds 107 bytes and a terminating NUL
  [ ${#PGSOCK_DIR} -le 93 ] ||
    die "the socket path $PGSOCK_DIR/.s.PGSQL.5432 is over 107 bytes: use a checkout with a shorter path"
  if [ -n "$as" ]; then
    install -d -m 0755 "$PG_CLUSTERS" "$checkout" || die "cannot create $checkout"
    if [ -s "$checkout/checkout" ]; then
      [ "$(cat "$checkout/checkout")" = "$real" ] ||
        die "$checkout belongs to $(cat "$checkout/checkout"), not to $ROOT"
    else
      echo "$real" > "$checkout/checkout"   # whose clusters these are
    fi
    { install -d -m 0755 -o postgres -g postgres "$PGHOME_DIR" "$PGSOCK_DIR" &&
      install -d -m 0700 -o postgres -g postgres "$PGDATA_DIR"; } || die "cannot create $PGHOME_DIR"
    $as test -x "$PGHOME_DIR" 2>/dev/null ||
      die "the postgres user cannot reach $PGHOME_DIR (check the permissions of its parent folders)"
    mkdir -p "$ROOT/.data"
    if [ -L "$ROOT/.data/$name" ] || [ ! -e "$ROOT/.data/$name" ]; then
      ln -sfn "$PGHOME_DIR" "$ROOT/.data/$name"
    elif [ -s "$ROOT/.data/$name/pg/PG_VERSION" ] && [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
      say "note: .data/$name/pg holds an older cluster, no longer used (remove it when you no longer need it)"
    fi
  else
    mkdir -p "$PGDATA_DIR" "$PGSOCK_DIR"
    chmod 700 "$PGDATA_DIR"
  fi
  if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
    say "creating a PostgreSQL 15 cluster in $PGDATA_DIR"
    $as "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null ||
      die "initdb failed"
  fi
  say "PostgreSQL cluster $name: $PGDATA_DIR (socket in $PGSOCK_DIR, log $PGLOG_FILE)"
  if ! $as "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
    pg_ctl_argv start
    "${PG_CTL_ARGV[@]}" >/dev/null || { tail -20 "$PGLOG_FILE" >&2; die "PostgreSQL did not start"; }
  fi
  $as "$PGBIN/psql" -h "$PGSOCK_DIR" -U postgres -d postgres -Atqc \
    "SELECT 1 FROM pg_database WHERE datname = 'segmentd'" | grep -q 1 ||
    $as "$PGBIN/createdb" -h "$PGSOCK_DIR" -U postgres segmentd
  export SEGMENTD_DATABASE_URL="host=$PGSOCK_DIR port=5432 dbname=segmentd user=postgres"
}

# pg_ctl_argv start|stop — sets the array PG_CTL_ARGV to the pg_ctl command that starts or
# stops the cluster of the last pg_start.
pg_ctl_argv() {
  local as; read -ra as <<< "$(pg_user_prefix)"
  case $1 in
    start) PG_CTL_ARGV=("${as[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGLOG_FILE" -w -t 60 -o \
             "-c listen_addresses='' -c unix_socket_directories='$PGSOCK_DIR' -c port=5432 -c max_connections=200" start) ;;
    stop) PG_CTL_ARGV=("${as[@]}" "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop) ;;
    *) die "pg_ctl_argv: start or stop, not $1" ;;
  esac
}

# pg_ctl_cmd start|stop — the same command as one line for sh -c (SEGMENTD_TEST_PGCTL_START/STOP).
pg_ctl_cmd() {
  pg_ctl_argv "$1"
  printf '%q ' "${PG_CTL_ARGV[@]}"
}

pg_stop() {
  [ -n "${PGDATA_DIR:-}" ] && [ -s "$PGDATA_DIR/postmaster.pid" ] || return 0
  pg_ctl_argv stop
  "${PG_CTL_ARGV[@]}" >/dev/null 2>&1 || true
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
