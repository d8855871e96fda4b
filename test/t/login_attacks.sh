#!/usr/bin/env bash
# Attacks on the login path (issue 17, classes 1 to 3), on a cluster of its
# own whose lockout table holds the smallest capacity (1024 users), so that
# filling it takes seconds.
#
#  1. The lockout cannot be evaded.  An attacker guesses a victim's password
#     in transactions it rolls back, while the admin of another tenant fails
#     1100 users of its own (more than the table holds) to push the victim's
#     count out: the count stays exact, the fifth guess locks the victim.
#     When the table is full of recent failures, users without an entry are
#     refused unchecked (failing closed), the server log says so once, and
#     stale entries are reclaimed as soon as they expire.
#  2. A pending attempt blocks nobody: with a failed (or a successful) login
#     left open in another session, the victim logs in and its admin changes
#     it at once.
#  3. A refused attempt shows nothing: unknown tenant, unknown user, wrong
#     password, disabled, locked, admin outside its networks with a right
#     or a wrong password take the same locks and leave the same statistics
#     (tables, functions), the same answer and the same warning.  And an
#     admin's attempts from outside its networks are not counted at all.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

la_dir=$(mktemp -d /tmp/utilix-login.XXXXXX)
bg_pids=()
cleanup() {
    local p
    for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
    UTILIX_DIR=$la_dir
    cluster_destroy
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$la_dir" || bail "initdb failed"
cluster_conf "utilix.login_failure_capacity = 1024"
cluster_conf "utilix.scrypt_log2n = 10"
LOG=$UTILIX_DIR/server.log
DB=la
APP=la_app
export PGOPTIONS="-c client_min_messages=warning"
cluster_start || bail "the server does not start: $(tail -5 "$LOG")"

rnd() { od -An -tx1 -N6 /dev/urandom | tr -d ' \n'; }
VICTIM_PW="Vp-$(rnd)-right"
BYSTANDER_PW="By-$(rnd)-right"
BOSS_PW="Bo-$(rnd)-right"
FILL_PW="Fi-$(rnd)-initial"

q() {       # q SQL: as the superuser in $DB, one value per line, errors shown
    psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1
}
qa() {      # qa SQL: as the application role
    psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" -c "$1" 2>&1
}
qas() {     # qas: a psql script on stdin, as the application role, warnings shown
    PGOPTIONS="-c client_min_messages=notice" psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" 2>&1
}

out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" 2>&1) || bail "create database: $out"
out=$(q "CREATE EXTENSION utilix;
         CREATE ROLE $APP LOGIN;
         SELECT utilix.create_tenant('la victim');
         SELECT utilix.create_tenant('la attacker');") || bail "set-up: $out"
TA=$(q "SELECT id FROM utilix.tenant WHERE name = 'la victim'")
TB=$(q "SELECT id FROM utilix.tenant WHERE name = 'la attacker'")
ADMIN_A=$(q "SELECT utilix.issue_context($TA, 'a-admin', '1 hour', '{admin}')")
ADMIN_B=$(q "SELECT utilix.issue_context($TB, 'b-admin', '1 hour', '{admin}')")
out=$(q "SELECT utilix.set_context('$ADMIN_A');
         SELECT utilix.create_user('victim', '$VICTIM_PW', '{read}');
         SELECT utilix.create_user('bystander', '$BYSTANDER_PW', '{read}');
         SELECT utilix.create_user('sleeper', '$BYSTANDER_PW', '{read}');
         SELECT utilix.disable_user('sleeper');
         SELECT utilix.create_user('boss', '$BOSS_PW', '{admin,read}');
         SELECT utilix.allow_admin_network('10.0.0.0/8');
         UPDATE utilix.app_user SET must_change = false WHERE tenant_id = $TA") || bail "users: $out"

login() {   # login TENANT LOGIN PASSWORD: the token, or empty
    psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.login('$1', '$2', '$3')" 2>/dev/null
}
state() {   # state TENANT LOGIN: failures|locked
    q "SELECT failures || '|' || (locked_until IS NOT NULL) FROM utilix._login_state($1, '$2')"
}
table_state() {
    q "SELECT share_full || '|' || table_full || '|' || capacity FROM utilix.login_failure_table()"
}

# ---------------------------------------------------------------- 1a. shares, stale entries reclaimed
# capacity 1024, utilix.login_failure_tenant_share 10 %: a tenant holds at most 102 entries
out=$(q "SELECT count(*) FILTER (WHERE utilix._login_attempt($TB, 'filler' || i, 5, '1 second', true))
           FROM generate_series(1, 200) i")
is "$out" "102" "a tenant's users get 102 entries (10 % of 1024), no more"
is "$(table_state)" "true|false|1024" "login_failure_table(): a share is full, the table is not, capacity 1024"
is "$(q "SELECT utilix._login_attempt($TB, 'one-more', 5, '1 second', true)")" "f" \
   "a user of that tenant without an entry may not try a password while its tenant's share is full"
is "$(q "SELECT utilix._login_attempt($TA, 'elsewhere', 5, '1 second', true)")" "t" \
   "a user of another tenant still may"
sleep 1.3
is "$(q "SELECT utilix._login_attempt($TB, 'one-more', 5, '1 second', true)")" "t" \
   "once the entries are stale they are reclaimed, and the user may try"
is "$(table_state)" "false|false|1024" "the stale entries are gone"
q "SELECT utilix._login_reset($TB, 'one-more'), utilix._login_reset($TA, 'elsewhere')" >/dev/null
# the whole table full (every tenant's share raised to 100 %): fails closed for everyone without an entry
q "ALTER SYSTEM SET utilix.login_failure_tenant_share = 100" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1
out=$(q "SELECT count(*) FILTER (WHERE utilix._login_attempt($TB, 'filler' || i, 5, '1 second', true))
           FROM generate_series(1, 1100) i")
is "$out" "1024" "with a share of 100 %, one tenant can fill the whole table (1024)"
is "$(q "SELECT utilix._login_attempt($TA, 'elsewhere', 5, '1 second', true)")" "f" \
   "... and then a user of another tenant without an entry is refused unchecked (why the share is 10 % by default)"
q "ALTER SYSTEM RESET utilix.login_failure_tenant_share" >/dev/null
q "SELECT pg_reload_conf()" >/dev/null
sleep 1.3
is "$(q "SELECT utilix._login_attempt($TA, 'elsewhere', 5, '1 second', true)")" "t" "the stale entries reclaimed, it may try again"
q "SELECT utilix._login_reset($TA, 'elsewhere')" >/dev/null
n=$(grep -c "utilix: the login failure table is full" "$LOG")
is "$n" "1" "the server log said once that a table share was full (not once per refused attempt)"

# ---------------------------------------------------------------- 1b. the eviction attack
for i in 1 2 3 4; do
    qas <<SQL >/dev/null
BEGIN;
SELECT utilix.login('la victim', 'victim', 'Guess-$i-$(rnd)');
ROLLBACK;
SQL
done
is "$(state "$TA" victim)" "4|false" "four guesses in rolled-back transactions: counted (4), not locked yet"
# the attacker's admin creates 1100 users of its own tenant and fails each one
out=$(q "SET utilix.scrypt_log2n = 10;
         SELECT utilix.set_context('$ADMIN_B');
         SELECT count(*) FROM (SELECT utilix.create_user('b' || lpad(i::text, 4, '0'), '$FILL_PW', '{read}')
                                 FROM generate_series(1, 1100) i) x" 2>&1 | tail -1)
is "$out" "1100" "the attacker's admin created 1100 users"
out=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT count(*) FROM generate_series(1, 1100) i
           WHERE utilix.login('la attacker', 'b' || lpad(i::text, 4, '0'), 'Wrong-$(rnd)') IS NULL" 2>/dev/null)
is "$out" "1100" "1100 failed logins of the attacker's users"
is "$(table_state)" "true|false|1024" "the attacker's share is full; the table is not"
is "$(state "$TA" victim)" "4|false" "the victim's count is still exact: 4 (not pushed out)"
refused=$(q "SELECT count(*) FROM utilix.auth_event WHERE tenant_id = $TB AND detail = 'locked'")
is "$refused" "998" "the 998 attacker users beyond the share (102) were refused unchecked"
qas <<SQL >/dev/null
BEGIN;
SELECT utilix.login('la victim', 'victim', 'Guess-5-$(rnd)');
ROLLBACK;
SQL
is "$(state "$TA" victim)" "5|true" "the fifth guess, rolled back too, locks the victim"
is "$(login 'la victim' victim "$VICTIM_PW")" "" "the locked victim's right password is refused"
is "$(q "SELECT detail FROM utilix.auth_event WHERE tenant_id = $TA AND login = 'victim' ORDER BY id DESC LIMIT 1")" \
   "locked" "... recorded as locked"
unlike "$(grep -A2 "login failure table is full" "$LOG")" "$FILL_PW|Wrong-" "the server log holds no password"
like "$(login 'la victim' bystander "$BYSTANDER_PW")" "^utx1[.]" \
   "with the attacker's share full, a user of the victim's tenant without an entry logs in"
# an unlock that is rolled back unlocks nothing; one that commits does
for f in "enable_user('victim')" "reset_password('victim', 'Temporary-$(rnd)')"; do
    q "BEGIN; SELECT utilix.set_context('$ADMIN_A'); SELECT utilix.$f; ROLLBACK;" >/dev/null
    is "$(state "$TA" victim)" "5|true" "$f rolled back: the victim is still locked with 5 failures"
done
q "SELECT utilix.set_context('$ADMIN_A'); SELECT utilix.enable_user('victim')" >/dev/null
is "$(state "$TA" victim)" "0|false" "enable_user committed: the count is cleared"
like "$(login 'la victim' victim "$VICTIM_PW")" "^utx1[.]" "after enable_user the victim logs in"
q "SELECT utilix._login_reset($TB, 'b' || lpad(i::text, 4, '0')) FROM generate_series(1, 1100) i" >/dev/null
is "$(table_state)" "false|false|1024" "the attacker's entries cleared (as their unlock would)"

# ---------------------------------------------------------------- 2. a pending attempt blocks nobody
hold() {    # hold SQL SECONDS: run SQL as the application role in a transaction left open
    qas <<SQL >/dev/null &
BEGIN;
$1
SELECT pg_sleep($2);
ROLLBACK;
SQL
    bg_pids+=($!)
}
hold "SELECT utilix.login('la victim', 'victim', 'Pending-$(rnd)');" 8
sleep 1
t0=$(date +%s%N)
tok=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SET statement_timeout = '4s'" \
        -c "SELECT utilix.login('la victim', 'victim', '$VICTIM_PW')" 2>&1)
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
like "$tok" "^utx1[.]" "with a failed attempt left open in another session, the victim logs in (${ms} ms)"
out=$(psql -X -q -A -t -d "$DB" -c "SET statement_timeout = '4s'" -c "SELECT utilix.set_context('$ADMIN_A')" \
        -c "SELECT utilix.set_clearance('victim', 'public')" -c "SELECT 'done'" 2>&1 | tail -1)
is "$out" "done" "... and its admin changes the user without waiting"
out=$(q "SET lock_timeout = '1s'; SELECT login FROM utilix.app_user WHERE tenant_id = $TA AND login = 'victim' FOR UPDATE NOWAIT")
is "$out" "victim" "the open failed attempt holds no lock on the user's row"
wait "${bg_pids[@]}" 2>/dev/null
bg_pids=()
hold "SELECT utilix.login('la victim', 'victim', '$VICTIM_PW');" 8
sleep 1
tok=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SET statement_timeout = '4s'" \
        -c "SELECT utilix.login('la victim', 'victim', '$VICTIM_PW')" 2>&1)
like "$tok" "^utx1[.]" "with a successful login left open in another session, a second login does not wait for it"
wait "${bg_pids[@]}" 2>/dev/null
bg_pids=()

# ---------------------------------------------------------------- 3. what a refused attempt shows
q "ALTER ROLE $APP SET track_functions = 'all'" >/dev/null
# five failures lock 'bystander' (right password later: still locked)
for i in 1 2 3 4 5; do login 'la victim' bystander "Wrong-$i-$(rnd)" >/dev/null; done
is "$(state "$TA" bystander)" "5|true" "bystander is locked for the observation below"
observe() {  # observe TENANT LOGIN PASSWORD: answer, warning, locks and statistics of one attempt
    qas <<SQL
BEGIN;
SELECT coalesce(utilix.login('$1', '$2', '$3'), 'NULL');
SELECT utilix.clear_context();
SELECT string_agg(locktype || ' ' || coalesce(relation::regclass::text, '-') || ' ' || mode || ' ' || granted, ', '
                  ORDER BY locktype, coalesce(relation::regclass::text, '-'), mode)
  FROM pg_locks WHERE pid = pg_backend_pid();
SELECT coalesce(string_agg(relname || ' ' || seq_scan || ' ' || coalesce(idx_scan, 0) || ' ' || seq_tup_read || ' '
                           || coalesce(idx_tup_fetch, 0) || ' ' || n_tup_ins || ' ' || n_tup_upd, ', ' ORDER BY relname), 'none')
  FROM pg_stat_xact_all_tables WHERE schemaname = 'utilix';
SELECT coalesce(string_agg(funcname || ' ' || calls, ', ' ORDER BY funcname), 'none') FROM pg_stat_xact_user_functions;
ROLLBACK;
SQL
}
declare -A seen
seen[unknown_tenant]=$(observe 'la nobody' victim "$VICTIM_PW")
seen[unknown_user]=$(observe 'la victim' nobody "$VICTIM_PW")
seen[wrong_password]=$(observe 'la victim' victim "Wrong-$(rnd)")
seen[disabled]=$(observe 'la victim' sleeper "$BYSTANDER_PW")
seen[locked]=$(observe 'la victim' bystander "$BYSTANDER_PW")
seen[admin_outside_right]=$(observe 'la victim' boss "$BOSS_PW")
seen[admin_outside_wrong]=$(observe 'la victim' boss "Wrong-$(rnd)")
like "${seen[unknown_user]}" "WARNING:  login failed" "an unknown user: NULL with the warning"
like "${seen[unknown_user]}" "relation utilix.app_user AccessShareLock" "the observation sees the locks of the attempt"
like "${seen[unknown_user]}" "clear_context 1" "... and the function statistics of its transaction (track_functions = all)"
for k in unknown_tenant wrong_password disabled locked admin_outside_right admin_outside_wrong; do
    if [ "${seen[$k]}" = "${seen[unknown_user]}" ]; then
        ok "$k: the same answer, warning, locks and statistics as an unknown user"
    else
        not_ok "$k: the same answer, warning, locks and statistics as an unknown user" \
               "$(diff <(echo "${seen[unknown_user]}") <(echo "${seen[$k]}"))"
    fi
done
unlike "${seen[unknown_user]}" "app_user [0-9]+ [0-9]+ [0-9]+ [1-9]" "no tuple counts of utilix.app_user are visible"
like "${seen[unknown_user]}" "auth_event [0-9]+ [0-9]+ [0-9]+ [0-9]+ 1 0" \
     "the record of the attempt is counted (autovacuum and ANALYZE see utilix.auth_event grow)"
# one committed refusal of each kind, then the sizes of all records of refused logins
for l in "la nobody|victim" "la victim|nobody" "la victim|victim" "la victim|sleeper" "la victim|bystander" "la victim|boss"; do
    login "${l%%|*}" "${l##*|}" "Wrong-$(rnd)" >/dev/null
done
out=$(q "SELECT count(DISTINCT (tenant_id IS NULL)::text || detail) || ' kinds, '
                || count(DISTINCT pg_column_size(e.*) - octet_length(login)) || ' size'
           FROM utilix.auth_event e WHERE event = 'login' AND outcome = 'denied' AND client_addr IS NULL")
is "$out" "6 kinds, 1 size" \
   "the records of six kinds of refusal (unknown tenant or user, wrong password, disabled, locked, admin outside) have one size for logins of one length: the WAL does not tell them apart"
# the admin outside its networks: never counted, so never locked by outsiders
for i in 1 2 3 4 5 6 7; do login 'la victim' boss "Wrong-$i-$(rnd)" >/dev/null; done
is "$(state "$TA" boss)" "0|false" "seven wrong passwords for an admin from outside its networks: nothing counted"
q "GRANT utilix_gateway TO $APP" >/dev/null
like "$(qa "SELECT utilix.login('la victim', 'boss', '$BOSS_PW', '10.1.2.3')")" "^utx1[.]" \
   "from its network (through a gateway) the admin then logs in"
q "ALTER ROLE $APP RESET track_functions; REVOKE utilix_gateway FROM $APP" >/dev/null

done_testing
