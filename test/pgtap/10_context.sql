-- 10_context: the signed tenant context.  Only tokens minted by
-- utilix.issue_context() verify; anything else (empty, garbled, truncated,
-- edited, expired, signed with another key, for an inactive tenant) gives 42501;
-- the setting cannot be stored in role, database or function settings; it
-- follows savepoints, RESET and clear_context(); it is never shown back; and a
-- role bound to a tenant reads that tenant without a token.
BEGIN;
SELECT plan(84);

-- ------------------------------------------------------------------ set-up
CREATE ROLE c10_issuer NOLOGIN IN ROLE utilix_issuer;
CREATE ROLE c10_app NOLOGIN;
CREATE ROLE c10_report NOLOGIN;
CREATE ROLE c10_super NOLOGIN SUPERUSER;
CREATE ROLE c10_bypass NOLOGIN BYPASSRLS;

SELECT utilix.create_tenant('c10 alpha') AS ta,
       utilix.create_tenant('c10 beta')  AS tb,
       utilix.create_tenant('c10 gamma') AS tc,
       utilix.create_tenant('c10 delta') AS td \gset
SELECT max(id) + 1000 AS t_unknown FROM utilix.tenant \gset
UPDATE utilix.tenant SET status = 'terminated', terminated_at = now() WHERE id = :td;

CREATE TABLE c10_notes (tenant_id bigint NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('c10_notes') \g /dev/null
INSERT INTO c10_notes VALUES (:ta, 1, 'a1'), (:ta, 2, 'a2'), (:tb, 1, 'b1');
GRANT SELECT ON c10_notes TO c10_app, c10_report;

-- base64url helpers (no padding), and a helper that returns an error's text
CREATE FUNCTION pg_temp.b64u_dec(s text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(rpad(translate(s, '-_', '+/'), ((length(s) + 3) / 4) * 4, '='), 'base64')
$$;
CREATE FUNCTION pg_temp.b64u_enc(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=')
$$;
-- one character of a base64url string replaced by another valid one
CREATE FUNCTION pg_temp.flip_char(s text, pos int) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT overlay(s PLACING CASE WHEN substr(s, pos, 1) = 'A' THEN 'B' ELSE 'A' END FROM pos FOR 1)
$$;
CREATE FUNCTION pg_temp.show_context() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    EXECUTE 'SHOW utilix.context' INTO v;
    RETURN v;
END
$$;
CREATE FUNCTION pg_temp.error_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    m text; d text; h text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ' ' || coalesce(m, '') || ' ' || coalesce(d, '') || ' ' || coalesce(h, '');
END
$$;

-- tokens, minted by an issuer
SET LOCAL ROLE c10_issuer;
SELECT utilix.issue_context(:ta, 'alice', '10 minutes', '{read,write}', 'secret') AS tok_a,
       utilix.issue_context(:tb, 'bob') AS tok_b,
       utilix.issue_context(:tc, 'carol') AS tok_c \gset
RESET ROLE;

-- forgeries derived from real tokens
SELECT split_part(:'tok_a', '.', 2) AS pay_a, split_part(:'tok_a', '.', 3) AS sig_a,
       split_part(:'tok_b', '.', 2) AS pay_b \gset
SELECT pg_temp.b64u_dec(:'pay_a') AS raw_a \gset
-- A's payload with the tenant (bytes 1..8 after the version byte) changed to B
SELECT overlay(:'raw_a'::bytea PLACING int8send(:tb) FROM 2 FOR 8) AS raw_ab \gset
SELECT crypto_random_key AS other_key FROM (SELECT utilix.crypto_random(32) AS crypto_random_key) s \gset
SELECT
    -- A's own payload, MAC'd under a random key
    'utx1.' || :'pay_a' || '.' ||
        pg_temp.b64u_enc(utilix.crypto_hmac(:'other_key'::bytea, convert_to('utx1.', 'UTF8') || :'raw_a'::bytea)) AS forged_same,
    -- A's payload moved to tenant B, MAC'd under a random key
    'utx1.' || pg_temp.b64u_enc(:'raw_ab'::bytea) || '.' ||
        pg_temp.b64u_enc(utilix.crypto_hmac(:'other_key'::bytea, convert_to('utx1.', 'UTF8') || :'raw_ab'::bytea)) AS forged_b,
    -- A's payload moved to tenant B, keeping A's signature
    'utx1.' || pg_temp.b64u_enc(:'raw_ab'::bytea) || '.' || :'sig_a' AS edited_tenant,
    -- one character of the payload changed
    'utx1.' || pg_temp.flip_char(:'pay_a', 12) || '.' || :'sig_a' AS edited_payload,
    -- one character of the signature changed
    'utx1.' || :'pay_a' || '.' || pg_temp.flip_char(:'sig_a', 20) AS edited_sig,
    -- B's payload with A's signature
    'utx1.' || :'pay_b' || '.' || :'sig_a' AS spliced,
    -- other prefix
    'utx2.' || :'pay_a' || '.' || :'sig_a' AS other_prefix,
    -- truncations
    left(:'tok_a', length(:'tok_a') - 1) AS trunc_sig,
    'utx1.' || :'pay_a' AS trunc_nosig,
    'utx1.' || :'pay_a' || '.' AS trunc_emptysig,
    left(:'tok_a', 30) AS trunc_payload \gset

SELECT is(pg_temp.b64u_enc(:'raw_a'::bytea), :'pay_a',
          'control: the base64url helpers round-trip a real payload (so the forgeries below are well-formed)');
SELECT is(length(:'raw_ab'::bytea), length(:'raw_a'::bytea),
          'control: the tenant-edited payload has the length of the original');

-- ------------------------------------------------------------------ no context
SET LOCAL ROLE c10_app;
SELECT throws_ok('SELECT utilix.current_tenant()', '42501', NULL, 'no context: current_tenant() raises 42501');
SELECT throws_ok('SELECT utilix.current_app_user()', '42501', NULL, 'no context: current_app_user() raises 42501');
SELECT throws_ok('SELECT count(*) FROM c10_notes', '42501', NULL, 'no context: reading a protected table raises 42501');
SELECT is((SELECT status FROM utilix.context_info()), 'none', 'no context: context_info() says none');
SELECT is((SELECT tenant FROM utilix.context_info()), NULL, 'no context: context_info() has no tenant');

-- ------------------------------------------------------------------ bad tokens
SELECT throws_ok($$SET utilix.context = 'garbage'$$, '42501', NULL, 'a garbled token is refused');
SELECT throws_ok($$SET utilix.context = 'utx1.'$$, '42501', NULL, 'a bare prefix is refused');
SELECT throws_ok($$SET utilix.context = 'utx1.!!!!.????'$$, '42501', NULL, 'a token that is not base64url is refused');
SELECT throws_ok($$SELECT utilix.set_context('')$$, '42501', NULL, 'set_context() refuses an empty token');
SELECT throws_ok($$SELECT utilix.set_context(NULL)$$, '22004', NULL, 'set_context() refuses NULL with 22004');
SELECT throws_ok(format('SET utilix.context = %L', :'trunc_sig'), '42501', NULL,
                 'a token missing the last character of its signature is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'trunc_nosig'), '42501', NULL,
                 'a token without its signature is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'trunc_emptysig'), '42501', NULL,
                 'a token with an empty signature is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'trunc_payload'), '42501', NULL,
                 'a token cut inside its payload is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'edited_payload'), '42501', NULL,
                 'a token with one payload character changed is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'edited_sig'), '42501', NULL,
                 'a token with one signature character changed is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'edited_tenant'), '42501', NULL,
                 'a token whose tenant was edited (signature kept) is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'spliced'), '42501', NULL,
                 'another token''s payload under this token''s signature is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'other_prefix'), '42501', NULL,
                 'a token with another version prefix is refused');
SELECT throws_ok(format('SET utilix.context = %L', :'forged_same'), '42501', NULL,
                 'a real payload re-signed with another key is refused');

-- a forged token for tenant B, through every way of setting the context
SELECT throws_ok(format('SET utilix.context = %L', :'forged_b'), '42501', NULL,
                 'forged token: SET is refused');
SELECT throws_ok(format('SET LOCAL utilix.context = %L', :'forged_b'), '42501', NULL,
                 'forged token: SET LOCAL is refused');
SELECT throws_ok(format('SELECT set_config(%L, %L, false)', 'utilix.context', :'forged_b'), '42501', NULL,
                 'forged token: set_config(..., false) is refused');
SELECT throws_ok(format('SELECT set_config(%L, %L, true)', 'utilix.context', :'forged_b'), '42501', NULL,
                 'forged token: set_config(..., true) is refused');
SELECT throws_ok(format('SELECT utilix.set_context(%L)', :'forged_b'), '42501', NULL,
                 'forged token: set_context() is refused');
SELECT throws_ok(format('SELECT utilix.set_context(%L, false)', :'forged_b'), '42501', NULL,
                 'forged token: set_context(..., false) is refused');
SELECT throws_ok('SELECT utilix.current_tenant()', '42501', NULL,
                 'after all refused attempts there is still no context');
SELECT ok(strpos(pg_temp.error_text(format('SET utilix.context = %L', :'edited_sig')), :'pay_a') = 0
          AND strpos(pg_temp.error_text(format('SET utilix.context = %L', :'edited_sig')), '42501') = 1,
          'the error for a bad token does not repeat the token');

-- ------------------------------------------------------------------ a valid context
SELECT is(utilix.set_context(:'tok_a'), :'ta'::bigint, 'set_context() with a real token returns its tenant');
SELECT is(utilix.current_tenant(), :'ta'::bigint, 'current_tenant() is the token''s tenant');
SELECT is(utilix.current_app_user(), 'alice', 'current_app_user() is the token''s user');
SELECT is((SELECT row(tenant, app_user, rights, clearance, bound_role, status)::text FROM utilix.context_info()),
          row(:'ta'::bigint, 'alice', '{read,write}'::text[], 'secret', false, 'valid')::text,
          'context_info() shows tenant, user, rights, clearance and status');
SELECT ok((SELECT expires_at > now() + interval '9 minutes' AND expires_at <= now() + interval '11 minutes'
                  AND issued_at <= now() + interval '1 second'
             FROM utilix.context_info()),
          'context_info() shows the issue and expiry times');
SELECT ok((SELECT strpos(i::text, :'pay_a') = 0 AND strpos(i::text, :'sig_a') = 0 FROM utilix.context_info() i),
          'context_info() never contains the token');
SELECT ok(strpos(current_setting('utilix.context'), :'sig_a') = 0
          AND strpos(current_setting('utilix.context'), :'pay_a') = 0
          AND strpos(pg_temp.show_context(), :'sig_a') = 0
          AND strpos(pg_temp.show_context(), :'pay_a') = 0,
          'SHOW / current_setting(''utilix.context'') does not print the token');
SELECT ok(NOT EXISTS (SELECT 1 FROM pg_settings WHERE setting LIKE '%' || :'sig_a' || '%'
                                                   OR reset_val LIKE '%' || :'sig_a' || '%'),
          'pg_settings does not show the token');
SELECT is((SELECT array_agg(body ORDER BY body) FROM c10_notes), '{a1,a2}'::text[],
          'with tenant A''s token only A''s rows are read');

-- savepoints
SAVEPOINT s1;
SET utilix.context = :'tok_b';
SELECT is(utilix.current_tenant(), :'tb'::bigint, 'SET inside a savepoint switches to tenant B');
ROLLBACK TO SAVEPOINT s1;
SELECT is(utilix.current_tenant(), :'ta'::bigint, 'ROLLBACK TO SAVEPOINT restores tenant A');
SAVEPOINT s2;
SELECT is(utilix.set_context(:'tok_b'), :'tb'::bigint, 'set_context() inside a savepoint switches to tenant B');
ROLLBACK TO SAVEPOINT s2;
SELECT is(utilix.current_tenant(), :'ta'::bigint, 'ROLLBACK TO SAVEPOINT undoes set_context() too');
SAVEPOINT s3;
SELECT utilix.clear_context() \g /dev/null
ROLLBACK TO SAVEPOINT s3;
SELECT is(utilix.current_tenant(), :'ta'::bigint, 'ROLLBACK TO SAVEPOINT undoes clear_context()');
SAVEPOINT s4;
SET LOCAL utilix.context = :'tok_b';
SELECT is(utilix.current_tenant(), :'tb'::bigint, 'SET LOCAL switches to tenant B');
RELEASE SAVEPOINT s4;
SELECT is(utilix.current_tenant(), :'tb'::bigint, 'SET LOCAL survives RELEASE SAVEPOINT (it lasts to the end of the transaction)');

-- RESET and clear_context
RESET utilix.context;
SELECT throws_ok('SELECT utilix.current_tenant()', '42501', NULL, 'RESET utilix.context leaves no context');
SELECT is(utilix.set_context(:'tok_a', false), :'ta'::bigint, 'set_context(..., false) sets a session context');
SELECT utilix.clear_context() \g /dev/null
SELECT throws_ok('SELECT utilix.current_tenant()', '42501', NULL, 'clear_context() leaves no context');
SELECT is((SELECT status FROM utilix.context_info()), 'none', 'after clear_context() context_info() says none');
SET utilix.context = :'tok_a';
SET utilix.context = '';
SELECT throws_ok('SELECT utilix.current_tenant()', '42501', NULL, 'setting the empty string leaves no context');

-- ------------------------------------------------------------------ expiry
RESET ROLE;
SET LOCAL ROLE c10_issuer;
SELECT utilix.issue_context(:ta, 'shorty', '2 seconds') AS tok_short \gset
RESET ROLE;
SET LOCAL ROLE c10_app;
SELECT is(utilix.set_context(:'tok_short'), :'ta'::bigint, 'a 2-second token works while it is fresh');
SELECT pg_sleep(2.2) \g /dev/null
SELECT throws_ok('SELECT utilix.current_tenant()', '42501', NULL, 'an expired token in place stops working (42501)');
SELECT throws_ok('SELECT count(*) FROM c10_notes', '42501', NULL, 'an expired token in place reads nothing (42501)');
SELECT is((SELECT status FROM utilix.context_info()), 'expired', 'context_info() says expired');
SELECT throws_ok(format('SET utilix.context = %L', :'tok_short'), '42501', NULL, 'an expired token cannot be set');
SELECT utilix.clear_context() \g /dev/null

-- ------------------------------------------------------------------ inactive tenants
SELECT is(utilix.set_context(:'tok_c'), :'tc'::bigint, 'tenant C''s token works while C is active');
RESET ROLE;
UPDATE utilix.tenant SET status = 'terminated', terminated_at = now() WHERE id = :tc;
SET LOCAL ROLE c10_app;
SELECT throws_ok('SELECT utilix.current_tenant()', '42501', NULL,
                 'a token of a tenant terminated a moment ago stops working at once (42501)');
SELECT is((SELECT status FROM utilix.context_info()), 'tenant not active', 'context_info() says tenant not active');
SELECT throws_ok(format('SELECT utilix.set_context(%L)', :'tok_c'), '42501', NULL,
                 'set_context() refuses a token of a terminated tenant');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;

-- ------------------------------------------------------------------ issuing
SET LOCAL ROLE c10_issuer;
SELECT throws_ok(format('SELECT utilix.issue_context(%s, %L)', :tc, 'x'), '55000', NULL,
                 'issue_context() refuses a terminated tenant (55000)');
SELECT throws_ok(format('SELECT utilix.issue_context(%s, %L)', :td, 'x'), '55000', NULL,
                 'issue_context() refuses a tenant terminated before any token (55000)');
SELECT throws_ok(format('SELECT utilix.issue_context(%s, %L)', :t_unknown, 'x'), '22023', NULL,
                 'issue_context() refuses an unknown tenant (22023)');
RESET ROLE;
SET LOCAL ROLE c10_app;
SELECT throws_ok(format('SELECT utilix.issue_context(%s, %L)', :ta, 'x'), '42501', NULL,
                 'a role that is not an issuer cannot mint tokens (42501)');
SELECT throws_ok(format('SELECT utilix.bind_role(%L, %s)', 'c10_app', :ta), '42501', NULL,
                 'a role that is not an operator cannot bind roles (42501)');
RESET ROLE;

-- ------------------------------------------------------------------ stored settings
SELECT throws_ok(format('ALTER ROLE c10_app SET utilix.context = %L', :'tok_a'), '42501', NULL,
                 'ALTER ROLE ... SET utilix.context is refused, even with a real token');
SELECT throws_ok(format('ALTER ROLE c10_app IN DATABASE %I SET utilix.context = %L', current_database(), :'tok_a'), '42501', NULL,
                 'ALTER ROLE ... IN DATABASE ... SET utilix.context is refused');
SELECT throws_ok(format('ALTER DATABASE %I SET utilix.context = %L', current_database(), :'tok_a'), '42501', NULL,
                 'ALTER DATABASE ... SET utilix.context is refused');
SELECT throws_ok(format('CREATE FUNCTION pg_temp.c10_f() RETURNS bigint LANGUAGE sql SET utilix.context = %L AS %L',
                        :'tok_a', 'SELECT utilix.current_tenant()'), '42501', NULL,
                 'CREATE FUNCTION ... SET utilix.context is refused');
CREATE FUNCTION pg_temp.c10_g() RETURNS bigint LANGUAGE sql AS 'SELECT 1::bigint';
SELECT throws_ok(format('ALTER FUNCTION pg_temp.c10_g() SET utilix.context = %L', :'tok_a'), '42501', NULL,
                 'ALTER FUNCTION ... SET utilix.context is refused');
SELECT is((SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE c LIKE 'utilix.context%'),
          0::bigint, 'no role or database setting of utilix.context was stored');

-- ------------------------------------------------------------------ role bindings
SELECT lives_ok(format('SELECT utilix.bind_role(%L, %s)', 'c10_report', :ta), 'an operator binds a plain role to tenant A');
SET LOCAL ROLE c10_report;
SELECT is(utilix.current_tenant(), :'ta'::bigint, 'the bound role has tenant A without a token');
SELECT is((SELECT row(tenant, bound_role, status)::text FROM utilix.context_info()),
          row(:'ta'::bigint, true, 'valid')::text, 'context_info() shows the binding');
SELECT is((SELECT array_agg(body ORDER BY body) FROM c10_notes), '{a1,a2}'::text[],
          'the bound role reads only its tenant''s rows');
SELECT throws_ok(format('SELECT utilix.set_context(%L)', :'tok_b'), '42501', NULL,
                 'the bound role cannot use a token naming another tenant');
SET utilix.context = :'tok_b';
SELECT throws_ok('SELECT count(*) FROM c10_notes', '42501', NULL,
                 'with a token of another tenant in place, the bound role reads nothing');
SELECT is((SELECT status FROM utilix.context_info()), 'conflicts with role binding',
          'context_info() says the token conflicts with the binding');
SELECT is(utilix.set_context(:'tok_a'), :'ta'::bigint, 'a token that agrees with the binding is accepted');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT throws_ok(format('SELECT utilix.bind_role(%L, %s)', 'c10_super', :ta), '42501', NULL,
                 'bind_role() refuses a superuser');
SELECT throws_ok(format('SELECT utilix.bind_role(%L, %s)', 'c10_bypass', :ta), '42501', NULL,
                 'bind_role() refuses a BYPASSRLS role');
SELECT throws_ok(format('SELECT utilix.bind_role(%L, %s)', 'c10_issuer', :ta), '42501', NULL,
                 'bind_role() refuses an issuer');
SELECT lives_ok($$SELECT utilix.unbind_role('c10_report')$$, 'an operator unbinds the role');
SET LOCAL ROLE c10_report;
SELECT throws_ok('SELECT count(*) FROM c10_notes', '42501', NULL, 'after unbind_role() the role reads nothing without a token');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
