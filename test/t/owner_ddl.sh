#!/usr/bin/env bash
# The table owner's DDL over protected tables, where one transaction is not
# enough to show it (test/pgtap/24_owner_attacks.sql has the rest):
#  - an expression index made while the table was empty publishes nothing
#    in pg_stats after tenants wrote rows and the owner ran ANALYZE in the
#    same session (the statistics target utilix sets must hold there too);
#  - a refused CREATE INDEX over the owner's function never ran it: no
#    notice of the spy function reaches the owner, nor the server log;
#  - a CHECK constraint refused on a filled table leaves nothing behind,
#    and the same DDL on an empty table goes through.
# Everything it creates (a database, three roles) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB=utilix_owner_ddl
OWNER=utilix_od_owner
APP=utilix_od_app
ISS=utilix_od_issuer

cleanup() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $OWNER" -c "DROP ROLE IF EXISTS $APP" \
        -c "DROP ROLE IF EXISTS $ISS" >/dev/null 2>&1
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql SQL: as the superuser in $DB, tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}

cleanup
psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
sql "CREATE EXTENSION utilix" >/dev/null
sql "CREATE ROLE $OWNER LOGIN; CREATE ROLE $APP LOGIN; CREATE ROLE $ISS IN ROLE utilix_issuer;
     GRANT CREATE ON SCHEMA public TO $OWNER" >/dev/null
ta=$(sql "SELECT utilix.create_tenant('od alpha')")
tok=$(sql "SET ROLE $ISS; SELECT utilix.issue_context($ta, 'alice')" | tail -1)
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$OWNER" -d "$DB" <<'SQL' 2>&1
CREATE TABLE od_t (tenant_id bigint NOT NULL, id int NOT NULL, note text, PRIMARY KEY (tenant_id, id));
CREATE TABLE od_e (tenant_id bigint NOT NULL, id int NOT NULL, note text, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION od_spy(v text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS
    $$BEGIN RAISE NOTICE 'od-spy saw %', v; RETURN v; END$$;
SQL
)
is "$out" "" "the owner creates two tables and its spy function"
sql "SELECT utilix.protect('od_t'); SELECT utilix.protect('od_e');
     GRANT SELECT, INSERT ON od_t, od_e TO $APP" >/dev/null

# --- one owner session: index made empty, tenants write, ANALYZE, pg_stats
out=$(psql -X -q -A -t -U "$OWNER" -d "$DB" -c "CREATE INDEX od_e_lower ON od_e ((lower(note)))" 2>&1)
is "$out" "" "the owner makes an expression index while od_e is empty"
psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.set_context('$tok', false)" \
    -c "INSERT INTO od_t (id, note) SELECT g, 'od-secret-' || g FROM generate_series(1, 200) g" \
    -c "INSERT INTO od_e (id, note) SELECT g, 'od-secret-' || g FROM generate_series(1, 200) g" >/dev/null 2>&1
is "$(sql "SELECT count(*) FROM od_e UNION ALL SELECT count(*) FROM od_t" | tr "\n" " ")" "200 200 " "the tenant wrote 200 rows into each table"

# the owner's own session: it created the index, then analyzes after the rows came
out=$(psql -X -q -A -t -U "$OWNER" -d "$DB" 2>&1 <<'SQL'
CREATE INDEX od_e_upper ON od_e (tenant_id);
ANALYZE od_e;
SELECT 'stats:' || count(*) FROM pg_stats WHERE tablename IN ('od_e_lower', 'od_e');
SELECT 'values:' || count(*) FROM pg_stats WHERE most_common_vals::text LIKE '%od-secret%'
                                             OR histogram_bounds::text LIKE '%od-secret%';
SQL
)
like "$out" 'stats:0' "after ANALYZE the owner sees no statistics of od_e or of its expression index"
like "$out" 'values:0' "... and no tenant value in any pg_stats row"
is "$(sql "SELECT count(*) FROM pg_statistic WHERE starelid = 'od_e_lower'::regclass")" "0" \
    "pg_statistic holds nothing of the expression index"

# --- a refused statement never runs the owner's function
log_before=$(wc -c < "$UTILIX_DIR/server.log")
out=$(psql -X -q -A -t -U "$OWNER" -d "$DB" -c "SET client_min_messages = debug5" \
    -c "CREATE INDEX od_t_spy ON od_t ((od_spy(note)))" 2>&1)
like "$out" 'is not allowed while it holds rows' "CREATE INDEX over the owner's function on a filled table is refused"
unlike "$out" 'od-spy|od-secret' "... and the owner got no notice of what the function would have seen"
unlike "$(tail -c +"$((log_before + 1))" "$UTILIX_DIR/server.log")" 'od-spy|od-secret' \
    "... nor did the server log"
out=$(psql -X -q -A -t -U "$OWNER" -d "$DB" \
    -c "ALTER TABLE od_t ADD CONSTRAINT od_c CHECK (note <> 'od-secret-7')" 2>&1)
like "$out" 'not allowed while it holds rows' "a validated CHECK with built-in code on a filled table is refused"
is "$(sql "SELECT count(*) FROM pg_constraint WHERE conname = 'od_c'")" "0" "... and left nothing behind"

# --- VACUUM FULL (which no transaction block may hold) re-evaluates the expression index too
out=$(psql -X -q -A -t -U "$OWNER" -d "$DB" -c "SET bytea_output = escape" -c "VACUUM FULL od_e" -c "VACUUM FULL" 2>&1)
like "$out" 'VACUUM FULL of protected table "od_e" is not allowed while it has rows and an index over expressions' \
    "VACUUM FULL of a protected table with rows and an expression index is refused to its owner"
is "$(printf '%s\n' "$out" | grep -c 'VACUUM FULL of protected table')" "2" "... and so is VACUUM FULL of every table the owner owns"

# --- a concurrent rename cannot swap the judged table for another
# (session 2 holds a decoy's lock, then renames the protected table to the
# decoy's name while session 1's CREATE INDEX waits on the name)
psql -X -q -U "$OWNER" -d "$DB" -c "CREATE TABLE od_decoy (tenant_id bigint, id int, note text)" \
    -c "ALTER TABLE od_decoy ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY" >/dev/null 2>&1
( psql -X -q -U "$OWNER" -d "$DB" -c "BEGIN; LOCK TABLE od_decoy IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(2);
      ALTER TABLE od_decoy RENAME TO od_decoy2; ALTER TABLE od_t RENAME TO od_decoy; COMMIT;" >/dev/null 2>&1 ) &
sleep 0.7
out=$(psql -X -q -A -t -U "$OWNER" -d "$DB" -c "CREATE INDEX od_race ON od_decoy ((od_spy(note)))" 2>&1)
wait
unlike "$out" 'od-spy|od-secret' "a CREATE INDEX racing a rename never runs the owner's function over the protected table's rows"
like "$out" 'not allowed while it holds rows' "... it is judged on the table it runs on (refused)"
sql "ALTER TABLE od_decoy RENAME TO od_t" >/dev/null

# --- an empty table takes the same statements
sql "CREATE TABLE od_new (tenant_id bigint NOT NULL, id int NOT NULL, note text, PRIMARY KEY (tenant_id, id));
     ALTER TABLE od_new OWNER TO $OWNER; SELECT utilix.protect('od_new')" >/dev/null
out=$(psql -X -q -A -t -U "$OWNER" -d "$DB" -c "ALTER TABLE od_new ADD CONSTRAINT od_n CHECK (note <> '')" \
    -c "CREATE INDEX od_new_l ON od_new ((lower(note))) WHERE note IS NOT NULL" \
    -c "ALTER TABLE od_new ALTER COLUMN id TYPE bigint" 2>&1)
is "$out" "" "on an empty protected table the owner adds a CHECK, a partial expression index and changes a type"

done_testing
