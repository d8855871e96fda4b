#!/usr/bin/env bash
# Issue 17: a writer below a column's label recovering its values by
# guessing.  The attacker holds a context of the tenant with the write right
# and a clearance below the label of a searchable column.  In a transaction
# that it rolls back, it inserts a guess and compares it with the target by
# every route it has; then it looks at what the transaction left behind
# (statistics, which outlive a rollback).  For each route the right guess
# and a wrong one must give the same answer.  Then the restore attack across
# transactions and sessions (a value kept, the row changed by a reader,
# the value written back), a cursor that outlives its context, COPY TO,
# and what still works: the reader with clearance, pg_dump.
# Everything it creates (a database, three roles) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB=utilix_labels
APP=utilix_lbl_app
ISS=utilix_lbl_issuer

cleanup() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    for r in "$APP" "$ISS"; do
        psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
    done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql SQL: as the superuser in $DB, tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
as_app() {  # as_app TOKEN SQL...: one session of the application role, the token set for the session
    local tok=$1 args=() s
    shift
    args+=(-c "SELECT utilix.set_context('$tok', false) IS NULL")
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -U "$APP" -d "$DB" "${args[@]}" 2>&1 | sed 1d
}
script_app() {  # script_app SCRIPT: one session of the application role, a script on stdin (errors go on)
    psql -X -q -A -t -U "$APP" -d "$DB" 2>&1
}

cleanup
psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION utilix;
CREATE ROLE $APP LOGIN;
CREATE ROLE $ISS LOGIN IN ROLE utilix_issuer;
SELECT utilix.create_tenant('labels acme');
CREATE TABLE staff (tenant_id bigint NOT NULL, id int NOT NULL, name text, ssn text, salary text,
                    PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('staff');
SELECT utilix.encrypt_column('staff', 'ssn', label => 'confidential', searchable => true);
SELECT utilix.encrypt_column('staff', 'salary', label => 'confidential');
GRANT SELECT, INSERT, UPDATE, DELETE ON staff TO $APP;
CREATE SCHEMA loot AUTHORIZATION $APP;
SQL
) || bail "set-up: $out"
T=$(sql "SELECT id FROM utilix.tenant WHERE name = 'labels acme'")
HI=$(psql -X -q -A -t -U "$ISS" -d "$DB" -c "SELECT utilix.issue_context($T, 'hr', '1 hour', '{read,write}', 'confidential')")
LO=$(psql -X -q -A -t -U "$ISS" -d "$DB" -c "SELECT utilix.issue_context($T, 'clerk', '1 hour', '{read,write}', 'public')")
like "$HI$LO" '^utx1\..*utx1\.' "a reader with clearance confidential and a writer with clearance public"
COL=$(sql "SELECT column_id FROM utilix.encrypted_column WHERE column_name = 'ssn'")
IDX=utilix_bidx_$COL

out=$(as_app "$HI" "INSERT INTO staff VALUES ($T, 1, 'Ann', '123-45-6789', '90000'), ($T, 2, 'Bob', '987-65-4321', '50000')")
is "$out" "" "the reader with clearance writes two rows (the targets)"

# ------------------------------------------------------------------ one round of guessing
# guess_round VALUE: the attacker's transaction, rolled back; prints one
# line per route, "route:answer", for row 1 ('123-45-6789') as the target
guess_round() {
    script_app <<SQL
\\set ON_ERROR_STOP 0
BEGIN;
SELECT utilix.set_context('$LO') IS NULL;
INSERT INTO staff (tenant_id, id, name, ssn) VALUES ($T, 900, 'guess', '$1');
SELECT 'eqop:' || count(*) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900 AND t.ssn OPERATOR(utilix.=#) g.ssn;
SELECT 'bidx_eq:' || utilix._bidx_eq(t.ssn, g.ssn) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900;
SELECT 'header:' || (left(t.ssn::text, 60) = left(g.ssn::text, 60)) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900;
SELECT 'decrypt:' || (left(utilix.decrypt(t.ssn), 60) = left(utilix.decrypt(g.ssn), 60)) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900;
SELECT 'json:' || (substr(row_to_json(t)->>'ssn', 1, 60) = substr(row_to_json(g)->>'ssn', 1, 60)) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900;
SET search_path = public, utilix;
SELECT 'plaineq:' || count(*) FROM staff WHERE ssn = '$1';
RESET search_path;
SET enable_seqscan = off;
SELECT pg_stat_get_xact_numscans('$IDX'::regclass) AS n0, pg_stat_get_xact_tuples_returned('$IDX'::regclass) AS r0 \gset
SELECT 'keyed:' || count(*) FROM staff WHERE ssn OPERATOR(utilix.=#) (SELECT g.ssn FROM staff g WHERE g.id = 900);
SELECT 'xactstats:' || (pg_stat_get_xact_numscans('$IDX'::regclass) - :n0) || '/' || (pg_stat_get_xact_tuples_returned('$IDX'::regclass) - :r0);
RESET enable_seqscan;
SAVEPOINT h;
SELECT 'hash:' || (count(DISTINCT utilix._bidx_hash(ssn)) < count(*)) FROM staff;
ROLLBACK TO SAVEPOINT h;
ROLLBACK;
SQL
}
answers() {     # the route:answer lines of a round, the set-up lines dropped
    printf '%s\n' "$1" | grep -E '^[a-z_]+:' | sort
}
idx_stats() {   # the blind index's cumulative statistics, flushed: scans/tuples read
    sql "SELECT pg_stat_force_next_flush()" >/dev/null
    sleep 0.3
    sql "SELECT pg_stat_clear_snapshot(); SELECT idx_scan || '/' || idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = '$IDX'" | tail -1
}

s0=$(idx_stats)
right=$(guess_round '123-45-6789')
s1=$(idx_stats)
wrong=$(guess_round '111-11-1111')
s2=$(idx_stats)

like "$right" 'permission denied to compare values' "_bidx_hash of the labelled values is refused (42501) to the writer below the label"
is "$(answers "$right")" "$(answers "$wrong")" "every route answers the right guess exactly as a wrong one"
like "$(answers "$right")" 'eqop:0' "... =# finds no pair"
like "$(answers "$right")" 'bidx_eq:false' "... _bidx_eq answers false"
like "$(answers "$wrong")" 'header:true' "... the armour header of a wrong guess is the target's (blind index withheld)"
like "$(answers "$wrong")" 'decrypt:true' "... so is that of decrypt()"
like "$(answers "$wrong")" 'json:true' "... and of the row as json"
like "$(answers "$right")" 'plaineq:0' "... the decrypting = finds nothing"
like "$(answers "$right")" 'keyed:0' "... =# keyed by the stored guess finds nothing"
like "$(answers "$right")" 'xactstats:0/0' "... and did not search the blind index (transaction statistics)"
# what a round leaves in the cumulative statistics of the blind index, once
# rolled back (the decrypting = searched it with an empty probe)
delta() { awk -F/ -v a="$1" -v b="$2" 'BEGIN { split(a, x, "/"); split(b, y, "/"); print y[1] - x[1] "/" y[2] - x[2] }'; }
is "$(delta "$s0" "$s1")" "$(delta "$s1" "$s2")" "the rounds with the right and the wrong guess leave the same trace in the blind index's statistics"
like "$(delta "$s0" "$s1")" '^[0-9]+/0$' "... and no index entry read (no equal counted)"
is "$(sql "SELECT count(*) FROM staff")" "2" "the rolled-back guesses left no row"

# ------------------------------------------------------------------ an index of its own over copies
out=$(as_app "$LO" "CREATE TABLE loot.copies AS SELECT id, ssn AS v FROM staff" \
                   "INSERT INTO loot.copies SELECT 900, v FROM loot.copies WHERE id = 1" \
                   "CREATE INDEX ON loot.copies USING hash (v utilix.encrypted_text_blind_ops)")
like "$out" 'permission denied to create an index with operator class' \
    "a hash index of the attacker's over copies of the ciphertext is refused"

# ------------------------------------------------------------------ a cursor that outlives its context; COPY TO
out=$(script_app <<SQL
BEGIN;
SELECT utilix.set_context('$LO') IS NULL;
DECLARE c CURSOR FOR SELECT id, ssn FROM staff ORDER BY id;
FETCH 1 FROM c;
SELECT utilix.clear_context();
FETCH ALL FROM c;
COMMIT;
SQL
)
flags=$(printf '%s\n' "$out" | grep -oE '\|utxe1:[A-Za-z0-9_-]+' | cut -c2- | while read -r a; do
    sql "SELECT get_byte(decode(rpad(t, ((length(t) + 3) / 4) * 4, '='), 'base64'), 6)
           FROM (SELECT translate(substr('$a', 7), '-_', '+/') AS t) s"; done | sort -u | tr '\n' ' ')
is "$flags" "7 " "a cursor opened below the label, fetched after clear_context(): every value withheld (flags 7: blind index, withheld, masked)"
out=$(printf 'SELECT utilix.set_context(%s, false) IS NULL;\nCOPY (SELECT ssn FROM staff ORDER BY id) TO STDOUT;\n' "'$LO'" | script_app)
flags=$(printf '%s\n' "$out" | grep -E '^utxe1:' | while read -r a; do
    sql "SELECT get_byte(decode(rpad(t, ((length(t) + 3) / 4) * 4, '='), 'base64'), 6)
           FROM (SELECT translate(substr('$a', 7), '-_', '+/') AS t) s"; done | sort -u | tr '\n' ' ')
is "$flags" "7 " "COPY (SELECT ssn ...) TO STDOUT below the label: the withheld form"

# ------------------------------------------------------------------ the restore attack, across sessions
# session 1 (below the label) keeps the values; session 2 (the reader) gives
# Ann a raise; session 3 (below the label) writes the old values back
out=$(as_app "$LO" "CREATE TABLE loot.kept AS SELECT id, salary, ssn FROM staff WHERE id = 1")
is "$out" "" "the writer below the label keeps Ann's salary and ssn, as stored, in a table of its own"
ARM_SAL=$(as_app "$LO" "SELECT salary::text FROM staff WHERE id = 1")
ARM_SSN=$(as_app "$LO" "SELECT ssn::text FROM staff WHERE id = 1")
like "$ARM_SAL$ARM_SSN" '^utxe1:.*utxe1:' "... and their armour"
out=$(as_app "$HI" "UPDATE staff SET salary = '99000', ssn = '123-45-6789' WHERE id = 1")
is "$out" "" "another session, the reader with clearance, gives Ann a raise (and reseals her ssn)"
out=$(as_app "$LO" "UPDATE staff s SET salary = k.salary FROM loot.kept k WHERE s.id = k.id")
like "$out" 'permission denied to write ciphertext of column "salary"' "the kept salary written back: refused"
out=$(as_app "$LO" "UPDATE staff SET salary = '$ARM_SAL' WHERE id = 1")
like "$out" 'permission denied to write ciphertext' "... as armour: refused"
out=$(as_app "$LO" "UPDATE staff SET ssn = '$ARM_SSN' WHERE id = 1")
like "$out" 'was withheld' "... the withheld ssn armour: refused"
out=$(as_app "$LO" "UPDATE staff s SET salary = k.salary FROM loot.kept k WHERE s.id = 2")
like "$out" 'permission denied to write ciphertext' "... Ann's old salary moved onto Bob's row: refused"
is "$(as_app "$HI" "SELECT salary::text FROM staff ORDER BY id")" $'99000\n50000' "the reader still reads the raise, and Bob's salary"
out=$(as_app "$LO" "UPDATE staff SET name = 'Ann A.' WHERE id = 1" "UPDATE staff SET salary = '1' WHERE id = 2")
is "$out" "" "the writer below the label still updates other columns, and writes plaintext into the labelled one"

# ------------------------------------------------------------------ what still works
out=$(as_app "$HI" "SET search_path = public, utilix" "SELECT id FROM staff WHERE ssn = '123-45-6789'" \
                   "SELECT count(*) FROM staff a, staff b WHERE a.id < b.id AND a.ssn OPERATOR(utilix.=#) b.ssn")
is "$out" $'1\n0' "the reader with clearance finds Ann by her ssn, and =# pairs no distinct values"
dump=$(pg_dump -d "$DB" -t staff --data-only 2>&1)
ARM_DUMP=$(printf '%s\n' "$dump" | grep -oE 'utxe1:[A-Za-z0-9_-]+' | head -1)
is "$(sql "SELECT get_byte(decode(rpad(t, ((length(t) + 3) / 4) * 4, '='), 'base64'), 6)
            FROM (SELECT translate(substr('$ARM_DUMP', 7), '-_', '+/') AS t) s")" "5" \
   "pg_dump (a superuser) carries the values whole: the armour keeps its (masked) blind index (flags 5)"

done_testing
