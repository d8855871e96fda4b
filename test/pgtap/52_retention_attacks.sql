-- 52_retention_attacks: issue 17, what fits in one transaction.
-- Class 6, one tenant stopping retention for every tenant of a table:
--  - a tenant's own row that still refers to its expired row (a foreign key
--    with NO ACTION or RESTRICT) used to fail the whole retention step of
--    the table (23503): now every other expired row goes, the kept one is
--    counted in rows_skipped and the run ends 'partial', never 'ok', until
--    the row can go; ON DELETE CASCADE purges as before;
--  - LOCK TABLE on a protected table above ROW EXCLUSIVE is refused to the
--    application role (with a context or without, directly, through its own
--    view, through the partitioned parent), and allowed to the table's
--    owner and to superusers; a name resolving to another table locks that
--    table, not the protected one;
--  - the worker's tick does the same; _lock_for_purge finds the tables that
--    reference a plain table, and _purge_rows isolates the kept row.
-- Class 5, an operator reading an active tenant's plaintext without trace:
--  - export_tenant and export_manifest refuse a tenant terminated in this
--    transaction, in a released savepoint or a function's subtransaction
--    alike; terminated and then restored by ROLLBACK TO SAVEPOINT, it is
--    active again and refused as such;
--  - every refusal is in the tenant's own chain of the access log at once
--    (kind export, outcome denied), and in security_events; no lifecycle
--    event claims an export.
-- (Sessions that interleave: test/t/retention_locks.sh and
-- test/t/export_trace.sh.)
BEGIN;
SELECT plan(48);
SET LOCAL client_min_messages = warning;

-- ------------------------------------------------------------------ set-up
CREATE ROLE r52_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE r52_app NOLOGIN;
CREATE ROLE r52_owner NOLOGIN;
CREATE ROLE r52_issuer NOLOGIN IN ROLE utilix_issuer;
CREATE SCHEMA r52_own AUTHORIZATION r52_app;
GRANT CREATE ON SCHEMA public TO r52_owner;

SELECT utilix.create_tenant('r52 alpha') AS ta, utilix.create_tenant('r52 beta') AS tb,
       utilix.create_tenant('r52 gamma') AS tc, utilix.create_tenant('r52 delta') AS td \gset

SET LOCAL ROLE r52_owner;
CREATE TABLE r52_par (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_ref (tenant_id bigint NOT NULL, id int NOT NULL, par_id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_rpar (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_rref (tenant_id bigint NOT NULL, id int NOT NULL, par_id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_cpar (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_cref (tenant_id bigint NOT NULL, id int NOT NULL, par_id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_lk (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_k1 (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_k2 (tenant_id bigint NOT NULL, id int NOT NULL, k1_id int, PRIMARY KEY (tenant_id, id));
CREATE TABLE r52_lp (tenant_id bigint NOT NULL, id int NOT NULL) PARTITION BY LIST (tenant_id);
CREATE TABLE r52_lp_rest PARTITION OF r52_lp DEFAULT;
RESET ROLE;
SELECT utilix.protect(t) FROM unnest(ARRAY['r52_par', 'r52_ref', 'r52_rpar', 'r52_rref', 'r52_cpar', 'r52_cref', 'r52_lk', 'r52_lp',
                                           'r52_k1', 'r52_k2']::regclass[]) t \g /dev/null
RESET utilix.internal_ddl;
-- (a superuser adds the keys: the owner's check of existing rows would need a context)
ALTER TABLE r52_ref ADD FOREIGN KEY (tenant_id, par_id) REFERENCES r52_par (tenant_id, id);
ALTER TABLE r52_rref ADD FOREIGN KEY (tenant_id, par_id) REFERENCES r52_rpar (tenant_id, id) ON DELETE RESTRICT;
ALTER TABLE r52_cref ADD FOREIGN KEY (tenant_id, par_id) REFERENCES r52_cpar (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE r52_k2 ADD FOREIGN KEY (tenant_id, k1_id) REFERENCES r52_k1 (tenant_id, id);
GRANT SELECT, INSERT, UPDATE, DELETE ON r52_par, r52_ref, r52_rpar, r52_rref, r52_cpar, r52_cref, r52_lk, r52_lp TO r52_app;
-- each of alpha, beta, gamma: 30 expired rows in each parent table, 10 fresh
INSERT INTO r52_par SELECT t, g, CASE WHEN g <= 30 THEN now() - interval '90 days' ELSE now() END
  FROM unnest(ARRAY[:ta, :tb, :tc]::bigint[]) t, generate_series(1, 40) g;
INSERT INTO r52_rpar SELECT * FROM r52_par;
INSERT INTO r52_cpar SELECT * FROM r52_par;
SELECT utilix.set_retention(t, '30 days', 'ts') FROM unnest(ARRAY['r52_par', 'r52_rpar', 'r52_cpar']::regclass[]) t \g /dev/null

SET LOCAL ROLE r52_issuer;
SELECT utilix.issue_context(:ta, 'mallory', rights => '{read,write}') AS tok_a,
       utilix.issue_context(:td, 'dora', rights => '{read,write}') AS tok_d \gset
RESET ROLE;

CREATE FUNCTION pg_temp.expired(tbl regclass, t bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s WHERE tenant_id = $1 AND ts < now() - interval ''30 days''', tbl) INTO n USING t;
    RETURN n;
END
$$;
CREATE FUNCTION pg_temp.last_run(tbl text) RETURNS text LANGUAGE sql AS $$
    SELECT x.outcome || '|' || x.rows_removed || '|' || x.rows_skipped FROM utilix.purge_run x
     WHERE x.kind = 'retention' AND x.table_name = tbl ORDER BY x.id DESC LIMIT 1
$$;

-- ------------------------------------------------------------------ a row a foreign key keeps
-- alpha, through its own context, makes a fresh row that refers to one of its expired rows
SET LOCAL ROLE r52_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
INSERT INTO r52_ref VALUES (:ta, 1, 3);
INSERT INTO r52_rref VALUES (:ta, 1, 3);
INSERT INTO r52_cref VALUES (:ta, 1, 3);
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;

SET LOCAL ROLE r52_op;
SELECT lives_ok($$SELECT * FROM utilix.run_retention('r52_par')$$,
                'retention of a table where alpha''s own row still refers to its expired row does not fail');
RESET ROLE;
SELECT is(ARRAY[pg_temp.expired('r52_par', :tb), pg_temp.expired('r52_par', :tc)], '{0,0}'::bigint[],
          'every expired row of beta and gamma is removed (it used to fail the whole step with 23503)');
SELECT is(pg_temp.expired('r52_par', :ta), 1::bigint, 'of alpha''s, only the row its reference keeps stays');
SELECT is((SELECT count(*) FROM r52_par WHERE tenant_id = :ta AND id = 3), 1::bigint, 'and it is that row');
SELECT is(pg_temp.last_run('public.r52_par'), 'partial|89|1', 'the run is partial: 89 rows removed, 1 skipped');
SELECT matches((SELECT error FROM utilix.purge_run WHERE table_name = 'public.r52_par' ORDER BY id DESC LIMIT 1),
               '^1 expired rows were held by other transactions \(or kept by a foreign key\); left for the next run$',
               'and says why in error');
SELECT is((SELECT count(*) FROM r52_par WHERE ts >= now() - interval '30 days'), 30::bigint, 'the fresh rows stay');
SET LOCAL ROLE r52_op;
SELECT is((SELECT rows_skipped FROM utilix.purge_runs WHERE table_name = 'public.r52_par' ORDER BY id DESC LIMIT 1), 1::bigint,
          'purge_runs shows rows_skipped to operators');
RESET ROLE;

SET LOCAL ROLE r52_op;
SELECT lives_ok($$SELECT * FROM utilix.run_retention('r52_rpar')$$, 'ON DELETE RESTRICT: retention does not fail either');
RESET ROLE;
SELECT is(ARRAY[pg_temp.expired('r52_rpar', :ta), pg_temp.expired('r52_rpar', :tb), pg_temp.expired('r52_rpar', :tc)],
          '{1,0,0}'::bigint[], 'only alpha''s restricted row stays');
SELECT is(pg_temp.last_run('public.r52_rpar'), 'partial|89|1', 'partial, 1 skipped');

SET LOCAL ROLE r52_op;
SELECT lives_ok($$SELECT * FROM utilix.run_retention('r52_cpar')$$, 'ON DELETE CASCADE');
RESET ROLE;
SELECT is(ARRAY[pg_temp.expired('r52_cpar', :ta), pg_temp.expired('r52_cpar', :tb), (SELECT count(*) FROM r52_cref)],
          '{0,0,0}'::bigint[], 'cascading: every expired row goes, and the row referring to it with it');
SELECT is(pg_temp.last_run('public.r52_cpar'), 'ok|90|0', 'the run is ok');

-- the next run finds the kept row again; once the reference is gone, it goes
SET LOCAL ROLE r52_op;
SELECT * FROM utilix.run_retention('r52_par') \g /dev/null
RESET ROLE;
SELECT is(pg_temp.last_run('public.r52_par'), 'partial|0|1', 'a second run: still partial, the kept row counted again');
DELETE FROM r52_ref;
SET LOCAL ROLE r52_op;
SELECT * FROM utilix.run_retention('r52_par') \g /dev/null
RESET ROLE;
SELECT is(pg_temp.expired('r52_par', :ta) || '|' || pg_temp.last_run('public.r52_par'), '0|ok|1|0',
          'once nothing refers to it, the next run removes it: ok');

-- the worker's tick: the same, in its own subtransactions
INSERT INTO r52_rpar SELECT t, 100 + g, now() - interval '90 days' FROM unnest(ARRAY[:tb, :tc]::bigint[]) t, generate_series(1, 5) g;
SELECT lives_ok($$SELECT utilix._worker_tick()$$, 'the worker''s tick runs over the table with the kept row');
SELECT is(ARRAY[pg_temp.expired('r52_rpar', :ta), pg_temp.expired('r52_rpar', :tb), pg_temp.expired('r52_rpar', :tc)],
          '{1,0,0}'::bigint[], 'and removes the new expired rows of beta and gamma');

-- the pieces
SELECT is(utilix._lock_for_purge('r52_k1'), true, '_lock_for_purge: a plain table that a foreign key reaches (not a partition)');
SELECT is((SELECT array_agg(relation::regclass::text ORDER BY relation::regclass::text) FROM pg_locks
            WHERE pid = pg_backend_pid() AND relation IN ('r52_k1'::regclass, 'r52_k2'::regclass) AND mode = 'RowExclusiveLock'),
          '{r52_k1,r52_k2}'::text[], '_lock_for_purge holds ROW EXCLUSIVE on the table and on the table referring to it');
SELECT is(utilix._lock_for_purge('r52_lk'), false, '_lock_for_purge: a table no foreign key reaches');
SET LOCAL lock_timeout = '1ms';
SELECT is(utilix._purge_rows('r52_rpar', 'true', ARRAY(SELECT ctid FROM r52_rpar WHERE ts < now() - interval '30 days')), '{0,1}'::bigint[],
          '_purge_rows over the rows left: the kept one is found alone and left {0 removed, 1 left}');
INSERT INTO r52_rpar SELECT :tb, 200 + g, now() - interval '90 days' FROM generate_series(1, 7) g;
SELECT is(utilix._purge_rows('r52_rpar', 't.ts < now() - interval ''30 days''', ARRAY(SELECT ctid FROM r52_rpar WHERE ts < now() - interval '30 days' ORDER BY ctid)),
          '{7,1}'::bigint[], '_purge_rows: 7 of 8 go, the kept one is isolated');
RESET lock_timeout;
SELECT throws_ok($$SELECT utilix._purge_rows(NULL, 'true', '{}')$$, '22004', NULL, '_purge_rows: a NULL table is 22004');
SELECT is(utilix._purge_lock_note(), 'lock timeout: a transaction holds the tenant, its rows or its partition (utilix.purge_lock_timeout); nothing was removed, the purge is retried at the next run',
          'what an offboarding that gave way records');

-- ------------------------------------------------------------------ LOCK TABLE
SET LOCAL ROLE r52_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT throws_ok($$LOCK TABLE r52_lk IN ACCESS EXCLUSIVE MODE$$, '42501',
                 'LOCK TABLE ... IN ACCESS EXCLUSIVE MODE on protected table "r52_lk" is not allowed',
                 'a tenant''s context cannot hold ACCESS EXCLUSIVE on a protected table');
SELECT throws_ok($$LOCK TABLE r52_lk IN EXCLUSIVE MODE$$, '42501', NULL, 'nor EXCLUSIVE');
SELECT throws_ok($$LOCK TABLE r52_lk IN SHARE ROW EXCLUSIVE MODE$$, '42501', NULL, 'nor SHARE ROW EXCLUSIVE');
SELECT throws_ok($$LOCK TABLE r52_lk IN SHARE MODE$$, '42501', NULL, 'nor SHARE (it stops every other tenant''s writes)');
SELECT throws_ok($$LOCK TABLE r52_lk IN SHARE UPDATE EXCLUSIVE MODE$$, '42501', NULL, 'nor SHARE UPDATE EXCLUSIVE');
SELECT lives_ok($$LOCK TABLE r52_lk IN ROW EXCLUSIVE MODE$$, 'ROW EXCLUSIVE, which its own writes take, is allowed');
SELECT lives_ok($$LOCK TABLE r52_lk IN ROW SHARE MODE$$, 'so is ROW SHARE');
SELECT lives_ok($$LOCK TABLE r52_lk IN ACCESS SHARE MODE$$, 'and ACCESS SHARE');
SELECT utilix.clear_context() \g /dev/null
SELECT throws_ok($$LOCK TABLE r52_lk IN ACCESS EXCLUSIVE MODE$$, '42501', NULL, 'without a context, refused all the same');
SELECT throws_ok($$LOCK TABLE r52_lp IN EXCLUSIVE MODE$$, '42501', NULL, 'a partitioned protected table');
SELECT throws_ok($$LOCK TABLE r52_lp_rest IN EXCLUSIVE MODE$$, '42501', NULL, 'its partition');
CREATE VIEW r52_own.v AS SELECT * FROM public.r52_lk;
CREATE VIEW r52_own.v2 AS SELECT 1 AS one FROM r52_own.v WHERE EXISTS (SELECT 1 FROM public.r52_par);
SELECT throws_ok($$LOCK TABLE r52_own.v2 IN EXCLUSIVE MODE$$, '42501', NULL,
                 'a view of its own over a view over the protected table (LOCK locks what views read)');
CREATE TABLE r52_own.mine (a int);
SELECT lives_ok($$LOCK TABLE r52_own.mine IN ACCESS EXCLUSIVE MODE$$, 'a table of its own that is not protected: any mode');
CREATE TABLE r52_own.r52_lk (a int);
SET LOCAL search_path = r52_own, public;
SELECT lives_ok($$LOCK TABLE r52_lk IN EXCLUSIVE MODE$$, 'a name that resolves to its own table');
-- (EXCLUSIVE: no DDL of this transaction took it)
SELECT is((SELECT array_agg(n.nspname::text) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE l.pid = pg_backend_pid() AND l.mode = 'ExclusiveLock' AND c.relname = 'r52_lk'),
          '{r52_own}'::text[], 'locks that table, and not the protected one of the same name');
RESET search_path;
RESET ROLE;
SET LOCAL ROLE r52_owner;
SELECT lives_ok($$LOCK TABLE r52_lk IN ACCESS EXCLUSIVE MODE$$, 'the table''s owner may (its DDL takes such locks anyway)');
RESET ROLE;
SELECT lives_ok($$LOCK TABLE r52_par IN ACCESS EXCLUSIVE MODE$$, 'and so may a superuser');

-- ------------------------------------------------------------------ export before a committed termination
SELECT utilix.access_log_flush(10000) \g /dev/null
SELECT coalesce(max(id), 0) AS log0 FROM utilix.access_log \gset
SET LOCAL ROLE r52_op;
SAVEPOINT s1;
SELECT utilix.terminate_tenant(:td) \g /dev/null
RELEASE SAVEPOINT s1;
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :td), '55000',
                 format('tenant %s was terminated in this transaction', :td),
                 'a termination in a released savepoint is still this transaction''s: the export is refused');
RESET ROLE;
CREATE FUNCTION pg_temp.terminate_inside(t bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM utilix.cancel_termination(t);
        PERFORM utilix.terminate_tenant(t, '1 day');
    EXCEPTION WHEN division_by_zero THEN
        NULL;
    END;
END
$$;
SELECT pg_temp.terminate_inside(:td);
SET LOCAL ROLE r52_op;
SELECT throws_ok(format($$SELECT count(*) FROM utilix.export_manifest(%s)$$, :td), '55000', NULL,
                 'terminated again inside a function''s subtransaction: export_manifest is refused too');
SAVEPOINT s2;
SELECT utilix.cancel_termination(:td) \g /dev/null
SELECT utilix.terminate_tenant(:ta) \g /dev/null
ROLLBACK TO SAVEPOINT s2;
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :ta), '55000', format('tenant %s is not terminated', :ta),
                 'a termination rolled back to its savepoint leaves the tenant active: refused as such');
RESET ROLE;
SELECT utilix.access_log_flush(10000) \g /dev/null
SELECT results_eq(format($$SELECT tenant_id, kind, outcome, detail FROM utilix.access_log WHERE id > %s AND kind = 'export' ORDER BY id$$, :log0),
                  format($$VALUES (%1$s::bigint, 'export', 'denied', 'export refused: the termination is not committed'),
                                  (%1$s, 'export', 'denied', 'export refused: the termination is not committed'),
                                  (%2$s, 'export', 'denied', 'export refused: the tenant is active, not terminated')$$, :td, :ta),
                  'each refused export is already in its tenant''s chain of the access log (kind export, denied), whatever this transaction does');
SELECT is((SELECT count(*) FROM utilix.security_events WHERE kind = 'export denied' AND tenant_id IN (:ta, :td)), 3::bigint,
          'and in security_events');
SELECT is((SELECT count(*) FROM utilix.lifecycle_event WHERE event = 'exported' AND tenant_id IN (:ta, :td)), 0::bigint,
          'no lifecycle event claims an export');

SELECT * FROM finish();
ROLLBACK;
