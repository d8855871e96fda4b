#!/usr/bin/env bash
# Two databases of the running test cluster (one master key), each with
# utilix, a tenant 1 and a protected table holding different rows:
#  - a token minted in one database is refused in the other: set_context()
#    fails with 42501 ("issued in another database"); SET utilix.context is
#    accepted (the signature is good) but context_info() says "issued in
#    another database" and every use (reading, writing, current_tenant(),
#    decryption) is refused or gives no plaintext;
#  - COPY FROM STDIN by the application role: with an owner's policy beside
#    utilix's own (a restrictive "own_rows" for INSERT) utilix leaves COPY to
#    PostgreSQL, which refuses it (0A000) instead of running it without that
#    policy; with only utilix's policies COPY works, seals the rows, and a
#    row of another tenant in the data fails the whole COPY with 42501.
# Everything it creates (two databases, a role) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB1=utilix_xdb_one
DB2=utilix_xdb_two
APP=utilix_xdb_app
export PGOPTIONS="-c client_min_messages=warning"

cleanup() {
    local db
    for db in "$DB1" "$DB2"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    done
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql DB SQL: as the superuser, tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1
}
app() {     # app DB SQL...: as the application role (its own login), each -c its own statement, verbose errors
    local db=$1 args=() s
    shift
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -v VERBOSITY=verbose -U "$APP" -d "$db" "${args[@]}" 2>&1
}
app_copy() {  # app_copy DB TOKEN TABLE ROWS: \copy ROWS (tab-separated lines) as the application role
    local db=$1 tok=$2 table=$3 rows=$4
    printf "SET utilix.context = '%s';\n\\\\copy %s (tenant_id, id, owner, body, secret) FROM stdin\n%s\n\\\\.\n" \
        "$tok" "$table" "$rows" |
        psql -X -q -A -t -v VERBOSITY=verbose -v ON_ERROR_STOP=1 -U "$APP" -d "$db" 2>&1
}

# ---------------------------------------------------------------- two databases
cleanup
out=$(sql postgres "CREATE ROLE $APP LOGIN") || bail "set-up: $out"
for db in "$DB1" "$DB2"; do
    out=$(sql postgres "CREATE DATABASE $db") || bail "create $db: $out"
    out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" 2>&1 <<SQL
CREATE EXTENSION utilix;
SELECT utilix.create_tenant('xdb one $db'), utilix.create_tenant('xdb two $db');
CREATE TABLE doc (tenant_id bigint NOT NULL, id int NOT NULL, owner text, body text, secret text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('doc');
SELECT utilix.encrypt_column('doc', 'secret', 'secret', true);
CREATE TABLE doc_owned (tenant_id bigint NOT NULL, id int NOT NULL, owner text, body text, secret text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('doc_owned');
SELECT utilix.encrypt_column('doc_owned', 'secret');
-- the owner's finer rule: users only add rows they own
CREATE POLICY own_rows ON doc_owned AS RESTRICTIVE FOR INSERT WITH CHECK (owner = utilix.current_app_user());
GRANT SELECT, INSERT, UPDATE, DELETE ON doc, doc_owned TO $APP;
INSERT INTO doc VALUES (1, 1, 'alice', 'body of $db tenant 1', 'secret of $db tenant 1'),
                       (2, 1, 'zed', 'body of $db tenant 2', 'secret of $db tenant 2');
INSERT INTO doc_owned VALUES (1, 1, 'alice', 'owned of $db tenant 1', 'x');
SQL
) || bail "set-up of $db failed: $out"
done
is "$(sql "$DB1" "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM utilix.tenant")|$(sql "$DB2" "SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM utilix.tenant")" \
    "1:xdb one $DB1,2:xdb two $DB1|1:xdb one $DB2,2:xdb two $DB2" "both databases have a tenant 1 (and a tenant 2)"
TOK1=$(sql "$DB1" "SELECT utilix.issue_context(1, 'alice', '10 minutes', '{read,write}', 'secret')") || bail "token in $DB1: $TOK1"
TOK2=$(sql "$DB2" "SELECT utilix.issue_context(1, 'alice', '10 minutes', '{read,write}', 'secret')") || bail "token in $DB2: $TOK2"
like "$TOK1" '^utx1\.' "a token of tenant 1 is minted in $DB1"

# ---------------------------------------------------------------- the token in its own database
is "$(app "$DB1" "SELECT utilix.set_context('$TOK1', false)" "SELECT tenant_id || '|' || body || '|' || secret::text FROM doc ORDER BY id")" \
   "1
1|body of $DB1 tenant 1|secret of $DB1 tenant 1" "in $DB1 its token sets tenant 1 and reads tenant 1's row, decrypted"
is "$(app "$DB1" "SET utilix.context = '$TOK1'" "SELECT status FROM utilix.context_info()")" "valid" \
   "in $DB1 context_info() says valid"

# ---------------------------------------------------------------- the token of DB1 in DB2
out=$(app "$DB2" "SELECT utilix.set_context('$TOK1', false)")
like "$out" 'ERROR:  42501: .*another database' "in $DB2 set_context() with $DB1's token: 42501, issued in another database"
unlike "$out" "^1\$" "... and returns no tenant"
out=$(app "$DB2" "SELECT utilix.set_context('$TOK1', false)" "SELECT tenant_id || '|' || body FROM doc")
unlike "$out" "body of" "... and after that failed call the session reads no row"
out=$(app "$DB2" "SET utilix.context = '$TOK1'" "SELECT status FROM utilix.context_info()")
is "$out" "issued in another database" "in $DB2 SET utilix.context = token is accepted, but context_info() says 'issued in another database'"
out=$(app "$DB2" "SET utilix.context = '$TOK1'" "SELECT tenant_id || '|' || body FROM doc")
like "$out" 'ERROR:  42501: .*another database' "... reading the protected table: 42501, issued in another database"
unlike "$out" "body of" "... no row of $DB2 is returned"
out=$(app "$DB2" "SET utilix.context = '$TOK1'" "SELECT utilix.current_tenant()")
like "$out" 'ERROR:  42501: .*another database' "... current_tenant(): 42501"
out=$(app "$DB2" "SET utilix.context = '$TOK1'" "INSERT INTO doc (tenant_id, id, owner, body, secret) VALUES (1, 7, 'alice', 'written with a foreign token', 'x')")
like "$out" 'ERROR:  42501' "... writing: 42501"
is "$(sql "$DB2" "SELECT count(*) FROM doc WHERE id = 7")" "0" "... and nothing was written"
out=$(psql -X -q -A -t -d "$DB2" -c "SET utilix.context = '$TOK1'" -c "SELECT secret::text FROM doc WHERE tenant_id = 1" 2>&1)
like "$out" '^utxe1:' "... a superuser session holding the foreign token reads tenant 1's encrypted column as armour"
unlike "$out" "secret of" "... not as plaintext"
# and the other way round
out=$(app "$DB1" "SELECT utilix.set_context('$TOK2', false)")
like "$out" 'ERROR:  42501: .*another database' "$DB2's token in $DB1: 42501 as well"
is "$(app "$DB2" "SELECT utilix.set_context('$TOK2', false)" "SELECT body FROM doc WHERE id = 1")" "1
body of $DB2 tenant 1" "$DB2's own token works in $DB2"

# ---------------------------------------------------------------- COPY FROM with an owner's policy
before=$(sql "$DB1" "SELECT count(*) FROM doc_owned")
out=$(app_copy "$DB1" "$TOK1" doc_owned "1	10	mallory	copied past own_rows	x")
like "$out" 'ERROR:  0A000: COPY FROM not supported with row-level security' \
    "\\copy into a table with an owner's restrictive policy beside utilix's: 0A000 (PostgreSQL's refusal)"
out=$(app_copy "$DB1" "$TOK1" doc_owned "1	11	alice	copied own row	x")
like "$out" 'ERROR:  0A000' "... also for rows the policy would allow"
is "$(sql "$DB1" "SELECT count(*) FROM doc_owned")" "$before" "... no row was added"
out=$(app "$DB1" "SELECT utilix.set_context('$TOK1', false)" "INSERT INTO doc_owned VALUES (1, 12, 'mallory', 'inserted past own_rows', 'x')")
like "$out" 'ERROR:  42501: new row violates row-level security policy "own_rows"' "control: INSERT of such a row is refused by own_rows (42501)"

# ---------------------------------------------------------------- COPY FROM with only utilix's policies
before=$(sql "$DB1" "SELECT count(*) FROM doc")
out=$(app_copy "$DB1" "$TOK1" doc "1	20	alice	copied row one	copied secret one
1	21	alice	copied row two	copied secret two")
is "$out" "" "\\copy of two rows of tenant 1 into a table with only utilix's policies works"
is "$(app "$DB1" "SELECT utilix.set_context('$TOK1', false)" "SELECT string_agg(id || '|' || body || '|' || secret::text, ',' ORDER BY id) FROM doc WHERE id >= 20")" \
   "1
20|copied row one|copied secret one,21|copied row two|copied secret two" "... the context reads them back"
is "$(sql "$DB1" "SELECT count(*) FILTER (WHERE utilix.is_sealed(secret)) || '/' || count(*) FROM doc WHERE id >= 20")" "2/2" "... stored sealed"
out=$(app_copy "$DB1" "$TOK1" doc "1	30	alice	copied before the foreign row	x
2	30	zed	a row of tenant 2	y")
like "$out" 'ERROR:  42501: .*tenant' "\\copy with a row of another tenant in the data: 42501"
is "$(sql "$DB1" "SELECT count(*) FROM doc WHERE id = 30")|$(sql "$DB1" "SELECT count(*) FROM doc")" "0|$((before + 2))" \
   "... and none of that COPY's rows were stored"
out=$(app_copy "$DB2" "$TOK1" doc "1	40	alice	copied with a foreign token	x")
like "$out" 'ERROR:  42501: .*another database' "\\copy in $DB2 with $DB1's token: 42501"
is "$(sql "$DB2" "SELECT count(*) FROM doc WHERE id = 40")" "0" "... nothing stored"

done_testing
