#!/usr/bin/env bash
# State that one tenant's transaction leaves in a pooled server connection
# must not act in the next tenant's transaction:
#  - temporary objects made under tenant A's context (a table, a domain named
#    text whose check would run A's code on every ::text of the next client)
#    make tenant B's context refused on that connection until DISCARD TEMP;
#    A's own context stays usable, and so does B's after DISCARD TEMP / ALL;
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
out=$(as "$APP" "BEGIN" "SELECT utilix.set_context('$tok_a')" "CREATE TEMP TABLE trap (v text)" "COMMIT" \
    "BEGIN" "SELECT utilix.set_context('$tok_b')" "ROLLBACK" \
    "BEGIN" "SELECT utilix.set_context('$tok_a')" "SELECT 'a-again:' || count(*) FROM docs" "COMMIT" \
    "DISCARD TEMP" \
    "BEGIN" "SELECT utilix.set_context('$tok_b')" "SELECT 'b-after:' || count(*) FROM docs" "COMMIT")
like "$out" 'holds temporary objects made under another tenant context' \
    "after tenant A's transaction left a temporary table, tenant B's context is refused on the connection"
like "$out" 'a-again:0' "... tenant A's own context still works there"
like "$out" 'b-after:0' "... and after DISCARD TEMP tenant B's context works"

out=$(as "$APP" "SELECT utilix.set_context('$tok_a', false)" \
    "CREATE FUNCTION pg_temp.trap(v text) RETURNS boolean LANGUAGE sql AS 'SELECT true'" \
    "CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.trap(VALUE))" \
    "SELECT utilix.set_context('$tok_b', false)" "SELECT 'ctx:' || utilix.current_tenant()" \
    "DISCARD ALL" "SELECT utilix.set_context('$tok_b', false)" "SELECT 'b-clean:' || count(*) FROM docs")
like "$out" 'holds temporary objects made under another tenant context' \
    "a temporary domain named text (made to run A's code on B's ::text) blocks tenant B's context"
like "$out" "ctx:$ta" "... so the session stays in tenant A's context: tenant B reads nothing while A's trap is there"
unlike "$out" "ctx:$tb" "... never in tenant B's"
like "$out" 'b-clean:0' "... and after DISCARD ALL tenant B works normally"

out=$(as "$APP" "CREATE TEMP TABLE scratch (v int)" "SELECT utilix.set_context('$tok_a', false)" 2>&1)
like "$out" 'holds temporary objects made under another tenant context' \
    "temporary objects made without a context block every tenant's context too (set the context first)"

# --- an operator's temporary table under the name reencrypt() once used
out=$(as "$OP" "CREATE TEMP TABLE utilix_versions_in_use (tenant_id bigint, version integer)" \
    "CREATE FUNCTION pg_temp.esc() RETURNS trigger LANGUAGE plpgsql AS \$\$BEGIN ALTER ROLE $OP SUPERUSER; RETURN NULL; END\$\$" \
    "CREATE TRIGGER esc AFTER INSERT OR TRUNCATE ON pg_temp.utilix_versions_in_use FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.esc()" \
    "SELECT utilix.rotate_tenant_key($ta)" "SELECT 'reencrypt:' || utilix.reencrypt()" "SELECT 'reencrypt:' || utilix.reencrypt()")
like "$out" 'reencrypt:0' "the operator runs reencrypt() with a temporary table of that name and trigger in place"
is "$(sql "SELECT rolsuper FROM pg_roles WHERE rolname = '$OP'")" "f" "... and is no superuser afterwards"

done_testing
