#!/usr/bin/env bash
# Review 4 of issue 17's classes 5 and 6 (retention, offboarding, export),
# on a cluster of its own.  Each assertion is a property that must hold;
# the review found them broken, and they hold since its fixes.  Timings are
# reported, never asserted (test/bench measures them):
#  1. a role under row level security takes no table lock above ROW
#     EXCLUSIVE on a protected table, whatever the statement:
#     a. CREATE TRIGGER (the TRIGGER privilege, part of GRANT ALL) is refused
#        on a protected table, so neither its lock held in an open
#        transaction nor a committed trigger of a superuser's built-in that
#        fails every DELETE stops retention or offboarding of every tenant;
#     b. LOCK TABLE on a view that a second session redefines, between the
#        gate's look at the view (without a lock) and the lock itself, to read
#        a protected table: no ACCESS EXCLUSIVE on the protected table;
#  2. retention of a table that a foreign key reaches:
#     a. a batch costs about what its DELETE costs (the FK checks use the
#        child's index), not a scan of the child table per row;
#     b. a tenant's own expired rows kept by its own referencing rows delay
#        only those rows: a worker run stays within a few seconds, burns no
#        transaction id per kept row, and the other tenant's rows go;
#  3. an operator reads no tenant's row data without a durable record in the
#     tenant's chain: purge_preview or run_retention after a policy made in
#     the same transaction, then ROLLBACK, is refused or recorded; a binary
#     search on keep recovers no date of a tenant's rows without a trace;
#  and what held: rows locked by one tenant, many of them, cost the run
#  little and delay only themselves.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

rr_dir=$(mktemp -d /tmp/utilix-rr.XXXXXX)
hold_dir=$(mktemp -d /tmp/utilix-rr-hold.XXXXXX)
chmod 755 "$hold_dir"
declare -A FD=()
cleanup() {
    local n
    for n in "${!FD[@]}"; do eval "exec ${FD[$n]}>&-" 2>/dev/null; done
    wait 2>/dev/null
    UTILIX_DIR=$rr_dir
    cluster_destroy
    rm -rf "$hold_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$rr_dir" || bail "initdb failed"
cluster_start || bail "the server does not start: $(tail -5 "$UTILIX_DIR/server.log")"
DB=rr
APP=rr_app
ISS=rr_issuer
OPS=rr_op
OWNER=rr_owner
export PGOPTIONS="-c client_min_messages=warning"

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "SET statement_timeout = '120s'" -c "SET lock_timeout = '5s'" -c "$1" 2>&1
}
qas() {     # qas ROLE SQL...: one session, every statement run, errors shown
    local role=$1 args=() s
    shift
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -U "$role" -d "$DB" -c "SET statement_timeout = '120s'" "${args[@]}" 2>&1
}
must() { local out; out=$(q "$1") || bail "$2 failed: $out"; }
now_ms() { date +%s%3N; }
tick() {    # one run of the worker's work; sets TICK_MS and TICK_XIDS
    local t0 x0 out
    x0=$(q "SELECT txid_current()")
    t0=$(now_ms)
    out=$(q "SELECT utilix._worker_tick()")
    TICK_MS=$(( $(now_ms) - t0 ))
    TICK_XIDS=$(( $(q "SELECT txid_current()") - x0 - 1 ))
    [ -n "$out" ] && diag "tick said: $out"
    return 0
}
SESSION_TAG=rr
. "$here/sessions.sh"
strong_locks() {    # strong_locks TABLE: locks above ROW EXCLUSIVE that the application role holds on it
    q "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
        WHERE a.usename = '$APP' AND l.relation = '$1'::regclass AND l.granted
          AND l.mode NOT IN ('AccessShareLock', 'RowShareLock', 'RowExclusiveLock')"
}
expired() { q "SELECT count(*) FROM $1 WHERE tenant_id = $2 AND ts < now() - interval '30 days'"; }

# ------------------------------------------------------------------ set-up
psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null || bail "createdb failed"
q "CREATE EXTENSION utilix" >/dev/null || bail "CREATE EXTENSION failed"
must "CREATE ROLE $APP LOGIN; CREATE ROLE $ISS IN ROLE utilix_issuer; CREATE ROLE $OPS LOGIN IN ROLE utilix_operator;
      CREATE ROLE $OWNER LOGIN; GRANT CREATE ON SCHEMA public TO $OWNER;
      CREATE SCHEMA rr_apps AUTHORIZATION $APP" "roles"
read -r ta tb tc < <(q "SELECT utilix.create_tenant('rr alpha'), utilix.create_tenant('rr beta'), utilix.create_tenant('rr gamma')" | tr '|' ' ')
[ -n "${tc:-}" ] || bail "no tenants"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OWNER" -d "$DB" 2>&1 <<SQL
CREATE TABLE rr_ev (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE rr_par (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE rr_chi (tenant_id bigint NOT NULL, id int NOT NULL, par_id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE INDEX rr_chi_par ON rr_chi (tenant_id, par_id);
CREATE TABLE rr_patient (tenant_id bigint NOT NULL, id int NOT NULL, dob date, PRIMARY KEY (tenant_id, id));
SQL
)
is "$out" "" "the owner creates the tables"
must "SELECT utilix.protect('rr_ev'), utilix.protect('rr_par'), utilix.protect('rr_chi'), utilix.protect('rr_patient')" "protect"
must "ALTER TABLE rr_chi ADD FOREIGN KEY (tenant_id, par_id) REFERENCES rr_par (tenant_id, id)" "foreign key"
# the application role as deployments often grant it: GRANT ALL
must "GRANT ALL ON rr_ev, rr_par, rr_chi TO $APP" "grants"
must "SELECT utilix.set_retention('rr_ev', '30 days', 'ts')" "set_retention"
tok() { q "SET ROLE $ISS; SELECT utilix.issue_context($1, 'rr-user', '1 hour', '{read,write}')" | tail -1; }
tok_a=$(tok "$ta"); tok_b=$(tok "$tb")
[ -n "$tok_b" ] || bail "no tokens"
put_expired() { must "INSERT INTO rr_ev SELECT $1, g, now() - interval '90 days' FROM generate_series($2, $3) g ON CONFLICT DO NOTHING" "put_expired"; }

# ------------------------------------------------------------------ 1a. CREATE TRIGGER
put_expired "$tb" 1 100
out=$(qas "$APP" "SELECT utilix.set_context('$tok_a', false)" \
      "CREATE TRIGGER rr_block BEFORE DELETE ON rr_ev FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()")
like "$out" 'ERROR' "the application role (TRIGGER privilege, alpha's context) cannot attach a trigger to a protected table"
tick
is "$(expired rr_ev "$tb")" "0" "a worker run then removes beta's 100 expired rows"
q "DROP TRIGGER IF EXISTS rr_block ON rr_ev" >/dev/null
put_expired "$tb" 1 100
hold_open t "$APP"
hold_send t "BEGIN"
hold_send t "CREATE TRIGGER rr_hold BEFORE UPDATE ON rr_ev FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()"
is "$(strong_locks rr_ev)" "0" "an uncommitted CREATE TRIGGER of the application role holds no lock above ROW EXCLUSIVE on the protected table"
tick
is "$(expired rr_ev "$tb")" "0" "and a worker run meanwhile removes beta's expired rows"
out=$(qas "$APP" "SET lock_timeout = '1s'" "SELECT utilix.set_context('$tok_b', false)" "INSERT INTO rr_ev VALUES ($tb, 100001, now())")
unlike "$out" 'lock timeout' "and beta's own insert does not wait for it"
hold_send t "ROLLBACK"
hold_close t
q "DROP TRIGGER IF EXISTS rr_hold ON rr_ev" >/dev/null

# ------------------------------------------------------------------ 1b. LOCK TABLE on a view redefined meanwhile
out=$(qas "$APP" "CREATE TABLE rr_apps.mine (tenant_id bigint, id int, ts timestamptz)" "CREATE VIEW rr_apps.lv AS SELECT * FROM rr_apps.mine")
is "$out" "" "the application role has a view over a table of its own"
put_expired "$tb" 1 100
hold_open s2 "$APP"
hold_open s1 "$APP"
hold_send s2 "BEGIN"
hold_send s2 "CREATE OR REPLACE VIEW rr_apps.lv AS SELECT * FROM public.rr_ev"
hold_send s1 "BEGIN"
hold_send s1 "LOCK TABLE rr_apps.lv IN ACCESS EXCLUSIVE MODE" nowait
hold_send s2 "COMMIT"
sleep 0.5
is "$(strong_locks rr_ev)" "0" \
   "LOCK TABLE on the view, redefined by a second session between the gate and the lock: no lock above ROW EXCLUSIVE on the protected table"
tick
is "$(expired rr_ev "$tb")|$(q "SELECT outcome FROM utilix.purge_run WHERE table_name = 'public.rr_ev' ORDER BY id DESC LIMIT 1")" "0|ok" \
   "a worker run meanwhile removes beta's expired rows"
hold_send s1 "ROLLBACK"
hold_close s1
hold_close s2

# ------------------------------------------------------------------ 2a. a foreign key reaches the table
must "SELECT utilix.drop_retention('rr_ev')" "drop_retention"
must "INSERT INTO rr_par SELECT $ta, g, now() FROM generate_series(1, 20000) g;
      INSERT INTO rr_chi SELECT $ta, g, g FROM generate_series(1, 20000) g;
      INSERT INTO rr_par SELECT $tb, g, now() - interval '90 days' FROM generate_series(1, 5000) g;
      ANALYZE rr_par; ANALYZE rr_chi" "set-up"
must "SELECT utilix.set_retention('rr_par', '30 days', 'ts')" "set_retention"
tick
is "$(expired rr_par "$tb")" "0" "a worker run removes beta's 5000 expired parents (no child refers to them)"
diag "the run took ${TICK_MS} ms (before the fix: about 24 s, a scan of the child table per row)"

# ------------------------------------------------------------------ 2b. rows a tenant's own references keep
must "TRUNCATE rr_chi, rr_par" "set-up"
must "INSERT INTO rr_par SELECT CASE WHEN g % 2 = 0 THEN $ta ELSE $tb END, g, now() - interval '90 days' FROM generate_series(1, 8000) g" "set-up"
out=$(qas "$APP" "SELECT utilix.set_context('$tok_a', false)" "INSERT INTO rr_chi SELECT tenant_id, id, id FROM rr_par")
is "$(q "SELECT count(*) FROM rr_chi")" "4000" "alpha's 4000 expired parents are each referred to by a child row of alpha's"
must "ANALYZE rr_par; ANALYZE rr_chi" "analyze"
must "UPDATE utilix.purge_run SET outcome = 'error', finished_at = now() WHERE outcome = 'running'" "set-up"
tick
diag "a run with alpha's kept rows took ${TICK_MS} ms"
[ "$TICK_XIDS" -lt 1000 ] && ok "a worker run with alpha's 4000 kept rows used ${TICK_XIDS} transaction ids (before the fix: one per kept row)" ||
    not_ok "a worker run uses no transaction id per kept row" "${TICK_XIDS} transaction ids in one run (subtransactions of the halving)"
tick
tick
is "$(expired rr_par "$tb")" "0" "within three runs every expired parent of beta is gone"
must "SELECT utilix.drop_retention('rr_par')" "drop_retention"

# ------------------------------------------------------------------ 3. an operator's probe of row data
must "INSERT INTO rr_patient VALUES ($tb, 1, '1971-03-14'), ($tb, 2, '1988-11-02'), ($ta, 1, '1990-01-01')" "set-up"
q "SELECT utilix.access_log_flush(10000)" >/dev/null
before=$(q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $tb")
out=$(qas "$OPS" "BEGIN" "SELECT utilix.set_retention('rr_patient', '100 years', 'dob')" \
      "SELECT utilix.set_tenant_retention($tb, 'rr_patient', now() - '1980-01-01'::timestamptz)" \
      "SELECT rows_expired FROM utilix.purge_preview('rr_patient')" "ROLLBACK")
q "SELECT utilix.access_log_flush(10000)" >/dev/null
after=$(q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $tb")
if printf '%s' "$out" | grep -q ERROR || [ "$after" -gt "$before" ]; then
    ok "purge_preview over a policy made in the same transaction, rolled back: refused, or recorded in beta's chain"
else
    not_ok "purge_preview over a policy made in the same transaction, rolled back: refused, or recorded in beta's chain" \
           "it answered '$(printf '%s' "$out" | tr '\n' ' ')' (rows of beta born before 1980) and beta's chain holds nothing new"
fi
out=$(qas "$OPS" "BEGIN" "SELECT utilix.set_retention('rr_patient', '100 years', 'dob')" \
      "SELECT utilix.set_tenant_retention($tb, 'rr_patient', now() - '1980-01-01'::timestamptz)" \
      "SELECT rows_removed FROM utilix.run_retention('rr_patient')" "ROLLBACK")
q "SELECT utilix.access_log_flush(10000)" >/dev/null
after2=$(q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $tb")
if printf '%s' "$out" | grep -q ERROR || [ "$after2" -gt "$after" ]; then
    ok "run_retention likewise, rolled back: refused, or recorded in beta's chain"
else
    not_ok "run_retention likewise, rolled back: refused, or recorded in beta's chain" \
           "it answered '$(printf '%s' "$out" | tr '\n' ' ')' and beta's chain holds nothing new"
fi
out=$(psql -X -q -A -t -U "$OPS" -d "$DB" 2>&1 <<SQL
BEGIN;
SELECT utilix.set_retention('rr_patient', '100 years', 'dob');
CREATE TEMP TABLE found (d date);
DO \$\$
DECLARE lo date; hi date; mid date; n bigint; k bigint := 0; total bigint;
BEGIN
  PERFORM utilix.set_tenant_retention($tb, 'rr_patient', interval '1 day');
  SELECT rows_expired INTO total FROM utilix.purge_preview('rr_patient');
  WHILE k < total LOOP
    lo := (current_date - interval '99 years')::date; hi := current_date;
    WHILE lo < hi LOOP
      mid := lo + (hi - lo) / 2;
      PERFORM utilix.set_tenant_retention($tb, 'rr_patient', now() - (mid + 1)::timestamptz);
      SELECT rows_expired INTO n FROM utilix.purge_preview('rr_patient');
      IF n > k THEN hi := mid; ELSE lo := mid + 1; END IF;
    END LOOP;
    INSERT INTO found VALUES (lo);
    PERFORM utilix.set_tenant_retention($tb, 'rr_patient', now() - (lo + 1)::timestamptz);
    SELECT rows_expired INTO k FROM utilix.purge_preview('rr_patient');
  END LOOP;
END \$\$;
SELECT 'dates: ' || string_agg(d::text, ',' ORDER BY d) FROM found;
ROLLBACK;
SQL
)
q "SELECT utilix.access_log_flush(10000)" >/dev/null
after3=$(q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $tb")
if printf '%s' "$out" | grep -q 'dates: 1971-03-14,1988-11-02' && [ "$after3" -eq "$after2" ]; then
    not_ok "an operator recovers no date of beta's rows without a record in beta's chain" \
           "a binary search on keep with purge_preview, rolled back, recovered beta's dates: $(printf '%s' "$out" | grep dates)"
else
    ok "an operator recovers no date of beta's rows without a record in beta's chain"
fi

# ------------------------------------------------------------------ 3b. a hold released in a transaction rolled back (fresh review)
must "SELECT utilix.set_retention('rr_patient', '100 years', 'dob')" "set_retention"
out=$(qas "$OPS" "SELECT utilix.hold_tenant($tb, 'litigation rr-3b')")
q "SELECT utilix.access_log_flush(10000)" >/dev/null
before=$(q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $tb")
out=$(qas "$OPS" "BEGIN" "SELECT utilix.release_hold($tb)" "SELECT rows_expired FROM utilix.purge_preview('rr_patient')" "ROLLBACK")
q "SELECT utilix.access_log_flush(10000)" >/dev/null
after=$(q "SELECT count(*) FROM utilix.access_log WHERE tenant_id = $tb")
like "$((after - before))" '^[1-9]' "purge_preview after a hold released in the same transaction, rolled back, is recorded in the held tenant's chain"
out=$(qas "$OPS" "SELECT utilix.release_hold($tb)")
must "SELECT utilix.drop_retention('rr_patient')" "drop_retention"

# ------------------------------------------------------------------ 1c. the database's owner, not the table's: VACUUM FULL, REINDEX SCHEMA (fresh review)
must "ALTER DATABASE $DB OWNER TO $APP" "alter database"
like "$(qas "$APP" "VACUUM FULL rr_ev")" "is for its owner only" \
     "VACUUM FULL of a protected table by the database's owner, not the table's, is refused"
like "$(qas "$APP" "VACUUM FULL")" "is for its owner only" "... and VACUUM FULL of every table"
like "$(qas "$APP" "REINDEX SCHEMA public")" "is for its owner only" "... and REINDEX SCHEMA over protected tables"
like "$(qas "$APP" "VACUUM rr_ev" "SELECT 'plain vacuum done'")" "plain vacuum done" \
     "a plain VACUUM (no lock that holds up writers) still runs"
must "ALTER DATABASE $DB OWNER TO postgres" "alter database back"

# ------------------------------------------------------------------ what held: many rows locked by one tenant
must "SELECT utilix.set_retention('rr_ev', '30 days', 'ts')" "set_retention"
must "TRUNCATE rr_ev; INSERT INTO rr_ev SELECT CASE WHEN g % 2 = 0 THEN $ta ELSE $tb END, g, now() - interval '90 days' FROM generate_series(1, 40000) g;
      UPDATE utilix.purge_run SET outcome = 'error', finished_at = now() WHERE outcome = 'running'" "set-up"
hold_open a "$APP"
hold_send a "SELECT utilix.set_context('$tok_a', false)"
hold_send a "BEGIN"
hold_send a "SELECT count(*) FROM (SELECT 1 FROM rr_ev FOR KEY SHARE) s"
worst=0
for _ in 1 2 3 4 5 6; do tick; [ "$TICK_MS" -gt "$worst" ] && worst=$TICK_MS; done
is "$(expired rr_ev "$tb")|$(expired rr_ev "$ta")" "0|20000" \
   "alpha holds its 20000 expired rows (FOR KEY SHARE): within six runs all of beta's go, alpha's stay"
diag "each run took ${worst} ms at most"
hold_send a "COMMIT"
hold_close a

done_testing
