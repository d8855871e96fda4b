-- 40_users: application users of a tenant, end to end.  The operator creates
-- a tenant's first admin (default scrypt parameters); the admin logs in from
-- an allowed network with a password-change-only token, changes its password,
-- creates users with rights and clearance; users log in, must change their
-- initial password, and their rights are enforced on a protected table;
-- failures lock a user, enable_user / reset_password unlock it; disabled,
-- unknown users and unknown tenants get NULL (never an error); rights and
-- clearance changes take effect at the next token; the password policy;
-- salted hashes, rehashing when the cost is raised; everything is recorded in
-- utilix.auth_event.
--
-- A failed login returns NULL with a WARNING (28P01); the WARNINGs are hidden
-- below (client_min_messages) and each failure is asserted through the NULL
-- and its utilix.auth_event row.  Inside pgTAP the connection is a unix
-- socket (inet_client_addr() is NULL), so admin logins pass client_addr as a
-- gateway would: the session user (a superuser, or u40_gw via SET SESSION
-- AUTHORIZATION) is a member of utilix_gateway.
BEGIN;
SELECT plan(142);
SET LOCAL client_min_messages = error;

-- ------------------------------------------------------------------ set-up
CREATE ROLE u40_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE u40_gw NOLOGIN IN ROLE utilix_gateway;
CREATE ROLE u40_app NOLOGIN;
CREATE ROLE u40_owner NOLOGIN;

SELECT utilix.create_tenant('u40 alpha') AS ta, utilix.create_tenant('u40 beta') AS tb,
       utilix.create_tenant('u40 gone') AS tg \gset
UPDATE utilix.tenant SET status = 'terminated', terminated_at = now() WHERE id = :tg;

CREATE TABLE u40_notes (tenant_id bigint NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE u40_notes OWNER TO u40_owner;
SELECT utilix.protect('u40_notes') \g /dev/null
RESET utilix.internal_ddl;
INSERT INTO u40_notes VALUES (:ta, 1, 'a1'), (:ta, 2, 'a2'), (:tb, 1, 'b1');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON u40_notes TO u40_app;

-- the stored hash of a user (superuser view of utilix.app_user)
CREATE FUNCTION pg_temp.hash_of(t bigint, l text) RETURNS text LANGUAGE sql AS $$
    SELECT password_hash FROM utilix.app_user WHERE tenant_id = t AND login = l
$$;
-- the newest auth event of a login in a tenant (NULL tenant: unknown tenant), as one text
CREATE FUNCTION pg_temp.last_event(t bigint, l text) RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' / ', event, outcome, detail) FROM utilix.auth_event
     WHERE tenant_id IS NOT DISTINCT FROM t AND login = l ORDER BY id DESC LIMIT 1
$$;
-- a login of tenant alpha, from an address a gateway passes
CREATE FUNCTION pg_temp.login(l text, pw text, addr inet DEFAULT '192.0.2.10', tn text DEFAULT 'u40 alpha')
    RETURNS text LANGUAGE sql AS $$ SELECT utilix.login(tn, l, pw, addr) $$;
-- what a token says, without keeping it as the context
CREATE FUNCTION pg_temp.info(tok text) RETURNS TABLE (status text, rights text[], clearance text)
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.set_context(tok);
    RETURN QUERY SELECT c.status, c.rights, c.clearance FROM utilix.context_info() c;
    PERFORM utilix.clear_context();
END
$$;
-- first login of a user with its initial password, then the password change: the full token
CREATE FUNCTION pg_temp.first_login(l text, initial text, new_pw text, addr inet DEFAULT '192.0.2.10')
    RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    tok text := utilix.login('u40 alpha', l, initial, addr);
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
-- the fastest of n logins, in ms
CREATE FUNCTION pg_temp.min_login_ms(tn text, l text, pw text, n int) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE
    best float8;
    t0 timestamptz;
BEGIN
    FOR i IN 1..n LOOP
        t0 := clock_timestamp();
        PERFORM utilix.login(tn, l, pw, '192.0.2.10');
        best := least(best, 1000 * extract(epoch FROM clock_timestamp() - t0));
    END LOOP;
    RETURN best;
END
$$;

-- ------------------------------------------------------------------ the first admin, default scrypt parameters
SELECT is(ARRAY[current_setting('utilix.scrypt_log2n'), current_setting('utilix.scrypt_r'), current_setting('utilix.scrypt_p'),
                current_setting('utilix.login_max_failures'), current_setting('utilix.login_lockout_minutes'),
                current_setting('utilix.min_password_length')],
          '{15,8,1,5,15min,12}'::text[],
          'defaults: scrypt ln=15 r=8 p=1, 5 failures lock for 15 minutes, passwords of at least 12 characters');
SET LOCAL ROLE u40_op;
SELECT lives_ok(format($$SELECT utilix.create_tenant_admin(%s, 'root', 'Alpha first pw 01')$$, :ta),
                'an operator (not a superuser) creates the first admin of tenant alpha');
RESET ROLE;
SELECT matches(pg_temp.hash_of(:ta, 'root'), '^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$',
               'the stored hash is $scrypt$ln=15,r=8,p=1$<16-byte salt>$<32-byte hash> (default parameters)');
SELECT is((SELECT row(status, rights, clearance, must_change, (utilix._login_state(tenant_id, login)).*)::text
             FROM utilix.app_user WHERE tenant_id = :ta AND login = 'root'),
          row('active', '{admin,audit,read,write}'::text[], 'public', true, 0, NULL::timestamptz)::text,
          'the first admin: active, rights {admin,audit,read,write}, clearance public, must change its password');
SELECT is(pg_temp.last_event(:ta, 'root'), 'create tenant admin / ok / postgres',
          'creating the first admin is recorded in utilix.auth_event');

-- cheaper hashes for the rest of the file
SET LOCAL utilix.scrypt_log2n = 10;

-- ------------------------------------------------------------------ admin network and the must-change flow
SELECT is(pg_temp.login('root', 'Alpha first pw 01', '10.40.1.1'), NULL,
          'an admin cannot log in while its tenant allows no admin network');
SELECT is(pg_temp.last_event(:ta, 'root'), 'login / denied / address not allowed', '... recorded as address not allowed');
-- NOTE: no operator function allows a new tenant's first admin network (see
-- the report); a superuser inserts it here.
INSERT INTO utilix.admin_network (tenant_id, network, added_by) VALUES (:ta, '10.40.0.0/16', 'operator');
SELECT is(pg_temp.login('root', 'Alpha first pw 01', '10.41.1.1'), NULL::text, 'an admin cannot log in from outside the allowed network');
SET LOCAL SESSION AUTHORIZATION u40_gw;
SELECT utilix.login('u40 alpha', 'root', 'Alpha first pw 01', '10.40.1.1') AS tok_root0 \gset
RESET SESSION AUTHORIZATION;
SELECT isnt(:'tok_root0'::text, NULL, 'a gateway session passes the admin''s address from the allowed network: a token');
SELECT is(pg_temp.last_event(:ta, 'root'), 'login / password change required',
          '... recorded as a login that requires a password change');
SELECT is((SELECT row(status, rights)::text FROM pg_temp.info(:'tok_root0')),
          row('password change only', '{admin,audit,read,write}'::text[])::text,
          'the token of a user who must change its password says: password change only');
SELECT utilix.set_context(:'tok_root0') \g /dev/null
SELECT throws_ok($$SELECT utilix.create_user('early', 'Early user pw 01')$$, '42501', NULL,
                 'a password-change-only token cannot create users, even with the admin right');
SELECT is((SELECT count(*) FROM utilix.users), 0::bigint, 'a password-change-only token sees no users');
SET LOCAL ROLE u40_app;
SELECT is((SELECT count(*) FROM u40_notes), 0::bigint, 'a password-change-only token reads no rows of a protected table');
SELECT throws_ok($$INSERT INTO u40_notes (id, body) VALUES (9, 'x')$$, '42501', NULL,
                 'a password-change-only token cannot write a protected table');
RESET ROLE;
-- the password policy
SELECT is(utilix.change_password('Alpha wrong pw 01', 'Alpha second pw 02'), NULL::text,
          'change_password with a wrong current password: NULL (with WARNING 28P01)');
SELECT is(pg_temp.last_event(:ta, 'root'), 'change password / denied / wrong current password', '... recorded in utilix.auth_event');
SELECT is((SELECT failures FROM utilix._login_state(:ta, 'root')), 1, '... and counted as a failure');
SELECT throws_ok($$SELECT utilix.change_password('Alpha first pw 01', 'Alpha first pw 01')$$, '22023', NULL,
                 'the new password must differ from the current one (22023)');
SELECT throws_ok($$SELECT utilix.change_password('Alpha first pw 01', 'Short pw 1')$$, '22023', 'password is too short',
                 'a password shorter than 12 characters is refused (22023)');
SELECT lives_ok($$SELECT utilix._check_password('someone', 'Twelve chars')$$,
                'a password of exactly 12 characters passes the length rule');
SELECT throws_ok($$SELECT utilix.change_password('Alpha first pw 01', 'my ROOT password')$$, '22023',
                 'password must not contain the login name', 'a password containing the login name (any case) is refused (22023)');
SELECT throws_ok($$SELECT utilix.change_password('Alpha first pw 01', E'Alpha tab\tpw 0002')$$, '22023',
                 'password must not contain control characters', 'a password with a control character is refused (22023)');
SELECT throws_ok($$SELECT utilix.change_password('Alpha first pw 01', E'Alpha del\x7fpw 0002')$$, '22023',
                 'password must not contain control characters', 'a password with DEL is refused (22023)');
SELECT throws_ok($$SELECT utilix.change_password('Alpha first pw 01', 'パスワードはとても長い')$$, '22023', 'password is too short',
                 'length counts characters, not bytes: 11 characters (33 bytes) are too short');
SELECT throws_ok(format('SELECT utilix.change_password(%L, %L)', 'Alpha first pw 01', repeat('Long pw ', 129)), '22023', 'password is too long',
                 'a password over 1024 bytes is refused (22023)');
SET LOCAL utilix.min_password_length = 20;
SELECT throws_ok($$SELECT utilix.change_password('Alpha first pw 01', 'Alpha 19 chars pw02')$$, '22023', 'password is too short',
                 'utilix.min_password_length raised to 20 refuses a 19-character password');
RESET utilix.min_password_length;
SELECT utilix.change_password('Alpha first pw 01', 'Alpha second pw 02') AS tok_root \gset
SELECT is((SELECT row(status, rights)::text FROM pg_temp.info(:'tok_root')),
          row('valid', '{admin,audit,read,write}'::text[])::text,
          'change_password returns a full token with the user''s rights');
SELECT is((SELECT must_change FROM utilix.app_user WHERE tenant_id = :ta AND login = 'root'), false,
          'after the change the user no longer must change its password');
SELECT is(pg_temp.login('root', 'Alpha first pw 01', '10.40.1.1'), NULL::text, 'the old password no longer logs in');
SELECT is((SELECT status FROM pg_temp.info(pg_temp.login('root', 'Alpha second pw 02', '10.40.1.1'))), 'valid',
          'the new password logs in with a full token');

-- ------------------------------------------------------------------ the admin creates users
SELECT utilix.set_context(:'tok_root') \g /dev/null
SELECT lives_ok($$SELECT utilix.create_user('reader', 'Rd initial pw 01')$$, 'create_user with the default rights ({read})');
SELECT lives_ok($$SELECT utilix.create_user('writer', 'Wr initial pw 01', '{write,read}')$$, 'create_user with {write,read}');
SELECT lives_ok($$SELECT utilix.create_user('auditor', 'Au initial pw 01', '{audit}')$$, 'create_user with {audit} only');
SELECT lives_ok($$SELECT utilix.create_user('twin', 'Rd initial pw 01', '{read}', 'internal')$$,
                'create_user with the same password as another user, clearance internal');
SELECT throws_ok($$SELECT utilix.create_user('reader', 'Rd other pw 001')$$, '23505', NULL, 'a login that exists: 23505');
SELECT throws_ok($$SELECT utilix.create_user('bad login!', 'Bad login pw 001')$$, '22023', NULL, 'an invalid login name: 22023');
SELECT throws_ok($$SELECT utilix.create_user('shorty', 'Short pw 1')$$, '22023', 'password is too short',
                 'create_user applies the password policy (length)');
SELECT throws_ok($$SELECT utilix.create_user('mallory', 'xxMALLORYxx pw 1')$$, '22023', 'password must not contain the login name',
                 'create_user applies the password policy (login name)');
SELECT throws_ok($$SELECT utilix.create_user('c1user', E'Alpha nel\u0085pw 0002')$$, '22023', 'password must not contain control characters',
                 'create_user refuses a password with a C1 control character (U+0085 NEL)');
SELECT is((SELECT row(rights, clearance, must_change, status)::text FROM utilix.app_user WHERE tenant_id = :ta AND login = 'writer'),
          row('{read,write}'::text[], 'public', true, 'active')::text,
          'a new user: rights as given (sorted), clearance public by default, must change its password');
SELECT matches(pg_temp.hash_of(:ta, 'reader'), '^\$scrypt\$ln=10,r=8,p=1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$',
               'the hash is made with the current parameters (ln=10 here)');
SELECT isnt(pg_temp.hash_of(:ta, 'twin'), pg_temp.hash_of(:ta, 'reader'), 'two users with the same password get different hashes');
SELECT is((SELECT array_agg(utilix._verify_password('Same literal pw 01', h)) FROM
             (SELECT utilix._hash_password('Same literal pw 01') AS h FROM generate_series(1, 2)) s),
          '{t,t}'::boolean[], '_hash_password leaves its argument intact: one literal hashed for two rows verifies twice');
SELECT isnt(split_part(pg_temp.hash_of(:ta, 'twin'), '$', 4), split_part(pg_temp.hash_of(:ta, 'reader'), '$', 4),
            '... because their salts differ');
SELECT is(ARRAY(SELECT login FROM utilix.users WHERE login <> 'c1user' ORDER BY login), '{auditor,reader,root,twin,writer}'::text[],
          'utilix.users lists the users of the admin''s tenant');
SELECT hasnt_column('utilix', 'users', 'password_hash', 'utilix.users has no password_hash column');
SELECT is((SELECT count(*) FROM utilix.users u WHERE u::text LIKE '%$scrypt$%'), 0::bigint, 'no column of utilix.users holds a hash');
SELECT is(pg_temp.last_event(:ta, 'writer'), 'create user / ok / write,read', 'create_user is recorded with the rights given');
SELECT utilix.clear_context() \g /dev/null

-- each user's first login and password change
SELECT is((SELECT status FROM pg_temp.info(pg_temp.login('reader', 'Rd initial pw 01', '203.0.113.7'))), 'password change only',
          'a new user''s first login gives a password-change-only token (a non-admin logs in from any address)');
SELECT pg_temp.first_login('reader', 'Rd initial pw 01', 'Rd second pw 02', '203.0.113.7') AS tok_r1,
       pg_temp.first_login('writer', 'Wr initial pw 01', 'Wr second pw 02') AS tok_w1,
       pg_temp.first_login('auditor', 'Au initial pw 01', 'Au second pw 02') AS tok_au,
       pg_temp.first_login('twin', 'Rd initial pw 01', 'Tw second pw 02') AS tok_twin \gset
SELECT is((SELECT row(status, rights, clearance)::text FROM pg_temp.info(:'tok_r1')),
          row('valid', '{read}'::text[], 'public')::text, 'reader''s full token: rights {read}, clearance public');
SELECT is(pg_temp.last_event(:ta, 'twin'), 'change password / ok', 'a password change is recorded');
SELECT is(pg_temp.login('reader', 'Rd second pw 02', NULL) IS NOT NULL, true,
          'a non-admin user logs in with no client address at all');

-- ------------------------------------------------------------------ rights on a protected table
SET LOCAL ROLE u40_app;
SELECT utilix.set_context(:'tok_r1') \g /dev/null
SELECT is(ARRAY(SELECT body FROM u40_notes ORDER BY id), '{a1,a2}'::text[], 'a read-only user reads its tenant''s rows');
SELECT throws_ok($$INSERT INTO u40_notes (id, body) VALUES (3, 'r3')$$, '42501',
                 'the current context has no write right on table "u40_notes"', 'a read-only user cannot INSERT (42501, no write right)');
SELECT throws_ok($$UPDATE u40_notes SET body = 'r' WHERE id = 1$$, '42501', NULL, 'a read-only user cannot UPDATE (42501)');
SELECT throws_ok($$DELETE FROM u40_notes WHERE id = 1$$, '42501', NULL, 'a read-only user cannot DELETE (42501)');
SELECT throws_ok($$UPDATE u40_notes SET body = 'r' WHERE false$$, '42501', NULL,
                 'a read-only user cannot even run an UPDATE that matches no row (42501)');
SELECT throws_ok('TRUNCATE u40_notes', '42501', NULL, 'a read-only user cannot TRUNCATE (42501)');
SELECT utilix.set_context(:'tok_w1') \g /dev/null
SELECT lives_ok($$INSERT INTO u40_notes (id, body) VALUES (3, 'w3')$$, 'a user with the write right INSERTs');
SELECT lives_ok($$UPDATE u40_notes SET body = 'w2' WHERE id = 2$$, 'a user with the write right UPDATEs');
SELECT lives_ok($$DELETE FROM u40_notes WHERE id = 1$$, 'a user with the write right DELETEs');
SELECT is(ARRAY(SELECT body FROM u40_notes ORDER BY id), '{w2,w3}'::text[], '... and the writes took effect');
SELECT throws_ok('TRUNCATE u40_notes', '42501', NULL, 'a user with the write right still cannot TRUNCATE a protected table (42501)');
SELECT utilix.set_context(:'tok_au') \g /dev/null
SELECT is((SELECT count(*) FROM u40_notes), 0::bigint, 'a context without the read right sees no rows');
SELECT cmp_ok((SELECT count(*) FROM utilix.auth_events), '>', 0::bigint, 'the audit right reads utilix.auth_events');
SELECT is((SELECT count(*) FROM utilix.users), 0::bigint, 'the audit right alone does not list users');
SELECT throws_ok($$SELECT utilix.disable_user('reader')$$, '42501', NULL, 'the audit right alone cannot administer users');
SELECT utilix.set_context(:'tok_r1') \g /dev/null
SELECT is((SELECT count(*) FROM utilix.auth_events), 0::bigint, 'a user without admin or audit reads no auth events');
RESET ROLE;
SET LOCAL ROLE u40_owner;
SELECT throws_ok('TRUNCATE u40_notes', '42501', NULL, 'the table owner (under FORCE row level security) cannot TRUNCATE either');
RESET ROLE;
SELECT is((SELECT count(*) FROM u40_notes WHERE tenant_id = :tb), 1::bigint, 'tenant beta''s row was never touched');

-- ------------------------------------------------------------------ rights and clearance change at the next token
SELECT utilix.set_context(:'tok_root') \g /dev/null
SELECT is(utilix.revoke_rights('writer', '{write}'), '{read}'::text[], 'revoke_rights returns the remaining rights');
SELECT lives_ok($$SELECT utilix.set_clearance('reader', 'confidential')$$, 'set_clearance to confidential');
SELECT is(pg_temp.last_event(:ta, 'reader'), 'set clearance / ok / confidential', 'set_clearance is recorded');
SET LOCAL ROLE u40_app;
SELECT utilix.set_context(:'tok_w1') \g /dev/null
SELECT lives_ok($$INSERT INTO u40_notes (id, body) VALUES (4, 'w4')$$,
                'the token issued before the revocation still carries the write right');
RESET ROLE;
SELECT pg_temp.login('writer', 'Wr second pw 02') AS tok_w2, pg_temp.login('reader', 'Rd second pw 02') AS tok_r2 \gset
SELECT is((SELECT rights FROM pg_temp.info(:'tok_w2')), '{read}'::text[], 'the next token carries only {read}');
SET LOCAL ROLE u40_app;
SELECT utilix.set_context(:'tok_w2') \g /dev/null
SELECT throws_ok($$INSERT INTO u40_notes (id, body) VALUES (5, 'w5')$$, '42501', NULL,
                 'with the next token the revoked write right is gone (42501)');
RESET ROLE;
SELECT is((SELECT clearance FROM pg_temp.info(:'tok_r1')), 'public', 'the reader''s earlier token keeps clearance public');
SELECT is((SELECT clearance FROM pg_temp.info(:'tok_r2')), 'confidential', 'the reader''s next token has clearance confidential');
SELECT utilix.set_context(:'tok_root') \g /dev/null
SELECT is(utilix.grant_rights('writer', '{write,write,audit}'), '{audit,read,write}'::text[],
          'grant_rights adds rights once each and returns them sorted');
SELECT is((SELECT rights FROM pg_temp.info(pg_temp.login('writer', 'Wr second pw 02'))), '{audit,read,write}'::text[],
          'the next token carries the granted rights');

-- ------------------------------------------------------------------ lockout
SELECT utilix.set_context(:'tok_root') \g /dev/null
SELECT utilix.create_user('locky', 'Lk initial pw 01') \g /dev/null
SELECT pg_temp.first_login('locky', 'Lk initial pw 01', 'Lk second pw 02') \g /dev/null
-- the helpers leave no context: back to the admin's
SELECT utilix.set_context(:'tok_root') \g /dev/null
SELECT is(ARRAY[pg_temp.login('locky', 'Wrong pw number 1'), pg_temp.login('locky', 'Wrong pw number 2'),
                pg_temp.login('locky', 'Wrong pw number 3'), pg_temp.login('locky', 'Wrong pw number 4')],
          ARRAY[NULL, NULL, NULL, NULL]::text[], 'four wrong passwords: four NULLs');
SELECT is((SELECT row(failures, locked_until)::text FROM utilix._login_state(:ta, 'locky')),
          row(4, NULL::timestamptz)::text, 'after four failures: counted, not locked yet');
SELECT is(pg_temp.last_event(:ta, 'locky'), 'login / denied / wrong password', 'a wrong password is recorded');
SELECT is(pg_temp.login('locky', 'Wrong pw number 5'), NULL::text, 'the fifth wrong password: NULL');
SELECT ok((SELECT failures = 5 AND locked_until BETWEEN now() + interval '15 minutes' AND clock_timestamp() + interval '15 minutes'
             FROM utilix._login_state(:ta, 'locky')), 'after five failures the user is locked for 15 minutes');
SELECT is(pg_temp.login('locky', 'Lk second pw 02'), NULL::text, 'while locked, even the right password gets NULL');
SELECT is(pg_temp.last_event(:ta, 'locky'), 'login / denied / locked', '... recorded as locked');
SELECT is((SELECT failed_attempts FROM utilix.users WHERE login = 'locky'), 5, 'the admin sees the failures in utilix.users');
SELECT lives_ok($$SELECT utilix.enable_user('locky')$$, 'enable_user unlocks ...');
SELECT is((SELECT locked_until IS NOT NULL FROM utilix._login_state(:ta, 'locky')), true,
          '... when its transaction commits: until then the user stays locked (test/t/login_attacks.sh shows the commit)');
-- what the commit of enable_user does
SELECT utilix._login_reset(:ta, 'locky') \g /dev/null
SELECT isnt(pg_temp.login('locky', 'Lk second pw 02'), NULL::text, 'after enable_user the right password logs in');
SELECT is((SELECT row(failures, locked_until)::text FROM utilix._login_state(:ta, 'locky')),
          row(0, NULL::timestamptz)::text, 'a successful login leaves no failures and no lock');
SELECT pg_temp.login('locky', 'Wrong pw number ' || i) FROM generate_series(1, 5) i \g /dev/null
SELECT is(pg_temp.login('locky', 'Lk second pw 02'), NULL::text, 'locked again after five more failures');
SELECT lives_ok($$SELECT utilix.reset_password('locky', 'Lk reset pw 03')$$, 'reset_password unlocks with a new initial password');
-- what its commit does
SELECT utilix._login_reset(:ta, 'locky') \g /dev/null
SELECT is(pg_temp.login('locky', 'Lk second pw 02'), NULL::text, 'after reset_password the previous password no longer works');
SELECT is((SELECT status FROM pg_temp.info(pg_temp.login('locky', 'Lk reset pw 03'))), 'password change only',
          'the reset password logs in, and must be changed');
SELECT pg_temp.login('locky', 'Wrong pw number ' || i) FROM generate_series(1, 5) i \g /dev/null
-- time passes: the lockout expires (a lockout period of one second, through the counting function itself)
SELECT is(ARRAY[utilix._login_attempt(:ta, 'locky', 2, '1 second', true), utilix._login_attempt(:ta, 'locky', 2, '1 second', true)],
          ARRAY[false, false], 'while locked, no attempt may check a password (the lockout of login() still runs)');
SELECT utilix._login_reset(:ta, 'locky') \g /dev/null
SELECT is(ARRAY[utilix._login_attempt(:ta, 'locky', 2, '1 second', true), utilix._login_attempt(:ta, 'locky', 2, '1 second', true),
                utilix._login_attempt(:ta, 'locky', 2, '1 second', true)],
          ARRAY[true, true, false], 'max_failures 2: two attempts may check a password, the third finds the user locked');
SELECT pg_sleep(1.2) \g /dev/null
SELECT is(utilix._login_attempt(:ta, 'locky', 2, '1 second', true), true, 'once the lockout has run out an attempt may check again');
SELECT is((SELECT row(failures, locked_until)::text FROM utilix._login_state(:ta, 'locky')), row(1, NULL::timestamptz)::text,
          'after the lockout expired, one more failure does not lock the user again at once (a fresh count)');
SELECT pg_sleep(1.2) \g /dev/null
SELECT is((SELECT row(failures, locked_until)::text FROM utilix._login_state(:ta, 'locky')), row(0, NULL::timestamptz)::text,
          'a failure older than the lockout period is forgotten');
SELECT isnt(pg_temp.login('locky', 'Lk reset pw 03'), NULL::text, 'once the lockout has expired, the right password logs in');
SET LOCAL utilix.login_max_failures = 2;
SELECT pg_temp.login('locky', 'Wrong pw number ' || i) FROM generate_series(1, 2) i \g /dev/null
SELECT isnt((SELECT locked_until FROM utilix._login_state(:ta, 'locky')), NULL,
            'utilix.login_max_failures = 2 locks after two failures');
RESET utilix.login_max_failures;

-- ------------------------------------------------------------------ disabled, dropped, unknown
SELECT utilix.set_context(:'tok_root') \g /dev/null
SELECT lives_ok($$SELECT utilix.disable_user('twin')$$, 'disable_user');
SELECT is(pg_temp.login('twin', 'Tw second pw 02'), NULL::text, 'a disabled user gets NULL with the right password');
SELECT is(pg_temp.last_event(:ta, 'twin'), 'login / denied / disabled', '... recorded as disabled');
SELECT is((SELECT status FROM utilix.users WHERE login = 'twin'), 'disabled', 'utilix.users shows the user disabled');
SELECT lives_ok($$SELECT utilix.enable_user('twin')$$, 'enable_user');
SELECT isnt(pg_temp.login('twin', 'Tw second pw 02'), NULL::text, 'an enabled user logs in again');
SELECT is(pg_temp.login('nobody', 'Nb pw 000000001'), NULL::text, 'an unknown user gets NULL (no error)');
SELECT is(pg_temp.last_event(:ta, 'nobody'), 'login / denied / unknown user', '... recorded with the tenant');
SELECT is(pg_temp.login('root', 'Alpha second pw 02', '10.40.1.1', 'u40 nowhere'), NULL::text, 'an unknown tenant gets NULL (no error)');
SELECT is(pg_temp.last_event(NULL, 'root'), 'login / denied / unknown user', '... recorded without a tenant');
SET LOCAL ROLE u40_op;
SELECT throws_ok(format($$SELECT utilix.create_tenant_admin(%s, 'groot', 'Gone first pw 01')$$, :tg), '22023', NULL,
                 'create_tenant_admin refuses a terminated tenant');
RESET ROLE;
INSERT INTO utilix.app_user (tenant_id, login, password_hash, must_change)
    VALUES (:tg, 'ghost', utilix._hash_password('Gh user pw 0001'), false);
SELECT is(pg_temp.login('ghost', 'Gh user pw 0001', NULL, 'u40 gone'), NULL::text, 'a user of a terminated tenant gets NULL');
SELECT throws_ok($$SELECT utilix.login('u40 alpha', 'reader', NULL)$$, '22004', NULL, 'a NULL password is an error (22004), not a login');
SELECT lives_ok($$SELECT utilix.drop_user('twin')$$, 'drop_user');
SELECT is(pg_temp.login('twin', 'Tw second pw 02'), NULL::text, 'a dropped user gets NULL');
SELECT throws_ok($$SELECT utilix.drop_user('root')$$, '55000', NULL, 'an admin cannot drop itself (55000)');
SELECT throws_ok($$SELECT utilix.drop_user('twin')$$, '22023', 'user "twin" does not exist', 'dropping an unknown user: 22023');

-- an unknown user or tenant costs a full scrypt, like a wrong password
SELECT utilix.create_user('timer', 'Tm initial pw 01') \g /dev/null
SET LOCAL utilix.login_max_failures = 1000;
-- interleaved rounds, the best of each: a burst of load on a busy machine
-- then hits all three alike instead of one of them
SELECT min(w) AS ms_wrong, min(u) AS ms_user, min(t) AS ms_tenant
  FROM (SELECT pg_temp.min_login_ms('u40 alpha', 'timer', 'Tm wrong pw 01', 1) AS w,
               pg_temp.min_login_ms('u40 alpha', 'no such user', 'Tm wrong pw 01', 1) AS u,
               pg_temp.min_login_ms('u40 nowhere', 'timer', 'Tm wrong pw 01', 1) AS t
          FROM generate_series(1, 12)) r \gset
RESET utilix.login_max_failures;
SELECT cmp_ok(:ms_user::float8, '>', 0.5 * :ms_wrong::float8, format('an unknown user costs about as much as a wrong password (%s vs %s ms)', round(:ms_user::numeric, 2), round(:ms_wrong::numeric, 2)));
SELECT cmp_ok(:ms_tenant::float8, '>', 0.5 * :ms_wrong::float8, format('an unknown tenant costs about as much as a wrong password (%s vs %s ms)', round(:ms_tenant::numeric, 2), round(:ms_wrong::numeric, 2)));

-- ------------------------------------------------------------------ raising the cost rehashes at the next login
SELECT pg_temp.hash_of(:ta, 'reader') AS h10 \gset
SET LOCAL utilix.scrypt_log2n = 11;
SELECT is(pg_temp.login('reader', 'Rd wrong pw 09'), NULL::text, 'a wrong password with a raised cost: NULL');
SELECT is(pg_temp.hash_of(:ta, 'reader'), :'h10', '... and a failed login does not rehash');
SELECT isnt(pg_temp.login('reader', 'Rd second pw 02'), NULL::text, 'a hash made with ln=10 still verifies after the cost is raised to 11');
SELECT matches(pg_temp.hash_of(:ta, 'reader'), '^\$scrypt\$ln=11,r=8,p=1\$', 'the successful login rehashed the password with ln=11');
SELECT isnt(split_part(pg_temp.hash_of(:ta, 'reader'), '$', 4), split_part(:'h10', '$', 4), '... with a new salt');
SELECT pg_temp.hash_of(:ta, 'reader') AS h11 \gset
SELECT isnt(pg_temp.login('reader', 'Rd second pw 02'), NULL::text, 'the rehashed password logs in');
SELECT is(pg_temp.hash_of(:ta, 'reader'), :'h11', 'a hash made with the current parameters is not rewritten');
SET LOCAL utilix.scrypt_log2n = 10;

-- ------------------------------------------------------------------ admin networks through the API
SELECT utilix.set_context(:'tok_root') \g /dev/null
SELECT lives_ok($$SELECT utilix.allow_admin_network('198.51.100.0/24')$$, 'allow_admin_network');
SELECT is(ARRAY(SELECT network::text FROM utilix.admin_networks ORDER BY network), '{10.40.0.0/16,198.51.100.0/24}'::text[],
          'utilix.admin_networks lists the tenant''s networks');
SELECT isnt(pg_temp.login('root', 'Alpha second pw 02', '198.51.100.77'), NULL::text, 'the admin logs in from the newly allowed network');
SELECT lives_ok($$SELECT utilix.revoke_admin_network('198.51.100.0/24')$$, 'revoke_admin_network');
SELECT is(pg_temp.login('root', 'Alpha second pw 02', '198.51.100.77'), NULL::text, 'after the revocation the same login gets NULL');
SELECT throws_ok($$SELECT utilix.revoke_admin_network('198.51.100.0/24')$$, '22023', NULL, 'revoking a network that is not allowed: 22023');
SELECT isnt(pg_temp.login('reader', 'Rd second pw 02', '198.51.100.77'), NULL::text, 'a non-admin still logs in from there');

-- ------------------------------------------------------------------ the record
-- an event of tenant beta
SELECT pg_temp.login('betty', 'Betty pw 0000001', NULL, 'u40 beta') \g /dev/null
SELECT is(ARRAY(SELECT DISTINCT event FROM utilix.auth_event WHERE tenant_id = :ta ORDER BY 1),
          '{"allow admin network","change password","create tenant admin","create user","disable user","drop user","enable user","grant rights",login,"reset password","revoke admin network","revoke rights","set clearance"}'::text[],
          'every kind of login and admin action is recorded in utilix.auth_event');
SELECT is((SELECT count(*) FROM utilix.auth_event
            WHERE tenant_id = :ta AND event NOT IN ('login', 'change password', 'create tenant admin')
              AND actor IS DISTINCT FROM 'root'), 0::bigint,
          'admin actions are recorded with the acting admin');
SELECT is((SELECT count(*) FROM utilix.auth_event WHERE tenant_id = :ta AND event = 'login' AND outcome = 'denied'
              AND login = 'locky'), 20::bigint, 'each failed login of locky has its own row');
SELECT is((SELECT count(*) FROM utilix.auth_events), (SELECT count(*) FROM utilix.auth_event WHERE tenant_id = :ta),
          'utilix.auth_events shows the admin all of its tenant''s events, and only those');
SELECT is((SELECT count(*) FROM utilix.auth_event WHERE tenant_id = :ta AND (detail LIKE '%$scrypt$%' OR detail ~ 'pw 0[0-9]')),
          0::bigint, 'no auth event holds a hash or a password');

SELECT * FROM finish();
ROLLBACK;
