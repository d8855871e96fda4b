-- 32_label_attacks: equality on a labelled column needs the clearance to
-- read it (issue 17).  A writer whose clearance is below a searchable
-- column's label inserts guesses and compares them with the target by every
-- route it has: utilix.=# and _bidx_eq, _bidx_hash, the armour header that
-- carries the blind index (type output, casts, decrypt(), records, json),
-- the decrypting = and its blind-index lookup, a search of the blind index
-- keyed by a stored guess (whose statistics count its equals), an index of
-- its own over copies of the ciphertext, expression indexes and unique
-- keys over the hash, grouping, sorting, plans folded under another
-- context.  Each is refused or tells nothing; a reader with the clearance
-- still compares and searches.  And a writer below the label cannot move,
-- copy or restore a value it cannot read, while it still writes plaintext,
-- leaves values unchanged, upserts, and moves rows between partitions.
-- (Interleaved sessions and real rollbacks: t/label_guessing.sh.)
BEGIN;
SELECT plan(87);

-- ------------------------------------------------------------------ set-up
CREATE ROLE l32_app NOLOGIN;
CREATE ROLE l32_issuer NOLOGIN IN ROLE utilix_issuer;
CREATE ROLE l32_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE l32_bypass NOLOGIN BYPASSRLS;
CREATE ROLE l32_report NOLOGIN;
SELECT utilix.create_tenant('l32 alpha') AS ta, utilix.create_tenant('l32 beta') AS tb \gset

-- a labelled searchable column of each plain type, a labelled column that
-- is not searchable, an unlabelled searchable one
CREATE TABLE l32_staff (
    tenant_id bigint NOT NULL,
    id        int NOT NULL,
    name      text,
    ssn       text,
    salary    text,
    email     text,
    card      bytea,
    profile   jsonb,
    PRIMARY KEY (tenant_id, id)
);
SELECT utilix.protect('l32_staff') \g /dev/null
SELECT utilix.encrypt_column('l32_staff', 'ssn', label => 'confidential', searchable => true) \g /dev/null
SELECT utilix.encrypt_column('l32_staff', 'salary', label => 'confidential') \g /dev/null
SELECT utilix.encrypt_column('l32_staff', 'email', searchable => true) \g /dev/null
SELECT utilix.encrypt_column('l32_staff', 'card', label => 'confidential', searchable => true) \g /dev/null
SELECT utilix.encrypt_column('l32_staff', 'profile', label => 'confidential', searchable => true) \g /dev/null
RESET utilix.internal_ddl;
INSERT INTO l32_staff VALUES
    (:ta, 1, 'Ann', '123-45-6789', '90000', 'ann@example.com', '\x4111', '{"risk": "high"}'),
    (:ta, 2, 'Bob', '987-65-4321', '50000', 'bob@example.com', '\x5500', '{"risk": "low"}');
-- a labelled searchable column encrypted over rows already there (encrypt_column seals them as the owner)
CREATE TABLE l32_legacy (tenant_id bigint NOT NULL, id int NOT NULL, code text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('l32_legacy') \g /dev/null
INSERT INTO l32_legacy VALUES (:ta, 1, 'alpha-7'), (:ta, 2, 'alpha-7'), (:ta, 3, 'beta-9');
SELECT utilix.encrypt_column('l32_legacy', 'code', label => 'secret', searchable => true) \g /dev/null
RESET utilix.internal_ddl;
GRANT SELECT ON l32_legacy TO l32_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON l32_staff TO l32_app, l32_report;
SELECT column_id AS ssn_col FROM utilix.encrypted_column WHERE table_name = 'l32_staff' AND column_name = 'ssn' \gset
SELECT c.oid AS ssn_idx FROM pg_class c WHERE c.relname = 'utilix_bidx_' || :ssn_col \gset

-- a partitioned table with a labelled searchable column
CREATE TABLE l32_reading (tenant_id bigint NOT NULL, id int NOT NULL, month int NOT NULL, note text, secret text,
                          PRIMARY KEY (tenant_id, id, month)) PARTITION BY LIST (month);
CREATE TABLE l32_reading_1 PARTITION OF l32_reading FOR VALUES IN (1);
CREATE TABLE l32_reading_2 PARTITION OF l32_reading FOR VALUES IN (2);
SELECT utilix.protect('l32_reading') \g /dev/null
SELECT utilix.encrypt_column('l32_reading', 'secret', label => 'confidential', searchable => true) \g /dev/null
RESET utilix.internal_ddl;
GRANT SELECT, INSERT, UPDATE, DELETE ON l32_reading TO l32_app;

SET LOCAL ROLE l32_issuer;
SELECT utilix.issue_context(:ta, 'hr', clearance => 'confidential') AS hi,
       utilix.issue_context(:ta, 'clerk', clearance => 'public') AS lo,
       utilix.issue_context(:ta, 'temp', clearance => NULL) AS none,
       utilix.issue_context(:ta, 'loader', rights => '{write}', clearance => 'secret') AS wo,
       utilix.issue_context(:tb, 'other', clearance => 'secret') AS tok_b \gset
RESET ROLE;

-- armour <-> stored bytes; the flags byte and the blind index of a sealed value
CREATE FUNCTION pg_temp.unarmour(a text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT decode(rpad(t, ((length(t) + 3) / 4) * 4, '='), 'base64')
      FROM (SELECT translate(substr(a, 7), '-_', '+/') AS t) s
$$;
CREATE FUNCTION pg_temp.flags(a text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
    SELECT get_byte(pg_temp.unarmour(a), 6)
$$;
CREATE FUNCTION pg_temp.bidx(a text) RETURNS bytea LANGUAGE sql IMMUTABLE AS $$
    SELECT substring(pg_temp.unarmour(a) FROM 28 FOR 16)
$$;
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
GRANT EXECUTE ON FUNCTION pg_temp.unarmour(text), pg_temp.flags(text), pg_temp.bidx(text) TO PUBLIC;

-- the stored values, as a superuser reads them (armour with the blind index)
SELECT ssn::text AS arm_ann, salary::text AS arm_sal_ann FROM l32_staff WHERE id = 1 \gset
SELECT ssn::text AS arm_bob, salary::text AS arm_sal_bob FROM l32_staff WHERE id = 2 \gset

-- ------------------------------------------------------------------ the attack: guesses beside the targets
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'lo') \g /dev/null
SELECT is((SELECT count(*) FROM l32_staff WHERE ssn::text LIKE 'utxe1:%'), 2::bigint,
          'a writer below the label sees the rows, and the labelled column as armour');
SELECT lives_ok(format($$INSERT INTO l32_staff (tenant_id, id, name, ssn, card, profile) VALUES
                          (%1$s, 100, 'wrong', '111-11-1111', '\x00', '{"risk": "none"}'),
                          (%1$s, 101, 'right', '123-45-6789', '\x4111', '{"risk": "high"}')$$, :ta),
                'it may still write plaintext into the labelled columns: its guesses, one right, one wrong');

-- utilix.=# and _bidx_eq
SELECT is((SELECT count(*) FROM l32_staff g JOIN l32_staff t ON t.id < 100 AND g.id >= 100
            WHERE t.ssn OPERATOR(utilix.=#) g.ssn), 0::bigint,
          '=# joining guesses with targets finds no pair (the right guess is not told apart)');
SELECT is((SELECT utilix._bidx_eq(t.ssn, g.ssn) FROM l32_staff t, l32_staff g WHERE t.id = 1 AND g.id = 101), false,
          '_bidx_eq(target, right guess) answers false below the label');
SELECT is((SELECT utilix._bidx_eq(t.ssn, t.ssn) FROM l32_staff t WHERE t.id = 1), false,
          '... as it does for a value and itself: below the label nothing compares equal');
SELECT is((SELECT count(*) FROM l32_staff g JOIN l32_staff t ON t.id < 100 AND g.id >= 100
            WHERE t.card OPERATOR(utilix.=#) g.card OR t.profile OPERATOR(utilix.=#) g.profile), 0::bigint,
          '=# on the labelled bytea and jsonb columns finds no pair either');

-- _bidx_hash
SELECT throws_ok('SELECT utilix._bidx_hash(ssn) FROM l32_staff', '42501', NULL,
                 '_bidx_hash of a labelled text value, below the label: 42501');
SELECT throws_ok('SELECT utilix._bidx_hash(card) FROM l32_staff', '42501', NULL,
                 '_bidx_hash of a labelled bytea value: 42501');
SELECT throws_ok('SELECT utilix._bidx_hash(profile) FROM l32_staff', '42501', NULL,
                 '_bidx_hash of a labelled jsonb value: 42501');

-- the armour header
SELECT is((SELECT array_agg(DISTINCT pg_temp.flags(ssn::text)) FROM l32_staff), '{7}'::int[],
          'the armour it gets is the withheld form (flags 0x07: blind index, withheld, masked) for every value of the searchable labelled column');
SELECT is((SELECT array_agg(DISTINCT pg_temp.bidx(ssn::text)) FROM l32_staff), ARRAY['\x00000000000000000000000000000000'::bytea],
          '... whose blind index is zeroes, targets and guesses alike');
SELECT is((SELECT count(DISTINCT left(ssn::text, 60)) FROM l32_staff), 1::bigint,
          'grouping by the armour header puts every value in one group (no duplicates counted)');
SELECT is((SELECT left(t.ssn::text, 60) = left(g.ssn::text, 60) FROM l32_staff t, l32_staff g WHERE t.id = 2 AND g.id = 101),
          true, 'the header of the right guess is the header of a target it does not equal: nothing to tell them apart');
SELECT is((SELECT array_agg(DISTINCT pg_temp.bidx(utilix.decrypt(ssn))) FROM l32_staff),
          ARRAY['\x00000000000000000000000000000000'::bytea], 'decrypt() (text) gives the withheld armour too');
SELECT is((SELECT bool_and(pg_temp.bidx(card::text) = '\x00000000000000000000000000000000' AND
                           pg_temp.bidx(profile::text) = '\x00000000000000000000000000000000') FROM l32_staff),
          true, 'the armour of the bytea and jsonb columns (cast to text) withholds the blind index too');
SELECT is((SELECT count(*) FROM l32_staff s WHERE row_to_json(s)::text LIKE '%' || substr(:'arm_ann', 7, 40) || '%'
                                                OR s::text LIKE '%' || substr(:'arm_ann', 7, 40) || '%'), 0::bigint,
          'records and json built from the row carry the withheld form, not the stored header');
SELECT is((SELECT count(*) FROM l32_staff WHERE pg_temp.bidx(ssn::text) = pg_temp.bidx(:'arm_ann')), 0::bigint,
          'no value it reads carries the blind index the superuser sees');
SELECT cmp_ok((SELECT octet_length(ssn::text) FROM l32_staff WHERE id = 1), '=', octet_length(:'arm_ann'),
              'the withheld armour keeps the length of the stored value (the length of a value is not hidden)');

-- the decrypting = and its blind-index lookup
SET LOCAL search_path = public, utilix;
SELECT is((SELECT count(*) FROM l32_staff WHERE ssn = '123-45-6789'), 0::bigint,
          'the decrypting = answers nothing below the label (its blind-index lookup included)');
SELECT is((SELECT count(*) FROM l32_staff WHERE ssn OPERATOR(utilix.=#) utilix._blind_probe('123-45-6789'::text, :ssn_col)),
          0::bigint, 'a probe it makes itself finds nothing: _blind_probe gives it an empty probe');
SELECT is((SELECT utilix._blind_probe('123-45-6789'::text, :ssn_col)::text), '(blind-index probe)',
          'a probe prints as a fixed text, never its blind index');
RESET search_path;
SELECT throws_ok($$SELECT 'utxe1:AAAA'::utilix.blind_probe$$, '0A000', NULL, 'a probe cannot be typed in (0A000)');
SELECT throws_ok('CREATE TEMP TABLE l32_probes (p utilix.blind_probe)', '42501', NULL,
                 'nor kept in a table of the caller''s (no USAGE on the probe type)');

-- a search of the blind index keyed by a stored guess: its statistics would count the guess's equals
SET LOCAL enable_seqscan = off;
SELECT pg_stat_get_xact_numscans(:ssn_idx) AS scans0, pg_stat_get_xact_tuples_returned(:ssn_idx) AS read0 \gset
SELECT is((SELECT count(*) FROM l32_staff WHERE ssn OPERATOR(utilix.=#) (SELECT g.ssn FROM l32_staff g WHERE g.id = 101)),
          0::bigint, '=# with the stored right guess as the key finds nothing');
SELECT is((pg_stat_get_xact_numscans(:ssn_idx) - :scans0, pg_stat_get_xact_tuples_returned(:ssn_idx) - :read0),
          (0::bigint, 0::bigint), '... and did not search the blind index (its statistics count no equals)');
RESET enable_seqscan;
RESET ROLE;
SELECT is((SELECT array_agg(format('%s,%s', amoplefttype::regtype, amoprighttype::regtype) ORDER BY amoplefttype::regtype::text)
             FROM pg_amop WHERE amopfamily IN (SELECT opcfamily FROM pg_opclass WHERE opcname LIKE 'encrypted\_%\_blind\_ops')),
          ARRAY['utilix.encrypted_bytea,utilix.blind_probe', 'utilix.encrypted_jsonb,utilix.blind_probe',
                'utilix.encrypted_text,utilix.blind_probe'],
          'the blind index''s operator families hold only (encrypted, blind_probe): it is searched with probes only');
SELECT is((SELECT array_agg(DISTINCT provolatile) FROM pg_proc WHERE oid IN
             ('utilix._bidx_eq(utilix.encrypted_text,utilix.encrypted_text)'::regprocedure,
              'utilix._bidx_hash(utilix.encrypted_text)'::regprocedure,
              'utilix._bidx_match(utilix.encrypted_text,utilix.blind_probe)'::regprocedure)),
          '{s}'::"char"[], '_bidx_eq, _bidx_hash and _bidx_match are STABLE: their answer depends on the context');

-- indexes, unique keys, partitions, grouping, sorting
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'lo') \g /dev/null
CREATE TEMP TABLE l32_copy AS SELECT id, ssn AS v FROM l32_staff;
SELECT throws_ok('CREATE INDEX ON l32_copy USING hash (v utilix.encrypted_text_blind_ops)', '42501', NULL,
                 'a hash index of its own with the blind-index operator class, over copies of the ciphertext: 42501');
SELECT throws_ok('CREATE TEMP TABLE l32_like (LIKE l32_staff INCLUDING INDEXES)', '42501', NULL,
                 'the blind index copied by CREATE TABLE ... LIKE ... INCLUDING INDEXES: 42501');
SELECT throws_ok('CREATE UNIQUE INDEX ON l32_copy ((utilix._bidx_hash(v)))', '42P17', NULL,
                 'a unique index over _bidx_hash (a 23505 oracle): refused, the function is not IMMUTABLE');
SELECT throws_ok('CREATE TEMP TABLE l32_gen (v utilix.encrypted_text, h int GENERATED ALWAYS AS (utilix._bidx_hash(v)) STORED)',
                 '42P17', NULL, 'a generated column over _bidx_hash: refused likewise');
SELECT throws_ok('CREATE TEMP TABLE l32_ex (v utilix.encrypted_text, EXCLUDE USING hash (v utilix.encrypted_text_blind_ops WITH OPERATOR(utilix.=#)))',
                 '42501', NULL, 'an exclusion constraint over the blind-index operator class: 42501');
CREATE TEMP TABLE l32_hp (v utilix.encrypted_text) PARTITION BY HASH (v utilix.encrypted_text_blind_ops);
SELECT throws_ok('CREATE TEMP TABLE l32_hp0 PARTITION OF l32_hp FOR VALUES WITH (MODULUS 2, REMAINDER 0)', '42P17', NULL,
                 'hash partitions routed by the blind index: refused (no extended hash function)');
SELECT throws_ok('SELECT count(*) FROM l32_staff GROUP BY ssn', '42883', NULL, 'GROUP BY a labelled column: 42883');
SELECT throws_ok('SELECT DISTINCT ssn FROM l32_staff', '42883', NULL, 'DISTINCT: 42883');
SELECT throws_ok('SELECT ssn FROM l32_staff ORDER BY ssn', '42883', NULL, 'ORDER BY: 42883');
SELECT throws_ok('SELECT ssn FROM l32_staff UNION SELECT ssn FROM l32_staff', '42883', NULL, 'UNION: 42883');
SELECT is((SELECT count(DISTINCT left(v::text, 60)) FROM l32_copy), 1::bigint,
          'grouping its copies by their armour header still puts every value in one group');

-- a plan made under a reader's context, run under the writer's
RESET ROLE;
SELECT utilix.set_context(:'hi') \g /dev/null
SET LOCAL ROLE l32_app;
PREPARE l32_same AS SELECT utilix._bidx_eq(:'arm_ann'::utilix.encrypted_text, :'arm_ann'::utilix.encrypted_text);
SELECT is((SELECT utilix._bidx_eq(:'arm_ann'::utilix.encrypted_text, :'arm_ann'::utilix.encrypted_text)), true,
          'the reader with clearance: _bidx_eq of a value and itself is true');
EXECUTE l32_same \g /dev/null
SELECT utilix.set_context(:'lo') \g /dev/null
CREATE TEMP TABLE l32_exec AS EXECUTE l32_same \g /dev/null
SELECT is((SELECT _bidx_eq FROM l32_exec), false,
          'the same prepared statement, planned under the reader, answers false under the writer (nothing folded)');
DEALLOCATE l32_same;

-- other contexts and roles that may not read the column
SELECT utilix.set_context(:'none') \g /dev/null
SELECT is((SELECT count(*) FROM l32_staff g JOIN l32_staff t ON t.id < 100 AND g.id >= 100
            WHERE t.ssn OPERATOR(utilix.=#) g.ssn), 0::bigint, 'a context without a clearance compares nothing either');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
CREATE TABLE l32_view_copy AS SELECT tenant_id, id, ssn FROM l32_staff;   -- made by a superuser, outside row level security
GRANT SELECT ON l32_view_copy TO l32_app, l32_op, l32_bypass;
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
SELECT is((SELECT count(*) FROM l32_view_copy a JOIN l32_view_copy b ON a.id < b.id WHERE a.ssn OPERATOR(utilix.=#) b.ssn),
          0::bigint, 'another tenant''s context (clearance secret), reading a copy outside row level security: no equal pair');
SELECT is((SELECT array_agg(DISTINCT pg_temp.flags(ssn::text)) FROM l32_view_copy), '{7}'::int[],
          '... and the withheld armour');
SELECT throws_ok('SELECT utilix._bidx_hash(ssn) FROM l32_view_copy', '42501', NULL, '... and _bidx_hash refused (42501)');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL ROLE l32_op;
SELECT is((SELECT array_agg(DISTINCT pg_temp.flags(ssn::text)) FROM l32_view_copy), '{7}'::int[],
          'an operator (not superuser, no context) reading the copy gets the withheld armour');
RESET ROLE;
SELECT utilix.bind_role('l32_report', :ta) \g /dev/null
SET LOCAL ROLE l32_report;
SELECT is((SELECT array_agg(DISTINCT pg_temp.flags(ssn::text)) FROM l32_staff), '{7}'::int[],
          'a bound role (no clearance) reads the withheld armour');
RESET ROLE;

-- roles outside row level security read the stored ciphertext whole
SELECT is((SELECT count(*) FROM l32_staff g JOIN l32_staff t ON t.id < 100 AND g.id >= 100
            WHERE t.ssn OPERATOR(utilix.=#) g.ssn), 1::bigint,
          'a superuser (which reads every ciphertext) still sees which stored values are equal (the documented leakage)');
SELECT is(pg_temp.flags(:'arm_ann'), 5, 'a superuser gets the armour with its (masked) blind index (pg_dump carries values whole)');
SET LOCAL ROLE l32_bypass;
SELECT is((SELECT pg_temp.bidx(ssn::text) = pg_temp.bidx(:'arm_ann') FROM l32_view_copy WHERE id = 1), true,
          'a BYPASSRLS role too');
RESET ROLE;

-- ------------------------------------------------------------------ the reader with clearance
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'hi') \g /dev/null
SELECT results_eq($$SELECT t.id, g.id FROM l32_staff g JOIN l32_staff t ON t.id < 100 AND g.id >= 100
                     WHERE t.ssn OPERATOR(utilix.=#) g.ssn$$, 'VALUES (1, 101)',
                  'the reader with clearance: =# pairs the equal values');
SELECT is((SELECT count(DISTINCT utilix._bidx_hash(ssn)) FROM l32_staff WHERE id IN (1, 101)), 1::bigint,
          '... _bidx_hash gives equal values one hash');
SELECT is((SELECT (ssn::text, card::bytea, profile::jsonb) FROM l32_staff WHERE id = 1),
          ('123-45-6789'::text, '\x4111'::bytea, '{"risk": "high"}'::jsonb), '... and reads the plaintext');
SET LOCAL search_path = public, utilix;
SELECT results_eq($$SELECT id FROM l32_staff WHERE ssn = '123-45-6789' ORDER BY id$$, 'VALUES (1), (101)',
                  '... the decrypting = finds both rows');
SELECT results_eq($$SELECT id FROM l32_staff WHERE card = '\x4111'::bytea ORDER BY id$$, 'VALUES (1), (101)',
                  '... on the bytea column too');
RESET search_path;
RESET ROLE;
SET LOCAL utilix.restrict_explain = off;
SET LOCAL ROLE l32_app;
SET LOCAL search_path = public, utilix;
SET LOCAL enable_seqscan = off;     -- a few rows: the planner would scan them
SELECT matches(pg_temp.plan_text($$SELECT id FROM l32_staff WHERE ssn = '123-45-6789'$$),
               'utilix_bidx_' || :ssn_col || '.*\n.*ssn =# _blind_probe', '... through the blind index (=# with a probe)');
RESET enable_seqscan;
RESET search_path;
RESET ROLE;
RESET utilix.restrict_explain;

-- ------------------------------------------------------------------ moving, copying, restoring ciphertext
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'lo') \g /dev/null
SELECT throws_ok('UPDATE l32_staff d SET ssn = s.ssn FROM l32_staff s WHERE s.id = 1 AND d.id = 2', '42501', NULL,
                 'below the label: a labelled searchable value copied into another row: 42501');
SELECT throws_ok('UPDATE l32_staff d SET salary = s.salary FROM l32_staff s WHERE s.id = 1 AND d.id = 2', '42501', NULL,
                 'a labelled value that is not searchable, copied into another row: 42501');
SELECT throws_ok($$INSERT INTO l32_staff (tenant_id, id, name, salary) SELECT tenant_id, 50, 'copy', salary FROM l32_staff WHERE id = 1$$,
                 '42501', NULL, 'INSERT ... SELECT of a labelled value into a new row: 42501');
SELECT throws_ok(format('UPDATE l32_staff SET salary = %L WHERE id = 2', :'arm_sal_ann'), '42501', NULL,
                 'the whole armour of another row''s value (an operator''s dump, say) written into a row: 42501');
CREATE TEMP TABLE l32_saved AS SELECT id, salary FROM l32_staff WHERE id = 1;
SELECT salary::text AS arm_lo_sal_ann FROM l32_staff WHERE id = 1 \gset
SELECT ssn::text AS withheld_ssn_ann FROM l32_staff WHERE id = 1 \gset
SELECT lives_ok(format('UPDATE l32_staff SET ssn = %L, name = %L WHERE id = 1', :'withheld_ssn_ann', 'Ann A.'),
                'the withheld armour written back to its own row, unchanged, with another column: accepted');
SELECT throws_ok(format('UPDATE l32_staff SET ssn = %L WHERE id = 2', :'withheld_ssn_ann'), '22000', NULL,
                 'the withheld armour written into another row: 22000');
SELECT throws_ok(format('INSERT INTO l32_staff (tenant_id, id, ssn) VALUES (%s, 51, %L)', :ta, :'withheld_ssn_ann'), '22000', NULL,
                 'the withheld armour in a new row: 22000');
SELECT lives_ok('UPDATE l32_staff SET name = name || ''.'' WHERE id IN (1, 2)',
                'an UPDATE of other columns of rows with labelled values: accepted');
SELECT lives_ok('UPDATE l32_staff SET salary = salary WHERE id = 2', '... and of the labelled column to itself');
SELECT lives_ok(format('UPDATE l32_staff SET salary = %L WHERE id = 1', :'arm_lo_sal_ann'),
                '... and its own armour written back unchanged (not searchable: the armour is whole)');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT is((SELECT (ssn::text, salary::text) FROM l32_staff WHERE id = 1), (:'arm_ann'::text, :'arm_sal_ann'::text),
          'the values written back unchanged are stored byte-identical');
SELECT utilix.set_context(:'hi') \g /dev/null
SET LOCAL ROLE l32_app;
UPDATE l32_staff SET salary = '95000', ssn = '123-45-6789' WHERE id = 1;   -- a raise (and the ssn resealed), by the reader
SELECT utilix.set_context(:'lo') \g /dev/null
SELECT throws_ok('UPDATE l32_staff d SET salary = s.salary FROM l32_saved s WHERE d.id = s.id', '42501', NULL,
                 'the old value, kept in a table of the writer''s and written back after the raise: 42501 (no restore)');
SELECT throws_ok(format('UPDATE l32_staff SET salary = %L WHERE id = 1', :'arm_lo_sal_ann'), '42501', NULL,
                 '... nor through the armour it read before the raise (42501)');
SELECT throws_ok(format('UPDATE l32_staff SET ssn = %L WHERE id = 1', :'withheld_ssn_ann'), '22000', NULL,
                 '... nor the withheld armour of a value the row no longer holds (22000)');
SELECT lives_ok($$UPDATE l32_staff SET salary = '1' WHERE id = 2$$, 'plaintext written below the label: accepted');
SELECT lives_ok(format($$INSERT INTO l32_staff (tenant_id, id, name, salary) VALUES (%s, 1, 'x', '96000')
                         ON CONFLICT (tenant_id, id) DO UPDATE SET salary = EXCLUDED.salary$$, :ta),
                'an upsert of plaintext (DO UPDATE SET salary = EXCLUDED.salary): accepted');
SELECT throws_ok(format($$INSERT INTO l32_staff (tenant_id, id, name) VALUES (%s, 2, 'x')
                          ON CONFLICT (tenant_id, id) DO UPDATE SET salary = (SELECT s.salary FROM l32_staff s WHERE s.id = 1)$$, :ta),
                 '42501', NULL, 'an upsert copying another row''s value: 42501');
SELECT utilix.set_context(:'wo') \g /dev/null
SELECT throws_ok(format('INSERT INTO l32_staff (tenant_id, id, salary) VALUES (%s, 52, %L)', :ta, :'arm_sal_bob'), '42501', NULL,
                 'a write-only context (clearance secret, no read right) writing ciphertext: 42501');
SELECT utilix.set_context(:'hi') \g /dev/null
SELECT results_eq('SELECT id, salary::text FROM l32_staff WHERE id IN (1, 2) ORDER BY id', $$VALUES (1, '96000'), (2, '1')$$,
                  'the reader with clearance reads what was written: the upsert and the plaintext');
SELECT lives_ok('UPDATE l32_staff d SET salary = s.salary FROM l32_staff s WHERE s.id = 1 AND d.id = 2',
                'the reader with clearance may copy a value it reads');
RESET ROLE;

-- rows moved between partitions by a writer below the label
SELECT utilix.set_context(:'hi') \g /dev/null
SET LOCAL ROLE l32_app;
INSERT INTO l32_reading VALUES (:ta, 1, 1, 'a', 'top secret 1'), (:ta, 2, 1, 'b', 'top secret 2');
SELECT utilix.set_context(:'lo') \g /dev/null
SELECT lives_ok('UPDATE l32_reading SET month = 2 WHERE id = 1',
                'below the label: an UPDATE that moves a row with a labelled value to another partition is accepted');
SELECT throws_ok($$WITH u AS (UPDATE l32_reading SET note = 'x' WHERE id = 2 RETURNING tenant_id, secret)
                   INSERT INTO l32_reading (tenant_id, id, month, secret) SELECT tenant_id, 3, 2, secret FROM u$$,
                 '42501', NULL, '... but a writable CTE cannot copy the value of the row it updates');
SELECT throws_ok($$WITH u AS (UPDATE l32_reading SET month = 1 WHERE id = 1 RETURNING tenant_id, secret)
                   INSERT INTO l32_reading (tenant_id, id, month, secret) SELECT tenant_id, 3, 2, secret FROM u$$,
                 '42501', NULL, '... nor the value of a row it moves');
SELECT utilix.set_context(:'hi') \g /dev/null
SELECT results_eq('SELECT tableoid::regclass::text, id, secret::text FROM l32_reading ORDER BY id',
                  $$VALUES ('l32_reading_2', 1, 'top secret 1'), ('l32_reading_1', 2, 'top secret 2')$$,
                  'the moved row keeps its value, which the reader with clearance reads');
SET LOCAL search_path = public, utilix;
SELECT results_eq($$SELECT id FROM l32_reading WHERE secret = 'top secret 1'$$, 'VALUES (1)',
                  '... and finds through the blind index of its new partition');
RESET search_path;
RESET ROLE;

-- ------------------------------------------------------------------ utilix's own maintenance
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'lo') \g /dev/null
SELECT is((SELECT count(*) FROM l32_legacy a JOIN l32_legacy b ON a.id < b.id WHERE a.code OPERATOR(utilix.=#) b.code),
          0::bigint, 'values sealed by encrypt_column() over existing rows: below the label, no equal pair');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SET LOCAL ROLE l32_issuer;
SELECT utilix.issue_context(:ta, 'boss', clearance => 'secret') AS top \gset
RESET ROLE;
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'top') \g /dev/null
SELECT results_eq($$SELECT a.id, b.id FROM l32_legacy a JOIN l32_legacy b ON a.id < b.id WHERE a.code OPERATOR(utilix.=#) b.code$$,
                  'VALUES (1, 2)', '... clearance secret: the pair of equal values');
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT ok(utilix.rotate_tenant_key(:ta) > 1, 'a key rotation of the tenant');
SELECT cmp_ok(utilix.reencrypt(:ta, 1000), '>', 0::bigint, 'reencrypt() re-seals the labelled values (as the owner)');
SELECT is(utilix.reencrypt(:ta, 1000), 0::bigint, '... until nothing is left');
SET LOCAL ROLE l32_app;
SELECT utilix.set_context(:'hi') \g /dev/null
SET LOCAL search_path = public, utilix;
SELECT results_eq($$SELECT id, ssn::text FROM l32_staff WHERE ssn = '123-45-6789' ORDER BY id$$,
                  $$VALUES (1, '123-45-6789'), (101, '123-45-6789')$$,
                  'after re-encryption the reader with clearance still reads and finds the values by the blind index');
RESET search_path;
RESET ROLE;
SELECT utilix.clear_context() \g /dev/null
SELECT lives_ok($$SELECT utilix.decrypt_column('l32_reading', 'secret')$$, 'decrypt_column() of a labelled searchable column');

SELECT * FROM finish();
ROLLBACK;
