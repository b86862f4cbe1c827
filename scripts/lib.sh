# Shared by scripts/run and scripts/test: install what is missing, find PostgreSQL.
# Sourced, not executed. Everything comes from the package registries (crates.io,
# npm, Debian); nothing is downloaded from anywhere else.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CARGO_LEPTOS_VERSION=0.3.10
# Leptos embeds the bundle name at compile time when this is set (cargo-leptos sets
# it too); setting it for every cargo call lets tests, clippy and cargo-leptos share
# one build instead of rebuilding each other's artifacts.
export LEPTOS_OUTPUT_NAME=recovery-portal

say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

APT_UPDATED=
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_rust_tools() {
  command -v cargo >/dev/null || die "cargo not found: install a Rust toolchain (rustup) first"
  rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown \
    || { say "adding the wasm32-unknown-unknown target"; rustup target add wasm32-unknown-unknown; }
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
  apt_install pkg-config libssl-dev
  if ! cargo leptos --version 2>/dev/null | grep -q " $CARGO_LEPTOS_VERSION"; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION from crates.io (takes a while, once)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked
  fi
  # The CLI must match the wasm-bindgen crate in Cargo.lock exactly.
  local wbg
  wbg=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/version = |"/,""); print; exit}' Cargo.lock)
  [ -n "$wbg" ] || die "no wasm-bindgen in Cargo.lock"
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg\$"; then
    say "installing wasm-bindgen-cli $wbg from crates.io (once)"
    cargo install wasm-bindgen-cli --version "$wbg"
  fi
}

# wasm-opt for release builds: the npm package (Debian's binaryen 108 breaks hydration).
ensure_wasm_opt() {
  ensure_node
  if [ ! -x "$ROOT/.tools/node_modules/.bin/wasm-opt" ]; then
    say "installing binaryen (wasm-opt) from npm"
    mkdir -p "$ROOT/.tools"
    (cd "$ROOT/.tools" && npm install --no-audit --no-fund --silent binaryen@132.0.0 >/dev/null)
  fi
  export PATH="$ROOT/.tools/node_modules/.bin:$PATH"
}

ensure_node() {
  command -v npm >/dev/null || apt_install nodejs npm
  command -v curl >/dev/null || apt_install curl
}

ensure_chromium() {
  [ -x /usr/bin/chromium ] || apt_install chromium
}

# Where a throwaway cluster lives when no PostgreSQL is reachable.
PG_DIR="$ROOT/.data/pg"
PG_PORT=55432
STARTED_PG=

# A real Keystone (from PyPI, on sqlite, served by uwsgi) for the OpenStack client's
# tests, in target/keystone-venv. Pinned so that CI installs what was tested.
KEYSTONE_PIN="keystone==30.0.0 uWSGI==2.0.31"
ensure_keystone() {
  local venv="$ROOT/target/keystone-venv"
  if [ -x "$venv/bin/keystone-manage" ] && [ -x "$venv/bin/uwsgi" ]; then return 0; fi
  say "installing Keystone and uwsgi from PyPI into target/keystone-venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check $KEYSTONE_PIN
}

# A real SMTP server (aiosmtpd, from PyPI) for the approval e-mail test, in
# target/aiosmtpd-venv; exports AIOSMTPD_PYTHON for the test. Pinned like Keystone.
AIOSMTPD_PIN="aiosmtpd==1.4.6"
ensure_aiosmtpd() {
  local venv="$ROOT/target/aiosmtpd-venv"
  if ! "$venv/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
    say "installing aiosmtpd from PyPI into target/aiosmtpd-venv"
    command -v python3 >/dev/null || apt_install python3 python3-venv
    rm -rf "$venv"
    mkdir -p "$ROOT/target"
    # Debian splits venv support out of python3.
    python3 -m venv "$venv" >/dev/null 2>&1 || { rm -rf "$venv"; apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check $AIOSMTPD_PIN
  fi
  export AIOSMTPD_PYTHON="$venv/bin/python"
}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    apt_install postgresql >/dev/null
    d=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
  printf '%s' "$d"
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_throwaway_pg() {
  local bin; bin=$(pg_bin)
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    say "creating a throwaway PostgreSQL cluster in .data/pg"
    mkdir -p "$ROOT/.data"
    if [ "$(id -u)" = 0 ]; then install -d -o postgres -m 700 "$PG_DIR"; else install -d -m 700 "$PG_DIR"; fi
    as_pg "$bin/initdb" -D "$PG_DIR" -A trust -U postgres >/dev/null
  fi
  if ! port_open "$PG_PORT"; then
    say "starting the throwaway PostgreSQL on 127.0.0.1:$PG_PORT"
    as_pg "$bin/pg_ctl" -D "$PG_DIR" -o "-k $PG_DIR -p $PG_PORT -c listen_addresses=127.0.0.1" -l "$PG_DIR/log" -w start >/dev/null
    STARTED_PG=1
  fi
}

stop_throwaway_pg() {
  if [ -n "$STARTED_PG" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$PG_DIR" -m fast -w stop >/dev/null 2>&1 || true
    STARTED_PG=
  fi
}

# Sets PG_SERVER_URL (no database name): DATABASE_URL's server if given, else a
# server on 127.0.0.1:5432, else a throwaway cluster under .data/.
find_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    PG_SERVER_URL="${DATABASE_URL%/*}"
    say "using PostgreSQL from DATABASE_URL"
  elif port_open 5432; then
    PG_SERVER_URL="postgres://postgres@127.0.0.1:5432"
    say "using PostgreSQL on 127.0.0.1:5432"
  else
    start_throwaway_pg
    PG_SERVER_URL="postgres://postgres@127.0.0.1:$PG_PORT"
  fi
}

# The portal's two database roles (see README, *Database roles*): OWNER_ROLE owns
# the schema and runs the migrations; APP_ROLE is the role the portal serves as,
# which the portal grants only SELECT and INSERT on the audit trail after
# migrating. For development on a trust-auth server: the roles have no password.
OWNER_ROLE=recovery_portal_owner
APP_ROLE=recovery_portal_app

psql_cmd() {
  if command -v psql >/dev/null; then psql "$@"; else "$(pg_bin)/psql" "$@"; fi
}

# setup_portal_roles SERVER_URL DB: creates both roles and database DB (owned by
# OWNER_ROLE) when missing, with the server's superuser from SERVER_URL, hands a
# database made before the roles existed to OWNER_ROLE, and exports
# MIGRATION_DATABASE_URL and DATABASE_URL for the two roles.
setup_portal_roles() {
  local server="$1" db="$2"
  psql_cmd -q -v ON_ERROR_STOP=1 "$server/postgres" >/dev/null <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$OWNER_ROLE') THEN CREATE ROLE $OWNER_ROLE LOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE') THEN CREATE ROLE $APP_ROLE LOGIN; END IF;
END \$\$;
-- bench audit makes and drops a scratch database as the owner.
ALTER ROLE $OWNER_ROLE CREATEDB;
SELECT 'CREATE DATABASE "$db" OWNER $OWNER_ROLE'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \gexec
SQL
  [ $? -eq 0 ] || return 1
  # An earlier ./scripts/run migrated as the superuser: the owner takes over its
  # tables, functions and the session store's schema (once; then nothing to do).
  psql_cmd -q -v ON_ERROR_STOP=1 "$server/$db" >/dev/null <<SQL
ALTER DATABASE "$db" OWNER TO $OWNER_ROLE;
DO \$\$ DECLARE r record; BEGIN
  FOR r IN SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname IN ('public', 'tower_sessions') AND c.relkind IN ('r', 'p')
             AND c.relowner <> '$OWNER_ROLE'::regrole LOOP
    EXECUTE format('ALTER TABLE %I.%I OWNER TO $OWNER_ROLE', r.nspname, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure::text AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND p.proowner <> '$OWNER_ROLE'::regrole LOOP
    EXECUTE format('ALTER FUNCTION %s OWNER TO $OWNER_ROLE', r.f);
  END LOOP;
  IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tower_sessions') THEN
    ALTER SCHEMA tower_sessions OWNER TO $OWNER_ROLE;
  END IF;
END \$\$;
SQL
  [ $? -eq 0 ] || return 1
  # host:port of the server, without the superuser's credentials.
  local hostport="${server#*://}"; hostport="${hostport##*@}"
  export MIGRATION_DATABASE_URL="postgres://$OWNER_ROLE@$hostport/$db"
  export DATABASE_URL="postgres://$APP_ROLE@$hostport/$db"
}
