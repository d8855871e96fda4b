#!/usr/bin/env bash
# Benchmark: transparent column encryption (utilix.encrypt_column) against
# the same data in plaintext, and against pgcrypto.
#
# Data: BENCH_ENC_ROWS (default 1 M) values of 40 bytes,
# md5(i) || lpad(i, 8, '0'), all of ONE tenant (so that row level security
# lets every row through), in four tables, each protected by utilix.protect
# (so every side pays the same tenant policy) with primary key (tenant_id, id):
#
#   enc_bench    v utilix.encrypted_text (utilix.encrypt_column)
#   plain_bench  v text, the same values in plaintext
#   cbc_bench    v_cbc = pgcrypto encrypt(convert_to(v, 'UTF8'), key, 'aes')
#                (AES-256-CBC, a 32-byte key)
#   pgp_bench    v_pgp = pgp_sym_encrypt(v, 'pw'), only BENCH_ENC_PGP_ROWS
#                (default 5,000) rows: it runs at about 2 k values/s, so its
#                rate is scaled from fewer rows
#
# The application role bench_enc_app (LOGIN, not superuser, not owner) holds
# a context of the tenant (token from utilix.issue_context, minted by a member
# of utilix_issuer, passed as PGOPTIONS -c utilix.context=...): a superuser
# would bypass row level security but see armour, not plaintext.  The
# database runs with max_parallel_workers_per_gather = 0, for every side.
#
# (a) decrypting scan, server-side (bench.elapsed_ms), BENCH_ENC_ROUNDS runs
#     each after a warm-up, rotating order, median:
#       SELECT sum(octet_length(v::text)) FROM enc_bench      (implicit cast = utilix.decrypt)
#       SELECT sum(octet_length(v)) FROM plain_bench
#       SELECT sum(octet_length(decrypt(v_cbc, key, 'aes'))) FROM cbc_bench
#       SELECT sum(octet_length(pgp_sym_decrypt(v_pgp, 'pw'))) FROM pgp_bench
#     Goals (issue): >= 1.5 M rows/s, >= 3x pgcrypto decrypt(),
#     >= 500x pgp_sym_decrypt().  The plaintext scan is reported beside it.
# (b) output path: COPY (SELECT v FROM enc_bench) TO STDOUT as the app role,
#     through psql to /dev/null, timed by the shell, against plain_bench.
#     Every value goes through the type's output function.  Report only.
# (c) encrypting INSERT ... SELECT of BENCH_ENC_INSERT_ROWS (default 200 k)
#     rows from an unprotected source table, as the app role with its context
#     (tenant_id from the column default), into ins_enc (protected, v
#     encrypted) against ins_plain (protected, v text), each run in a new
#     session, timed inside the server.  Before each run, untimed: TRUNCATE
#     and CHECKPOINT (autovacuum is off for both targets).  A warm-up run of a
#     tenth of the rows each, then BENCH_ENC_ROUNDS runs each, alternating
#     which goes first, median.  Goal: ratio >= 0.7.
# (d) encrypting COPY FROM STDIN of the same rows (tenant_id in the data),
#     through psql, timed by the shell, run as in (c).  PostgreSQL itself
#     refuses COPY FROM to roles under row level security (0A000), and
#     protected tables FORCE it; utilix lets the app role COPY FROM STDIN
#     into a protected table.  The app role is tried first; should it be
#     refused, the superuser runs the COPY instead (the seal trigger seals
#     under each row's tenant without a context), and the result row says
#     so.  Goal: >= 0.7.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

db=bench_encryption
app=bench_enc_app
issuer=bench_enc_issuer
rows=${BENCH_ENC_ROWS:-1000000}
pgp_rows=${BENCH_ENC_PGP_ROWS:-5000}
ins_rows=${BENCH_ENC_INSERT_ROWS:-200000}
rounds=${BENCH_ENC_ROUNDS:-3}
warm_rows=$(( ins_rows / 10 ))

now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

bench_log "encryption: $rows values of 40 bytes (pgp: $pgp_rows), inserts of $ins_rows rows, $rounds rounds"
bench_createdb "$db"
t0=$(now_ns)
bench_psql "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE EXTENSION pgcrypto;
ALTER DATABASE $db SET max_parallel_workers_per_gather = 0;
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$app') THEN
        CREATE ROLE $app LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$issuer') THEN
        CREATE ROLE $issuer NOLOGIN NOSUPERUSER;
    END IF;
END
\$\$;
GRANT utilix_issuer TO $issuer;

CREATE TABLE bench.cfg (tenant bigint NOT NULL, token text, aes_key bytea NOT NULL);
INSERT INTO bench.cfg (tenant, aes_key) SELECT utilix.create_tenant('bench-encryption'), gen_random_bytes(32);
GRANT SELECT, UPDATE ON bench.cfg TO $issuer;
GRANT USAGE ON SCHEMA bench TO $issuer;
SET ROLE $issuer;
UPDATE bench.cfg SET token = utilix.issue_context(tenant, 'bench', interval '3 hours');
RESET ROLE;

-- the values, unprotected
CREATE TABLE enc_src (id int PRIMARY KEY, v text NOT NULL);
INSERT INTO enc_src SELECT i, md5(i::text) || lpad(i::text, 8, '0') FROM generate_series(1, $rows) i;

-- plaintext, protected after loading (the same policy as enc_bench)
CREATE TABLE plain_bench (tenant_id bigint NOT NULL, id int NOT NULL, v text NOT NULL);
INSERT INTO plain_bench SELECT c.tenant, s.id, s.v FROM enc_src s, bench.cfg c ORDER BY s.id;
ALTER TABLE plain_bench ADD PRIMARY KEY (tenant_id, id);
SELECT utilix.protect('plain_bench');

-- pgcrypto, protected after loading
CREATE TABLE cbc_bench (tenant_id bigint NOT NULL, id int NOT NULL, v_cbc bytea NOT NULL);
INSERT INTO cbc_bench SELECT c.tenant, s.id, encrypt(convert_to(s.v, 'UTF8'), c.aes_key, 'aes')
  FROM enc_src s, bench.cfg c ORDER BY s.id;
ALTER TABLE cbc_bench ADD PRIMARY KEY (tenant_id, id);
SELECT utilix.protect('cbc_bench');
CREATE TABLE pgp_bench (tenant_id bigint NOT NULL, id int NOT NULL, v_pgp bytea NOT NULL);
INSERT INTO pgp_bench SELECT c.tenant, s.id, pgp_sym_encrypt(s.v, 'pw')
  FROM enc_src s, bench.cfg c WHERE s.id <= $pgp_rows ORDER BY s.id;
ALTER TABLE pgp_bench ADD PRIMARY KEY (tenant_id, id);
SELECT utilix.protect('pgp_bench');

-- insert targets and their source
CREATE TABLE ins_src AS SELECT id, v FROM enc_src WHERE id <= $ins_rows ORDER BY id;
CREATE TABLE ins_plain (tenant_id bigint NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('ins_plain');
CREATE TABLE ins_enc (LIKE ins_plain INCLUDING ALL);
SELECT utilix.protect('ins_enc');
SELECT utilix.encrypt_column('ins_enc', 'v');
-- no autovacuum between the runs of (c) and (d)
ALTER TABLE ins_plain SET (autovacuum_enabled = off);
ALTER TABLE ins_enc SET (autovacuum_enabled = off);

GRANT USAGE ON SCHEMA bench TO $app;
GRANT SELECT ON plain_bench, cbc_bench, pgp_bench, ins_src TO $app;
GRANT SELECT, INSERT, TRUNCATE ON ins_plain, ins_enc TO $app;
SQL
bench_log "plaintext and pgcrypto tables loaded in $(secs_since "$t0") s"

# encrypted: protected and encrypted while empty, then filled by INSERT (the
# seal trigger seals each row under its tenant's key)
t0=$(now_ns)
bench_psql "$db" >/dev/null <<SQL
SET client_min_messages = warning;
CREATE TABLE enc_bench (tenant_id bigint NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('enc_bench');
SELECT utilix.encrypt_column('enc_bench', 'v');
INSERT INTO enc_bench SELECT c.tenant, s.id, s.v FROM enc_src s, bench.cfg c ORDER BY s.id;
GRANT SELECT ON enc_bench TO $app;
SQL
bench_log "enc_bench: $rows rows sealed by INSERT ... SELECT (as superuser) in $(secs_since "$t0") s"
t0=$(now_ns)
bench_psql "$db" -c "VACUUM (FREEZE, ANALYZE) enc_src, plain_bench, enc_bench, cbc_bench, pgp_bench, ins_src, ins_plain, ins_enc"
bench_log "vacuum in $(secs_since "$t0") s; table sizes:"
bench_psql "$db" -F ' ' -c "SELECT '    ' || relname, pg_size_pretty(pg_relation_size(oid)),
                                   pg_size_pretty(pg_total_relation_size(oid))
                              FROM pg_class WHERE relname IN ('enc_bench', 'plain_bench', 'cbc_bench', 'pgp_bench')
                             ORDER BY relname"

tenant=$(bench_psql "$db" -c "SELECT tenant FROM bench.cfg")
token=$(bench_psql "$db" -c "SELECT token FROM bench.cfg")
key=$(bench_psql "$db" -c "SELECT quote_literal(aes_key::text) || '::bytea' FROM bench.cfg")
[ -n "$token" ] || bench_die "no context token"
ctx_opts="-c utilix.context=$token"

# as_app CMD...: run CMD as the app role holding the tenant's context
as_app() {
    PGUSER=$app PGOPTIONS="$ctx_opts" "$@"
}

# --- sanity ----------------------------------------------------------------------
# the app role reads every value in plaintext, identical to the plain table's
check=$(as_app bench_psql "$db" -F ' ' <<SQL
SELECT count(*), sum(octet_length(v::text)), sum(hashtext(v::text)) FROM enc_bench;
SELECT count(*), sum(octet_length(v)), sum(hashtext(v)) FROM plain_bench;
SELECT count(*) FROM cbc_bench c JOIN plain_bench p USING (tenant_id, id)
 WHERE c.id <= 10000 AND convert_from(decrypt(c.v_cbc, $key, 'aes'), 'UTF8') = p.v;
SELECT count(*) FROM pgp_bench g JOIN plain_bench p USING (tenant_id, id)
 WHERE g.id <= 100 AND pgp_sym_decrypt(g.v_pgp, 'pw') = p.v;
SQL
)
mapfile -t c <<< "$check"
[ "${c[0]}" = "${c[1]}" ] || bench_die "decrypted values differ from the plaintext: ${c[0]} / ${c[1]}"
[ "${c[0]%% *}" -eq "$rows" ] || bench_die "app role sees ${c[0]%% *} of $rows rows"
[ "${c[2]}" -eq $(( rows < 10000 ? rows : 10000 )) ] || bench_die "pgcrypto decrypt() check: ${c[2]}"
[ "${c[3]}" -eq $(( pgp_rows < 100 ? pgp_rows : 100 )) ] || bench_die "pgp_sym_decrypt() check: ${c[3]}"
# the superuser gets armour, and what is stored is sealed
armour=$(bench_psql "$db" -c "SELECT count(*) FROM (SELECT v FROM enc_bench LIMIT 1000) s
                               WHERE v::text LIKE 'utxe1:%' AND utilix.is_sealed(v)")
[ "$armour" -eq $(( rows < 1000 ? rows : 1000 )) ] || bench_die "superuser saw plaintext or unsealed values"

# --- plans -------------------------------------------------------------------------
# utilix refuses EXPLAIN of protected tables to roles under row level security;
# the superuser lifts that for its session and takes the app role (as in
# isolation.bench.sh).  No Gather: parallelism is off for the database.
q_enc="SELECT sum(octet_length(v::text)) FROM enc_bench"
q_plain="SELECT sum(octet_length(v)) FROM plain_bench"
q_cbc="SELECT sum(octet_length(decrypt(v_cbc, $key, 'aes'))) FROM cbc_bench"
q_pgp="SELECT sum(octet_length(pgp_sym_decrypt(v_pgp, 'pw'))) FROM pgp_bench"
plans=$(PGOPTIONS="$ctx_opts" bench_psql "$db" <<SQL 2>&1
SET utilix.restrict_explain = off;
SET ROLE $app;
\\echo '-- encrypted'
EXPLAIN (VERBOSE, COSTS OFF) $q_enc;
\\echo '-- plaintext'
EXPLAIN (VERBOSE, COSTS OFF) $q_plain;
SQL
)
bench_log "plans (as the app role):"
echo "$plans" | sed 's/^/    /'
if echo "$plans" | grep -q Gather; then
    bench_die "parallel plan despite max_parallel_workers_per_gather = 0"
fi

# --- (a) decrypting scan -------------------------------------------------------------
bench_log "(a) decrypting scan: utilix vs plaintext vs pgcrypto decrypt() vs pgp_sym_decrypt()"
a=$(as_app bench_sql_rounds "$db" "$rounds" enc "$q_enc" plain "$q_plain" cbc "$q_cbc" pgp "$q_pgp")
echo "$a" | sed 's/^/median ms: /'
ms() { echo "$1" | awk -v n="$2" '$1 == n { print $2 }'; }
rate() { bench_calc "$1 / ($2 / 1000)"; }
enc_rate=$(rate "$rows" "$(ms "$a" enc)")
plain_rate=$(rate "$rows" "$(ms "$a" plain)")
cbc_rate=$(rate "$rows" "$(ms "$a" cbc)")
pgp_rate=$(rate "$pgp_rows" "$(ms "$a" pgp)")
printf 'rows/s: utilix %.0f, plaintext %.0f, pgcrypto decrypt() %.0f, pgp_sym_decrypt() %.0f\n' \
    "$enc_rate" "$plain_rate" "$cbc_rate" "$pgp_rate"
printf 'utilix decrypt: %.3f us per value beyond the plaintext scan (%.3f us per row)\n' \
    "$(bench_calc "($(ms "$a" enc) - $(ms "$a" plain)) * 1000 / $rows")" \
    "$(bench_calc "$(ms "$a" plain) * 1000 / $rows")"
# for comparison with the issue's figure: an unprotected plaintext scan, as superuser
u=$(bench_sql_rounds "$db" "$rounds" unprotected "SELECT sum(octet_length(v)) FROM enc_src")
printf 'for reference: unprotected plaintext scan (superuser, no policy) %.0f rows/s\n' \
    "$(rate "$rows" "$(ms "$u" unprotected)")"

# --- helpers for (b) to (d) ------------------------------------------------------------
# shell_ms CMD...: wall time of CMD in ms (its output discarded)
shell_ms() {
    local t0 t1
    t0=$(now_ns)
    "$@" >/dev/null || return 1
    t1=$(now_ns)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e6 }'
}
# pair_runs LABEL_A LABEL_B: calls the functions run_LABEL_A and run_LABEL_B
# (each prints the ms of one run) once each with the argument "warm", then
# $rounds times each, alternating which goes first; prints
# "MEDIAN_MS_A MEDIAN_MS_B".
pair_runs() {
    local la=$1 lb=$2 r ta tb all_a=() all_b=()
    "run_$la" warm >/dev/null || return 1
    "run_$lb" warm >/dev/null || return 1
    for ((r = 1; r <= rounds; r++)); do
        if (( r % 2 )); then
            ta=$("run_$la") || return 1; tb=$("run_$lb") || return 1
        else
            tb=$("run_$lb") || return 1; ta=$("run_$la") || return 1
        fi
        bench_log "  round $r: $la $ta ms, $lb $tb ms" >&2
        all_a+=("$ta"); all_b+=("$tb")
    done
    printf '%s %s\n' "$(printf '%s\n' "${all_a[@]}" | bench_median)" \
                     "$(printf '%s\n' "${all_b[@]}" | bench_median)"
}
# same_rows ENC_TABLE PLAIN_TABLE: do both hold the same values (as the app reads them)?
same_rows() {
    local n
    n=$(as_app bench_psql "$db" -F ' ' -c "SELECT count(*), sum(hashtext(v::text)) FROM $1" \
                                       -c "SELECT count(*), sum(hashtext(v)) FROM $2" | sort -u | wc -l)
    [ "$n" -eq 1 ]
}
# fresh TABLE: empty it and write out dirty pages (as the superuser, untimed),
# so that no run pays for the previous one's pages
fresh() {
    bench_psql "$db" -c "TRUNCATE $1" -c "CHECKPOINT"
}

# --- (b) output path ------------------------------------------------------------------
bench_log "(b) COPY (SELECT v ...) TO STDOUT as the app role, to /dev/null"
out_check=$(as_app psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "COPY (SELECT v FROM enc_bench) TO STDOUT" | wc -c)
[ "$out_check" -eq $(( rows * 41 )) ] || bench_die "COPY TO STDOUT gave $out_check bytes, not $(( rows * 41 ))"
run_copyout() { shell_ms as_app psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "COPY (SELECT v FROM $1) TO STDOUT"; }
run_enc_out() { run_copyout enc_bench; }
run_plain_out() { run_copyout plain_bench; }
read -r b_enc b_plain < <(pair_runs enc_out plain_out)
[ -n "${b_plain:-}" ] || bench_die "(b) did not run"

# --- (c) encrypting INSERT ... SELECT ---------------------------------------------------
# each run in a new app session, timed inside the server
bench_log "(c) INSERT ... SELECT $ins_rows rows as the app role: encrypted vs plaintext target"
run_insert() {
    local t=$1 where=""
    [ "${2:-}" = warm ] && where=" WHERE id <= $warm_rows"
    fresh "$t" || return 1
    as_app bench_psql "$db" -c "SELECT bench.elapsed_ms(\$b\$INSERT INTO $t (id, v) SELECT id, v FROM ins_src$where\$b\$)"
}
run_enc_ins() { run_insert ins_enc "$@"; }
run_plain_ins() { run_insert ins_plain "$@"; }
read -r c_enc c_plain < <(pair_runs enc_ins plain_ins)
[ -n "${c_plain:-}" ] || bench_die "(c) did not run"
same_rows ins_enc ins_plain || bench_die "(c): the two INSERT targets differ"

# --- (d) encrypting COPY FROM ---------------------------------------------------------
copy_file=$BENCH_TMP/encryption_copy.$$.tsv
bench_psql "$db" -c "COPY (SELECT c.tenant, s.id, s.v FROM ins_src s, bench.cfg c ORDER BY s.id) TO STDOUT" > "$copy_file"
copy_user=$app
copy_who="app role"
fresh ins_enc
if err=$(printf '%s\t1\tx\n' "$tenant" | as_app psql -X -q -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
            -d "$db" -c "COPY ins_enc (tenant_id, id, v) FROM STDIN" 2>&1); then
    bench_log "(d) the app role may COPY FROM into a protected table: measuring as the app role"
else
    bench_log "(d) COPY FROM refused to the app role: $(echo "$err" | head -1)"
    copy_user=postgres
    copy_who="superuser"
fi
bench_log "(d) COPY FROM STDIN $ins_rows rows (psql, timed by the shell) as $copy_who: encrypted vs plaintext target"
copy_in() {
    shell_ms env PGUSER="$copy_user" PGOPTIONS="$ctx_opts" \
        psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c "COPY $1 (tenant_id, id, v) FROM STDIN"
}
run_copyin() {
    fresh "$1" || return 1
    if [ "${2:-}" = warm ]; then
        head -n "$warm_rows" "$copy_file" | copy_in "$1"
    else
        copy_in "$1" < "$copy_file"
    fi
}
run_enc_in() { run_copyin ins_enc "$@"; }
run_plain_in() { run_copyin ins_plain "$@"; }
read -r d_enc d_plain < <(pair_runs enc_in plain_in)
[ -n "${d_plain:-}" ] || bench_die "(d) did not run"
same_rows ins_enc ins_plain || bench_die "(d): the two COPY targets differ"
rm -f "$copy_file"

# --- results --------------------------------------------------------------------------
b_enc_rate=$(rate "$rows" "$b_enc"); b_plain_rate=$(rate "$rows" "$b_plain")
c_enc_rate=$(rate "$ins_rows" "$c_enc"); c_plain_rate=$(rate "$ins_rows" "$c_plain")
d_enc_rate=$(rate "$ins_rows" "$d_enc"); d_plain_rate=$(rate "$ins_rows" "$d_plain")
printf 'seal cost: INSERT %.2f us, COPY %.2f us per row beyond the plaintext target\n' \
    "$(bench_calc "($c_enc - $c_plain) * 1000 / $ins_rows")" "$(bench_calc "($d_enc - $d_plain) * 1000 / $ins_rows")"

bench_record "encryption: decrypting scan vs plaintext scan"       "$enc_rate" rows/s "$plain_rate" "" report
bench_record "encryption: decrypting scan vs goal 1.5 M rows/s"    "$enc_rate" rows/s 1500000 "" ">= 1"
bench_record "encryption: decrypting scan vs pgcrypto decrypt()"   "$enc_rate" rows/s "$cbc_rate" "" ">= 3"
bench_record "encryption: decrypting scan vs pgp_sym_decrypt()"    "$enc_rate" rows/s "$pgp_rate" "" ">= 500"
bench_record "encryption: COPY (SELECT v) TO STDOUT vs plaintext"  "$b_enc_rate" rows/s "$b_plain_rate" "" report
bench_record "encryption: INSERT ... SELECT (app) vs plaintext"    "$c_enc_rate" rows/s "$c_plain_rate" "" ">= 0.7"
bench_record "encryption: COPY FROM ($copy_who) vs plaintext"      "$d_enc_rate" rows/s "$d_plain_rate" "" ">= 0.7"

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE $db" >/dev/null
