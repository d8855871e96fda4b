#!/usr/bin/env bash
# Attack review 1 of the reworked login path (issue 17): each assertion is a
# property the review found broken, and that its fixes restore.
#
#  1. A refused login shows its reason to EXPLAIN (ANALYZE, WAL, BUFFERS):
#     the WAL bytes of the auth_event record carry the length of the reason
#     ("unknown user", "wrong password", "address not allowed", ...) and the
#     buffer hits carry the heap fetch of an existing user's row.
#  2. A tenant admin's unlock (enable_user, reset_password) is not
#     transactional: rolled back, it leaves no auth_event and still clears
#     the count, so the admin guesses its users' passwords without limit.
#  3. change_password with the right current password and an invalid new one
#     clears the failure count, changes nothing and records nothing.
#  4. One tenant's admin fills the lockout table with users of its own, and
#     every other tenant's users are refused even with the right password.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
. "$top/test/lib.sh"
. "$here/tap.sh"

rv_dir=$(mktemp -d /tmp/utilix-review1.XXXXXX)
cleanup() { UTILIX_DIR=$rv_dir; cluster_destroy; }
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_init "$rv_dir" || bail "initdb failed"
cluster_conf "utilix.login_failure_capacity = 1024"
cluster_conf "utilix.scrypt_log2n = 10"
DB=rv
APP=rv_app
export PGOPTIONS="-c client_min_messages=error"
cluster_start || bail "the server does not start"

q()  { psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>&1; }
qa() { psql -X -q -A -t -v ON_ERROR_STOP=1 -U "$APP" -d "$DB" -c "$1" 2>&1; }
failures() { q "SELECT failures FROM utilix._login_state($TA, '$1')"; }

out=$(psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $DB" 2>&1) || bail "create database: $out"
out=$(q "CREATE EXTENSION utilix; CREATE ROLE $APP LOGIN;
         SELECT utilix.create_tenant('rv a'); SELECT utilix.create_tenant('rv b');") || bail "set-up: $out"
TA=$(q "SELECT id FROM utilix.tenant WHERE name = 'rv a'")
TB=$(q "SELECT id FROM utilix.tenant WHERE name = 'rv b'")
ADMIN_A=$(q "SELECT utilix.issue_context($TA, 'a-admin', '1 hour', '{admin}')")
ADMIN_B=$(q "SELECT utilix.issue_context($TB, 'b-admin', '1 hour', '{admin}')")
out=$(q "SELECT utilix.set_context('$ADMIN_A');
         SELECT utilix.create_user('victim', 'Vx pass 000001', '{read}');
         SELECT utilix.create_user('chiefs', 'Cx pass 000001', '{admin,read}');
         SELECT utilix.create_user('worker', 'Wx pass 000001', '{read}');
         SELECT utilix.create_user('fresh', 'Fx pass 000001', '{read}');
         SELECT utilix.allow_admin_network('10.0.0.0/8');
         UPDATE utilix.app_user SET must_change = false WHERE tenant_id = $TA") || bail "users: $out"

# ---------------------------------------------------------------- 1. EXPLAIN shows the reason
probe_out=$(psql -X -q -A -t -U "$APP" -d "$DB" 2>&1 <<'SQL'
CREATE FUNCTION pg_temp.probe(l text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE r text; o text := '';
BEGIN
    FOR r IN EXECUTE format('EXPLAIN (ANALYZE, BUFFERS, WAL, COSTS OFF, TIMING OFF, SUMMARY OFF) '
                            'SELECT utilix.login(%L, %L, %L)', 'rv a', l, 'Wrong pass 0001') LOOP
        IF r ~ 'Result|Buffers|WAL' THEN o := o || trim(r) || ' '; END IF;
    END LOOP;
    RETURN o;
EXCEPTION WHEN OTHERS THEN
    RETURN 'refused ' || SQLSTATE;
END $$;
-- every path once, so that the session's caches are warm for all of them
SELECT pg_temp.probe(x) FROM (VALUES ('warm01'), ('worker'), ('chiefs')) v(x) \g /dev/null
SELECT 'unknown=' || pg_temp.probe('nobody');
SELECT 'wrong=' || pg_temp.probe('victim');
SELECT 'admin=' || pg_temp.probe('chiefs');
SQL
)
unknown=$(sed -n 's/^unknown=//p' <<<"$probe_out")
wrong=$(sed -n 's/^wrong=//p' <<<"$probe_out")
admin=$(sed -n 's/^admin=//p' <<<"$probe_out")
diag "unknown user: $unknown"
diag "wrong password: $wrong"
diag "admin outside its networks: $admin"
is "$wrong" "$unknown" "EXPLAIN ANALYZE of a wrong password looks like an unknown login of the same length"
is "$admin" "$unknown" "EXPLAIN ANALYZE of an admin outside its networks looks like an unknown login"

# ---------------------------------------------------------------- 2. a rolled-back unlock
q "SELECT utilix._login_reset($TA, 'victim')" >/dev/null
for i in 1 2 3 4; do qa "SELECT utilix.login('rv a', 'victim', 'Guess $i 000000')" >/dev/null; done
is "$(failures victim)" "4" "four guesses counted"
qa "BEGIN; SELECT utilix.set_context('$ADMIN_A'); SELECT utilix.enable_user('victim'); ROLLBACK;" >/dev/null
is "$(failures victim)" "4" "an enable_user that is rolled back leaves the count as it was"
q "SELECT utilix._login_reset($TA, 'victim')" >/dev/null
for i in 5 6 7 8; do qa "SELECT utilix.login('rv a', 'victim', 'Guess $i 000000')" >/dev/null; done
qa "BEGIN; SELECT utilix.set_context('$ADMIN_A'); SELECT utilix.reset_password('victim', 'Temporary 000001'); ROLLBACK;" >/dev/null
is "$(failures victim)" "4" "a reset_password that is rolled back leaves the count as it was"

# ---------------------------------------------------------------- 3. change_password that changes nothing
q "SELECT utilix._login_reset($TA, 'worker')" >/dev/null
tok=$(qa "SELECT utilix.login('rv a', 'worker', 'Wx pass 000001')")
for i in 1 2 3; do qa "SELECT utilix.login('rv a', 'worker', 'Guess $i 000000')" >/dev/null; done
qa "BEGIN; SELECT utilix.set_context('$tok'); SELECT utilix.change_password('Wx pass 000001', 'short'); COMMIT;" >/dev/null
is "$(failures worker)" "3" "change_password refused for its new password leaves the failure count as it was"

# ---------------------------------------------------------------- 4. another tenant fills the table
out=$(q "SELECT utilix.set_context('$ADMIN_B');
         SELECT count(*) FROM (SELECT utilix.create_user('f' || i, 'Filler pass 0001', '{read}')
                                 FROM generate_series(1, 1030) i) x" | tail -1)
is "$out" "1030" "tenant b's admin created 1030 users"
qa "SELECT count(*) FROM generate_series(1, 1030) i WHERE utilix.login('rv b', 'f' || i, 'Wrong pass 0001') IS NULL" >/dev/null
diag "lockout table: $(q "SELECT 'a share full: ' || share_full || ', the table full: ' || table_full FROM utilix.login_failure_table()")"
like "$(qa "SELECT utilix.login('rv a', 'fresh', 'Fx pass 000001')")" "^utx1[.]" \
     "with the table filled by tenant b's failures, a user of tenant a still logs in with its right password"

done_testing
