-- 61_access_log_attacks: attribution and completeness of the access log
-- under attack.  Every access of protected rows is filed under the tenant
-- whose context was in force when it happened, also when a statement sets,
-- switches or clears its context part-way (in a function after a caught
-- refusal, in a nested function, in a trigger, in a loop, with SET LOCAL in
-- a DO block, with RESET); a context that does not verify here (a tenant
-- that is not active) never files under a tenant; no FETCH goes unrecorded
-- however many cursors are open.  The cross-database token (a realm of
-- another database) is test/t/access_log_attribution.sh.
--
-- Same conventions as 60_access_log.sql: one transaction, rolled back;
-- records are selected by id > a mark taken (after a flush) before each
-- attack, and by the database role of the attacker, created here.
SELECT utilix.run_access_log_maintenance() \g /dev/null
BEGIN;
SELECT plan(26);
SET LOCAL client_min_messages = error;

CREATE ROLE a61_app NOLOGIN;
CREATE ROLE a61_bypass NOLOGIN BYPASSRLS;
CREATE ROLE a61_issuer NOLOGIN IN ROLE utilix_issuer;
CREATE ROLE a61_su NOLOGIN SUPERUSER;
SELECT utilix.create_tenant('a61 alpha') AS ta, utilix.create_tenant('a61 beta') AS tb,
       utilix.create_tenant('a61 gone') AS tc \gset
SET LOCAL ROLE a61_issuer;
SELECT utilix.issue_context(:ta, 'alpha-61', rights => '{read,write}') AS tok_a,
       utilix.issue_context(:tb, 'beta-61', rights => '{read,write}') AS tok_b,
       utilix.issue_context(:tc, 'gone-61', rights => '{read,write}') AS tok_c \gset
RESET ROLE;

CREATE TABLE a61_t (tenant_id bigint NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
SELECT utilix.protect('a61_t') \g /dev/null
RESET utilix.internal_ddl;
INSERT INTO a61_t SELECT :ta, g, 'a' || g FROM generate_series(1, 5) g;
INSERT INTO a61_t SELECT :tb, g, 'b' || g FROM generate_series(1, 3) g;
INSERT INTO a61_t SELECT :tc, g, 'c' || g FROM generate_series(1, 2) g;
GRANT SELECT ON a61_t TO a61_app, a61_bypass;
-- not protected: tokens to loop over, and a table whose trigger sets a context
CREATE TABLE a61_tok (n int, tok text);
INSERT INTO a61_tok VALUES (1, :'tok_a'), (2, :'tok_b');
CREATE TABLE a61_side (tok text);
GRANT SELECT ON a61_tok TO a61_app;
GRANT INSERT ON a61_side TO a61_app;
GRANT CREATE ON SCHEMA public TO a61_app;   -- (a materialized view)

-- the attacks (SECURITY INVOKER: they run with the rights of a61_app)
CREATE FUNCTION a61_try_without() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM a61_t;
EXCEPTION WHEN insufficient_privilege THEN NULL;
END $$;
CREATE FUNCTION a61_switch(tok text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('utilix.context', tok, true);
END $$;
-- (a) refused without a context, caught, then a context and a read
CREATE FUNCTION a61_sneak(tok text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM a61_try_without();
    PERFORM set_config('utilix.context', tok, true);
    RETURN (SELECT count(*) FROM a61_t);
END $$;
-- a nested function switches from one tenant to the other between two reads
CREATE FUNCTION a61_nested(t1 text, t2 text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    PERFORM a61_switch(t1);
    n := (SELECT count(*) FROM a61_t);
    PERFORM a61_switch(t2);
    RETURN n + (SELECT count(*) FROM a61_t);
END $$;
-- a trigger sets the context
CREATE FUNCTION a61_side_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('utilix.context', NEW.tok, true);
    RETURN NEW;
END $$;
CREATE TRIGGER a61_side_ins BEFORE INSERT ON a61_side FOR EACH ROW EXECUTE FUNCTION a61_side_trg();
CREATE FUNCTION a61_by_trigger(tok text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM a61_try_without();
    INSERT INTO a61_side VALUES (tok);
    RETURN (SELECT count(*) FROM a61_t);
END $$;
-- a loop over a query switches the context at every row
CREATE FUNCTION a61_loop() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE r record; n bigint := 0;
BEGIN
    FOR r IN SELECT t.tok FROM a61_tok t ORDER BY t.n LOOP
        PERFORM set_config('utilix.context', r.tok, true);
        n := n + (SELECT count(*) FROM a61_t);
    END LOOP;
    RETURN n;
END $$;
-- RESET in the middle, then another tenant
CREATE FUNCTION a61_reset(t1 text, t2 text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    PERFORM set_config('utilix.context', t1, true);
    n := (SELECT count(*) FROM a61_t);
    RESET utilix.context;
    PERFORM a61_try_without();
    PERFORM set_config('utilix.context', t2, true);
    RETURN n + (SELECT count(*) FROM a61_t);
END $$;
-- read, then clear the context before the statement ends
CREATE FUNCTION a61_clear_after(tok text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint;
BEGIN
    PERFORM set_config('utilix.context', tok, true);
    n := (SELECT count(*) FROM a61_t);
    PERFORM set_config('utilix.context', '', true);
    RETURN n;
END $$;

-- a procedure that reads
CREATE PROCEDURE a61_proc() LANGUAGE plpgsql AS $$
BEGIN
    PERFORM count(*) FROM a61_t;
END $$;
-- read, clear the context, then ask for the tenant in the same statement
CREATE FUNCTION a61_read_clear_tenant(tok text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('utilix.context', tok, false);
    PERFORM count(*) FROM a61_t;
    PERFORM utilix.clear_context();
    RETURN utilix.current_tenant();
END $$;

-- the records of a61_app's, a61_bypass's and a61_su's statements after a mark, as
-- "<A|B|C|none> kind outcome table:read" in order
CREATE FUNCTION pg_temp.mark() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.access_log_flush();
    RETURN (SELECT coalesce(max(id), 0) FROM utilix.access_log);
END $$;
CREATE FUNCTION pg_temp.since(mk bigint, ta bigint, tb bigint, tc bigint) RETURNS text[] LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.access_log_flush();
    RETURN ARRAY(SELECT concat_ws(' ', CASE tenant_id WHEN ta THEN 'A' WHEN tb THEN 'B' WHEN tc THEN 'C'
                                                      ELSE coalesce(tenant_id::text, 'none') END,
                                  kind, outcome,
                                  (SELECT string_agg(format('%s:r%s', x->>'table', x->>'read'), ' ') FROM jsonb_array_elements(tables) x))
                   FROM utilix.access_log
                  WHERE id > mk AND db_role IN ('a61_app', 'a61_bypass', 'a61_su') ORDER BY id);
END $$;
-- rows read under no tenant after a mark
CREATE FUNCTION pg_temp.hidden(mk bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.access_log_flush();
    RETURN (SELECT coalesce(sum((x->>'read')::bigint), 0) FROM utilix.access_log, jsonb_array_elements(tables) x
             WHERE id > mk AND db_role IN ('a61_app', 'a61_bypass', 'a61_su') AND tenant_id IS NULL);
END $$;
-- utilix's caches dropped, as any change of its catalogs does (here: a new tenant)
CREATE SEQUENCE pg_temp.a61_cold;
CREATE FUNCTION pg_temp.cold() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.create_tenant('a61 cold ' || nextval('pg_temp.a61_cold'));
END $$;
-- (the context of each attack is local: it ends with RESET)

-- ------------------------------------------------------------------ (a) refused, caught, then a context
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT a61_sneak(:'tok_a') \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['none select denied public.a61_t:r0', 'A select ok public.a61_t:r5'],
          '(a) a read after a caught refusal and set_config() is filed under the tenant of that context');
SELECT is(pg_temp.hidden(:mk), 0::bigint, '(a) ... and no row is filed under no tenant');

-- ------------------------------------------------------------------ a nested function switches tenants
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT a61_nested(:'tok_a', :'tok_b') \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r5', 'B select ok public.a61_t:r3'],
          'a context switched by a nested function: each tenant''s reads in its own chain');

-- ------------------------------------------------------------------ a trigger sets the context
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT a61_by_trigger(:'tok_a') \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['none select denied public.a61_t:r0', 'A select ok public.a61_t:r5'],
          'a context set by a trigger: the reads after it are filed under its tenant');

-- ------------------------------------------------------------------ a loop switches at every row
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT a61_loop() \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r5', 'B select ok public.a61_t:r3'],
          'a context switched inside a loop over a query: each tenant''s reads in its own chain');

-- ------------------------------------------------------------------ SET LOCAL in a DO block
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SET LOCAL a61.tok = :'tok_b';
DO $$
BEGIN
    PERFORM a61_try_without();
    EXECUTE format('SET LOCAL utilix.context = %L', current_setting('a61.tok'));
    PERFORM count(*) FROM a61_t;
END
$$;
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['none select denied public.a61_t:r0', 'B select ok public.a61_t:r3'],
          'SET LOCAL utilix.context in a DO block after a caught refusal: the read is filed under its tenant');

-- ------------------------------------------------------------------ RESET in the middle
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT a61_reset(:'tok_b', :'tok_a') \g /dev/null
RESET utilix.context;
RESET ROLE;
-- (the attempt without a context runs a cached plan here: refused or no rows, either way no rows under no tenant)
SELECT is(array_remove(pg_temp.since(:mk, :ta, :tb, :tc), 'none select denied public.a61_t:r0'),
          ARRAY['B select ok public.a61_t:r3', 'A select ok public.a61_t:r5'],
          'RESET utilix.context in the middle: the reads before it under the first tenant, the reads after under the second');
SELECT is(pg_temp.hidden(:mk), 0::bigint, '... and no row is filed under no tenant');

-- ------------------------------------------------------------------ clearing the context at the end moves nothing
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT a61_clear_after(:'tok_a') \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r5'],
          'a statement that clears its context after reading leaves its read in the tenant''s chain');

-- ------------------------------------------------------------------ a context of a tenant that is not active
UPDATE utilix.tenant SET status = 'terminated', terminated_at = now() WHERE id = :tc;
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_bypass;
SET LOCAL utilix.context = :'tok_c';
SELECT count(*) FROM a61_t \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['none select ok public.a61_t:r10'],
          'a role that bypasses row level security, holding a token of a tenant that is not active: its read is under no tenant');
SELECT ok((SELECT detail FROM utilix.access_log WHERE id > :mk AND db_role = 'a61_bypass' ORDER BY id LIMIT 1)
          ~ 'not accepted .* claims tenant',
          '... and the record says which tenant the context claimed and why it was not accepted');
UPDATE utilix.tenant SET status = 'active', terminated_at = NULL WHERE id = :tc;

-- ------------------------------------------------------------------ (b) many cursors
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT utilix.set_context(:'tok_a', true) \g /dev/null
DO $$
DECLARE c refcursor; r record;
BEGIN
    FOR i IN 1..1100 LOOP
        c := 'a61_c' || i;
        OPEN c FOR SELECT id FROM a61_t;
    END LOOP;
    FOR i IN 1..1100 LOOP
        c := 'a61_c' || i;
        FETCH c INTO r;
    END LOOP;
END
$$;
FETCH ALL FROM a61_c1100 \g /dev/null
FETCH ALL FROM a61_c1 \g /dev/null
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc),
          ARRAY['A select ok public.a61_t:r1100', 'A select ok public.a61_t:r4', 'A select ok public.a61_t:r4'],
          '(b) 1100 open cursors: the function''s 1100 fetched rows counted, and a FETCH from the first and the last cursor recorded');
-- (a cursor WITH HOLD over a protected table would outlive its transaction
-- and its context: the next client of a pooled connection could fetch its
-- rows; tenancy refuses it, see 24_owner_attacks)
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SAVEPOINT hold;
SELECT throws_ok($$DECLARE a61_h CURSOR WITH HOLD FOR SELECT id FROM a61_t$$, '42501', NULL,
                 '(b) a cursor WITH HOLD over a protected table is refused to the application role');
ROLLBACK TO SAVEPOINT hold;
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.hidden(:mk), 0::bigint, '(b) ... all under the tenant');

-- ------------------------------------------------------------------ a FETCH after switching tenants
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT utilix.set_context(:'tok_a', true) \g /dev/null
DECLARE a61_sw CURSOR FOR SELECT id FROM a61_t;
FETCH 1 FROM a61_sw \g /dev/null
SELECT a61_switch(:'tok_b') \g /dev/null
SELECT count(*) FROM a61_t \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc),
          ARRAY['A select ok public.a61_t:r0', 'A select ok public.a61_t:r1', 'B select ok public.a61_t:r3'],
          'a cursor (DECLARE, FETCH) and a switch of tenant: each statement in its tenant''s chain');

-- ------------------------------------------------------------------ utility statements that run a query
-- A DDL statement drops utilix's caches (the event trigger's bookkeeping
-- changes utilix's catalogs) after its query verified the context: its
-- record used to be filed under no tenant, "not verified".
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_app;
SELECT utilix.set_context(:'tok_a', true) \g /dev/null
CREATE TEMP TABLE a61_ctas AS SELECT * FROM a61_t;
SELECT * INTO TEMP a61_into FROM a61_t;
CREATE MATERIALIZED VIEW a61_mv AS SELECT * FROM a61_t;
REFRESH MATERIALIZED VIEW a61_mv;
PREPARE a61_prep AS SELECT * FROM a61_t;
CREATE TEMP TABLE a61_exec AS EXECUTE a61_prep;
DEALLOCATE a61_prep;
COPY (SELECT * FROM a61_t) TO STDOUT \g /dev/null
CALL a61_proc();
DECLARE a61_cur CURSOR FOR SELECT id FROM a61_t ORDER BY id;
FETCH 2 FROM a61_cur \g /dev/null
CLOSE a61_cur;
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc),
          ARRAY['A select ok public.a61_t:r5', 'A select ok public.a61_t:r5', 'A select ok public.a61_t:r5',
                'A select ok public.a61_t:r5', 'A select ok public.a61_t:r5', 'A copy ok public.a61_t:r5',
                'A select ok public.a61_t:r5', 'A select ok public.a61_t:r0', 'A select ok public.a61_t:r2'],
          'CREATE TABLE AS, SELECT INTO, CREATE and REFRESH MATERIALIZED VIEW, CREATE TABLE AS EXECUTE, COPY (query), CALL, DECLARE and FETCH: each filed under the tenant');
SELECT is(pg_temp.hidden(:mk), 0::bigint, '... and no row is filed under no tenant');

-- ------------------------------------------------------------------ nothing checks the context of a superuser or a BYPASSRLS role
-- With cold caches its valid token used to be filed under no tenant ("not verified").
SELECT pg_temp.cold() \g /dev/null
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_su;
SET LOCAL utilix.context = :'tok_a';
SELECT count(*) FROM a61_t \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r10'],
          'a superuser''s read with a valid token, caches cold: filed under the tenant of the token');

SELECT pg_temp.cold() \g /dev/null
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_bypass;
SET LOCAL utilix.context = :'tok_a';
SELECT count(*) FROM a61_t \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r10'],
          'a BYPASSRLS role''s read with a valid token, caches cold: filed under the tenant of the token');

SELECT pg_temp.cold() \g /dev/null
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_su;
SET LOCAL utilix.context = :'tok_a';
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM a61_t \g /dev/null
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r10'],
          'EXPLAIN ANALYZE by a superuser with a valid token: filed under the tenant');

SELECT pg_temp.cold() \g /dev/null
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_su;
SET LOCAL utilix.context = :'tok_a';
COPY a61_t TO '/dev/null';
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A copy ok public.a61_t:r10'],
          'COPY of the table (no query runs) by a superuser with a valid token: filed under the tenant');

SELECT pg_temp.cold() \g /dev/null
SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_su;
SET LOCAL utilix.context = :'tok_a';
CREATE TEMP TABLE a61_su_ctas AS SELECT * FROM a61_t;
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r10'],
          'CREATE TABLE AS by a superuser with a valid token: filed under the tenant');

SELECT pg_temp.mark() AS mk \gset
SET LOCAL ROLE a61_su;
SET LOCAL utilix.context = :'tok_a';
DECLARE a61_su_cur CURSOR FOR SELECT id FROM a61_t;
RESET ROLE;
SELECT pg_temp.cold() \g /dev/null
SET LOCAL ROLE a61_su;
FETCH 3 FROM a61_su_cur \g /dev/null
CLOSE a61_su_cur;
RESET utilix.context;
RESET ROLE;
SELECT is(pg_temp.since(:mk, :ta, :tb, :tc), ARRAY['A select ok public.a61_t:r0', 'A select ok public.a61_t:r3'],
          'DECLARE, then FETCH with cold caches, by a superuser with a valid token: both filed under the tenant');

-- ------------------------------------------------------------------ a context cleared part-way is gone
SET LOCAL ROLE a61_app;
SELECT throws_ok(format('SELECT a61_read_clear_tenant(%L)', :'tok_a'), '42501', 'no tenant context is set',
                 'a context cleared after a read in the same statement is not used again (no stale context)');
RESET ROLE;

-- ------------------------------------------------------------------ the chains still verify
SELECT utilix.access_log_flush() \g /dev/null
SELECT is((SELECT bool_and(v.ok) FROM unnest(ARRAY[:ta, :tb]::bigint[]) t, utilix.verify_access_log(t) v), true,
          'the chains of both tenants verify');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > 0 AND tenant_id = :tc AND db_role IN ('a61_app', 'a61_bypass', 'a61_su')),
          0::bigint, 'nothing of this file is filed under the tenant that is not active');

SELECT * FROM finish();
ROLLBACK;
