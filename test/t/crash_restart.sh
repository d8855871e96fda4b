#!/usr/bin/env bash
# Crashes and restarts, on a cluster of its own (utilix.database = 'cr',
# utilix.purge_naptime = 1, synchronous_commit = on as a production server
# has it: with these clusters' usual "off", PostgreSQL itself may lose the
# last transactions committed before a crash, which is not what this tests).
# One protected table with an encrypted text column; the plaintext of every
# value is kept aside, in a plain table, to compare with after each crash.
#  1. a backend killed with SIGKILL in the middle of an encrypted COPY FROM
#     of 300,000 rows (once pg_stat_progress_copy shows rows processed):
#     after the crash restart none of its rows is there, every earlier value
#     still decrypts for its own tenant to the recorded plaintext (and for
#     no other), the table is still protected and encrypted, a new COPY
#     works, and every access log chain verifies;
#  2. the utilix worker killed with SIGKILL in the middle of a retention run
#     over an encrypted table (1000-row batches, 5 per run): the run
#     resumes, one run, its rows add up exactly, the fresh rows are left and
#     decrypt, and the access log has purge records for the run whose rows
#     add up to the same total and verify;
#  3. the access log writer killed with SIGKILL while two sessions run
#     statements on the protected table, each numbered through
#     application_name: after the restart every statement the client saw
#     answered before the kill has exactly one record, nothing is recorded
#     twice, nothing is lost, and every chain verifies;
#  4. pg_ctl stop -m immediate with records queued (the writer parked by
#     utilix.access_log_writer_delay) while the worker is in the middle of
#     another retention run: after the start the records are there exactly
#     once, the chains verify, and the run is resumed and finishes with
#     exact counts.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

cr_dir=$(mktemp -d /tmp/utilix-crash.XXXXXX)
bg_pids=()
cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    UTILIX_DIR=$cr_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$cr_dir" || bail "initdb failed"
cluster_conf "utilix.database = 'cr'"
cluster_conf "utilix.purge_naptime = 1"
cluster_conf "synchronous_commit = on"
LOG=$UTILIX_DIR/server.log
DATA=$UTILIX_DIR/data
DB=cr
APP=cr_app
export PGOPTIONS="-c client_min_messages=warning"

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
# qa TOKEN SQL: as the application role, with the token as its session's context
qa() {
    PGOPTIONS="$PGOPTIONS -c utilix.context=$1" psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" -c "$2" 2>&1
}
reinits() {     # crash restarts so far
    grep -c 'all server processes terminated; reinitializing' "$LOG"
}
# after_crash BEFORE WHAT: waits for the crash restart that follows BEFORE
# reinitialisations, then for connections
after_crash() {
    local end=$((SECONDS + 60))
    until [ "$(reinits)" -gt "$1" ]; do
        [ $SECONDS -ge $end ] && bail "the postmaster did not reinitialise after $2: $(tail -5 "$LOG")"
        sleep 0.2
    done
    server_ready 90 || bail "the server did not come back after $2: $(tail -5 "$LOG")"
}
token() {   # token TENANT APP_USER
    q "SELECT utilix.issue_context($1, '$2', '2 hours', '{read,write}')"
}
set_delay() {   # set_delay VALUE|default: ALTER SYSTEM and reload
    if [ "$1" == default ]; then
        q "ALTER SYSTEM RESET utilix.access_log_writer_delay" >/dev/null
    else
        q "ALTER SYSTEM SET utilix.access_log_writer_delay = '$1'" >/dev/null
    fi
    q "SELECT pg_reload_conf()" >/dev/null
}
verify_log() {  # "t" when every chain verifies
    q "SELECT bool_and(ok) AND count(*) > 0 FROM utilix.verify_access_log()"
}
# decrypts_ok TABLE: per tenant, through that tenant's context, rows seen |
# rows whose secret equals the recorded plaintext | rows of other tenants seen
decrypts_ok() {
    local t tok out=""
    for t in $TA $TB; do
        tok=$(token "$t" "u-check-$t")
        out+="$(qa "$tok" "SELECT count(*), count(*) FILTER (WHERE e.secret::text = p.secret), count(*) FILTER (WHERE e.tenant_id <> $t)
                            FROM $1 e LEFT JOIN plain_secret p ON p.tab = '$1' AND p.tenant_id = e.tenant_id AND p.id = e.id") "
    done
    printf '%s' "${out% }"
}
# busy_worker TABLE: waits (server side, up to 20 s) until pg_stat_activity
# shows the utilix worker active; prints its pid and the rows of TABLE's run done
busy_worker() {
    psql -X -q -A -t -d "$DB" <<SQL
CREATE FUNCTION pg_temp.busy_worker() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE
    p int;
BEGIN
    FOR i IN 1..20000 LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT a.pid INTO p FROM pg_stat_activity a
         WHERE a.backend_type = 'utilix worker' AND a.state = 'active';
        IF FOUND THEN
            RETURN p || ' ' || (SELECT rows_done FROM utilix.purge_progress WHERE table_name = '$1');
        END IF;
        PERFORM pg_sleep(0.001);
    END LOOP;
    RETURN NULL;
END
\$\$;
SELECT pg_temp.busy_worker();
SQL
}
# purge_record_rows TABLE RUN: records of the run | rows they report removed
purge_record_rows() {
    q "SELECT count(*), coalesce(sum((regexp_match(detail, ': ([0-9]+) rows removed'))[1]::bigint), 0)
         FROM utilix.access_log WHERE kind = 'purge' AND detail LIKE 'retention of $1:%(run $2)'"
}

t_start=$SECONDS
cluster_start || bail "the server does not start: $(tail -5 "$LOG")"
psql -X -q -d postgres -c "CREATE DATABASE $DB" || bail "createdb failed"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE EXTENSION utilix;
CREATE ROLE $APP LOGIN;
CREATE TABLE enc (tenant_id bigint NOT NULL, id int NOT NULL, secret text, note text,
                  ts timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('enc');
SELECT utilix.encrypt_column('enc', 'secret');
GRANT SELECT, INSERT, UPDATE ON enc TO $APP;
-- the plaintext of every sealed value, kept aside (not protected)
CREATE TABLE plain_secret (tab text NOT NULL, tenant_id bigint NOT NULL, id int NOT NULL, secret text NOT NULL,
                           PRIMARY KEY (tab, tenant_id, id));
GRANT SELECT ON plain_secret TO $APP;
SQL
) || bail "set-up failed: $out"
read -r TA TB < <(q "SELECT utilix.create_tenant('cr alpha'), utilix.create_tenant('cr beta')" | tr '|' ' ')
[[ "${TB:-}" =~ ^[0-9]+$ ]] || bail "create_tenant failed: $TA $TB"
TOKA=$(token "$TA" u-alpha)
TOKB=$(token "$TB" u-beta)
# 500 rows per tenant, written by the application through its context
q "INSERT INTO plain_secret SELECT 'enc', t, g, format('%s secret %s %s', t, g, md5(random()::text))
     FROM unnest(ARRAY[$TA, $TB]::bigint[]) t, generate_series(1, 500) g" >/dev/null || bail "plain_secret failed"
for t in "$TA:$TOKA" "$TB:$TOKB"; do
    out=$(qa "${t#*:}" "INSERT INTO enc (id, secret, note) SELECT id, secret, 'pre' FROM plain_secret WHERE tab = 'enc' AND tenant_id = ${t%%:*}") ||
        bail "the application could not insert: $out"
done
is "$(q "SELECT count(*), count(*) FILTER (WHERE utilix.is_sealed(secret)) FROM enc")" "1000|1000" \
    "set-up: 1000 rows in the protected table enc, every secret sealed"
is "$(decrypts_ok enc)" "500|500|0 500|500|0" "set-up: each tenant reads its 500 rows, each secret decrypts to its recorded plaintext"

# ------------------------------------------------------------------ 1. SIGKILL in the middle of an encrypted COPY FROM
NCOPY=300000
copy_file=$cr_dir/copy.tsv
seq 100001 $((100000 + NCOPY)) | awk '{ printf "%d\tcopied secret %d\tcopy\n", $1, $1 }' > "$copy_file"
PGAPPNAME=cr_copy PGOPTIONS="$PGOPTIONS -c utilix.context=$TOKA" \
    psql -X -q -U "$APP" -d "$DB" -c "\\copy enc (id, secret, note) FROM '$copy_file'" >"$cr_dir/copy.out" 2>&1 &
copy_client=$!
bg_pids+=("$copy_client")
seen=$(psql -X -q -A -t -d "$DB" <<'SQL'
CREATE FUNCTION pg_temp.copying() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR i IN 1..30000 LOOP
        PERFORM pg_stat_clear_snapshot();
        SELECT p.pid, p.tuples_processed INTO r
          FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid)
         WHERE a.application_name = 'cr_copy' AND p.command = 'COPY FROM' AND p.tuples_processed > 0;
        IF FOUND THEN
            RETURN r.pid || ' ' || r.tuples_processed;
        END IF;
        PERFORM pg_sleep(0.001);
    END LOOP;
    RETURN NULL;
END
$$;
SELECT pg_temp.copying();
SQL
)
read -r cpid processed <<<"$seen"
[[ "${cpid:-}" =~ ^[0-9]+$ ]] || bail "the COPY was never seen in pg_stat_progress_copy: $seen $(cat "$cr_dir/copy.out")"
before=$(reinits)
kill -9 "$cpid"
diag "killed backend $cpid (SIGKILL) in its COPY FROM, pg_stat_progress_copy showed $processed of $NCOPY rows processed"
wait "$copy_client"
copy_rc=$?
after_crash "$before" "the COPY backend was killed"
like "$(cat "$LOG")" "server process \\(PID $cpid\\) was terminated by signal 9" "the postmaster saw the COPY backend killed by SIGKILL"
if [ "$copy_rc" -ne 0 ] && ! grep -q "^COPY " "$cr_dir/copy.out"; then
    ok "the COPY did not complete for the client (psql exit $copy_rc)"
else
    not_ok "the COPY did not complete for the client" "psql exit $copy_rc: $(cat "$cr_dir/copy.out")"
fi
is "$(q "SELECT count(*) FROM enc WHERE id > 100000")" "0" "none of the COPY's rows is in the table (the COPY was atomic)"
is "$(q "SELECT count(*), count(*) FILTER (WHERE utilix.is_sealed(secret)) FROM enc")" "1000|1000" "the 1000 earlier rows are there, every secret sealed"
is "$(decrypts_ok enc)" "500|500|0 500|500|0" "after the crash each tenant reads its 500 rows, every secret decrypts to its recorded plaintext"
is "$(q "SELECT count(*) FROM enc e JOIN plain_secret p ON p.tab = 'enc' AND p.tenant_id = e.tenant_id AND p.id = e.id
          WHERE e.secret::text = p.secret OR e.secret::text NOT LIKE 'utxe1:%'")" "0" \
    "without a context (superuser) every secret prints as armour, none as plaintext"
is "$(qa "$TOKB" "SELECT count(*) FROM enc WHERE tenant_id = $TA")" "0" "tenant beta's context sees none of alpha's rows"
is "$(q "SELECT rls_enabled AND rls_forced AND tenant_policy AND guard_trigger FROM utilix.protected_tables WHERE table_name = 'enc'::regclass")" "t" \
    "enc is still protected (row level security enabled and forced, tenant policy, guard trigger)"
is "$(q "SELECT count(*) FROM utilix.encrypted_columns WHERE table_name = 'enc'::regclass AND column_name = 'secret'")" "1" "and its column secret still encrypted"
out=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT count(*) FROM enc" 2>&1)
like "$out" "ERROR" "the application role without a context is still refused"
out=$(printf '900001\tafter the crash\tcopy\n900002\tafter the crash too\tcopy\n' |
      PGOPTIONS="$PGOPTIONS -c utilix.context=$TOKA" psql -X -q -U "$APP" -d "$DB" -c "\\copy enc (id, secret, note) FROM STDIN" 2>&1)
is "$out|$(qa "$TOKA" "SELECT string_agg(secret::text, ',' ORDER BY id) FROM enc WHERE id > 900000")" "|after the crash,after the crash too" \
    "a new COPY FROM works after the restart, and its rows decrypt"
q "DELETE FROM enc WHERE id > 900000" >/dev/null
is "$(q "SELECT utilix.access_log_flush(20000)")|$(verify_log)" "t|t" "verify_access_log(): every chain is intact"
is "$(q "SELECT lost FROM utilix.access_log_status")" "0" "access_log_status: nothing lost"
diag "part 1 done at $((SECONDS - t_start)) s"

# ------------------------------------------------------------------ 2. SIGKILL of the worker in the middle of a retention run
EXPIRED=60000
q "ALTER SYSTEM SET utilix.purge_batch_rows = 1000" >/dev/null
q "ALTER SYSTEM SET utilix.purge_batches_per_run = 5" >/dev/null
q "ALTER SYSTEM SET utilix.purge_time_budget = '60s'" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE TABLE encp (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, secret text, note text);
SELECT utilix.protect('encp');
SELECT utilix.encrypt_column('encp', 'secret');
-- expired rows, alternating tenants, then fresh ones whose plaintext is kept
INSERT INTO encp SELECT CASE WHEN g % 2 = 0 THEN $TA ELSE $TB END, g, now() - interval '400 days' + make_interval(secs => g),
                        'old secret ' || g, 'old' FROM generate_series(1, $EXPIRED) g;
INSERT INTO plain_secret SELECT 'encp', t, $EXPIRED + g, format('fresh %s %s %s', t, g, md5(random()::text))
  FROM unnest(ARRAY[$TA, $TB]::bigint[]) t, generate_series(1, 500) g;
INSERT INTO encp SELECT tenant_id, id, now() - make_interval(mins => id - $EXPIRED), secret, 'fresh' FROM plain_secret WHERE tab = 'encp';
GRANT SELECT ON encp TO $APP;
VACUUM ANALYZE encp;
SQL
) || bail "loading encp failed: $out"
is "$(q "SELECT count(*), count(*) FILTER (WHERE utilix.is_sealed(secret)) FROM encp")" "$((EXPIRED + 1000))|$((EXPIRED + 1000))" \
    "encp holds $EXPIRED expired and 1000 fresh rows, every secret sealed"
q "SELECT utilix.set_retention('encp', '30 days', 'ts')" >/dev/null || bail "set_retention on encp failed"
got=$(wait_for 60 "SELECT rows_done >= 10000 FROM utilix.purge_progress WHERE table_name = 'public.encp'" t)
is "$got" "t" "the worker's run over encp is in progress (at least two runs of 5,000 rows committed)"
seen=$(busy_worker public.encp)
read -r wpid done_at_kill <<<"$seen"
[[ "${wpid:-}" =~ ^[0-9]+$ ]] || bail "the worker was never seen active: $seen"
before=$(reinits)
kill -9 "$wpid"
diag "killed worker $wpid (SIGKILL) while active, rows committed before that run: $done_at_kill"
after_crash "$before" "the worker was killed"
like "$(cat "$LOG")" "utilix worker.*terminated by signal 9" "the postmaster saw the worker killed by SIGKILL"
got=$(wait_for 60 "SELECT count(*) FROM utilix.purge_run WHERE table_name = 'public.encp' AND outcome = 'running'" 0)
is "$got" "0" "the run over encp finishes after the restart"
is "$(q "SELECT count(*), max(outcome), sum(rows_expected), sum(rows_removed) FROM utilix.purge_runs WHERE kind = 'retention' AND table_name = 'public.encp'")" \
    "1|ok|$EXPIRED|$EXPIRED" "one run (resumed, not started over), outcome ok: $EXPIRED rows expected, exactly $EXPIRED removed"
is "$(q "SELECT count(*), count(*) FILTER (WHERE note = 'fresh' AND utilix.is_sealed(secret)) FROM encp")" "1000|1000" \
    "exactly the 1000 fresh rows are left, sealed"
is "$(decrypts_ok encp)" "500|500|0 500|500|0" "each tenant reads its 500 fresh rows, each secret decrypts to its recorded plaintext"
run2=$(q "SELECT id FROM utilix.purge_runs WHERE table_name = 'public.encp'")
q "SELECT utilix.access_log_flush(20000)" >/dev/null
read -r nrec nrows < <(purge_record_rows public.encp "$run2" | tr '|' ' ')
[ "${nrec:-0}" -ge $((EXPIRED / 5000)) ] && ok "the access log has a purge record per committed worker run of run $run2 ($nrec)" ||
    not_ok "the access log has a purge record per committed worker run of run $run2" "records: $nrec"
is "$nrows" "$EXPIRED" "the rows the purge records report removed add up to exactly $EXPIRED"
is "$(verify_log)" "t" "verify_access_log(): every chain is intact"
diag "part 2 done at $((SECONDS - t_start)) s"

# ------------------------------------------------------------------ 3. SIGKILL of the access log writer while records flow
NSTMT=20000
# flow NAME TOKEN: a session of the application role running NSTMT numbered
# reads (application_name NAME_<n>); it prints "n|1" as each is answered
flow() {
    local name=$1 tok=$2 i
    {
        echo "SELECT utilix.set_context('$tok', false) \\g /dev/null"
        for ((i = 1; i <= NSTMT; i++)); do
            echo "SET application_name = '${name}_$i';"
            echo "SELECT $i, count(*) FROM enc WHERE id = $(( (i % 500) + 1 ));"
        done
    } > "$cr_dir/$name.sql"
    psql -X -q -A -t -U "$APP" -d "$DB" -f "$cr_dir/$name.sql" >"$cr_dir/$name.out" 2>"$cr_dir/$name.err"
}
acked() {   # statements of session $1 answered so far
    local n
    n=$(grep -cE '^[0-9]+\|1$' "$cr_dir/$1.out" 2>/dev/null)
    printf '%s' "${n:-0}"
}
flow fa "$TOKA" &
fa_pid=$!
flow fb "$TOKB" &
fb_pid=$!
bg_pids+=("$fa_pid" "$fb_pid")
end=$((SECONDS + 60))
until [ "$(acked fa)" -ge 300 ] && [ "$(acked fb)" -ge 300 ]; do
    [ $SECONDS -ge $end ] && bail "the two sessions did not get going: $(acked fa) $(acked fb) $(cat "$cr_dir/fa.err")"
    sleep 0.1
done
written0=$(q "SELECT written FROM utilix.access_log_status")
sleep 0.3
read -r apid written1 < <(q "SELECT a.pid, s.written FROM pg_stat_activity a, utilix.access_log_status s
                              WHERE a.backend_type = 'utilix access log writer' AND a.datname = current_database()" | tr '|' ' ')
[[ "${apid:-}" =~ ^[0-9]+$ ]] || bail "no access log writer in pg_stat_activity"
before=$(reinits)
kill -9 "$apid"
diag "killed access log writer $apid (SIGKILL); it had written $((written1 - written0)) records in the last 0.3 s"
[ "$((written1 - written0))" -gt 0 ] && ok "records were flowing: the writer was writing when it was killed" ||
    not_ok "records were flowing: the writer was writing when it was killed" "written: $written0 -> $written1"
wait "$fa_pid"; wait "$fb_pid"
after_crash "$before" "the writer was killed"
like "$(cat "$LOG")" "utilix access log writer.*\\(PID $apid\\) was terminated by signal 9" "the postmaster saw the writer killed by SIGKILL"
na=$(acked fa); nb=$(acked fb)
diag "statements answered before the kill: $na and $nb of $NSTMT each"
[ "$na" -lt "$NSTMT" ] && [ "$nb" -lt "$NSTMT" ] && ok "both sessions were cut off by the crash" ||
    not_ok "both sessions were cut off by the crash" "answered: $na $nb"
spill_line=$(grep 'queued access log records written to the spill directory' "$LOG" | tail -1)
diag "postmaster: ${spill_line##*utilix: }"
# records are loaded from the spill directory once a writer runs again
got=$(wait_for 60 "SELECT count(*) >= $((na + nb)) FROM utilix.access_log WHERE application_name ~ '^f[ab]_[0-9]+$'" t)
is "$got" "t" "after the restart the records reach the log"
q "SELECT utilix.access_log_flush(20000)" >/dev/null
sleep 1
for s in "fa:$na:$TA" "fb:$nb:$TB"; do
    IFS=: read -r name n t <<<"$s"
    is "$(q "SELECT count(DISTINCT substr(application_name, 4)::int) FILTER (WHERE substr(application_name, 4)::int <= $n),
                    count(*) FILTER (WHERE substr(application_name, 4)::int > $n) <= 1,
                    count(*) = count(DISTINCT record_id), count(*) = count(DISTINCT application_name),
                    bool_and(kind = 'select' AND outcome = 'ok' AND tenant_id = $t AND session_role = '$APP')
               FROM utilix.access_log WHERE application_name ~ '^${name}_[0-9]+$'")" "$n|t|t|t|t" \
       "session $name: each of the $n statements answered before the kill has its record (at most the one in flight besides), each once, kind select, its tenant"
done
is "$(q "SELECT count(*) FROM (SELECT record_id FROM utilix.access_log GROUP BY 1 HAVING count(*) > 1) d")" "0" "no record is in the log twice"
is "$(q "SELECT lost FROM utilix.access_log_status")" "0" "access_log_status: nothing lost"
is "$(find "$DATA/pg_utilix_access_log" -name '*.spill*' 2>/dev/null | wc -l)" "0" "no spill file is left"
is "$(verify_log)" "t" "verify_access_log(): every chain is intact"
diag "part 3 done at $((SECONDS - t_start)) s"

# ------------------------------------------------------------------ 4. pg_ctl stop -m immediate, records queued, a run under way
EXPIRED4=40000
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE TABLE encq (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, secret text);
SELECT utilix.protect('encq');
SELECT utilix.encrypt_column('encq', 'secret');
INSERT INTO encq SELECT CASE WHEN g % 2 = 0 THEN $TA ELSE $TB END, g, now() - interval '100 days' + make_interval(secs => g),
                        'old ' || g FROM generate_series(1, $EXPIRED4) g;
INSERT INTO encq SELECT $TB, $EXPIRED4 + g, now(), 'fresh ' || g FROM generate_series(1, 100) g;
GRANT SELECT ON encq TO $APP;
VACUUM ANALYZE encq;
SQL
) || bail "loading encq failed: $out"
# a writer that has looked and found nothing sleeps utilix.access_log_writer_delay
q "SELECT count(*) FROM enc" >/dev/null
q "SELECT utilix.access_log_flush(10000)" >/dev/null
set_delay 600s
sleep 1.5
q "SELECT utilix.set_retention('encq', '30 days', 'ts')" >/dev/null || bail "set_retention on encq failed"
got=$(wait_for 60 "SELECT rows_done >= 5000 AND rows_done < $EXPIRED4 FROM utilix.purge_progress WHERE table_name = 'public.encq'" t)
is "$got" "t" "the worker's run over encq is under way"
N=200
tokq=$(token "$TB" u-stop)
out=$({
    echo "SELECT utilix.set_context('$tokq', false) \\g /dev/null"
    for i in $(seq 1 $N); do echo "SELECT count(*) FROM enc WHERE id = $(( (i % 500) + 1 )) \\g /dev/null"; done
} | psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" 2>&1)
is "$out" "" "$N reads of the application role, no error"
read -r queued written_stop < <(q "SELECT queued_here, (SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-stop') FROM utilix.access_log_status" | tr '|' ' ')
[ "${queued:-0}" -ge $N ] && [ "$written_stop" == 0 ] && ok "their $N records wait in the queue (queued_here = $queued), none written" ||
    not_ok "their $N records wait in the queue, none written" "queued_here = $queued, written: $written_stop"
done_before=$(q "SELECT rows_done FROM utilix.purge_progress WHERE table_name = 'public.encq'")
[[ "$done_before" =~ ^[0-9]+$ ]] && [ "$done_before" -lt $EXPIRED4 ] && ok "the run over encq is still under way ($done_before of $EXPIRED4 rows)" ||
    not_ok "the run over encq is still under way" "rows_done: '$done_before'"
q "ALTER SYSTEM RESET utilix.access_log_writer_delay" >/dev/null
t0=$SECONDS
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 60 stop >/dev/null 2>&1
rc=$?
is "$rc:$([ -f "$DATA/postmaster.pid" ] && echo pid || echo nopid)" "0:nopid" "pg_ctl stop -m immediate stops the server ($((SECONDS - t0)) s)"
cluster_start || bail "the server does not start again: $(tail -5 "$LOG")"
got=$(wait_for 60 "SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-stop'" "$N")
is "$got" "$N" "after the start the $N records are in the log"
sleep 1
is "$(q "SELECT count(*), count(DISTINCT record_id), min(kind), max(kind), bool_and(tenant_id = $TB) FROM utilix.access_log WHERE app_user = 'u-stop'")" \
    "$N|$N|select|select|t" "exactly once each, kind select, tenant beta"
got=$(wait_for 90 "SELECT count(*) FROM utilix.purge_run WHERE table_name = 'public.encq' AND outcome = 'running'" 0)
is "$got" "0" "the run over encq is resumed after the start and finishes"
is "$(q "SELECT count(*), max(outcome), sum(rows_expected), sum(rows_removed), bool_and(finished_at IS NOT NULL) FROM utilix.purge_runs WHERE kind = 'retention' AND table_name = 'public.encq'")" \
    "1|ok|$EXPIRED4|$EXPIRED4|t" "purge_runs: one run, ok, finished, $EXPIRED4 rows expected and exactly $EXPIRED4 removed"
is "$(q "SELECT count(*), count(*) FILTER (WHERE tenant_id = $TB AND utilix.is_sealed(secret)) FROM encq")" "100|100" "exactly the 100 fresh rows are left"
is "$(qa "$TOKB" "SELECT count(*) FILTER (WHERE secret::text = 'fresh ' || (id - $EXPIRED4)) FROM encq")" "100" "and they decrypt for their tenant"
run4=$(q "SELECT id FROM utilix.purge_runs WHERE table_name = 'public.encq'")
q "SELECT utilix.access_log_flush(20000)" >/dev/null
read -r nrec nrows < <(purge_record_rows public.encq "$run4" | tr '|' ' ')
is "$nrows" "$EXPIRED4" "the purge records of run $run4 ($nrec) report exactly $EXPIRED4 rows removed"
is "$(q "SELECT lost FROM utilix.access_log_status")" "0" "access_log_status: nothing lost"
is "$(verify_log)" "t" "verify_access_log(): every chain is intact"
is "$(q "SELECT bool_and(ok) IS NOT FALSE FROM utilix.verify_certificates()")" "t" "verify_certificates(): no certificate is broken"
is "$(grep -cE 'PANIC|TRAP:|spill file .* is not an access log spill' "$LOG")" "0" "the server log has no PANIC, no assertion failure, no rejected spill file"
diag "crash_restart.sh took $((SECONDS - t_start)) s"

done_testing
