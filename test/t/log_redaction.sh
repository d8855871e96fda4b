#!/usr/bin/env bash
# Tokens stay out of the server log, against the running test cluster.
# With log_statement = 'all', log_min_duration_statement = 0,
# log_min_error_statement = 'error' and bind parameters logged on error,
# statements carry a context token in every way an application might:
# SET utilix.context, set_context(), set_config(), failing statements,
# errors whose message or detail holds the token, PREPARE/EXECUTE, and the
# extended protocol (pgbench -M extended / prepared, token as a bind
# parameter).  Then server.log must hold neither the token nor its payload
# or signature part, and must show '<redacted by utilix>'; a harmless
# statement must still be logged in full.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}"
LOG=$UTILIX_DIR/server.log
DB=utilix_redaction
APP=redact_app
SETTINGS=(log_statement log_min_error_statement log_min_duration_statement log_parameter_max_length log_parameter_max_length_on_error)

wdir=$(mktemp -d /tmp/utilix-redaction.XXXXXX)
cleanup() {
    local s
    for s in "${SETTINGS[@]}"; do
        psql -X -q -d postgres -c "ALTER SYSTEM RESET $s" >/dev/null 2>&1
    done
    psql -X -q -d postgres -c "SELECT pg_reload_conf()" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
    psql -X -q -d postgres -c "DROP ROLE IF EXISTS $APP" >/dev/null 2>&1
    rm -rf "$wdir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

sql() {     # sql SQL: stops at the first error
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
sqlv() {    # sqlv SQL...: each -c its own simple query, verbose errors, errors do not stop
    local args=()
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -v VERBOSITY=verbose -d "$DB" "${args[@]}" 2>&1
}

[ -f "$LOG" ] || bail "no server log at $LOG"

# ---------------------------------------------------------------- set-up
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" 2>&1) || bail "create database: $out"
out=$(sql "CREATE EXTENSION utilix;
           CREATE TABLE tok_store (tok text CHECK (length(tok) < 10));
           SELECT utilix.create_tenant('redact-1')") || bail "set-up failed: $out"
TENANT=$(printf '%s' "$out" | tail -1)
TOKEN=$(sql "SELECT utilix.issue_context($TENANT, 'alice', '10 minutes')")
# a second token, only for an error HINT (kept apart so that a leak there
# does not hide how the other paths behave)
TOKEN2=$(sql "SELECT utilix.issue_context($TENANT, 'bob', '10 minutes')")
SIG2=${TOKEN2##*.}
like "$TOKEN" '^utx1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$' "a token is minted"
PAYLOAD=$(printf '%s' "$TOKEN" | cut -d. -f2)
SIG=$(printf '%s' "$TOKEN" | cut -d. -f3)
# same payload, last signature character changed: a forged token
last=${SIG: -1}
[ "$last" = "A" ] && repl=B || repl=A
BAD="utx1.$PAYLOAD.${SIG:0:42}$repl"
BADSIG=${SIG:0:42}$repl

out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d postgres 2>&1 <<SQL
ALTER SYSTEM SET log_statement = 'all';
ALTER SYSTEM SET log_min_error_statement = 'error';
ALTER SYSTEM SET log_min_duration_statement = 0;
ALTER SYSTEM SET log_parameter_max_length = -1;
ALTER SYSTEM SET log_parameter_max_length_on_error = -1;
SELECT pg_reload_conf();
SQL
) || bail "cannot change logging settings: $out"
for _ in $(seq 1 50); do
    [ "$(sql "SHOW log_statement")" = "all" ] && [ "$(sql "SHOW log_parameter_max_length_on_error")" = "-1" ] && break
    sleep 0.1
done
is "$(sql "SHOW log_statement")" "all" "log_statement is 'all' for new sessions"

mark=$(stat -c %s "$LOG")
PROBE="redaction_probe_$RANDOM$RANDOM"

# ---------------------------------------------------------------- statements carrying the token
sqlv "SELECT 1 AS $PROBE" >/dev/null

out=$(sqlv "SET utilix.context = '$TOKEN'" "SELECT utilix.current_tenant()")
is "$out" "$TENANT" "SET utilix.context = token works"

out=$(sqlv "SELECT utilix.set_context('$TOKEN')")
is "$out" "$TENANT" "SELECT utilix.set_context(token) works"

out=$(sqlv "SELECT utilix.set_context('$TOKEN', false)" "SELECT utilix.current_tenant()")
is "$out" "$TENANT
$TENANT" "SELECT utilix.set_context(token, false) works"

out=$(sqlv "SELECT set_config('utilix.context', '$TOKEN', false)" "SELECT utilix.current_tenant()")
like "$out" "^\(token\)" "set_config('utilix.context', token) works and shows (token)"

out=$(sqlv "BEGIN" "SET LOCAL utilix.context TO '$TOKEN'" "SELECT utilix.current_tenant()" "COMMIT")
is "$out" "$TENANT" "SET LOCAL utilix.context works"

# failing statements that carry the token
out=$(sqlv "SELECT utilix.set_context('$TOKEN') FROM no_such_table")
like "$out" 'ERROR: +42P01' "failing statement (missing table) with the token errors"
out=$(sqlv "SELECT 1/0 WHERE '$TOKEN' IS NOT NULL")
like "$out" 'ERROR: +22012' "failing statement (division by zero) with the token errors"
out=$(sqlv "SELEC utilix.set_context('$TOKEN')")
like "$out" 'ERROR: +42601' "syntax error in a statement with the token errors"
out=$(sqlv "SELECT '$TOKEN'::int")
like "$out" 'ERROR: +22P02' "error whose message quotes the token"
out=$(sqlv "INSERT INTO tok_store VALUES ('$TOKEN')")
like "$out" 'ERROR: +23514' "check violation whose detail holds the token"
out=$(sqlv "SET utilix.context = '$BAD'")
like "$out" 'ERROR: +42501: invalid tenant context token' "SET utilix.context to a forged token is refused"
out=$(sqlv "SELECT utilix.set_context('$BAD')")
like "$out" 'ERROR: +42501' "set_context(forged token) is refused"
out=$(sqlv "DO \$\$ BEGIN RAISE WARNING 'the token is %', '$TOKEN'; END \$\$")
like "$out" 'WARNING' "a WARNING quoting the token is raised"
out=$(sqlv "DO \$\$ BEGIN PERFORM utilix.set_context('$TOKEN'); PERFORM 1/0; END \$\$")
like "$out" 'ERROR: +22012' "a DO block that sets the context and then fails errors"

# COPY of a row holding the token that violates a constraint
printf '%s\n' "$TOKEN" > "$wdir/row.txt"
out=$(sqlv "\\copy tok_store FROM '$wdir/row.txt'")
like "$out" 'ERROR: +23514' "COPY of a row holding the token fails its check constraint"

# persisting the token as a setting is refused, and it is stored nowhere
out=$(sqlv "ALTER SYSTEM SET utilix.context = '$TOKEN'")
like "$out" 'ERROR: +55P02' "ALTER SYSTEM SET utilix.context = token is refused"
out=$(sqlv "ALTER ROLE CURRENT_USER SET utilix.context = '$TOKEN'")
like "$out" 'ERROR: +42501' "ALTER ROLE ... SET utilix.context = token is refused"
out=$(sqlv "ALTER DATABASE $DB SET utilix.context = '$TOKEN'")
like "$out" 'ERROR: +42501' "ALTER DATABASE ... SET utilix.context = token is refused"
is "$(sql "SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ' ') LIKE '%utx1.%'")" "0" \
    "no role or database setting holds a token"
lacks "$UTILIX_DIR/data/postgresql.auto.conf" -- "$SIG" "postgresql.auto.conf does not hold the token"

# an application function that rejects a token and says so in its HINT
out=$(sqlv "CREATE FUNCTION app_check_token(t text) RETURNS void LANGUAGE plpgsql AS
              \$\$ BEGIN RAISE EXCEPTION 'token rejected by the application' USING HINT = 'token was ' || t; END \$\$" \
           "SELECT app_check_token('$TOKEN2')")
like "$out" 'ERROR: +P0001: token rejected' "an application error with the token in its HINT is raised"

# PREPARE / EXECUTE
out=$(sqlv "PREPARE p(text) AS SELECT utilix.set_context(\$1)" "EXECUTE p('$TOKEN')" "EXECUTE p('$BAD')")
like "$out" "^$TENANT\$" "PREPARE p(text) ... EXECUTE p(token) works"
like "$out" 'ERROR: +42501' "EXECUTE p(forged token) is refused"

# the extended protocol: the token as a bind parameter
cat > "$wdir/ext.sql" <<'PGB'
SELECT utilix.set_context(:tok);
SELECT set_config(:name, :tok, true);
SELECT length(:tok);
PGB
cat > "$wdir/ext_bad.sql" <<'PGB'
SELECT set_config(:name, :bad, true);
PGB
for mode in extended prepared; do
    pgbench -n -M $mode -t 2 -D "tok=$TOKEN" -D name=utilix.context -f "$wdir/ext.sql" "$DB" >"$wdir/pgbench-$mode.out" 2>&1
    is "$?" "0" "pgbench -M $mode with the token as a bind parameter works"
    pgbench -n -M $mode -t 1 -D "bad=$BAD" -D name=utilix.context -f "$wdir/ext_bad.sql" "$DB" >"$wdir/pgbench-bad-$mode.out" 2>&1
    like "$(cat "$wdir/pgbench-bad-$mode.out")" 'invalid tenant context token' "pgbench -M $mode with a forged token as a bind parameter is refused"
done

sqlv "SELECT 2 AS ${PROBE}_end, 'literal-$PROBE' AS lit" >/dev/null

# ---------------------------------------------------------------- the log
tail -c +$((mark + 1)) "$LOG" > "$wdir/section.log"
section=$(cat "$wdir/section.log")
like "$section" "statement: SELECT 1 AS $PROBE" "a harmless statement is logged in full (logging is on)"
like "$section" "statement: SELECT 2 AS ${PROBE}_end, '\*\*\*' AS lit" "the last statement is logged too, its literal masked (the log is complete)"
unlike "$section" "literal-$PROBE" "a string literal never reaches the log (utilix.redact_literals)"
like "$section" 'statement: <redacted by utilix>' "server.log shows 'statement: <redacted by utilix>'"
like "$section" 'execute [^:]*: <redacted by utilix>' "server.log shows 'execute ...: <redacted by utilix>' for the extended protocol"
like "$section" 'ERROR: +relation "no_such_table" does not exist' "the error of a failing statement is still logged"
like "$section" 'ERROR: +invalid tenant context token' "the refusal of a forged token is still logged"

lacks "$LOG" -- "$TOKEN" "server.log does not contain the token"
lacks "$LOG" -- "$PAYLOAD" "server.log does not contain the token's payload"
lacks "$LOG" -- "$SIG" "server.log does not contain the token's signature"
lacks "$LOG" -- "$BADSIG" "server.log does not contain the forged token's signature"
lacks "$LOG" -- "${SIG:0:20}" "server.log does not contain even a prefix of the signature"
lacks "$LOG" -- "$SIG2" "server.log does not contain a token quoted in an error HINT"

# ---------------------------------------------------------------- plaintext of encrypted columns
R=$RANDOM$RANDOM
declare -A P     # case -> its plaintext (tag first: none is a prefix of another)
for c in int num date json uuid re upd raise rlog rexc dyn ctx par lit; do
    P[$c]="UTXPLAIN-$c-$R"
done
P[range]="9${R}99999999"        # digits only: a value out of range for integer
P[re]="UTXPLAIN-re-$R((("       # an invalid regular expression
P[lit]="UTXPLAINlit$R"           # one json token each: json errors quote it whole
P[json]="UTXPLAINjson$R"
P[upd]="UTXPLAINupd$R"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" 2>&1 <<SQL
CREATE ROLE $APP LOGIN;
CREATE TABLE enc_t (tenant_id bigint NOT NULL, id int NOT NULL, secret text, doc jsonb, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('enc_t');
SELECT utilix.encrypt_column('enc_t', 'secret');
SELECT utilix.encrypt_column('enc_t', 'doc');
GRANT SELECT, INSERT, UPDATE, DELETE ON enc_t TO $APP;
SQL
) || bail "encrypted table set-up failed: $out"
APPTOKEN=$(sql "SELECT utilix.issue_context($TENANT, 'carol', '10 minutes')")
as_app() {  # as_app SQL...: the application role with a context, verbose errors, errors do not stop
    local args=(-c "SELECT utilix.set_context('$APPTOKEN', false)") s
    for s in "$@"; do args+=(-c "$s"); done
    psql -X -q -A -t -v VERBOSITY=verbose -U "$APP" -d "$DB" "${args[@]}" 2>&1 | sed '1{/^[0-9][0-9]*$/d}'
}
declare -A IDOF   # case -> the id of its row
values=()
n=0
for c in "${!P[@]}"; do
    n=$((n + 1))
    IDOF[$c]=$n
    values+=("($TENANT, $n, '${P[$c]}')")
done
out=$(as_app "INSERT INTO enc_t (tenant_id, id, secret) VALUES $(IFS=,; echo "${values[*]}")" \
             "SELECT count(*) FROM enc_t WHERE secret::text LIKE 'UTXPLAIN%' OR secret::text LIKE '9%'")
is "$out" "${#P[@]}" "the application role stores and reads back ${#P[@]} encrypted values"
is "$(sql "SELECT count(*) FROM enc_t WHERE secret::text LIKE 'utxe1:%'")" "${#P[@]}" "they are stored sealed"

# case NAME LOGREGEX SQL...: runs SQL as the application role; the log written
# meanwhile must match LOGREGEX and must not hold P[NAME]
declare -A CASE_OUT
case_log() {
    local name=$1 want=$2 m
    shift 2
    m=$(stat -c %s "$LOG")
    CASE_OUT[$name]=$(as_app "$@")
    CASE_LOG=$(tail -c +$((m + 1)) "$LOG")
    like "$CASE_LOG" "$want" "$name: the server log has the redacted line"
    if printf '%s' "$CASE_LOG" | grep -qF -- "${P[$name]}"; then
        not_ok "$name: the plaintext is not in the server log" "$(printf '%s' "$CASE_LOG" | grep -F -- "${P[$name]}" | head -3)"
    else
        ok "$name: the plaintext is not in the server log"
    fi
}
rid() { echo "${IDOF[$1]}"; }
RED='\(redacted by utilix, SQLSTATE'

# the exploit and the other casts
case_log int "ERROR: +invalid input syntax for type \*\*\*: \"\*\*\*\" $RED 22P02\)" \
    "SELECT secret::text::int FROM enc_t WHERE id = $(rid int)"
like "${CASE_OUT[int]}" "ERROR: +22P02: invalid input syntax for type integer: \"${P[int]}\"" \
    "int: the client still gets the full error, plaintext and all"
case_log num "ERROR: +invalid input syntax for type \*\*\*: \"\*\*\*\" $RED 22P02\)" \
    "SELECT secret::text::numeric FROM enc_t WHERE id = $(rid num)"
case_log date "ERROR: +invalid input syntax for type \*\*\*: \"\*\*\*\" $RED 22007\)" \
    "SELECT secret::text::date FROM enc_t WHERE id = $(rid date)"
case_log json "ERROR: +invalid input syntax for type \*\*\* $RED 22P02\)" \
    "SELECT secret::text::json FROM enc_t WHERE id = $(rid json)"
like "$CASE_LOG" "DETAIL: +\(detail redacted by utilix\)" "json: its DETAIL (the bad token) is redacted"
like "$CASE_LOG" "CONTEXT: +\(context line redacted by utilix\)" "json: its CONTEXT (the JSON input) is redacted"
like "${CASE_OUT[json]}" "CONTEXT: +JSON data, line 1: ${P[json]}" "json: the client still gets the JSON context"
case_log uuid "ERROR: +invalid input syntax for type \*\*\*: \"\*\*\*\" $RED 22P02\)" \
    "SELECT secret::text::uuid FROM enc_t WHERE id = $(rid uuid)"
case_log range "ERROR: +value \"\*\*\*\" is out of range for type \*\*\* $RED 22003\)" \
    "SELECT secret::text::int FROM enc_t WHERE id = $(rid range)"
like "${CASE_OUT[range]}" "22003: value \"${P[range]}\" is out of range" "range: the client still gets the full error"
case_log re "ERROR: +invalid regular expression: \*\*\* $RED 2201B\)" \
    "SELECT 'x' ~ secret::text FROM enc_t WHERE id = $(rid re)"

# writing plaintext into an encrypted jsonb column
case_log upd "ERROR: +invalid input syntax for type \*\*\* $RED 22P02\)" \
    "UPDATE enc_t SET doc = secret::text::jsonb WHERE id = $(rid upd)"
like "${CASE_OUT[upd]}" "ERROR: +22P02: invalid input syntax for type json" "upd: the client gets the json error"
case_log lit "ERROR: +invalid input syntax for type \*\*\* $RED 22P02\)" \
    "INSERT INTO enc_t (tenant_id, id, doc) VALUES ($TENANT, 900, '{\"k\": ${P[lit]}'::jsonb)"
like "${CASE_OUT[lit]}" "Token \"${P[lit]}\" is invalid" "lit: the client gets the json error with the bad token"
P[bind]="UTXPLAINbind$R"
m=$(stat -c %s "$LOG")
printf '%s\n' "SELECT utilix.set_context(:tok, false);" "INSERT INTO enc_t (tenant_id, id, doc) VALUES ($TENANT, 901, :doc::jsonb);" > "$wdir/json_bind.sql"
pgbench -n -M extended -t 1 -U "$APP" -D "tok=$APPTOKEN" -D "doc={\"k\": ${P[bind]}" -f "$wdir/json_bind.sql" "$DB" >"$wdir/pgbench-json.out" 2>&1
like "$(cat "$wdir/pgbench-json.out")" 'invalid input syntax for type json' "bind: invalid json as a bind parameter fails for the client"
CASE_LOG=$(tail -c +$((m + 1)) "$LOG")
like "$CASE_LOG" "ERROR: +invalid input syntax for type \*\*\* $RED 22P02\)" "bind: the server log has the redacted line"
unlike "$CASE_LOG" "${P[bind]}" "bind: the plaintext is not in the server log"

# messages that carry decrypted values
case_log raise "WARNING: +message text redacted by utilix \(SQLSTATE 01000\)" \
    "DO \$\$ BEGIN RAISE WARNING '%', (SELECT secret FROM enc_t WHERE id = $(rid raise)); END \$\$"
like "${CASE_OUT[raise]}" "WARNING: +01000: ${P[raise]}" "raise: the client still gets the WARNING with the value"
like "$CASE_LOG" "CONTEXT: +PL/pgSQL function inline_code_block line 1 at RAISE" "raise: the CONTEXT line naming the function is kept"
case_log rlog "LOG: +message text redacted by utilix \(SQLSTATE 00000\)" \
    "DO \$\$ BEGIN RAISE LOG 'value: %', (SELECT secret FROM enc_t WHERE id = $(rid rlog)); END \$\$"
case_log rexc "ERROR: +message text redacted by utilix \(SQLSTATE P0001\)" \
    "DO \$\$ DECLARE v text; BEGIN SELECT secret INTO v FROM enc_t WHERE id = $(rid rexc);
       RAISE EXCEPTION 'bad %', v USING DETAIL = 'detail ' || v, HINT = 'hint ' || v; END \$\$"
like "$CASE_LOG" "DETAIL: +\(detail redacted by utilix\)" "rexc: the DETAIL is redacted"
like "$CASE_LOG" "HINT: +\(hint redacted by utilix\)" "rexc: the HINT is redacted"
like "${CASE_OUT[rexc]}" "HINT: +hint ${P[rexc]}" "rexc: the client still gets DETAIL and HINT"
case_log dyn "ERROR: +invalid input syntax for type \*\*\*: \"\*\*\*\" $RED 22P02\)" \
    "DO \$\$ DECLARE v text; BEGIN SELECT secret INTO v FROM enc_t WHERE id = $(rid dyn);
       EXECUTE 'SELECT ' || quote_literal(v) || '::int'; END \$\$"
unlike "$CASE_LOG" "QUERY:" "dyn: the dynamic query is not in the log"
case_log ctx "CONTEXT: +\(context line redacted by utilix\)" \
    "DO \$\$ DECLARE v text; BEGIN SELECT secret INTO v FROM enc_t WHERE id = $(rid ctx); PERFORM v::int; END \$\$"
like "$CASE_LOG" "PL/pgSQL function inline_code_block line 1 at PERFORM" "ctx: the CONTEXT line naming the function is kept"
case_log par "ERROR: +(message text redacted by utilix \(SQLSTATE 22P02\)|invalid input syntax for type \*\*\*: \"\*\*\*\" $RED 22P02\))" \
    "SET max_parallel_workers_per_gather = 2" "SET parallel_setup_cost = 0" "SET parallel_tuple_cost = 0" \
    "SET force_parallel_mode = on" "SELECT secret::text::int FROM enc_t WHERE id = $(rid par)"
like "${CASE_OUT[par]}" "22P02: invalid input syntax for type integer" "par: the client gets the error of a parallel plan"

# an integrity violation names only objects: its message stays
P[uniq]="UTXPLAIN-uniq-$R"
case_log uniq "ERROR: +duplicate key value violates unique constraint \"enc_t_pkey\" $RED 23505\)" \
    "INSERT INTO enc_t (tenant_id, id, secret) VALUES ($TENANT, $(rid int), '${P[uniq]}')"
like "${CASE_OUT[uniq]}" "ERROR: +23505: duplicate key value violates unique constraint \"enc_t_pkey\"" "uniq: the client gets the error"

# what stays as it was
out=$(as_app "SELECT 1 FROM no_such_table_$R")
like "$(tail -c 2000 "$LOG")" "ERROR: +relation \"no_such_table_$R\" does not exist" \
    "an error of a statement that touched no encrypted value is logged in full"
for c in "${!P[@]}"; do
    lacks "$LOG" -- "${P[$c]}" "server.log does not hold the plaintext of case $c"
done

done_testing
