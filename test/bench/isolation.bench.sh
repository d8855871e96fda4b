#!/usr/bin/env bash
# Benchmark: the cost of tenant isolation.
#
# A metering table of 1 M readings over 100 tenants (100 meters x 100 hourly
# readings each, loaded in time order so that tenants interleave on disk as
# real metering data does), twice: `readings`, protected by utilix.protect,
# and `readings_plain`, an identical unprotected copy with the same primary
# key (tenant_id, meter_id, ts) and the same physical row order.  The
# application connects as bench_app: LOGIN, not superuser, not owner, only
# SELECT.  Tokens for every tenant are minted by bench_issuer (a member of
# utilix_issuer) and kept in table tok, which both sides read.
#
# pgbench (-n -M prepared, BENCH_CLIENTS clients, BENCH_JOBS threads): each
# comparison runs its two sides interleaved in the same pgbench run (each
# transaction picks a side at random; see bench_pgbench_mix in lib.sh), a
# warm-up and then BENCH_ROUNDS runs of BENCH_SECONDS.  A side's throughput
# is BENCH_CLIENTS / its mean latency; the ratio is the median over the runs
# of latency(plain) / latency(protected).  Separate alternating runs were
# tried first: on a machine shared with other work they gave ratios of 0.9 to
# 1.26 for comparisons whose two sides cost about the same, while
# interleaved runs stay within a few percent.
#
# (a) point lookup: one transaction = read the tenant's row of tok, then one
#     reading by (meter_id, ts).  Protected: the tok query calls
#     utilix.set_context(token) and the lookup names no tenant (row level
#     security adds it).  Plain: the tok query returns tenant_id, and the
#     lookup names it.  The difference is utilix: verifying the token,
#     setting the context, and the policy.  Goal: ratio >= 0.97.
# (b) per-tenant aggregate: the same, with avg(value) over the tenant's
#     10,000 readings instead of the lookup.  Goal: ratio >= 0.97.
# (c) token verification: BEGIN; SET LOCAL utilix.context = '<token>';
#     SELECT 1; END; against the same with SET LOCAL bench.label = a string
#     of the same length.  bench.label is a placeholder setting: no check
#     hook, no assign hook, not reported to the client.  (application_name
#     would be no plain baseline: it is GUC_REPORT, so every SET and every
#     revert at commit sends a ParameterStatus message, and it updates
#     pg_stat_activity; it ran at about half the rate of the token.)
#     Five tenants' tokens, one script each, pgbench picks at random.
#     Report only.
# (d) where the cost of (a) goes: utilix.set_context() in a server-side loop
#     (no client, no network), cycling through all 100 tenants' tokens
#     against cycling through 30.  Report only.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

db=bench_isolation
app=bench_app
tenants=100
meters=100
hours=100
epoch0=1704067200   # 2024-01-01 00:00:00 UTC, the first reading

bench_log "isolation: $((tenants * meters * hours)) readings over $tenants tenants; loading"
bench_createdb "$db"
bench_psql "$db" >/dev/null <<SQL
SET client_min_messages = warning;
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$app') THEN
        CREATE ROLE $app LOGIN NOSUPERUSER NOBYPASSRLS;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_issuer') THEN
        CREATE ROLE bench_issuer NOLOGIN NOSUPERUSER;
    END IF;
END
\$\$;
GRANT utilix_issuer TO bench_issuer;

-- tenants, and a token for each, minted by the issuer
CREATE TABLE tok (n int PRIMARY KEY, tenant_id bigint NOT NULL, token text);
INSERT INTO tok (n, tenant_id)
    SELECT g, utilix.create_tenant(format('bench-%s', g)) FROM generate_series(1, $tenants) g;
GRANT SELECT, UPDATE ON tok TO bench_issuer;
SET ROLE bench_issuer;
UPDATE tok SET token = utilix.issue_context(tenant_id, 'meter-reader', interval '3 hours');
RESET ROLE;

-- the same readings twice, in the same physical order (time, then tenant)
CREATE TABLE readings_plain (
    tenant_id bigint NOT NULL,
    meter_id  int NOT NULL,
    ts        timestamptz NOT NULL,
    value     double precision
);
INSERT INTO readings_plain
    SELECT t.tenant_id, m, to_timestamp($epoch0 + h * 3600), round((random() * 1000)::numeric, 2)
      FROM generate_series(0, $hours - 1) h CROSS JOIN tok t CROSS JOIN generate_series(1, $meters) m
     ORDER BY h, t.n, m;
CREATE TABLE readings (LIKE readings_plain INCLUDING ALL);
INSERT INTO readings SELECT * FROM readings_plain;
ALTER TABLE readings_plain ADD PRIMARY KEY (tenant_id, meter_id, ts);
ALTER TABLE readings ADD PRIMARY KEY (tenant_id, meter_id, ts);
SELECT utilix.protect('readings');
VACUUM (FREEZE, ANALYZE) readings_plain, readings, tok;
-- both copies in shared buffers before the first run (the primary keys were
-- built outside them), so that the first rounds do not favour either side
CREATE EXTENSION pg_prewarm;
SELECT pg_prewarm(c) FROM unnest(ARRAY['readings', 'readings_pkey', 'readings_plain',
                                       'readings_plain_pkey', 'tok', 'tok_pkey']::regclass[]) c;

GRANT SELECT ON tok, readings, readings_plain TO $app;
SQL

# sanity: the app sees exactly one tenant's rows through the protected table,
# and nothing without a context
check=$(bench_psql "$db" -U "$app" <<SQL
BEGIN;
SELECT utilix.set_context(token) FROM tok WHERE n = 7 \\gset
SELECT count(*) FROM readings;
SELECT count(*) FROM readings_plain WHERE tenant_id = (SELECT tenant_id FROM tok WHERE n = 7);
COMMIT;
SQL
)
[ "$(echo "$check" | tr '\n' ' ')" = "$((meters * hours)) $((meters * hours)) " ] ||
    bench_die "unexpected row counts through the protected table: $check"
if bench_psql "$db" -U "$app" -c "SELECT count(*) FROM readings" >/dev/null 2>&1; then
    bench_die "the protected table is readable without a tenant context"
fi

# --- pgbench scripts -----------------------------------------------------------
s=$BENCH_TMP/isolation
mkdir -p "$s"
cat > "$s/point_protected.sql" <<SQL
\\set t random(1, $tenants)
\\set m random(1, $meters)
\\set sec $epoch0 + random(0, $hours - 1) * 3600
BEGIN;
SELECT utilix.set_context(token) AS tenant_id FROM tok WHERE n = :t \\gset
SELECT value FROM readings WHERE meter_id = :m AND ts = to_timestamp(:sec);
END;
SQL
cat > "$s/point_plain.sql" <<SQL
\\set t random(1, $tenants)
\\set m random(1, $meters)
\\set sec $epoch0 + random(0, $hours - 1) * 3600
BEGIN;
SELECT tenant_id FROM tok WHERE n = :t \\gset
SELECT value FROM readings_plain WHERE tenant_id = :tenant_id AND meter_id = :m AND ts = to_timestamp(:sec);
END;
SQL
cat > "$s/agg_protected.sql" <<SQL
\\set t random(1, $tenants)
BEGIN;
SELECT utilix.set_context(token) AS tenant_id FROM tok WHERE n = :t \\gset
SELECT avg(value) FROM readings;
END;
SQL
cat > "$s/agg_plain.sql" <<SQL
\\set t random(1, $tenants)
BEGIN;
SELECT tenant_id FROM tok WHERE n = :t \\gset
SELECT avg(value) FROM readings_plain WHERE tenant_id = :tenant_id;
END;
SQL
# (c): one script per token, the token as a literal; the plain twin sets
# the placeholder bench.label to a string of the same length
ctx_files=""
label_files=""
for n in 3 17 42 64 99; do
    token=$(bench_psql "$db" -c "SELECT token FROM tok WHERE n = $n")
    filler=$(head -c "${#token}" /dev/zero | tr '\0' 'x')
    printf "BEGIN;\nSET LOCAL utilix.context = '%s';\nSELECT 1;\nEND;\n" "$token" > "$s/ctx_$n.sql"
    printf "BEGIN;\nSET LOCAL bench.label = '%s';\nSELECT 1;\nEND;\n" "$filler" > "$s/label_$n.sql"
    ctx_files="$ctx_files $s/ctx_$n.sql"
    label_files="$label_files $s/label_$n.sql"
done
chmod 644 "$s"/*.sql
bench_log "token length: ${#token} characters"

# --- plans ---------------------------------------------------------------------
# utilix refuses EXPLAIN of protected tables to roles under row level security,
# and a superuser bypasses row level security: so a superuser lifts the
# restriction for its session (utilix.restrict_explain is SUSET), then takes
# the app role.
bench_log "plans (generic, as pgbench -M prepared uses them after a few runs):"
bench_psql "$db" <<SQL 2>&1 | sed 's/^/    /'
SET utilix.restrict_explain = off;
SET ROLE $app;
SET plan_cache_mode = force_generic_plan;
BEGIN;
SELECT utilix.set_context(token) AS t FROM tok WHERE n = 42 \\gset
PREPARE p_point(int, float8) AS SELECT value FROM readings WHERE meter_id = \$1 AND ts = to_timestamp(\$2);
PREPARE b_point(bigint, int, float8) AS SELECT value FROM readings_plain WHERE tenant_id = \$1 AND meter_id = \$2 AND ts = to_timestamp(\$3);
PREPARE p_agg AS SELECT avg(value) FROM readings;
PREPARE b_agg(bigint) AS SELECT avg(value) FROM readings_plain WHERE tenant_id = \$1;
\\echo '-- (a) protected point lookup'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE p_point(42, $epoch0 + 7200);
\\echo '-- (a) plain point lookup'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) EXECUTE b_point(:t, 42, $epoch0 + 7200);
\\echo '-- (b) protected aggregate'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS) EXECUTE p_agg;
\\echo '-- (b) plain aggregate'
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS) EXECUTE b_agg(:t);
COMMIT;
SQL

# --- measurements --------------------------------------------------------------
bench_log "(a) point lookup: protected vs plain"
read -r a_prot a_plain a_ratio < <(bench_pgbench_mix "$db" "$app" \
    protected "$s/point_protected.sql" plain "$s/point_plain.sql")
[ -n "${a_ratio:-}" ] || bench_die "(a) did not run"

bench_log "(b) per-tenant aggregate: protected vs plain"
read -r b_prot b_plain b_ratio < <(bench_pgbench_mix "$db" "$app" \
    protected "$s/agg_protected.sql" plain "$s/agg_plain.sql")
[ -n "${b_ratio:-}" ] || bench_die "(b) did not run"

bench_log "(c) SET LOCAL utilix.context vs SET LOCAL bench.label (placeholder)"
read -r c_ctx c_label c_ratio < <(bench_pgbench_mix "$db" "$app" \
    context "$ctx_files" bench.label "$label_files")
[ -n "${c_ratio:-}" ] || bench_die "(c) did not run"

# (d) where (a)'s cost goes: utilix.set_context() in a server-side loop,
# cycling through the tokens of all 100 tenants against cycling through 30
# (a number whose tenant status fits utilix's per-backend cache).
bench_log "(d) utilix.set_context() per call: 100 tenants cycled vs 30"
bench_psql "$db" <<'SQL'
CREATE FUNCTION bench.set_context_loop(ntenants int, iters int) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    toks text[];
    x bigint;
BEGIN
    SELECT array_agg(token ORDER BY n) INTO toks FROM tok WHERE n <= ntenants;
    FOR i IN 1..iters LOOP
        x := utilix.set_context(toks[1 + i % ntenants]);
    END LOOP;
END
$$;
SQL
iters=20000
d=$(bench_sql_rounds "$db" "$BENCH_ROUNDS" \
    t100 "SELECT bench.set_context_loop(100, $iters)" \
    t30  "SELECT bench.set_context_loop(30, $iters)")
echo "$d" | sed 's/^/median ms: /'
d100=$(echo "$d" | awk -v i=$iters '$1 == "t100" { print $2 * 1000 / i }')
d30=$(echo "$d" | awk -v i=$iters '$1 == "t30" { print $2 * 1000 / i }')

bench_record "isolation: point lookup, protected vs plain"  "$a_prot" tps "$a_plain" "$a_ratio" ">= 0.97"
bench_record "isolation: tenant avg(), protected vs plain"   "$b_prot" tps "$b_plain" "$b_ratio" ">= 0.97"
bench_record "isolation: SET LOCAL context vs plain setting" "$c_ctx"  tps "$c_label" "$c_ratio" report
bench_record "isolation: set_context() us/call, 100 vs 30 tenants" "$d100" us "$d30" "" report
printf 'token verification: about %.1f us more latency per transaction with SET LOCAL utilix.context than with a plain SET LOCAL (%s clients)\n' \
    "$(bench_calc "($BENCH_CLIENTS * 1000000 / $c_ctx) - ($BENCH_CLIENTS * 1000000 / $c_label)")" "$BENCH_CLIENTS"

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE $db" >/dev/null
