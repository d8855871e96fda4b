#!/usr/bin/env bash
# Issue 17, class 5: an operator must not read an active tenant's plaintext,
# and no export of a tenant's plaintext may go unrecorded in the tenant's
# own history.  Transactions commit and roll back here, so this cannot be
# one pgTAP transaction (test/pgtap/52_retention_attacks.sql has the rest).
#  - the exploit: terminate_tenant, export_tenant, ROLLBACK in one
#    transaction: the export is refused (55000), the tenant stays active, and
#    the refused attempt is in its chain of the access log all the same,
#    where its own auditor reads it; export_manifest in a savepoint likewise;
#  - after a committed termination, a transaction that cancels and
#    terminates again still cannot export (the termination must be older
#    than the transaction's own writes);
#  - an export after a committed termination: the rows (encrypted columns
#    decrypted, nothing of another tenant, no armour), the manifest's hashes;
#    its record (kind export) is written before the rows reach the caller
#    (seen from another session while the exporting transaction is still
#    open), and stays after a ROLLBACK, a ROLLBACK TO SAVEPOINT, or a cursor
#    fetched once and rolled back; only committed exports are lifecycle
#    events; security_events shows them;
#  - the export holds the tenant row: a cancellation waits for it;
#  - once the tenant is active again, its auditor reads every export and
#    refusal in its own history, another tenant's auditor none of them;
#  - decrypt_column: a record in each affected tenant's chain when it
#    commits, none when it rolls back.
# Everything it creates (a database, four roles) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB=utilix_et
APP=utilix_et_app
ISS=utilix_et_issuer
OPS=utilix_et_op
OPS2=utilix_et_op2
hold_dir=""
declare -A FD=()

cleanup() {
    local n
    for n in "${!FD[@]}"; do eval "exec ${FD[$n]}>&-" 2>/dev/null; done
    wait 2>/dev/null
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    for r in $APP $ISS $OPS $OPS2; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
    [ -n "$hold_dir" ] && rm -rf "$hold_dir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
op() {      # op SQL...: as the operator, one session, every statement run (errors shown, not stopping)
    local args=() s
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -U "$OPS" -d "$DB" "${args[@]}" 2>&1
}
flush() { q "SELECT utilix.access_log_flush(10000)" >/dev/null; }
records() { # records TENANT KIND OUTCOME: how many the tenant's chain holds
    flush
    q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $1 AND kind = '$2' AND outcome = '$3'"
}

SESSION_TAG=et
. "$here/sessions.sh"

# ------------------------------------------------------------------ set-up
cleanup
hold_dir=$(mktemp -d /tmp/utilix-et.XXXXXX)
chmod 755 "$hold_dir"
psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null || bail "createdb failed"
q "CREATE EXTENSION utilix" >/dev/null || bail "CREATE EXTENSION failed"
q "CREATE ROLE $APP LOGIN; CREATE ROLE $ISS IN ROLE utilix_issuer;
   CREATE ROLE $OPS LOGIN IN ROLE utilix_operator; CREATE ROLE $OPS2 LOGIN IN ROLE utilix_operator" >/dev/null || bail "roles failed"
read -r tk tu < <(q "SELECT utilix.create_tenant('et kappa'), utilix.create_tenant('et upsilon')" | tr '|' ' ')
[ -n "${tu:-}" ] || bail "no tenants"
q "CREATE TABLE et_docs (tenant_id bigint NOT NULL, id int NOT NULL, name text, body jsonb, qty int, PRIMARY KEY (tenant_id, id));
   SELECT utilix.protect('et_docs');
   CREATE TABLE et_items (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
   SELECT utilix.protect('et_items');
   INSERT INTO et_docs VALUES ($tk, 1, 'Kim Kappa', '{\"ssn\": \"123-45-6789\", \"tags\": [1, 2]}', 10),
                              ($tk, 2, NULL, '{\"k\": \"v\"}', 20),
                              ($tk, 3, 'Ken O''Kappa', NULL, NULL),
                              ($tu, 1, 'Uma Upsilon', '{\"ssn\": \"987-65-4321\"}', 1);
   INSERT INTO et_items SELECT t, g, timestamptz '2024-01-01 00:00+00' + make_interval(days => g)
     FROM (VALUES ($tk, 5), ($tu, 4)) v(t, n), generate_series(1, n) g;
   SELECT utilix.encrypt_column('et_docs', 'name');
   SELECT utilix.encrypt_column('et_docs', 'body');
   GRANT SELECT, INSERT, UPDATE, DELETE ON et_docs, et_items TO $APP" >/dev/null || bail "tables failed"
# one more key version for kappa: Ken's name stays sealed under the older one
q "SELECT utilix.rotate_tenant_key($tk)" >/dev/null
q "UPDATE et_docs SET name = 'Kim Kappa' WHERE tenant_id = $tk AND id = 1" >/dev/null
tok() { q "SET ROLE $ISS; SELECT utilix.issue_context($1, 'et-$2', '1 hour', '$3')" | tail -1; }
aud_k=$(tok "$tk" auditor '{read,audit}')
aud_u=$(tok "$tu" auditor '{read,audit}')
[ -n "$aud_u" ] || bail "no tokens"
status() { q "SELECT status FROM utilix.tenant WHERE id = $1"; }

# ------------------------------------------------------------------ the exploit: terminate, export, ROLLBACK
out=$(op "BEGIN" "SELECT utilix.terminate_tenant($tk) IS NOT NULL" "SELECT table_name, row_data FROM utilix.export_tenant($tk)" "ROLLBACK")
like "$out" "ERROR:  tenant $tk was terminated in this transaction" \
     "terminate_tenant then export_tenant in one transaction: the export is refused"
unlike "$out" 'Kim Kappa|123-45-6789|Ken O' "no plaintext reaches the operator"
is "$(status "$tk")" "active" "after the ROLLBACK the tenant is active, as it never stopped being for anyone else"
is "$(records "$tk" export denied)" "1" "the refused export is in the tenant's chain of the access log all the same"
is "$(q "SELECT detail FROM utilix.access_log WHERE tenant_id = $tk AND kind = 'export' ORDER BY id DESC LIMIT 1")" \
   "export refused: the termination is not committed" "saying why"
is "$(q "SELECT session_role FROM utilix.access_log WHERE tenant_id = $tk AND kind = 'export' ORDER BY id DESC LIMIT 1")" "$OPS" \
   "and naming the operator's role"
out=$(op "BEGIN" "SELECT utilix.terminate_tenant($tk) IS NOT NULL" "SAVEPOINT s" "SELECT * FROM utilix.export_manifest($tk)" "ROLLBACK TO SAVEPOINT s" "ROLLBACK")
like "$out" "ERROR:  tenant $tk was terminated in this transaction" "export_manifest in a savepoint: refused too"
is "$(records "$tk" export denied)|$(status "$tk")" "2|active" "recorded; the tenant is still active"
is "$(q "SELECT count(*) FROM utilix.lifecycle_event WHERE tenant_id = $tk")" "0" "no lifecycle event stays behind (terminated, exported)"
# the tenant's own auditor sees the attempts
got=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.set_context('$aud_k', false)" \
      -c "SELECT count(*) FROM utilix.access_history WHERE kind = 'export' AND outcome = 'denied'" 2>&1 | tail -1)
is "$got" "2" "kappa's own auditor reads both refused exports in its access history"
is "$(q "SELECT ok FROM utilix.verify_access_log($tk)")" "t" "kappa's chain verifies"

# ------------------------------------------------------------------ a committed termination
is "$(op "SELECT utilix.terminate_tenant($tk) IS NOT NULL")" "t" "the operator terminates kappa, and commits"
# a transaction that cancels and terminates again has made the termination its own
out=$(op "BEGIN" "SELECT utilix.cancel_termination($tk)" "SELECT utilix.terminate_tenant($tk) IS NOT NULL" "SELECT count(*) FROM utilix.export_tenant($tk)" "ROLLBACK")
like "$out" "ERROR:  tenant $tk was terminated in this transaction" \
     "cancelled and terminated again in the exporting transaction: refused (the tenant was active in between)"
is "$(status "$tk")" "terminated" "kappa is terminated"

# the export: its record is written before the rows reach the caller
hold_open x "$OPS"
hold_send x "BEGIN"
hold_send x "SELECT count(*) FROM utilix.export_tenant($tk)"
like "$(cat "$hold_dir/x.out")" '^8$' "an export after the committed termination: 8 rows (3 documents, 5 items)"
is "$(q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $tk AND kind = 'export' AND outcome = 'ok'")" "1" \
   "while the exporting transaction is still open, its record is already written (no flush needed)"
is "$(q "SELECT detail FROM utilix.access_log WHERE tenant_id = $tk AND kind = 'export' AND outcome = 'ok'")" \
   "tenant data exported, encrypted columns decrypted: 8 rows of 2 tables" "it says what was exported"
# the export holds the tenant row: a cancellation waits
got=$(psql -X -q -A -t -U "$OPS2" -d "$DB" -c "SET lock_timeout = '300ms'" -c "SELECT utilix.cancel_termination($tk)" 2>&1)
like "$got" 'canceling statement due to lock timeout' "a cancellation by another operator waits for the export's transaction"
hold_send x "ROLLBACK"
hold_close x
is "$(records "$tk" export ok)|$(q "SELECT count(*) FROM utilix.lifecycle_event WHERE tenant_id = $tk AND event = 'exported'")" "1|0" \
   "after the ROLLBACK the export's record stays; the lifecycle event (work done) does not"

op "BEGIN" "SAVEPOINT a" "SELECT count(*) FROM utilix.export_tenant($tk)" "ROLLBACK TO SAVEPOINT a" "COMMIT" >/dev/null
is "$(records "$tk" export ok)" "2" "an export rolled back to a savepoint is recorded"
op "BEGIN" "DECLARE c CURSOR FOR SELECT row_data FROM utilix.export_tenant($tk)" "FETCH 1 FROM c" "ROLLBACK" >/dev/null
is "$(records "$tk" export ok)" "3" "so is an export read through a cursor, one row fetched, rolled back"
op "BEGIN" "DECLARE c CURSOR FOR SELECT row_data FROM utilix.export_tenant($tk)" "ROLLBACK" >/dev/null
is "$(records "$tk" export ok)" "3" "a cursor never fetched decrypted nothing, and records nothing"

# the contents (the rows themselves, checked in the operator's own session)
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OPS" -d "$DB" 2>&1 <<SQL
CREATE TEMP TABLE ex AS SELECT * FROM utilix.export_tenant($tk);
CREATE TEMP TABLE mf AS SELECT * FROM utilix.export_manifest($tk);
SELECT string_agg(table_name || '=' || n, ',' ORDER BY table_name) FROM (SELECT table_name, count(*) n FROM ex GROUP BY 1) s;
SELECT count(*) FROM ex WHERE (row_data ->> 'tenant_id')::bigint <> $tk;
SELECT row_data = jsonb_build_object('tenant_id', $tk, 'id', 1, 'name', 'Kim Kappa', 'body', '{"ssn": "123-45-6789", "tags": [1, 2]}'::jsonb, 'qty', 10)
  FROM ex WHERE table_name = 'public.et_docs' AND row_data ->> 'id' = '1';
SELECT row_data = jsonb_build_object('tenant_id', $tk, 'id', 2, 'name', NULL, 'body', '{"k": "v"}'::jsonb, 'qty', 20)
  FROM ex WHERE table_name = 'public.et_docs' AND row_data ->> 'id' = '2';
SELECT row_data ->> 'name' FROM ex WHERE table_name = 'public.et_docs' AND row_data ->> 'id' = '3';
SELECT count(*) FROM ex WHERE row_data::text LIKE '%utxe1:%';
SELECT bool_and(m.row_count = e.n AND m.sha256 = e.h) FROM mf m JOIN
       (SELECT table_name, count(*) n, encode(sha256(convert_to(string_agg(row_data::text || E'\n', '' ORDER BY row_data::text), 'UTF8')), 'hex') h
          FROM ex GROUP BY 1) e USING (table_name);
SQL
)
is "$out" "public.et_docs=3,public.et_items=5
0
t
t
Ken O'Kappa
0
t" "the export: every row of kappa (3 + 5), none of upsilon, encrypted text and jsonb decrypted, NULL kept, a value under the older key decrypted, no armour; the manifest's counts and hashes recompute from the export"
is "$(records "$tk" export ok)|$(q "SELECT count(*) FROM utilix.lifecycle_event WHERE tenant_id = $tk AND event = 'exported'")" "5|2" \
   "both committed (export_tenant and export_manifest, which exports): 5 records in all, 2 lifecycle events"
is "$(q "SELECT count(*) FROM utilix.security_events WHERE tenant_id = $tk AND kind = 'export ok'")|$(q "SELECT count(*) FROM utilix.security_events WHERE tenant_id = $tk AND kind = 'export denied'")" \
   "5|3" "security_events shows every export and every refusal"

# ------------------------------------------------------------------ the tenant reads its history
is "$(op "SELECT utilix.cancel_termination($tk)")" "" "the operator cancels the termination (kappa is active again)"
got=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.set_context('$aud_k', false)" \
      -c "SELECT string_agg(outcome || ':' || n, ',' ORDER BY outcome) FROM (SELECT outcome, count(*) n FROM utilix.access_history WHERE kind = 'export' GROUP BY 1) s" 2>&1 | tail -1)
is "$got" "denied:3,ok:5" "kappa's own auditor reads every export and every refusal in its history"
got=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.set_context('$aud_u', false)" \
      -c "SELECT count(*) FROM utilix.access_history WHERE kind = 'export'" 2>&1 | tail -1)
is "$got" "0" "upsilon's auditor reads none of kappa's"
is "$(q "SELECT bool_and(ok) FROM utilix.verify_access_log()")" "t" "every chain verifies"

# ------------------------------------------------------------------ decrypt_column
op "BEGIN" "SELECT utilix.decrypt_column('et_docs', 'body')" "ROLLBACK" >/dev/null
flush
is "$(q "SELECT count(*) FROM utilix.access_log WHERE kind = 'key' AND detail LIKE 'column public.et_docs.body decrypted%'")" "0" \
   "a decrypt_column rolled back records nothing"
op "SELECT utilix.decrypt_column('et_docs', 'body')" >/dev/null
flush
is "$(q "SELECT string_agg(tenant_id::text, ',' ORDER BY tenant_id) FROM utilix.access_log WHERE kind = 'key' AND detail = 'column public.et_docs.body decrypted: its values are stored in plaintext'")" \
   "$tk,$tu" "a committed decrypt_column is in the chain of each tenant with a value in the column"

done_testing
