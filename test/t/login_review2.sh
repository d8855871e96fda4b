#!/usr/bin/env bash
# Attack review 2 of the login path (issue 17): each assertion is a property
# that review 2 found broken, and that its fixes restore.
#
#  1. A login in a READ ONLY transaction errors at its first write, which is
#     the record for a refusal and the UPDATE of last_login for a right
#     password: the error tells the password is right, a right password
#     clears the count, and neither leaves a record anywhere.
#  2. The lockout table's key is (tenant, login) without the database: the
#     same tenant id and login in two databases of a cluster share one count,
#     so a successful login in one clears the guesses made in the other, and
#     failures in one lock the user of the other.
#  3. change_password(right, right) errored ("must differ") after the old
#     password was verified: confirmed, counted, and no record.  Now the
#     comparison comes first and answers (right, right) as (wrong, wrong).
#  4. A fresh session's pg_stat_xact_sys_tables (catalog lookups while
#     login()'s branch conditions are planned) tell an unknown login from a
#     user that exists.
#  5. debug_print_plan (USERSET) with client_min_messages = log sends login()'s
#     plans to the caller: how many tell the reason, and the custom plan of
#     the user lookup prints the tenant's id.
#  6. The login text is recorded unbounded, also on the shortcut for a long
#     password that runs no scrypt: a client writes megabytes per call.
#  7. enable_user in a transaction that is PREPAREd and COMMITted PREPARED
#     records the unlock but does not unlock.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

rv_dir=$(mktemp -d /tmp/utilix-review2.XXXXXX)
cleanup() { UTILIX_DIR=$rv_dir; cluster_destroy; }
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$rv_dir" || bail "initdb failed"
cluster_conf "utilix.login_failure_capacity = 1024"
cluster_conf "utilix.scrypt_log2n = 10"
cluster_conf "max_prepared_transactions = 2"
DB=rv
DB2=rv_other
APP=rv_app
export PGOPTIONS="-c client_min_messages=error"
cluster_start || bail "the server does not start"

q()   { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1; }
q2()  { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB2" -c "$1" 2>&1; }
pw() { echo "Pw-$(tr aeiou 12345 <<<"$1")-xyz-123"; }
failures() { q "SELECT failures FROM utilix._login_state($TA, '$1')"; }
records()  { q "SELECT count(*) FROM utilix.auth_event WHERE login = '$1'"; }
logrecs()  { q "SELECT utilix.access_log_flush(); SELECT count(*) FROM utilix.access_log WHERE kind = 'login'" | tail -1; }

out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" -c "CREATE DATABASE $DB2" 2>&1) || bail "create database: $out"
out=$(q "CREATE EXTENSION utilix; CREATE ROLE $APP LOGIN; SELECT utilix.create_tenant('rv a');") || bail "set-up: $out"
out=$(q2 "CREATE EXTENSION utilix; SELECT utilix.create_tenant('other db');") || bail "set-up 2: $out"
TA=$(q "SELECT id FROM utilix.tenant WHERE name = 'rv a'")
T2=$(q2 "SELECT id FROM utilix.tenant WHERE name = 'other db'")
diag "tenant ids: $TA in $DB, $T2 in $DB2"
ADMIN=$(q "SELECT utilix.issue_context($TA, 'a-admin', '1 hour', '{admin}')")
ADMIN2=$(q2 "SELECT utilix.issue_context($T2, 'o-admin', '1 hour', '{admin}')")
out=$(psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c "BEGIN" -c "SELECT utilix.set_context('$ADMIN')" \
      -c "SELECT utilix.create_user(l, 'Pw-' || translate(l, 'aeiou', '12345') || '-xyz-123', '{read}') FROM unnest(array['victim','shared','worker','locked1']) l" \
      -c "COMMIT" -c "UPDATE utilix.app_user SET must_change = false" 2>&1) || bail "users: $out"
out=$(psql -X -q -v ON_ERROR_STOP=1 -d "$DB2" -c "BEGIN" -c "SELECT utilix.set_context('$ADMIN2')" \
      -c "SELECT utilix.create_user('shared', 'Known pass 00001', '{read}')" \
      -c "SELECT utilix.create_user('worker', 'Known pass 00002', '{read}')" \
      -c "COMMIT" -c "UPDATE utilix.app_user SET must_change = false" 2>&1) || bail "users 2: $out"

app_ro() {   # app_ro LOGIN PASSWORD: a login in a READ ONLY transaction, the error's first line
    psql -X -q -A -t -U "$APP" -d "$DB" -c "BEGIN READ ONLY" \
         -c "SELECT utilix.login('rv a', '$1', '$2')" 2>&1 | grep -m1 -E 'ERROR|WARNING'
}

# ---------------------------------------------------------------- 1. READ ONLY
for i in 1 2; do psql -X -q -U "$APP" -d "$DB" -c "SELECT utilix.login('rv a', 'victim', 'Wrong pass 0000$i')" >/dev/null 2>&1; done
before_rec=$(records victim); before_log=$(logrecs)
wrong=$(app_ro victim 'Wrong pass 00001')
right=$(app_ro victim "$(pw victim)")
diag "wrong password, read only: $wrong"
diag "right password, read only: $right"
is "$right" "$wrong" "in a read-only transaction a right password answers like a wrong one"
is "$(records victim):$(logrecs)" "$before_rec:$((before_log + 2))" \
   "both read-only attempts leave an access log record"
is "$(q "SELECT failures >= 2 FROM utilix._login_state($TA, 'victim')")" "t" \
   "a right password in a read-only transaction does not clear the two earlier guesses"

# ---------------------------------------------------------------- 2. another database
for i in 1 2 3 4; do psql -X -q -U "$APP" -d "$DB" -c "SELECT utilix.login('rv a', 'shared', 'Guess pass 0000$i')" >/dev/null 2>&1; done
is "$(failures shared)" "4" "four guesses at 'shared' counted in $DB"
out=$(psql -X -q -A -t -U "$APP" -d "$DB2" -c "SELECT utilix.login('other db', 'shared', 'Known pass 00001') IS NOT NULL" 2>&1 | tail -1)
is "$out" "t" "the attacker's own 'shared' logs in in $DB2"
is "$(failures shared)" "4" "a login in another database does not clear the guesses at $DB's user"
for i in 1 2 3 4 5; do psql -X -q -U "$APP" -d "$DB2" -c "SELECT utilix.login('other db', 'worker', 'Guess pass 0000$i')" >/dev/null 2>&1; done
out=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.login('rv a', 'worker', '$(pw worker)') IS NOT NULL" 2>&1 | tail -1)
is "$out" "t" "failures of $DB2's user 'worker' do not lock $DB's user of that name"

# ---------------------------------------------------------------- 3. change_password(right, right)
TOK=$(psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.login('rv a', 'locked1', '$(pw locked1)')" 2>/dev/null)
cp_same() {  # cp_same PASSWORD: change_password(PASSWORD, PASSWORD), the error's first line
    psql -X -q -A -t -U "$APP" -d "$DB" -c "BEGIN" -c "SELECT utilix.set_context('$TOK')" \
         -c "SELECT utilix.change_password('$1', '$1')" -c "COMMIT" 2>&1 | grep -m1 -E 'ERROR|WARNING'
}
before=$(failures locked1)
right=$(cp_same "$(pw locked1)")
wrong=$(cp_same 'Wrong pass 00009')
diag "change_password(right, right): $right"
is "$right" "$wrong" "change_password(right, right) answers like change_password(wrong, wrong)"
is "$(failures locked1)" "$before" "... before the current password is checked or counted"

# ---------------------------------------------------------------- 4. catalog statistics of a fresh session
sys_stats() {
    psql -X -q -A -t -U "$APP" -d "$DB" -c "BEGIN" -c "SELECT utilix.login('rv a', '$1', 'Wrong pass 00003')" \
         -c "SELECT sum(coalesce(idx_scan, 0)) || '/' || sum(coalesce(idx_tup_fetch, 0)) FROM pg_stat_xact_sys_tables" \
         -c "COMMIT" 2>/dev/null | tail -1
}
unknown=$(sys_stats nobody1); known=$(sys_stats victim)
diag "pg_stat_xact_sys_tables after an unknown login: $unknown, after a user: $known"
is "$known" "$unknown" "a fresh session's catalog statistics do not tell an existing user from an unknown one"

# ---------------------------------------------------------------- 5. debug_print_plan
plans() {
    PGOPTIONS="-c debug_print_plan=on -c client_min_messages=log" \
        psql -X -q -A -t -U "$APP" -d "$DB" -c "SELECT utilix.login('$1', '$2', 'Wrong pass 00004')" 2>&1
}
p_unknown=$(plans 'rv a' nobody1 | grep -c 'LOG:  plan:')
p_user=$(plans 'rv a' victim | grep -c 'LOG:  plan:')
diag "plans sent to the client: unknown login $p_unknown, existing user $p_user"
is "$p_user" "$p_unknown" "debug_print_plan does not tell an existing user from an unknown one"
t_known=$(plans 'rv a' nobody1 | grep -A9 'consttype 20 ' | grep -c 'constisnull false')
t_unknown=$(plans 'no such tenant' nobody1 | grep -A9 'consttype 20 ' | grep -c 'constisnull false')
is "$t_known" "$t_unknown" "debug_print_plan does not print the id of a tenant that exists"

# ---------------------------------------------------------------- 6. unbounded login text
before=$(q "SELECT pg_total_relation_size('utilix.auth_event')")
psql -X -q -U "$APP" -d "$DB" -c "SELECT utilix.login('rv a', (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 100000) i), repeat('x', 1025))" >/dev/null 2>&1
after=$(q "SELECT pg_total_relation_size('utilix.auth_event')")
diag "auth_event grew by $((after - before)) bytes for one refused call"
is "$(q "SELECT max(octet_length(login)) <= 64 FROM utilix.auth_event")" "t" "a recorded login is at most 64 bytes"

# ---------------------------------------------------------------- 7. enable_user under two-phase commit
for i in 1 2 3 4 5; do psql -X -q -U "$APP" -d "$DB" -c "SELECT utilix.login('rv a', 'locked1', 'Guess pass 0000$i')" >/dev/null 2>&1; done
is "$(failures locked1)" "5" "locked1 is locked"
out=$(psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "BEGIN" -c "SELECT utilix.set_context('$ADMIN')" \
      -c "SELECT utilix.enable_user('locked1')" -c "PREPARE TRANSACTION 'rv2'" 2>&1); prep=$?
if [ $prep -eq 0 ]; then
    q "COMMIT PREPARED 'rv2'" >/dev/null
    is "$(failures locked1)" "0" "an enable_user committed with two-phase commit unlocks the user"
else
    ok "an enable_user cannot be prepared: $(grep -m1 ERROR <<<"$out")"
fi

done_testing
