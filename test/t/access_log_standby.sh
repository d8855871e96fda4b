#!/usr/bin/env bash
# The access log of a hot standby, on a primary and a streaming replica of
# their own (pg_basebackup -R; one master key file for both):
#  - the application role reads a protected table on the standby with a
#    token issued on the primary, without error; the standby's writer cannot
#    insert, so it appends the records to the standby's spill directory;
#  - utilix.access_log_spill() on the standby hands them out (base64 through
#    psql, as README shows); a second call has no record left (the 16-byte
#    header and the 32-byte seal only), the files moved to exported/;
#  - utilix.load_access_log_spill() on the primary: refused on the standby
#    (25006), for a changed byte and for a seal not made with the master key
#    (XX001, nothing loaded); otherwise it
#    returns the count, and the primary's writer puts exactly those records
#    in utilix.access_log (user, tenant, role, application name of the
#    standby session); loading the same bytes again adds nothing; every
#    chain verifies;
#  - one session loading the same new bytes twice in a row (both land in
#    that backend's spill file, so the writer meets each record twice in
#    one batch): still each record once.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

pr_dir=$(mktemp -d /tmp/utilix-alog-primary.XXXXXX)
sb_dir=$(mktemp -d /tmp/utilix-alog-standby.XXXXXX)
cleanup() {
    [ -f "$sb_dir/data/postmaster.pid" ] &&
        as_pg "$PGBIN/pg_ctl" -D "$sb_dir/data" -m fast -w -t 60 stop >/dev/null 2>&1
    [ -z "${UTILIX_KEEP:-}" ] && rm -rf "$sb_dir"
    UTILIX_DIR=$pr_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$pr_dir" || bail "initdb failed"
# a streaming replica: wal_level replica and wal senders (PostgreSQL 15's
# defaults, set anyway); initdb --auth=trust lets local replication in
cluster_conf "wal_level = replica"
cluster_conf "max_wal_senders = 4"
cluster_conf "hot_standby = on"
PLOG=$UTILIX_DIR/server.log
SLOG=$sb_dir/server.log
PPORT=$PGPORT
DB=alogdb
APP=alog_app
N=40
export PGOPTIONS="-c client_min_messages=warning"

qp() {      # qp SQL: on the primary, as the superuser
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$pr_dir" -p "$PPORT" -d "$DB" -c "$1" 2>&1
}
qs() {      # qs SQL: on the standby, as the superuser
    psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$sb_dir" -p "$SPORT" -d "$DB" -c "$1" 2>&1
}
qsv() {     # qsv SQL: on the standby, verbose errors (SQLSTATE shown)
    psql -X -q -A -t -v VERBOSITY=verbose -h "$sb_dir" -p "$SPORT" -d "$DB" -c "$1" 2>&1
}
# wait_for SECONDS FN SQL WANT: polls (every 0.25 s) until FN SQL prints WANT; prints the last value
wait_for() {
    local got="" end=$((SECONDS + $1))
    while :; do
        got=$("$2" "$3")
        [ "$got" == "$4" ] && { printf '%s' "$got"; return 0; }
        [ $SECONDS -ge $end ] && { printf '%s' "$got"; return 1; }
        sleep 0.25
    done
}
# load_file FILE: on the primary, load_access_log_spill() of the base64 in FILE (verbose errors)
load_file() {
    psql -X -q -A -t -v VERBOSITY=verbose -h "$pr_dir" -p "$PPORT" -d "$DB" 2>&1 <<SQL
SELECT utilix.load_access_log_spill(pg_catalog.decode('$(cat "$1")', 'base64'));
SQL
}
loads_logged() {    # "loaded ... from a spill file" lines in the primary's log
    grep -c 'utilix: loaded [0-9]* access log records from a spill file' "$PLOG"
}

cluster_start || bail "the primary does not start: $(tail -5 "$PLOG")"
psql -X -q -d postgres -c "CREATE DATABASE $DB" || bail "createdb failed"
out=$(qp "
CREATE EXTENSION utilix;
CREATE ROLE $APP LOGIN;
CREATE TABLE m (tenant_id bigint NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('m');
GRANT SELECT, INSERT ON m TO $APP;") || bail "set-up failed: $out"
TENANT=$(qp "SELECT utilix.create_tenant('acme', 'JP')")
OTHER=$(qp "SELECT utilix.create_tenant('globex', 'JP')")
[[ "$TENANT$OTHER" =~ ^[0-9]+$ ]] || bail "create_tenant: $TENANT $OTHER"
TOK=$(qp "SELECT utilix.issue_context($TENANT, 'u-standby', '1 hour', '{read,write}')")
TOK_OTHER=$(qp "SELECT utilix.issue_context($OTHER, 'u-other', '1 hour', '{read,write}')")
out=$({
    echo "SELECT utilix.set_context('$TOK', false) \\g /dev/null"
    echo "INSERT INTO m (tenant_id, id, v) SELECT $TENANT, g, 'a' || g FROM generate_series(1, 5) g;"
    echo "SELECT utilix.set_context('$TOK_OTHER', false) \\g /dev/null"
    echo "INSERT INTO m (tenant_id, id, v) SELECT $OTHER, g, 'g' || g FROM generate_series(1, 3) g;"
} | psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$pr_dir" -p "$PPORT" -U "$APP" -d "$DB" 2>&1) || bail "inserts failed: $out"
is "$(qp "SELECT utilix.access_log_flush(10000)")|$(qp "SELECT count(*) FROM utilix.access_log WHERE kind = 'insert'")" "t|2" \
    "set-up on the primary: two INSERT records in its access log"
before_primary=$(qp "SELECT count(*) FROM utilix.access_log")

# ------------------------------------------------------------------ the standby
chmod 755 "$sb_dir"
[ "$(id -u)" -eq 0 ] && chown postgres "$sb_dir"
out=$(as_pg "$PGBIN/pg_basebackup" -h "$pr_dir" -p "$PPORT" -U postgres -D "$sb_dir/data" -R -X stream -c fast 2>&1) ||
    bail "pg_basebackup failed: $out"
SPORT=$(free_port)
while [ "$SPORT" == "$PPORT" ]; do SPORT=$(free_port); done
# the copied postgresql.conf names the primary's key file: the same key
cat >> "$sb_dir/data/postgresql.conf" <<CONF
# --- the standby ---
port = $SPORT
unix_socket_directories = '$sb_dir'
CONF
ok "pg_basebackup -R of the primary"
as_pg "$PGBIN/pg_ctl" -D "$sb_dir/data" -l "$SLOG" -w -t 60 start >/dev/null || bail "the standby does not start: $(tail -5 "$SLOG")"
is "$(qs "SELECT pg_is_in_recovery()")" "t" "the standby runs, in recovery"
is "$(qs "SELECT current_setting('shared_preload_libraries') || ' ' || (current_setting('utilix.master_key_file') = '$pr_dir/master.key')::text")" \
    "utilix true" "it preloads utilix with the primary's master key file"
got=$(wait_for 30 qs "SELECT count(*) FROM utilix.tenant WHERE id IN ($TENANT, $OTHER)" 2)
is "$got" "2" "the tenants made on the primary are on the standby"

# ------------------------------------------------------------------ reads on the standby
out=$({
    echo "SELECT utilix.set_context('$TOK', false) \\g /dev/null"
    echo "SELECT count(*) FROM m;"
    for i in $(seq 2 "$N"); do echo "SELECT count(*) FROM m WHERE id = $(( (i % 5) + 1 )) \\g /dev/null"; done
} | PGAPPNAME=standby-reader psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$sb_dir" -p "$SPORT" -U "$APP" -d "$DB" 2>&1); rc=$?
is "$rc|$out" "0|5" "$N reads on the standby with a token issued on the primary: no error, the tenant's 5 rows"
is "$(qs "SELECT utilix.access_log_flush(10000)")" "t" "access_log_flush() on the standby: the writer took every queued record"
read -r qh lost < <(qs "SELECT queued_here, lost FROM utilix.access_log_status" | tr '|' ' ')
is "$qh|$lost" "0|0" "access_log_status on the standby: nothing queued, nothing lost"
sb_oid=$(qs "SELECT oid FROM pg_database WHERE datname = current_database()")
n_files=$(find "$sb_dir/data/pg_utilix_access_log/$sb_oid" -maxdepth 1 -name '*.spill' 2>/dev/null | wc -l)
[ "$n_files" -ge 1 ] && ok "the standby's writer appended them to its spill directory ($n_files file(s))" ||
    not_ok "the standby's writer appended them to its spill directory" "$(ls -la "$sb_dir/data/pg_utilix_access_log" 2>&1)"
diag "standby spill directory: $(find "$sb_dir/data/pg_utilix_access_log/$sb_oid" -maxdepth 1 -type f -printf '%f %s bytes; ')"
# (not with access_log_spill() as the argument: that would hand the records out)
like "$(qsv "SELECT utilix.load_access_log_spill('\\x00'::bytea)")" "25006" \
    "load_access_log_spill() on the standby is refused (25006)"

# ------------------------------------------------------------------ the spill, handed out once
spill=$sb_dir/spill.b64
qs "SELECT encode(utilix.access_log_spill(), 'base64')" > "$spill" || bail "access_log_spill() failed: $(cat "$spill")"
len=$(base64 -d < "$spill" | wc -c)
[[ "$len" =~ ^[0-9]+$ ]] || bail "length of the spill: $len"
rec_size=$(( (len - 48) / N ))
is "$(( (len - 48) % N ))|$([ "$rec_size" -gt 1000 ] && echo big)" "0|big" \
    "access_log_spill() returns the 16-byte header, $N records and a 32-byte seal ($len bytes, $rec_size per record)"
is "$(qs "SELECT length(utilix.access_log_spill())")" "48" "a second access_log_spill() has no record left: header and seal only"
is "$(find "$sb_dir/data/pg_utilix_access_log/$sb_oid" -maxdepth 1 -name '*.spill' | wc -l)|$(find "$sb_dir/data/pg_utilix_access_log/$sb_oid/exported" -type f | wc -l)" \
    "0|$n_files" "the standby's spill files moved to exported/"

# ------------------------------------------------------------------ loading on the primary
is "$(qp "SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-standby' AND kind = 'select'")" "0" \
    "the primary's log has none of the standby's reads yet"
# a damaged record: one byte changed in the first record
like "$(psql -X -q -A -t -v VERBOSITY=verbose -h "$pr_dir" -p "$PPORT" -d "$DB" 2>&1 <<SQL
SELECT utilix.load_access_log_spill(set_byte(b, 100, (get_byte(b, 100) + 1) % 256))
  FROM (SELECT pg_catalog.decode('$(cat "$spill")', 'base64') AS b) s;
SQL
)" "XX001.*seal does not verify" "a spill with a changed byte is refused (XX001): its seal does not verify"
# a forged spill: records with valid checksums but no seal made with the master key
like "$(psql -X -q -A -t -v VERBOSITY=verbose -h "$pr_dir" -p "$PPORT" -d "$DB" 2>&1 <<SQL
SELECT utilix.load_access_log_spill(substr(b, 1, length(b) - 32) || pg_catalog.sha256(substr(b, 1, length(b) - 32)))
  FROM (SELECT pg_catalog.decode('$(cat "$spill")', 'base64') AS b) s;
SQL
)" "XX001.*seal does not verify" "a spill resealed without the master key is refused (XX001)"
pr_oid=$(qp "SELECT oid FROM pg_database WHERE datname = current_database()")
is "$(find "$pr_dir/data/pg_utilix_access_log/$pr_oid" -name '*.spill*' 2>/dev/null | wc -l)" "0" "and nothing of it was queued"
loads0=$(loads_logged)
is "$(load_file "$spill")" "$N" "load_access_log_spill() on the primary takes the $N records"
got=$(wait_for 30 qp "SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-standby' AND kind = 'select'" "$N")
is "$got" "$N" "the primary's writer puts the standby's $N reads in the log"
is "$(qp "SELECT count(*), count(DISTINCT record_id), bool_and(tenant_id = $TENANT), bool_and(session_role = '$APP'),
              bool_and(application_name = 'standby-reader'), bool_and(outcome = 'ok'), sum((tables->0->>'read')::int)
         FROM utilix.access_log WHERE app_user = 'u-standby' AND kind = 'select'")" \
    "$N|$N|t|t|t|t|$((5 + N - 1))" \
    "each once: tenant acme, role $APP, application standby-reader, outcome ok, $((5 + N - 1)) rows read in all"
is "$(qp "SELECT count(*) FROM utilix.access_log")" "$((before_primary + N))" "nothing else was added to the primary's log"
# the same bytes again
is "$(load_file "$spill")" "$N" "loading the same bytes again is accepted"
end=$((SECONDS + 30))
while [ "$(loads_logged)" -lt $((loads0 + 2)) ] && [ $SECONDS -lt $end ]; do sleep 0.25; done
is "$(loads_logged)" "$((loads0 + 2))" "the writer read the second copy too"
is "$(find "$pr_dir/data/pg_utilix_access_log/$pr_oid" -name '*.spill*' 2>/dev/null | wc -l)" "0" "no spill file is left on the primary"
is "$(qp "SELECT count(*), count(DISTINCT record_id) FROM utilix.access_log WHERE app_user = 'u-standby' AND kind = 'select'")" \
    "$N|$N" "and added nothing: still $N records, each once"
is "$(qp "SELECT count(*) FROM utilix.access_log")" "$((before_primary + N))" "the primary's log is unchanged"
is "$(qp "SELECT bool_and(ok), sum(records) FROM utilix.verify_access_log()")" "t|$((before_primary + N))" \
    "verify_access_log() on the primary: every chain intact, every record counted"
is "$(qp "SELECT lost FROM utilix.access_log_status")" "0" "nothing lost on the primary"
# the records reach the standby through replication
got=$(wait_for 30 qs "SELECT count(*) FROM utilix.access_log WHERE app_user = 'u-standby' AND kind = 'select'" "$N")
is "$got" "$N" "the standby sees them in its copy of the log"

# ------------------------------------------------------------------ one session loads the same bytes twice
# Both loads append to the spill file of that backend, so the writer finds
# the same records twice in one file, before either is in the log.
N2=10
out=$({
    echo "SELECT utilix.set_context('$TOK', false) \\g /dev/null"
    for i in $(seq 1 "$N2"); do echo "SELECT count(*) FROM m WHERE id = 1 \\g /dev/null"; done
} | PGAPPNAME=standby-reader-2 psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$sb_dir" -p "$SPORT" -U "$APP" -d "$DB" 2>&1); rc=$?
is "$rc|$out|$(qs "SELECT utilix.access_log_flush(10000)")" "0||t" "$N2 more reads on the standby"
spill2=$sb_dir/spill2.b64
qs "SELECT encode(utilix.access_log_spill(), 'base64')" > "$spill2" || bail "access_log_spill() failed: $(cat "$spill2")"
is "$(base64 -d < "$spill2" | wc -c)" "$((48 + N2 * rec_size))" "access_log_spill() hands out the $N2 new records"
loads0=$(loads_logged)
is "$(psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$pr_dir" -p "$PPORT" -d "$DB" 2>&1 <<SQL
SELECT utilix.load_access_log_spill(pg_catalog.decode('$(cat "$spill2")', 'base64'));
SELECT utilix.load_access_log_spill(pg_catalog.decode('$(cat "$spill2")', 'base64'));
SQL
)" "$N2
$N2" "one session on the primary loads them twice, at once"
end=$((SECONDS + 30))
while [ "$(loads_logged)" -le "$loads0" ] && [ $SECONDS -lt $end ]; do sleep 0.25; done
end=$((SECONDS + 10))
while [ "$(find "$pr_dir/data/pg_utilix_access_log/$pr_oid" -name '*.spill*' 2>/dev/null | wc -l)" != 0 ] && [ $SECONDS -lt $end ]; do sleep 0.25; done
sleep 0.5
is "$(qp "SELECT count(*), count(DISTINCT record_id) FROM utilix.access_log WHERE application_name = 'standby-reader-2' AND kind = 'select'")" \
    "$N2|$N2" "the $N2 records are in the log exactly once"
is "$(qp "SELECT bool_and(ok) FROM utilix.verify_access_log()")" "t" "verify_access_log(): every chain intact"
diag "$(grep 'utilix: loaded' "$PLOG" | tail -2 | sed -E 's/^.*(utilix: loaded)/\1/')"

is "$(grep -cE 'PANIC|TRAP:' "$PLOG" "$SLOG" | awk -F: '{s += $2} END {print s}')" "0" "no PANIC or assertion failure in either server log"

done_testing
