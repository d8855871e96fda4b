#!/usr/bin/env bash
# Tenant isolation behind PgBouncer in transaction pooling mode, against the
# running test cluster.  16 pgbench clients share 2 server connections; each
# transaction sets the context of a random one of 8 tenants with
# utilix.set_context() (transaction-local) and records what it sees of a
# protected table.  Afterwards: every transaction was recorded, no
# transaction ever saw another tenant's row, each saw all of its own rows;
# and a client that sets no context on a server connection that served
# other tenants before gets 42501, not rows.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${PGHOST:?run inside test/cluster.sh}" "${PGPORT:?}"
PGBOUNCER=${PGBOUNCER:-/usr/sbin/pgbouncer}
DB=utilix_pgbouncer
APP=pgb_app
NT=8
CLIENTS=16
TXNS=300

bdir=$(mktemp -d /tmp/utilix-pgbouncer.XXXXXX)
chmod 755 "$bdir"
[ "$(id -u)" -eq 0 ] && chown postgres "$bdir"

stop_pgbouncer() {
    local pid
    [ -f "$bdir/pgbouncer.pid" ] || return 0
    pid=$(cat "$bdir/pgbouncer.pid" 2>/dev/null)
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    rm -f "$bdir/pgbouncer.pid"
    return 0
}
cleanup() {
    stop_pgbouncer
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
    [ -z "${UTILIX_KEEP:-}" ] && rm -rf "$bdir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$PGBOUNCER" ] || bail "pgbouncer not found at $PGBOUNCER"

sql() {     # sql SQL: as the superuser, directly, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}

# ---------------------------------------------------------------- set-up
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" -c "CREATE ROLE $APP LOGIN" 2>&1) ||
    bail "cannot create database and role: $out"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE EXTENSION utilix;
CREATE TABLE meter (tenant_id bigint, id int, reading int, PRIMARY KEY (tenant_id, id));
SELECT 'protected' FROM (SELECT utilix.protect('meter')) s;
CREATE TABLE pgb_tokens (tenant_no int PRIMARY KEY, tenant_id bigint NOT NULL, token text NOT NULL);
CREATE TABLE pgb_results (
    id           bigserial PRIMARY KEY,
    tenant_no    int NOT NULL,
    expected     bigint,
    seen_tenant  bigint,
    rows_seen    bigint NOT NULL,
    foreign_rows bigint NOT NULL,
    backend_pid  int NOT NULL
);
-- tenant k owns 5k+3 rows, so every tenant's count differs
INSERT INTO pgb_tokens (tenant_no, tenant_id, token)
    SELECT k, t, utilix.issue_context(t, 'pgb-user-' || k, '1 hour')
      FROM (SELECT k, utilix.create_tenant('pgb-tenant-' || k) AS t FROM generate_series(1, $NT) k) s;
INSERT INTO meter (tenant_id, id, reading)
    SELECT p.tenant_id, i, (random() * 1000)::int
      FROM pgb_tokens p, generate_series(1, 5 * p.tenant_no + 3) i;
GRANT USAGE ON SCHEMA public TO $APP;
GRANT SELECT ON meter, pgb_tokens TO $APP;
GRANT INSERT ON pgb_results TO $APP;
GRANT USAGE ON SEQUENCE pgb_results_id_seq TO $APP;
SELECT count(*) FROM utilix.protected_tables WHERE relname = 'meter' AND rls_enabled AND rls_forced AND tenant_policy;
SQL
) || bail "set-up failed: $out"
is "$(printf '%s' "$out" | tail -1)" "1" "meter is protected (RLS enabled and forced, tenant policy)"
is "$(sql "SELECT count(*) FROM pgb_tokens WHERE token LIKE 'utx1.%'")" "$NT" "$NT tenants with a token each"

# ---------------------------------------------------------------- pgbouncer
BPORT=$(free_port) || bail "no free port"
printf '"%s" ""\n' "$APP" > "$bdir/userlist.txt"
cat > "$bdir/pgbouncer.ini" <<INI
[databases]
$DB = host=$PGHOST port=$PGPORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BPORT
unix_socket_dir = $bdir
auth_type = trust
auth_file = $bdir/userlist.txt
pool_mode = transaction
default_pool_size = 2
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 100
max_db_connections = 2
server_lifetime = 3600
server_idle_timeout = 600
ignore_startup_parameters = extra_float_digits
logfile = $bdir/pgbouncer.log
pidfile = $bdir/pgbouncer.pid
INI
[ "$(id -u)" -eq 0 ] && chown postgres "$bdir"/userlist.txt "$bdir"/pgbouncer.ini
as_pg "$PGBOUNCER" -d "$bdir/pgbouncer.ini" >"$bdir/start.out" 2>&1 ||
    bail "pgbouncer does not start: $(cat "$bdir/start.out") $(tail -5 "$bdir/pgbouncer.log" 2>/dev/null)"

bpsql() {   # bpsql ARGS...: as the app role, through pgbouncer
    psql -X -q -A -t -h 127.0.0.1 -p "$BPORT" -U "$APP" -d "$DB" "$@" 2>&1
}
up=0
for _ in $(seq 1 50); do
    if [ "$(bpsql -c 'SELECT 1')" = "1" ]; then up=1; break; fi
    sleep 0.1
done
[ $up -eq 1 ] || bail "pgbouncer does not accept connections: $(tail -5 "$bdir/pgbouncer.log")"
ok "pgbouncer listens on 127.0.0.1:$BPORT in transaction mode"

# ---------------------------------------------------------------- the load
cat > "$bdir/txn.sql" <<'PGB'
\set t random(1, 8)
BEGIN;
SELECT utilix.set_context(token) FROM pgb_tokens WHERE tenant_no = :t;
INSERT INTO pgb_results (tenant_no, expected, seen_tenant, rows_seen, foreign_rows, backend_pid)
SELECT :t,
       (SELECT tenant_id FROM pgb_tokens WHERE tenant_no = :t),
       utilix.current_tenant(),
       count(*),
       count(*) FILTER (WHERE tenant_id <> (SELECT tenant_id FROM pgb_tokens WHERE tenant_no = :t)),
       pg_backend_pid()
  FROM meter;
END;
PGB
sed -i "s/random(1, 8)/random(1, $NT)/" "$bdir/txn.sql"

pgbench -n -c "$CLIENTS" -j 2 -t "$TXNS" -f "$bdir/txn.sql" \
    -h 127.0.0.1 -p "$BPORT" -U "$APP" "$DB" >"$bdir/pgbench.out" 2>&1
rc=$?
is "$rc" "0" "pgbench through pgbouncer exits 0"
[ "$rc" -ne 0 ] && diag "$(tail -15 "$bdir/pgbench.out")"
want=$((CLIENTS * TXNS))
processed=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$bdir/pgbench.out")
is "$processed" "$want" "pgbench processed $want transactions"
failed_tx=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$bdir/pgbench.out")
is "${failed_tx:-0}" "0" "no pgbench transaction failed"
diag "$(grep -E '^tps' "$bdir/pgbench.out")"

is "$(sql "SELECT count(*) FROM pgb_results")" "${processed:-none}" "every transaction pgbench counted is recorded"
is "$(sql "SELECT count(*) FROM pgb_results WHERE expected IS NULL OR seen_tenant IS NULL")" "0" "every transaction had a context"
is "$(sql "SELECT coalesce(sum(foreign_rows), -1) FROM pgb_results")" "0" "no transaction saw a row of another tenant (sum of foreign rows is 0)"
is "$(sql "SELECT count(*) FROM pgb_results WHERE seen_tenant <> expected")" "0" "current_tenant() was always the tenant whose token was set"
is "$(sql "SELECT count(*) FROM pgb_results r
             JOIN (SELECT tenant_id, count(*) AS n FROM meter GROUP BY 1) m ON m.tenant_id = r.expected
            WHERE r.rows_seen = m.n")" "${processed:-none}" "every transaction saw exactly its own tenant's row count"
is "$(sql "SELECT count(DISTINCT tenant_no) FROM pgb_results")" "$NT" "all $NT tenants were exercised"
npids=$(sql "SELECT count(DISTINCT backend_pid) FROM pgb_results")
like "$npids" '^[12]$' "at most 2 server connections served all $CLIENTS clients ($npids)"
is "$(sql "SELECT count(*) FROM (SELECT backend_pid FROM pgb_results GROUP BY 1 HAVING count(DISTINCT tenant_no) = $NT) s")" "$npids" \
    "each server connection served all $NT tenants in turn"

# ---------------------------------------------------------------- a client that forgets its context
out=$(bpsql -v VERBOSITY=verbose -c "SELECT count(*) FROM meter")
like "$out" 'ERROR: +42501' "a client without a context gets 42501 from meter"
unlike "$out" '^[0-9]+$' "a client without a context gets no row count"

# In one transaction, so all three run on the same server connection: its
# pid, the context it has (none), and the refused read.
served=0
for i in 1 2 3 4; do
    out=$(bpsql -v VERBOSITY=verbose <<'SQL'
BEGIN;
SELECT 'pid=' || pg_backend_pid();
SELECT 'ctx=' || status FROM utilix.context_info();
SELECT 'rows=' || count(*) FROM meter;
SELECT 'rows=' || count(*) FROM meter WHERE tenant_id IN (SELECT tenant_id FROM pgb_tokens);
COMMIT;
SQL
)
    pid=$(printf '%s\n' "$out" | sed -n 's/^pid=//p')
    prior=$(sql "SELECT count(*) FROM pgb_results WHERE backend_pid = ${pid:-0}")
    [ "${prior:-0}" -gt 0 ] && served=$((served + 1))
    like "$out" 'ctx=none' "forgetful client $i: its server connection carries no context (pid $pid, $prior earlier transactions)"
    like "$out" 'ERROR: +42501' "forgetful client $i: reading meter fails with 42501"
    unlike "$out" 'rows=' "forgetful client $i: no rows"
done
[ $served -eq 4 ] && ok "each forgetful client ran on a server connection that had served tenant contexts" ||
    not_ok "each forgetful client ran on a server connection that had served tenant contexts" "$served of 4"

# a context set in one transaction does not survive into the next one
out=$(bpsql -v VERBOSITY=verbose <<'SQL'
BEGIN;
SELECT 'set=' || utilix.set_context(token) FROM pgb_tokens WHERE tenant_no = 1;
SELECT 'rows=' || count(*) FROM meter;
COMMIT;
SELECT 'rows=' || count(*) FROM meter;
SQL
)
like "$out" 'rows=8' "a transaction with tenant 1's context sees its 8 rows"
is "$(printf '%s\n' "$out" | grep -c '^rows=')" "1" "the next transaction on the same client sees nothing"
like "$out" 'ERROR: +42501' "the next transaction fails with 42501"

stop_pgbouncer
ok "pgbouncer stopped"
done_testing
