#!/usr/bin/env bash
# Attack review 3 of issue 17 class 4 (labels and the blind index): each
# assertion is a property that must hold; the first three groups failed
# when this review was written.
#
#  1. The bytes of a stored searchable value are compared by PostgreSQL's
#     generic record image operators (*<, *=, record_image_ops), which need
#     no equality operator of the type and no clearance.  Ordered against
#     armour it types in (any parseable envelope is accepted), a reader
#     below the label recovers a value's blind index, which its armour
#     withholds, in 128 comparisons; with the guess's, the labelled value.
#  2. Compression: an array (or row) that holds the target and a guess is
#     compressed by pglz when stored in a table of the caller's own (a TEMP
#     table will do); equal blind indexes compress 16 bytes better, and
#     pg_column_size tells.
#  3. COPY FROM STDIN, which utilix runs as the table's owner: when the
#     owner is a superuser or BYPASSRLS, the seal trigger takes the owner
#     for the writer (role_outside_rls looks at GetUserId()), so a writer
#     below the label copies, moves and restores ciphertext it cannot read,
#     which INSERT and UPDATE refuse (42501).
#  4. What held: the other routes (operators, grouping, sorting, casts,
#     json, counts), the refusals' messages, the legitimate writes.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

rv_dir=$(mktemp -d /tmp/utilix-review3.XXXXXX)
cleanup() { UTILIX_DIR=$rv_dir; cluster_destroy; }
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$rv_dir" || bail "initdb failed"
DB=rv3
APP=rv3_app
ISS=rv3_issuer
cluster_start || bail "the server does not start"

sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1; }
app() {     # app TOKEN: one session of the application role, a script on stdin, errors go on
    { echo "SELECT utilix.set_context('$1', false) IS NULL AS _ctx \\gset"; cat; } |
        psql -X -q -A -t -U "$APP" -d "$DB" 2>&1
}

out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" 2>&1) || bail "create database: $out"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION utilix;
CREATE ROLE $APP LOGIN;
CREATE ROLE $ISS LOGIN IN ROLE utilix_issuer;
SELECT utilix.create_tenant('review3');
CREATE TABLE staff (tenant_id bigint NOT NULL, id int NOT NULL, name text, salary text, band text,
                    PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('staff');
SELECT utilix.encrypt_column('staff', 'salary', label => 'confidential');
SELECT utilix.encrypt_column('staff', 'band', label => 'secret', searchable => true);
GRANT SELECT, INSERT, UPDATE, DELETE ON staff TO $APP;
SQL
) || bail "set-up: $out"
T=$(sql "SELECT id FROM utilix.tenant WHERE name = 'review3'")
tok() { psql -X -q -A -t -U "$ISS" -d "$DB" -c "SELECT utilix.issue_context($T, '$1', '1 hour', '$2', '$3')"; }
SEC=$(tok hr '{read,write}' secret)
LO=$(tok clerk '{read,write}' public)
RO=$(tok viewer '{read}' public)
like "$SEC$LO$RO" '^utx1\..*utx1\..*utx1\.' "a reader at the label, a writer and a reader below it"

out=$(app "$SEC" <<SQL
INSERT INTO staff VALUES ($T, 1, 'Ann', '90000', 'A'), ($T, 2, 'Bob', '50000', 'B'), ($T, 3, 'Cy', '70000', 'A');
SQL
)
is "$out" "" "the reader at the label writes three rows (Ann and Cy share band A)"

# ------------------------------------------------------------------ 1. record image order
# pg_temp.bidx_of(id): the blind index of a row's band as the session can
# learn it by ordering the stored value against armour it types in
STEAL=$(cat <<'SQL'
CREATE FUNCTION pg_temp.b64d(s text) RETURNS bytea LANGUAGE sql AS
$$ SELECT decode(rpad(translate(s, '-_', '+/'), ((length(s) + 3) / 4) * 4, '='), 'base64') $$;
CREATE FUNCTION pg_temp.b64e(b bytea) RETURNS text LANGUAGE sql AS
$$ SELECT rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=') $$;
CREATE FUNCTION pg_temp.bidx_of(rid int) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE raw bytea; pre bytea; lo int; hi int; mid int; lt boolean; c text;
BEGIN
  SELECT pg_temp.b64d(substr(band::text, 7)) INTO raw FROM staff WHERE id = rid;
  pre := substr(set_byte(raw, 6, 1), 1, 27);
  FOR i IN 0..15 LOOP
    lo := 0; hi := 255;
    WHILE lo < hi LOOP
      mid := (lo + hi + 1) / 2;
      c := 'utxe1:' || pg_temp.b64e(pre || set_byte('\x00'::bytea, 0, mid) ||
                                    substr(decode(repeat('00', 200), 'hex'), 1, length(raw) - 28 - i));
      EXECUTE format('SELECT a OPERATOR(pg_catalog.*<) b FROM (SELECT band FROM staff WHERE id = $1) a, '
                     '(SELECT %L::utilix.encrypted_text) b', c) INTO lt USING rid;
      IF lt THEN hi := mid - 1; ELSE lo := mid; END IF;
    END LOOP;
    pre := pre || set_byte('\x00'::bytea, 0, lo);
  END LOOP;
  RETURN encode(substr(pre, 28), 'hex');
END $f$;
SQL
)
real=$(sql "SELECT encode(substr(decode(rpad(translate(substr(band::text, 7), '-_', '+/'),
                ((length(band::text) - 6 + 3) / 4) * 4, '='), 'base64'), 28, 16), 'hex') FROM staff WHERE id = 1")
stolen=$(app "$RO" <<SQL
$STEAL
SELECT pg_temp.bidx_of(1);
SQL
)
unlike "$stolen" "^$real\$" "a reader below the label cannot recover a stored value's blind index by record image order"
round() {   # round GUESS: the writer below the label, one rolled-back guess; t (equal) or f
    app "$LO" <<SQL | tail -1
$STEAL
BEGIN;
INSERT INTO staff (tenant_id, id, name, band) VALUES ($T, 900, 'guess', '$1');
SELECT pg_temp.bidx_of(1) = pg_temp.bidx_of(900);
ROLLBACK;
SQL
}
is "$(round A)" "$(round B)" "record image order: the right guess of Ann's band answers as a wrong one"
out=$(app "$LO" <<'SQL'
SELECT count(*) FROM (SELECT band FROM staff WHERE id = 1) a, (SELECT band FROM staff WHERE id = 3) b
 WHERE a OPERATOR(pg_catalog.*<) b OR b OPERATOR(pg_catalog.*<) a;
SQL
)
diag "record image comparison of two stored values below the label: $out"

# ------------------------------------------------------------------ 2. compression
csize() {   # csize GUESS: pg_column_size of [target, guess, target x 40] stored in a TEMP table
    app "$LO" <<SQL | tail -1
BEGIN;
INSERT INTO staff (tenant_id, id, name, band) VALUES ($T, 900, 'guess', '$1');
CREATE TEMP TABLE z AS SELECT array_cat(ARRAY[t.band, g.band], array_fill(t.band, ARRAY[40])) AS a
  FROM staff t, staff g WHERE t.id = 1 AND g.id = 900;
SELECT pg_column_size(a) FROM z;
ROLLBACK;
SQL
}
right=$(csize A)
wrong=$(csize B)
diag "compressed sizes: right guess $right, wrong guess $wrong"
is "$right" "$wrong" "compression: the right guess stored next to the target compresses as a wrong one"
pair() {    # pair ID ID: pg_column_size of two stored values compressed together, a reader below the label
    app "$RO" <<SQL | tail -1
CREATE TEMP TABLE z AS SELECT array_cat(ARRAY[x.band, y.band], array_fill(x.band, ARRAY[40])) AS a
  FROM staff x, staff y WHERE x.id = $1 AND y.id = $2;
SELECT pg_column_size(a) FROM z;
SQL
}
is "$(pair 1 3)" "$(pair 1 2)" "compression: equal stored values (Ann, Cy) compress as unequal ones (Ann, Bob)"

# ------------------------------------------------------------------ 3. COPY FROM as a superuser-owned table's owner
ARM=$(app "$LO" <<< "SELECT salary::text FROM staff WHERE id = 1" | tail -1)
like "$ARM" '^utxe1:' "the writer below the label reads Ann's salary as armour"
out=$(app "$LO" <<SQL
INSERT INTO staff (tenant_id, id, name, salary) VALUES ($T, 78, 'insert', '$ARM');
SQL
)
like "$out" 'permission denied to write ciphertext of column "salary"' "INSERT of Ann's salary ciphertext into another row: refused"
out=$(printf '%s\n' "COPY staff (tenant_id, id, name, salary) FROM STDIN;" "$T	79	copy	$ARM" '\.' | app "$LO")
like "$out" 'permission denied to write ciphertext of column "salary"' "COPY FROM of Ann's salary ciphertext into another row: refused"
is "$(sql "SELECT count(*) FROM staff WHERE id = 79")" "0" "... and no row holds the copy"
# the restore: keep the old value, let the reader raise it, delete the row and COPY it back
app "$SEC" <<< "UPDATE staff SET salary = '99000' WHERE id = 1" >/dev/null
out=$(printf '%s\n' "BEGIN;" "DELETE FROM staff WHERE id = 1;" "COPY staff (tenant_id, id, name, salary) FROM STDIN;" \
      "$T	1	Ann	$ARM" '\.' "COMMIT;" | app "$LO")
is "$(app "$SEC" <<< "SELECT salary::text FROM staff WHERE id = 1" | tail -1)" "99000" \
   "DELETE and COPY FROM cannot restore Ann's old salary over the raise"
# (Ann's row as it should be again, whatever the restore did)
app "$SEC" <<< "INSERT INTO staff (tenant_id, id, name, salary, band) VALUES ($T, 1, 'Ann', '99000', 'A')
                ON CONFLICT (tenant_id, id) DO UPDATE SET salary = EXCLUDED.salary, band = EXCLUDED.band" >/dev/null

# ------------------------------------------------------------------ 4. what held
out=$(app "$LO" <<SQL
\\set ON_ERROR_STOP 0
BEGIN;
INSERT INTO staff (tenant_id, id, name, band) VALUES ($T, 900, 'guess', 'A');
SET search_path = public, utilix;
SELECT 'eq:' || count(*) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900 AND t.band = g.band;
SELECT 'eqhash:' || count(*) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900 AND t.band =# g.band;
SELECT 'any:' || count(*) FROM staff t WHERE t.id = 1 AND t.band =# ANY (ARRAY(SELECT band FROM staff WHERE id = 900));
SELECT 'notdistinct:' || count(*) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900 AND t.band IS NOT DISTINCT FROM g.band;
SELECT 'rowcmp:' || count(*) FROM staff t, staff g WHERE t.id = 1 AND g.id = 900 AND ROW(t.band) = ROW(g.band);
SELECT 'text:' || count(DISTINCT band::text) FROM staff WHERE id IN (1, 900);
SELECT 'json:' || (to_jsonb(t)->>'band' = to_jsonb(g)->>'band') FROM (SELECT band FROM staff WHERE id = 1) t, (SELECT band FROM staff WHERE id = 900) g;
SELECT 'plain:' || count(*) FROM staff WHERE band = 'A';
WITH d AS (DELETE FROM staff WHERE band =# (SELECT band FROM staff WHERE id = 900) RETURNING 1) SELECT 'delete:' || count(*) FROM d;
SAVEPOINT s;
SELECT count(DISTINCT band) FROM staff;
ROLLBACK TO s;
SELECT id FROM staff ORDER BY band;
ROLLBACK TO s;
SELECT utilix._bidx_hash(band) FROM staff WHERE id = 1;
ROLLBACK;
SQL
)
for want in 'eq:0' 'eqhash:0' 'any:0' 'notdistinct:0' 'rowcmp:0' 'text:2' 'json:false' 'plain:0' 'delete:0'; do
    like "$out" "^$want\$" "the writer below the label, right guess: $want"
done
like "$out" 'could not identify an equality operator for type encrypted_text' "count(DISTINCT) of encrypted values: no equality operator"
like "$out" 'could not identify an ordering operator for type encrypted_text' "ORDER BY encrypted values: no ordering operator"
like "$out" 'permission denied to compare values of encrypted column id [0-9]+$' "_bidx_hash: 42501, naming only the column id"
unlike "$out" '90000|99000|\bA\b.*guess' "no refusal quotes a value"
out=$(app "$LO" <<SQL
INSERT INTO staff (tenant_id, id, name, salary, band) VALUES ($T, 50, 'new', '1', 'C');
UPDATE staff SET name = 'Bob B.' WHERE id = 2;
UPDATE staff SET band = band, salary = salary WHERE id = 2;
INSERT INTO staff (tenant_id, id, name, band) VALUES ($T, 50, 'new', 'D') ON CONFLICT (tenant_id, id) DO UPDATE SET band = EXCLUDED.band;
SQL
)
is "$out" "" "the writer below the label writes plaintext, updates other columns, keeps values, upserts"
is "$(app "$SEC" <<< "SELECT name || ':' || band::text FROM staff WHERE id IN (2, 50) ORDER BY id" | tail -2)" $'Bob B.:B\nnew:D' \
   "... and the reader at the label reads what it wrote"

done_testing
