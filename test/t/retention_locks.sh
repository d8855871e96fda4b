#!/usr/bin/env bash
# Issue 17, class 6: one tenant's locks must not stop retention or offboarding
# for the others.  Sessions interleave here, so this cannot be one pgTAP
# transaction (test/pgtap/52_retention_attacks.sql has what can).  The
# retention runs are utilix._worker_tick(), the worker's own work, each in a
# transaction of its own as the worker runs it.
#  - the exploit: tenant alpha holds a row lock on one of its own expired
#    rows in an open transaction, of each kind (FOR UPDATE, FOR NO KEY
#    UPDATE, FOR SHARE, FOR KEY SHARE, an UPDATE, a DELETE): every other
#    expired row goes, the tenants beta and gamma's included, at once; the
#    held row stays, counted (rows_skipped, outcome 'partial'); once alpha
#    commits, the next run removes it ('ok');
#  - siblings: an open transaction that inserted expired rows (not counted,
#    removed once committed); an advisory lock (no effect); LOCK TABLE by the
#    application role (refused) and by the table owner (the step gives way at
#    once and keeps its place; other tables' retention goes on); a reader's
#    open transaction on a time-partitioned table (the expired partition's
#    rows go by batches, the partition itself at a later run); a locked
#    referencing row reached by ON DELETE CASCADE (only its parent waits);
#  - offboarding: terminate_tenant waits for the tenant's open transaction
#    that inserted a row (so no certificate can miss a row still to
#    commit); a terminated tenant's open transaction that holds one of its
#    rows delays only its own purge (recorded, no certificate, the other due
#    tenants purged; purged once it commits, every row certified); a tenant
#    with its own list partition is purged while another tenant reads the
#    table (rows deleted, the partition left empty); the worker's tick is
#    never stuck;
#  - the access log: an auditor's open transaction over the log no longer
#    holds the drop of an old day (and the writer) for long.
# Everything it creates (a database, four roles) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB=utilix_rl
APP=utilix_rl_app
ISS=utilix_rl_issuer
OPS=utilix_rl_op
OWNER=utilix_rl_owner
hold_dir=""
declare -A FD=()

cleanup() {
    local n
    for n in "${!FD[@]}"; do eval "exec ${FD[$n]}>&-" 2>/dev/null; done
    wait 2>/dev/null
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    for r in $APP $ISS $OPS $OWNER; do psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1; done
    [ -n "$hold_dir" ] && rm -rf "$hold_dir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "SET statement_timeout = '30s'" -c "$1" 2>&1
}
qas() {     # qas ROLE SQL
    psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$1" -d "$DB" -c "SET statement_timeout = '30s'" -c "$2" 2>&1
}
must() {    # must SQL WHAT: as the superuser; bails out with the error if it fails
    local out
    out=$(q "$1") || bail "$2 failed: $out"
}
now_ms() { date +%s%3N; }
tick() {    # tick: one run of the worker's work, in a transaction of its own; sets TICK_MS
    local t0 out
    t0=$(now_ms)
    out=$(q "SELECT utilix._worker_tick()")
    TICK_MS=$(( $(now_ms) - t0 ))
    [ -n "$out" ] && diag "tick said: $out"
    return 0
}

# --- sessions that hold something while the test goes on: psql reading a fifo
SESSION_TAG=rl
. "$here/sessions.sh"

# ------------------------------------------------------------------ set-up
cleanup
hold_dir=$(mktemp -d /tmp/utilix-rl.XXXXXX)
chmod 755 "$hold_dir"
psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null || bail "createdb failed"
q "CREATE EXTENSION utilix" >/dev/null || bail "CREATE EXTENSION failed"
q "CREATE ROLE $APP LOGIN; CREATE ROLE $ISS IN ROLE utilix_issuer; CREATE ROLE $OPS LOGIN IN ROLE utilix_operator;
   CREATE ROLE $OWNER LOGIN; GRANT CREATE ON SCHEMA public TO $OWNER" >/dev/null || bail "roles failed"
read -r ta tb tc td te tp < <(q "SELECT utilix.create_tenant('rl alpha'), utilix.create_tenant('rl beta'), utilix.create_tenant('rl gamma'),
                                       utilix.create_tenant('rl delta'), utilix.create_tenant('rl epsilon'), utilix.create_tenant('rl pi')" | tr '|' ' ')
[ -n "${tp:-}" ] || bail "no tenants"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OWNER" -d "$DB" 2>&1 <<SQL
CREATE TABLE rl_ev (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, v text, PRIMARY KEY (tenant_id, id));
CREATE TABLE rl_other (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE rl_par (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE rl_chi (tenant_id bigint NOT NULL, id int NOT NULL, par_id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE rl_tp (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE rl_tp_new PARTITION OF rl_tp FOR VALUES FROM ('2001-01-01') TO ('2100-01-01');
CREATE TABLE rl_lp (tenant_id bigint NOT NULL, id int NOT NULL, v text) PARTITION BY LIST (tenant_id);
CREATE TABLE rl_lp_pi PARTITION OF rl_lp FOR VALUES IN ($tp);
CREATE TABLE rl_lp_rest PARTITION OF rl_lp DEFAULT;
SQL
)
is "$out" "" "the owner creates the tables"
q "SELECT utilix.protect('rl_ev'), utilix.protect('rl_other'), utilix.protect('rl_par'), utilix.protect('rl_chi'),
          utilix.protect('rl_tp'), utilix.protect('rl_lp')" >/dev/null || bail "protect failed"
# (a superuser adds the key: the owner's check of existing rows would need a context)
is "$(q "ALTER TABLE rl_chi ADD FOREIGN KEY (tenant_id, par_id) REFERENCES rl_par (tenant_id, id) ON DELETE CASCADE")" "" \
   "rl_chi references rl_par, ON DELETE CASCADE"
must "GRANT SELECT, INSERT, UPDATE, DELETE ON rl_ev, rl_other, rl_par, rl_chi, rl_tp, rl_lp TO $APP" "set-up"
for t in rl_ev rl_other rl_par rl_tp; do
    q "SELECT utilix.set_retention('$t', '30 days', 'ts')" >/dev/null || bail "set_retention $t failed"
done
tok() {     # tok TENANT [RIGHTS]: a context token
    q "SET ROLE $ISS; SELECT utilix.issue_context($1, 'rl-user', '1 hour', '${2:-{read,write\}}')" | tail -1
}
tok_a=$(tok "$ta"); tok_d=$(tok "$td"); tok_b=$(tok "$tb"); tok_b_aud=$(tok "$tb" '{read,audit}')
[ -n "$tok_b_aud" ] || bail "no tokens"
expired() {     # expired TABLE TENANT: expired rows of the tenant in the table
    q "SELECT count(*) FROM $1 WHERE tenant_id = $2 AND ts < now() - interval '30 days'"
}
put_expired() { # put_expired TENANT FROM TO: expired rows with those ids into rl_ev
    must "INSERT INTO rl_ev SELECT $1, g, now() - interval '90 days', 'old' FROM generate_series($2, $3) g ON CONFLICT DO NOTHING" "put_expired"
}
last_run() {    # last_run TABLE: outcome|rows_removed|rows_skipped of its newest retention run
    q "SELECT outcome || '|' || rows_removed || '|' || rows_skipped FROM utilix.purge_run
        WHERE kind = 'retention' AND table_name = 'public.$1' ORDER BY id DESC LIMIT 1"
}
for t in $ta $tb $tc; do put_expired "$t" 1 200; done
must "INSERT INTO rl_ev SELECT t, 1000 + g, now(), 'fresh' FROM unnest(ARRAY[$ta, $tb, $tc]) t, generate_series(1, 50) g" "set-up"
is "$(expired rl_ev "$ta")|$(expired rl_ev "$tb")|$(expired rl_ev "$tc")" "200|200|200" "each of alpha, beta, gamma has 200 expired rows in rl_ev"

# ------------------------------------------------------------------ the exploit: a row lock of alpha's
hold_open a "$APP"
hold_send a "SELECT utilix.set_context('$tok_a', false)"
kinds=("SELECT 1 FROM rl_ev WHERE id = 7 FOR UPDATE" "SELECT 1 FROM rl_ev WHERE id = 7 FOR NO KEY UPDATE"
       "SELECT 1 FROM rl_ev WHERE id = 7 FOR SHARE" "SELECT 1 FROM rl_ev WHERE id = 7 FOR KEY SHARE"
       "UPDATE rl_ev SET v = 'mine' WHERE id = 7" "DELETE FROM rl_ev WHERE id = 7")
names=("FOR UPDATE" "FOR NO KEY UPDATE" "FOR SHARE" "FOR KEY SHARE" "an UPDATE" "a DELETE")
first=1
for k in "${!kinds[@]}"; do
    kind=${kinds[$k]}
    what=${names[$k]}
    [ $first -eq 1 ] || { put_expired "$ta" 1 10; put_expired "$tb" 1 20; put_expired "$tc" 1 20; }
    hold_send a "BEGIN" && hold_send a "$kind" || bail "alpha's session failed"
    tick
    if [ $first -eq 1 ]; then
        is "$(expired rl_ev "$tb")|$(expired rl_ev "$tc")" "0|0" \
           "alpha holds ($what) one expired row: a worker run removes every expired row of beta and gamma all the same"
        is "$(expired rl_ev "$ta")|$(q "SELECT count(*) FROM rl_ev WHERE tenant_id = $ta AND id = 7")" "1|1" \
           "and every expired row of alpha but the one it holds"
        is "$(last_run rl_ev)" "partial|599|1" \
           "the run is 'partial': 599 rows removed, 1 held row counted in rows_skipped (not 'ok')"
        like "$(q "SELECT error FROM utilix.purge_run WHERE kind = 'retention' AND table_name = 'public.rl_ev' ORDER BY id DESC LIMIT 1")" \
             '^1 expired rows were held by other transactions' "the run says why"
        [ "$TICK_MS" -lt 5000 ] && ok "the run did not wait for alpha's lock (${TICK_MS} ms)" || not_ok "the run did not wait for alpha's lock" "${TICK_MS} ms"
        is "$(q "SELECT count(*) FROM utilix.security_events WHERE kind = 'purge ok' AND detail LIKE '%retention of public.rl_ev: 599 rows removed%1 expired rows held by other transactions left%'")" "1" \
           "the purge record in the access log says so too"
        # a second run while alpha still holds the row: beta's newly expired rows go
        put_expired "$tb" 300 320
        tick
        is "$(expired rl_ev "$tb")|$(expired rl_ev "$ta")|$(last_run rl_ev)" "0|1|partial|21|1" \
           "a second run while alpha still holds it: beta's 21 new expired rows go, alpha's held row stays"
    else
        is "$(expired rl_ev "$tb")|$(expired rl_ev "$tc")|$(expired rl_ev "$ta")|$(last_run rl_ev)" "0|0|1|partial|49|1" \
           "alpha holds ($what): beta's and gamma's expired rows go, only alpha's held row stays (partial, 1 skipped)"
    fi
    hold_send a "COMMIT"
    tick
    if [ "$what" == "a DELETE" ]; then
        is "$(expired rl_ev "$ta")" "0" "once alpha commits its DELETE, the row is gone (alpha removed it itself)"
    else
        is "$(expired rl_ev "$ta")|$(last_run rl_ev)" "0|ok|1|0" "once alpha commits ($what), the next run removes the row: 'ok'"
    fi
    first=0
done

# ------------------------------------------------------------------ siblings
# an open transaction that inserted expired rows
put_expired "$tb" 1 20
hold_send a "BEGIN" && hold_send a "INSERT INTO rl_ev SELECT $ta, 5000 + g, now() - interval '90 days', 'uncommitted' FROM generate_series(1, 5) g"
tick
is "$(expired rl_ev "$tb")|$(last_run rl_ev)" "0|ok|20|0" \
   "alpha's uncommitted insert of expired rows: beta's rows go, the run is 'ok' (rows not yet committed are nobody's to count)"
hold_send a "COMMIT"
tick
is "$(expired rl_ev "$ta")|$(last_run rl_ev)" "0|ok|5|0" "once committed, the next run removes them"

# an advisory lock
put_expired "$tb" 1 20
hold_send a "SELECT pg_advisory_lock(42), pg_advisory_lock(hashtext('rl_ev'))"
tick
is "$(expired rl_ev "$tb")|$(last_run rl_ev)" "0|ok|20|0" "alpha's advisory locks change nothing"
hold_send a "SELECT pg_advisory_unlock_all()"

# LOCK TABLE: the application role is refused, with or without a context
hold_send a "BEGIN"
hold_send a "LOCK TABLE rl_ev IN ACCESS EXCLUSIVE MODE"
like "$(cat "$hold_dir/a.out")" 'LOCK TABLE \.\.\. IN ACCESS EXCLUSIVE MODE on protected table "rl_ev" is not allowed' \
     "LOCK TABLE ... ACCESS EXCLUSIVE by alpha's session is refused"
hold_send a "ROLLBACK"
out=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "BEGIN" -c "LOCK TABLE rl_ev IN SHARE MODE" -c "ROLLBACK" 2>&1)
like "$out" "ERROR:  LOCK TABLE \.\.\. IN SHARE MODE on protected table \"rl_ev\" is not allowed" \
     "LOCK TABLE ... SHARE without any context is refused too"

# LOCK TABLE by the owner: every tenant alike; the step gives way, other tables go on
put_expired "$tb" 1 20
must "INSERT INTO rl_other SELECT $tb, g, now() - interval '90 days' FROM generate_series(1, 30) g" "set-up"
hold_open o "$OWNER"
hold_send o "BEGIN" && hold_send o "LOCK TABLE rl_ev IN ACCESS EXCLUSIVE MODE"
is "$(q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'rl_o' AND l.relation = 'rl_ev'::regclass AND l.mode = 'AccessExclusiveLock' AND l.granted")" "1" \
   "the table owner may hold ACCESS EXCLUSIVE on its table"
tick
[ "$TICK_MS" -lt 5000 ] && ok "a run while the owner holds the table gives way at once (${TICK_MS} ms)" || not_ok "a run gives way at once" "${TICK_MS} ms"
is "$(q "SELECT outcome || '|' || error FROM utilix.purge_run WHERE table_name = 'public.rl_ev' ORDER BY id DESC LIMIT 1")" \
   "skipped|lock timeout: a table lock on public.rl_ev held the run off; retried at the next run" \
   "the run is on record as 'skipped', saying that a table lock held it off"
is "$(expired rl_other "$tb")|$(last_run rl_other)" "0|ok|30|0" "the same run applied retention to the other table"
hold_send o "COMMIT"
tick
is "$(expired rl_ev "$tb")|$(last_run rl_ev)" "0|ok|20|0" "once the owner commits, the run goes on and finishes"
hold_close o

# a reader's open transaction on a time-partitioned table (its old partition
# made now: an empty one would have gone at any earlier run)
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OWNER" -d "$DB" -c "CREATE TABLE rl_tp_old PARTITION OF rl_tp FOR VALUES FROM ('2000-01-01') TO ('2001-01-01')" 2>&1)
is "$out" "" "the owner adds a partition for the year 2000 to rl_tp"
must "INSERT INTO rl_tp SELECT t, g, timestamptz '2000-06-01' + make_interval(mins => g) FROM unnest(ARRAY[$tb, $tc]) t, generate_series(1, 40) g;
   INSERT INTO rl_tp SELECT t, 100 + g, now() - interval '60 days' FROM unnest(ARRAY[$tb, $tc]) t, generate_series(1, 10) g;
   INSERT INTO rl_tp SELECT t, 200 + g, now() FROM unnest(ARRAY[$tb, $tc]) t, generate_series(1, 10) g" "set-up"
hold_send a "BEGIN" && hold_send a "SELECT count(*) FROM rl_tp"
tick
first_ms=$TICK_MS
# (the DETACH that gave way used the run's time budget: the next runs go on)
for _ in 1 2 3 4; do
    [ "$(q "SELECT count(*) FROM utilix.purge_run WHERE table_name = 'public.rl_tp' AND outcome = 'running'")" == 0 ] && break
    tick
done
is "$(q "SELECT count(*) FROM rl_tp WHERE ts < now() - interval '30 days'")|$(q "SELECT to_regclass('rl_tp_old') IS NOT NULL")" "0|t" \
   "alpha reads rl_tp in an open transaction: every expired row goes all the same (the old partition's by batches, at the next runs; the partition stays)"
is "$(q "SELECT rows_removed, partitions_dropped, outcome FROM utilix.purge_run WHERE table_name = 'public.rl_tp' ORDER BY id DESC LIMIT 1")" "100|0|ok" \
   "the run removed the 100 expired rows and dropped no partition"
[ "$first_ms" -lt 5000 ] && ok "and did not wait for the reader (${first_ms} ms)" || not_ok "and did not wait for the reader" "${first_ms} ms"
hold_send a "COMMIT"
tick
is "$(q "SELECT to_regclass('rl_tp_old') IS NULL")|$(q "SELECT partitions_dropped FROM utilix.purge_run WHERE table_name = 'public.rl_tp' ORDER BY id DESC LIMIT 1")" "t|1" \
   "once the reader is gone, a later run drops the emptied partition"
is "$(q "SELECT count(*) FROM rl_tp")" "20" "the fresh rows stay"

# a locked referencing row reached by ON DELETE CASCADE
must "INSERT INTO rl_par SELECT t, g, now() - interval '90 days' FROM unnest(ARRAY[$ta, $tb]) t, generate_series(1, 40) g;
   INSERT INTO rl_chi SELECT t, g, g FROM unnest(ARRAY[$ta, $tb]) t, generate_series(1, 40) g" "set-up"
hold_send a "BEGIN" && hold_send a "SELECT 1 FROM rl_chi WHERE par_id = 5 FOR UPDATE"
tick
is "$(expired rl_par "$tb")|$(expired rl_par "$ta")|$(q "SELECT count(*) FROM rl_chi")" "0|1|1" \
   "alpha locks a child row: its cascade would wait, so only that parent stays; every other parent goes with its children"
is "$(last_run rl_par)" "partial|79|1" "the run is 'partial', 1 row skipped"
[ "$TICK_MS" -lt 10000 ] && ok "the run took ${TICK_MS} ms (waits of utilix.purge_lock_timeout to find the row)" || not_ok "the run found the row in bounded time" "${TICK_MS} ms"
hold_send a "COMMIT"
tick
is "$(expired rl_par "$ta")|$(q "SELECT count(*) FROM rl_chi")|$(last_run rl_par)" "0|0|ok|1|0" "once alpha commits, the next run removes it"
hold_close a

# ------------------------------------------------------------------ offboarding
must "INSERT INTO rl_ev SELECT t, g, now(), 'live' FROM unnest(ARRAY[$td, $te]) t, generate_series(1, 10) g;
   INSERT INTO rl_lp SELECT t, g, 'v' FROM unnest(ARRAY[$tp, $tb]) t, generate_series(1, 10) g" "set-up"
# a transaction of delta's that inserted a row and is still open: terminate_tenant
# waits for it (the tenant row is held), so no purge can ever certify while
# an insert of the tenant may still commit
hold_open d "$APP"
hold_send d "SELECT utilix.set_context('$tok_d', false)"
hold_send d "BEGIN" && hold_send d "INSERT INTO rl_ev VALUES ($td, 99, now(), 'late')"
like "$(qas "$OPS" "SET lock_timeout = '300ms'; SELECT utilix.terminate_tenant($td, '1 second')")" 'canceling statement due to lock timeout' \
     "terminate_tenant waits for delta's open transaction that inserted a row"
hold_send d "COMMIT"
# then delta's session holds one of its rows (an UPDATE not committed) through its termination
hold_send d "BEGIN" && hold_send d "UPDATE rl_ev SET v = 'mine' WHERE id = 1"
is "$(qas "$OPS" "SELECT utilix.terminate_tenant($td, '1 second') IS NOT NULL")" "t" \
   "terminate_tenant does not wait for a transaction that only holds the tenant's rows"
must "SET ROLE $OPS; SELECT utilix.terminate_tenant($te, '1 second'), utilix.terminate_tenant($tp, '1 second')" "terminate"
sleep 1.5
# beta reads the list-partitioned table in an open transaction
hold_open b "$APP"
hold_send b "SELECT utilix.set_context('$tok_b', false)"
hold_send b "BEGIN" && hold_send b "SELECT count(*) FROM rl_lp"
t0=$(now_ms)
got=$(qas "$OPS" "SELECT utilix.purge_due_tenants()")
ms=$(( $(now_ms) - t0 ))
is "$got" "2" "purge_due_tenants purges epsilon and pi, while delta's open transaction holds one of delta's rows"
[ "$ms" -lt 5000 ] && ok "it did not wait for delta's transaction (${ms} ms)" || not_ok "it did not wait for delta's transaction" "${ms} ms"
is "$(q "SELECT status FROM utilix.tenant WHERE id = $td")|$(q "SELECT count(*) FROM utilix.deletion_certificate WHERE tenant_id = $td")|$(q "SELECT count(*) FROM rl_ev WHERE tenant_id = $td")" "terminated|0|11" \
   "delta stays terminated with its 11 rows, and no certificate claims its purge"
like "$(q "SELECT outcome || ': ' || error FROM utilix.purge_run WHERE kind = 'offboarding' AND tenant_id = $td ORDER BY id DESC LIMIT 1")" \
     '^error: lock timeout: a transaction holds the tenant' "delta's purge is on record as an error, with why"
is "$(q "SELECT status FROM utilix.tenant WHERE id = $tp")|$(q "SELECT count(*) FROM rl_lp WHERE tenant_id = $tp")|$(q "SELECT to_regclass('rl_lp_pi') IS NOT NULL")" "purged|0|t" \
   "pi is purged while beta reads the table: its rows are deleted, its partition (which a DETACH would wait for) stays, empty"
is "$(q "SELECT partitions_dropped, rows_removed FROM utilix.purge_run WHERE kind = 'offboarding' AND tenant_id = $tp")" "0|10" "pi's run: 10 rows, no partition dropped"
is "$(q "SELECT (tables -> 'public.rl_lp' ->> 'before') || '/' || (tables -> 'public.rl_lp' ->> 'after') FROM utilix.deletion_certificate WHERE tenant_id = $tp")" "10/0" \
   "pi's certificate: 10 rows before, 0 after in rl_lp"
is "$(q "SELECT count(*) FROM rl_lp WHERE tenant_id = $tb")" "10" "beta's rows stay"
hold_send b "SELECT count(*) FROM rl_lp" && hold_send b "COMMIT"
unlike "$(cat "$hold_dir/b.out")" 'ERROR' "beta's session saw no error"
hold_close b
# the worker's tick is not stuck on delta either
put_expired "$tb" 1 20
tick
[ "$TICK_MS" -lt 5000 ] && ok "a worker run while delta is held ends at once (${TICK_MS} ms)" || not_ok "a worker run while delta is held ends at once" "${TICK_MS} ms"
is "$(expired rl_ev "$tb")|$(q "SELECT count(*) FROM utilix.purge_run WHERE kind = 'offboarding' AND tenant_id = $td AND outcome = 'error'")" "0|2" \
   "it applied retention, and recorded delta's purge as an error again"
hold_send d "COMMIT"
hold_close d
is "$(qas "$OPS" "SELECT utilix.purge_due_tenants()")" "1" "once delta's transaction commits, delta is purged"
is "$(q "SELECT (tables -> 'public.rl_ev' ->> 'before') || '/' || (tables -> 'public.rl_ev' ->> 'after') FROM utilix.deletion_certificate WHERE tenant_id = $td")" "11/0" \
   "its certificate counts the row its earlier transaction wrote: 11 before, 0 after"
is "$(q "SELECT count(*) FROM rl_ev WHERE tenant_id = $td")|$(q "SELECT bool_and(ok) FROM utilix.verify_certificates()")" "0|t" "none is left; the certificates verify"

# ------------------------------------------------------------------ the access log
must "SELECT utilix._access_log_partitions(now() - interval '500 days', now() - interval '500 days')" "set-up"
old_day=$(q "SELECT 'access_log_' || to_char((now() - interval '500 days') AT TIME ZONE 'UTC', 'YYYYMMDD')")
is "$(q "SELECT to_regclass('utilix.$old_day') IS NOT NULL")" "t" "a day of the log older than its retention exists ($old_day)"
hold_open au "$APP"
hold_send au "SELECT utilix.set_context('$tok_b_aud', false)"
hold_send au "BEGIN" && hold_send au "SELECT count(*) FROM utilix.access_log"
t0=$(now_ms)
got=$(qas "$OPS" "SELECT utilix.run_access_log_maintenance()")
ms=$(( $(now_ms) - t0 ))
is "$got" "0" "while beta's auditor reads the log in an open transaction, the day is not dropped"
[ "$ms" -lt 5000 ] && ok "and the maintenance gave way at once (${ms} ms), instead of holding the writer and every reader" || not_ok "the maintenance gave way at once" "${ms} ms"
must "SELECT utilix.access_log_flush(10000)" "set-up"
is "$(q "SELECT count(*) FROM utilix.access_log WHERE kind = 'purge' AND outcome = 'error' AND detail = 'access log day $old_day not dropped: another transaction reads the log; retried at the next maintenance'")" "1" \
   "the day it could not drop is on record"
hold_send au "COMMIT"
hold_close au
is "$(qas "$OPS" "SELECT utilix.run_access_log_maintenance()")|$(q "SELECT to_regclass('utilix.$old_day') IS NULL")" "1|t" \
   "once the auditor is done, the next maintenance drops it"
is "$(q "SELECT bool_and(ok) FROM utilix.verify_access_log()")" "t" "every chain of the log verifies"

done_testing
