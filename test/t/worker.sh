#!/usr/bin/env bash
# The utilix background worker, on a cluster of its own with
# utilix.database = 'wk' and utilix.purge_naptime = 1 (set before the first
# start, when database wk does not exist yet):
#  - the server starts; once wk exists and has the extension, the worker is
#    in pg_stat_activity (backend_type 'utilix worker', database wk);
#  - retention: the worker removes exactly the expired rows and records one
#    'ok' run with the exact count;
#  - offboarding: a tenant terminated with a 1-second grace period is purged
#    by the worker, with a certificate that verifies; a tenant on legal hold
#    past its deadline stays, and shows as 'purge overdue';
#  - crash safety: with 1000-row batches and 5 batches per run (ALTER SYSTEM
#    and reload), the worker is killed with SIGKILL in the middle of a run of
#    300,000 expired rows; the postmaster restarts everything; the run
#    resumes and the rows removed add up to exactly 300,000, counted once;
#  - a purge that cannot succeed (a cycle of foreign keys) is recorded, the
#    tenant shows as overdue, and retention of everything else goes on.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

wk_dir=$(mktemp -d /tmp/utilix-worker.XXXXXX)
cleanup() {
    UTILIX_DIR=$wk_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$wk_dir" || bail "initdb failed"
cluster_conf "utilix.database = 'wk'"
cluster_conf "utilix.purge_naptime = 1"
LOG=$UTILIX_DIR/server.log

q() {       # q SQL: one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d wk -c "$1" 2>&1
}

cluster_start || bail "the server does not start: $(tail -5 "$LOG")"
ok "the server starts with utilix.database = 'wk' before database wk exists"

psql -X -q -d postgres -c "CREATE DATABASE wk" || bail "createdb wk failed"
q "CREATE EXTENSION utilix" >/dev/null || bail "CREATE EXTENSION failed"
# the worker retries its connection every 10 s (bgw_restart_time) until wk exists
got=$(wait_for 30 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'utilix worker' AND datname = 'wk'" 1)
is "$got" "1" "pg_stat_activity shows one backend of type 'utilix worker' in database wk"
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'utilix worker'")" "1" "there is exactly one worker"

# ------------------------------------------------------------------ retention
q "
CREATE TABLE wk_ev (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('wk_ev');
" >/dev/null || bail "set-up failed"
read -r t1 t2 t3 t4 < <(q "SELECT utilix.create_tenant('wk one'), utilix.create_tenant('wk two'), utilix.create_tenant('wk held'), utilix.create_tenant('wk keep')" | tr '|' ' ')
[ -n "${t4:-}" ] || bail "no tenants"
# per tenant: 250 rows 40..41 days old (expired under 30 days), 100 fresh ones
q "
INSERT INTO wk_ev SELECT t, g, now() - interval '40 days' - make_interval(secs => g)
  FROM unnest(ARRAY[$t1, $t2, $t3, $t4]::bigint[]) t, generate_series(1, 250) g;
INSERT INTO wk_ev SELECT t, 1000 + g, now() - make_interval(mins => g)
  FROM unnest(ARRAY[$t1, $t2, $t3, $t4]::bigint[]) t, generate_series(1, 100) g;
" >/dev/null || bail "insert failed"
# the held tenant is held before the policy exists
q "SELECT utilix.hold_tenant($t3, 'wk court order')" >/dev/null
q "SELECT utilix.set_retention('wk_ev', '30 days', 'ts')" >/dev/null || bail "set_retention failed"
got=$(wait_for 15 "SELECT count(*) FROM wk_ev WHERE ts < now() - interval '30 days' AND tenant_id <> $t3" 0)
is "$got" "0" "within 15 s the worker removed every expired row (tenants not on hold)"
is "$(q "SELECT count(*) FROM wk_ev")" "650" "exactly the 750 expired rows of the three tenants went: 100 fresh each and the held tenant's 250 old rows stay"
is "$(q "SELECT count(*) FROM wk_ev WHERE tenant_id = $t3")" "350" "the held tenant keeps every row"
is "$(q "SELECT kind, table_name, rows_expected, rows_removed, partitions_dropped, outcome, finished_at IS NOT NULL FROM utilix.purge_runs WHERE table_name = 'public.wk_ev'")" \
   "retention|public.wk_ev|750|750|0|ok|t" "purge_runs: one 'ok' retention run, 750 rows expected and removed"

# ------------------------------------------------------------------ offboarding
q "SELECT utilix.terminate_tenant($t3, '1 second')" >/dev/null
q "SELECT utilix.terminate_tenant($t2, '1 second')" >/dev/null || bail "terminate_tenant failed"
got=$(wait_for 15 "SELECT status FROM utilix.tenant WHERE id = $t2" purged)
is "$got" "purged" "within 15 s of its deadline the worker purged the terminated tenant"
is "$(q "SELECT count(*) FROM wk_ev WHERE tenant_id = $t2")" "0" "its rows are gone"
is "$(q "SELECT count(*) FROM wk_ev WHERE tenant_id IN ($t1, $t4)")" "200" "the other tenants' rows stay"
is "$(q "SELECT tenant_name, (tables -> 'public.wk_ev' ->> 'before'), (tables -> 'public.wk_ev' ->> 'after') FROM utilix.deletion_certificates WHERE tenant_id = $t2")" \
   "wk two|100|0" "the worker wrote the deletion certificate: 100 rows before, 0 after"
is "$(q "SELECT bool_and(ok) FROM utilix.verify_certificates()")" "t" "the certificate verifies"
is "$(q "SELECT count(*) FROM utilix.purge_runs WHERE kind = 'offboarding' AND tenant_id = $t2 AND outcome = 'ok' AND rows_removed = 100")" "1" \
   "purge_runs has the offboarding run"
is "$(q "SELECT status FROM utilix.tenant WHERE id = $t3")" "terminated" "the held tenant past its deadline is not purged"
is "$(q "SELECT count(*) FROM wk_ev WHERE tenant_id = $t3")" "350" "its rows stay"
is "$(q "SELECT count(*) FROM utilix.security_events WHERE tenant_id = $t3 AND kind = 'purge overdue'")" "1" \
   "it shows as 'purge overdue' in security_events"
is "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'utilix worker' AND datname = 'wk'")" "1" "the worker is still running"
errors_before_kill=$(grep -c 'ERROR:' "$LOG")
is "$errors_before_kill" "0" "no worker run failed so far (no ERROR in the server log)"

# ------------------------------------------------------------------ crash in the middle of a run
expired=300000
q "ALTER SYSTEM SET utilix.purge_batch_rows = 1000" >/dev/null
q "ALTER SYSTEM SET utilix.purge_batches_per_run = 5" >/dev/null
q "ALTER SYSTEM SET utilix.purge_time_budget = '60s'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
q "
CREATE TABLE wk_big (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, payload text);
SELECT utilix.protect('wk_big');
INSERT INTO wk_big SELECT CASE WHEN g % 2 = 0 THEN $t1 ELSE $t4 END, g, now() - interval '400 days' + make_interval(secs => g), md5(g::text)
  FROM generate_series(1, $expired) g;
INSERT INTO wk_big SELECT $t1, $expired + g, now() - make_interval(mins => g), 'fresh' FROM generate_series(1, 1000) g;
" >/dev/null || bail "loading wk_big failed"
q "VACUUM ANALYZE wk_big" >/dev/null
q "SELECT utilix.set_retention('wk_big', '30 days', 'ts')" >/dev/null || bail "set_retention on wk_big failed"

# two runs of 5,000 rows committed, then catch the worker inside a run
got=$(wait_for 30 "SELECT rows_done >= 10000 FROM utilix.purge_progress WHERE table_name = 'public.wk_big'" t)
is "$got" "t" "purge_progress shows the big run in progress"
steps=$(q "SELECT rows_done, rows_expected FROM utilix.purge_progress WHERE table_name = 'public.wk_big'")
diag "progress before the kill: $steps (done|expected)"
# rows_expected of a large run is the planner's estimate (exact below 100,000 rows)
is "$(q "SELECT rows_done % 5000, abs(rows_expected - $expired) < $expired / 10 FROM utilix.purge_progress WHERE table_name = 'public.wk_big'")" "0|t" \
   "each worker run removes purge_batch_rows x purge_batches_per_run = 5,000 rows (the reloaded settings apply); the expected count is within 10%"
seen=$(psql -X -q -A -t -d wk <<'SQL'
CREATE FUNCTION pg_temp.busy_worker() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    p int;
BEGIN
    FOR i IN 1..20000 LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT a.pid INTO p FROM pg_stat_activity a
         WHERE a.backend_type = 'utilix worker' AND a.state = 'active';
        IF FOUND THEN
            RETURN p || ' ' || (SELECT rows_done FROM utilix.purge_progress WHERE table_name = 'public.wk_big');
        END IF;
        PERFORM pg_sleep(0.001);
    END LOOP;
    RETURN NULL;
END
$$;
SELECT pg_temp.busy_worker();
SQL
)
read -r pid done_at_kill <<<"$seen"
[ -n "$pid" ] || bail "the worker was never seen in a run"
kill -9 "$pid"
diag "killed worker $pid while pg_stat_activity showed it active, in a run (rows committed before that run: $done_at_kill)"
sleep 1
server_ready 60 || bail "the server did not come back after the worker was killed"
like "$(cat "$LOG")" "utilix worker.*(was terminated by signal 9|terminated by signal 9: Killed)" "the postmaster saw the worker killed by SIGKILL"
like "$(cat "$LOG")" "all server processes terminated; reinitializing" "and restarted every process (crash recovery)"
got=$(wait_for 30 "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'utilix worker' AND datname = 'wk'" 1)
is "$got" "1" "the worker is back after the restart"
is "$(q "SELECT count(*) FROM utilix.purge_progress WHERE table_name = 'public.wk_big'")" "1" "the interrupted run is still there, in progress"
got=$(wait_for 200 "SELECT count(*) FROM utilix.purge_run WHERE table_name = 'public.wk_big' AND outcome = 'running'" 0)
is "$got" "0" "the run finishes after the restart"
is "$(q "SELECT sum(rows_removed) FROM utilix.purge_run WHERE kind = 'retention' AND table_name = 'public.wk_big'")" "$expired" \
   "the rows removed across runs add up to exactly the $expired expired rows (nothing lost, nothing counted twice)"
is "$(q "SELECT count(*), max(outcome) FROM utilix.purge_run WHERE kind = 'retention' AND table_name = 'public.wk_big'")" \
   "1|ok" "the interrupted run was resumed (one run, outcome ok), not started over"
is "$(q "SELECT count(*), count(*) FILTER (WHERE payload = 'fresh') FROM wk_big")" "1000|1000" "exactly the 1,000 fresh rows are left"

# ------------------------------------------------------------------ a purge that fails
# golf's accounts and persons reference each other (a cycle of foreign keys
# between two protected tables): its purge cannot succeed.  The worker must
# record that and keep applying retention to everything else.
q "
CREATE TABLE wk_acct (tenant_id bigint NOT NULL, id int NOT NULL, owner_id int, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('wk_acct');
CREATE TABLE wk_person (tenant_id bigint NOT NULL, id int NOT NULL, acct_id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('wk_person');
" >/dev/null || bail "set-up of the foreign key tables failed"
q "ALTER TABLE wk_person ADD FOREIGN KEY (tenant_id, acct_id) REFERENCES wk_acct (tenant_id, id)" >/dev/null || bail "foreign key 1 failed"
q "ALTER TABLE wk_acct ADD FOREIGN KEY (tenant_id, owner_id) REFERENCES wk_person (tenant_id, id)" >/dev/null || bail "foreign key 2 failed"
tg=$(q "SELECT utilix.create_tenant('wk golf')")
q "INSERT INTO wk_acct VALUES ($tg, 1, NULL)" >/dev/null
q "INSERT INTO wk_person VALUES ($tg, 1, 1)" >/dev/null
q "UPDATE wk_acct SET owner_id = 1 WHERE tenant_id = $tg" >/dev/null || bail "the cycle could not be made"
q "SELECT utilix.terminate_tenant($tg, '1 second')" >/dev/null
sleep 3
q "INSERT INTO wk_ev SELECT $t1, 5000 + g, now() - interval '90 days' FROM generate_series(1, 50) g" >/dev/null
got=$(wait_for 15 "SELECT count(*) FROM wk_ev WHERE ts < now() - interval '30 days' AND tenant_id <> $t3" 0)
is "$got" "0" "retention goes on while a due tenant's purge fails (50 new expired rows removed within 15 s)"
got=$(wait_for 10 "SELECT count(*) > 0 FROM utilix.purge_runs WHERE kind = 'offboarding' AND tenant_id = $tg AND outcome = 'error'" t)
is "$got" "t" "the failed purge is on record in purge_runs (outcome 'error')"
is "$(q "SELECT status FROM utilix.tenant WHERE id = $tg")|$(q "SELECT count(*) FROM wk_acct WHERE tenant_id = $tg")" "terminated|1" \
   "the tenant whose purge failed is still terminated, with its rows"
is "$(q "SELECT count(*) FROM utilix.security_events WHERE tenant_id = $tg AND kind = 'purge overdue'")" "1" \
   "and shows as 'purge overdue' in security_events"
diag "failed purge runs of golf recorded so far: $(q "SELECT count(*) FROM utilix.purge_run WHERE tenant_id = $tg AND outcome = 'error'")"
diag "worker errors in the server log: $(grep -c 'ERROR:' "$LOG"); last: $(grep 'ERROR:' "$LOG" | tail -1 | cut -c1-300)"

done_testing
