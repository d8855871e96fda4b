-- 24_owner_attacks: the table owner that runs migrations is held by tenant
-- isolation like every role short of superuser (issue 12).  Each exploit of
-- the review is run as the weakest role that can attempt it, and each must
-- fail: DDL that evaluates the owner's expressions over tenants' rows, rows
-- planted through partitions and inheritance, the owner's code attached to a
-- protected table (triggers, defaults, constraints, policies, domains,
-- casts), trigger states and seal constraints altered, foreign keys to
-- tables outside protection, COPY FROM defaults seeing other tenants, and
-- exclusion constraints that compare the tenant column with <>.
BEGIN;
SELECT plan(102);

-- ------------------------------------------------------------------ set-up
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE ROLE o24_owner NOLOGIN;
GRANT CREATE ON SCHEMA public TO o24_owner;
CREATE ROLE o24_app NOLOGIN;
CREATE ROLE o24_issuer NOLOGIN IN ROLE utilix_issuer;
SELECT utilix.create_tenant('o24 alpha') AS ta, utilix.create_tenant('o24 beta') AS tb \gset
SET LOCAL ROLE o24_issuer;
SELECT utilix.issue_context(:ta, 'alice') AS tok_a, utilix.issue_context(:tb, 'bob') AS tok_b \gset
RESET ROLE;

-- the error a statement raises: SQLSTATE, message and detail
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
    EXECUTE q;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN st || ': ' || msg || ' | ' || coalesce(det, '');
END
$$;

SET LOCAL ROLE o24_owner;
CREATE TABLE o24_t (tenant_id bigint NOT NULL, id int NOT NULL, note text, dup text, n int,
                    PRIMARY KEY (tenant_id, id));
CREATE TABLE o24_empty (tenant_id bigint NOT NULL, id int NOT NULL, note text, PRIMARY KEY (tenant_id, id));
CREATE TABLE o24_p (tenant_id bigint NOT NULL, id int NOT NULL, ts date NOT NULL, PRIMARY KEY (tenant_id, id, ts))
    PARTITION BY RANGE (ts);
CREATE TABLE o24_p2026 PARTITION OF o24_p FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE o24_pdef PARTITION OF o24_p DEFAULT;
CREATE TABLE o24_lookup (code text PRIMARY KEY);
-- the owner's spy: whatever it is handed, it keeps
CREATE TABLE o24_loot (v text);
GRANT INSERT ON o24_loot TO PUBLIC;
CREATE FUNCTION o24_spy(v text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS
    $$BEGIN RAISE NOTICE 'spy: %', v; RETURN true; END$$;
CREATE FUNCTION o24_spy_default() RETURNS text LANGUAGE sql VOLATILE AS $$SELECT 'x'$$;
CREATE FUNCTION o24_spy_trigger() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN INSERT INTO o24_loot VALUES (NEW.note); RETURN NEW; END$$;
RESET ROLE;
SELECT utilix.protect('o24_t') \g /dev/null
SELECT utilix.protect('o24_empty') \g /dev/null
SELECT utilix.protect('o24_p') \g /dev/null
GRANT SELECT, INSERT, UPDATE, DELETE ON o24_t, o24_empty, o24_p TO o24_app;

SET LOCAL ROLE o24_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
INSERT INTO o24_t (id, note, dup, n) VALUES (1, 'alpha secret', 'same', 1), (2, 'alpha two', 'same', 2);
INSERT INTO o24_p (id, ts) VALUES (1, '2026-03-01'), (2, '2031-01-01');
SELECT utilix.set_context(:'tok_b') \g /dev/null
INSERT INTO o24_t (id, note, dup, n) VALUES (1, 'beta secret', 'x', 3);
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;

-- ------------------------------------------------------------------ 1. DDL that evaluates the owner's expressions
SET LOCAL ROLE o24_owner;
SELECT throws_ok($$CREATE INDEX o24_i1 ON o24_t ((o24_spy(note)))$$, '42501', NULL,
                 'an index over a function of the owner''s is refused while the table has rows');
SELECT throws_ok($$CREATE INDEX o24_i2 ON o24_t ((lower(note)))$$, '42501', NULL,
                 'an index over a plain expression is refused while the table has rows (its statistics would show the values)');
SELECT throws_ok($$CREATE INDEX o24_i3 ON o24_t (id) WHERE note = 'alpha secret'$$, '42501', NULL,
                 'a partial index is refused while the table has rows (its predicate is evaluated on every row)');
SELECT throws_ok($$CREATE INDEX CONCURRENTLY o24_i4 ON o24_empty ((lower(note)))$$, '42501', NULL,
                 'CREATE INDEX CONCURRENTLY with an expression is refused even on an empty table');
SELECT throws_ok($$ALTER TABLE o24_t ADD CONSTRAINT o24_c1 CHECK (o24_spy(note))$$, '42501', NULL,
                 'a CHECK constraint over the owner''s function is refused while the table has rows');
SELECT throws_ok($$ALTER TABLE o24_t ADD CONSTRAINT o24_c2 CHECK (note <> 'alpha secret')$$, '42501', NULL,
                 'a validated CHECK constraint with built-in operators is refused too (its failure is an oracle)');
SELECT lives_ok($$ALTER TABLE o24_t ADD CONSTRAINT o24_c3 CHECK (n < 100) NOT VALID$$,
                'a CHECK constraint NOT VALID of built-in code is allowed: existing rows are not evaluated');
SELECT throws_ok($$ALTER TABLE o24_t VALIDATE CONSTRAINT o24_c3$$, '42501', NULL,
                 'VALIDATE CONSTRAINT of a CHECK constraint is refused while the table has rows');
SELECT throws_ok($$ALTER TABLE o24_t ADD CONSTRAINT o24_c4 CHECK (o24_spy(note)) NOT VALID$$, '42P16', NULL,
                 'a CHECK constraint NOT VALID over the owner''s function is refused: tenants'' writes would run it');
SELECT throws_ok($$ALTER TABLE o24_t ALTER COLUMN note TYPE text USING o24_spy(note)::text$$, '42501', NULL,
                 'ALTER COLUMN ... TYPE ... USING is refused while the table has rows');
SELECT throws_ok($$ALTER TABLE o24_t ALTER COLUMN n TYPE bigint$$, '42501', NULL,
                 'ALTER COLUMN ... TYPE without USING is refused too (casts fail on, and quote, tenants'' values)');
SELECT throws_ok($$ALTER TABLE o24_t ADD COLUMN g boolean GENERATED ALWAYS AS (o24_spy(note)) STORED$$, '42501', NULL,
                 'a stored generated column is refused while the table has rows');
SELECT throws_ok($$ALTER TABLE o24_t ADD COLUMN k text CHECK (note <> 'beta secret')$$, '42501', NULL,
                 'ADD COLUMN with a CHECK constraint is refused while the table has rows (it may name other columns)');
SELECT throws_ok($$ALTER TABLE o24_t ADD CONSTRAINT o24_x EXCLUDE USING gist (tenant_id WITH =, note WITH =)$$, '42501', NULL,
                 'an exclusion constraint is refused while the table has rows');
SELECT throws_ok($$ALTER TABLE o24_t ADD COLUMN d text DEFAULT o24_spy_default()$$, '42P16', NULL,
                 'a default calling the owner''s function is refused (tenants'' inserts would run it)');
SELECT throws_ok($$CREATE STATISTICS o24_s ON (o24_spy(note)) FROM o24_t$$, '42501', NULL,
                 'extended statistics over the owner''s function are refused (ANALYZE would run it on every row)');
SELECT throws_ok($$CREATE POLICY o24_pol ON o24_t AS RESTRICTIVE USING (o24_spy(note))$$, '42P16', NULL,
                 'a policy calling the owner''s function is refused (tenants'' queries would hand it their rows)');
SELECT lives_ok($$ALTER TABLE o24_t ADD COLUMN plain_new text DEFAULT 'none'$$,
                'ADD COLUMN with a constant default is allowed on a table with rows');
SELECT lives_ok($$CREATE INDEX o24_i5 ON o24_t (tenant_id, note)$$,
                'an index on plain columns is allowed on a table with rows');
SELECT lives_ok($$REINDEX TABLE o24_t$$, 'REINDEX of the owner''s table is allowed');
SELECT is(pg_temp.err($$CREATE UNIQUE INDEX o24_u ON o24_t (tenant_id, dup)$$),
          '23505: could not create unique index "o24_u" | ',
          'a unique index that fails on a tenant''s duplicates says so without quoting the key');
SELECT is(pg_temp.err($$ALTER TABLE o24_t ALTER COLUMN plain_new SET NOT NULL, ALTER COLUMN note SET NOT NULL$$), 'no error',
          'SET NOT NULL is allowed (it reveals no value)');
-- an expression index on an empty table is allowed, and keeps no statistics
SELECT lives_ok($$CREATE INDEX o24_ie ON o24_empty ((lower(note)))$$,
                'an expression index on an empty protected table is allowed');
SELECT throws_ok($$ALTER INDEX o24_ie ALTER COLUMN 1 SET STATISTICS 100$$, '42501', NULL,
                 'the owner cannot raise the statistics target of the expression index');
RESET ROLE;
SELECT is((SELECT attstattarget::int FROM pg_attribute WHERE attrelid = 'o24_ie'::regclass AND attnum = 1), 0,
          'utilix set the statistics target of the expression column to 0');
-- (that ANALYZE then collects nothing the owner can read is in t/owner_ddl.sh:
-- it needs the index's own transaction to have ended)

-- ------------------------------------------------------------------ domains
RESET ROLE;
SET LOCAL ROLE o24_owner;
CREATE DOMAIN o24_dom AS text CHECK (VALUE <> '');
SELECT lives_ok($$ALTER TABLE o24_t ADD COLUMN dv o24_dom$$, 'a column of the owner''s domain can be added');
RESET ROLE;
SET LOCAL ROLE o24_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
UPDATE o24_t SET dv = 'beta domain value';
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL ROLE o24_owner;
SELECT throws_ok($$ALTER DOMAIN o24_dom ADD CONSTRAINT o24_dc CHECK (VALUE <> 'beta domain value')$$, '42501', NULL,
                 'ALTER DOMAIN ADD CONSTRAINT is refused while a protected table with rows has a column of it');
SELECT throws_ok($$ALTER DOMAIN o24_dom ADD CONSTRAINT o24_dc2 CHECK (o24_spy(VALUE)) NOT VALID$$, '42501', NULL,
                 'a domain constraint NOT VALID on a protected column''s domain is refused (only a superuser alters it)');
CREATE TYPE o24_kind AS ENUM ('meter', 'site');
CREATE FUNCTION o24_kind_spy(o24_kind) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$SELECT true$$;
SELECT lives_ok($$ALTER TABLE o24_t ADD COLUMN kind o24_kind$$, 'a column of the owner''s enum type can be added');
SELECT throws_ok($$CREATE CAST (o24_kind AS boolean) WITH FUNCTION o24_kind_spy(o24_kind)$$, '42P16', NULL,
                 'a cast of the owner''s from a protected column''s type is refused (any query casting the column would run it)');

-- a domain reached only through a cast in an index expression, and an enum
-- of a protected column, are frozen once tenants' rows exist: a constraint
-- added later (or a renamed label) would make REINDEX, CLUSTER or VACUUM FULL
-- fail on, and quote, tenants' values (fourth review)
CREATE DOMAIN o24_cd AS text CONSTRAINT harmless CHECK (length(VALUE) >= 0);
CREATE TABLE o24_dc (tenant_id bigint NOT NULL, id int NOT NULL, note text, PRIMARY KEY (tenant_id, id));
RESET ROLE;
SELECT utilix.protect('o24_dc') \g /dev/null
GRANT SELECT, INSERT ON o24_dc TO o24_app;
SET LOCAL ROLE o24_owner;
SELECT lives_ok($$CREATE INDEX o24_dc_i ON o24_dc (((id::text || ':' || note)::o24_cd))$$,
                'an index casting to the owner''s domain is made while the table is empty');
RESET ROLE;
SET LOCAL ROLE o24_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
INSERT INTO o24_dc (id, note) VALUES (1, 'alpha in dc');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL ROLE o24_owner;
SELECT throws_ok($$ALTER DOMAIN o24_cd ADD CONSTRAINT leak CHECK (VALUE::int > 0) NOT VALID$$, '42501', NULL,
                 'a constraint cannot be added to a domain an index of a protected table casts to');
SELECT throws_ok($$ALTER TYPE o24_kind RENAME VALUE 'site' TO 'probe'$$, '42501', NULL,
                 'an enum label of a protected column cannot be renamed');
-- REINDEX, CLUSTER, VACUUM FULL and rewrites evaluate index expressions
-- under the caller's settings (an IMMUTABLE byteaout follows bytea_output):
-- refused while such an index and rows are there (fifth review)
SET LOCAL bytea_output = escape;
SELECT throws_ok($$REINDEX TABLE o24_dc$$, '42501', NULL,
                 'REINDEX of a protected table with rows and an expression index is refused to the owner');
SELECT throws_ok($$REINDEX INDEX o24_dc_i$$, '42501', NULL, '... by index too');
SELECT throws_ok($$CLUSTER o24_dc USING o24_dc_pkey$$, '42501', NULL, '... and CLUSTER');
SELECT throws_ok($$ALTER TABLE o24_dc SET UNLOGGED$$, '42501', NULL, '... and a rewrite (SET UNLOGGED)');
SELECT throws_ok($$ALTER TABLE o24_dc ADD COLUMN r int DEFAULT (random() * 10)::int$$, '42501', NULL,
                 '... and ADD COLUMN with a computed default');
RESET bytea_output;
SELECT lives_ok($$REINDEX TABLE o24_t$$, 'REINDEX of a protected table whose indexes are on plain columns is allowed');
-- a text search configuration an index uses is frozen like a type
CREATE TEXT SEARCH CONFIGURATION o24_cfg (COPY = pg_catalog.simple);
CREATE TABLE o24_ts (tenant_id bigint NOT NULL, id int NOT NULL, note text, PRIMARY KEY (tenant_id, id));
RESET ROLE;
SELECT utilix.protect('o24_ts') \g /dev/null
SET LOCAL ROLE o24_owner;
SELECT lives_ok($$CREATE INDEX o24_ts_i ON o24_ts USING gin (to_tsvector('o24_cfg', note))$$,
                'an index over the owner''s text search configuration is made while the table is empty');
SELECT throws_ok($$ALTER TEXT SEARCH CONFIGURATION o24_cfg DROP MAPPING FOR asciiword$$, '42501', NULL,
                 'the text search configuration cannot be altered afterwards');
-- the tenant column keeps its default and its reference to utilix.tenant
SELECT throws_ok($$ALTER TABLE o24_dc ALTER COLUMN tenant_id SET DEFAULT 2$$, '42501', NULL,
                 'the tenant column''s default cannot be changed');
SELECT throws_ok($$ALTER TABLE o24_dc DROP CONSTRAINT utilix_tenant_fk$$, '42501', NULL,
                 'the tenant column''s reference to utilix.tenant cannot be dropped');

-- ------------------------------------------------------------------ 2. rows planted in another tenant
CREATE TABLE o24_stage (tenant_id bigint NOT NULL, id int NOT NULL, ts date NOT NULL);
INSERT INTO o24_stage VALUES (:tb, 99, '2028-06-01');
SELECT throws_ok($$ALTER TABLE o24_p ATTACH PARTITION o24_stage FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')$$,
                 '42501', NULL, 'ATTACH PARTITION of a table filled elsewhere with another tenant''s rows is refused');
CREATE TABLE o24_child (tenant_id bigint NOT NULL, id int NOT NULL, note text, dup text, n int);
INSERT INTO o24_child VALUES (:tb, 77, 'planted', 'p', 0);
SELECT throws_ok($$ALTER TABLE o24_child INHERIT o24_empty$$, '42501', NULL,
                 'INHERIT from a protected table by a table with rows is refused');
CREATE TABLE o24_p2027 (tenant_id bigint NOT NULL, id int NOT NULL, ts date NOT NULL);
SELECT throws_ok($$ALTER TABLE o24_p ATTACH PARTITION o24_p2027 FOR VALUES FROM ('2031-01-01') TO ('2032-01-01')$$,
                 '42501', NULL, 'ATTACH PARTITION checked against a default partition with rows is refused (the bounds are an oracle)');
SELECT throws_ok($$CREATE TABLE o24_p2031 PARTITION OF o24_p FOR VALUES FROM ('2031-01-01') TO ('2032-01-01')$$,
                 '42501', NULL, 'CREATE TABLE ... PARTITION OF checked against a default partition with rows is refused');
RESET ROLE;
SELECT is((SELECT count(*) FROM o24_p WHERE tenant_id = :tb), 0::bigint, 'no row of tenant B entered o24_p');

-- a protected table put below the owner's own, unprotected table
CREATE TABLE o24_spy_root (tenant_id bigint NOT NULL, id int NOT NULL, ts date NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE o24_detached (tenant_id bigint NOT NULL, id int NOT NULL, ts date NOT NULL, PRIMARY KEY (tenant_id, id, ts));
RESET ROLE;
SELECT utilix.protect('o24_detached') \g /dev/null
SET LOCAL ROLE o24_owner;
SELECT throws_ok($$ALTER TABLE o24_spy_root ATTACH PARTITION o24_detached FOR VALUES FROM ('2020-01-01') TO ('2030-01-01')$$,
                 '42501', NULL, 'a protected table cannot become a partition of the owner''s unprotected table');
CREATE TABLE o24_spy_parent (tenant_id bigint NOT NULL, id int NOT NULL, note text, dup text, n int);
SELECT throws_ok($$ALTER TABLE o24_t INHERIT o24_spy_parent$$, '42501', NULL,
                 'a protected table cannot inherit from the owner''s unprotected table');
SELECT throws_ok($$CREATE STATISTICS o24_st ON ((note::int)) FROM o24_t$$, '42501', NULL,
                 'extended statistics over an expression are refused (ANALYZE would quote a failing value)');
SELECT lives_ok($$CREATE STATISTICS o24_st2 ON id, n FROM o24_t$$, 'extended statistics on plain columns are allowed');
SELECT is(pg_temp.err($$CREATE UNIQUE INDEX o24_u2 ON o24_t (dup)$$) ~ '^42P16: a unique key on protected table', true,
          'a unique index not led by the tenant column is refused before it is built (42P16): no cross-tenant duplicate answer');
SELECT is(pg_temp.err($$ALTER TABLE o24_t ADD COLUMN uq int UNIQUE$$) ~ '^42P16', true,
          'ADD COLUMN ... UNIQUE (never led by the tenant column) is refused before it is built');
RESET ROLE;
SET LOCAL ROLE o24_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
INSERT INTO o24_t (id, note, dup) VALUES (6, 'long', (SELECT string_agg(md5(g::text), '') FROM generate_series(1, 400) g));
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL ROLE o24_owner;
SELECT is(pg_temp.err($$CREATE INDEX o24_big ON o24_t (tenant_id, dup)$$),
          '54000: the statement failed on a row of a protected table (SQLSTATE 54000; the message is withheld, it may describe a tenant''s value) | ',
          'a plain index whose build fails on a tenant''s long value does not say how long it is');
RESET ROLE;
SET LOCAL ROLE o24_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
DELETE FROM o24_t WHERE id = 6;
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL ROLE o24_owner;

-- a table filled elsewhere arriving in a protected schema (second review)
RESET ROLE;
CREATE SCHEMA o24_ps AUTHORIZATION o24_owner;
SELECT utilix.protect_schema('o24_ps') \g /dev/null
SET LOCAL ROLE o24_owner;
SELECT throws_ok(format('CREATE TABLE o24_ps.planted AS SELECT %s::bigint AS tenant_id, 1 AS id', :tb), '42501', NULL,
                 'CREATE TABLE AS with rows in a protected schema is refused (the rows would join a tenant unchecked)');
SELECT lives_ok($$CREATE TABLE o24_ps.empty_copy AS SELECT tenant_id, id FROM o24_stage WITH NO DATA$$,
                'CREATE TABLE AS ... WITH NO DATA in a protected schema is allowed');
SELECT throws_ok($$ALTER TABLE o24_stage SET SCHEMA o24_ps$$, '42501', NULL,
                 'a filled table cannot be moved into a protected schema');
RESET ROLE;
SELECT ok(EXISTS (SELECT 1 FROM utilix.protected_table WHERE schema_name = 'o24_ps' AND table_name = 'empty_copy'),
          '... and the table made WITH NO DATA is protected');
SET LOCAL ROLE o24_owner;
-- ------------------------------------------------------------------ 3. triggers and seal constraints
SET LOCAL ROLE o24_owner;
SELECT throws_ok($$CREATE TRIGGER a_spy BEFORE INSERT OR UPDATE ON o24_t FOR EACH ROW EXECUTE FUNCTION o24_spy_trigger()$$,
                 '42P16', NULL, 'a trigger running the owner''s function is refused');
SELECT throws_ok($$ALTER TABLE o24_t ENABLE REPLICA TRIGGER utilix_guard_tenant$$, '42501', NULL,
                 'the owner cannot switch the guard trigger to replica sessions');
SELECT throws_ok($$ALTER TABLE o24_t ENABLE ALWAYS TRIGGER utilix_rights$$, '42501', NULL,
                 'the owner cannot change how the rights trigger fires');
RESET ROLE;
DROP INDEX o24_i5;
SELECT utilix.encrypt_column('o24_t', 'note') \g /dev/null
SELECT format('utilix_sealed_%s', column_id) AS seal FROM utilix.encrypted_column WHERE table_name = 'o24_t' \gset
SET LOCAL ROLE o24_owner;
SELECT throws_ok(format('ALTER TABLE o24_t DROP CONSTRAINT %I, ADD CONSTRAINT %I CHECK (true) NOT VALID', :'seal', :'seal'),
                 '42501', NULL, 'a seal constraint dropped and re-added under its name with another check is noticed');
SELECT throws_ok($$ALTER TABLE o24_t ENABLE REPLICA TRIGGER zz_utilix_seal$$, '42501', NULL,
                 'the owner cannot switch the seal trigger to replica sessions');
-- CREATE OR REPLACE TRIGGER keeps the name but not the definition (third review)
SELECT throws_ok($q$CREATE OR REPLACE TRIGGER utilix_guard_tenant BEFORE INSERT OR UPDATE ON o24_t FOR EACH ROW EXECUTE FUNCTION utilix._guard_tenant('id')$q$,
                 '42501', NULL, 'the guard trigger cannot be replaced with another tenant column');
SELECT throws_ok($q$CREATE OR REPLACE TRIGGER utilix_rights BEFORE INSERT ON o24_t FOR EACH STATEMENT EXECUTE FUNCTION utilix._check_rights()$q$,
                 '42501', NULL, 'the rights trigger cannot be replaced with fewer events');
SELECT throws_ok($q$CREATE OR REPLACE TRIGGER zz_utilix_seal BEFORE INSERT OR UPDATE ON o24_t FOR EACH ROW WHEN (false) EXECUTE FUNCTION utilix._seal_row()$q$,
                 '42501', NULL, 'the seal trigger cannot be replaced with a WHEN that never fires');
RESET ROLE;
SELECT is((SELECT array_agg(tgenabled::text ORDER BY tgname) FROM pg_trigger
            WHERE tgrelid = 'o24_t'::regclass AND tgname IN ('utilix_guard_tenant', 'utilix_rights', 'zz_utilix_seal')),
          '{O,O,O}', 'utilix''s triggers still fire in ordinary sessions');

-- ------------------------------------------------------------------ 4. utilix's privileged code never runs the owner's code
-- the only way the owner's function could be on the table is through a
-- superuser; even a superuser cannot attach it
SELECT throws_ok($$CREATE TRIGGER a_spy BEFORE UPDATE ON o24_t FOR EACH ROW EXECUTE FUNCTION o24_spy_trigger()$$,
                 '42P16', NULL, 'a superuser cannot attach a trigger whose function a non-superuser owns either');
CREATE FUNCTION o24_reviewed() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
SELECT lives_ok($$CREATE TRIGGER a_reviewed BEFORE UPDATE ON o24_t FOR EACH ROW EXECUTE FUNCTION o24_reviewed()$$,
                'a trigger whose function a superuser owns (reviewed code) is allowed');
SELECT throws_ok($$ALTER FUNCTION o24_reviewed() OWNER TO o24_owner$$, '42P16', NULL,
                 'the reviewed function cannot be handed to the owner while a protected table runs it');
SET LOCAL ROLE o24_owner;
SELECT throws_ok($q$CREATE OR REPLACE FUNCTION o24_reviewed() RETURNS trigger LANGUAGE plpgsql AS $b$BEGIN INSERT INTO o24_loot VALUES (NEW.note); RETURN NEW; END$b$$q$,
                 '42501', NULL, 'the owner cannot rewrite the reviewed function');
RESET ROLE;
-- and utilix's privileged functions change rows as the table's owner, not as
-- a superuser: a reviewed trigger sees who runs it
CREATE TABLE o24_who (who name, sup boolean);
GRANT INSERT ON o24_who TO PUBLIC;
CREATE FUNCTION o24_whoami() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
    $$BEGIN INSERT INTO public.o24_who SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user; RETURN NEW; END$$;
CREATE TRIGGER a_whoami BEFORE UPDATE ON o24_t FOR EACH ROW EXECUTE FUNCTION o24_whoami();
SELECT lives_ok(format('SELECT utilix.rotate_tenant_key(%s)', :ta), 'an operator rotates tenant A''s key');
SELECT lives_ok(format('SELECT utilix.reencrypt(%s)', :ta), 'and re-encrypts its rows (running only reviewed code)');
SELECT is((SELECT count(*) FROM o24_loot), 0::bigint, 'nothing reached the owner''s loot table');
SELECT is((SELECT array_agg(DISTINCT who::text) FROM o24_who), ARRAY['o24_owner'],
          'reencrypt() fired the table''s triggers as its owner');
SELECT is((SELECT bool_or(sup) FROM o24_who), false, '... never as a superuser');
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'o24_owner'), 'the owner is still not a superuser');

-- superuser-owned built-ins that run SQL handed to them as text, or carry
-- values out through side effects, are no way around it (review of issue 12)
SET LOCAL ROLE o24_owner;
CREATE FUNCTION o24_pwn() RETURNS int LANGUAGE plpgsql AS $$BEGIN ALTER ROLE o24_owner SUPERUSER; RETURN 1; END$$;
CREATE SEQUENCE o24_leak_seq;
CREATE VIEW o24_pwn_view AS SELECT o24_pwn() AS x;
SELECT throws_ok($q$ALTER TABLE o24_t ADD CONSTRAINT o24_q1 CHECK (query_to_xml('select public.o24_pwn()', false, false, '') IS NOT NULL) NOT VALID$q$,
                 '42P16', NULL, 'a CHECK calling query_to_xml() with the owner''s SQL is refused');
SELECT throws_ok($q$ALTER TABLE o24_t ADD CONSTRAINT o24_q2 CHECK (table_to_xml('public.o24_pwn_view'::regclass, false, false, '') IS NOT NULL) NOT VALID$q$,
                 '42P16', NULL, 'a CHECK calling table_to_xml() over the owner''s view is refused');
SELECT throws_ok($q$CREATE TRIGGER a_when BEFORE DELETE ON o24_t FOR EACH ROW
                    WHEN (query_to_xml('select public.o24_pwn()', false, false, '') IS NULL)
                    EXECUTE FUNCTION suppress_redundant_updates_trigger()$q$,
                 '42P16', NULL, 'a trigger whose WHEN calls query_to_xml() is refused, though its function is built in');
SELECT throws_ok($q$ALTER TABLE o24_t ADD CONSTRAINT o24_q3 CHECK (setval('o24_leak_seq', ascii(dup)) > 0) NOT VALID$q$,
                 '42P16', NULL, 'a CHECK that copies values into the owner''s sequence with setval() is refused');
SELECT throws_ok($q$ALTER TABLE o24_t ADD CONSTRAINT o24_q4 CHECK ((pg_notify('o24', dup) IS NULL) OR true) NOT VALID$q$,
                 '42P16', NULL, 'a CHECK that sends values with pg_notify() is refused');
SELECT throws_ok($q$ALTER TABLE o24_t ALTER COLUMN dup SET DEFAULT query_to_xml('select public.o24_pwn()', false, false, '')::text$q$,
                 '42P16', NULL, 'a default calling query_to_xml() is refused');
SELECT throws_ok($q$CREATE POLICY o24_pol2 ON o24_t AS RESTRICTIVE USING (query_to_xml('select public.o24_pwn()', false, false, '') IS NOT NULL)$q$,
                 '42P16', NULL, 'a policy calling query_to_xml() is refused');
-- ... nor is a domain whose constraint does so, however deep or however it is reached (second review)
CREATE DOMAIN o24_hook AS text CHECK (query_to_xml('select public.o24_pwn()', false, false, '') IS NOT NULL);
CREATE DOMAIN o24_hook2 AS o24_hook;
CREATE DOMAIN o24_hook3 AS o24_hook2;
CREATE TYPE o24_pair AS (a int, b o24_hook);
SELECT throws_ok($q$ALTER TABLE o24_t ADD CONSTRAINT o24_q5 CHECK ((dup::o24_hook) IS NOT NULL) NOT VALID$q$,
                 '42P16', NULL, 'a CHECK casting to a domain whose constraint calls query_to_xml() is refused');
SELECT throws_ok($q$ALTER TABLE o24_empty ADD COLUMN h3 o24_hook3$q$,
                 '42P16', NULL, 'a column of a domain three levels above such a constraint is refused');
SELECT throws_ok($q$ALTER TABLE o24_t ADD COLUMN pr o24_pair$q$,
                 '42P16', NULL, 'a column of a composite type with such a domain attribute is refused');
SELECT throws_ok($q$ALTER TABLE o24_t ALTER COLUMN dup SET DEFAULT ('x'::o24_hook)::text$q$,
                 '42P16', NULL, 'a default casting to such a domain is refused');
SELECT throws_ok($q$CREATE POLICY o24_pol3 ON o24_t AS RESTRICTIVE USING (EXISTS (SELECT 1 FROM public.o24_pwn_view))$q$,
                 '42P16', NULL, 'a policy reading the owner''s view (which runs as the owner) is refused');
-- ... nor a domain's DEFAULT (third review)
CREATE DOMAIN o24_quiet AS text;
SELECT lives_ok($q$ALTER TABLE o24_empty ADD COLUMN qd o24_quiet$q$, 'a column of a plain domain of the owner''s is added');
SELECT throws_ok($q$ALTER DOMAIN o24_quiet SET DEFAULT (pg_notify('o24', query_to_xml('select 1', true, false, '')::text))::text$q$,
                 '42501', NULL, 'a domain default calling pg_notify()/query_to_xml() on a protected column''s domain is refused');
SELECT lives_ok($q$ALTER TABLE o24_t ADD CONSTRAINT o24_ok CHECK (n < 1000000 OR now() > '2000-01-01') NOT VALID$q$,
                'a CHECK NOT VALID of immutable built-ins and now() is allowed');
RESET ROLE;

-- ------------------------------------------------------------------ 5. foreign keys to tables outside protection
SET LOCAL ROLE o24_owner;
SELECT throws_ok($$ALTER TABLE o24_t ADD CONSTRAINT o24_fk FOREIGN KEY (dup) REFERENCES o24_lookup (code) NOT VALID$$,
                 '42P16', NULL, 'a foreign key from a protected table to an unprotected one is refused');
CREATE TABLE o24_ref (tenant_id bigint NOT NULL, id int NOT NULL, code text REFERENCES o24_lookup (code) ON DELETE CASCADE,
                      PRIMARY KEY (tenant_id, id));
RESET ROLE;
SAVEPOINT fk;
SELECT utilix.protect('o24_ref') \g /dev/null
SELECT throws_ok($$SET CONSTRAINTS utilix.utilix_check_references IMMEDIATE$$, '42P16', NULL,
                 'protect() of a table with a foreign key to an unprotected table fails when the transaction commits');
ROLLBACK TO SAVEPOINT fk;

-- ------------------------------------------------------------------ 6. COPY FROM: defaults see the caller's tenant only
-- a default cannot query at all (not immutable); a reviewed trigger can, and
-- during COPY FROM (run as the owner) it must still see one tenant only
CREATE FUNCTION o24_next_n() RETURNS int LANGUAGE sql VOLATILE AS $$SELECT count(*)::int + 1 FROM public.o24_t$$;
SELECT throws_ok($$ALTER TABLE o24_t ALTER COLUMN n SET DEFAULT o24_next_n()$$, '42P16', NULL,
                 'a default that queries the table is refused even when a superuser owns its function');
CREATE FUNCTION o24_number() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS
    $$BEGIN NEW.n := (SELECT count(*)::int + 1 FROM public.o24_t); RETURN NEW; END$$;
CREATE TRIGGER b_number BEFORE INSERT ON o24_t FOR EACH ROW EXECUTE FUNCTION o24_number();
SET LOCAL ROLE o24_app;
SELECT utilix.set_context(:'tok_b') \g /dev/null
COPY o24_t (id, note, dup) FROM STDIN;
5	copied note	copied
\.
SELECT is((SELECT n FROM o24_t WHERE id = 5), 2,
          'a reviewed trigger that counts the table during COPY FROM counts the caller''s tenant only');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is((SELECT count(*) FROM o24_t WHERE tenant_id = :tb AND id = 5), 1::bigint, 'the copied row is tenant B''s');

-- ------------------------------------------------------------------ cursors WITH HOLD under a context
CREATE FUNCTION o24_rows() RETURNS SETOF text LANGUAGE plpgsql AS $$BEGIN RETURN QUERY SELECT dup FROM public.o24_t; END$$;
SET LOCAL ROLE o24_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT throws_ok($$DECLARE o24_h CURSOR WITH HOLD FOR SELECT * FROM o24_rows()$$, '42501', NULL,
                 'a cursor WITH HOLD over a function reading a protected table is refused under a tenant context');
SELECT lives_ok($$DECLARE o24_nh CURSOR FOR SELECT * FROM o24_rows()$$, 'control: without WITH HOLD it is declared');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;

-- (session state across pooled tenants, temporary objects above all, is in
-- t/pooled_session.sh: it needs DISCARD TEMP, which would drop pgTAP's own state)

-- ------------------------------------------------------------------ 9. exclusion constraints that span tenants
CREATE TABLE o24_room (tenant_id bigint NOT NULL, room text,
                       EXCLUDE USING gist (tenant_id WITH <>, room WITH =));
SELECT throws_ok($$SELECT utilix.protect('o24_room')$$, '42P16', NULL,
                 'protect() refuses an exclusion constraint comparing the tenant column with <>');
CREATE TABLE o24_room2 (tenant_id bigint NOT NULL, room text, EXCLUDE USING gist (tenant_id WITH =, room WITH =));
SELECT lives_ok($$SELECT utilix.protect('o24_room2')$$, 'control: one comparing it with = is accepted');

SELECT * FROM finish();
ROLLBACK;
