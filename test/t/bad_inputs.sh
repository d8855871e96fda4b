#!/usr/bin/env bash
# Bad inputs that can take the server down or wedge the access log writer,
# on a cluster of their own (test/pgtap/80_bad_inputs.sql has the rest of
# the sweep; a SIGSEGV there would kill every session of the shared cluster):
#  - values of an encrypted type whose bytes are not of that type: the
#    blind-index probe utilix._blind_probe(jsonb, ...) returns, printed or
#    decrypted, by a role with no grant and no context; armour of an
#    encrypted bytea column read as utilix.encrypted_jsonb by a reader of
#    its tenant.  Each must end in a value or a clean error, with the server
#    up (no "terminated by signal" in the log, the session not lost);
#  - utilix.access_log_spill(), a standby's function, called on the primary
#    while records wait in the spill directory for the writer: whatever it
#    answers, every record must still reach the log.
# See doc/bad-inputs.md (B1, B12).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

bi_dir=$(mktemp -d /tmp/utilix-bad-inputs.XXXXXX)
cleanup() {
    UTILIX_DIR=$bi_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$bi_dir" || bail "initdb failed"
# a small queue, so that 100 events spill; a writer with nothing to do stays
cluster_conf "utilix.access_log_queue_size = 64"
cluster_conf "utilix.access_log_writer_idle = '1h'"
LOG=$UTILIX_DIR/server.log
DB=bidb
export PGOPTIONS="-c client_min_messages=warning"

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
crashes() {         # backends the postmaster saw die of a signal so far
    grep -c 'terminated by signal' "$LOG"
}
# survives DESC ROLE TOKEN SQL: runs SQL as ROLE (with TOKEN as its session
# context, when given) and asserts that it ended in a value or an ERROR with
# a SQLSTATE, with no backend killed by a signal; after a crash, waits for
# the server to come back so that the next case runs.
survives() {
    local desc=$1 role=$2 tok=$3 sql=$4 before out rc after
    local args=(-c "SET ROLE $role")
    [ -n "$tok" ] && args+=(-c "SELECT utilix.set_context('$tok', false) IS NULL")
    args+=(-c "$sql")
    before=$(crashes)
    out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$DB" "${args[@]}" 2>&1)
    rc=$?
    sleep 0.5
    after=$(crashes)
    if [ "$after" != "$before" ] || grep -q 'server closed the connection' <<<"$out"; then
        not_ok "$desc: the server survives" \
            "psql exit $rc: $(printf '%s' "$out" | grep -v 'utx1\.' | tail -3)
$(grep 'terminated by signal' "$LOG" | tail -1)"
        server_ready 60 || bail "the server did not come back after the crash"
        sleep 1
    elif [ $rc -ne 0 ] && ! grep -qE 'ERROR: +[0-9A-Z]{5}:' <<<"$out"; then
        not_ok "$desc: the server survives" "psql exit $rc without a SQLSTATE: $(printf '%s' "$out" | tail -3)"
    else
        ok "$desc: the server survives ($(printf '%s' "$out" | grep -oE 'ERROR: +[0-9A-Z]{5}' | head -1 | grep . || echo 'a value'))"
    fi
}

cluster_start || bail "the server does not start: $(tail -5 "$LOG")"
psql -X -q -d postgres -c "CREATE DATABASE $DB" || bail "createdb failed"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<'SQL'
CREATE EXTENSION utilix;
CREATE ROLE bi_plain NOLOGIN;
CREATE ROLE bi_app NOLOGIN;
CREATE ROLE bi_op NOLOGIN IN ROLE utilix_operator;
CREATE TABLE doc (tenant_id bigint NOT NULL, id int NOT NULL, note text, blob bytea, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('doc');
SELECT utilix.encrypt_column('doc', 'note');
SELECT utilix.encrypt_column('doc', 'blob');
GRANT SELECT ON doc TO bi_app;
SQL
) || bail "set-up failed: $out"
TENANT=$(q "SELECT utilix.create_tenant('bi acme')")
[[ "$TENANT" =~ ^[0-9]+$ ]] || bail "create_tenant: $TENANT"
# a bytea value whose bytes are those of a blind-index probe ("\xffUTXP" ...)
q "INSERT INTO doc VALUES ($TENANT, 1, 'a note', '\\xff555458500100000000000000010000000000000001000000000000000000000000000000000000')" >/dev/null
ARMOUR_BLOB=$(q "SELECT blob::text FROM doc WHERE id = 1")       # no context: armour
[[ "$ARMOUR_BLOB" == utxe1:* ]] || bail "no armour: $ARMOUR_BLOB"
COL=$(q "SELECT column_id FROM utilix.encrypted_column WHERE column_name = 'note'")
READER=$(q "SELECT utilix.issue_context($TENANT, 'reader', '1 hour', '{read}')")
[[ "$READER" == utx1.* ]] || bail "issue_context: $READER"

# ------------------------------------------------------------------ encrypted values of the wrong type
survives "_blind_probe(jsonb) printed, by a role with no grant and no context" bi_plain "" \
    "SELECT utilix._blind_probe('{}'::jsonb, 1)"
survives "_blind_probe(jsonb) printed, by a reader of the column" bi_app "$READER" \
    "SELECT utilix._blind_probe('{\"a\": 1}'::jsonb, $COL)"
survives "decrypt(_blind_probe(jsonb)) used as jsonb, no context" bi_plain "" \
    "SELECT utilix.decrypt(utilix._blind_probe('{}'::jsonb, 1)) -> 'a'"
survives "armour of an encrypted bytea column read as encrypted_jsonb, printed by a reader" bi_app "$READER" \
    "SELECT '$ARMOUR_BLOB'::utilix.encrypted_jsonb"
survives "armour of an encrypted bytea column read as encrypted_jsonb, decrypted by a reader" bi_app "$READER" \
    "SELECT utilix.decrypt('$ARMOUR_BLOB'::utilix.encrypted_jsonb)::text"
is "$(psql -X -q -A -t -d "$DB" -c 'SELECT 1' 2>&1)" "1" "SELECT 1 works after the encrypted-type cases"

# ------------------------------------------------------------------ access_log_spill() on the primary
# README: "operator, on a standby".  On the primary the spill files are the
# writer's to load: the writer is parked (it gathers a batch for 600 s), 100
# events fill the 64-record queue and 36 of them spill; an operator calls
# access_log_spill() there.  Whatever it answers, no record may be lost.
q "SELECT utilix.access_log_flush(10000)" >/dev/null
q "ALTER SYSTEM SET utilix.access_log_writer_delay = '600s'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
q "SELECT utilix._log_event('admin', NULL, 'ok', 'bi wake the writer')" >/dev/null
sleep 2
q "SELECT count(*) FROM (SELECT utilix._log_event('admin', NULL, 'ok', 'bi spill ' || i) FROM generate_series(1, 100) i) s" >/dev/null
spilled=$(q "SELECT spilled FROM utilix.access_log_status")
out=$(psql -X -q -A -t -v VERBOSITY=verbose -d "$DB" -c "SET ROLE bi_op" \
          -c "SELECT 'returned ' || length(utilix.access_log_spill()) || ' bytes'" 2>&1)
q "ALTER SYSTEM RESET utilix.access_log_writer_delay" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
q "SELECT pg_terminate_backend(writer_pid) FROM utilix.access_log_status WHERE writer_pid IS NOT NULL" >/dev/null
sleep 1
got=""
for _ in $(seq 1 40); do     # the writer loads spill files every 5 seconds
    q "SELECT utilix.access_log_flush(2000)" >/dev/null
    got=$(q "SELECT count(*) FROM utilix.access_log WHERE detail LIKE 'bi spill %'")
    [ "$got" == 100 ] && break
    sleep 0.5
done
is "$got" "100" "access_log_spill() called on the primary loses no record (spilled: $spilled; the call: $(printf '%s' "$out" | grep -oE 'ERROR: +[0-9A-Z]{5}.*|returned [0-9]+ bytes' | head -1); lost: $(q "SELECT lost FROM utilix.access_log_status"))"
is "$(q "SELECT utilix._log_event('admin', NULL, 'ok', 'bi the end')")|$(q "SELECT utilix.access_log_flush(10000)")|$(q "SELECT count(*) FROM utilix.access_log WHERE detail = 'bi the end'")" \
    "t|t|1" "the access log goes on: a new event is written"
is "$(psql -X -q -A -t -d "$DB" -c 'SELECT 1' 2>&1)" "1" "SELECT 1 works at the end"

done_testing
