#!/usr/bin/env bash
# Plaintext of encrypted columns stays out of the server log and out of
# pg_stat_statements.  On a cluster of its own (pg_stat_statements preloaded
# beside utilix), with log_statement = 'all', log_min_error_statement =
# 'error' and bind parameters logged in full (also on error), the
# application role with a tenant context writes distinctive plaintext
# values into encrypted columns:
#  - simple-query literals (INSERT, UPDATE, jsonb), PREPARE/EXECUTE (value
#    as an EXECUTE argument and as a literal in the prepared body), a DO
#    block, pgbench -M extended and -M prepared (value as a bind parameter);
#  - COPY FROM STDIN (PostgreSQL refuses COPY FROM for a role under row
#    level security with 0A000; whichever happens is reported);
#  - failing statements: NOT NULL, unique and CHECK violations in rows that
#    carry an encrypted value, by literal and by bind parameter;
#  - the same constraint failures where the statement text does not hold the
#    plaintext (it is computed: reverse('...')), so that only an error
#    detail ("Failing row contains (...)") could show it: as the
#    application role, and as a superuser that has set a tenant context
#    (row level security does not hide the detail from a superuser);
#  - an operator's COPY whose bad row fails a constraint (COPY's CONTEXT
#    line quotes the input line).
# Then neither server.log, nor pg_stat_statements, nor its query-text file
# may hold any of the plaintexts.  Each path has its own plaintext, so a
# failure names the path.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

lk_dir=$(mktemp -d /tmp/utilix-leaks.XXXXXX)
SETTINGS=(log_statement log_min_error_statement log_parameter_max_length log_parameter_max_length_on_error)
cleanup() {
    local s
    if [ -n "${PGPORT:-}" ] && [ -f "$lk_dir/data/postmaster.pid" ]; then
        for s in "${SETTINGS[@]}"; do
            psql -X -q -d postgres -c "ALTER SYSTEM RESET $s" >/dev/null 2>&1
        done
        psql -X -q -d postgres -c "SELECT pg_reload_conf()" >/dev/null 2>&1
    fi
    UTILIX_DIR=$lk_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$lk_dir" || bail "initdb failed"
# a later line wins over cluster_init's shared_preload_libraries = 'utilix'
cluster_conf "shared_preload_libraries = 'pg_stat_statements,utilix'"
cluster_conf "pg_stat_statements.track = all"
cluster_conf "pg_stat_statements.track_utility = on"
cluster_start || bail "the cluster does not start: $(tail -5 "$UTILIX_DIR/server.log")"
LOG=$UTILIX_DIR/server.log
DB=leaks
APP=leak_app

sql() {     # sql DB SQL: tuples only, stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2" 2>&1
}
# as_app SQL...: the application role with tenant A's context (set by a
# statement of its own), each SQL its own simple query; errors do not stop
as_app() {
    local args=(-c "SELECT utilix.set_context('$TOKEN', false)") s
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -v VERBOSITY=verbose -U "$APP" -d "$DB" "${args[@]}" 2>&1 | sed '1{/^[0-9][0-9]*$/d}'
}

like "$(sql postgres "SHOW shared_preload_libraries")" 'pg_stat_statements' "pg_stat_statements is preloaded in this test's own cluster"

# ---------------------------------------------------------------- set-up
out=$(sql postgres "CREATE DATABASE $DB" && sql postgres "CREATE ROLE $APP LOGIN") || bail "set-up: $out"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION utilix;
CREATE TABLE secrets (tenant_id bigint NOT NULL, id int NOT NULL, name text, card text, doc jsonb,
                      qty int NOT NULL CHECK (qty >= 0), code text, PRIMARY KEY (tenant_id, id));
CREATE UNIQUE INDEX secrets_code ON secrets (tenant_id, code);
SELECT utilix.protect('secrets');
SELECT utilix.encrypt_column('secrets', 'name');
SELECT utilix.encrypt_column('secrets', 'card', searchable => true);
SELECT utilix.encrypt_column('secrets', 'doc');
GRANT SELECT, INSERT, UPDATE, DELETE ON secrets TO $APP;
SQL
) || bail "set-up failed: $out"
T=$(sql "$DB" "SELECT utilix.create_tenant('leaks alpha')")
TOKEN=$(sql "$DB" "SELECT utilix.issue_context($T, 'alice', '30 minutes')")
like "$TOKEN" '^utx1\.' "a context token is minted"

out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d postgres 2>&1 <<SQL
ALTER SYSTEM SET log_statement = 'all';
ALTER SYSTEM SET log_min_error_statement = 'error';
ALTER SYSTEM SET log_parameter_max_length = -1;
ALTER SYSTEM SET log_parameter_max_length_on_error = -1;
SELECT pg_reload_conf();
SQL
) || bail "cannot change logging settings: $out"
for _ in $(seq 1 50); do
    [ "$(sql "$DB" "SHOW log_statement")" = "all" ] && [ "$(sql "$DB" "SHOW log_parameter_max_length_on_error")" = "-1" ] && break
    sleep 0.1
done
is "$(sql "$DB" "SHOW log_statement")" "all" "log_statement is 'all'"
sql "$DB" "SELECT pg_stat_statements_reset()" >/dev/null

R=$RANDOM$RANDOM
declare -A S      # path -> its plaintext
for p in lit upd json exec prep do ext pre copy nn uniq chk ext_nn nn_rev uniq_rev chk_rev su_nn su_chk opcopy; do
    S[$p]="SECRET-PLAIN-$p-$R"    # tag first: no plaintext is a prefix of another
done
reversed() { printf '%s' "$1" | rev; }
# an identifier, not a literal: literals may be masked in the log
PROBE="leak_probe_${RANDOM}_$RANDOM"
[[ "$PROBE" == *"$R"* ]] && PROBE="leak_probe_x$RANDOM"
mark=$(stat -c %s "$LOG")

# ---------------------------------------------------------------- writes that succeed
sql "$DB" "SELECT 1 AS $PROBE" >/dev/null
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, card, doc, qty, code) VALUES ($T, 1, '${S[lit]}', '4111-$R', '{\"k\": \"${S[json]}\"}', 1, 'c1')")
is "$out" "" "simple query: INSERT with literals into encrypted text and jsonb columns"
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 2, 'placeholder', 1, 'c2')" \
             "UPDATE secrets SET name = '${S[upd]}' WHERE id = 2")
is "$out" "" "simple query: UPDATE ... SET encrypted column = literal"
out=$(as_app "PREPARE ins(int, text) AS INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, \$1, \$2, 1, 'c' || \$1)" \
             "EXECUTE ins(3, '${S[exec]}')")
is "$out" "" "PREPARE ins(int, text) ... EXECUTE ins(3, plaintext)"
out=$(as_app "PREPARE ins2 AS INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 4, '${S[prep]}', 1, 'c4')" \
             "EXECUTE ins2")
is "$out" "" "PREPARE with the plaintext as a literal in the prepared statement, EXECUTE"
out=$(as_app "DO \$\$ BEGIN INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 5, '${S[do]}', 1, 'c5'); END \$\$")
is "$out" "" "a DO block inserting a literal"

cat > "$lk_dir/ext.sql" <<'PGB'
SELECT utilix.set_context(:tok, false);
INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES (:t, :id, :val, 1, :code);
PGB
pgbench -n -M extended -t 1 -U "$APP" -D "tok=$TOKEN" -D "t=$T" -D id=6 -D code=c6 -D "val=${S[ext]}" -f "$lk_dir/ext.sql" "$DB" >"$lk_dir/pgb-ext.out" 2>&1
is "$?" "0" "pgbench -M extended: INSERT with the plaintext as a bind parameter"
pgbench -n -M prepared -t 1 -U "$APP" -D "tok=$TOKEN" -D "t=$T" -D id=7 -D code=c7 -D "val=${S[pre]}" -f "$lk_dir/ext.sql" "$DB" >"$lk_dir/pgb-pre.out" 2>&1
is "$?" "0" "pgbench -M prepared: INSERT with the plaintext as a bind parameter"

# COPY FROM STDIN as the application role
out=$(printf '%s\t8\t%s\t1\tc8\n' "$T" "${S[copy]}" |
      psql -X -q -A -t -v VERBOSITY=verbose -U "$APP" -d "$DB" -c "SELECT utilix.set_context('$TOKEN', false)" \
           -c "COPY secrets (tenant_id, id, name, qty, code) FROM STDIN" 2>&1 | sed '1{/^[0-9][0-9]*$/d}')
if grep -qE 'ERROR: +0A000' <<<"$out"; then
    ok "COPY FROM STDIN by the application role is refused with 0A000 (row level security)"
    diag "COPY FROM as the application role: $(printf '%s' "$out" | head -1)"
    COPY_WORKED=0
elif [ -z "$out" ]; then
    ok "COPY FROM STDIN by the application role works"
    COPY_WORKED=1
else
    not_ok "COPY FROM STDIN by the application role either works or is refused with 0A000" "$out"
    COPY_WORKED=0
fi

# everything that succeeded reads back for the context (the values really went in)
got=$(as_app "SELECT string_agg(name::text, ',' ORDER BY id) FROM secrets WHERE id BETWEEN 1 AND 8")
want="${S[lit]},${S[upd]},${S[exec]},${S[prep]},${S[do]},${S[ext]},${S[pre]}"
[ "$COPY_WORKED" = 1 ] && want="$want,${S[copy]}"
is "$got" "$want" "the written plaintexts read back for the tenant's context"
is "$(as_app "SELECT doc::jsonb->>'k' FROM secrets WHERE id = 1")" "${S[json]}" "the jsonb plaintext reads back"
is "$(sql "$DB" "SELECT count(*) FROM secrets WHERE NOT utilix.is_sealed(name)")" "0" "every stored name is sealed"

# ---------------------------------------------------------------- writes that fail
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 20, '${S[nn]}', NULL, 'c20')")
like "$out" 'ERROR: +23502' "NOT NULL violation in a row with an encrypted literal (23502)"
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 21, '${S[uniq]}', 1, 'c1')")
like "$out" 'ERROR: +23505' "unique violation in a row with an encrypted literal (23505)"
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 22, '${S[chk]}', -1, 'c22')")
like "$out" 'ERROR: +23514' "check violation in a row with an encrypted literal (23514)"
cat > "$lk_dir/ext_nn.sql" <<'PGB'
SELECT utilix.set_context(:tok, false);
INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES (:t, 23, :val, NULL, 'c23');
PGB
pgbench -n -M extended -t 1 -U "$APP" -D "tok=$TOKEN" -D "t=$T" -D "val=${S[ext_nn]}" -f "$lk_dir/ext_nn.sql" "$DB" >"$lk_dir/pgb-ext-nn.out" 2>&1
like "$(cat "$lk_dir/pgb-ext-nn.out")" 'null value in column "qty"' "pgbench -M extended: NOT NULL violation with the plaintext as a bind parameter"

# the statement text does not hold these plaintexts; only an error detail could
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 30, reverse('$(reversed "${S[nn_rev]}")'), NULL, 'c30')")
like "$out" 'ERROR: +23502' "application role: NOT NULL violation, plaintext computed in the statement"
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 31, reverse('$(reversed "${S[uniq_rev]}")'), 1, 'c1')")
like "$out" 'ERROR: +23505' "application role: unique violation, plaintext computed in the statement"
out=$(as_app "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 32, reverse('$(reversed "${S[chk_rev]}")'), -1, 'c32')")
like "$out" 'ERROR: +23514' "application role: check violation, plaintext computed in the statement"
unlike "$out" 'Failing row contains' "application role: the check violation shows no failing row (row level security)"

out=$(psql -X -q -A -t -v VERBOSITY=verbose -d "$DB" -c "SELECT utilix.set_context('$TOKEN', false)" \
        -c "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 40, reverse('$(reversed "${S[su_nn]}")'), NULL, 'c40')" 2>&1)
like "$out" 'ERROR: +23502' "superuser with a tenant context: NOT NULL violation, plaintext computed in the statement"
# (the client here may read the value: what it is sent is not checked, only what is logged)
diag "superuser NOT NULL error as the client sees it: $(printf '%s' "$out" | grep -E 'DETAIL' | cut -c1-160)"
out=$(psql -X -q -A -t -v VERBOSITY=verbose -d "$DB" -c "SELECT utilix.set_context('$TOKEN', false)" \
        -c "INSERT INTO secrets (tenant_id, id, name, qty, code) VALUES ($T, 41, reverse('$(reversed "${S[su_chk]}")'), -1, 'c41')" 2>&1)
like "$out" 'ERROR: +23514' "superuser with a tenant context: check violation, plaintext computed in the statement"

# an operator's COPY of plaintext whose second row fails the CHECK
out=$(printf '%s\t50\t%s\t1\tc50\n%s\t51\t%s\t-1\tc51\n' "$T" "ok-row-$R" "$T" "${S[opcopy]}" |
      psql -X -q -A -t -v VERBOSITY=verbose -d "$DB" -c "COPY secrets (tenant_id, id, name, qty, code) FROM STDIN" 2>&1)
like "$out" 'ERROR: +23514' "operator COPY: a row with an encrypted value fails its CHECK (23514)"
diag "operator COPY error as the client sees it: $(printf '%s' "$out" | grep -E 'CONTEXT' | cut -c1-160)"

sql "$DB" "SELECT 2 AS ${PROBE}_end" >/dev/null

# ---------------------------------------------------------------- the log and pg_stat_statements
sleep 0.5
tail -c +$((mark + 1)) "$LOG" > "$lk_dir/section.log"
like "$(cat "$lk_dir/section.log")" "statement: SELECT 1 AS $PROBE\$" "logging is on: a harmless statement is logged in full"
like "$(cat "$lk_dir/section.log")" "statement: SELECT 2 AS ${PROBE}_end\$" "the log is complete up to the last statement"
like "$(cat "$lk_dir/section.log")" 'null value in column "qty"' "the errors themselves are still logged"

sql "$DB" "SELECT query FROM pg_stat_statements" > "$lk_dir/pgss.txt"
like "$(cat "$lk_dir/pgss.txt")" 'INSERT INTO secrets' "pg_stat_statements recorded the INSERTs"
PGSS_FILE=$UTILIX_DIR/data/pg_stat_tmp/pgss_query_texts.stat

declare -A WHAT=(
    [lit]="an INSERT literal" [upd]="an UPDATE literal" [json]="a jsonb literal"
    [exec]="an EXECUTE argument" [prep]="a literal in a PREPAREd statement" [do]="a literal in a DO block"
    [ext]="a bind parameter (pgbench -M extended)" [pre]="a bind parameter (pgbench -M prepared)"
    [copy]="a COPY FROM STDIN row of the application role"
    [nn]="a literal in a statement failing NOT NULL" [uniq]="a literal in a statement failing a unique index"
    [chk]="a literal in a statement failing a CHECK" [ext_nn]="a bind parameter of a statement failing NOT NULL"
    [nn_rev]="a NOT NULL failure's detail (application role)" [uniq_rev]="a unique failure's detail (application role)"
    [chk_rev]="a CHECK failure's detail (application role)"
    [su_nn]="a NOT NULL failure's detail (superuser with a context)" [su_chk]="a CHECK failure's detail (superuser with a context)"
    [opcopy]="an operator COPY row failing a CHECK"
)
for p in lit upd json exec prep do ext pre copy nn uniq chk ext_nn nn_rev uniq_rev chk_rev su_nn su_chk opcopy; do
    lacks "$LOG" -- "${S[$p]}" "server.log does not hold the plaintext of ${WHAT[$p]}"
done
for p in lit upd json exec prep do ext pre copy; do
    lacks "$lk_dir/pgss.txt" "$PGSS_FILE" -- "${S[$p]}" "pg_stat_statements does not hold the plaintext of ${WHAT[$p]}"
done
lacks "$LOG" -- "$R" "server.log holds no part of any plaintext (the random tag $R)"
lacks "$lk_dir/pgss.txt" "$PGSS_FILE" -- "$R" "pg_stat_statements holds no part of any plaintext (the random tag $R)"

# where the plaintexts that leaked were found, for the report
leaks=$(grep -n -F "$R" "$LOG" | cut -c1-220 | head -40)
[ -n "$leaks" ] && diag "server.log lines holding a plaintext:
$leaks"
leaks=$(grep -n -F "$R" "$lk_dir/pgss.txt" | cut -c1-220 | head -20)
[ -n "$leaks" ] && diag "pg_stat_statements entries holding a plaintext:
$leaks"

done_testing
