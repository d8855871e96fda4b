#!/usr/bin/env bash
# The blind index of a searchable value is stored masked: XORed with an HMAC
# of the value's own nonce under a key of the column, so two values of equal
# plaintext share no byte of it, and nothing that compares or compresses
# stored bytes (record image operators, pglz) tells which values are equal.
#  1. New values: flag 0x05, and equal plaintexts store different blind
#     index bytes (compared as a superuser).
#  2. Values written before masking (flag 0x01, written here through the
#     tests-only setting utilix.test_unmasked_blind_index) still read, match
#     new values (utilix.=, =#, the blind index) and hash alike.
#  3. reencrypt() rewrites them masked; lookups still find them.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

bm_dir=$(mktemp -d /tmp/utilix-bmask.XXXXXX)
cleanup() { UTILIX_DIR=$bm_dir; cluster_destroy; }
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$bm_dir" || bail "initdb failed"
DB=bmask
APP=bmask_app
ISS=bmask_issuer
cluster_start || bail "the server does not start"

sql() { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1; }
app() {     # app TOKEN: one session of the application role, a script on stdin
    { echo "SELECT utilix.set_context('$1', false) IS NULL AS _ctx \\gset"; cat; } |
        psql -X -q -A -t -U "$APP" -d "$DB" 2>&1
}

out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" 2>&1) || bail "create database: $out"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
SET client_min_messages = warning;
CREATE EXTENSION utilix;
CREATE ROLE $APP LOGIN;
CREATE ROLE $ISS LOGIN IN ROLE utilix_issuer;
SELECT utilix.create_tenant('bmask');
CREATE TABLE staff (tenant_id bigint NOT NULL, id int NOT NULL, band text,
                    PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('staff');
SELECT utilix.encrypt_column('staff', 'band', label => 'secret', searchable => true);
GRANT SELECT, INSERT, UPDATE, DELETE ON staff TO $APP;
ALTER ROLE $APP SET utilix.restrict_explain = off;
SQL
) || bail "set-up: $out"
T=$(sql "SELECT id FROM utilix.tenant WHERE name = 'bmask'")
SEC=$(psql -X -q -A -t -U "$ISS" -d "$DB" -c "SELECT utilix.issue_context($T, 'hr', '1 hour', '{read,write}', 'secret')")

# the stored bytes of a row's band, hex, as the superuser sees them (armour carries them whole)
RAW="decode(rpad(translate(substr(band::text, 7), '-_', '+/'), ((length(band::text) - 6 + 3) / 4) * 4, '='), 'base64')"
flags() { sql "SELECT get_byte($RAW, 6) FROM staff WHERE id = $1"; }
bidx()  { sql "SELECT encode(substr($RAW, 28, 16), 'hex') FROM staff WHERE id = $1"; }

out=$(app "$SEC" <<SQL
INSERT INTO staff VALUES ($T, 1, 'A'), ($T, 2, 'A'), ($T, 3, 'B');
SQL
)
is "$out" "" "three rows, two of them with band A"

# ------------------------------------------------------------------ 1. new values are masked
is "$(flags 1)/$(flags 2)/$(flags 3)" "5/5/5" "new searchable values carry flags 0x05 (blind index, masked)"
b1=$(bidx 1); b2=$(bidx 2)
if [ -n "$b1" ] && [ "$b1" != "$b2" ]; then ok "equal plaintexts store different blind index bytes"
else not_ok "equal plaintexts store different blind index bytes" "$b1 / $b2"; fi
common=$(sql "SELECT count(*) FROM generate_series(0, 15) i, staff a, staff b
               WHERE a.id = 1 AND b.id = 2
                 AND get_byte(substr($(echo "$RAW" | sed 's/band/a.band/g'), 28, 16), i)
                   = get_byte(substr($(echo "$RAW" | sed 's/band/b.band/g'), 28, 16), i)")
diag "blind index bytes equal by chance at the same offset: $common of 16"
hdr=$(sql "SELECT count(DISTINCT substr($RAW, 1, 27)) FROM staff")
is "$hdr" "1" "beyond the blind index, the headers are the same (tenant, column, key version)"
out=$(app "$SEC" <<'SQL'
SET enable_seqscan = off;
SELECT string_agg(id::text, ',' ORDER BY id) FROM staff WHERE band OPERATOR(utilix.=) 'A';
SELECT count(*) FROM staff a, staff b WHERE a.id = 1 AND b.id = 2 AND a.band OPERATOR(utilix.=#) b.band;
SQL
)
is "$out" "1,2
1" "the reader at the label finds both A rows, and =# says they are equal"

# ------------------------------------------------------------------ 2. values written before masking
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
SET utilix.test_unmasked_blind_index = on;
INSERT INTO staff VALUES ($T, 4, 'A'), ($T, 5, 'B');
SQL
)
is "$out" "" "the superuser writes two values in the format before masking"
is "$(flags 4)/$(flags 5)" "1/1" "... which carry flags 0x01 (blind index in clear)"
is "$(sql "SELECT string_agg(utilix._bidx_unmasked(band)::text, ',' ORDER BY id) FROM staff")" \
    "false,false,false,true,true" "utilix._bidx_unmasked tells the old values from the new"
out=$(app "$SEC" <<'SQL'
SELECT string_agg(id || ':' || band::text, ',' ORDER BY id) FROM staff;
SET enable_seqscan = off;
SELECT string_agg(id::text, ',' ORDER BY id) FROM staff WHERE band OPERATOR(utilix.=) 'A';
SELECT string_agg(id::text, ',' ORDER BY id) FROM staff WHERE band OPERATOR(utilix.=) 'B';
SELECT count(*) FROM staff a, staff b WHERE a.id = 1 AND b.id = 4 AND a.band OPERATOR(utilix.=#) b.band;
SELECT count(DISTINCT utilix._bidx_hash(band)) FROM staff WHERE id IN (1, 2, 4);
SQL
)
is "$out" "1:A,2:A,3:B,4:A,5:B
1,2,4
3,5
1
1" "old values read, match new ones through the blind index and =#, and hash alike"
out=$(app "$SEC" <<'SQL'
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM staff WHERE band OPERATOR(utilix.=) 'A';
SQL
)
like "$out" "utilix_bidx_" "the lookups went through the blind index"

# ------------------------------------------------------------------ 3. reencrypt() masks them
out=$(sql "SELECT utilix.reencrypt()")
is "$out" "2" "reencrypt() rewrites the two old values"
is "$(flags 4)/$(flags 5)" "5/5" "... masked"
is "$(sql "SELECT count(*) FROM staff WHERE utilix._bidx_unmasked(band)")" "0" "no value is left unmasked"
out=$(app "$SEC" <<'SQL'
SET enable_seqscan = off;
SELECT string_agg(id::text, ',' ORDER BY id) FROM staff WHERE band OPERATOR(utilix.=) 'A';
SELECT string_agg(id || ':' || band::text, ',' ORDER BY id) FROM staff;
SQL
)
is "$out" "1,2,4
1:A,2:A,3:B,4:A,5:B" "after reencrypt() the lookup and the plaintext are unchanged"
is "$(sql "SELECT utilix.reencrypt()")" "0" "a second reencrypt() has nothing left to do"

done_testing
