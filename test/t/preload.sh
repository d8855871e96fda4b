#!/usr/bin/env bash
# utilix without shared_preload_libraries, on a cluster of its own:
# CREATE EXTENSION utilix must fail with SQLSTATE 55000 and a hint naming
# shared_preload_libraries, leave nothing behind, and a session-level LOAD
# or session_preload_libraries must not be a way around it.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

pl_dir=$(mktemp -d /tmp/utilix-preload.XXXXXX)
cleanup() {
    UTILIX_DIR=$pl_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$pl_dir" || bail "initdb failed"
cluster_conf "shared_preload_libraries = ''"
cluster_start || bail "the server without utilix preloaded does not start: $(tail -5 "$UTILIX_DIR/server.log")"
ok "the server starts without utilix in shared_preload_libraries"

sqlv() {    # sqlv SQL: verbose errors, errors do not stop
    psql -X -q -A -t -v VERBOSITY=verbose -d postgres -c "$1" 2>&1
}

is "$(sqlv "SHOW shared_preload_libraries")" "" "shared_preload_libraries is empty"

out=$(sqlv "CREATE EXTENSION utilix")
like "$out" 'ERROR: +55000: utilix must be loaded via shared_preload_libraries' "CREATE EXTENSION utilix fails with SQLSTATE 55000"
like "$out" 'HINT: .*shared_preload_libraries' "the hint names shared_preload_libraries"
is "$(sqlv "SELECT count(*) FROM pg_extension WHERE extname = 'utilix'")" "0" "the extension is not installed"
is "$(sqlv "SELECT count(*) FROM pg_namespace WHERE nspname = 'utilix'")" "0" "no utilix schema is left behind"
is "$(sqlv "SELECT count(*) FROM pg_roles WHERE rolname IN ('utilix_operator', 'utilix_issuer')")" "0" "no utilix roles are left behind"

out=$(sqlv "LOAD 'utilix'; CREATE EXTENSION utilix")
like "$out" 'ERROR: +55000: utilix must be loaded via shared_preload_libraries' "after LOAD 'utilix' in the session, CREATE EXTENSION still fails with 55000"

out=$(sqlv "CREATE SCHEMA utilix; CREATE EXTENSION utilix SCHEMA utilix")
like "$out" 'ERROR: +55000: utilix must be loaded' "CREATE EXTENSION into an existing utilix schema fails with 55000 too"
sqlv "DROP SCHEMA IF EXISTS utilix" >/dev/null

out=$(sqlv "ALTER SYSTEM SET session_preload_libraries = 'utilix'; SELECT pg_reload_conf()")
out=$(sqlv "SHOW session_preload_libraries; CREATE EXTENSION utilix")
like "$out" 'ERROR: +55000: utilix must be loaded via shared_preload_libraries' "with session_preload_libraries = 'utilix', CREATE EXTENSION still fails with 55000"
sqlv "ALTER SYSTEM RESET session_preload_libraries; SELECT pg_reload_conf()" >/dev/null

is "$(sqlv "SELECT count(*) FROM pg_extension WHERE extname = 'utilix'")" "0" "still no extension installed"
# the configured key line is inert without the library: it must not be logged
lacks "$UTILIX_DIR/server.log" -- "$(tr -d '\n' < "$UTILIX_DIR/master.key")" "server.log does not contain the master key"

done_testing
