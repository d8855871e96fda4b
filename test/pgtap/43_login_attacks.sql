-- 43_login_attacks: the login path against a tenant's own admins and
-- against guessing (issue 17).  What needs sessions that interleave, a full
-- lockout table or pg_locks of a fresh transaction is in
-- test/t/login_attacks.sh; here, in one transaction:
--  - a clearance ceiling per tenant, set by an operator: its admins cannot
--    give a clearance above it (themselves included), tokens from login()
--    and change_password() carry at most the ceiling, a ceiling no longer
--    among the labels holds the lowest label;
--  - the lockout kept in shared memory: counted before the password is
--    checked, so an attempt rolled back is still counted; utilix.users shows it to the
--    tenant's admin only; change_password after a lockout ran out starts
--    a fresh count.
BEGIN;
SELECT plan(32);
SET LOCAL client_min_messages = error;
SET LOCAL utilix.scrypt_log2n = 10;

CREATE ROLE l43_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE l43_gw NOLOGIN IN ROLE utilix_gateway;
CREATE ROLE l43_app NOLOGIN;
SELECT utilix.create_tenant('l43 alpha') AS ta, utilix.create_tenant('l43 beta') AS tb \gset
INSERT INTO utilix.admin_network (tenant_id, network, added_by) VALUES (:ta, '192.0.2.0/24', 'test');
SELECT utilix.issue_context(:ta, 'boss', '1 hour', '{admin,read}') AS tok_boss,
       utilix.issue_context(:tb, 'beta-boss', '1 hour', '{admin,read}') AS tok_bboss \gset

CREATE FUNCTION pg_temp.clearance_of(tok text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE c text;
BEGIN
    PERFORM utilix.set_context(tok);
    SELECT x.clearance INTO c FROM utilix.context_info() x;
    PERFORM utilix.clear_context();
    RETURN c;
END
$$;
CREATE FUNCTION pg_temp.login(l text, pw text) RETURNS text LANGUAGE sql AS
    $$ SELECT utilix.login('l43 alpha', l, pw, '192.0.2.9') $$;

-- ------------------------------------------------------------------ users, before any ceiling
SELECT utilix.set_context(:'tok_boss') \g /dev/null
SELECT utilix.create_user('chief', 'Head person 0001', '{admin,read}', 'secret') \g /dev/null
SELECT utilix.create_user('clerk', 'Desk worker 0001', '{read}', 'confidential') \g /dev/null
SELECT utilix.clear_context() \g /dev/null
UPDATE utilix.app_user SET must_change = false WHERE tenant_id = :ta;
SELECT is(pg_temp.clearance_of(pg_temp.login('chief', 'Head person 0001')), 'secret',
          'without a ceiling a token carries the user''s clearance (secret)');

-- ------------------------------------------------------------------ the ceiling
SET LOCAL ROLE l43_app;
SELECT utilix.set_context(:'tok_boss') \g /dev/null
SELECT throws_ok(format($$SELECT utilix.set_max_clearance(%s, 'secret')$$, :ta), '42501', NULL,
                 'a tenant admin cannot set its tenant''s ceiling (42501)');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL ROLE l43_op;
SELECT lives_ok(format($$SELECT utilix.set_max_clearance(%s, 'internal')$$, :ta),
                'an operator sets the ceiling of tenant alpha to internal');
SELECT is((SELECT max_clearance FROM utilix.tenants WHERE id = :ta), 'internal', 'utilix.tenants shows the ceiling');
SELECT throws_ok(format($$SELECT utilix.set_max_clearance(%s, 'topmost')$$, :ta), '22023', NULL,
                 'a ceiling that is not a label is refused (22023)');
RESET ROLE;
SELECT is((SELECT concat_ws(' / ', event, outcome, detail) FROM utilix.auth_event WHERE tenant_id = :ta ORDER BY id DESC LIMIT 1),
          'set max clearance / ok / none -> internal (operator postgres)', 'setting the ceiling is recorded for the tenant');

SELECT pg_temp.login('chief', 'Head person 0001') AS tok_chief \gset
SET LOCAL ROLE l43_app;
SELECT utilix.set_context(:'tok_boss') \g /dev/null
SELECT throws_ok($$SELECT utilix.set_clearance('chief', 'secret')$$, '42501', NULL,
                 'the admin cannot give a clearance above the ceiling (42501)');
SELECT utilix.set_context(:'tok_chief') \g /dev/null
SELECT throws_ok($$SELECT utilix.set_clearance('chief', 'confidential')$$, '42501', NULL,
                 '... not to itself either');
SELECT utilix.set_context(:'tok_boss') \g /dev/null
SELECT throws_ok($$SELECT utilix.create_user('spy', 'Hidden pw 00001', '{read}', 'confidential')$$, '42501', NULL,
                 '... nor to a new user');
SELECT lives_ok($$SELECT utilix.create_user('aide', 'Helper pw 00001', '{read}', 'internal')$$,
                'a clearance at the ceiling is given');
SELECT lives_ok($$SELECT utilix.set_clearance('aide', 'public')$$, 'a clearance below it too');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is((SELECT count(*) FROM utilix.app_user WHERE tenant_id = :ta AND login = 'spy'), 0::bigint,
          'the refused user was not created');
SELECT is((SELECT clearance FROM utilix.app_user WHERE tenant_id = :ta AND login = 'chief'), 'secret',
          'a clearance given before the ceiling stays in the table ...');
SELECT is(pg_temp.clearance_of(pg_temp.login('chief', 'Head person 0001')), 'internal',
          '... but the next token carries the ceiling (internal)');
SELECT is(pg_temp.clearance_of(pg_temp.login('clerk', 'Desk worker 0001')), 'internal',
          'confidential is held to internal as well');
SELECT is(pg_temp.clearance_of(pg_temp.login('aide', 'Helper pw 00001')), 'public', 'a clearance below the ceiling is kept');
-- change_password hands out a token too
UPDATE utilix.app_user SET must_change = true WHERE tenant_id = :ta AND login = 'clerk';
SELECT utilix.set_context(pg_temp.login('clerk', 'Desk worker 0001')) \g /dev/null
SELECT is(pg_temp.clearance_of(utilix.change_password('Desk worker 0001', 'Desk worker 0002')), 'internal',
          'the token of change_password() carries the ceiling too');
SELECT utilix.clear_context() \g /dev/null
-- the ceiling's label leaves utilix.labels: the lowest label holds
SET LOCAL utilix.labels = 'public,confidential,secret';
SELECT is(pg_temp.clearance_of(pg_temp.login('chief', 'Head person 0001')), 'public',
          'a ceiling no longer among the labels holds the lowest label (fails closed)');
RESET utilix.labels;
SET LOCAL ROLE l43_op;
SELECT lives_ok(format($$SELECT utilix.set_max_clearance(%s, NULL)$$, :ta), 'the operator removes the ceiling (NULL)');
RESET ROLE;
SELECT is(pg_temp.clearance_of(pg_temp.login('chief', 'Head person 0001')), 'secret',
          'without the ceiling the next token carries secret again');
SELECT is((SELECT max_clearance FROM utilix.tenant WHERE id = :tb), NULL, 'the other tenant never had a ceiling');

-- ------------------------------------------------------------------ the lockout in shared memory
SAVEPOINT guesses;
SELECT pg_temp.login('aide', 'Wrong guess ' || i) FROM generate_series(1, 3) i \g /dev/null
ROLLBACK TO SAVEPOINT guesses;
SELECT is((SELECT failures FROM utilix._login_state(:ta, 'aide')), 3, 'three guesses rolled back are still counted');
SELECT is(pg_temp.login('aide', 'Helper pw 00001') IS NOT NULL, true, 'the right password still logs in below the limit');
SELECT is((SELECT failures FROM utilix._login_state(:ta, 'aide')), 0, 'and clears the count');
SELECT pg_temp.login('aide', 'Wrong guess ' || i) FROM generate_series(1, 2) i \g /dev/null
-- utilix.users: the admin of the tenant sees the count, nobody else does
SELECT utilix.set_context(:'tok_boss') \g /dev/null
SET LOCAL ROLE l43_app;
SELECT is((SELECT failed_attempts FROM utilix.users WHERE login = 'aide'), 2, 'the tenant''s admin sees two failures in utilix.users');
SELECT is((SELECT (utilix._login_state(:tb, 'beta-boss')).failures), NULL::int,
          'an admin of alpha asking for a user of beta gets NULL');
SELECT utilix.set_context(:'tok_bboss') \g /dev/null
SELECT is((SELECT (utilix._login_state(:ta, 'aide')).failures), NULL::int,
          'an admin of beta asking for a user of alpha gets NULL');
SELECT is((SELECT count(*) FROM utilix.users WHERE login = 'aide'), 0::bigint, 'utilix.users of beta shows no user of alpha');
SELECT utilix.clear_context() \g /dev/null
SELECT is((SELECT (utilix._login_state(:ta, 'aide')).failures), NULL::int, 'without a context: NULL');
RESET ROLE;
-- change_password after the lockout ran out: a fresh count (lockout 1 minute
-- is the shortest setting, so the run-out is made with the counting function)
SELECT utilix._login_reset(:ta, 'aide') \g /dev/null
SELECT utilix._login_attempt(:ta, 'aide', 1, '1 second', true) \g /dev/null
SELECT is((SELECT locked_until IS NOT NULL FROM utilix._login_state(:ta, 'aide')), true, 'aide is locked (for one second)');
SELECT pg_sleep(1.2) \g /dev/null
SELECT utilix.set_context(pg_temp.login('aide', 'Helper pw 00001')) \g /dev/null
SELECT is(utilix.change_password('Helper wrong pw 9', 'Helper pw 00002'), NULL::text,
          'after the lockout ran out, a wrong current password in change_password: NULL');
SELECT is((SELECT row(failures, locked_until IS NOT NULL)::text FROM utilix._login_state(:ta, 'aide')), '(1,f)',
          '... counted as the first failure of a fresh count, not locked again at once');
SELECT utilix.clear_context() \g /dev/null

SELECT * FROM finish();
ROLLBACK;
