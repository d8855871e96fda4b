#!/usr/bin/env bash
# Benchmark: the blind index of a labelled searchable column, and what its
# checks cost (issue 17: equality needs the clearance to read).
#
# Data: BENCH_BIDX_ROWS (default 200 k) values md5(i), all of ONE tenant, in
#   bidx_enc    v utilix.encrypted_text, label confidential, searchable
#               (encrypt_column on the empty table, then INSERT ... SELECT)
#   bidx_plain  v text with a hash index on v
# both protected (the same tenant policy), primary key (tenant_id, id).  The
# application role bench_bidx_app holds a context of the tenant: "reader"
# (clearance confidential) or "writer below the label" (clearance public).
#
# (a) point lookup as the reader: SELECT id ... WHERE v OPERATOR(utilix.=)
#     md5(:i) (the blind index: =# with a probe, then the decrypting
#     recheck) against the plain hash index, interleaved in the same pgbench
#     runs (bench_pgbench_mix).  Report only.
# (b) =# over every row as the reader: SELECT count(*) FROM bidx_enc a JOIN
#     bidx_enc b USING (tenant_id, id) WHERE a.v =# b.v (one _bidx_eq, with
#     its clearance check, per row), server-side, median of BENCH_BIDX_ROUNDS.
# (c) a scan of the armour as the writer below the label: SELECT
#     sum(octet_length(v::text)) FROM bidx_enc (the withheld armour of every
#     value) against the reader's decrypting scan of the same rows.
# (d) INSERT ... SELECT of BENCH_BIDX_INSERT_ROWS (default 50 k) values into
#     a searchable labelled column as the writer below the label (seal
#     trigger, blind index), against a plain column with a hash index; each
#     run in a new session after TRUNCATE and CHECKPOINT, alternating,
#     median.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

db=bench_blind_index
app=bench_bidx_app
issuer=bench_bidx_issuer
rows=${BENCH_BIDX_ROWS:-200000}
ins_rows=${BENCH_BIDX_INSERT_ROWS:-50000}
rounds=${BENCH_BIDX_ROUNDS:-5}

bench_log "blind index: $rows values, inserts of $ins_rows rows, $rounds rounds"
bench_createdb "$db"
bench_psql "$db" >/dev/null <<SQL
SET client_min_messages = warning;
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
CREATE TABLE bench.cfg (tenant bigint NOT NULL, reader text, writer text);
INSERT INTO bench.cfg (tenant) SELECT utilix.create_tenant('bench-blind-index');
GRANT SELECT, UPDATE ON bench.cfg TO $issuer;
GRANT USAGE ON SCHEMA bench TO $issuer, $app;
SET ROLE $issuer;
UPDATE bench.cfg SET reader = utilix.issue_context(tenant, 'reader', interval '3 hours', '{read,write}', 'confidential'),
                     writer = utilix.issue_context(tenant, 'writer', interval '3 hours', '{read,write}', 'public');
RESET ROLE;

CREATE TABLE bidx_plain (tenant_id bigint NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('bidx_plain');
CREATE INDEX bidx_plain_v ON bidx_plain USING hash (v);
CREATE TABLE bidx_enc (LIKE bidx_plain INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE bidx_enc ADD PRIMARY KEY (tenant_id, id);
SELECT utilix.protect('bidx_enc');
SELECT utilix.encrypt_column('bidx_enc', 'v', label => 'confidential', searchable => true);
INSERT INTO bidx_plain SELECT c.tenant, i, md5(i::text) FROM generate_series(1, $rows) i, bench.cfg c;
INSERT INTO bidx_enc SELECT c.tenant, i, md5(i::text) FROM generate_series(1, $rows) i, bench.cfg c;

CREATE TABLE ins_src AS SELECT i AS id, md5(i::text) AS v FROM generate_series(1, $ins_rows) i;
CREATE TABLE ins_plain (tenant_id bigint NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('ins_plain');
CREATE INDEX ins_plain_v ON ins_plain USING hash (v);
CREATE TABLE ins_enc (tenant_id bigint NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('ins_enc');
SELECT utilix.encrypt_column('ins_enc', 'v', label => 'confidential', searchable => true);
ALTER TABLE ins_plain SET (autovacuum_enabled = off);
ALTER TABLE ins_enc SET (autovacuum_enabled = off);
GRANT SELECT ON bidx_plain, bidx_enc, ins_src TO $app;
GRANT SELECT, INSERT ON ins_plain, ins_enc TO $app;
SQL
bench_psql "$db" -c "VACUUM (FREEZE, ANALYZE) bidx_plain, bidx_enc, ins_src, ins_plain, ins_enc"

reader=$(bench_psql "$db" -c "SELECT reader FROM bench.cfg")
writer=$(bench_psql "$db" -c "SELECT writer FROM bench.cfg")
[ -n "$reader" ] && [ -n "$writer" ] || bench_die "no context tokens"
as_reader() { PGUSER=$app PGOPTIONS="-c utilix.context=$reader -c search_path=public,utilix" "$@"; }
as_writer() { PGUSER=$app PGOPTIONS="-c utilix.context=$writer -c search_path=public,utilix" "$@"; }

# --- sanity --------------------------------------------------------------------------
got=$(as_reader bench_psql "$db" -c "SELECT count(*) FROM bidx_enc WHERE v = md5('42')")
[ "$got" = 1 ] || bench_die "the reader's lookup found $got rows"
got=$(as_writer bench_psql "$db" -c "SELECT count(*) FROM bidx_enc WHERE v = md5('42')")
[ "$got" = 0 ] || bench_die "the writer below the label found $got rows"
plan=$(PGOPTIONS="-c utilix.context=$reader -c search_path=public,utilix" bench_psql "$db" \
         -c "SET utilix.restrict_explain = off" -c "SET ROLE $app" \
         -c "EXPLAIN (COSTS OFF) SELECT id FROM bidx_enc WHERE v = md5('42')")
echo "$plan" | grep -q 'utilix_bidx_' || bench_die "the lookup does not use the blind index: $plan"
bench_log "lookup plan (as the reader):"
echo "$plan" | sed 's/^/    /'

# --- (a) point lookups ------------------------------------------------------------------
s=$BENCH_TMP/blind_index
mkdir -p "$s"
printf '\\set i random(1, %s)\nSELECT id FROM bidx_enc WHERE v OPERATOR(utilix.=) md5(:i::text);\n' "$rows" > "$s/enc.sql"
printf '\\set i random(1, %s)\nSELECT id FROM bidx_plain WHERE v = md5(:i::text);\n' "$rows" > "$s/plain.sql"
chmod 644 "$s"/*.sql
bench_log "(a) point lookup by the blind index (reader) vs a plain hash index"
read -r a_enc a_plain a_ratio < <(PGOPTIONS="-c utilix.context=$reader" bench_pgbench_mix "$db" "$app" \
    blind "$s/enc.sql" plain "$s/plain.sql")
[ -n "${a_ratio:-}" ] || bench_die "(a) did not run"

# --- (b) =# over every row, (c) armour scan ----------------------------------------------
q_eq="SELECT count(*) FROM bidx_enc a JOIN bidx_enc b USING (tenant_id, id) WHERE a.v OPERATOR(utilix.=#) b.v"
q_scan="SELECT sum(octet_length(v::text)) FROM bidx_enc"
bench_log "(b) =# over every row, (c) scans: as the reader"
r=$(as_reader bench_sql_rounds "$db" "$rounds" eq "$q_eq" scan "$q_scan")
echo "$r" | sed 's/^/median ms (reader): /'
bench_log "(b), (c) as the writer below the label"
w=$(as_writer bench_sql_rounds "$db" "$rounds" eq "$q_eq" scan "$q_scan")
echo "$w" | sed 's/^/median ms (writer below the label): /'
ms() { echo "$1" | awk -v n="$2" '$1 == n { print $2 }'; }
rate() { bench_calc "$1 / ($2 / 1000)"; }
n_eq_reader=$(as_reader bench_psql "$db" -c "$q_eq")
n_eq_writer=$(as_writer bench_psql "$db" -c "$q_eq")
bench_log "=# pairs: reader $n_eq_reader, writer below the label $n_eq_writer"

# --- (d) inserts as the writer below the label ------------------------------------------
run_insert() {
    bench_psql "$db" -c "TRUNCATE $1" -c "CHECKPOINT" || return 1
    as_writer bench_psql "$db" -c "SELECT bench.elapsed_ms(\$b\$INSERT INTO $1 (id, v) SELECT id, v FROM ins_src\$b\$)"
}
bench_log "(d) INSERT ... SELECT $ins_rows rows as the writer below the label: searchable labelled vs plain hash-indexed"
run_insert ins_enc >/dev/null; run_insert ins_plain >/dev/null
d_enc_all=(); d_plain_all=()
for ((k = 1; k <= rounds; k++)); do
    if (( k % 2 )); then
        te=$(run_insert ins_enc); tp=$(run_insert ins_plain)
    else
        tp=$(run_insert ins_plain); te=$(run_insert ins_enc)
    fi
    bench_log "  round $k: searchable $te ms, plain $tp ms"
    d_enc_all+=("$te"); d_plain_all+=("$tp")
done
d_enc=$(printf '%s\n' "${d_enc_all[@]}" | bench_median)
d_plain=$(printf '%s\n' "${d_plain_all[@]}" | bench_median)
got=$(as_writer bench_psql "$db" -c "SELECT count(*) FROM ins_enc")
[ "$got" = "$ins_rows" ] || bench_die "(d): $got rows inserted"

bench_record "blind index: lookup (reader) vs plain hash index"            "$a_enc" tps "$a_plain" "$a_ratio" report
bench_record "blind index: =# over every row (reader)"                      "$(rate "$rows" "$(ms "$r" eq)")" rows/s - - report
bench_record "blind index: =# over every row (writer below the label)"      "$(rate "$rows" "$(ms "$w" eq)")" rows/s - - report
bench_record "blind index: armour scan (writer below) vs decrypting scan"  "$(rate "$rows" "$(ms "$w" scan)")" rows/s \
    "$(rate "$rows" "$(ms "$r" scan)")" "" report
bench_record "blind index: INSERT (writer below) vs plain hash-indexed"    "$(rate "$ins_rows" "$d_enc")" rows/s \
    "$(rate "$ins_rows" "$d_plain")" "" report

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE $db" >/dev/null
