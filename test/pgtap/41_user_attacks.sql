-- 41_user_attacks: tenant administration under attack.  An admin of tenant A
-- cannot touch tenant B's users; users without the admin right, without a
-- context or with a password-change-only token cannot administer; malformed
-- networks, unknown rights and clearance levels are refused; look-alike
-- functions and operators in public and pg_temp, put first on the
-- search_path, fool neither utilix.login() nor the admin functions nor the
-- policies; a tenant role can read no password hash, call no internal
-- function, pass no client address, create no tenant admin; bind_role
-- refuses roles that row level security would not hold.
--
-- Failed logins return NULL with a WARNING (hidden by client_min_messages).
-- Tests that run under the attacker's search_path only collect results into
-- psql variables (pg_temp.state() gives a statement's SQLSTATE, or 'ok');
-- the assertions run after the search_path is reset, so that the look-alike
-- operators cannot disturb pgTAP itself.
BEGIN;
SELECT plan(124);
SET LOCAL client_min_messages = error;
SET LOCAL utilix.scrypt_log2n = 10;

-- ------------------------------------------------------------------ set-up
CREATE ROLE a41_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE a41_gw NOLOGIN IN ROLE utilix_gateway;
CREATE ROLE a41_app LOGIN;             -- the application's login role: no superuser, no BYPASSRLS
CREATE ROLE a41_evil NOLOGIN;          -- a tenant role that may create objects in public
CREATE ROLE a41_owner NOLOGIN;         -- owns a protected table
CREATE ROLE a41_super NOLOGIN SUPERUSER;
CREATE ROLE a41_bypass NOLOGIN BYPASSRLS;
GRANT CREATE ON SCHEMA public TO a41_evil;

SELECT utilix.create_tenant('a41 alpha') AS ta, utilix.create_tenant('a41 beta') AS tb \gset
SELECT 'SELECT ' || :tb || '::bigint' AS sel_tb \gset

CREATE TABLE a41_docs (tenant_id bigint NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE a41_docs OWNER TO a41_owner;
SELECT utilix.protect('a41_docs') \g /dev/null
RESET utilix.internal_ddl;
INSERT INTO a41_docs VALUES (:ta, 1, 'a1'), (:ta, 2, 'a2'), (:tb, 1, 'b1');
GRANT SELECT, INSERT, UPDATE, DELETE ON a41_docs TO a41_app, a41_evil;

-- a statement's SQLSTATE, or 'ok' (uses no operator: safe under a hostile search_path)
CREATE FUNCTION pg_temp.state(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- the SQLSTATEs of several statements
CREATE FUNCTION pg_temp.states(qs text[]) RETURNS text[] LANGUAGE sql AS $$
    SELECT array_agg(pg_temp.state(q) ORDER BY n) FROM unnest(qs) WITH ORDINALITY u(q, n)
$$;
-- a user's row, all of it (hash, status, rights, times), as one text
CREATE FUNCTION pg_temp.user_row(t bigint, l text) RETURNS text LANGUAGE sql AS $$
    SELECT a::text FROM utilix.app_user a WHERE tenant_id = t AND login = l
$$;
-- first login with the initial password, then the password change: the full token
CREATE FUNCTION pg_temp.first_login(tn text, l text, initial text, new_pw text, addr inet) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    tok text := utilix.login(tn, l, initial, addr);
BEGIN
    IF tok IS NULL THEN
        RAISE EXCEPTION 'first login of % failed', l;
    END IF;
    PERFORM utilix.set_context(tok);
    tok := utilix.change_password(initial, new_pw);
    PERFORM utilix.clear_context();
    RETURN tok;
END
$$;

-- two tenants, each with an admin (admin networks inserted by a superuser:
-- there is no operator function for a tenant's first network)
SET LOCAL ROLE a41_op;
SELECT utilix.create_tenant_admin(:ta, 'rootA', 'Aa first pw 0001') \g /dev/null
SELECT utilix.create_tenant_admin(:tb, 'rootB', 'Bb first pw 0001') \g /dev/null
RESET ROLE;
INSERT INTO utilix.admin_network (tenant_id, network, added_by)
    VALUES (:ta, '10.41.0.0/16', 'operator'), (:tb, '10.42.0.0/16', 'operator');
SELECT pg_temp.first_login('a41 alpha', 'rootA', 'Aa first pw 0001', 'Aa second pw 0002', '10.41.1.1') AS tok_a,
       pg_temp.first_login('a41 beta', 'rootB', 'Bb first pw 0001', 'Bb second pw 0002', '10.42.1.1') AS tok_b \gset
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT utilix.create_user('bob_b', 'Bo first pw 0001', '{read,write}') \g /dev/null
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT utilix.create_user('reader', 'Rd first pw 0001') \g /dev/null
SELECT utilix.create_user('auditor', 'Au first pw 0001', '{audit}') \g /dev/null
SELECT utilix.create_user('admin2', 'Ad first pw 0001', '{admin,read}') \g /dev/null
SELECT utilix.create_user('lockme', 'Lm first pw 0001') \g /dev/null
SELECT utilix.create_user('leaver', 'Lv first pw 0001') \g /dev/null
SELECT utilix.create_user('guessme', 'Gm first pw 0001') \g /dev/null
SELECT pg_temp.first_login('a41 beta', 'bob_b', 'Bo first pw 0001', 'Bo second pw 0002', '192.0.2.1') AS tok_bob,
       pg_temp.first_login('a41 alpha', 'reader', 'Rd first pw 0001', 'Rd second pw 0002', '192.0.2.1') AS tok_r,
       pg_temp.first_login('a41 alpha', 'auditor', 'Au first pw 0001', 'Au second pw 0002', '192.0.2.1') AS tok_au,
       pg_temp.first_login('a41 alpha', 'lockme', 'Lm first pw 0001', 'Lm second pw 0002', '192.0.2.1') AS tok_lock,
       pg_temp.first_login('a41 alpha', 'leaver', 'Lv first pw 0001', 'Lv second pw 0002', '192.0.2.1') AS tok_leaver,
       utilix.login('a41 alpha', 'admin2', 'Ad first pw 0001', '10.41.1.2') AS tok_pwc \gset
SELECT pg_temp.user_row(:tb, 'bob_b') AS bob_before, pg_temp.user_row(:ta, 'reader') AS reader_before \gset

-- ------------------------------------------------------------------ the admin of A against the users of B
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT throws_ok($$SELECT utilix.disable_user('bob_b')$$, '22023', 'user "bob_b" does not exist', 'admin A: disable_user of B''s user: 22023 does not exist');
SELECT throws_ok($$SELECT utilix.enable_user('bob_b')$$, '22023', 'user "bob_b" does not exist', 'admin A: enable_user of B''s user: 22023');
SELECT throws_ok($$SELECT utilix.drop_user('bob_b')$$, '22023', 'user "bob_b" does not exist', 'admin A: drop_user of B''s user: 22023');
SELECT throws_ok($$SELECT utilix.reset_password('bob_b', 'Taken over pw 0001')$$, '22023', 'user "bob_b" does not exist',
                 'admin A: reset_password of B''s user: 22023');
SELECT throws_ok($$SELECT utilix.grant_rights('bob_b', '{admin}')$$, '22023', 'user "bob_b" does not exist', 'admin A: grant_rights to B''s user: 22023');
SELECT throws_ok($$SELECT utilix.revoke_rights('bob_b', '{read}')$$, '22023', 'user "bob_b" does not exist', 'admin A: revoke_rights of B''s user: 22023');
SELECT throws_ok($$SELECT utilix.set_clearance('bob_b', 'secret')$$, '22023', 'user "bob_b" does not exist', 'admin A: set_clearance of B''s user: 22023');
SELECT throws_ok($$SELECT utilix.disable_user('rootB')$$, '22023', 'user "rootB" does not exist', 'admin A: disable_user of B''s admin: 22023');
SELECT lives_ok($$SELECT utilix.create_user('bob_b', 'Other bob pw 0001')$$, 'admin A creates its own bob_b (a login taken in B is no oracle)');
SELECT is(pg_temp.user_row(:tb, 'bob_b'), :'bob_before', 'B''s user is unchanged: hash, status, rights, clearance, times');
SELECT isnt(utilix.login('a41 beta', 'bob_b', 'Bo second pw 0002', '192.0.2.1'), NULL::text, 'B''s user still logs in with its own password');
SELECT is(utilix.login('a41 beta', 'bob_b', 'Other bob pw 0001', '192.0.2.1'), NULL::text, 'A''s bob_b password does not log in B''s bob_b');
SELECT is((SELECT count(*) FROM utilix.users WHERE login IN ('rootB')), 0::bigint, 'admin A does not see B''s users in utilix.users');
SELECT is((SELECT count(*) FROM utilix.users WHERE login = 'bob_b'), 1::bigint, '... only its own bob_b');
SELECT is((SELECT count(*) FROM utilix.auth_events WHERE login IN ('rootB') OR (login = 'bob_b' AND event = 'login')), 0::bigint,
          'admin A does not see B''s auth events');
SELECT is(ARRAY(SELECT network::text FROM utilix.admin_networks), '{10.41.0.0/16}'::text[], 'admin A sees only its own admin networks');
SELECT throws_ok($$SELECT utilix.revoke_admin_network('10.42.0.0/16')$$, '22023', NULL, 'admin A cannot revoke B''s admin network (22023)');
SELECT is((SELECT count(*) FROM utilix.admin_network WHERE tenant_id = :tb AND network = '10.42.0.0/16'), 1::bigint,
          'B''s admin network is still there');
SELECT lives_ok($$SELECT utilix.allow_admin_network('10.42.0.0/16')$$, 'admin A allowing B''s range adds it to A only');
SELECT is(ARRAY(SELECT tenant_id FROM utilix.admin_network WHERE network = '10.42.0.0/16' ORDER BY tenant_id),
          ARRAY[:ta, :tb]::bigint[], '... one row for A, B''s row untouched');

-- ------------------------------------------------------------------ malformed networks, unknown rights and clearance
SELECT throws_ok($$SELECT utilix.allow_admin_network('10.0.0.300/8')$$, '22P02', NULL, 'allow_admin_network(''10.0.0.300/8''): 22P02');
SELECT throws_ok($$SELECT utilix.allow_admin_network('abc')$$, '22P02', NULL, 'allow_admin_network(''abc''): 22P02');
SELECT throws_ok($$SELECT utilix.allow_admin_network('10.0.0.1/8')$$, '22P02', NULL, 'a network with host bits set: 22P02');
SELECT throws_ok($$SELECT utilix.revoke_admin_network('abc')$$, '22P02', NULL, 'revoke_admin_network(''abc''): 22P02');
SELECT throws_ok($$SELECT utilix.allow_admin_network(NULL)$$, '22004', NULL, 'allow_admin_network(NULL): 22004');
SELECT is(ARRAY(SELECT network::text FROM utilix.admin_networks ORDER BY network), '{10.41.0.0/16,10.42.0.0/16}'::text[],
          'no malformed call added a network');
SELECT throws_ok($$SELECT utilix.create_user('x1', 'Unknown right pw 1', '{superuser}')$$, '22023', 'unknown right "superuser"',
                 'create_user with an unknown right: 22023');
SELECT throws_ok($$SELECT utilix.create_user('x2', 'Unknown right pw 1', '{READ}')$$, '22023', NULL, 'rights are case-sensitive: {READ} is unknown (22023)');
SELECT throws_ok($$SELECT utilix.create_user('x3', 'Unknown right pw 1', ARRAY['read', NULL])$$, '22023', NULL, 'a NULL right: 22023');
SELECT throws_ok($$SELECT utilix.create_user('x4', 'Unknown right pw 1', '{read}', 'top secret')$$, '22023', 'unknown clearance "top secret"',
                 'create_user with an unknown clearance: 22023');
SELECT throws_ok($$SELECT utilix.grant_rights('reader', '{root}')$$, '22023', NULL, 'grant_rights of an unknown right: 22023');
SELECT throws_ok($$SELECT utilix.grant_rights('reader', '{write,bogus}')$$, '22023', NULL, 'grant_rights with one unknown right among known ones: 22023');
SELECT throws_ok($$SELECT utilix.revoke_rights('reader', '{bogus}')$$, '22023', NULL, 'revoke_rights of an unknown right: 22023');
SELECT throws_ok($$SELECT utilix.set_clearance('reader', 'ultra')$$, '22023', NULL, 'set_clearance to an unknown level: 22023');
SELECT throws_ok($$SELECT utilix.set_clearance('reader', 'Secret')$$, '22023', NULL, 'clearance levels are case-sensitive: Secret is unknown (22023)');
SELECT is((SELECT count(*) FROM utilix.app_user WHERE tenant_id = :ta AND login LIKE 'x_'), 0::bigint, 'no refused create_user left a user');
SELECT is(pg_temp.user_row(:ta, 'reader'), :'reader_before', 'the refused grants and clearance left reader unchanged');

-- ------------------------------------------------------------------ without the admin right
SET LOCAL ROLE a41_app;
SELECT utilix.set_context(:'tok_r') \g /dev/null
SELECT throws_ok($$SELECT utilix.create_user('sneaky', 'Sneaky user pw 01')$$, '42501', NULL, 'a reader cannot create_user (42501)');
SELECT throws_ok($$SELECT utilix.disable_user('rootA')$$, '42501', NULL, 'a reader cannot disable_user (42501)');
SELECT throws_ok($$SELECT utilix.enable_user('lockme')$$, '42501', NULL, 'a reader cannot enable_user (42501)');
SELECT throws_ok($$SELECT utilix.drop_user('rootA')$$, '42501', NULL, 'a reader cannot drop_user (42501)');
SELECT throws_ok($$SELECT utilix.reset_password('rootA', 'Taken over pw 0001')$$, '42501', NULL, 'a reader cannot reset_password (42501)');
SELECT throws_ok($$SELECT utilix.grant_rights('reader', '{admin}')$$, '42501', NULL, 'a reader cannot grant itself admin (42501)');
SELECT throws_ok($$SELECT utilix.revoke_rights('rootA', '{admin}')$$, '42501', NULL, 'a reader cannot revoke_rights (42501)');
SELECT throws_ok($$SELECT utilix.set_clearance('reader', 'secret')$$, '42501', NULL, 'a reader cannot raise its clearance (42501)');
SELECT throws_ok($$SELECT utilix.allow_admin_network('0.0.0.0/0')$$, '42501', NULL, 'a reader cannot allow_admin_network (42501)');
SELECT throws_ok($$SELECT utilix.revoke_admin_network('10.41.0.0/16')$$, '42501', NULL, 'a reader cannot revoke_admin_network (42501)');
SELECT is((SELECT count(*) FROM utilix.users), 0::bigint, 'a reader sees no users');
SELECT is((SELECT count(*) FROM utilix.admin_networks), 0::bigint, 'a reader sees no admin networks');
SELECT utilix.set_context(:'tok_au') \g /dev/null
SELECT is(pg_temp.states(ARRAY[$$SELECT utilix.create_user('sneaky', 'Sneaky user pw 01')$$,
                               $$SELECT utilix.grant_rights('auditor', '{admin}')$$,
                               $$SELECT utilix.allow_admin_network('0.0.0.0/0')$$]),
          '{42501,42501,42501}'::text[], 'the audit right cannot administer users or networks');
SELECT utilix.clear_context() \g /dev/null
SELECT is(pg_temp.states(ARRAY[$$SELECT utilix.create_user('sneaky', 'Sneaky user pw 01')$$,
                               $$SELECT utilix.grant_rights('reader', '{admin}')$$,
                               $$SELECT utilix.allow_admin_network('0.0.0.0/0')$$,
                               $$SELECT count(*) FROM utilix.users$$,
                               $$SELECT utilix.change_password('Rd second pw 0002', 'Rd third pw 0003')$$]),
          '{42501,42501,42501,42501,42501}'::text[], 'without a context: no admin function, no utilix.users, no change_password (42501)');
-- the password-change-only token of a user with the admin right
SELECT utilix.set_context(:'tok_pwc') \g /dev/null
SELECT is((SELECT row(status, rights)::text FROM utilix.context_info()), row('password change only', '{admin,read}'::text[])::text,
          'admin2 holds a password-change-only token that lists the admin right');
SELECT is(pg_temp.states(ARRAY[$$SELECT utilix.create_user('sneaky', 'Sneaky user pw 01')$$,
                               $$SELECT utilix.disable_user('rootA')$$,
                               $$SELECT utilix.enable_user('lockme')$$,
                               $$SELECT utilix.drop_user('rootA')$$,
                               $$SELECT utilix.reset_password('rootA', 'Taken over pw 0001')$$,
                               $$SELECT utilix.grant_rights('admin2', '{write}')$$,
                               $$SELECT utilix.revoke_rights('rootA', '{admin}')$$,
                               $$SELECT utilix.set_clearance('admin2', 'secret')$$,
                               $$SELECT utilix.allow_admin_network('0.0.0.0/0')$$,
                               $$SELECT utilix.revoke_admin_network('10.41.0.0/16')$$]),
          array_fill('42501'::text, ARRAY[10]), 'a password-change-only token calls no admin function (42501 each)');
SELECT is((SELECT count(*) FROM a41_docs), 0::bigint, 'a password-change-only token reads no protected rows');
SELECT throws_ok($$INSERT INTO a41_docs (id, body) VALUES (7, 'x')$$, '42501', NULL, 'a password-change-only token writes no protected rows');
SELECT is((SELECT count(*) FROM utilix.users) + (SELECT count(*) FROM utilix.auth_events) + (SELECT count(*) FROM utilix.admin_networks),
          0::bigint, 'a password-change-only token sees no users, auth events or admin networks');
RESET ROLE;
SELECT is((SELECT row(rights, clearance, status)::text FROM utilix.app_user WHERE tenant_id = :ta AND login IN ('reader')),
          row('{read}'::text[], 'public', 'active')::text, 'after all these attempts reader''s rights and clearance are unchanged');
SELECT is((SELECT count(*) FROM utilix.app_user WHERE tenant_id = :ta AND login = 'sneaky'), 0::bigint, 'and no user sneaky exists');
SELECT is(ARRAY(SELECT network::text FROM utilix.admin_network WHERE tenant_id = :ta ORDER BY network), '{10.41.0.0/16,10.42.0.0/16}'::text[],
          'and the admin networks are unchanged');

-- ------------------------------------------------------------------ tokens of disabled and dropped users
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT utilix.disable_user('leaver') \g /dev/null
SELECT utilix.set_context(:'tok_leaver') \g /dev/null
SELECT throws_ok($$SELECT utilix.change_password('Lv second pw 0002', 'Lv third pw 00003')$$, '42501', NULL,
                 'the token of a disabled user cannot change its password (42501)');
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT utilix.drop_user('leaver') \g /dev/null
SELECT utilix.set_context(:'tok_leaver') \g /dev/null
SELECT throws_ok($$SELECT utilix.change_password('Lv second pw 0002', 'Lv third pw 00003')$$, '42501', NULL,
                 'the token of a dropped user cannot change a password (42501)');
SELECT utilix.clear_context() \g /dev/null

-- ------------------------------------------------------------------ attempts that must leave a trace
SELECT utilix.set_context(:'tok_r') \g /dev/null
SELECT is(utilix.change_password('Rd guessed pw 0009', 'Rd third pw 00003'), NULL::text,
          'change_password with a guessed current password: NULL (WARNING 28P01)');
SELECT utilix.clear_context() \g /dev/null
SELECT is((SELECT count(*) FROM utilix.auth_event WHERE tenant_id = :ta AND login = 'reader' AND event = 'change password'
              AND outcome = 'denied'), 1::bigint,
          'the failed password change is recorded in utilix.auth_event');
SELECT is((SELECT failures FROM utilix._login_state(:ta, 'reader')), 1,
          '... and counts towards the lockout');

-- guesses whose failures the caller rolls back: utilix.login() is open to
-- every role, so any role can try passwords inside a savepoint and roll back
SET LOCAL SESSION AUTHORIZATION a41_app;
SAVEPOINT guesses;
SELECT utilix.login('a41 alpha', 'guessme', 'Gm guess pw 000' || i) FROM generate_series(1, 8) i \g /dev/null
ROLLBACK TO SAVEPOINT guesses;
RESET SESSION AUTHORIZATION;
-- the counts are in shared memory, where the rollback does not reach
SELECT is((SELECT failures FROM utilix._login_state(:ta, 'guessme')), 5,
          'the rolled-back attempts are still counted: five, and the lock they set refused the other three unchecked');
SELECT is(utilix.login('a41 alpha', 'guessme', 'Gm first pw 0001'), NULL::text,
          'eight wrong passwords tried in a savepoint the caller rolls back still lock the user: the right password is refused');
SELECT is((SELECT detail FROM utilix.auth_event WHERE tenant_id = :ta AND login = 'guessme' AND event = 'login'
            ORDER BY id DESC LIMIT 1), 'locked',
          '... and that refusal is recorded as locked');

-- ------------------------------------------------------------------ who may pass a client address
SET LOCAL SESSION AUTHORIZATION a41_app;
SELECT is(utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002', '10.41.1.1'), NULL::text,
          'a session of a role that is not a gateway passing an allowed client address: NULL (WARNING 42501), no token');
SELECT is(utilix.login('a41 alpha', 'reader', 'Rd second pw 0002', '10.0.0.1'), NULL::text,
          '... not even for a non-admin user');
SELECT is(utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002'), NULL::text,
          'over the unix socket (no client address) the same session gets NULL for the admin');
SELECT isnt(utilix.login('a41 alpha', 'reader', 'Rd second pw 0002'), NULL::text, '... and a token for a non-admin user');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM utilix.auth_event WHERE db_role = 'a41_app' AND event = 'login' AND outcome = 'denied'
              AND detail = 'client_addr passed by a role that is not a gateway'), 2::bigint,
          'both attempts to pass a client address are recorded in utilix.auth_event');
SET LOCAL ROLE a41_app;
SELECT is(utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002', '10.41.1.1'), NULL::text,
          'a superuser session after SET ROLE to a plain role cannot pass a client address either (judged as the role it acts as)');
RESET ROLE;
SET LOCAL SESSION AUTHORIZATION a41_gw;
SELECT is(utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002', '10.43.1.1'), NULL::text,
          'a gateway passing an address outside the admin networks: NULL for the admin');
SELECT isnt(utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002', '10.41.9.9'), NULL::text,
            'a gateway passing an address inside: a token');
SELECT throws_ok(format($$SELECT utilix.create_tenant_admin(%s, 'gwadmin', 'Gateway pw 00001')$$, :ta), '42501', NULL,
                 'a gateway cannot create a tenant admin (42501)');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------------ look-alike functions and operators
SET LOCAL ROLE a41_evil;
CREATE FUNCTION public._verify_password(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public._may(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public._require_admin() RETURNS bigint LANGUAGE sql AS :'sel_tb';
CREATE FUNCTION public.current_tenant() RETURNS bigint LANGUAGE sql AS :'sel_tb';
CREATE FUNCTION public.current_app_user() RETURNS text LANGUAGE sql AS $$SELECT 'rootB'$$;
CREATE FUNCTION public._check_password(text, text) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION public._check_rights_and_clearance(text[], text) RETURNS void LANGUAGE sql AS '';
CREATE FUNCTION public._hash_is_current(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.pg_has_role(name, text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public._acting_role_is_member(name) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.inet_client_addr() RETURNS inet LANGUAGE sql AS $$SELECT inet '10.41.1.1'$$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$SELECT timestamptz 'infinity'$$;
CREATE FUNCTION public.evil_t(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.evil_f(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE FUNCTION public.evil_b(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.evil_i(inet, inet) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION public.evil_ts(timestamptz, timestamptz) RETURNS boolean LANGUAGE sql AS 'SELECT false';
CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_t);
CREATE OPERATOR public.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_f);
CREATE OPERATOR public.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = public.evil_b);
CREATE OPERATOR public.<<= (LEFTARG = inet, RIGHTARG = inet, FUNCTION = public.evil_i);
CREATE OPERATOR public.> (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = public.evil_ts);
SELECT throws_ok($$CREATE FUNCTION utilix._may2(text) RETURNS boolean LANGUAGE sql AS 'SELECT true'$$, '42501', NULL,
                 'a tenant role cannot create functions in schema utilix');
RESET ROLE;
CREATE FUNCTION pg_temp._may(text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION pg_temp._verify_password(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION pg_temp.current_tenant() RETURNS bigint LANGUAGE sql AS :'sel_tb';
CREATE OPERATOR pg_temp.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.evil_t);
-- lock a user, for the lockout under the look-alike now() and >
SELECT utilix.login('a41 alpha', 'lockme', 'Lm wrong pw 0000' || i, '192.0.2.1') FROM generate_series(1, 5) i \g /dev/null
SELECT pg_temp.user_row(:tb, 'bob_b') AS bob_before2 \gset

SET LOCAL search_path = public, pg_temp, utilix, pg_catalog;
-- the look-alikes are in effect for unqualified names
SELECT now() = 'infinity' AND 'a' = 'b' AND _verify_password('x', 'y') AND _may('admin') AS armed \gset
-- logins, as a superuser (a gateway) and as the application role
SELECT utilix.login('a41 alpha', 'reader', 'Rd wrong pw 00009', '192.0.2.1') IS NULL AS e_wrong,
       utilix.login('a41 alpha', 'no_such_user', 'Rd second pw 0002', '192.0.2.1') IS NULL AS e_unknown,
       utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002', '198.18.0.1') IS NULL AS e_outside,
       utilix.login('a41 alpha', 'lockme', 'Lm second pw 0002', '192.0.2.1') IS NULL AS e_locked,
       utilix.login('a41 beta', 'rootB', 'Bb second pw 0002', '10.42.1.1') IS NULL AS e_other_tenant \gset
SET LOCAL SESSION AUTHORIZATION a41_app;
SET LOCAL search_path = public, pg_temp, utilix, pg_catalog;
SELECT utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002', '10.41.1.1') IS NULL AS e_spoof,
       utilix.login('a41 alpha', 'rootA', 'Aa second pw 0002') IS NULL AS e_noaddr \gset
-- the reader's context: administration, reading; the auditor's (no read right): reading, writing
SELECT utilix.set_context(:'tok_r') \g /dev/null
SELECT pg_temp.state($$SELECT utilix.create_user('evil1', 'Evil user pw 0001')$$) AS e_r_create,
       pg_temp.state($$SELECT utilix.grant_rights('reader', '{admin}')$$) AS e_r_grant,
       utilix.change_password('Rd wrong pw 00009', 'Rd third pw 00003') IS NULL AS e_r_change,
       (SELECT string_agg(body, ',' ORDER BY body) FROM a41_docs) AS e_r_rows,
       (SELECT count(*) FROM utilix.users) AS e_r_users \gset
SELECT utilix.set_context(:'tok_au') \g /dev/null
SELECT (SELECT count(*) FROM a41_docs) AS e_au_rows,
       pg_temp.state($$INSERT INTO a41_docs (id, body) VALUES (8, 'x')$$) AS e_au_insert \gset
-- the admin of A: the users of B, the policy, the users view
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT pg_temp.state($$SELECT utilix.disable_user('rootB')$$) AS e_a_disable,
       pg_temp.state($$SELECT utilix.create_user('evil2', 'Evil user pw 0002')$$) AS e_a_create,
       pg_temp.state($$SELECT utilix.create_user('evil3', 'short')$$) AS e_a_weak,
       pg_temp.state($$SELECT utilix.set_clearance('reader', 'ultra')$$) AS e_a_clear,
       pg_temp.state($$SELECT utilix.grant_rights('reader', '{root}')$$) AS e_a_right,
       (SELECT string_agg(login, ',' ORDER BY login) FROM utilix.users WHERE login LIKE 'root%') AS e_a_users \gset
SELECT utilix.clear_context() \g /dev/null
RESET SESSION AUTHORIZATION;
RESET search_path;

SELECT ok(:'armed'::boolean, 'the look-alikes answer unqualified calls (now() = infinity, ''a'' = ''b'', _verify_password and _may true)');
SELECT ok(:'e_wrong'::boolean, 'look-alike _verify_password / = : a wrong password still gets NULL');
SELECT ok(:'e_unknown'::boolean, 'look-alike = : an unknown user still gets NULL');
SELECT ok(:'e_outside'::boolean, 'look-alike <<= and inet_client_addr(): an admin from outside its networks still gets NULL');
SELECT ok(:'e_locked'::boolean, 'look-alike now() and >: a locked user still gets NULL');
SELECT ok(NOT :'e_other_tenant'::boolean, '... while a correct login still works under the look-alikes');
SELECT ok(:'e_spoof'::boolean, 'look-alike pg_has_role / _acting_role_is_member: a non-gateway passing a client address still gets NULL');
SELECT ok(:'e_noaddr'::boolean, 'look-alike inet_client_addr(): an admin over the unix socket still gets NULL');
SELECT is(:'e_r_create'::text, '42501', 'look-alike _may / _require_admin: a reader still cannot create users');
SELECT is(:'e_r_grant'::text, '42501', 'look-alike _may / _require_admin: a reader still cannot grant itself admin');
SELECT ok(:'e_r_change'::boolean, 'look-alike _verify_password: change_password with a wrong current password still gets NULL');
SELECT is(:'e_r_rows'::text, 'a1,a2', 'look-alike = and current_tenant(): the reader still reads only its tenant''s rows');
SELECT is(:'e_r_users'::text, '0', 'look-alike _may: the reader still sees no users');
SELECT is(:'e_au_rows'::text, '0', 'look-alike _may: a context without the read right still reads no rows');
SELECT is(:'e_au_insert'::text, '42501', 'look-alike _may: a context without the write right still cannot insert');
SELECT is(:'e_a_disable'::text, '22023', 'look-alike current_tenant(): admin A still cannot disable B''s admin');
SELECT is((SELECT status FROM utilix.app_user WHERE tenant_id = :tb AND login = 'rootB'), 'active', '... B''s admin is still active');
SELECT is(:'e_a_create'::text, 'ok', 'admin A creates a user under the look-alikes ...');
SELECT is((SELECT array_agg(tenant_id) FROM utilix.app_user WHERE login = 'evil2'), ARRAY[:ta]::bigint[], '... in tenant A, not B');
SELECT is(:'e_a_weak'::text, '22023', 'look-alike _check_password: a weak password is still refused');
SELECT is(:'e_a_clear'::text, '22023', 'look-alike _check_rights_and_clearance: an unknown clearance is still refused');
SELECT is(:'e_a_right'::text, '22023', 'look-alike _check_rights_and_clearance: an unknown right is still refused');
SELECT is(:'e_a_users'::text, 'rootA', 'look-alike = : utilix.users still shows admin A only its tenant');
SELECT is(pg_temp.user_row(:tb, 'bob_b'), :'bob_before2', 'B''s user is unchanged after the look-alike attacks');
SELECT is((SELECT rights FROM utilix.app_user WHERE tenant_id = :ta AND login = 'reader'), '{read}'::text[],
          'reader still has only {read}');

-- ------------------------------------------------------------------ what a tenant role can read and call
SELECT is((SELECT row(rolsuper, rolbypassrls)::text FROM pg_roles WHERE rolname = 'a41_app'), '(f,f)',
          'the application role is neither superuser nor BYPASSRLS');
ANALYZE utilix.app_user;
SET LOCAL ROLE a41_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT throws_ok('SELECT * FROM utilix.app_user', '42501', NULL, 'a tenant role (even with an admin context) cannot SELECT utilix.app_user');
SELECT throws_ok('SELECT password_hash FROM utilix.app_user', '42501', NULL, '... nor its password_hash column');
SELECT throws_ok('SELECT * FROM utilix.auth_event', '42501', NULL, '... nor utilix.auth_event');
SELECT throws_ok('SELECT * FROM utilix.admin_network', '42501', NULL, '... nor utilix.admin_network');
SELECT throws_ok($$UPDATE utilix.app_user SET rights = '{admin}'$$, '42501', NULL, '... nor UPDATE utilix.app_user');
SELECT is((SELECT count(*) FROM pg_stats WHERE schemaname = 'utilix' AND tablename = 'app_user'), 0::bigint,
          'the statistics of utilix.app_user (hash histograms) are hidden from a tenant role');
SELECT is((SELECT count(*) FROM utilix.users u WHERE u::text LIKE '%$scrypt$%')
          + (SELECT count(*) FROM utilix.auth_events e WHERE e::text LIKE '%$scrypt$%'), 0::bigint,
          'utilix.users and utilix.auth_events show the admin no hash');
SELECT is(ARRAY(SELECT format('%s.%s', c.relname, a.attname)
                  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 WHERE c.relnamespace = 'utilix'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.attname ~* 'hash|passw|salt'
                   -- the access log's chain hashes are SHA-256 of its own records, meant to be read
                   AND NOT (c.relname = 'access_log' AND a.attname IN ('hash', 'prev_hash'))
                   AND has_column_privilege('a41_app', c.oid, a.attnum, 'SELECT')),
          '{}'::text[], 'no table or view in utilix that a tenant role may read has a hash or password column');
SELECT is(pg_temp.states(ARRAY[$$SELECT utilix._verify_password('Rd second pw 0002', NULL)$$,
                               $$SELECT utilix._hash_password('Rd second pw 0002')$$,
                               $$SELECT utilix._hash_is_current('x')$$,
                               $$SELECT utilix._own_user(utilix.current_tenant(), 'rootA')$$,
                               $$SELECT utilix._require_admin()$$,
                               $$SELECT utilix._auth_event(1, 'rootA', 'login', 'ok', NULL)$$,
                               $$SELECT utilix._sign_token(1, 'rootA', '1 hour', '{admin}', 'secret', 0)$$,
                               $$SELECT utilix.issue_context(1, 'rootA')$$]),
          array_fill('42501'::text, ARRAY[8]),
          'a tenant role calls no internal function: verify, hash, own_user (a row with the hash), require_admin, auth_event (forgery), sign_token, issue_context');
SELECT throws_ok(format($$SELECT utilix.create_tenant_admin(%s, 'extra', 'Extra admin pw 01')$$, :ta), '42501', NULL,
                 'a tenant role with an admin context cannot call create_tenant_admin (42501)');
RESET ROLE;
SET LOCAL ROLE a41_op;
SELECT throws_ok(format($$SELECT utilix.create_tenant_admin(%s, 'rootA', 'Another pw 00001')$$, :ta), '23505', NULL,
                 'create_tenant_admin of a login that exists: 23505 (no second rootA)');
SELECT throws_ok($$SELECT utilix.create_tenant_admin(-1, 'ghost', 'Ghost admin pw 01')$$, '22023', NULL,
                 'create_tenant_admin for a tenant that does not exist: 22023');
RESET ROLE;
SELECT is((SELECT count(*) FROM utilix.app_user WHERE login IN ('extra', 'gwadmin', 'ghost')), 0::bigint, 'no refused tenant admin was created');

-- ------------------------------------------------------------------ binding roles that row level security does not hold
SET LOCAL ROLE a41_op;
SELECT throws_ok(format('SELECT utilix.bind_role(%L, %s)', 'a41_super', :ta), '42501', NULL, 'bind_role refuses a superuser');
SELECT throws_ok(format('SELECT utilix.bind_role(%L, %s)', 'a41_bypass', :ta), '42501', NULL, 'bind_role refuses a BYPASSRLS role');
SELECT throws_ok(format('SELECT utilix.bind_role(%L, %s)', 'a41_owner', :ta), '42501', NULL,
                 'bind_role refuses a role that owns a protected table');
RESET ROLE;
-- what such an owner could do: a permissive policy of its own beside utilix_access
SET LOCAL ROLE a41_owner;
SELECT throws_ok('CREATE POLICY a41_open ON a41_docs FOR SELECT USING (true)', '42501', NULL,
                 'the owner of a protected table cannot add a permissive policy that bypasses the read right');
RESET ROLE;
SET LOCAL ROLE a41_app;
SELECT utilix.set_context(:'tok_au') \g /dev/null
SELECT is((SELECT count(*) FROM a41_docs), 0::bigint, 'a context without the read right still reads no rows of a41_docs');
RESET ROLE;

-- ------------------------------------------------------------------ names that are not names
SELECT is(utilix.login('a41 alpha', $$rootA' OR '1'='1$$, 'Aa second pw 0002', '10.41.1.1'), NULL::text,
          'a login name with SQL in it is just an unknown user');
SELECT is(utilix.login($$a41 alpha' OR '1'='1$$, 'rootA', 'Aa second pw 0002', '10.41.1.1'), NULL::text,
          'a tenant name with SQL in it is just an unknown tenant');
SELECT is(utilix.login('a41 alpha', 'ROOTA', 'Aa second pw 0002', '10.41.1.1'), NULL::text,
          'login names are exact: ROOTA is not rootA');

SELECT * FROM finish();
ROLLBACK;
