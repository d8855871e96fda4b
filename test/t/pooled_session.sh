#!/usr/bin/env bash
# State that one tenant's transaction leaves in a pooled server connection:
#  - what remains (README, Threat model): with the TEMPORARY privilege, a
#    temporary domain named text that tenant A's transaction leaves on the
#    connection runs A's code on every ::text of tenant B's next transaction,
#    with B's context; the test shows it, and shows that the documented
#    mitigation (no TEMPORARY for the application role) stops it;
#  - an operator's temporary table named like a table utilix once used
#    inside reencrypt() (a SECURITY DEFINER function) is never touched by it:
#    the operator's trigger on it does not run as a superuser.
# Everything it creates (a database, four roles) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB=utilix_pooled
APP=utilix_pool_app
ISS=utilix_pool_issuer
OP=utilix_pool_op
OWNER=utilix_pool_owner

cleanup() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    for r in "$APP" "$ISS" "$OP" "$OWNER"; do
        psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
    done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql SQL: as the superuser in $DB, tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
as() {      # as ROLE SQL...: one session of ROLE, each -c its own statement
    local role=$1 args=() s
    shift
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -U "$role" -d "$DB" "${args[@]}" 2>&1
}

cleanup
psql -X -q -d postgres -c "CREATE DATABASE $DB" >/dev/null
sql "CREATE EXTENSION utilix" >/dev/null
sql "CREATE ROLE $APP LOGIN; CREATE ROLE $OWNER LOGIN; CREATE ROLE $ISS LOGIN IN ROLE utilix_issuer;
     CREATE ROLE $OP LOGIN IN ROLE utilix_operator" >/dev/null
ta=$(sql "SELECT utilix.create_tenant('pool alpha')")
tb=$(sql "SELECT utilix.create_tenant('pool beta')")
sql "CREATE TABLE docs (tenant_id bigint NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
     ALTER TABLE docs OWNER TO $OWNER; SELECT utilix.protect('docs'); SELECT utilix.encrypt_column('docs', 'body');
     GRANT SELECT, INSERT ON docs TO $APP" >/dev/null
tok_a=$(as "$ISS" "SELECT utilix.issue_context($ta, 'alice')")
tok_b=$(as "$ISS" "SELECT utilix.issue_context($tb, 'bob')")
like "$tok_a$tok_b" '^utx1\..*utx1\.' "two tenants' tokens are minted"

# --- one server connection, two tenants' transactions in turn
sql "INSERT INTO docs VALUES ($tb, 1, 'beta plaintext')" >/dev/null
trap_sql=(
    "BEGIN" "SELECT utilix.set_context('$tok_a')"
    "CREATE TEMP TABLE loot (v pg_catalog.text, t bigint)"
    "CREATE FUNCTION pg_temp.keep(v pg_catalog.text) RETURNS boolean LANGUAGE sql AS 'INSERT INTO pg_temp.loot VALUES (v, utilix.current_tenant()) RETURNING true'"
    "CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.keep(VALUE))"
    "COMMIT"
    "BEGIN" "SELECT utilix.set_context('$tok_b')" "SELECT body::text FROM public.docs" "COMMIT"
    "BEGIN" "SELECT utilix.set_context('$tok_a')" "SELECT 'loot:' || v || '@' || t FROM loot" "COMMIT")
out=$(as "$APP" "${trap_sql[@]}")
like "$out" "loot:beta plaintext@$tb" \
    "residual: with TEMPORARY, a temporary domain tenant A left on the connection captures tenant B's plaintext"
sql "REVOKE TEMPORARY ON DATABASE $DB FROM PUBLIC" >/dev/null
out=$(as "$APP" "${trap_sql[@]}")
like "$out" 'permission denied to create temporary tables' \
    "mitigation: without TEMPORARY the application role cannot leave such objects"
unlike "$out" 'loot:beta' "... and nothing of tenant B is captured"
sql "GRANT TEMPORARY ON DATABASE $DB TO PUBLIC" >/dev/null

# --- an operator's temporary table under the name reencrypt() once used
out=$(as "$OP" "CREATE TEMP TABLE utilix_versions_in_use (tenant_id bigint, version integer)" \
    "CREATE FUNCTION pg_temp.esc() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN ALTER ROLE $OP SUPERUSER; RETURN NULL; END\$\$" \
    "CREATE TRIGGER esc AFTER INSERT OR TRUNCATE ON pg_temp.utilix_versions_in_use FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.esc()" \
    "SELECT utilix.rotate_tenant_key($ta)" "SELECT 'reencrypt:' || utilix.reencrypt()" "SELECT 'reencrypt:' || utilix.reencrypt()")
like "$out" 'reencrypt:0' "the operator runs reencrypt() with a temporary table of that name and trigger in place"
is "$(sql "SELECT rolsuper FROM pg_roles WHERE rolname = '$OP'")" "f" "... and is no superuser afterwards"

done_testing
