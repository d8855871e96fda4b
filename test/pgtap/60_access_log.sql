-- 60_access_log: the access history.  One record per statement on protected
-- tables with exact per-table counts (SELECT, INSERT, UPDATE, DELETE, MERGE,
-- COPY, TRUNCATE, DDL; functions and triggers count toward the statement
-- that called them; partitions); records survive a rollback; denied and
-- failed statements (outcome, SQLSTATE); who (tenant, app user, roles,
-- backend); row level security of utilix.access_history; append-only for
-- everyone; the hash chain catches altered, deleted, reordered and missing
-- records; export_access_log() hashes; per-table and global settings; query
-- text with literals masked; encrypted plaintext never reaches the log;
-- login and admin events; bad input.
--
-- Records leave the transaction: the writer commits them in its own
-- transaction, and utilix.access_log_flush() waits for it (the helpers below
-- flush before they read).  The log is append-only and shared with the other
-- files (and with earlier runs of this one): everything is selected by
-- id > the last id before this file, and by app users, roles and tenants
-- unique to this file.  The file runs in one transaction that is rolled
-- back, so roles, tables and the tampering of the log go away with it; the
-- records of this run stay in the log (as they must).
--
-- A statement that fails at the top level is the ordinary case of a denied
-- access, but pgTAP's throws_ok() catches the error inside a function, so
-- the top-level statement succeeds.  Both are tested: the top-level
-- failures run below with psql's ON_ERROR_ROLLBACK (their ERROR lines on
-- stderr are expected), the caught ones through throws_ok().
-- Before the transaction: today's and tomorrow's day partitions of the log.
-- The writer would create a missing one, and that waits for this
-- transaction's lock on utilix.access_log (taken by the first read of it)
-- until the transaction ends: in a fresh database every flush below would
-- time out.
SELECT utilix.run_access_log_maintenance() \g /dev/null
BEGIN;
SELECT plan(144);
SET LOCAL client_min_messages = error;

-- ------------------------------------------------------------------ set-up
SELECT utilix.access_log_flush() \g /dev/null
CREATE TEMP TABLE a60_mark AS SELECT coalesce(max(id), 0) AS m0 FROM utilix.access_log;
SELECT m0 FROM a60_mark \gset

CREATE ROLE a60_app NOLOGIN;
CREATE ROLE a60_noctx NOLOGIN;
CREATE ROLE a60_nopriv NOLOGIN;
CREATE ROLE a60_owner NOLOGIN;
CREATE ROLE a60_nest NOLOGIN;
CREATE ROLE a60_plain NOLOGIN;
CREATE ROLE a60_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE a60_issuer NOLOGIN IN ROLE utilix_issuer;

SELECT utilix.create_tenant('a60 alpha') AS ta, utilix.create_tenant('a60 beta') AS tb,
       utilix.create_tenant('a60 tamper alter') AS tx_alter, utilix.create_tenant('a60 tamper rehash') AS tx_rehash,
       utilix.create_tenant('a60 tamper delete') AS tx_del, utilix.create_tenant('a60 tamper swap') AS tx_swap,
       utilix.create_tenant('a60 tamper last') AS tx_last, utilix.create_tenant('a60 tamper all') AS tx_all,
       utilix.create_tenant('a60 clean') AS tx_clean \gset

SET LOCAL ROLE a60_issuer;
SELECT utilix.issue_context(:ta, 'ins-60', rights => '{read,write}') AS tok_ins,
       utilix.issue_context(:ta, 'sel-60', rights => '{read,write}') AS tok_sel,
       utilix.issue_context(:ta, 'upd-60', rights => '{read,write}') AS tok_upd,
       utilix.issue_context(:ta, 'del-60', rights => '{read,write}') AS tok_del,
       utilix.issue_context(:ta, 'mrg-60', rights => '{read,write}') AS tok_mrg,
       utilix.issue_context(:ta, 'cte-60', rights => '{read,write}') AS tok_cte,
       utilix.issue_context(:ta, 'rb-60', rights => '{read,write}') AS tok_rb,
       utilix.issue_context(:ta, 'fn-60', rights => '{read,write}') AS tok_fn,
       utilix.issue_context(:ta, 'trg-60', rights => '{read,write}') AS tok_trg,
       utilix.issue_context(:ta, 'two-60', rights => '{read,write}') AS tok_two,
       utilix.issue_context(:ta, 'part-60', rights => '{read,write}') AS tok_part,
       utilix.issue_context(:ta, 'copy-60', rights => '{read,write}') AS tok_copy,
       utilix.issue_context(:ta, 'dup-60', rights => '{read,write}') AS tok_dup,
       utilix.issue_context(:ta, 'nest-60', rights => '{read,write}') AS tok_nest,
       utilix.issue_context(:ta, 'ro-60', rights => '{read}') AS tok_ro,
       utilix.issue_context(:ta, 'off-60', rights => '{read,write}') AS tok_off,
       utilix.issue_context(:ta, 'wr-60', rights => '{read,write}') AS tok_wr,
       utilix.issue_context(:ta, 'glob-60', rights => '{read,write}') AS tok_glob,
       utilix.issue_context(:ta, 'qt-60', rights => '{read,write}') AS tok_qt,
       utilix.issue_context(:ta, 'enc-60', rights => '{read,write}') AS tok_enc,
       utilix.issue_context(:ta, 'auditor-60', rights => '{audit}') AS tok_audit_a,
       utilix.issue_context(:ta, 'noaudit-60', rights => '{read,write}') AS tok_noaudit,
       utilix.issue_context(:ta, 'admin-60', rights => '{admin}') AS tok_admin,
       utilix.issue_context(:ta, 'stale-60', rights => '{read}') AS tok_stale,
       utilix.issue_context(:tb, 'bob-60', rights => '{read,write,audit}') AS tok_b \gset
RESET ROLE;

-- the protected tables
CREATE TABLE a60_t (tenant_id bigint NOT NULL, id int NOT NULL, v text, PRIMARY KEY (tenant_id, id));
CREATE TABLE a60_u (tenant_id bigint NOT NULL, id int NOT NULL, w text, PRIMARY KEY (tenant_id, id));
CREATE TABLE a60_trunc (tenant_id bigint NOT NULL, id int NOT NULL);
CREATE TABLE a60_off (tenant_id bigint NOT NULL, id int NOT NULL);
CREATE TABLE a60_wr (tenant_id bigint NOT NULL, id int NOT NULL, n int);
CREATE TABLE a60_all (tenant_id bigint NOT NULL, id int NOT NULL);
CREATE TABLE a60_sec (tenant_id bigint NOT NULL, id int NOT NULL, secret text, PRIMARY KEY (tenant_id, id));
CREATE TABLE a60_p (tenant_id bigint NOT NULL, id int NOT NULL) PARTITION BY RANGE (id);
CREATE TABLE a60_p1 PARTITION OF a60_p FOR VALUES FROM (0) TO (100);
CREATE TABLE a60_p2 PARTITION OF a60_p FOR VALUES FROM (100) TO (200);
SELECT utilix.protect(t) FROM unnest('{a60_t,a60_u,a60_trunc,a60_off,a60_wr,a60_all,a60_sec,a60_p}'::regclass[]) t \g /dev/null
RESET utilix.internal_ddl;
SELECT utilix.encrypt_column('a60_sec', 'secret') \g /dev/null
RESET utilix.internal_ddl;
ALTER TABLE a60_trunc OWNER TO a60_owner;
-- not protected: a source for MERGE, and a table whose trigger writes a protected one
CREATE TABLE a60_src (id int, v text);
CREATE TABLE a60_side (id int);
CREATE TABLE a60_unprot (tenant_id bigint NOT NULL, id int);

INSERT INTO a60_t VALUES (:ta, 1, 'a1'), (:ta, 2, 'a2'), (:ta, 3, 'a3'), (:ta, 4, 'a4'), (:ta, 5, 'a5'),
                         (:tb, 1, 'b1'), (:tb, 2, 'b2'), (:tb, 3, 'b3');
INSERT INTO a60_u VALUES (:ta, 1, 'u1'), (:ta, 2, 'u2'), (:tb, 1, 'u9');
INSERT INTO a60_trunc VALUES (:ta, 1), (:ta, 2);
INSERT INTO a60_off VALUES (:ta, 1);
INSERT INTO a60_wr VALUES (:ta, 1, 0), (:ta, 2, 0);
INSERT INTO a60_all VALUES (:ta, 1), (:ta, 2), (:ta, 3);
INSERT INTO a60_src VALUES (1, 'm1'), (2, 'm2'), (90, 'm90');

GRANT SELECT, INSERT, UPDATE, DELETE ON a60_t, a60_u, a60_off, a60_wr, a60_all, a60_sec, a60_p TO a60_app, a60_nest;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON a60_t TO a60_noctx;
GRANT SELECT ON a60_src TO a60_app;
GRANT SELECT, INSERT ON a60_side TO a60_app;

-- a function that reads a protected table (plpgsql: never inlined), and a trigger that writes one
CREATE FUNCTION a60_count() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
    RETURN (SELECT count(*) FROM a60_t);
END
$$;
CREATE FUNCTION a60_side_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO a60_t (id, v) VALUES (NEW.id, 'from trigger');
    RETURN NEW;
END
$$;
CREATE TRIGGER a60_side_ins AFTER INSERT ON a60_side FOR EACH ROW EXECUTE FUNCTION a60_side_trg();

-- the protected tables of a record: "table:r<read>,i<inserted>,u<updated>,d<deleted>" sorted by table
CREATE FUNCTION pg_temp.tabs(j jsonb) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(format('%s:r%s,i%s,u%s,d%s', x->>'table', x->>'read', x->>'inserted',
                                      x->>'updated', x->>'deleted'), ' ' ORDER BY x->>'table'), '')
      FROM jsonb_array_elements(j) x
$$;
-- the records of this file's run made under an app user, as "kind outcome sqlstate tables" (after a flush)
CREATE FUNCTION pg_temp.recs(who text) RETURNS text[] LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.access_log_flush();
    RETURN ARRAY(SELECT concat_ws(' ', kind, outcome, coalesce(sqlstate, '-'), pg_temp.tabs(tables))
                   FROM utilix.access_log
                  WHERE id > (SELECT m0 FROM a60_mark) AND app_user = who ORDER BY id);
END
$$;
-- the same for the records of a database role (statements without a context)
CREATE FUNCTION pg_temp.recs_of_role(r text) RETURNS text[] LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.access_log_flush();
    RETURN ARRAY(SELECT concat_ws(' ', kind, outcome, coalesce(sqlstate, '-'), pg_temp.tabs(tables))
                   FROM utilix.access_log
                  WHERE id > (SELECT m0 FROM a60_mark) AND db_role = r ORDER BY id);
END
$$;
-- the verification of one tenant, as "ok broken_at problem"
CREATE FUNCTION pg_temp.verify(t bigint) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.access_log_flush();
    RETURN (SELECT concat_ws(' | ', v.ok::text, coalesce(v.broken_at::text, '-'), coalesce(v.problem, '-'))
              FROM utilix.verify_access_log(t) v);
END
$$;
-- the ids of a tenant's records
CREATE FUNCTION pg_temp.ids(t bigint) RETURNS bigint[] LANGUAGE plpgsql AS $$
BEGIN
    PERFORM utilix.access_log_flush();
    RETURN ARRAY(SELECT id FROM utilix.access_log WHERE tenant_id = t ORDER BY id);
END
$$;
-- the SQLSTATE of a statement, or 'succeeded' (its effects undone either way)
CREATE FUNCTION pg_temp.try(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        EXECUTE q;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'U6001';
    EXCEPTION WHEN SQLSTATE 'U6001' THEN
        RETURN 'succeeded';
    END;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;

-- ------------------------------------------------------------------ one record per statement, exact counts
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_ins', false) \g /dev/null
INSERT INTO a60_t (id, v) VALUES (11, 'i11'), (12, 'i12'), (13, 'i13');
SELECT utilix.set_context(:'tok_sel', false) \g /dev/null
SELECT count(*) FROM a60_t \g /dev/null
SELECT v FROM a60_t WHERE id IN (1, 2) \g /dev/null
SELECT utilix.set_context(:'tok_upd', false) \g /dev/null
UPDATE a60_t SET v = 'upd' WHERE id IN (2, 3);
UPDATE a60_t SET v = 'none' WHERE id = 999;
SELECT utilix.set_context(:'tok_del', false) \g /dev/null
DELETE FROM a60_t WHERE id = 13;
SELECT utilix.set_context(:'tok_mrg', false) \g /dev/null
MERGE INTO a60_t t USING a60_src s ON t.id = s.id
    WHEN MATCHED THEN UPDATE SET v = s.v
    WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v);
SELECT utilix.set_context(:'tok_cte', false) \g /dev/null
WITH w AS (UPDATE a60_t SET v = v WHERE id = 3 RETURNING 1) SELECT count(*) FROM w \g /dev/null
SELECT utilix.set_context(:'tok_fn', false) \g /dev/null
SELECT a60_count() \g /dev/null
SELECT a60_count() + a60_count() \g /dev/null
SELECT utilix.set_context(:'tok_trg', false) \g /dev/null
INSERT INTO a60_side VALUES (21), (22);
SELECT utilix.set_context(:'tok_two', false) \g /dev/null
SELECT count(*) FROM a60_t JOIN a60_u USING (tenant_id, id) \g /dev/null
SELECT utilix.set_context(:'tok_part', false) \g /dev/null
INSERT INTO a60_p (id) VALUES (1), (2), (150);
SELECT count(*) FROM a60_p \g /dev/null
SELECT utilix.set_context(:'tok_copy', false) \g /dev/null
\copy a60_t TO '/dev/null'
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;

SELECT is(pg_temp.recs('ins-60'), ARRAY['insert ok - public.a60_t:r0,i3,u0,d0'],
          'INSERT of three rows: one record, kind insert, inserted 3');
SELECT is(pg_temp.recs('sel-60'), ARRAY['select ok - public.a60_t:r8,i0,u0,d0', 'select ok - public.a60_t:r2,i0,u0,d0'],
          'SELECT: one record per statement, read = the rows of the own tenant it returned (8, then 2 with a WHERE)');
SELECT is(pg_temp.recs('upd-60'), ARRAY['update ok - public.a60_t:r2,i0,u2,d0', 'update ok - public.a60_t:r0,i0,u0,d0'],
          'UPDATE of two rows: read 2, updated 2; an UPDATE matching nothing is still recorded, with zeros');
SELECT is(pg_temp.recs('del-60'), ARRAY['delete ok - public.a60_t:r1,i0,u0,d1'], 'DELETE of one row: deleted 1');
SELECT is(pg_temp.recs('mrg-60'), ARRAY['merge ok - public.a60_t:r7,i1,u2,d0'],
          'MERGE: kind merge, the tenant''s seven rows scanned for the join, two matched and updated, one inserted');
SELECT is(pg_temp.recs('cte-60'), ARRAY['update ok - public.a60_t:r1,i0,u1,d0'],
          'a SELECT whose WITH clause updates a row: kind update, read 1, updated 1');
SELECT is(pg_temp.recs('fn-60'), ARRAY['select ok - public.a60_t:r8,i0,u0,d0', 'select ok - public.a60_t:r16,i0,u0,d0'],
          'a statement calling a function that reads a protected table: one record for the top-level statement, with the function''s reads (called twice: 16)');
SELECT is(pg_temp.recs('trg-60'), ARRAY['insert ok - public.a60_t:r0,i2,u0,d0'],
          'an INSERT into an unprotected table whose trigger writes a protected one: one record with the trigger''s two inserts');
SELECT is(pg_temp.recs('two-60'), ARRAY['select ok - public.a60_t:r10,i0,u0,d0 public.a60_u:r2,i0,u0,d0'],
          'a join of two protected tables: one record listing both, each with its own read count');
SELECT is(pg_temp.recs('part-60'),
          ARRAY['insert ok - public.a60_p1:r0,i2,u0,d0 public.a60_p2:r0,i1,u0,d0',
                'select ok - public.a60_p1:r2,i0,u0,d0 public.a60_p2:r1,i0,u0,d0'],
          'a partitioned protected table: the rows are counted on the partitions that took them');
SELECT is(pg_temp.recs('copy-60'), ARRAY['copy ok - public.a60_t:r10,i0,u0,d0'],
          'COPY TO of a protected table: kind copy, read = the rows copied');

-- COPY FROM is refused under row level security: a superuser with a context
SELECT utilix.set_context(:'tok_copy', false) \g /dev/null
COPY a60_t (id, v) FROM STDIN;
31	c31
32	c32
\.
SELECT utilix.clear_context() \g /dev/null
SELECT is((pg_temp.recs('copy-60'))[2:], ARRAY['copy ok - public.a60_t:r0,i2,u0,d0'],
          'COPY FROM: kind copy, inserted = the rows copied');

-- ------------------------------------------------------------------ who: tenant, app user, roles, backend
SELECT is((SELECT row(tenant_id, app_user, session_role, db_role, backend_pid, client_addr, application_name)::text
             FROM utilix.access_log WHERE id > :m0 AND app_user = 'del-60'),
          row(:ta::bigint, 'del-60', session_user::text, 'a60_app', pg_backend_pid(), inet_client_addr(),
              current_setting('application_name'))::text,
          'the record names the tenant, the app user of the token, the session and database roles, the backend, the client and the application');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND app_user = 'sel-60'
              AND at >= now() AND at <= clock_timestamp() AND written_at >= at AND query_id IS NOT NULL
              AND query IS NULL AND detail IS NULL AND record_id IS NOT NULL),
          2::bigint, 'at is the statement''s start (in this transaction), written_at after it, a query id, no query text by default');
SELECT is((SELECT count(DISTINCT record_id) FROM utilix.access_log WHERE id > :m0),
          (SELECT count(*) FROM utilix.access_log WHERE id > :m0), 'every record has its own record_id');
SELECT is((SELECT array_agg(DISTINCT tenant_id) FROM utilix.access_log WHERE id > :m0 AND app_user LIKE '%-60' AND app_user <> 'bob-60' AND kind <> 'admin'),
          ARRAY[:ta::bigint], 'the statements of tenant alpha''s contexts are all on tenant alpha');

-- ------------------------------------------------------------------ after clear_context() nothing is attributed to the old context
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_stale', false) \g /dev/null
SELECT count(*) FROM a60_u \g /dev/null
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT count(*) FROM a60_u \g /dev/null
SELECT utilix._log_event('admin', NULL, 'ok', 'a60 event after clear_context') \g /dev/null
SELECT utilix.set_context(:'tok_stale', false) \g /dev/null
SELECT utilix.clear_context() \g /dev/null
SELECT utilix._log_event('admin', NULL, 'ok', 'a60 second event after clear_context') \g /dev/null
SELECT is(pg_temp.recs('stale-60'), ARRAY['select ok - public.a60_u:r2,i0,u0,d0'],
          'after clear_context(), a superuser''s statement and utilix''s events are not attributed to the cleared context');
SELECT is((SELECT concat_ws(' / ', coalesce(tenant_id::text, 'no tenant'), coalesce(app_user, 'no app user'), pg_temp.tabs(tables))
             FROM utilix.access_log
            WHERE id > (SELECT min(id) FROM utilix.access_log WHERE id > :m0 AND db_role = 'a60_app' AND app_user = 'stale-60')
              AND db_role = session_user AND kind = 'select' AND tables @> '[{"table": "public.a60_u"}]'
            ORDER BY id LIMIT 1),
          'no tenant / no app user / public.a60_u:r3,i0,u0,d0',
          '... the superuser''s SELECT right after clear_context() has no tenant and no app user');
SELECT is(ARRAY(SELECT concat_ws(' / ', coalesce(tenant_id::text, 'no tenant'), coalesce(app_user, 'no app user'))
                  FROM utilix.access_log WHERE id > :m0 AND detail LIKE 'a60%event after clear_context' ORDER BY id),
          '{"no tenant / no app user","no tenant / no app user"}'::text[],
          '... the events after clear_context() have no tenant and no app user');

-- ------------------------------------------------------------------ a rolled-back statement keeps its record
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_rb', false) \g /dev/null
SAVEPOINT a60_rb;
INSERT INTO a60_t (id, v) VALUES (41, 'rolled back'), (42, 'rolled back');
ROLLBACK TO SAVEPOINT a60_rb;
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is(pg_temp.recs('rb-60'), ARRAY['insert ok - public.a60_t:r0,i2,u0,d0'],
          'an INSERT that was rolled back still has its record');
SELECT is((SELECT count(*) FROM a60_t WHERE id IN (41, 42)), 0::bigint, '... and its rows are gone');

-- ------------------------------------------------------------------ TRUNCATE and DDL
TRUNCATE a60_trunc;
ALTER TABLE a60_t ADD COLUMN extra int;
CREATE INDEX a60_t_v ON a60_t (v);
GRANT SELECT ON a60_u TO a60_plain;
SELECT utilix.access_log_flush() \g /dev/null
SELECT is((SELECT array_agg(concat_ws(' ', kind, outcome, pg_temp.tabs(tables)) ORDER BY id) FROM utilix.access_log
            WHERE id > (SELECT max(id) FROM utilix.access_log WHERE id > :m0 AND app_user = 'rb-60' AND kind = 'insert')
              AND db_role = session_user AND kind IN ('truncate', 'ddl')),
          ARRAY['truncate ok public.a60_trunc:r0,i0,u0,d0', 'ddl ok public.a60_t:r0,i0,u0,d0',
                'ddl ok public.a60_t:r0,i0,u0,d0', 'ddl ok public.a60_u:r0,i0,u0,d0'],
          'TRUNCATE by a superuser: kind truncate; ALTER TABLE, CREATE INDEX and GRANT on protected tables: kind ddl');
SELECT is((SELECT count(*) FROM a60_trunc), 0::bigint, 'the TRUNCATE took effect');

-- ------------------------------------------------------------------ denied and failed statements at the top level
\echo '# the four ERROR lines that follow on stderr are expected (denied and failing statements at the top level)'
\set ON_ERROR_STOP 0
\set ON_ERROR_ROLLBACK on
\set VERBOSITY terse
SET LOCAL ROLE a60_noctx;
SELECT count(*) FROM a60_t;
RESET ROLE;
SET LOCAL ROLE a60_nopriv;
SELECT count(*) FROM a60_t;
RESET ROLE;
SET LOCAL ROLE a60_owner;
TRUNCATE a60_trunc;
RESET ROLE;
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_dup', false) \g /dev/null
INSERT INTO a60_t (id, v) VALUES (1, 'duplicate');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
\set VERBOSITY default
\set ON_ERROR_ROLLBACK off
\set ON_ERROR_STOP 1

SELECT is(pg_temp.recs_of_role('a60_noctx'), ARRAY['select denied 42501 public.a60_t:r0,i0,u0,d0'],
          'a role without a context reading a protected table: outcome denied, SQLSTATE 42501');
SELECT is((SELECT row(tenant_id, app_user)::text FROM utilix.access_log WHERE id > :m0 AND db_role = 'a60_noctx'),
          row(NULL::bigint, NULL::text)::text, '... with no tenant and no app user');
SELECT is(pg_temp.recs_of_role('a60_nopriv'), ARRAY['select denied 42501 public.a60_t:r0,i0,u0,d0'],
          'a role without the SELECT privilege: outcome denied, SQLSTATE 42501');
SELECT is(pg_temp.recs_of_role('a60_owner'), ARRAY['truncate denied 42501 public.a60_trunc:r0,i0,u0,d0'],
          'the owner (under row level security) truncating a protected table: kind truncate, outcome denied');
SELECT is((SELECT concat_ws(' ', kind, outcome, sqlstate) FROM utilix.access_log WHERE id > :m0 AND app_user = 'dup-60'),
          'insert error 23505', 'a unique violation: kind insert, outcome error, SQLSTATE 23505');
SELECT ok(EXISTS (SELECT 1 FROM utilix.access_log WHERE id > :m0 AND app_user = 'dup-60' AND tenant_id = :ta
                     AND db_role = 'a60_app'), '... on the tenant and app user of the context');

-- ------------------------------------------------------------------ errors caught by the statement itself
SET LOCAL ROLE a60_nest;
SELECT throws_ok('SELECT count(*) FROM a60_t', '42501', NULL, 'throws_ok: reading without a context is refused (42501)');
SELECT utilix.set_context(:'tok_nest', false) \g /dev/null
SELECT throws_ok($$INSERT INTO a60_t (id, v) VALUES (1, 'duplicate')$$, '23505', NULL, 'throws_ok: a duplicate key is refused (23505)');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT utilix.access_log_flush() \g /dev/null
SELECT is((SELECT concat_ws(' ', outcome, sqlstate) FROM utilix.access_log
            WHERE id > :m0 AND db_role = 'a60_nest' AND app_user IS NULL),
          'denied 42501', 'a denied read inside a statement that catches the error is still recorded as denied (42501)');
-- a handled error that is not a refusal: the statement went on and succeeded
SELECT is((SELECT concat_ws(' ', outcome, sqlstate) FROM utilix.access_log WHERE id > :m0 AND app_user = 'nest-60'),
          'ok', 'a failed INSERT that the statement itself catches leaves the statement ok (only refusals mark it)');

-- ------------------------------------------------------------------ who reads the log
SELECT utilix.access_log_flush() \g /dev/null
SELECT count(*) AS n_ta FROM utilix.access_log WHERE id > :m0 AND tenant_id = :ta \gset
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_audit_a', false) \g /dev/null
SELECT is((SELECT count(*) FROM utilix.access_history WHERE id > :m0 AND id <= (SELECT max(id) FROM utilix.access_history WHERE tenant_id = :ta)),
          :n_ta::bigint, 'an audit context reads every record of its tenant in utilix.access_history');
SELECT is((SELECT count(*) FROM utilix.access_history WHERE tenant_id IS DISTINCT FROM :ta), 0::bigint,
          '... and only those: no record of another tenant, none without a tenant');
SELECT is((SELECT count(*) FROM utilix.access_history WHERE app_user = 'bob-60'), 0::bigint,
          '... tenant beta''s records are invisible');
SELECT is(ARRAY(SELECT kind FROM utilix.access_history WHERE id > :m0 AND app_user = 'upd-60'), '{update,update}'::text[],
          '... with the records of its own app users');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE tenant_id IS DISTINCT FROM :ta), 0::bigint,
          'utilix.access_log itself has the same row level security');
SELECT utilix.set_context(:'tok_noaudit', false) \g /dev/null
SELECT is((SELECT count(*) FROM utilix.access_history), 0::bigint, 'a context without the audit right sees no record');
SELECT utilix.clear_context() \g /dev/null
SELECT throws_ok('SELECT count(*) FROM utilix.access_history', '42501', NULL, 'no context at all: reading the history is refused (42501)');
-- bob's statement, so that tenant beta has a record of this run
SELECT utilix.set_context(:'tok_b', false) \g /dev/null
SELECT count(*) FROM a60_t \g /dev/null
SELECT utilix.access_log_flush() \g /dev/null
SELECT is((SELECT count(*) FROM utilix.access_history WHERE app_user = 'bob-60' AND id > :m0), 1::bigint,
          'tenant beta''s auditor sees its own record');
SELECT is((SELECT count(*) FROM utilix.access_history WHERE tenant_id = :ta), 0::bigint, '... and none of tenant alpha');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is(pg_temp.recs('bob-60'), ARRAY['select ok - public.a60_t:r3,i0,u0,d0'], 'tenant beta reads its own three rows');
SET LOCAL ROLE a60_op;
SELECT is((SELECT count(DISTINCT tenant_id) FROM utilix.access_history WHERE id > :m0 AND tenant_id IN (:ta, :tb)), 2::bigint,
          'an operator (no context) reads the records of every tenant');
SELECT ok((SELECT count(*) FROM utilix.access_history WHERE id > :m0 AND tenant_id IS NULL) > 0,
          '... and the records without a tenant');
RESET ROLE;

-- ------------------------------------------------------------------ append-only, for everyone
SELECT id AS rec_ins, tableoid::regclass AS part FROM utilix.access_log
 WHERE id > :m0 AND app_user = 'ins-60' \gset
SELECT throws_ok(format('UPDATE utilix.access_log SET detail = %L WHERE id = %s', 'forged', :rec_ins), '42501', NULL,
                 'the superuser cannot UPDATE the access log (42501)');
SELECT throws_ok(format('DELETE FROM utilix.access_log WHERE id = %s', :rec_ins), '42501', NULL,
                 'the superuser cannot DELETE from the access log (42501)');
SELECT throws_ok('TRUNCATE utilix.access_log', '42501', NULL, 'the superuser cannot TRUNCATE the access log (42501)');
SELECT throws_ok(format('DELETE FROM %s WHERE id = %s', :'part', :rec_ins), '42501', NULL,
                 'nor DELETE from a day partition directly (42501)');
SELECT throws_ok(format('TRUNCATE %s', :'part'), '42501', NULL, 'nor TRUNCATE a day partition (42501)');
SELECT is(pg_temp.try(format('DROP TABLE %s', :'part')), '2BP01', 'nor DROP a day partition (2BP01: it belongs to the extension)');
SELECT is(pg_temp.try(format('ALTER EXTENSION utilix DROP TABLE %s; DROP TABLE %s', :'part', :'part')), '42501',
          '... and taken out of the extension, the DDL guard still refuses to drop it (42501)');
SELECT is(pg_temp.try(format('ALTER TABLE utilix.access_log DETACH PARTITION %s', :'part')), '42501',
          'nor DETACH a day partition, after which it could be emptied, or renamed and dropped (42501)');
SELECT throws_ok('UPDATE utilix.access_log_chain SET last_id = 0', '42501', NULL, 'the chain heads cannot be moved back (42501)');
SELECT throws_ok('DELETE FROM utilix.access_log_chain', '42501', NULL, 'the chain heads cannot be deleted (42501)');
SELECT throws_ok('TRUNCATE utilix.access_log_chain', '42501', NULL, 'the chain heads cannot be truncated (42501)');
SELECT throws_ok('DELETE FROM utilix.access_log_anchor', '42501', NULL, 'the anchors cannot be deleted (42501)');
SET LOCAL ROLE a60_op;
SELECT throws_ok(format('UPDATE utilix.access_log SET detail = %L WHERE id = %s', 'forged', :rec_ins), '42501', NULL,
                 'an operator cannot UPDATE the access log (42501)');
SELECT throws_ok('INSERT INTO utilix.access_log (id, at, kind, outcome, record_id, hash) VALUES (0, now(), ''select'', ''ok'', gen_random_uuid(), ''\x00'')',
                 '42501', NULL, 'an operator cannot INSERT into the access log (42501)');
RESET ROLE;
SELECT is((SELECT row(detail IS NULL, pg_temp.tabs(tables))::text FROM utilix.access_log WHERE id = :rec_ins),
          row(true, 'public.a60_t:r0,i3,u0,d0')::text, 'the record is unchanged after all these attempts');

-- ------------------------------------------------------------------ the hash chain: tampering is caught
-- four events per tamper tenant (after whatever creating the tenant recorded)
SELECT utilix._log_event('admin', t, 'ok', 'a60 chain event ' || i)
  FROM unnest(ARRAY[:tx_alter, :tx_rehash, :tx_del, :tx_swap, :tx_last, :tx_all, :tx_clean]::bigint[]) t,
       generate_series(1, 4) i \g /dev/null
SELECT pg_temp.ids(:tx_alter) AS ids_alter, pg_temp.ids(:tx_rehash) AS ids_rehash, pg_temp.ids(:tx_del) AS ids_del,
       pg_temp.ids(:tx_swap) AS ids_swap, pg_temp.ids(:tx_last) AS ids_last, pg_temp.ids(:tx_clean) AS ids_clean \gset
SELECT is(ARRAY(SELECT v.ok FROM utilix.verify_access_log() v
                 WHERE v.tenant_id IN (:tx_alter, :tx_rehash, :tx_del, :tx_swap, :tx_last, :tx_all, :tx_clean)),
          '{t,t,t,t,t,t,t}'::boolean[], 'before tampering, every chain of the tamper tenants verifies');
SELECT is((SELECT v.records FROM utilix.verify_access_log(:tx_clean) v), cardinality(:'ids_clean'::bigint[])::bigint,
          'verify_access_log() counts the records of a tenant');
SELECT cmp_ok(cardinality(:'ids_clean'::bigint[]), '>=', 4, 'each tamper tenant has at least four records');

SET LOCAL session_replication_role = replica;
-- 1. a field altered
UPDATE utilix.access_log SET detail = 'a60 forged' WHERE id = (:'ids_alter'::bigint[])[2];
-- 2. a field altered and its hash recomputed
UPDATE utilix.access_log SET detail = 'a60 forged' WHERE id = (:'ids_rehash'::bigint[])[2];
UPDATE utilix.access_log l SET hash = utilix._access_log_hash(l) WHERE id = (:'ids_rehash'::bigint[])[2];
-- 3. a record in the middle deleted
DELETE FROM utilix.access_log WHERE id = (:'ids_del'::bigint[])[2];
-- 4. two records swapped (their ids exchanged)
UPDATE utilix.access_log SET id = CASE WHEN id = (:'ids_swap'::bigint[])[2] THEN (:'ids_swap'::bigint[])[3]
                                       ELSE (:'ids_swap'::bigint[])[2] END
 WHERE id IN ((:'ids_swap'::bigint[])[2], (:'ids_swap'::bigint[])[3]);
-- 5. the last record deleted
DELETE FROM utilix.access_log WHERE id = (:'ids_last'::bigint[])[cardinality(:'ids_last'::bigint[])];
-- 6. every record of a tenant deleted
DELETE FROM utilix.access_log WHERE tenant_id = :tx_all;
SET LOCAL session_replication_role = origin;

SELECT is(pg_temp.verify(:tx_alter), format('false | %s | this record was altered', (:'ids_alter'::bigint[])[2]),
          'an altered record: verification fails at that record (altered)');
SELECT is(pg_temp.verify(:tx_rehash),
          format('false | %s | the record before this one is missing, or records were reordered', (:'ids_rehash'::bigint[])[3]),
          'an altered record with a recomputed hash: verification fails at the next record (its prev_hash no longer matches)');
SELECT is(pg_temp.verify(:tx_del),
          format('false | %s | the record before this one is missing, or records were reordered', (:'ids_del'::bigint[])[3]),
          'a deleted record in the middle: verification fails at the record after it');
SELECT is(pg_temp.verify(:tx_swap),
          format('false | %s | the record before this one is missing, or records were reordered', (:'ids_swap'::bigint[])[2]),
          'two records swapped: verification fails at the first of them');
SELECT is(pg_temp.verify(:tx_last),
          format('false | %s | records after this one are missing', (:'ids_last'::bigint[])[cardinality(:'ids_last'::bigint[]) - 1]),
          'the last record deleted: verification fails (records after the last remaining one are missing)');
SELECT is(pg_temp.verify(:tx_all), 'false | - | the records of this tenant are missing',
          'every record of a tenant deleted: verification fails (the records of this tenant are missing)');
SELECT is(pg_temp.verify(:tx_clean), format('true | - | -'), 'an untampered tenant still verifies');
SELECT is(ARRAY(SELECT v.tenant_id FROM utilix.verify_access_log() v
                 WHERE v.tenant_id IN (:tx_alter, :tx_rehash, :tx_del, :tx_swap, :tx_last, :tx_all, :tx_clean, :ta, :tb)
                   AND NOT v.ok ORDER BY 1),
          ARRAY[:tx_alter, :tx_rehash, :tx_del, :tx_swap, :tx_last, :tx_all]::bigint[],
          'verify_access_log() over all tenants reports exactly the six tampered ones of this file');
SELECT is(pg_temp.verify(:ta), 'true | - | -', 'tenant alpha''s chain verifies');
SELECT is((SELECT row(v.ok, v.records)::text FROM utilix.verify_access_log(:tx_clean, now() - interval '1 hour') v),
          row(true, cardinality(:'ids_clean'::bigint[]))::text, 'verify_access_log(tenant, since) verifies the records since then');
SELECT is((SELECT row(v.ok, v.records)::text FROM utilix.verify_access_log(:tx_clean, now() + interval '1 day') v),
          row(true, 0)::text, 'verify_access_log(tenant, since) with no record since then: nothing to break, ok');

-- ------------------------------------------------------------------ export
SELECT is((SELECT count(*) FILTER (WHERE sha256(convert_to(canonical, 'UTF8')) = decode(hash, 'hex'))
             FROM utilix.export_access_log(:ta, now() - interval '1 hour', now() + interval '1 hour')),
          (SELECT count(*) FROM utilix.access_log WHERE tenant_id = :ta),
          'export_access_log(): every record of the tenant, and sha256(canonical) = hash for each');
SELECT is((SELECT count(*) FROM (SELECT prev_hash, lag(hash) OVER (ORDER BY id) AS before
                                   FROM utilix.export_access_log(:ta, now() - interval '1 hour', now() + interval '1 hour')) e
            WHERE prev_hash IS DISTINCT FROM before), 0::bigint,
          'each exported record''s prev_hash is the hash of the one before (the first: none)');
SELECT ok((SELECT bool_and(record ? 'app_user' AND record ? 'tables' AND NOT record ? 'hash' AND NOT record ? 'prev_hash')
             FROM utilix.export_access_log(:ta, now() - interval '1 hour', now() + interval '1 hour')),
          'the exported record has the fields, without the hashes');
SELECT is((SELECT count(*) FROM utilix.export_access_log(:ta, now() - interval '1 hour', now() - interval '30 minutes')), 0::bigint,
          'export_access_log() of a range without records: none');
SELECT is((SELECT count(*) FROM utilix.export_access_log(:ta, now() - interval '1 hour', now() + interval '1 hour')
            WHERE canonical LIKE '%a60 forged%'), 0::bigint, 'tenant alpha''s export is untouched by the tampering elsewhere');
-- as the session user (a superuser's session that merely SET ROLE passes utilix._audit_scope())
SET LOCAL SESSION AUTHORIZATION a60_app;
SELECT utilix.set_context(:'tok_audit_a', false) \g /dev/null
SELECT is((SELECT count(*) FROM utilix.export_access_log(:ta, now() - interval '1 hour', now() + interval '1 hour')
            WHERE sha256(convert_to(canonical, 'UTF8')) = decode(hash, 'hex')),
          (SELECT count(*) FROM utilix.access_history WHERE tenant_id = :ta),
          'an auditor exports its own tenant''s records, with matching hashes');
SELECT throws_ok(format('SELECT * FROM utilix.export_access_log(%s, now() - interval ''1 hour'', now())', :tb), '42501', NULL,
                 'an auditor cannot export another tenant''s records (42501)');
SELECT throws_ok(format('SELECT * FROM utilix.verify_access_log(%s)', :tb), '42501', NULL,
                 'an auditor cannot verify another tenant''s chain (42501)');
SELECT utilix.set_context(:'tok_noaudit', false) \g /dev/null
SELECT throws_ok(format('SELECT * FROM utilix.export_access_log(%s, now() - interval ''1 hour'', now())', :ta), '42501', NULL,
                 'a context without the audit right cannot export (42501)');
SELECT throws_ok('SELECT * FROM utilix.verify_access_log()', '42501', NULL, 'a context without the audit right cannot verify (42501)');
SELECT utilix.clear_context() \g /dev/null
SELECT throws_ok(format('SELECT * FROM utilix.export_access_log(%s, now() - interval ''1 hour'', now())', :ta), '42501', NULL,
                 'no context at all: export is refused (42501)');
RESET SESSION AUTHORIZATION;

-- ------------------------------------------------------------------ per-table settings
SET LOCAL ROLE a60_op;
SELECT lives_ok($$SELECT utilix.set_access_log('a60_off', 'off')$$, 'an operator sets a table''s access log off');
SELECT lives_ok($$SELECT utilix.set_access_log('a60_wr', 'writes')$$, 'an operator sets a table''s access log to writes');
SELECT lives_ok($$SELECT utilix.set_access_log('a60_all', 'all')$$, 'an operator sets a table''s access log to all');
RESET ROLE;
SELECT is((SELECT array_agg(table_name || '=' || coalesce(access_log, 'default') ORDER BY table_name) FROM utilix.protected_table
            WHERE table_name IN ('a60_off', 'a60_wr', 'a60_all', 'a60_t')),
          '{a60_all=all,a60_off=off,a60_t=default,a60_wr=writes}'::text[], 'the settings are kept in utilix.protected_table (NULL: the default)');
SELECT utilix.access_log_flush() \g /dev/null
SELECT ok((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND kind = 'admin' AND outcome = 'ok'
              AND detail = 'access log of public.a60_off set to off') = 1,
          'setting a table''s access log is itself recorded (kind admin)');
SELECT is((SELECT db_role FROM utilix.access_log WHERE id > :m0 AND detail = 'access log of public.a60_off set to off'),
          'a60_op', '... naming the role that called set_access_log() (a60_op) as db_role, not the function''s owner');
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_off', false) \g /dev/null
SELECT count(*) FROM a60_off \g /dev/null
INSERT INTO a60_off (id) VALUES (2);
SELECT count(*) FROM a60_off JOIN a60_t USING (tenant_id, id) \g /dev/null
SELECT utilix.set_context(:'tok_wr', false) \g /dev/null
SELECT count(*) FROM a60_wr \g /dev/null
UPDATE a60_wr SET n = 1 WHERE id = 1;
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is(pg_temp.recs('off-60'), ARRAY['select ok - public.a60_t:r12,i0,u0,d0'],
          'a table set off: no record of its reads and writes; a join lists only the other table');
SELECT is(pg_temp.recs('wr-60'), ARRAY['update ok - public.a60_wr:r1,i0,u1,d0'],
          'a table set to writes: the SELECT is not recorded, the UPDATE is');
SELECT is((SELECT count(*) FROM a60_off WHERE id = 2), 1::bigint, 'the unrecorded INSERT did take effect');
SET LOCAL ROLE a60_op;
SELECT lives_ok($$SELECT utilix.set_access_log('a60_wr', NULL)$$, 'set_access_log(table, NULL) goes back to the default');
RESET ROLE;
-- the global setting, superuser only
SET LOCAL utilix.access_log = 'off';
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_glob', false) \g /dev/null
SELECT count(*) FROM a60_t \g /dev/null
SELECT count(*) FROM a60_all \g /dev/null
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL utilix.access_log = 'writes';
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_glob', false) \g /dev/null
SELECT count(*) FROM a60_wr \g /dev/null
UPDATE a60_wr SET n = 2 WHERE id = 2;
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL utilix.access_log = 'all';
SELECT is(pg_temp.recs('glob-60'),
          ARRAY['select ok - public.a60_all:r3,i0,u0,d0', 'update ok - public.a60_wr:r1,i0,u1,d0'],
          'utilix.access_log = off: only a table set to all is recorded; = writes: only the UPDATE (of a table back on the default)');
SET LOCAL ROLE a60_plain;
SELECT throws_ok($$SET utilix.access_log = 'off'$$, '42501', NULL, 'a role that is not a superuser cannot SET utilix.access_log (42501)');
SELECT throws_ok($$SET LOCAL utilix.access_log = 'writes'$$, '42501', NULL, '... nor SET LOCAL it (42501)');
SELECT throws_ok($$SELECT set_config('utilix.access_log', 'off', true)$$, '42501', NULL, '... nor set_config() it (42501)');
SELECT throws_ok($$SET utilix.access_log_query_text = on$$, '42501', NULL, '... nor SET utilix.access_log_query_text (42501)');
SELECT throws_ok($$CREATE FUNCTION pg_temp.a60_quiet() RETURNS int LANGUAGE sql SET utilix.access_log = 'off' AS 'SELECT 1'$$,
                 '42501', NULL, '... nor create a function that sets it (42501)');
SELECT is(current_setting('utilix.access_log'), 'all', 'the setting is unchanged');
SELECT throws_ok($$SELECT utilix.set_access_log('a60_t', 'off')$$, '42501', NULL,
                 'a role that is not an operator cannot call set_access_log() (42501)');
RESET ROLE;

-- ------------------------------------------------------------------ query text
SET LOCAL utilix.access_log_query_text = on;
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_qt', false) \g /dev/null
SELECT count(*) FROM a60_t WHERE v = 'secret-literal-123' \g /dev/null
SELECT count(*) FROM a60_t WHERE v <> E'secret-e\'scaped-77' AND v <> $q$secret-dollar-77$q$ AND v <> U&'secret-u\0041' \g /dev/null
SELECT count(*) FROM a60_t WHERE v = 'a''b' -- the comment isn't a literal
   AND v <> 'secret-after-comment' \g /dev/null
SELECT count(*) FROM a60_t WHERE v = 'a' /* it's a comment */ AND v <> 'secret-after-block' \g /dev/null
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL utilix.access_log_query_text = off;
SELECT utilix.access_log_flush() \g /dev/null
SELECT is((SELECT rtrim(query) FROM utilix.access_log WHERE id > :m0 AND app_user = 'qt-60' ORDER BY id LIMIT 1),
          $$SELECT count(*) FROM a60_t WHERE v = '***'$$,
          'with utilix.access_log_query_text the record carries the statement with its string literal masked');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND app_user = 'qt-60'
              AND query LIKE '%SELECT count(*) FROM a60_t WHERE%'), 4::bigint, 'each of the four statements has its text');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND app_user = 'qt-60'
              AND (query LIKE '%secret-literal-123%' OR query LIKE '%secret-e%' OR query LIKE '%secret-dollar%'
                   OR query LIKE '%secret-u%')), 0::bigint,
          'no literal (plain, E-escaped, dollar-quoted, Unicode) appears in the query column');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND app_user = 'qt-60'
              AND query LIKE '%secret-after-comment%'), 0::bigint,
          'a literal after a -- comment with an apostrophe is masked too');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND app_user = 'qt-60'
              AND query LIKE '%secret-after-block%'), 0::bigint,
          'a literal after a /* */ comment with an apostrophe is masked too');

-- ------------------------------------------------------------------ encrypted plaintext never reaches the log
SET LOCAL utilix.access_log_query_text = on;
SET LOCAL ROLE a60_app;
SELECT utilix.set_context(:'tok_enc', false) \g /dev/null
INSERT INTO a60_sec (id, secret) VALUES (1, 'xyzzy-plain-60-one');
UPDATE a60_sec SET secret = 'xyzzy-plain-60-two' WHERE id = 1;
SELECT count(*) FROM a60_sec WHERE secret = 'xyzzy-plain-60-two' \g /dev/null
PREPARE a60_ins(text) AS INSERT INTO a60_sec (id, secret) VALUES (2, $1);
EXECUTE a60_ins('xyzzy-plain-60-three');
DO $$ BEGIN INSERT INTO a60_sec (id, secret) VALUES (3, 'xyzzy-plain-60-four'); END $$;
SELECT secret FROM a60_sec ORDER BY id \g /dev/null
SELECT is(ARRAY(SELECT secret::text FROM a60_sec ORDER BY id),
          '{xyzzy-plain-60-two,xyzzy-plain-60-three,xyzzy-plain-60-four}'::text[], 'the tenant reads its plaintext back');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SET LOCAL utilix.access_log_query_text = off;
SELECT is(pg_temp.recs('enc-60'),
          ARRAY['insert ok - public.a60_sec:r0,i1,u0,d0', 'update ok - public.a60_sec:r1,i0,u1,d0',
                'select ok - public.a60_sec:r1,i0,u0,d0', 'insert ok - public.a60_sec:r0,i1,u0,d0',
                'insert ok - public.a60_sec:r0,i1,u0,d0', 'select ok - public.a60_sec:r3,i0,u0,d0',
                'select ok - public.a60_sec:r3,i0,u0,d0'],
          'the statements on the encrypted table are recorded (EXECUTE and DO included)');
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND app_user = 'enc-60' AND query IS NOT NULL), 7::bigint,
          '... each with its query text');
SELECT is((SELECT count(*) FROM utilix.access_log l WHERE id > :m0 AND l::text LIKE '%xyzzy%'), 0::bigint,
          'no column of any record of this run holds the plaintext of the encrypted column');
SELECT is((SELECT count(*) FROM utilix.export_access_log(:ta, now() - interval '1 hour', now() + interval '1 hour') e
            WHERE e.canonical LIKE '%xyzzy%' OR e.record::text LIKE '%xyzzy%' OR e.canonical LIKE '%secret-literal-123%'),
          0::bigint, 'the export (records and canonical text) holds no plaintext and no masked literal');
SELECT ok((SELECT bool_and(utilix.is_sealed(secret)) FROM a60_sec), 'the stored values are sealed');

-- ------------------------------------------------------------------ login and admin events
SET LOCAL utilix.scrypt_log2n = 10;
SELECT utilix.set_context(:'tok_admin', false) \g /dev/null
SELECT utilix.create_user('user60', 'Initial pw for user 6o') \g /dev/null
SAVEPOINT a60_admin;
SELECT utilix.create_user('temp60', 'Initial pw for temp 6o') \g /dev/null
ROLLBACK TO SAVEPOINT a60_admin;
SELECT utilix.clear_context() \g /dev/null
SELECT is(utilix.login('a60 alpha', 'user60', 'Wrong password 60'), NULL::text, 'a wrong password: NULL');
SELECT is(utilix.login('a60 alpha', 'ghost60', 'Whatever password 60'), NULL::text, 'an unknown user: NULL');
SELECT is(utilix.login('a60 nowhere', 'user60', 'Initial pw for user 6o'), NULL::text, 'an unknown tenant: NULL');
SELECT isnt(utilix.login('a60 alpha', 'user60', 'Initial pw for user 6o'), NULL::text, 'the right password: a token');
SELECT utilix.access_log_flush() \g /dev/null
SELECT is((SELECT count(*) FROM utilix.app_user WHERE login = 'temp60'), 0::bigint, 'the rolled-back create_user left no user');
SELECT is((SELECT concat_ws(' / ', kind, outcome, (tenant_id = :ta)::text, detail) FROM utilix.access_log
            WHERE id > :m0 AND app_user = 'temp60'),
          'admin / ok / true / create user: read', '... but its admin record stays in the access log');
SELECT is(ARRAY(SELECT octet_length(detail) - CASE WHEN tenant_id IS NULL THEN 8 ELSE 0 END
                  FROM utilix.access_log WHERE id > :m0 AND app_user IN ('user60', 'ghost60') AND outcome = 'denied' ORDER BY id),
          ARRAY[26, 26, 26],
          'the detail of a refused login has one length whatever the reason (8 more without a tenant): the record''s size tells nothing');
SELECT is(ARRAY(SELECT concat_ws(' / ', kind, outcome, sqlstate, coalesce(tenant_id = :ta, false)::text, rtrim(detail))
                  FROM utilix.access_log WHERE id > :m0 AND app_user IN ('user60', 'ghost60') ORDER BY id),
          ARRAY['admin / ok / true / create user: read',
                'login / denied / 42501 / true / login: wrong password',
                'login / denied / 42501 / true / login: unknown user',
                'login / denied / 42501 / false / login: unknown user',
                'login / ok / true / login'],
          'logins are recorded: kind login, denied (42501) with the reason for failures, ok for success; an unknown tenant without a tenant');
SET LOCAL ROLE a60_op;
SELECT ok(EXISTS (SELECT 1 FROM utilix.security_events WHERE kind = 'login denied' AND detail LIKE '%user ghost60%'),
          'utilix.security_events shows the denied login');
SELECT ok(EXISTS (SELECT 1 FROM utilix.security_events e JOIN utilix.access_history h
                     ON e.detail LIKE 'record ' || h.id || ';%'
                  WHERE e.kind = 'select denied' AND h.id > :m0 AND h.db_role = 'a60_noctx'),
          'utilix.security_events shows the denied read of the role without a context');
SELECT cmp_ok((SELECT written FROM utilix.access_log_status), '>=',
              (SELECT count(*) FROM utilix.access_history WHERE id > :m0), 'access_log_status counts the written records');
SELECT is((SELECT lost FROM utilix.access_log_status), 0::bigint, 'no record was lost');
RESET ROLE;

-- ------------------------------------------------------------------ bad input
SET LOCAL ROLE a60_op;
SELECT throws_ok($$SELECT utilix.set_access_log('a60_t', 'bogus')$$, '22023', NULL, 'set_access_log: an unknown mode is 22023');
SELECT throws_ok($$SELECT utilix.set_access_log('a60_unprot', 'off')$$, '55000', NULL,
                 'set_access_log: a table that is not protected is 55000');
SELECT throws_ok($$SELECT utilix.set_access_log(NULL, 'off')$$, '22004', NULL, 'set_access_log: a NULL table is 22004');
SELECT throws_ok($$SELECT utilix.set_access_log('a60_no_such_table', 'off')$$, '42P01', NULL,
                 'set_access_log: an unknown table is 42P01');
SELECT throws_ok($$SELECT * FROM utilix.export_access_log(NULL, now() - interval '1 day', now())$$, '22004', NULL,
                 'export_access_log: a NULL tenant is 22004');
SELECT throws_ok(format('SELECT * FROM utilix.export_access_log(%s, NULL, now())', :ta), '22004', NULL,
                 'export_access_log: a NULL start is 22004');
SELECT throws_ok(format('SELECT * FROM utilix.export_access_log(%s, now(), now() - interval ''1 hour'')', :ta), '22023', NULL,
                 'export_access_log: a range that ends before it starts is 22023');
SELECT throws_ok($$SELECT utilix.load_access_log_spill('\x00'::bytea)$$, '22023', NULL,
                 'load_access_log_spill: a byte that is no spill is 22023');
SELECT throws_ok($$SELECT utilix.load_access_log_spill(convert_to(repeat('UTXALOG1', 8), 'UTF8'))$$, '22023', NULL,
                 'load_access_log_spill: a spill header of another build is 22023');
RESET ROLE;
SELECT throws_ok($$SELECT utilix._log_event('select', NULL, 'ok')$$, '22023', NULL,
                 '_log_event: statement kinds are not events (22023)');
SELECT throws_ok($$SELECT utilix._log_event('admin', NULL, 'maybe')$$, '22023', NULL, '_log_event: an unknown outcome is 22023');
SELECT throws_ok($$SELECT utilix._log_event(NULL, NULL, 'ok')$$, '22004', NULL, '_log_event: a NULL kind is 22004');
SET LOCAL ROLE a60_plain;
SELECT throws_ok($$SELECT utilix._log_event('admin', NULL, 'ok', 'a60 forged event')$$, '42501', NULL,
                 '_log_event: PUBLIC has no EXECUTE (42501)');
SELECT throws_ok($$SELECT utilix.load_access_log_spill('\x00'::bytea)$$, '42501', NULL,
                 'load_access_log_spill: not for a plain role (42501)');
SELECT throws_ok('SELECT * FROM utilix.access_log_status', '42501', NULL, 'access_log_status: not for a plain role (42501)');
SELECT throws_ok('SELECT utilix.run_access_log_maintenance()', '42501', NULL,
                 'run_access_log_maintenance: not for a plain role (42501)');
SELECT is(utilix.access_log_flush(), true, 'access_log_flush() is open to everyone and returns true');
RESET ROLE;
SELECT utilix.access_log_flush() \g /dev/null
SELECT is((SELECT count(*) FROM utilix.access_log WHERE id > :m0 AND detail = 'a60 forged event'),
          0::bigint, 'the refused _log_event made no record');

SELECT * FROM finish();
ROLLBACK;
