#!/usr/bin/env bash
# Benchmark: the cost of the access history (utilix.access_log), against no
# logging and against pgaudit.
#
# One protected table, items (tenant_id, id, payload, amount), primary key
# (tenant_id, id), 100,000 rows over 10 tenants.  The cluster preloads
# pgaudit next to utilix for this benchmark only: ALTER SYSTEM SET
# shared_preload_libraries = utilix, pgaudit and a restart; at the end
# (also when the benchmark fails) the database and roles are dropped, that
# line leaves postgresql.auto.conf and a restart gives the next benchmark
# the cluster run.sh made.  pgaudit logs to the server log
# (stderr, which pg_ctl sends to $UTILIX_DIR/server.log), as a Debian
# install does by default.
#
# Four login roles, identical but for their settings (ALTER ROLE ... SET by
# the superuser, since the settings are superuser-only; they apply at
# connect, so no reload is needed between runs):
#   off    utilix.access_log = off, pgaudit.log = none    (the baseline)
#   all    utilix.access_log = all  (the default)
#   pgaudit utilix.access_log = off, pgaudit.log = 'read, write'
#   sync   utilix.access_log = all, utilix.access_log_sync = on
# Each transaction sets a tenant context with SET LOCAL utilix.context = a
# literal token (one script per tenant, pgbench picks at random), then runs
# ONE statement on items, so that utilix and pgaudit (whose session logging
# logs every read and write statement, of any table) record exactly one
# statement per transaction:
#   lookup  SELECT payload FROM items WHERE id = :id (row level security adds
#           the tenant: one primary key probe)
#   insert  INSERT INTO items (payload, amount) VALUES (...) (tenant from the
#           context's default, id from an identity column)
#
# pgbench (-n -M prepared, BENCH_CLIENTS clients, BENCH_JOBS threads), one
# role per run (the settings differ per session, so the sides cannot share a
# run as bench_pgbench_mix does): a short warm-up, then BENCH_AL_ROUNDS
# (default 3) rounds of BENCH_AL_SECONDS (default 10) runs, each round
# running the four roles in a rotated order for lookups, then for inserts.
# Every round gives paired ratios (tps of a side / tps of off in that
# round); a row shows the median tps of each side and the median of the
# paired ratios.  After every run that logs (all, sync) the benchmark waits
# until the writer has caught up (utilix.access_log_flush(), and the loading
# of any records that overflowed the queue into spill files), so that no run
# pays for the writer's backlog of the one before.
#
# Goal: point lookups with the log at `all` >= 0.90 of the log `off`
# (pgaudit measured 0.74 to 0.84 on the issue's machine).  Everything else is
# reported: pgaudit and sync against off, for lookups and inserts; and the
# rate at which the writer committed records during the `all` runs, against
# the statement rate (about 1 when the writer keeps up).
#
# Sanity figures, printed, not asserted: after each `all` and `sync` run,
# whether access_log_flush() returned true, how long catching up took, and
# the records of the run in utilix.access_log against pgbench's
# transactions (records written, spilled, loaded and lost, from
# utilix.access_log_status, too); after each pgaudit run, the AUDIT lines it
# added to the server log against its transactions.
#
# Knobs: BENCH_AL_SECONDS, BENCH_AL_ROUNDS (above).  About 5 minutes with
# the defaults.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

db=bench_access_log
tenants=10
per_tenant=10000
secs=${BENCH_AL_SECONDS:-10}
rounds=${BENCH_AL_ROUNDS:-3}
sides=(off all pgaudit sync)
server_log=$UTILIX_DIR/server.log

psql_pg() { psql -X -q -v ON_ERROR_STOP=1 -A -t -d postgres "$@"; }

# --- pgaudit preloaded for this benchmark only ---------------------------------
restore() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    for side in "${sides[@]}"; do
        psql -X -q -d postgres -c "DROP ROLE IF EXISTS bench_al_$side" >/dev/null 2>&1 || true
    done
    cluster_stop
    # postgresql.auto.conf without our line (ALTER SYSTEM RESET needs a running server)
    as_pg sed -i '/^shared_preload_libraries = /d' "$UTILIX_DIR/data/postgresql.auto.conf" || true
    if cluster_start; then
        bench_log "access log: cluster restarted, shared_preload_libraries = $(psql_pg -c "SHOW shared_preload_libraries" 2>&1)"
    else
        echo "access_log: could not restart the cluster without pgaudit" >&2
    fi
}
trap restore EXIT
trap 'exit 143' TERM INT

bench_log "access log: preloading pgaudit next to utilix (restart)"
# a list: unquoted, or the two names would be one quoted element
psql_pg -c "ALTER SYSTEM SET shared_preload_libraries = utilix, pgaudit" >/dev/null
cluster_stop
cluster_start
[ "$(psql_pg -c "SHOW shared_preload_libraries")" = "utilix, pgaudit" ] ||
    bench_die "pgaudit is not preloaded (is postgresql-15-pgaudit installed? test/deps.sh installs it)"
bench_log "access log: $((tenants * per_tenant)) rows over $tenants tenants; loading"

bench_createdb "$db"
bench_psql "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pgaudit;
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_issuer') THEN
        CREATE ROLE bench_issuer NOLOGIN NOSUPERUSER;
    END IF;
END
\$\$;
GRANT utilix_issuer TO bench_issuer;
CREATE ROLE bench_al_off     LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE bench_al_all     LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE bench_al_pgaudit LOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE bench_al_sync    LOGIN NOSUPERUSER NOBYPASSRLS;
ALTER ROLE bench_al_off     SET utilix.access_log = off;
ALTER ROLE bench_al_off     SET pgaudit.log = 'none';
ALTER ROLE bench_al_all     SET utilix.access_log = 'all';
ALTER ROLE bench_al_all     SET utilix.access_log_sync = off;
ALTER ROLE bench_al_all     SET pgaudit.log = 'none';
ALTER ROLE bench_al_pgaudit SET utilix.access_log = off;
ALTER ROLE bench_al_pgaudit SET pgaudit.log = 'read, write';
ALTER ROLE bench_al_sync    SET utilix.access_log = 'all';
ALTER ROLE bench_al_sync    SET utilix.access_log_sync = on;
ALTER ROLE bench_al_sync    SET pgaudit.log = 'none';

CREATE TABLE tok (n int PRIMARY KEY, tenant_id bigint NOT NULL, token text);
INSERT INTO tok (n, tenant_id)
    SELECT g, utilix.create_tenant(format('al-%s', g)) FROM generate_series(1, $tenants) g;
GRANT SELECT, UPDATE ON tok TO bench_issuer;
SET ROLE bench_issuer;
UPDATE tok SET token = utilix.issue_context(tenant_id, 'clerk', interval '3 hours', ARRAY['read', 'write']);
RESET ROLE;

CREATE TABLE items (
    tenant_id bigint NOT NULL,
    id        bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 1000000),
    payload   text NOT NULL,
    amount    numeric(12, 2) NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
INSERT INTO items (tenant_id, id, payload, amount)
    SELECT t.tenant_id, i, md5(i::text) || md5(t.n::text), round((random() * 1000)::numeric, 2)
      FROM generate_series(1, $per_tenant) i CROSS JOIN tok t
     ORDER BY i, t.n;
SELECT utilix.protect('items');
VACUUM (FREEZE, ANALYZE) items, tok;
CREATE EXTENSION pg_prewarm;
SELECT pg_prewarm(c) FROM unnest(ARRAY['items', 'items_pkey']::regclass[]) c;
GRANT SELECT, INSERT ON items TO bench_al_off, bench_al_all, bench_al_pgaudit, bench_al_sync;
GRANT SELECT ON tok TO bench_al_off, bench_al_all, bench_al_pgaudit, bench_al_sync;
SQL

# sanity: each role sees one tenant's rows, and has the settings it should
for side in "${sides[@]}"; do
    got=$(bench_psql "$db" -U "bench_al_$side" -F ' ' <<SQL
BEGIN;
SELECT utilix.set_context(token) FROM tok WHERE n = 3 \\gset
SELECT count(*), current_setting('utilix.access_log'), current_setting('utilix.access_log_sync'),
       current_setting('pgaudit.log') FROM items;
COMMIT;
SQL
)
    echo "role bench_al_$side: rows visible, access_log, access_log_sync, pgaudit.log: $got"
    [ "${got%% *}" = "$per_tenant" ] || bench_die "bench_al_$side sees ${got%% *} rows, not $per_tenant"
done

# --- pgbench scripts -------------------------------------------------------------
s=$BENCH_TMP/access_log
mkdir -p "$s"
lookup_files=""
insert_files=""
for ((n = 1; n <= tenants; n++)); do
    token=$(bench_psql "$db" -c "SELECT token FROM tok WHERE n = $n")
    cat > "$s/lookup_$n.sql" <<SQL
\\set id random(1, $per_tenant)
BEGIN;
SET LOCAL utilix.context = '$token';
SELECT payload FROM items WHERE id = :id;
END;
SQL
    cat > "$s/insert_$n.sql" <<SQL
\\set a random(1, 100000)
BEGIN;
SET LOCAL utilix.context = '$token';
INSERT INTO items (payload, amount) VALUES (md5(:a::text), :a / 100.0);
END;
SQL
    lookup_files="$lookup_files $s/lookup_$n.sql"
    insert_files="$insert_files $s/insert_$n.sql"
done
chmod 755 "$s"
chmod 644 "$s"/*.sql

# al_pgbench ROLE SECONDS SCRIPTS: one pgbench run; prints "TPS TRANSACTIONS".
al_pgbench() {
    local user=$1 t=$2 scripts=$3 f args=() log=$s/pgbench.log
    for f in $scripts; do args+=(-f "$f"); done
    if ! pgbench -n -M prepared -c "$BENCH_CLIENTS" -j "$BENCH_JOBS" -T "$t" \
            -U "$user" "${args[@]}" "$db" > "$log" 2>&1 ||
       grep -qE '^number of failed transactions: [1-9]' "$log"; then
        echo "pgbench failed ($user):" >&2
        tail -20 "$log" >&2
        return 1
    fi
    awk '/^number of transactions actually processed: / { n = $6 }
         /^tps = / && t == "" { t = $3 }
         END { if (n == "" || t == "") exit 1; print t, n }' "$log" || {
        echo "no tps in pgbench output:" >&2; cat "$log" >&2; return 1; }
}

# counters: "WRITTEN SPILLED LOADED LOST LAST_ID" (LAST_ID: the highest record id)
counters() {
    bench_psql "$db" -F ' ' -c "SELECT s.written, s.spilled, s.loaded, s.lost,
                                       (SELECT coalesce(max(c.last_id), 0) FROM utilix.access_log_chain c)
                                  FROM utilix.access_log_status s"
}

# drain: waits until the writer has written every record queued so far
# (utilix.access_log_flush()) and has loaded every record spilled so far (the
# flush does not wait for those); prints "FLUSH_RESULT SECONDS".  A writer
# that left while idle loads spill files only when a new record starts it
# again: a read of the protected table by the superuser (db_role postgres,
# not counted in the sanity figures) starts it.  Gives up after 60 s.
drain() {
    local t0 fl i
    t0=$(date +%s%N)
    fl=$(bench_psql "$db" -c "SELECT utilix.access_log_flush(60000)")
    for ((i = 0; i < 120; i++)); do
        set -- $(counters)
        [ $(( $3 + $4 )) -ge "$2" ] && break
        (( i % 4 == 3 )) && bench_psql "$db" -c "SELECT count(*) FROM (SELECT 1 FROM items LIMIT 1) x" >/dev/null
        sleep 0.5
    done
    echo "$fl $(bench_calc "($(date +%s%N) - $t0) / 1e9")"
}

# measure WORKLOAD SIDE SECONDS: one run; prints "TPS WRITER_RECORDS_PER_S"
# (records the writer committed during the run, per second) and logs the
# sanity figures.
measure() {
    local w=$1 side=$2 t=$3 role=bench_al_$2 scripts kind out tps xacts c0 c1 c2 d recs lines size0 rate
    if [ "$w" = lookup ]; then scripts=$lookup_files; kind=select; else scripts=$insert_files; kind=insert; fi
    c0=$(counters)
    size0=$(stat -c %s "$server_log")
    out=$(al_pgbench "$role" "$t" "$scripts") || return 1
    c1=$(counters)
    read -r tps xacts <<< "$out"
    set -- $c0 $c1
    rate=$(bench_calc "($6 - $1) / $t")
    case $side in
    all|sync)
        d=$(drain)
        c2=$(counters)
        set -- $c0 $c2 $d
        recs=$(bench_psql "$db" -c "SELECT count(*) FROM utilix.access_log
                                     WHERE id > $5 AND db_role = '$role' AND kind = '$kind'")
        bench_log "    sanity $w/$side: flush() ${11}, drained in $(printf %.1f "${12}") s;" \
                  "$xacts transactions, $recs records of the run in utilix.access_log" \
                  "(written +$(( $6 - $1 )), spilled +$(( $7 - $2 )), loaded +$(( $8 - $3 )), lost +$(( $9 - $4 )))" >&2
        ;;
    pgaudit)
        lines=$(tail -c +"$((size0 + 1))" "$server_log" | grep -c 'AUDIT: SESSION' || true)
        bench_log "    sanity $w/$side: $xacts transactions, $lines AUDIT lines in the server log" >&2
        ;;
    esac
    echo "$tps $rate"
}

# --- measurements ------------------------------------------------------------------
bench_log "warm-up (2 s per side and workload)"
for w in lookup insert; do
    for side in "${sides[@]}"; do
        measure "$w" "$side" 2 >/dev/null 2>&1 || bench_die "warm-up $w/$side failed"
    done
done

declare -A tps rate
for ((r = 1; r <= rounds; r++)); do
    for w in lookup insert; do
        for ((k = 0; k < ${#sides[@]}; k++)); do
            side=${sides[$(( (k + r - 1) % ${#sides[@]} ))]}
            read -r t wr < <(measure "$w" "$side" "$secs") || bench_die "$w/$side run failed"
            [ -n "${wr:-}" ] || bench_die "$w/$side run failed"
            tps[$w,$side,$r]=$t
            rate[$w,$side,$r]=$wr
        done
        bench_log "  round $r $w: off ${tps[$w,off,$r]}, all ${tps[$w,all,$r]}," \
                  "pgaudit ${tps[$w,pgaudit,$r]}, sync ${tps[$w,sync,$r]} tps;" \
                  "writer ${rate[$w,all,$r]} records/s in the all run"
    done
done

med_tps() {  # WORKLOAD SIDE
    for ((r = 1; r <= rounds; r++)); do echo "${tps[$1,$2,$r]}"; done | bench_median
}
med_ratio() {  # WORKLOAD SIDE: median over rounds of tps(side) / tps(off)
    for ((r = 1; r <= rounds; r++)); do bench_calc "${tps[$1,$2,$r]} / ${tps[$1,off,$r]}"; done | bench_median
}
med_writer() {  # WORKLOAD: writer records/s in the all runs, and its ratio to the statement rate
    local r
    printf '%s ' "$(for ((r = 1; r <= rounds; r++)); do echo "${rate[$1,all,$r]}"; done | bench_median)"
    for ((r = 1; r <= rounds; r++)); do bench_calc "${rate[$1,all,$r]} / ${tps[$1,all,$r]}"; done | bench_median
}

for w in lookup insert; do
    [ "$w" = lookup ] && label="point lookup" || label="single-row insert"
    [ "$w" = lookup ] && goal=">= 0.90" || goal=report
    off=$(med_tps "$w" off)
    bench_record "access log: $label, log all vs off"              "$(med_tps "$w" all)"     tps "$off" "$(med_ratio "$w" all)"     "$goal"
    bench_record "access log: $label, pgaudit read,write vs off"   "$(med_tps "$w" pgaudit)" tps "$off" "$(med_ratio "$w" pgaudit)" report
    bench_record "access log: $label, log all + sync vs off"       "$(med_tps "$w" sync)"    tps "$off" "$(med_ratio "$w" sync)"    report
    read -r wrate wratio <<< "$(med_writer "$w")"
    bench_record "access log: writer records/s vs statements/s ($label, all)" "$wrate" "records/s" "$(med_tps "$w" all)" "$wratio" report
done
