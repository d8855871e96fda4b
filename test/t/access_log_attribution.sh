#!/usr/bin/env bash
# The access log takes a tenant only from a context that verifies in this
# database.  Two databases of the running test cluster share the master key,
# each with utilix and a tenant 1:
#  - a token of tenant 1 minted in the first database, used in the second by
#    a role that bypasses row level security (its read succeeds) and by the
#    application role (refused): neither record is filed under tenant 1 of
#    the second database; both are under no tenant, saying what the context
#    claimed and that it was issued in another database;
#  - a cursor WITH HOLD over a protected table, which would outlive its
#    transaction and context, is refused to the application role.
# Everything it creates (two databases, two roles) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB1=utilix_attr_one
DB2=utilix_attr_two
APP=utilix_attr_app
BYP=utilix_attr_bypass
export PGOPTIONS="-c client_min_messages=warning"

cleanup() {
    local db
    for db in "$DB1" "$DB2"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    done
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $APP" -c "DROP ROLE IF EXISTS $BYP" >/dev/null 2>&1
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql DB SQL: as the superuser, tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1
}
as() {      # as ROLE DB SQL...: each -c its own statement, as ROLE (its own login)
    local role=$1 db=$2 args=() s
    shift 2
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -U "$role" -d "$db" "${args[@]}" 2>&1
}
# the records of a role's statements in DB since id MARK: "tenant|app_user|outcome|read" per line
recs() {
    sql "$1" "SELECT utilix.access_log_flush()" >/dev/null
    sql "$1" "SELECT concat_ws('|', coalesce(tenant_id::text, 'none'), coalesce(app_user, '-'), outcome,
                      (SELECT string_agg(x->>'read', ',') FROM jsonb_array_elements(tables) x))
                FROM utilix.access_log WHERE id > $3 AND db_role = '$2' ORDER BY id"
}
mark() {
    sql "$1" "SELECT utilix.access_log_flush()" >/dev/null
    sql "$1" "SELECT coalesce(max(id), 0) FROM utilix.access_log"
}

cleanup
out=$(sql postgres "CREATE ROLE $APP LOGIN; CREATE ROLE $BYP LOGIN BYPASSRLS") || bail "set-up: $out"
for db in "$DB1" "$DB2"; do
    out=$(sql postgres "CREATE DATABASE $db") || bail "create $db: $out"
    out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" 2>&1 <<SQL
CREATE EXTENSION utilix;
SELECT utilix.create_tenant('attr one $db'), utilix.create_tenant('attr two $db');
CREATE TABLE doc (tenant_id bigint NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('doc');
INSERT INTO doc SELECT 1, g, 'one ' || g FROM generate_series(1, 4) g;
INSERT INTO doc SELECT 2, g, 'two ' || g FROM generate_series(1, 3) g;
GRANT SELECT ON doc TO $APP, $BYP;
SELECT utilix.run_access_log_maintenance();
SQL
) || bail "set-up of $db: $out"
done
TOK1=$(sql "$DB1" "SELECT utilix.issue_context(1, 'attr-foreign', rights => '{read}')")
like "$TOK1" '^utx1\.' "a token of tenant 1 is minted in $DB1"
TOK2A=$(sql "$DB2" "SELECT utilix.issue_context(1, 'attr-own-one', rights => '{read}')")
TOK2B=$(sql "$DB2" "SELECT utilix.issue_context(2, 'attr-own-two', rights => '{read}')")

# ---------------------------------------------------------------- (c) a token of another database
m=$(mark "$DB2")
out=$(as "$BYP" "$DB2" "SET utilix.context = '$TOK1'" "SELECT count(*) FROM doc")
like "$out" '^7$' "in $DB2, a role that bypasses row level security reads with $DB1's token (7 rows)"
out=$(recs "$DB2" "$BYP" "$m")
is "$out" "none|-|ok|7" "... its read is filed under no tenant of $DB2, not under tenant 1"
det=$(sql "$DB2" "SELECT detail FROM utilix.access_log WHERE id > $m AND db_role = '$BYP' ORDER BY id LIMIT 1")
like "$det" '^tenant context not accepted \((issued in another database|not verified \(realm unknown\))\); it claims tenant 1, app user attr-foreign' \
    "... and says that the context was not accepted here and what it claimed"

m=$(mark "$DB2")
out=$(as "$APP" "$DB2" "SET utilix.context = '$TOK1'" "SELECT count(*) FROM doc")
like "$out" 'ERROR' "the application role with $DB1's token is refused in $DB2"
out=$(recs "$DB2" "$APP" "$m")
like "$out" '^none\|-\|denied\|' "... and the refusal is filed as denied under no tenant"
is "$(sql "$DB2" "SELECT count(*) FROM utilix.access_log WHERE app_user = 'attr-foreign' OR (tenant_id = 1 AND id > $m AND db_role IN ('$APP', '$BYP'))")" \
    "0" "nothing of the foreign token is in $DB2's chain of tenant 1"

m=$(mark "$DB2")
out=$(as "$APP" "$DB2" "SET utilix.context = '$TOK2A'" "SELECT count(*) FROM doc")
is "$out" "4" "$DB2's own token of tenant 1 reads its 4 rows"
is "$(recs "$DB2" "$APP" "$m")" "1|attr-own-one|ok|4" "... filed under tenant 1 with its app user"
v=$(sql "$DB2" "SELECT bool_and(v.ok) FROM unnest(ARRAY[1,2]::bigint[]) t, utilix.verify_access_log(t) v")
is "$v" "t" "the chains of $DB2 verify"

# ---------------------------------------------------------------- a cursor WITH HOLD over a protected table
# It would outlive its transaction and its context (the next client of a
# pooled connection could fetch the rows): refused to the application role.
out=$(as "$APP" "$DB2" "SET utilix.context = '$TOK2A'" \
    "BEGIN; DECLARE h CURSOR WITH HOLD FOR SELECT id FROM doc ORDER BY id; FETCH 1 FROM h; COMMIT;" \
    "SET utilix.context = '$TOK2B'" "FETCH ALL FROM h" 2>&1)
like "$out" 'cursor WITH HOLD cannot (read protected table|be declared under a tenant context)' "a cursor WITH HOLD over a protected table is refused to the application role"
unlike "$out" '^[1-4]$' "... and no row of tenant 1 is fetched, in its transaction or after switching to tenant 2"

done_testing
