-- 30_encryption: transparent column encryption.  text, bytea and jsonb
-- round trips (NULL, empty, 10 MB); no other tenant ever gets plaintext;
-- armour written back is checked (same tenant and column) and stored
-- unchanged; malformed armour and tampered ciphertext are refused; UPDATE
-- keeps untouched ciphertext and reseals changed values with a fresh nonce;
-- upserts seal; encrypt_column() seals existing rows, refuses bad input and
-- non-operators; labels against clearances; the blind index.
BEGIN;
SELECT plan(83);

-- ------------------------------------------------------------------ set-up
CREATE ROLE e30_app NOLOGIN;
CREATE ROLE e30_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE e30_issuer NOLOGIN IN ROLE utilix_issuer;
SELECT utilix.create_tenant('e30 alpha') AS ta, utilix.create_tenant('e30 beta') AS tb \gset

SET LOCAL ROLE e30_issuer;
SELECT utilix.issue_context(:ta, 'alice') AS tok_a,
       utilix.issue_context(:ta, 'alice-int', clearance => 'internal') AS tok_a_int,
       utilix.issue_context(:ta, 'alice-conf', clearance => 'confidential') AS tok_a_conf,
       utilix.issue_context(:ta, 'alice-sec', clearance => 'secret') AS tok_a_sec,
       utilix.issue_context(:tb, 'bob') AS tok_b \gset
RESET ROLE;

-- armour <-> stored bytes, as the brief of the armour format says:
-- "utxe1:" base64url(sealed value), no padding
CREATE FUNCTION pg_temp.unarmour(a text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(rpad(t, ((length(t) + 3) / 4) * 4, '='), 'base64')
      FROM (SELECT translate(substr(a, 7), '-_', '+/') AS t) s
$$;
CREATE FUNCTION pg_temp.armour(b bytea) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT 'utxe1:' || rtrim(translate(replace(encode(b, 'base64'), E'\n', ''), '+/', '-_'), '=')
$$;
-- the SQLSTATE, message, detail, hint and context of an error, or NULL
CREATE FUNCTION pg_temp.error_of(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; m text; d text; h text; c text;
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                            h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
    RETURN st || ': ' || m || ' | ' || coalesce(d, '') || ' | ' || coalesce(h, '') || ' | ' || coalesce(c, '');
END
$$;
-- EXPLAIN lines of a query, as one text
CREATE FUNCTION pg_temp.plan_text(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r record;
    t text := '';
BEGIN
    FOR r IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        t := t || r."QUERY PLAN" || E'\n';
    END LOOP;
    RETURN t;
END
$$;

CREATE TABLE e30_docs (
    tenant_id  bigint NOT NULL,
    id         int NOT NULL,
    name       text,
    note       text,
    body       jsonb,
    blob       bytea,
    email      text,
    classified text,
    qty        int,
    PRIMARY KEY (tenant_id, id)
);
SELECT utilix.protect('e30_docs') \g /dev/null
SELECT utilix.encrypt_column('e30_docs', 'name') \g /dev/null
SELECT utilix.encrypt_column('e30_docs', 'note') \g /dev/null
SELECT utilix.encrypt_column('e30_docs', 'body') \g /dev/null
SELECT utilix.encrypt_column('e30_docs', 'blob') \g /dev/null
SELECT utilix.encrypt_column('e30_docs', 'email', searchable => true) \g /dev/null
SELECT utilix.encrypt_column('e30_docs', 'classified', 'confidential') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON e30_docs TO e30_app;
SELECT is(current_setting('utilix.internal_ddl'), 'off',
          'after encrypt_column() returns, utilix.internal_ddl is off again (the DDL guard is not left switched off)');

SELECT is((SELECT array_agg(format_type(atttypid, atttypmod) ORDER BY attnum) FROM pg_attribute
            WHERE attrelid = 'e30_docs'::regclass AND attname IN ('name', 'body', 'blob')),
          '{utilix.encrypted_text,utilix.encrypted_jsonb,utilix.encrypted_bytea}'::text[],
          'encrypt_column() gives text, jsonb and bytea columns the encrypted types');

-- ------------------------------------------------------------------ round trips
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
INSERT INTO e30_docs (tenant_id, id, name, note, body, blob, email, classified, qty) VALUES
    (:ta, 1, 'Alice Anders', 'note one', '{"ssn": "123-45-6789", "tags": [1, 2], "n": null}',
     '\xdeadbeef00ff', 'alice@example.com', 'classified alpha', 1),
    (:ta, 2, NULL, '', NULL, '\x', NULL, NULL, 2),
    (:ta, 4, 'same', 'note four', '{}', '\x00', 'shared@example.com', NULL, 4),
    (:ta, 5, 'Tamper Plaintext 42', NULL, NULL, NULL, NULL, NULL, 5);
INSERT INTO e30_docs (tenant_id, id, name, email, qty) VALUES (:ta, 3, repeat('x', 10 * 1024 * 1024), NULL, 3);
RESET ROLE;
SELECT utilix.set_context(:'tok_b') \g /dev/null
SET LOCAL ROLE e30_app;
INSERT INTO e30_docs (tenant_id, id, name, note, body, blob, email, qty) VALUES
    (:tb, 11, 'Bob Brown', 'note b', '{"ssn": "987-65-4321"}', '\x0b0b', 'shared@example.com', 11),
    (:tb, 12, 'Bea Blue', NULL, NULL, NULL, 'bea@example.com', 12);
SELECT utilix.set_context(:'tok_a') \g /dev/null

SELECT is((SELECT name::text FROM e30_docs WHERE id = 1), 'Alice Anders', 'text: the tenant''s context reads its plaintext back');
SELECT is((SELECT blob::bytea FROM e30_docs WHERE id = 1), '\xdeadbeef00ff'::bytea, 'bytea: the tenant''s context reads its bytes back');
SELECT is((SELECT body::jsonb FROM e30_docs WHERE id = 1), '{"ssn": "123-45-6789", "tags": [1, 2], "n": null}'::jsonb,
          'jsonb: the tenant''s context reads its document back');
SELECT is((SELECT body::jsonb ->> 'ssn' FROM e30_docs WHERE id = 1), '123-45-6789', 'jsonb: operators work on the decrypted document');
SELECT is((SELECT (name IS NULL, email IS NULL, body IS NULL) FROM e30_docs WHERE id = 2), (true, true, true),
          'NULL stays NULL for the tenant''s context');
SELECT is((SELECT note::text FROM e30_docs WHERE id = 2), '', 'an empty string round-trips (and is not NULL)');
SELECT is((SELECT blob::bytea FROM e30_docs WHERE id = 2), '\x'::bytea, 'an empty bytea round-trips');
SELECT is((SELECT (length(name::text), md5(name::text)) FROM e30_docs WHERE id = 3),
          (10 * 1024 * 1024, md5(repeat('x', 10 * 1024 * 1024))), 'a 10 MB text value round-trips');

RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
-- what is stored, seen by a superuser without a context
SELECT is((SELECT (name IS NULL, body IS NULL, email IS NULL) FROM e30_docs WHERE id = 2), (true, true, true),
          'a NULL is stored as NULL (not as a sealed value)');
SELECT is((SELECT (utilix.is_sealed(note), utilix.is_sealed(blob)) FROM e30_docs WHERE id = 2), (true, true),
          'the empty string and the empty bytea are stored sealed');
SELECT is((SELECT count(*) FROM e30_docs
            WHERE NOT (utilix.is_sealed(name) AND utilix.is_sealed(note) AND utilix.is_sealed(body)
                       AND utilix.is_sealed(blob) AND utilix.is_sealed(email))),
          0::bigint, 'every non-NULL value of every encrypted column is stored sealed');
SELECT is((SELECT utilix.is_sealed(name) FROM e30_docs WHERE id = 3), true, 'the 10 MB value is stored sealed');
SELECT ok((SELECT name::text LIKE 'utxe1:%' AND blob::text LIKE 'utxe1:%' AND body::text LIKE 'utxe1:%'
             AND position('Alice' IN name::text) = 0 FROM e30_docs WHERE id = 1),
          'a superuser without a context sees armour for text, bytea and jsonb, never the plaintext');
SELECT name::text AS arm_a1, note::text AS arm_a1_note FROM e30_docs WHERE id = 1 \gset
SELECT is(pg_temp.armour(pg_temp.unarmour(:'arm_a1')), :'arm_a1', 'the test''s armour helpers decode and re-encode armour losslessly');

-- ------------------------------------------------------------------ other tenants
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT is((SELECT count(*) FROM e30_docs WHERE tenant_id = :ta), 0::bigint, 'tenant B''s context sees none of A''s rows');
RESET ROLE;
-- a copy of A's ciphertext outside row level security (made by a superuser)
SELECT utilix.clear_context() \g /dev/null
CREATE TABLE e30_copy AS SELECT tenant_id, id, name, body FROM e30_docs;
GRANT SELECT ON e30_copy TO e30_app;
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT ok((SELECT name::text LIKE 'utxe1:%' FROM e30_copy WHERE id = 1),
          'tenant B''s context reading a copy of A''s ciphertext outside row level security gets armour');
SELECT is((SELECT body::jsonb FROM e30_copy WHERE id = 1), NULL::jsonb,
          'tenant B''s context casting A''s jsonb ciphertext to jsonb gets NULL, not the document');
SET LOCAL search_path = public, utilix;
SELECT is((SELECT count(*) FROM e30_copy WHERE name = 'Alice Anders'), 0::bigint,
          'tenant B''s context cannot confirm A''s plaintext with = (no equality oracle)');
RESET search_path;
SELECT is((SELECT name::text FROM e30_copy WHERE id = 11), 'Bob Brown', 'while B''s context does read B''s own value in the copy');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT throws_ok(format('UPDATE e30_docs SET name = %L WHERE id = 11', :'arm_a1'), '22000', NULL,
                 'A''s armour planted (as a literal) into B''s row by a superuser is refused (22000)');
SELECT throws_ok(format('UPDATE e30_docs SET name = %L::text WHERE id = 11', :'arm_a1'), '22000', NULL,
                 'A''s armour planted as a text value into B''s row is refused (22000)');
SELECT throws_ok('UPDATE e30_docs d SET name = s.name FROM e30_docs s WHERE s.id = 1 AND d.id = 11', '22000', NULL,
                 'A''s stored value copied directly into B''s row is refused (22000)');
SELECT throws_ok(format('INSERT INTO e30_docs (tenant_id, id, name) VALUES (%s, 13, %L)', :tb, :'arm_a1'), '22000', NULL,
                 'a new row of tenant B carrying A''s armour is refused (22000)');

-- ------------------------------------------------------------------ armour written back
SELECT lives_ok(format('UPDATE e30_docs SET name = %L WHERE id = 1', :'arm_a1'),
                'armour written back (literal) to its own row and column is accepted');
SELECT is((SELECT name::text FROM e30_docs WHERE id = 1), :'arm_a1', '... and stored byte-identical');
PREPARE e30_wb(text) AS UPDATE e30_docs SET name = $1 WHERE id = 1;
SELECT lives_ok(format('EXECUTE e30_wb(%L)', :'arm_a1'),
                'armour written back as a text parameter to its own row and column is accepted');
SELECT is((SELECT name::text FROM e30_docs WHERE id = 1), :'arm_a1', '... and stored byte-identical');
DEALLOCATE e30_wb;
SELECT throws_ok(format('UPDATE e30_docs SET note = %L WHERE id = 1', :'arm_a1'), '22000', NULL,
                 'armour of column name moved to column note of the same row is refused (22000)');
SELECT throws_ok(format('UPDATE e30_docs SET note = %L::text WHERE id = 1', :'arm_a1'), '22000', NULL,
                 '... also as a text value (22000)');
SELECT throws_ok('UPDATE e30_docs SET note = name WHERE id = 1', '22000', NULL,
                 'a stored value copied to another encrypted column of the same row is refused (22000)');
SELECT throws_ok($$UPDATE e30_docs SET name = 'utxe1:not*base64!' WHERE id = 1$$, '22P02', NULL,
                 'malformed armour (literal) is refused (22P02)');
SELECT throws_ok($$UPDATE e30_docs SET name = 'utxe1:not*base64!'::text WHERE id = 1$$, '22P02', NULL,
                 'malformed armour (text value) is refused (22P02)');
SELECT throws_ok(format('UPDATE e30_docs SET name = %L WHERE id = 1', left(:'arm_a1', 30)), '22P02', NULL,
                 'truncated armour is refused (22P02)');

-- ------------------------------------------------------------------ tampering
SELECT name::text AS arm_a5 FROM e30_docs WHERE id = 5 \gset
SELECT pg_temp.unarmour(:'arm_a5') AS raw_a5 \gset
-- flip one bit of the last byte (ciphertext)
SELECT pg_temp.armour(set_byte(:'raw_a5'::bytea, length(:'raw_a5'::bytea) - 1,
                               get_byte(:'raw_a5'::bytea, length(:'raw_a5'::bytea) - 1) # 1)) AS arm_flipped,
-- A's value with its header edited to claim tenant B
       pg_temp.armour(overlay(:'raw_a5'::bytea PLACING int8send(:tb) FROM 8 FOR 8)) AS arm_moved \gset
-- stored through the type's input (a literal), with the seal trigger switched off
ALTER TABLE e30_docs DISABLE TRIGGER zz_utilix_seal;
UPDATE e30_docs SET name = :'arm_flipped' WHERE id = 5;
UPDATE e30_docs SET name = :'arm_moved' WHERE id = 12;
ALTER TABLE e30_docs ENABLE TRIGGER zz_utilix_seal;
SELECT isnt((SELECT name::text FROM e30_docs WHERE id = 5), :'arm_a5', 'the tampered value is stored (trigger switched off)');
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT throws_ok('SELECT name::text FROM e30_docs WHERE id = 5', 'XX001', NULL,
                 'reading a value with a flipped ciphertext bit fails with XX001 (data_corrupted)');
SELECT ok(position('Tamper' IN pg_temp.error_of('SELECT name::text FROM e30_docs WHERE id = 5')) = 0
          AND pg_temp.error_of('SELECT name::text FROM e30_docs WHERE id = 5') LIKE 'XX001%',
          'the XX001 error names no plaintext (message, detail, hint, context)');
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT throws_ok('SELECT name::text FROM e30_docs WHERE id = 12', 'XX001', NULL,
                 'A''s value whose header was edited to claim tenant B does not open for B (XX001)');
SELECT ok(position('Tamper' IN coalesce(pg_temp.error_of('SELECT name::text FROM e30_docs WHERE id = 12'), 'none')) = 0,
          '... and that error names no plaintext either');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
ALTER TABLE e30_docs DISABLE TRIGGER zz_utilix_seal;
UPDATE e30_docs SET name = :'arm_a5' WHERE id = 5;
UPDATE e30_docs SET name = NULL WHERE id = 12;
ALTER TABLE e30_docs ENABLE TRIGGER zz_utilix_seal;

-- ------------------------------------------------------------------ UPDATE
SELECT name::text AS arm_before, body::text AS body_before FROM e30_docs WHERE id = 1 \gset
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
UPDATE e30_docs SET qty = qty + 100 WHERE id = 1;
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT is((SELECT (name::text, body::text) FROM e30_docs WHERE id = 1), (:'arm_before'::text, :'body_before'::text),
          'an UPDATE of another column keeps the ciphertext byte-identical');
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
UPDATE e30_docs SET name = 'same' WHERE id = 4;
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT name::text AS arm_same1 FROM e30_docs WHERE id = 4 \gset
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
UPDATE e30_docs SET name = 'same' WHERE id = 4;
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT name::text AS arm_same2 FROM e30_docs WHERE id = 4 \gset
SELECT isnt(:'arm_same2'::text, :'arm_same1'::text, 'setting the same plaintext twice stores two different ciphertexts');
SELECT isnt(substr(encode(pg_temp.unarmour(:'arm_same2'), 'hex'), 1 + 2 * 27, 24),
            substr(encode(pg_temp.unarmour(:'arm_same1'), 'hex'), 1 + 2 * 27, 24),
            '... with different nonces (no nonce reuse)');
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT is((SELECT name::text FROM e30_docs WHERE id = 4), 'same', '... and the resealed value reads back');
UPDATE e30_docs SET note = note::text || ' (edited)' WHERE id = 4;
SELECT is((SELECT note::text FROM e30_docs WHERE id = 4), 'note four (edited)', 'an UPDATE computing from the decrypted value reseals the result');

-- ------------------------------------------------------------------ upserts
INSERT INTO e30_docs (tenant_id, id, name, body) VALUES (:ta, 1, 'Alice Upserted', '{"v": 2}')
    ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name, body = EXCLUDED.body;
INSERT INTO e30_docs (tenant_id, id, name) VALUES (:ta, 6, 'Fresh Upsert')
    ON CONFLICT (tenant_id, id) DO UPDATE SET name = EXCLUDED.name;
INSERT INTO e30_docs (tenant_id, id, name) VALUES (:ta, 6, 'ignored')
    ON CONFLICT (tenant_id, id) DO UPDATE SET note = 'literal in DO UPDATE';
SELECT is((SELECT (name::text, body::jsonb) FROM e30_docs WHERE id = 1), ('Alice Upserted'::text, '{"v": 2}'::jsonb),
          'INSERT ... ON CONFLICT DO UPDATE SET col = EXCLUDED.col: the new values decrypt right');
SELECT is((SELECT (name::text, note::text) FROM e30_docs WHERE id = 6), ('Fresh Upsert'::text, 'literal in DO UPDATE'::text),
          'upsert without conflict, then DO UPDATE with a literal: values decrypt right');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT is((SELECT bool_and(utilix.is_sealed(name) AND coalesce(utilix.is_sealed(body), true) AND coalesce(utilix.is_sealed(note), true))
             FROM e30_docs WHERE id IN (1, 6)), true, 'upserted values are stored sealed');
SELECT is((SELECT (utilix.is_sealed(name), utilix.is_sealed(note), name::text LIKE 'utxe1:%', position('Upsert' IN name::text))
             FROM e30_docs WHERE id = 6), (true, true, true, 0), '... and a superuser sees only armour for them');

-- ------------------------------------------------------------------ existing rows
CREATE TABLE e30_legacy (tenant_id bigint NOT NULL, id int NOT NULL, txt text, js jsonb, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('e30_legacy') \g /dev/null
INSERT INTO e30_legacy VALUES (:ta, 1, 'legacy one', '{"a": 1}'), (:ta, 2, 'legacy two', NULL), (:ta, 3, NULL, '[]'),
                              (:tb, 4, 'legacy four', '"x"'), (:tb, 5, 'legacy five', '{"b": [true]}');
GRANT SELECT ON e30_legacy TO e30_app;
SELECT is(utilix.encrypt_column('e30_legacy', 'txt', batch_size => 2), 4::bigint,
          'encrypt_column() on existing rows (batches of 2) returns the number of values sealed');
SELECT is(utilix.encrypt_column('e30_legacy', 'js'), 4::bigint, 'encrypt_column() of a jsonb column returns 4 as well');
SELECT is((SELECT count(*) FILTER (WHERE utilix.is_sealed(txt)) || '/' || count(txt) || ' ' ||
                  count(*) FILTER (WHERE utilix.is_sealed(js)) || '/' || count(js) FROM e30_legacy),
          '4/4 4/4', 'every existing non-NULL value is sealed in place');
SELECT is((SELECT bool_and(c.convalidated) FROM pg_constraint c
            WHERE c.conrelid = 'e30_legacy'::regclass AND c.conname LIKE 'utilix_sealed_%' AND c.contype = 'c'),
          true, 'a validated CHECK (is_sealed) guards the encrypted columns');
ALTER TABLE e30_legacy DISABLE TRIGGER zz_utilix_seal;
SELECT throws_ok(format($$INSERT INTO e30_legacy VALUES (%s, 99, 'plain while the trigger is off')$$, :ta), '23514', NULL,
                 'with the seal trigger switched off, a plaintext value is refused by the CHECK (23514)');
ALTER TABLE e30_legacy ENABLE TRIGGER zz_utilix_seal;
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT results_eq('SELECT id, txt::text, js::jsonb FROM e30_legacy ORDER BY id',
                  $$VALUES (1, 'legacy one', '{"a": 1}'::jsonb), (2, 'legacy two', NULL), (3, NULL, '[]')$$,
                  'tenant A reads its formerly plain rows back');
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT results_eq('SELECT id, txt::text FROM e30_legacy ORDER BY id',
                  $$VALUES (4, 'legacy four'), (5, 'legacy five')$$, 'tenant B reads its formerly plain rows back');
RESET ROLE;

-- ------------------------------------------------------------------ labels and clearance
SET LOCAL ROLE e30_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT is((SELECT (name::text, classified::text LIKE 'utxe1:%') FROM e30_docs WHERE id = 1), ('Alice Upserted'::text, true),
          'a context without clearance: armour for the confidential column, plaintext for the unlabelled one in the same row');
SELECT utilix.set_context(:'tok_a_int') \g /dev/null
SELECT ok((SELECT classified::text LIKE 'utxe1:%' FROM e30_docs WHERE id = 1), 'clearance internal (below confidential) sees armour');
SELECT utilix.set_context(:'tok_a_conf') \g /dev/null
SELECT is((SELECT classified::text FROM e30_docs WHERE id = 1), 'classified alpha', 'clearance confidential sees the plaintext');
SELECT utilix.set_context(:'tok_a_sec') \g /dev/null
SELECT is((SELECT (classified::text, name::text) FROM e30_docs WHERE id = 1), ('classified alpha'::text, 'Alice Upserted'::text),
          'clearance secret sees the plaintext of both columns');
SET LOCAL search_path = public, utilix;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT is((SELECT count(*) FROM e30_docs WHERE classified = 'classified alpha'), 0::bigint,
          'without clearance, = on the confidential column does not confirm its value');
RESET search_path;
RESET ROLE;

-- ------------------------------------------------------------------ encrypt_column(): bad input, privileges
CREATE TABLE e30_bad (tenant_id bigint NOT NULL, id int NOT NULL, n int, t text, idx text, PRIMARY KEY (tenant_id, id));
CREATE INDEX e30_bad_idx ON e30_bad (idx);
CREATE TABLE e30_unprot (tenant_id bigint NOT NULL, id int NOT NULL, t text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('e30_bad') \g /dev/null
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_bad', 'n')$$, '42804', NULL, 'an int column cannot be encrypted (42804)');
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_unprot', 't')$$, '55000', NULL, 'a column of an unprotected table cannot be encrypted (55000)');
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_bad', 't', 'top-secret')$$, '22023', NULL, 'an unknown label is refused (22023)');
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_bad', 'nope')$$, '42703', NULL, 'a missing column is refused (42703)');
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_docs', 'name')$$, '55000', NULL, 'an already encrypted column is refused (55000)');
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_bad', 'idx')$$, '55000', NULL, 'a column that is part of an index is refused (55000)');
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_bad', 'tenant_id')$$, '22023', NULL, 'the tenant column is refused (22023)');
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_bad', 't', batch_size => 0)$$, '22023', NULL, 'batch_size 0 is refused (22023)');
SELECT is((SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'e30_bad'::regclass AND attname = 't'),
          'text', 'after the refusals the column is still plain text');
SET LOCAL ROLE e30_app;
SELECT throws_ok($$SELECT utilix.encrypt_column('e30_bad', 't')$$, '42501', NULL, 'a non-operator cannot call encrypt_column() (42501)');
RESET ROLE;
SET LOCAL ROLE e30_op;
SELECT lives_ok($$SELECT utilix.encrypt_column('e30_bad', 't')$$, 'a utilix_operator member (not a superuser) can encrypt a column');
RESET ROLE;

-- ------------------------------------------------------------------ blind index
SELECT is((SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam
            WHERE i.indrelid = 'e30_docs'::regclass AND c.relname LIKE 'utilix\_bidx\_%' AND am.amname = 'hash'),
          1::bigint, 'searchable => true creates one hash index utilix_bidx_* (only for the searchable column)');
SET LOCAL utilix.restrict_explain = off;
SET LOCAL ROLE e30_app;
SET LOCAL search_path = public, utilix;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT matches(pg_temp.plan_text($$SELECT id FROM e30_docs WHERE email = 'shared@example.com'$$),
               '(Index Scan|Bitmap Index Scan) using utilix_bidx_|Bitmap Index Scan on utilix_bidx_|Index Scan using utilix_bidx_',
               'EXPLAIN: email = ''...'' is answered by the blind index');
SELECT results_eq($$SELECT tenant_id, id FROM e30_docs WHERE email = 'shared@example.com'$$,
                  format('VALUES (%s::bigint, 4)', :ta),
                  'the blind-index lookup returns A''s row only, though B has the same address');
SELECT results_eq($$SELECT id FROM e30_docs WHERE email = 'alice@example.com'$$, 'VALUES (1)', 'a second lookup finds the right row');
SELECT is_empty($$SELECT id FROM e30_docs WHERE email = 'bea@example.com'$$, 'A''s lookup of an address only B has finds nothing');
UPDATE e30_docs SET email = 'alice@new.example.com' WHERE id = 1;
SELECT results_eq($$SELECT (SELECT count(*) FROM e30_docs WHERE email = 'alice@example.com'),
                           (SELECT count(*) FROM e30_docs WHERE email = 'alice@new.example.com')$$,
                  $$VALUES (0::bigint, 1::bigint)$$, 'after an UPDATE the index finds the new value, not the old one');
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT results_eq($$SELECT tenant_id, id FROM e30_docs WHERE email = 'shared@example.com'$$,
                  format('VALUES (%s::bigint, 11)', :tb), 'B''s lookup of the same address returns B''s row');
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT results_eq($$SELECT id FROM e30_docs WHERE name = 'Alice Upserted'$$, 'VALUES (1)',
                  'without a blind index, = still works (by decrypting)');
SELECT doesnt_match(pg_temp.plan_text($$SELECT id FROM e30_docs WHERE name = 'Alice Upserted'$$), 'utilix_bidx_',
                    '... and its plan uses no blind index');
RESET search_path;
SELECT results_eq($$SELECT id FROM e30_docs WHERE name = 'Alice Upserted'$$, 'VALUES (1)',
                  'without utilix in search_path, = still works (through the cast to text)');
SELECT results_eq($$SELECT id FROM e30_docs WHERE email = 'shared@example.com'$$, 'VALUES (4)',
                  'without utilix in search_path, = on a searchable column still finds the row');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
