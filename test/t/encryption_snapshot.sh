#!/usr/bin/env bash
# Decrypting output functions leave no snapshot behind.  The rows of a
# FETCH are sent from the portal's store after the statement ran, with no
# active snapshot; an encrypted column's output function that has to look
# something up there (a cold cache: the column's metadata, the role's
# binding, the tenant's status, the tenant's key) used to let SPI push a
# portal snapshot that nothing popped, and COMMIT warned
# "snapshot ... still active".  Each case runs in a new session, so that
# every cache of utilix starts cold, and asserts no WARNING at all.
# Everything it creates (a database, a role) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
DB=utilix_snap
APP=utilix_snap_app

cleanup() {
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql SQL: as the superuser in $DB, tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
app() {     # app SCRIPT: a new session of the application role; stdout and stderr (warnings included)
    psql -X -q -A -t -U "$APP" -d "$DB" 2>&1 <<<"$1"
}

cleanup
out=$(psql -X -q -d postgres -c "CREATE ROLE $APP LOGIN" -c "CREATE DATABASE $DB" 2>&1) || bail "set-up: $out"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION utilix;
SELECT utilix.create_tenant('snap one');
CREATE TABLE items (tenant_id bigint NOT NULL, id int NOT NULL, secret text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('items');
INSERT INTO items SELECT 1, g, 'secret ' || g FROM generate_series(1, 5) g;
SELECT utilix.encrypt_column('items', 'secret');
GRANT SELECT ON items TO $APP;
SQL
) || bail "set-up of $DB: $out"
TOK=$(sql "SELECT utilix.issue_context(1, 'snap-user', rights => '{read}')")
like "$TOK" '^utx1\.' "a token of tenant 1"

# the repro of the report: the cursor starts under the context (MOVE: its
# tenant condition is evaluated, nothing is output), which is then cleared
out=$(app "BEGIN; SELECT utilix.set_context('$TOK');
DECLARE c CURSOR FOR SELECT id, secret FROM items ORDER BY id;
MOVE 1 FROM c; SELECT utilix.clear_context(); FETCH ALL FROM c; COMMIT;")
unlike "$out" 'WARNING|ERROR' "FETCH from a cursor after clear_context(), then COMMIT: no warning (no snapshot left active)"
unlike "$out" 'secret [0-9]' "... and no plaintext"
like "$out" '^2\|utxe1:' "... the encrypted column is returned as armour"

# the same, with utilix's caches dropped in between (an operator's change of
# utilix's catalogs does that): after clear_context() the output function
# looks up the role's binding again, where no snapshot is active
out=$(psql -X -q -A -t -d "$DB" 2>&1 <<SQL
BEGIN; SET LOCAL ROLE $APP; SELECT utilix.set_context('$TOK');
DECLARE c CURSOR FOR SELECT id, secret FROM items ORDER BY id;
MOVE 1 FROM c; SELECT utilix.clear_context();
RESET ROLE; SELECT utilix.create_tenant('snap two') IS NOT NULL; SET LOCAL ROLE $APP;
FETCH ALL FROM c; COMMIT;
SQL
)
unlike "$out" 'WARNING|ERROR' "... with cold caches at the FETCH: no warning"
like "$out" '^2\|utxe1:' "... and armour"

# one row with the context, the rest without
out=$(app "BEGIN; SELECT utilix.set_context('$TOK');
DECLARE c CURSOR FOR SELECT id, secret FROM items ORDER BY id;
FETCH 1 FROM c; SELECT utilix.clear_context(); FETCH ALL FROM c; COMMIT;")
unlike "$out" 'WARNING' "FETCH with the context, clear_context(), FETCH again, COMMIT: no warning"
like "$out" '^1\|secret 1$' "... the first row in plaintext"
like "$out" '^5\|utxe1:' "... the rows after clear_context() as armour"

# every row with the context (the first FETCH of a session decrypts with cold caches)
out=$(app "BEGIN; SELECT utilix.set_context('$TOK');
DECLARE c CURSOR FOR SELECT id, secret FROM items ORDER BY id;
FETCH ALL FROM c; COMMIT;")
unlike "$out" 'WARNING' "FETCH ALL with the context, then COMMIT: no warning"
like "$out" '^5\|secret 5$' "... the rows in plaintext"

# a savepoint that clears the context, rolled back between FETCHes
out=$(app "BEGIN; SELECT utilix.set_context('$TOK');
DECLARE c CURSOR FOR SELECT id, secret FROM items ORDER BY id;
FETCH 2 FROM c; SAVEPOINT s; SELECT utilix.clear_context(); FETCH 1 FROM c; ROLLBACK TO SAVEPOINT s;
FETCH ALL FROM c; COMMIT;")
unlike "$out" 'WARNING' "FETCH in and after a rolled-back savepoint, then COMMIT: no warning"
like "$out" '^5\|secret 5$' "... the context restored by the rollback decrypts the last rows"

done_testing
