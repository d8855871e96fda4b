#!/usr/bin/env bash
# The access log survives crashes, on a cluster of its own (it kills and
# restarts the server):
#  - a backend killed with SIGKILL while records wait in the shared-memory
#    queue (the writer parked by utilix.access_log_writer_delay = 600s): the
#    postmaster writes every queued record to the spill directory before it
#    reinitialises shared memory, and a writer loads them after the restart;
#    exactly the N records are in the log, with the right user, tenant and
#    row counts, and every chain verifies;
#  - pg_ctl stop -m immediate with records queued: the same, exactly once;
#  - utilix.access_log_sync = on: each of M INSERTs returns only once its
#    record is committed; the postmaster and all its children are killed
#    with SIGKILL, the spill directory is removed, and after the restart
#    all M records are there; once with synchronous_commit = on, once with
#    these clusters' synchronous_commit = off (README: such a record
#    "survives a crash of the whole server", without a condition);
#  - a queue of 64 records (utilix.access_log_queue_size) with
#    overflow = spill and the writer parked: 200 statements, the queue
#    fills, the rest is spilled, nothing is lost; the parked writer ends at
#    once on pg_terminate_backend() (as a fast shutdown needs), and once a
#    writer runs again all 200 records are in the log exactly once.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

ac_dir=$(mktemp -d /tmp/utilix-alog-crash.XXXXXX)
cleanup() {
    UTILIX_DIR=$ac_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$ac_dir" || bail "initdb failed"
# a writer with nothing to do stays (so that parking it below is deterministic)
cluster_conf "utilix.access_log_writer_idle = '1h'"
LOG=$UTILIX_DIR/server.log
DATA=$UTILIX_DIR/data
DB=alogdb
APP=alog_app
export PGOPTIONS="-c client_min_messages=warning"

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
# app_reads TOKEN N: one session of the application role, N reads of the protected table
app_reads() {
    {
        echo "SELECT utilix.set_context('$1', false) \\g /dev/null"
        for i in $(seq 1 "$2"); do echo "SELECT count(*) FROM m WHERE id = $(( (i % 5) + 1 )) \\g /dev/null"; done
    } | psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" 2>&1
}
# app_inserts TOKEN FROM TO: one session, one INSERT per id
app_inserts() {
    {
        echo "SELECT utilix.set_context('$1', false) \\g /dev/null"
        for i in $(seq "$2" "$3"); do echo "INSERT INTO m (tenant_id, id, v) VALUES ($TENANT, $i, 'row $i');"; done
    } | psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" 2>&1
}
token() {   # token APP_USER
    q "SELECT utilix.issue_context($TENANT, '$1', '1 hour', '{read,write}')"
}
status() {  # status COLUMNS: from utilix.access_log_status, in $DB
    q "SELECT $1 FROM utilix.access_log_status"
}
log_count() {   # log_count APP_USER [KIND]: records of that user (and kind)
    q "SELECT count(*) FROM utilix.access_log WHERE app_user = '$1'${2:+ AND kind = '$2'}"
}
set_delay() {   # set_delay VALUE|default: ALTER SYSTEM and reload
    if [ "$1" == default ]; then
        q "ALTER SYSTEM RESET utilix.access_log_writer_delay" >/dev/null
    else
        q "ALTER SYSTEM SET utilix.access_log_writer_delay = '$1'" >/dev/null
    fi
    q "SELECT pg_reload_conf()" >/dev/null
}
# park_writer DELAY: make sure the writer of $DB runs, then give it DELAY to
# gather a batch: once it has looked and found nothing, it sleeps that long
# (not woken by new records), and records stay in the queue.
park_writer() {
    local pid
    pid=$(status "coalesce(writer_pid, 0)")
    if [ "$pid" == 0 ]; then
        app_reads "$TOK_PRIMER" 1 >/dev/null
        q "SELECT utilix.access_log_flush(10000)" >/dev/null
        pid=$(status "coalesce(writer_pid, 0)")
    fi
    set_delay "$1"
    sleep 1.5
    printf '%s' "$pid"
}
wait_log() {    # wait_log SECONDS REGEX: until the server log matches
    local end=$((SECONDS + $1))
    until grep -qE -- "$2" "$LOG" 2>/dev/null; do
        [ $SECONDS -ge $end ] && return 1
        sleep 0.2
    done
}
spill_lines() {  # the postmaster's "written to the spill directory" lines so far
    grep -c 'queued access log records written to the spill directory' "$LOG"
}

cluster_start || bail "the server does not start: $(tail -5 "$LOG")"
psql -X -q -d postgres -c "CREATE DATABASE $DB" || bail "createdb failed"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE EXTENSION utilix;
CREATE ROLE $APP LOGIN;
CREATE TABLE m (tenant_id bigint NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('m');
GRANT SELECT, INSERT ON m TO $APP;
SQL
) || bail "set-up failed: $out"
TENANT=$(q "SELECT utilix.create_tenant('acme', 'JP')")
[[ "$TENANT" =~ ^[0-9]+$ ]] || bail "create_tenant: $TENANT"
DBOID=$(q "SELECT oid FROM pg_database WHERE datname = current_database()")
SPILL_DIR=$DATA/pg_utilix_access_log/$DBOID
TOK_PRIMER=$(token u-primer)
out=$(app_inserts "$(token u-setup)" 1 5) || bail "the application role cannot insert: $out"
is "$(q "SELECT utilix.access_log_flush(10000)")|$(log_count u-setup insert)" "t|5" \
    "set-up: five INSERTs by the application role are in the access log"

# ------------------------------------------------------------------ 1. a backend killed with SIGKILL
N=50
wpid=$(park_writer 600s)
[ "$wpid" != 0 ] || bail "no access log writer runs in $DB"
diag "writer $wpid parked with utilix.access_log_writer_delay = 600s"
out=$(app_reads "$(token u-crash)" $N) || bail "reads failed: $out"
is "$out" "" "$N reads of the protected table by the application role, no error"
read -r here_q all_q < <(status "queued_here, queued_all" | tr '|' ' ')
[ "${here_q:-0}" -ge $N ] && ok "access_log_status: the $N records wait in the queue (queued_here = $here_q)" ||
    not_ok "access_log_status: the $N records wait in the queue" "queued_here = '$here_q'"
is "$(log_count u-crash)" "0" "none of them is in utilix.access_log yet"

victim_log=$UTILIX_DIR/victim.log
PGAPPNAME=alog_victim psql -X -q -d "$DB" -c "SELECT pg_sleep(60)" >"$victim_log" 2>&1 &
victim=$!
vpid=""
for _ in $(seq 1 40); do
    vpid=$(q "SELECT pid FROM pg_stat_activity WHERE application_name = 'alog_victim' AND wait_event = 'PgSleep'")
    [ -n "$vpid" ] && break
    sleep 0.25
done
[[ "$vpid" =~ ^[0-9]+$ ]] || bail "no victim backend: $vpid"
before=$(spill_lines)
kill -9 "$vpid"
diag "killed backend $vpid (SIGKILL) with $all_q records queued"
wait "$victim" 2>/dev/null
wait_log 30 'all server processes terminated; reinitializing' || bail "the postmaster did not reinitialise: $(tail -5 "$LOG")"
server_ready 60 || bail "the server did not come back after the crash: $(tail -5 "$LOG")"
like "$(cat "$LOG")" "server process \\(PID $vpid\\) was terminated by signal 9" "the postmaster saw backend $vpid killed by SIGKILL"
is "$(spill_lines)" "$((before + 1))" "the postmaster logged once that it wrote the queued records to the spill directory"
is "$(grep 'queued access log records written to the spill directory' "$LOG" | tail -1 | sed -E 's/.*utilix: ([0-9]+) queued .*, ([0-9]+) could not be kept.*/\1 \2/')" \
    "$all_q 0" "it kept every queued record ($all_q), none broken"
set_delay default
got=$(wait_for 30 "SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-crash'" "$N")
is "$got" "$N" "after the restart the $N records reach the access log"
is "$(q "SELECT count(*), count(DISTINCT record_id), min(kind), max(kind), min(outcome), max(outcome), min(tenant_id) = $TENANT AND max(tenant_id) = $TENANT,
                bool_and(session_role = '$APP'), bool_and(tables = '[{\"read\": 1, \"table\": \"public.m\", \"deleted\": 0, \"updated\": 0, \"inserted\": 0}]')
           FROM utilix.access_log WHERE app_user = 'u-crash'")" \
    "$N|$N|select|select|ok|ok|t|t|t" "each once: kind select, outcome ok, tenant acme, role $APP, one row read of public.m"
like "$(cat "$LOG")" "utilix: loaded [0-9]+ access log records from a spill file" "a writer loaded the spill file"
is "$(find "$SPILL_DIR" -name '*.spill*' 2>/dev/null | wc -l)" "0" "no spill file is left"
is "$(status "loaded >= $N, lost")" "t|0" "access_log_status: loaded counts them, nothing lost"
is "$(q "SELECT bool_and(ok) AND count(*) > 0 FROM utilix.verify_access_log()")" "t" "verify_access_log(): every chain is intact"

# ------------------------------------------------------------------ 2. pg_ctl stop -m immediate
wpid=$(park_writer 600s)
diag "writer $wpid parked again"
out=$(app_reads "$(token u-stop)" $N) || bail "reads failed: $out"
is "$out" "" "$N more reads, no error"
read -r here_q all_q < <(status "queued_here, queued_all" | tr '|' ' ')
[ "${here_q:-0}" -ge $N ] && ok "they wait in the queue (queued_here = $here_q)" ||
    not_ok "they wait in the queue" "queued_here = '$here_q'"
is "$(log_count u-stop)" "0" "none of them is in the log"
# the next start reads the default delay
q "ALTER SYSTEM RESET utilix.access_log_writer_delay" >/dev/null
before=$(spill_lines)
t0=$SECONDS
as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w -t 30 stop >/dev/null 2>&1
rc=$?
is "$rc:$([ -f "$DATA/postmaster.pid" ] && echo pid || echo nopid)" "0:nopid" "pg_ctl stop -m immediate stops the server ($((SECONDS - t0)) s)"
is "$(spill_lines)" "$((before + 1))" "on the way down the postmaster wrote the queued records to the spill directory"
is "$(grep 'queued access log records written to the spill directory' "$LOG" | tail -1 | sed -E 's/.*utilix: ([0-9]+) queued .*, ([0-9]+) could not be kept.*/\1 \2/')" \
    "$all_q 0" "all $all_q of them, none broken"
n_files=$(find "$SPILL_DIR" -maxdepth 1 -name '*.spill' | wc -l)
[ "$n_files" -ge 1 ] && ok "a spill file waits in pg_utilix_access_log/$DBOID ($n_files)" || not_ok "a spill file waits in pg_utilix_access_log/$DBOID"
cluster_start || bail "the server does not start again: $(tail -5 "$LOG")"
got=$(wait_for 30 "SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-stop'" "$N")
is "$got" "$N" "after the start the $N records are in the log"
is "$(q "SELECT count(*), count(DISTINCT record_id), min(kind), max(kind), bool_and(tenant_id = $TENANT) FROM utilix.access_log WHERE app_user = 'u-stop'")" \
    "$N|$N|select|select|t" "exactly once each, kind select, tenant acme"
is "$(log_count u-crash)" "$N" "the records of the crash are still there once each"
sleep 1
is "$(log_count u-stop)" "$N" "and nothing is loaded twice a second later"
is "$(q "SELECT bool_and(ok) FROM utilix.verify_access_log()")" "t" "verify_access_log(): every chain is intact"

# ------------------------------------------------------------------ 3. synchronous records, then SIGKILL of everything
M=30
# kill_server: SIGKILL to the postmaster first (so that it cannot react),
# then to each of its children; waits until every one of them is gone
kill_server() {
    local pm kids p alive=0 end=$((SECONDS + 20))
    pm=$(head -1 "$DATA/postmaster.pid")
    kids=$(pgrep -P "$pm" | tr '\n' ' ')
    kill -9 "$pm" $kids
    for p in $pm $kids; do
        while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.1; done
    done
    for p in $pm $kids; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    is "$alive" "0" "the postmaster and its $(echo $kids | wc -w) children are killed with SIGKILL"
}
# sync_round USER FROM: M synchronous INSERTs (ids FROM..), SIGKILL of the
# whole server, the spill directory removed, a start; then the checks
sync_round() {
    local user=$1 from=$2 out rc t0 before
    is "$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT current_setting('utilix.access_log_sync') || ' ' || current_setting('synchronous_commit')")" \
        "on $3" "the application role runs with utilix.access_log_sync = on (synchronous_commit = $3)"
    t0=$SECONDS
    out=$(app_inserts "$(token "$user")" "$from" $((from + M - 1))); rc=$?
    is "$rc|$out" "0|" "$M INSERTs, each acknowledged ($((SECONDS - t0)) s)"
    is "$(log_count "$user" insert)" "$M" "when they have returned, their $M records are in the log (no flush)"
    kill_server
    before=$(spill_lines)
    rm -rf "${DATA:?}/pg_utilix_access_log"
    # pg_ctl warns about the stale postmaster.pid ("another server might be running")
    cluster_start 2>"$UTILIX_DIR/pg_ctl.err" || bail "the server does not start after SIGKILL: $(cat "$UTILIX_DIR/pg_ctl.err"; tail -5 "$LOG")"
    is "$(spill_lines)" "$before" "nothing was spilled (the postmaster had no chance)"
    is "$(log_count "$user" insert)" "$M" "after the restart all $M synchronous records are in the log, without any spill file (synchronous_commit = $3)"
    is "$(q "SELECT count(*) = count(DISTINCT record_id) AND bool_and(tables->0->>'inserted' = '1') FROM utilix.access_log WHERE app_user = '$user'")" \
        "t" "each record once, one row inserted each"
    is "$(q "SELECT bool_and(ok) FROM utilix.verify_access_log()")" "t" "verify_access_log(): every chain is intact"
}
q "ALTER ROLE $APP SET utilix.access_log_sync = on" >/dev/null
# (a) the server commits synchronously: the rows survive too
q "ALTER SYSTEM SET synchronous_commit = on" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
sync_round u-sync 101 on
is "$(q "SELECT count(*) FROM m WHERE id BETWEEN 101 AND $((100 + M))")" "$M" "and so are the $M rows"
# (b) synchronous_commit = off (these clusters' own setting): a transaction
# may be lost in a crash, but README says a statement under access_log_sync
# "returns only after the writer has committed its record (and so it
# survives a crash of the whole server)"
q "ALTER SYSTEM RESET synchronous_commit" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
sync_round u-sync-async 201 off
diag "rows of (b) that survived: $(q "SELECT count(*) FROM m WHERE id BETWEEN 201 AND $((200 + M))") of $M (asynchronous commit may lose them)"
q "ALTER ROLE $APP RESET utilix.access_log_sync" >/dev/null

# ------------------------------------------------------------------ 4. a small queue overflows into spill files
K=200
q "ALTER SYSTEM SET utilix.access_log_queue_size = 64" >/dev/null
q "ALTER SYSTEM SET utilix.access_log_overflow = 'spill'" >/dev/null
t0=$SECONDS
cluster_stop
is "$([ -f "$DATA/postmaster.pid" ] && echo running || echo stopped)" "stopped" "pg_ctl stop -m fast ($((SECONDS - t0)) s)"
cluster_start || bail "the server does not start with a queue of 64: $(tail -5 "$LOG")"
is "$(status "queue_size, queued_all, spilled, lost")" "64|0|0|0" "the queue holds 64 records, empty, nothing spilled or lost"
# parked for 30 s only: a parked writer wakes for nothing else
wpid=$(park_writer 30s)
[ "$wpid" != 0 ] || bail "no writer"
primer_spilled=$(status spilled)
out=$(app_reads "$(token u-over)" $K) || bail "reads failed: $out"
is "$out" "" "$K reads with the writer parked, no error"
read -r qa sp lo < <(status "queued_all, spilled, lost" | tr '|' ' ')
is "$qa" "64" "the queue is full (64)"
is "$((sp - primer_spilled))|$lo" "$((K - 64))|0" "access_log_status: the other $((K - 64)) records are spilled, none lost"
is "$(log_count u-over)" "0" "none of them is in the log yet"
n_files=$(find "$SPILL_DIR" -maxdepth 1 -name '*.spill' | wc -l)
[ "$n_files" -ge 1 ] && ok "spill files wait in pg_utilix_access_log/$DBOID" || not_ok "spill files wait in pg_utilix_access_log/$DBOID"
set_delay default
# a writer waiting for its batch to gather still ends at once when told to
# (as it must for a fast shutdown); the main worker starts another one
is "$(q "SELECT pg_terminate_backend($wpid, 5000)" 2>&1)" "t" "pg_terminate_backend() ends the parked writer within 5 s"
got=$(wait_for 60 "SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-over' AND kind = 'select'" "$K")
is "$got" "$K" "once the writer runs again all $K records are in the log"
sleep 1
is "$(q "SELECT count(*), count(DISTINCT record_id), bool_and(tenant_id = $TENANT) FROM utilix.access_log WHERE app_user = 'u-over' AND kind = 'select'")" \
    "$K|$K|t" "exactly once each"
is "$(status "queued_here, lost")" "0|0" "the queue is empty, nothing lost"
is "$(find "$SPILL_DIR" -maxdepth 1 -name '*.spill*' | wc -l)" "0" "no spill file is left"
is "$(q "SELECT bool_and(ok) FROM utilix.verify_access_log()")" "t" "verify_access_log(): every chain is intact"
is "$(grep 'could not be kept' "$LOG" | grep -vc ', 0 could not be kept')|$(grep -cE 'PANIC|TRAP:|spill file .* is not an access log spill' "$LOG")" "0|0" \
    "the server log has no record that could not be kept, no PANIC, no assertion failure, no rejected spill file"

# ------------------------------------------------------------------ events of work done: on commit only
# a rolled-back transaction that rotated a key or recorded a purge leaves no
# record of work that did not happen; a committed one does, once; a
# subtransaction rolled back inside a committed one drops its own events
q "BEGIN; SELECT utilix._log_event('purge', NULL, 'ok', 'crash-oc rolled back', on_commit => true); ROLLBACK;" >/dev/null
q "BEGIN; SELECT utilix._log_event('purge', NULL, 'ok', 'crash-oc committed', on_commit => true);
   SAVEPOINT s; SELECT utilix._log_event('purge', NULL, 'ok', 'crash-oc savepoint rolled back', on_commit => true);
   ROLLBACK TO SAVEPOINT s; COMMIT;" >/dev/null
q "BEGIN; SELECT utilix._log_event('admin', NULL, 'ok', 'crash-oc attempt'); ROLLBACK;" >/dev/null
is "$(q "SELECT utilix.access_log_flush(10000)")" "t" "the events are written"
is "$(q "SELECT string_agg(detail, ',' ORDER BY id) FROM utilix.access_log WHERE detail LIKE 'crash-oc%'")" \
    "crash-oc committed,crash-oc attempt" \
    "an on-commit event is kept only when its transaction (and savepoint) commits; an attempt is kept through rollback"

# ------------------------------------------------------------------ security events on NOTIFY
# a session listening on utilix_security hears a key event once the writer
# has committed it: psql prints the notification after its next statement
out=$(psql -X -q -A -t -d "$DB" 2>&1 <<'SQL'
LISTEN utilix_security;
SELECT utilix._log_event('key', NULL, 'ok', 'crash-notify');
SELECT utilix.access_log_flush(10000);
SELECT pg_sleep(0.2);
SELECT 1;
SQL
)
like "$out" 'Asynchronous notification "utilix_security" with payload "\{"id":[0-9]+,"kind":"key","outcome":"ok"\}"' \
    "a key event reaches LISTEN utilix_security, with id, kind and outcome only (anyone may listen: no tenant)"

# ------------------------------------------------------------------ ids follow writing, not statement start
# a long statement begins first and is written last; a short one begins and
# ends meanwhile; verify since the short one's start still finds an intact chain
tok_il=$(token u-interleave)
{ echo "SELECT utilix.set_context('$tok_il', false) \\g /dev/null"; echo "SELECT count(*), pg_sleep(2) FROM m \\g /dev/null"; } |
    psql -X -q -A -t -U "$APP" -d "$DB" >/dev/null 2>&1 &
il_pid=$!
sleep 0.7
since=$(q "SELECT now()")
out=$(app_reads "$tok_il" 2)
wait $il_pid
app_reads "$tok_il" 1 >/dev/null
is "$(q "SELECT utilix.access_log_flush(10000)")" "t" "the interleaved statements are written"
is "$(q "SELECT (SELECT max(id) FROM utilix.access_log WHERE app_user = 'u-interleave' AND at < '$since')
              > (SELECT min(id) FROM utilix.access_log WHERE app_user = 'u-interleave' AND at >= '$since')")" "t" \
    "the long statement began first but has a higher id than the short ones"
is "$(q "SELECT ok FROM utilix.verify_access_log($TENANT, '$since')")" "t" \
    "verify_access_log(since) is not fooled: it follows ids from the first statement begun since"

# ------------------------------------------------------------------ drops and lost chain heads
q "CREATE SCHEMA gone; CREATE TABLE gone.t (tenant_id bigint NOT NULL, id int, PRIMARY KEY (tenant_id, id));
   SELECT utilix.protect('gone.t');" >/dev/null
q "DROP SCHEMA gone CASCADE" >/dev/null
is "$(q "SELECT utilix.access_log_flush(10000)")|$(q "SELECT count(*) FROM utilix.access_log WHERE kind = 'admin' AND detail = 'protected table gone.t dropped'")" "t|1" \
    "a protected table dropped with its schema (CASCADE) is recorded"
q "BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM utilix.access_log_chain WHERE tenant_id = 0; COMMIT;" >/dev/null
is "$(q "SELECT problem FROM utilix.verify_access_log() WHERE tenant_id IS NULL")" "the chain head of this tenant is missing" \
    "a deleted chain head is found: verify walks every tenant with records, not only those with a head"

# ------------------------------------------------------------------ retention of the log
# days older than utilix.access_log_retention are dropped, after their
# anchors are kept, and the drop is itself a purge record; chains still verify
q "SELECT utilix._access_log_partitions(now() - interval '12 days', now() - interval '10 days')" >/dev/null
is "$(q "SELECT count(*) FROM pg_inherits WHERE inhparent = 'utilix.access_log'::regclass
         AND inhrelid::regclass::text ~ ('access_log_' || to_char((now() - interval '11 days') AT TIME ZONE 'UTC', 'YYYYMMDD'))")" "1" \
    "a day partition eleven days back exists"
q "ALTER SYSTEM SET utilix.access_log_retention = 5" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null; sleep 0.5
dropped=$(q "SELECT utilix.run_access_log_maintenance()")
is "$dropped" "3" "run_access_log_maintenance() drops the three days older than 5 days"
is "$(q "SELECT utilix.access_log_flush(10000)")|$(q "SELECT count(*) FROM utilix.access_log WHERE kind = 'purge' AND detail ~ '^access log day access_log_[0-9]{8} dropped'")" "t|3" \
    "each dropped day is recorded as a purge"
is "$(q "SELECT bool_and(ok) FROM utilix.verify_access_log() WHERE tenant_id IS NOT NULL")" "t" "the chains still verify after the drop (tenant 0's head was deleted above)"
like "$(q "DROP TABLE utilix.access_log_$(date -u +%Y%m%d)" 2>&1)" "cannot drop table|days of the access log are dropped only" "a day of the log cannot be dropped by hand"
q "ALTER SYSTEM RESET utilix.access_log_retention" >/dev/null; q "SELECT pg_reload_conf()" >/dev/null

done_testing
