#!/usr/bin/env bash
# Admin logins by network, over real TCP connections, against the running
# test cluster (test/cluster.sh: PGHOST is a socket folder, the server also
# listens on 127.0.0.1:$PGPORT, trust authentication).
#
# Over TCP inet_client_addr() is 127.0.0.1, so utilix.login() judges the
# address by itself: an admin whose tenant allows 127.0.0.0/8 logs in (and is
# refused with NULL and WARNING 28P01 once the range is revoked through
# utilix.revoke_admin_network); a non-admin logs in from anywhere; a role that
# is not a gateway cannot pass another client_addr (42501); a utilix_gateway
# role can, and the admin's range is then judged on the address it passes.
#
# Then, with log_statement = 'all' and log_min_duration_statement = 0 (both
# reset at the end), no password used here may appear in the server log:
# literals at top level, in other spellings, in DO blocks whose login fails
# or whose create_user fails.  Passwords carry a random part, so a hit in
# the log can only come from this run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

: "${UTILIX_DIR:?run inside test/cluster.sh}" "${PGHOST:?}" "${PGPORT:?}"
LOG=$UTILIX_DIR/server.log
DB=utilix_admin_net
APP=utilix_an_app        # the application's login role: not a gateway
GW=utilix_an_gw          # the login service: member of utilix_gateway
SETTINGS=(log_statement log_min_duration_statement)

cleanup() {
    local s
    for s in "${SETTINGS[@]}"; do
        psql -X -q -d postgres -c "ALTER SYSTEM RESET $s" >/dev/null 2>&1
    done
    psql -X -q -d postgres -c "SELECT pg_reload_conf()" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
        -c "DROP ROLE IF EXISTS $APP" -c "DROP ROLE IF EXISTS $GW" >/dev/null 2>&1
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rnd() { od -An -tx1 -N6 /dev/urandom | tr -d ' \n'; }
# passwords of this run (none contains a login name)
CHIEF_INIT="Ci-$(rnd)-first"
CHIEF_PW="Cp-$(rnd)-second"
CLERK_INIT="Ki-$(rnd)-first"
CLERK_PW="Kp-$(rnd)-second"
WRONG_PW="Wx-$(rnd)-guess"
VARIANT_PW="Vq-$(rnd)-spelled"
SHORT_PW="S$(rnd | cut -c1-8)"         # 9 characters: refused as too short
DO_WRONG_PW="Dw-$(rnd)-in-do"
DO_DUP_PW="Dd-$(rnd)-in-do"
PASSWORDS=(CHIEF_INIT CHIEF_PW CLERK_INIT CLERK_PW WRONG_PW VARIANT_PW SHORT_PW DO_WRONG_PW DO_DUP_PW)
MARK="an_marker_$(rnd)"

# sock SQL: superuser over the unix socket; stops at the first error
sock() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
# tcp USER: a psql script on stdin, over TCP to 127.0.0.1 as USER; verbose
# errors (with SQLSTATE), stdout and stderr together
tcp() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -h 127.0.0.1 -p "$PGPORT" -U "$1" -d "$DB" 2>&1
}
# unix USER: the same over the unix socket
unix() {
    psql -X -q -A -t -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -U "$1" -d "$DB" 2>&1
}

[ -f "$LOG" ] || bail "no server log at $LOG"

# ---------------------------------------------------------------- set-up
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $APP" \
    -c "DROP ROLE IF EXISTS $GW" >/dev/null 2>&1
out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" 2>&1) || bail "create database: $out"
out=$(sock "CREATE EXTENSION utilix;
            CREATE ROLE $APP LOGIN;
            CREATE ROLE $GW LOGIN IN ROLE utilix_gateway;
            SELECT utilix.create_tenant('an alpha')") || bail "set-up failed: $out"
T=$(printf '%s' "$out" | tail -1)

out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d postgres 2>&1 <<SQL
ALTER SYSTEM SET log_statement = 'all';
ALTER SYSTEM SET log_min_duration_statement = 0;
SELECT pg_reload_conf();
SQL
) || bail "cannot change logging settings: $out"
for _ in $(seq 1 50); do
    [ "$(sock "SHOW log_statement")" = "all" ] && [ "$(sock "SHOW log_min_duration_statement")" = "0" ] && break
    sleep 0.1
done
[ "$(sock "SHOW log_statement")" = "all" ] || bail "log_statement did not become 'all'"

# The operator creates the first admin.  No operator function allows a new
# tenant's first admin network: a superuser inserts it.
out=$(sock "SELECT utilix.create_tenant_admin($T, 'chief', '$CHIEF_INIT');
            INSERT INTO utilix.admin_network (tenant_id, network, added_by) VALUES ($T, '127.0.0.0/8', 'operator')") ||
    bail "create_tenant_admin failed: $out"

# ---------------------------------------------------------------- TCP, no client_addr passed
out=$(tcp "$APP" <<<"SELECT inet_client_addr()")
is "$out" "127.0.0.1" "over TCP, inet_client_addr() is 127.0.0.1"

out=$(tcp "$APP" <<SQL
SELECT utilix.login('an alpha', 'chief', '$CHIEF_INIT') AS tok \gset
BEGIN;
SELECT utilix.set_context(:'tok') \g /dev/null
SELECT 'status1=' || status FROM utilix.context_info();
SELECT utilix.change_password('$CHIEF_INIT', '$CHIEF_PW') AS tok2 \gset
SELECT utilix.set_context(:'tok2') \g /dev/null
SELECT 'status2=' || status FROM utilix.context_info();
SELECT utilix.create_user('clerk', '$CLERK_INIT') \g /dev/null
SELECT utilix.allow_admin_network('10.0.0.0/8') \g /dev/null
COMMIT;
SQL
)
like "$out" '^status1=password change only$' "an admin whose tenant allows 127.0.0.0/8 logs in over TCP (no client_addr passed, not a gateway)"
like "$out" '^status2=valid$' "... changes its password, creates a user and allows 10.0.0.0/8 over the same connection"
unlike "$out" 'ERROR' "... without any error"
is "$(sock "SELECT string_agg(concat_ws(' ', outcome, client_addr, db_role), ';') FROM utilix.auth_event
             WHERE login = 'chief' AND event = 'login'")" "password change required 127.0.0.1 $APP" \
   "the admin's login is recorded with the address 127.0.0.1 and the connecting role"

out=$(tcp "$APP" <<SQL
SELECT utilix.login('an alpha', 'clerk', '$CLERK_INIT') AS tok \gset
BEGIN;
SELECT utilix.set_context(:'tok') \g /dev/null
SELECT utilix.change_password('$CLERK_INIT', '$CLERK_PW') IS NOT NULL AS changed;
COMMIT;
SQL
)
is "$out" "t" "a non-admin user logs in over TCP and changes its password"

out=$(tcp "$APP" <<<"SELECT utilix.login('an alpha', 'chief', '$CHIEF_PW') IS NOT NULL")
is "$out" "t" "the admin logs in over TCP with its new password"

# ---------------------------------------------------------------- revoking the range
out=$(tcp "$APP" <<SQL
BEGIN;
SELECT utilix.set_context(utilix.login('an alpha', 'chief', '$CHIEF_PW')) \g /dev/null
SELECT utilix.revoke_admin_network('127.0.0.0/8');
COMMIT;
SQL
)
unlike "$out" 'ERROR' "the admin revokes 127.0.0.0/8 through utilix.revoke_admin_network"
out=$(tcp "$APP" <<<"SELECT utilix.login('an alpha', 'chief', '$CHIEF_PW') IS NULL AS refused")
like "$out" '^t$' "after revoke_admin_network the same admin login over TCP returns NULL"
like "$out" 'WARNING:  28P01: login failed' "... with WARNING 28P01 (not an error)"
is "$(sock "SELECT concat_ws(' ', outcome, detail, client_addr) FROM utilix.auth_event
             WHERE login = 'chief' AND event = 'login' ORDER BY id DESC LIMIT 1")" "denied address not allowed 127.0.0.1" \
   "... recorded as denied, address not allowed, from 127.0.0.1"
out=$(tcp "$APP" <<<"SELECT utilix.login('an alpha', 'clerk', '$CLERK_PW') IS NOT NULL")
is "$out" "t" "a non-admin user still logs in over TCP from 127.0.0.1"
out=$(unix "$APP" <<<"SELECT utilix.login('an alpha', 'clerk', '$CLERK_PW') IS NOT NULL")
is "$out" "t" "a non-admin user logs in over the unix socket (no address at all)"
out=$(tcp "$APP" <<<"SELECT utilix.login('an alpha', 'chief', '$WRONG_PW') IS NULL")
like "$out" '^t$' "a wrong password over TCP: NULL"

# ---------------------------------------------------------------- who may pass client_addr
out=$(tcp "$APP" <<<"SELECT utilix.login('an alpha', 'chief', '$CHIEF_PW', '10.0.0.1') IS NULL")
like "$out" '^t$' "a plain role over TCP passing client_addr 10.0.0.1: NULL, no token"
like "$out" 'WARNING:  42501' "... with WARNING 42501"
is "$(sock "SELECT concat_ws(' ', outcome, client_addr, db_role, detail) FROM utilix.auth_event
             WHERE login = 'chief' AND event = 'login' ORDER BY id DESC LIMIT 1")" \
   "denied 127.0.0.1 $APP client_addr passed by a role that is not a gateway" \
   "... recorded with the real address 127.0.0.1"
out=$(tcp "$APP" <<<"SELECT utilix.login('an alpha', 'clerk', '$CLERK_PW', '10.0.0.1') IS NULL")
like "$out" '^t$' "... also NULL when logging in a non-admin user"
like "$out" 'WARNING:  42501' "... with WARNING 42501"
out=$(tcp "$APP" <<<"SELECT utilix.login('an alpha', 'clerk', '$CLERK_PW', '127.0.0.1') IS NOT NULL")
is "$out" "t" "a plain role may pass its own address (the same as inet_client_addr())"
out=$(tcp "$GW" <<<"SELECT utilix.login('an alpha', 'chief', '$CHIEF_PW', '10.1.2.3') IS NOT NULL")
is "$out" "t" "a gateway over TCP passing 10.1.2.3 (in the allowed 10.0.0.0/8): the admin gets a token"
is "$(sock "SELECT concat_ws(' ', outcome, client_addr, db_role) FROM utilix.auth_event
             WHERE login = 'chief' AND event = 'login' ORDER BY id DESC LIMIT 1")" "ok 10.1.2.3 $GW" \
   "... recorded with the address the gateway passed, not the gateway's own"
out=$(tcp "$GW" <<<"SELECT utilix.login('an alpha', 'chief', '$CHIEF_PW', '192.0.2.1') IS NULL")
like "$out" '^t$' "a gateway passing 192.0.2.1 (outside every allowed range): NULL for the admin"
out=$(tcp "$GW" <<<"SELECT utilix.login('an alpha', 'chief', '$CHIEF_PW') IS NULL")
like "$out" '^t$' "a gateway passing nothing: judged on its own address 127.0.0.1, no longer allowed: NULL"
out=$(tcp "$GW" <<<"SELECT utilix.login('an alpha', 'clerk', '$CLERK_PW', '192.0.2.1') IS NOT NULL")
is "$out" "t" "a gateway passing 192.0.2.1 for a non-admin user: a token"
out=$(unix "$GW" <<<"SELECT utilix.login('an alpha', 'chief', '$CHIEF_PW', '10.1.2.3') IS NOT NULL")
is "$out" "t" "a gateway over the unix socket may pass an address too"

# ---------------------------------------------------------------- passwords stay out of the server log
out=$(tcp "$APP" <<SQL
SELECT "utilix"."login"('an alpha', 'clerk', '$VARIANT_PW') IS NULL;
SELECT utilix . login ('an alpha', 'clerk', '$VARIANT_PW') IS NULL;
SET search_path = utilix, public;
SELECT login('an alpha', 'clerk', '$VARIANT_PW') IS NULL;
RESET search_path;
PREPARE an_login(text) AS SELECT utilix.login('an alpha', 'clerk', \$1) IS NULL;
EXECUTE an_login('$VARIANT_PW');
SQL
)
is "$(printf '%s' "$out" | grep -c '^t$')" "4" "logins with other spellings and a prepared statement run (wrong passwords: NULL)"
out=$(tcp "$APP" <<SQL
BEGIN;
SELECT utilix.set_context(utilix.login('an alpha', 'clerk', '$CLERK_PW'));
SELECT utilix.change_password('$CLERK_PW', '$SHORT_PW');
SQL
)
like "$out" 'ERROR:  22023' "a too-short new password is refused (22023)"
out=$(tcp "$APP" <<SQL
DO \$\$ BEGIN PERFORM utilix.login('an alpha', 'clerk', '$DO_WRONG_PW'); END \$\$;
SQL
)
like "$out" 'WARNING:  28P01' "a failed login inside a DO block warns 28P01"
out=$(tcp "$GW" <<SQL
BEGIN;
SELECT utilix.set_context(utilix.login('an alpha', 'chief', '$CHIEF_PW', '10.1.2.3')) \g /dev/null
DO \$\$ BEGIN PERFORM utilix.create_user('clerk', '$DO_DUP_PW'); END \$\$;
SQL
)
like "$out" 'ERROR:  23505' "create_user of an existing login inside a DO block fails (23505)"
sock "SELECT 1 AS $MARK" >/dev/null

# settings back before looking at the log, so the check below covers every line
psql -X -q -d postgres -c "ALTER SYSTEM RESET log_statement" -c "ALTER SYSTEM RESET log_min_duration_statement" \
    -c "SELECT pg_reload_conf()" >/dev/null 2>&1
for _ in $(seq 1 50); do
    [ "$(sock "SHOW log_statement")" = "none" ] && break
    sleep 0.1
done
is "$(sock "SHOW log_statement")/$(sock "SHOW log_min_duration_statement")" "none/-1" \
   "log_statement and log_min_duration_statement are reset"

grep -q "$MARK" "$LOG" && ok "statements were logged (log_statement = 'all' took effect)" ||
    not_ok "statements were logged (log_statement = 'all' took effect)" "marker $MARK not in $LOG"
grep -q '<redacted by utilix>' "$LOG" && ok "the server log shows redacted statements" ||
    not_ok "the server log shows redacted statements"
for v in "${PASSWORDS[@]}"; do
    lacks "$LOG" -- "${!v}" "the server log does not contain the password $v"
done
for v in DO_WRONG_PW DO_DUP_PW; do
    if grep -qF -- "${!v}" "$LOG"; then
        diag "$v appears in: $(grep -F -- "${!v}" "$LOG" | head -2 | sed 's/^[[:space:]]*//')"
    fi
done

done_testing
