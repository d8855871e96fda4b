-- 31_encryption_keys: per-tenant data keys.  Rotation (new writes use the
-- new version, reencrypt() moves old values, the old version is retired,
-- everything still decrypts, the blind index keeps working); crypto-shredding
-- (every value of the tenant, copies included, becomes unreadable; other
-- tenants unaffected; only for a terminated tenant); the wrapped keys are
-- out of reach of tenant roles, 60 bytes, different per tenant;
-- decrypt_column() restores the plain column.
BEGIN;
SELECT plan(69);

-- ------------------------------------------------------------------ set-up
CREATE ROLE k31_app NOLOGIN;
CREATE ROLE k31_issuer NOLOGIN IN ROLE utilix_issuer;
SELECT utilix.create_tenant('k31 alpha') AS ta, utilix.create_tenant('k31 beta') AS tb,
       utilix.create_tenant('k31 gamma') AS tc \gset
SET LOCAL ROLE k31_issuer;
SELECT utilix.issue_context(:ta, 'alice') AS tok_a, utilix.issue_context(:tb, 'bob') AS tok_b,
       utilix.issue_context(:tc, 'carol') AS tok_c \gset
RESET ROLE;

CREATE FUNCTION pg_temp.key_states(tenant bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(version || ':' || state, ' ' ORDER BY version) FROM utilix.data_keys WHERE tenant_id = tenant
$$;
CREATE TABLE k31_docs (tenant_id bigint NOT NULL, id int NOT NULL, name text, email text, body jsonb,
                       PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('k31_docs') \g /dev/null
SELECT utilix.encrypt_column('k31_docs', 'name') \g /dev/null
SELECT utilix.encrypt_column('k31_docs', 'email', searchable => true) \g /dev/null
SELECT utilix.encrypt_column('k31_docs', 'body') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON k31_docs TO k31_app;
-- the key versions of tenant's values in k31_docs, as "version:count ..."
CREATE FUNCTION pg_temp.versions(tenant bigint) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(v || ':' || n, ' ' ORDER BY v) FROM (
        SELECT v, count(*) AS n FROM (
            SELECT utilix.key_version(name) AS v FROM k31_docs WHERE tenant_id = tenant AND name IS NOT NULL
            UNION ALL SELECT utilix.key_version(email) FROM k31_docs WHERE tenant_id = tenant AND email IS NOT NULL
            UNION ALL SELECT utilix.key_version(body) FROM k31_docs WHERE tenant_id = tenant AND body IS NOT NULL) x
        GROUP BY v) y
$$;
-- rows sealed by the trigger under each row's tenant (inserted by the superuser)
INSERT INTO k31_docs VALUES
    (:ta, 1, 'a-one', 'a1@example.com', '{"n": 1}'),
    (:ta, 2, 'a-two', 'a2@example.com', NULL),
    (:ta, 3, 'a-three', NULL, '{"n": 3}'),
    (:tb, 1, 'b-one', 'b1@example.com', '{"n": 11}'),
    (:tb, 2, 'b-two', 'b2@example.com', NULL),
    (:tc, 1, 'c-one', 'c1@example.com', '{"c": "gamma secret"}'),
    (:tc, 2, 'c-two', NULL, NULL);
SELECT name::text AS arm_a1_v1 FROM k31_docs WHERE tenant_id = :ta AND id = 1 \gset

-- ------------------------------------------------------------------ rotation
SELECT is(pg_temp.versions(:ta), '1:7', 'before rotation every value of A is sealed with key version 1');
SELECT is(pg_temp.key_states(:ta), '1:active', 'A has one data key version, active');
SELECT is(utilix.rotate_tenant_key(:ta), 2, 'rotate_tenant_key() returns the new version 2');
SELECT is(pg_temp.key_states(:ta), '1:retiring 2:active', 'after rotation: version 1 retiring, version 2 active');
SET LOCAL ROLE k31_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
INSERT INTO k31_docs VALUES (:ta, 4, 'a-four', 'a4@example.com', '{"n": 4}');
UPDATE k31_docs SET name = 'a-two (edited)' WHERE id = 2;
SELECT utilix.set_context(:'tok_b') \g /dev/null
INSERT INTO k31_docs VALUES (:tb, 3, 'b-three', NULL, NULL);
RESET ROLE;
SELECT is((SELECT (utilix.key_version(name), utilix.key_version(email), utilix.key_version(body))::text
             FROM k31_docs WHERE tenant_id = :ta AND id = 4), '(2,2,2)', 'a new row of A is sealed with version 2');
SELECT is((SELECT utilix.key_version(name) FROM k31_docs WHERE tenant_id = :ta AND id = 2), 2,
          'an updated value of A is resealed with version 2');
SELECT is((SELECT utilix.key_version(name) FROM k31_docs WHERE tenant_id = :tb AND id = 3), 1,
          'tenant B (not rotated) still seals with its version 1');
SET LOCAL ROLE k31_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT results_eq('SELECT id, name::text, email::text, body::jsonb FROM k31_docs ORDER BY id',
                  $$VALUES (1, 'a-one', 'a1@example.com', '{"n": 1}'::jsonb), (2, 'a-two (edited)', 'a2@example.com', NULL),
                           (3, 'a-three', NULL, '{"n": 3}'), (4, 'a-four', 'a4@example.com', '{"n": 4}')$$,
                  'between rotation and re-encryption A reads values of both versions');
RESET ROLE;
SELECT is(utilix.reencrypt(:ta, 1), 1::bigint, 'reencrypt(A, batch_size 1) reseals one value');
SELECT is(pg_temp.key_states(:ta), '1:retiring 2:active', 'after a partial batch version 1 is still retiring (values remain)');
SELECT is((SELECT wrapped IS NOT NULL FROM utilix.data_key WHERE tenant_id = :ta AND version = 1), true,
          '... and its wrapped key is kept');
SELECT cmp_ok(utilix.reencrypt(:ta), '>', 0::bigint, 'reencrypt(A) reseals the remaining old values');
SELECT is(utilix.reencrypt(:ta), 0::bigint, 'reencrypt(A) called again returns 0');
SELECT is(pg_temp.versions(:ta), '2:10', 'every value of A is now sealed with version 2');
SELECT is(pg_temp.key_states(:ta), '1:retired 2:active', 'version 1 is retired');
SELECT is((SELECT (wrapped IS NULL, retired_at IS NOT NULL)::text FROM utilix.data_key WHERE tenant_id = :ta AND version = 1),
          '(t,t)', 'the retired version''s wrapped key is gone and retired_at is set');
SELECT is(pg_temp.versions(:tb), '1:6', 'reencrypt(A) did not touch B''s values');
SET LOCAL ROLE k31_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT results_eq('SELECT id, name::text, email::text, body::jsonb FROM k31_docs ORDER BY id',
                  $$VALUES (1, 'a-one', 'a1@example.com', '{"n": 1}'::jsonb), (2, 'a-two (edited)', 'a2@example.com', NULL),
                           (3, 'a-three', NULL, '{"n": 3}'), (4, 'a-four', 'a4@example.com', '{"n": 4}')$$,
                  'after re-encryption and retirement everything of A still decrypts');
SET LOCAL search_path = public, utilix;
SELECT results_eq($$SELECT id FROM k31_docs WHERE email = 'a1@example.com'$$, 'VALUES (1)',
                  'equality on the searchable column still finds a row first sealed under version 1');
RESET search_path;
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT results_eq('SELECT id, name::text FROM k31_docs ORDER BY id', $$VALUES (1, 'b-one'), (2, 'b-two'), (3, 'b-three')$$,
                  'B''s values still decrypt');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT throws_ok(format('UPDATE k31_docs SET name = %L WHERE tenant_id = %s AND id = 3', :'arm_a1_v1', :ta), '55000', NULL,
                 'armour sealed under the retired version cannot be written back (55000)');
-- rotation for everyone: reencrypt() without a tenant
SELECT is(utilix.rotate_tenant_key(:tb), 2, 'rotate_tenant_key(B) returns 2');
SELECT is(utilix.reencrypt(), 6::bigint, 'reencrypt() with no tenant reseals B''s 6 values');
SELECT is(utilix.reencrypt(), 0::bigint, '... and then returns 0');
SELECT is(pg_temp.key_states(:tb) || ' / ' || pg_temp.versions(:tb), '1:retired 2:active / 2:6', 'B''s version 1 is retired, its values use version 2');
SELECT throws_ok('SELECT utilix.rotate_tenant_key(NULL)', '22004', NULL, 'rotate_tenant_key(NULL) is refused (22004)');
SELECT throws_ok('SELECT utilix.rotate_tenant_key(-42)', '22023', NULL, 'rotate_tenant_key() of an unknown tenant is refused (22023)');
SELECT throws_ok('SELECT utilix.reencrypt(NULL, 0)', '22023', NULL, 'reencrypt() with batch_size 0 is refused (22023)');

-- ------------------------------------------------------------------ shredding
-- a copy made earlier by a superuser keeps the ciphertext
CREATE TABLE k31_copy AS SELECT tenant_id, id, name, body FROM k31_docs;
GRANT SELECT ON k31_copy TO k31_app;
SELECT is((SELECT count(*) FROM k31_copy WHERE tenant_id = :tc AND utilix.is_sealed(name)), 2::bigint,
          'the copy holds C''s ciphertext');
SELECT name::text AS arm_c1 FROM k31_docs WHERE tenant_id = :tc AND id = 1 \gset
SELECT throws_ok(format('SELECT utilix.shred_tenant_keys(%s)', :tc), '55000', NULL, 'the keys of an active tenant cannot be shredded (55000)');
SELECT throws_ok('SELECT utilix.shred_tenant_keys(NULL)', '22004', NULL, 'shred_tenant_keys(NULL) is refused (22004)');
SELECT throws_ok('SELECT utilix.shred_tenant_keys(-42)', '22023', NULL, 'shred_tenant_keys() of an unknown tenant is refused (22023)');
UPDATE utilix.tenant SET status = 'terminated', terminated_at = now() WHERE id = :tc;
SELECT is((SELECT utilix._plain(name) FROM k31_docs WHERE tenant_id = :tc AND id = 1), 'c-one',
          'before shredding, a terminated tenant''s values can still be decrypted (export)');
SELECT is(utilix.shred_tenant_keys(:tc), 2, 'shred_tenant_keys(C) destroys 2 keys (blind-index root and version 1)');
SELECT is((SELECT string_agg(version || ':' || state || ':' || (wrapped IS NULL) || ':' || (destroyed_at IS NOT NULL), ' ' ORDER BY version)
             FROM utilix.data_key WHERE tenant_id = :tc), '0:destroyed:true:true 1:destroyed:true:true',
          'every key of C is destroyed, no wrapped key left');
SELECT throws_ok(format('SELECT utilix._plain(name) FROM k31_docs WHERE tenant_id = %s AND id = 1', :tc), '55000', NULL,
                 'after shredding, C''s text value cannot be decrypted (55000)');
SELECT throws_ok(format('SELECT utilix._plain(body) FROM k31_docs WHERE tenant_id = %s AND id = 1', :tc), '55000', NULL,
                 'after shredding, C''s jsonb value cannot be decrypted (55000)');
SELECT is((SELECT count(*) FROM k31_docs WHERE tenant_id = :tc
            AND name::text LIKE 'utxe1:%' AND coalesce(email::text LIKE 'utxe1:%', true)), 2::bigint,
          'C''s values read as armour');
SELECT is((SELECT name::text FROM k31_docs WHERE tenant_id = :tc AND id = 1), :'arm_c1'::text,
          '... the same ciphertext as before (shredding does not rewrite the table)');
SELECT throws_ok(format('SELECT utilix._plain(name) FROM k31_copy WHERE tenant_id = %s', :tc), '55000', NULL,
                 'the copy made before shredding cannot be decrypted either (55000)');
SELECT throws_ok(format('SELECT utilix._plain(body) FROM k31_copy WHERE tenant_id = %s AND id = 1', :tc), '55000', NULL,
                 '... nor its jsonb value (55000)');
SET LOCAL ROLE k31_app;
SELECT throws_ok(format('SELECT utilix.set_context(%L)', :'tok_c'), '42501', NULL,
                 'C''s context no longer works (tenant terminated, 42501)');
RESET ROLE;
-- even with the tenant switched back to active by hand, its own context gets no plaintext: the keys are gone
UPDATE utilix.tenant SET status = 'active', terminated_at = NULL WHERE id = :tc;
SET LOCAL ROLE k31_app;
SELECT utilix.set_context(:'tok_c') \g /dev/null
SELECT is((SELECT count(*) FROM k31_docs WHERE name::text LIKE 'utxe1:%'), 2::bigint,
          'C''s own context (tenant re-activated by hand) reads only armour');
SELECT is((SELECT count(*) FROM k31_copy WHERE tenant_id = :tc AND position('gamma' IN coalesce(body::text, '')) > 0), 0::bigint,
          '... also from the copy');
SELECT throws_ok(format($$INSERT INTO k31_docs VALUES (%s, 9, 'c-new')$$, :tc), '55000', NULL,
                 'no new value can be sealed for C: no key is re-created (55000)');
RESET ROLE;
UPDATE utilix.tenant SET status = 'terminated', terminated_at = now() WHERE id = :tc;
SELECT utilix.clear_context() \g /dev/null
SELECT is((SELECT string_agg(utilix._plain(name), ',' ORDER BY tenant_id, id) FROM k31_docs WHERE tenant_id IN (:ta, :tb)),
          'a-one,a-two (edited),a-three,a-four,b-one,b-two,b-three', 'A''s and B''s values still decrypt after C was shredded');
SET LOCAL ROLE k31_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT results_eq('SELECT name::text FROM k31_docs WHERE id = 1', $$VALUES ('a-one')$$, 'A''s context still reads its plaintext');
RESET ROLE;

-- ------------------------------------------------------------------ keys out of reach
SET LOCAL ROLE k31_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT throws_ok('SELECT * FROM utilix.data_key', '42501', NULL, 'a tenant role cannot read utilix.data_key (42501)');
SELECT throws_ok('SELECT * FROM utilix.data_keys', '42501', NULL, 'a tenant role cannot read utilix.data_keys (42501)');
SELECT throws_ok('SELECT * FROM utilix.encrypted_column', '42501', NULL, 'a tenant role cannot read utilix.encrypted_column (42501)');
SELECT throws_ok('SELECT utilix._plain(name) FROM k31_docs', '42501', NULL, 'a tenant role cannot call utilix._plain() (42501)');
SELECT throws_ok(format('SELECT utilix.rotate_tenant_key(%s)', :ta), '42501', NULL, 'a tenant role cannot rotate keys (42501)');
SELECT throws_ok(format('SELECT utilix.shred_tenant_keys(%s)', :tb), '42501', NULL, 'a tenant role cannot shred keys (42501)');
SELECT throws_ok('SELECT utilix.reencrypt()', '42501', NULL, 'a tenant role cannot call reencrypt() (42501)');
RESET ROLE;
SELECT is((SELECT count(*) FROM utilix.data_key WHERE tenant_id IN (:ta, :tb) AND wrapped IS NOT NULL AND length(wrapped) <> 60),
          0::bigint, 'every wrapped key is 60 bytes (nonce 12, key 32, tag 16)');
SELECT is((SELECT count(*) FROM utilix.data_key WHERE tenant_id IN (:ta, :tb) AND wrapped IS NOT NULL), 4::bigint,
          'A and B each hold 2 wrapped keys (blind-index root and the active version)');
SELECT is((SELECT count(DISTINCT wrapped) FROM utilix.data_key WHERE wrapped IS NOT NULL),
          (SELECT count(*) FROM utilix.data_key WHERE wrapped IS NOT NULL), 'no two wrapped keys are equal');
SELECT isnt((SELECT wrapped FROM utilix.data_key WHERE tenant_id = :ta AND version = 0),
            (SELECT wrapped FROM utilix.data_key WHERE tenant_id = :tb AND version = 0), 'A''s and B''s blind-index roots differ');
SELECT hasnt_column('utilix', 'data_keys', 'wrapped', 'the operators'' view utilix.data_keys shows no key material');

-- ------------------------------------------------------------------ decrypt_column()
SELECT throws_ok($$SELECT utilix.decrypt_column('k31_docs', 'name')$$, '55000', NULL,
                 'decrypt_column() refuses while values of a shredded tenant remain (55000), changing nothing');
CREATE TABLE k31_dec (tenant_id bigint NOT NULL, id int NOT NULL, secret text, doc jsonb, raw bytea, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('k31_dec') \g /dev/null
INSERT INTO k31_dec VALUES (:ta, 1, 'dec a1', '{"a": 1}', '\x01'), (:ta, 2, NULL, NULL, NULL), (:tb, 3, 'dec b3', '[3]', '\x0303');
SELECT utilix.encrypt_column('k31_dec', 'secret', searchable => true) \g /dev/null
SELECT utilix.encrypt_column('k31_dec', 'doc', 'secret') \g /dev/null
SELECT utilix.encrypt_column('k31_dec', 'raw') \g /dev/null
SELECT is((SELECT count(*) FROM k31_dec WHERE utilix.is_sealed(secret) AND utilix.is_sealed(doc) AND utilix.is_sealed(raw)),
          2::bigint, 'k31_dec is encrypted');
SET LOCAL ROLE k31_app;
SELECT throws_ok($$SELECT utilix.decrypt_column('k31_dec', 'secret')$$, '42501', NULL, 'a non-operator cannot call decrypt_column() (42501)');
RESET ROLE;
SELECT lives_ok($$SELECT utilix.decrypt_column('k31_dec', 'secret'); SELECT utilix.decrypt_column('k31_dec', 'doc');
                  SELECT utilix.decrypt_column('k31_dec', 'raw')$$, 'decrypt_column() of text, jsonb and bytea columns');
SELECT is(current_setting('utilix.internal_ddl'), 'off', 'after decrypt_column() returns, utilix.internal_ddl is off again');
SELECT is((SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = 'k31_dec'::regclass AND attname IN ('secret', 'doc', 'raw')),
          '{text,jsonb,bytea}'::text[], 'the columns have their plain types again');
SELECT results_eq('SELECT tenant_id, id, secret, doc, raw FROM k31_dec ORDER BY id',
                  format($$VALUES (%s::bigint, 1, 'dec a1', '{"a": 1}'::jsonb, '\x01'::bytea), (%s, 2, NULL, NULL, NULL),
                                 (%s, 3, 'dec b3', '[3]', '\x0303')$$, :ta, :ta, :tb),
                  'the plaintext of every tenant is back, NULLs stay NULL');
SELECT is((SELECT count(*) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
            WHERE i.indrelid = 'k31_dec'::regclass AND c.relname LIKE 'utilix\_bidx\_%')
          + (SELECT count(*) FROM pg_constraint WHERE conrelid = 'k31_dec'::regclass AND conname LIKE 'utilix\_sealed\_%')
          + (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'k31_dec'::regclass AND tgname = 'zz_utilix_seal')
          + (SELECT count(*) FROM utilix.encrypted_column WHERE relid = 'k31_dec'::regclass),
          0::bigint, 'the blind index, the CHECK, the seal trigger and the catalog entries are gone');
INSERT INTO k31_dec VALUES (:ta, 4, 'plain again', NULL, NULL);
SELECT is((SELECT secret FROM k31_dec WHERE id = 4), 'plain again', 'new rows are stored in plaintext');
SELECT throws_ok($$SELECT utilix.decrypt_column('k31_dec', 'secret')$$, '22023', NULL, 'decrypt_column() of a plain column is refused (22023)');

SELECT * FROM finish();
ROLLBACK;
