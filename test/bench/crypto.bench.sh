#!/usr/bin/env bash
# Benchmark: seal and open of 40-byte values from SQL (AES-256-GCM through
# utilix.crypto_seal / utilix.crypto_open), in values per second, beside a
# plain SQL function call that does no crypto, in the same run and the same
# query shape:
#
#   baseline  SELECT count(pg_catalog.byteacat(v, '\x'::bytea)) FROM cv
#             (a C builtin, strict, returns a fresh bytea of the same size:
#             the cost of calling a function on the value, without crypto)
#   seal      SELECT count(utilix.crypto_seal(k, nonce, aad, v)) FROM cv
#   open      SELECT count(utilix.crypto_open(k, nonce, aad, sealed)) FROM cv
#   seal+open SELECT count(utilix.crypto_open(k, nonce, aad,
#                              utilix.crypto_seal(k, nonce, aad, v))) FROM cv
#
# cv holds BENCH_CRYPTO_ROWS rows of a random 12-byte nonce, a random 40-byte
# value and its sealed form; k (32 bytes) and aad (one tenant and column, as
# the encrypted column type will bind) are literals in the query.  Each query
# runs once to warm up, then BENCH_CRYPTO_ROUNDS times in rotating order in
# one session; the median wall time inside the server is used.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

db=bench_crypto
rows=${BENCH_CRYPTO_ROWS:-1000000}
rounds=${BENCH_CRYPTO_ROUNDS:-5}

bench_log "crypto: $rows values of 40 bytes, $rounds rounds"
bench_createdb "$db"
bench_psql "$db" <<SQL
CREATE TABLE cv (nonce bytea NOT NULL, v bytea NOT NULL, sealed bytea);
INSERT INTO cv (nonce, v)
    SELECT utilix.crypto_random(12), utilix.crypto_random(40) FROM generate_series(1, $rows);
CREATE TABLE bench.k AS
    SELECT utilix.crypto_random(32) AS k, convert_to('tenant:1/column:readings.value', 'UTF8') AS aad;
UPDATE cv SET sealed = utilix.crypto_seal(k.k, cv.nonce, k.aad, cv.v) FROM bench.k k;
VACUUM (FREEZE, ANALYZE) cv;
SQL

key=$(bench_psql "$db" -c "SELECT quote_literal(k::text) || '::bytea' FROM bench.k")
aad=$(bench_psql "$db" -c "SELECT quote_literal(aad::text) || '::bytea' FROM bench.k")

# sanity: the round trip gives back every value
ok=$(bench_psql "$db" -c "SELECT count(*) FROM cv
                           WHERE utilix.crypto_open($key, nonce, $aad, sealed) = v
                             AND utilix.crypto_open($key, nonce, $aad, utilix.crypto_seal($key, nonce, $aad, v)) = v")
[ "$ok" -eq "$rows" ] || bench_die "crypto round trip returned $ok of $rows values"

results=$(bench_sql_rounds "$db" "$rounds" \
    base     "SELECT count(pg_catalog.byteacat(v, '\\x'::bytea)) FROM cv" \
    seal     "SELECT count(utilix.crypto_seal($key, nonce, $aad, v)) FROM cv" \
    open     "SELECT count(utilix.crypto_open($key, nonce, $aad, sealed)) FROM cv" \
    sealopen "SELECT count(utilix.crypto_open($key, nonce, $aad, utilix.crypto_seal($key, nonce, $aad, v))) FROM cv")
echo "$results" | sed 's/^/median ms: /'

ms() { echo "$results" | awk -v n="$1" '$1 == n { print $2 }'; }
base_ms=$(ms base); seal_ms=$(ms seal); open_ms=$(ms open); so_ms=$(ms sealopen)
rate() { bench_calc "$rows / ($1 / 1000)"; }
base_rate=$(rate "$base_ms")

# the cost of the crypto alone, per value, beyond the baseline call
for x in seal:$seal_ms open:$open_ms seal+open:$so_ms; do
    printf '%s: %.2f us per value beyond the baseline call (%.3f us)\n' "${x%%:*}" \
        "$(bench_calc "(${x#*:} - $base_ms) * 1000 / $rows")" "$(bench_calc "$base_ms * 1000 / $rows")"
done

bench_record "crypto: seal 40 B (vs byteacat call)"      "$(rate "$seal_ms")" "values/s" "$base_rate" "" report
bench_record "crypto: open 40 B (vs byteacat call)"      "$(rate "$open_ms")" "values/s" "$base_rate" "" report
bench_record "crypto: seal+open 40 B (vs byteacat call)" "$(rate "$so_ms")"   "values/s" "$base_rate" "" report

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE $db" >/dev/null
