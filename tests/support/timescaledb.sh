#!/usr/bin/env bash
# TimescaleDB for the test suite: built once from the vendored source (cached outside the
# repository, keyed by the tarball's SHA-256 and the PostgreSQL major), installed into the
# local PostgreSQL, and served by a second cluster that preloads it.
#
#   timescaledb.sh cached   exit 0 if the build is cached (no build dependencies needed)
#   timescaledb.sh can-build  exit 0 if this user can build and install it (else one line why)
#   timescaledb.sh ensure   build (if not cached), install (if not installed), start the cluster
#
# Environment: PISMAN_TIMESCALEDB_TARBALL (default ../shared/vendor/timescaledb-2.28.3.tar.gz
# beside the repository), PISMAN_CACHE_DIR (default /var/cache/pisman),
# PISMAN_TEST_TSDB_PORT (default 5433), PISMAN_PG_MAJOR (default: newest in /etc/postgresql).
set -euo pipefail
cd "$(dirname "$0")/../.."

say() { echo "[timescaledb] $*" >&2; }
die() { say "$*"; exit 1; }

TARBALL="${PISMAN_TIMESCALEDB_TARBALL:-../shared/vendor/timescaledb-2.28.3.tar.gz}"
CACHE_ROOT="${PISMAN_CACHE_DIR:-/var/cache/pisman}"
PORT="${PISMAN_TEST_TSDB_PORT:-5433}"
PG_MAJOR="${PISMAN_PG_MAJOR:-$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)}"
CLUSTER=tsdb

[ -n "$PG_MAJOR" ] || die "no PostgreSQL cluster configuration in /etc/postgresql; cannot add TimescaleDB"
[ -f "$TARBALL" ] || die "TimescaleDB source not found at $TARBALL (expected ../shared/vendor beside the repository)"
SHA="$(sha256sum "$TARBALL" | cut -c1-16)"
CACHE="$CACHE_ROOT/timescaledb-$SHA-pg$PG_MAJOR"
STAGE="$CACHE/stage"          # the installed files, laid out under / (make install DESTDIR=)
MARKER="$CACHE/complete"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
is_root() { [ "$(id -u)" -eq 0 ]; }

build() {
  is_root || die "cannot build TimescaleDB: not root (the install writes into PostgreSQL's directories)"
  local pg_config="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
  [ -x "$pg_config" ] || die "cannot build TimescaleDB: $pg_config missing (postgresql-server-dev-$PG_MAJOR)"
  mkdir -p "$CACHE_ROOT"
  local work="$CACHE.building"
  rm -rf "$work" && mkdir -p "$work"
  local log="$work/build.log" started=$SECONDS
  say "building $(basename "$TARBALL") for PostgreSQL $PG_MAJOR once (3-4 min on 2 cores), cache $CACHE"
  say "  unpacking"
  tar -xzf "$TARBALL" -C "$work"
  local src
  src="$(find "$work" -mindepth 1 -maxdepth 1 -type d -name 'timescaledb-*' | head -n1)"
  say "  configuring"
  (cd "$src" && ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
      -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG="$pg_config") >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; die "configure failed (log: $log)"; }
  say "  compiling (make -j2)"
  make -C "$src/build" -j2 >>"$log" 2>&1 || { tail -n 20 "$log" >&2; die "build failed (log: $log)"; }
  say "  staging the installed files"
  make -C "$src/build" install DESTDIR="$work/stage" >>"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; die "make install failed (log: $log)"; }
  cp "$src/build/install_manifest.txt" "$work/install_manifest.txt"
  rm -rf "$src"
  rm -rf "$CACHE" && mv "$work" "$CACHE"
  date -u +%FT%TZ >"$MARKER"
  say "  built in $((SECONDS - started)) s"
}

installed() {
  local f
  while IFS= read -r f || [ -n "$f" ]; do
    cmp -s "$STAGE$f" "$f" || return 1
  done <"$CACHE/install_manifest.txt"
}

install_files() {
  installed && return 0
  is_root || die "cannot install TimescaleDB into PostgreSQL $PG_MAJOR: not root"
  say "installing into PostgreSQL $PG_MAJOR's lib and extension directories (from the cache)"
  NEWLY_INSTALLED=1
  local f
  while IFS= read -r f || [ -n "$f" ]; do
    # A new file renamed into place: a running server keeps its mapping of the old one.
    mkdir -p "$(dirname "$f")"
    cp --preserve=mode "$STAGE$f" "$f.pisman-new" && mv -f "$f.pisman-new" "$f"
  done <"$CACHE/install_manifest.txt"
}

cluster_setting() {
  psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc "SHOW $1" 2>/dev/null
}

ensure_cluster() {
  if ! pg_lsclusters -h 2>/dev/null | awk -v m="$PG_MAJOR" -v c="$CLUSTER" '$1 == m && $2 == c' | grep -q .; then
    is_root || die "cannot create the TimescaleDB test cluster: not root"
    say "creating cluster $PG_MAJOR/$CLUSTER on 127.0.0.1:$PORT (trust auth, timescaledb preloaded)"
    pg_createcluster "$PG_MAJOR" "$CLUSTER" -p "$PORT" -- --auth=trust >/dev/null 9>&-
  fi
  local conf="/etc/postgresql/$PG_MAJOR/$CLUSTER/conf.d/pisman-tests.conf"
  if [ ! -f "$conf" ]; then
    is_root || die "cannot configure the TimescaleDB test cluster: not root"
    # Background jobs fail at start on this PostgreSQL (see ../shared/vendor/README.md) and
    # their workers connect to every database, so keep them few. A throwaway test cluster
    # need not survive a crash: no fsync.
    cat >"$conf" <<EOF
port = $PORT
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
timescaledb.max_background_workers = 2
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    chown postgres:postgres "$conf"
    if port_open "$PORT"; then
      pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$CLUSTER" restart 9>&-
    fi
  fi
  if [ -n "${NEWLY_INSTALLED:-}" ] && port_open "$PORT"; then
    say "restarting cluster $PG_MAJOR/$CLUSTER to load the newly installed TimescaleDB"
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$CLUSTER" restart 9>&-
  fi
  if ! port_open "$PORT"; then
    say "starting cluster $PG_MAJOR/$CLUSTER on 127.0.0.1:$PORT"
    pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$CLUSTER" start 9>&- \
      || die "cluster $PG_MAJOR/$CLUSTER did not start (log: /var/log/postgresql/postgresql-$PG_MAJOR-$CLUSTER.log)"
    for _ in $(seq 1 50); do port_open "$PORT" && break; sleep 0.2; done
  fi
  [ "$(cluster_setting shared_preload_libraries)" = timescaledb ] \
    || die "the server on 127.0.0.1:$PORT does not preload timescaledb"
}

case "${1:-ensure}" in
  cached)
    [ -f "$MARKER" ]
    ;;
  can-build)
    is_root || die "cannot build TimescaleDB for the second test backend: not root (needs to install Debian packages and write into PostgreSQL $PG_MAJOR's directories)"
    command -v apt-get >/dev/null 2>&1 || die "cannot build TimescaleDB for the second test backend: no apt-get for postgresql-server-dev-$PG_MAJOR cmake libssl-dev"
    ;;
  ensure)
    if is_root; then mkdir -p "$CACHE_ROOT"; exec 9>"$CACHE_ROOT/timescaledb.lock"; else exec 9>/dev/null; fi
    flock 9  # two test runs at once build once (the servers started below must not inherit fd 9)
    [ -f "$MARKER" ] || build
    install_files
    ensure_cluster
    say "TimescaleDB $(psql -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -Atqc \
      "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'") on PostgreSQL $PG_MAJOR at 127.0.0.1:$PORT"
    ;;
  *)
    echo "usage: $0 cached|can-build|ensure" >&2
    exit 2
    ;;
esac
