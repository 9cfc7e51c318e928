#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of kf-store-postgres (scripts/test.sh uses it).
#
#   eval "$(scripts/pg-test-server.sh start)"   # prints `export KF_TEST_POSTGRES_URL=… KF_TEST_POSTGRES_DIR=…`
#   scripts/pg-test-server.sh stop "$KF_TEST_POSTGRES_DIR"
#
# The server runs from Debian's binaries (/usr/lib/postgresql/<version>/bin, not on the PATH) in a new temporary
# directory, as the `postgres` system user when run as root (PostgreSQL refuses to run as root), and listens only
# on a Unix socket in that directory, so it never competes for a port. Tests create a database each from the URL.
# Without KF_TEST_POSTGRES_URL the tests start a server of their own the same way (kf_store_postgres::testing).
set -euo pipefail

bin_dir() {
    if [ -n "${KF_POSTGRES_BIN:-}" ]; then echo "$KF_POSTGRES_BIN"; return; fi
    local newest
    newest=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$newest" ] && [ -x "$newest/initdb" ]; then echo "$newest"; return; fi
    local initdb
    initdb=$(command -v initdb || true)
    [ -n "$initdb" ] || { echo "pg-test-server: no initdb (install Debian's postgresql package)" >&2; exit 1; }
    dirname "$initdb"
}

as_server_user() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-}" in
start)
    bin=$(bin_dir)
    dir=$(mktemp -d /tmp/kf-pg-XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_server_user "$bin/initdb" --auth=trust --encoding=UTF8 --locale=C.UTF-8 --username=postgres \
        -D "$dir/data" >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; exit 1; }
    if ! as_server_user "$bin/pg_ctl" start -w -t 60 -D "$dir/data" -l "$dir/server.log" \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p 5432 -c fsync=off \
            -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null; then
        cat "$dir/server.log" >&2 || true
        rm -rf "$dir"
        exit 1
    fi
    echo "export KF_TEST_POSTGRES_URL='host=$dir port=5432 user=postgres dbname=postgres' KF_TEST_POSTGRES_DIR='$dir'"
    ;;
stop)
    dir=${2:?usage: pg-test-server.sh stop DIR}
    case "$dir" in /tmp/kf-pg-*) ;; *) echo "pg-test-server: not a test server directory: $dir" >&2; exit 1 ;; esac
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_server_user "$(bin_dir)/pg_ctl" stop -m fast -D "$dir/data" >/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
