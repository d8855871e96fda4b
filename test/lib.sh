#!/usr/bin/env bash
# Shared shell functions for throwaway PostgreSQL clusters with utilix
# preloaded.  Sourced by test/cluster.sh, the scripted tests, the benchmarks
# and the demo.  Run as root, the server runs as the postgres user.

PGBIN=${PGBIN:-$(pg_config --bindir)}

# Run a command as the server's user (postgres when we are root).
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$(( (RANDOM % 30000) + 20000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# new_key FILE: 32 random bytes as 64 hex characters, mode 0600, owned by the server's user.
new_key() {
    local f=$1
    ( umask 077; od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$f"; echo >> "$f" )
    [ "$(id -u)" -eq 0 ] && chown postgres "$f"
    chmod 600 "$f"
}

# cluster_init DIR: initdb, a fresh key, utilix preloaded, a free port.
# Exports PGHOST, PGPORT, PGUSER, PGDATABASE and UTILIX_DIR.
cluster_init() {
    local dir=$1
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2; return 1; }
    new_key "$dir/master.key"
    local port
    port=$(free_port)
    cat >> "$dir/data/postgresql.conf" <<CONF
# --- utilix test cluster ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
shared_preload_libraries = 'utilix'
utilix.master_key_file = '$dir/master.key'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 120
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
CONF
    export UTILIX_DIR=$dir PGHOST=$dir PGPORT=$port PGUSER=postgres PGDATABASE=postgres
}

cluster_conf() {
    echo "$*" >> "$UTILIX_DIR/data/postgresql.conf"
}

# UTILIX_SERVER_ENV: optional NAME=VALUE words (no blanks inside a value) put
# in the environment of pg_ctl and so of the server only, not of the shell,
# psql or runuser.  test/asan.sh puts the sanitizer preload there.
as_pg_server() {
    local -a e
    read -ra e <<<"${UTILIX_SERVER_ENV:-}"
    as_pg env "${e[@]}" "$@"
}

cluster_start() {
    as_pg_server "$PGBIN/pg_ctl" -D "$UTILIX_DIR/data" -l "$UTILIX_DIR/server.log" -w -t 60 start >/dev/null
}

# cluster_try_start: start, returning non-zero (not exiting) when the server refuses.
cluster_try_start() {
    as_pg_server "$PGBIN/pg_ctl" -D "$UTILIX_DIR/data" -l "$UTILIX_DIR/server.log" -w -t 20 start >/dev/null 2>&1
}

cluster_stop() {
    [ -n "${UTILIX_DIR:-}" ] && [ -f "$UTILIX_DIR/data/postmaster.pid" ] &&
        as_pg "$PGBIN/pg_ctl" -D "$UTILIX_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1
    return 0
}

cluster_destroy() {
    cluster_stop
    [ -n "${UTILIX_DIR:-}" ] && [ -z "${UTILIX_KEEP:-}" ] && rm -rf "$UTILIX_DIR"
    return 0
}
