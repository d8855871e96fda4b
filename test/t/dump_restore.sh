#!/usr/bin/env bash
# pg_dump and restore of encrypted columns, against the running test cluster
# (same master key for source and target):
#  - a database with two tenants and a protected table with an encrypted text
#    column, a searchable (blind-indexed) text column, a jsonb and a bytea
#    column;
#  - pg_dump -Fc as postgres: the dump holds armour ('utxe1:') and none of
#    the plaintext values;
#  - pg_restore into a fresh database exits 0 (warnings are reported as
#    diagnostics); the stored values are byte-identical to the source's (no
#    double encryption); tenant A's context reads the original plaintext;
#    every value is sealed; the blind index still finds rows; new writes are
#    sealed; key rotation, encrypt_column() and decrypt_column() still work
#    in the restored database;
#  - renaming the table and a column keeps the encryption working;
#  - the same for a plain-SQL dump (pg_dump -Fp) restored with psql.
# Everything it creates (databases, a role, files) is removed at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
SRC=utilix_dr_src
DST=utilix_dr_dst
PLN=utilix_dr_plain
APP=utilix_dr_app
export PGOPTIONS="-c client_min_messages=warning"

wdir=$(mktemp -d /tmp/utilix-dumprestore.XXXXXX)
chmod 755 "$wdir"
cleanup() {
    local db
    for db in "$SRC" "$DST" "$PLN"; do
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
    done
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
    rm -rf "$wdir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql DB SQL: tuples only, unaligned, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1
}
sqlo() {    # sqlo DB SQL...: stdout only (notices dropped); on failure the error follows
    local db=$1 args=() s
    shift
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" "${args[@]}" 2>"$wdir/sqlo.err" || cat "$wdir/sqlo.err"
}
sqlv() {    # sqlv DB SQL...: each -c its own statement, verbose errors, errors do not stop
    local db=$1 args=() s
    shift
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -v VERBOSITY=verbose -d "$db" "${args[@]}" 2>&1
}

R=$RANDOM$RANDOM
# every plaintext value that goes into an encrypted column
NAME_A1="PLAIN-NAME-A1-$R"; NAME_A3="PLAIN-NAME-A3-$R"; NAME_B1="PLAIN-NAME-B1-$R"; NAME_B2="PLAIN-NAME-B2-$R"
MAIL_A1="plain-a1-$R@example.com"; MAIL_SHARED="shared-$R@example.com"; MAIL_B2="plain-b2-$R@example.com"
SSN_A1="PLAIN-SSN-A1-$R"; NOTE_A3="PLAIN-NOTE-A3-$R"; SSN_B1="PLAIN-SSN-B1-$R"
BLOB_A1="PLAIN-BLOB-A1-$R"
BLOB_A1_HEX=$(printf '%s' "$BLOB_A1" | od -An -tx1 | tr -d ' \n')
PLAINS=("$NAME_A1" "$NAME_A3" "$NAME_B1" "$NAME_B2" "$MAIL_A1" "$MAIL_SHARED" "$MAIL_B2" "$SSN_A1" "$NOTE_A3" "$SSN_B1" "$BLOB_A1" "$BLOB_A1_HEX" "$R")

# ---------------------------------------------------------------- source database
for db in "$SRC" "$DST" "$PLN"; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
done
psql -X -q -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
out=$(sql postgres "CREATE DATABASE $SRC" && sql postgres "CREATE ROLE $APP NOLOGIN") || bail "set-up: $out"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$SRC" 2>&1 <<SQL
CREATE EXTENSION utilix;
SELECT utilix.create_tenant('dr alpha') AS ta, utilix.create_tenant('dr beta') AS tb \gset
CREATE TABLE people (tenant_id bigint NOT NULL, id int NOT NULL, name text, email text, profile jsonb,
                     blob bytea, extra text, qty int, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('people');
SELECT utilix.encrypt_column('people', 'name');
SELECT utilix.encrypt_column('people', 'email', searchable => true);
SELECT utilix.encrypt_column('people', 'profile');
SELECT utilix.encrypt_column('people', 'blob');
GRANT SELECT, INSERT, UPDATE, DELETE ON people TO $APP;
INSERT INTO people VALUES
    (:ta, 1, '$NAME_A1', '$MAIL_A1', '{"ssn": "$SSN_A1"}', convert_to('$BLOB_A1', 'UTF8'), 'extra a1', 1),
    (:ta, 2, '', NULL, NULL, NULL, 'extra a2', 2),
    (:ta, 3, '$NAME_A3', '$MAIL_SHARED', '{"note": "$NOTE_A3"}', '\x', 'extra a3', 3),
    (:tb, 1, '$NAME_B1', '$MAIL_SHARED', '{"ssn": "$SSN_B1"}', '\x0b', 'extra b1', 11),
    (:tb, 2, '$NAME_B2', '$MAIL_B2', NULL, NULL, 'extra b2', 12);
SQL
) || bail "set-up of the source database failed: $out"
TA=$(sql "$SRC" "SELECT id FROM utilix.tenant WHERE name = 'dr alpha'")
TB=$(sql "$SRC" "SELECT id FROM utilix.tenant WHERE name = 'dr beta'")

# what is stored, as a superuser without a context sees it (armour)
STORED_Q="SELECT tenant_id, id, name::text, email::text, profile::text, blob::text FROM people ORDER BY tenant_id, id"
SEALED_Q="SELECT count(*) FILTER (WHERE utilix.is_sealed(name)) || '/' || count(name) || ' '
               || count(*) FILTER (WHERE utilix.is_sealed(email)) || '/' || count(email) || ' '
               || count(*) FILTER (WHERE utilix.is_sealed(profile)) || '/' || count(profile) || ' '
               || count(*) FILTER (WHERE utilix.is_sealed(blob)) || '/' || count(blob) FROM people"
sql "$SRC" "$STORED_Q" > "$wdir/src.stored"
like "$(cat "$wdir/src.stored")" 'utxe1:' "source: a superuser without a context sees armour"
is "$(sql "$SRC" "$SEALED_Q")" "5/5 4/4 3/3 3/3" "source: every non-NULL value is sealed"
KEYS_SRC=$(sql "$SRC" "SELECT string_agg(tenant_id || ':' || version || ':' || state || ':' || md5(coalesce(wrapped, '')), ' ' ORDER BY tenant_id, version) FROM utilix.data_key")

# read_as DB TENANT SQL...: runs SQL as the application role with a context of TENANT
read_as() {
    local db=$1 tenant=$2 tok
    shift 2
    tok=$(sql "$db" "SELECT utilix.issue_context($tenant, 'dr-user', '10 minutes')") || { echo "no token: $tok"; return 1; }
    local args=(-c "SET utilix.restrict_explain = off" -c "SET ROLE $APP" -c "SELECT utilix.set_context('$tok', false)" -c "SET search_path = public, utilix")
    local s
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$db" "${args[@]}" 2>&1 | sed '1{/^[0-9][0-9]*$/d}'
}

PLAIN_A_Q="SELECT id || '|' || coalesce(name::text, '<null>') || '|' || coalesce(email::text, '<null>') || '|'
                  || coalesce(profile::jsonb::text, '<null>') || '|' || coalesce(convert_from(blob::bytea, 'UTF8'), '<null>')
             FROM people ORDER BY id"
WANT_A="1|$NAME_A1|$MAIL_A1|{\"ssn\": \"$SSN_A1\"}|$BLOB_A1
2||<null>|<null>|<null>
3|$NAME_A3|$MAIL_SHARED|{\"note\": \"$NOTE_A3\"}|"
is "$(read_as "$SRC" "$TA" "$PLAIN_A_Q")" "$WANT_A" "source: tenant A's context reads its plaintext"

# ---------------------------------------------------------------- pg_dump -Fc
pg_dump -Fc -f "$wdir/src.dump" "$SRC" 2>"$wdir/dump.err"
is "$?" "0" "pg_dump -Fc of the source database exits 0"
pg_restore -f - "$wdir/src.dump" > "$wdir/dump.sql" 2>>"$wdir/dump.err"
like "$(grep -c 'utxe1:' "$wdir/dump.sql")" '^[1-9]' "the custom-format dump holds armour ('utxe1:')"
like "$(cat "$wdir/dump.sql")" 'COPY public\.people ' "the custom-format dump holds the table's data"
leaked=()
for p in "${PLAINS[@]}"; do
    grep -qiF -- "$p" "$wdir/dump.sql" && leaked+=("$p")
done
is "${leaked[*]:-}" "" "the custom-format dump holds none of the ${#PLAINS[@]} plaintext strings"
lacks "$wdir/dump.err" -- "$R" "pg_dump's messages hold no plaintext"

# ---------------------------------------------------------------- pg_restore into a fresh database
out=$(sql postgres "CREATE DATABASE $DST") || bail "create $DST: $out"
pg_restore -d "$DST" "$wdir/src.dump" >"$wdir/restore.out" 2>"$wdir/restore.err"
rc=$?
is "$rc" "0" "pg_restore into a fresh database exits 0"
if [ -s "$wdir/restore.err" ]; then
    diag "pg_restore printed (exit $rc):"
    diag "$(head -40 "$wdir/restore.err")"
fi
unlike "$(cat "$wdir/restore.err")" 'ERROR' "pg_restore reports no error"

sql "$DST" "$STORED_Q" > "$wdir/dst.stored"
if cmp -s "$wdir/src.stored" "$wdir/dst.stored"; then
    ok "restored values are byte-identical to the source's (no double encryption)"
else
    not_ok "restored values are byte-identical to the source's (no double encryption)" "$(diff "$wdir/src.stored" "$wdir/dst.stored" | head -6 | cut -c1-200)"
fi
is "$(sql "$DST" "$SEALED_Q")" "5/5 4/4 3/3 3/3" "restored: every non-NULL value is sealed"
is "$(sql "$DST" "SELECT string_agg(tenant_id || ':' || version || ':' || state || ':' || md5(coalesce(wrapped, '')), ' ' ORDER BY tenant_id, version) FROM utilix.data_key")" \
    "$KEYS_SRC" "restored: the wrapped data keys are carried over unchanged"
is "$(read_as "$DST" "$TA" "$PLAIN_A_Q")" "$WANT_A" "restored: tenant A's context reads the original plaintext"
is "$(read_as "$DST" "$TB" "SELECT string_agg(name::text, ',' ORDER BY id) FROM people")" "$NAME_B1,$NAME_B2" \
    "restored: tenant B's context reads its plaintext, and only its rows"
out=$(read_as "$DST" "$TA" "SELECT count(*) FROM people WHERE name::text LIKE 'utxe1:%' OR email::text LIKE 'utxe1:%'")
is "$out" "0" "restored: no value of A decrypts to armour (nothing was encrypted twice)"

is "$(sql "$DST" "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                   WHERE i.indrelid = 'people'::regclass AND c.relname LIKE 'utilix\_bidx\_%' AND i.indisvalid")" "1" \
    "restored: the blind index exists and is valid"
is "$(read_as "$DST" "$TA" "SELECT string_agg(id::text, ',' ORDER BY id) FROM people WHERE email = '$MAIL_SHARED'")" "3" \
    "restored: a lookup on the searchable column finds A's row (not B's with the same address)"
# with a handful of rows the tenant's primary-key range costs the same as the
# blind index; a few hundred more of A's rows make the plan choice certain
read_as "$DST" "$TA" "INSERT INTO people (id, name, email) SELECT 1000 + g, 'filler', 'filler' || g || '@example.com' FROM generate_series(1, 400) g" >/dev/null
sql "$DST" "ANALYZE people" >/dev/null
out=$(read_as "$DST" "$TA" "SET enable_seqscan = off" "EXPLAIN (COSTS OFF) SELECT id FROM people WHERE email = '$MAIL_A1'")
like "$out" '(Index Scan using|Bitmap Index Scan on) utilix_bidx_' "restored: EXPLAIN shows the lookup going through the blind index"
read_as "$DST" "$TA" "DELETE FROM people WHERE id > 1000" >/dev/null
is "$(read_as "$DST" "$TA" "SET enable_seqscan = off" "SELECT id FROM people WHERE email = '$MAIL_A1'")" "1" \
    "restored: the lookup through the restored blind index returns the right row"
is "$(read_as "$DST" "$TB" "SELECT string_agg(id::text, ',' ORDER BY id) FROM people WHERE email = '$MAIL_SHARED'")" "1" \
    "restored: B's lookup of the shared address returns B's row"

PROT_Q="SELECT (rls_enabled, rls_forced, tenant_policy, guard_trigger)::text FROM utilix.protected_tables WHERE table_name = 'people'::regclass"
is "$(sql "$DST" "$PROT_Q")" "(t,t,t,t)" "restored: the table is still protected (row level security on and forced, tenant policy, guard trigger)"
is "$(sql "$DST" "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'people'::regclass AND tgname = 'zz_utilix_seal' AND tgenabled = 'O'")" "1" \
    "restored: the seal trigger is there and enabled"
out=$(read_as "$DST" "$TA" "INSERT INTO people (tenant_id, id, name, email) VALUES ($TA, 4, 'written after restore', 'new-$R@example.com')" \
                           "SELECT name::text || '|' || utilix.is_sealed(name) FROM people WHERE id = 4" \
                           "SELECT id FROM people WHERE email = 'new-$R@example.com'")
is "$out" "written after restore|true
4" "restored: a new row is sealed, reads back, and is found by the blind index"

# key management and column changes in the restored database
out=$(sql "$DST" "SELECT utilix.rotate_tenant_key($TA)")
is "$out" "2" "restored: rotate_tenant_key(A) works"
out=$(sqlv "$DST" "SELECT utilix.reencrypt()" "SELECT utilix.reencrypt()")
is "$out" "11
0" "restored: reencrypt() reseals A's 11 values, then returns 0"
is "$(sql "$DST" "SELECT count(*) FROM people p JOIN utilix.data_key k ON k.tenant_id = p.tenant_id
                     AND k.version = utilix.key_version(p.name) WHERE k.wrapped IS NULL")" "0" \
    "restored: after reencrypt() no value is left under a retired key (nothing became unreadable)"
is "$(read_as "$DST" "$TA" "SELECT string_agg(utilix.key_version(name)::text || ':' || name::text, ',' ORDER BY id) FROM people")" \
    "2:$NAME_A1,2:,2:$NAME_A3,2:written after restore" "restored: after rotation A's values use version 2 and still decrypt"
out=$(sqlo "$DST" "SELECT utilix.encrypt_column('people', 'extra')")
is "$out" "5" "restored: encrypt_column() of another column of the restored table works"
out=$(sqlv "$DST" "SELECT utilix.decrypt_column('people', 'profile')" \
                  "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname = 'profile'" \
                  "SELECT profile->>'ssn' FROM people WHERE tenant_id = $TA AND id = 1")
is "$out" "
jsonb
$SSN_A1" "restored: decrypt_column() restores the plaintext"

# ---------------------------------------------------------------- plain-SQL dump restored with psql
pg_dump -Fp -f "$wdir/plain.sql" "$SRC" 2>"$wdir/pdump.err"
is "$?" "0" "pg_dump -Fp of the source database exits 0"
leaked=()
for p in "${PLAINS[@]}"; do
    grep -qiF -- "$p" "$wdir/plain.sql" && leaked+=("$p")
done
is "${leaked[*]:-}" "" "the plain-SQL dump holds none of the plaintext strings"
like "$(grep -c 'utxe1:' "$wdir/plain.sql")" '^[1-9]' "the plain-SQL dump holds armour"
out=$(sql postgres "CREATE DATABASE $PLN") || bail "create $PLN: $out"
psql -X -q -v ON_ERROR_STOP=1 -d "$PLN" -f "$wdir/plain.sql" >"$wdir/prestore.out" 2>"$wdir/prestore.err"
rc=$?
is "$rc" "0" "psql -f plain.sql into a fresh database exits 0"
if [ -s "$wdir/prestore.err" ]; then
    diag "psql -f plain.sql printed (exit $rc):"
    diag "$(head -40 "$wdir/prestore.err")"
fi
sql "$PLN" "$STORED_Q" > "$wdir/pln.stored"
if cmp -s "$wdir/src.stored" "$wdir/pln.stored"; then
    ok "plain-SQL restore: values byte-identical to the source's"
else
    not_ok "plain-SQL restore: values byte-identical to the source's" "$(diff "$wdir/src.stored" "$wdir/pln.stored" | head -6 | cut -c1-200)"
fi
is "$(sql "$PLN" "$PROT_Q")" "(t,t,t,t)" "plain-SQL restore: the table is still protected"
is "$(sql "$PLN" "$SEALED_Q")" "5/5 4/4 3/3 3/3" "plain-SQL restore: every non-NULL value is sealed"
is "$(read_as "$PLN" "$TA" "$PLAIN_A_Q")" "$WANT_A" "plain-SQL restore: tenant A's context reads the original plaintext"
is "$(read_as "$PLN" "$TA" "SET enable_seqscan = off" "SELECT string_agg(id::text, ',' ORDER BY id) FROM people WHERE email = '$MAIL_SHARED'")" "3" \
    "plain-SQL restore: the blind index finds A's row"

# ---------------------------------------------------------------- renames (in the source database, after the dumps)
# The encryption catalog names tables and columns; like the restore above, a
# rename must not disconnect a column from it.  Each step is its own
# transaction (within one transaction a backend's cached metadata hides the
# problem).
out=$(sqlo "$SRC" "ALTER TABLE people RENAME TO people_renamed")
is "$out" "" "source: ALTER TABLE people RENAME TO people_renamed"
out=$(read_as "$SRC" "$TA" "INSERT INTO people_renamed (tenant_id, id, name, qty) VALUES ($TA, 10, 'after table rename', 10)" \
                           "SELECT name::text FROM people_renamed WHERE id = 10")
is "$out" "after table rename" "after a table rename, a new row is sealed and reads back"
out=$(sqlo "$SRC" "ALTER TABLE people_renamed RENAME COLUMN name TO full_name")
is "$out" "" "source: ALTER TABLE ... RENAME COLUMN name TO full_name"
out=$(read_as "$SRC" "$TA" "INSERT INTO people_renamed (tenant_id, id, full_name, qty) VALUES ($TA, 11, 'after column rename', 11)" \
                           "SELECT string_agg(full_name::text, ',' ORDER BY id) FROM people_renamed WHERE id IN (1, 11)")
is "$out" "$NAME_A1,after column rename" "after a column rename, a new row is sealed and old and new values read back"
out=$(sqlo "$SRC" "SELECT utilix.rotate_tenant_key($TB)" "SELECT utilix.reencrypt()" "SELECT utilix.reencrypt()")
is "$out" "2
6
0" "after the renames, rotate_tenant_key(B) and reencrypt() reseal B's 6 values"
is "$(sql "$SRC" "SELECT count(*) FROM people_renamed p JOIN utilix.data_key k ON k.tenant_id = p.tenant_id
                     AND k.version = utilix.key_version(p.full_name) WHERE k.wrapped IS NULL")" "0" \
    "after the renames and reencrypt() no value is left under a retired key (nothing became unreadable)"

done_testing
