-- 23_side_channels: other tenants' rows do not leak through functions or
-- casts in WHERE (the tenant qual is a security barrier evaluated first),
-- through pg_stats after ANALYZE, or through EXPLAIN's plans and row counts.
BEGIN;
SELECT plan(31);

-- ------------------------------------------------------------------ set-up
CREATE ROLE s23_owner NOLOGIN;
CREATE ROLE s23_app NOLOGIN;
CREATE ROLE s23_issuer NOLOGIN IN ROLE utilix_issuer;
SELECT utilix.create_tenant('s23 alpha') AS ta, utilix.create_tenant('s23 beta') AS tb \gset
SET LOCAL ROLE s23_issuer;
SELECT utilix.issue_context(:ta, 'alice') AS tok_a \gset
RESET ROLE;

CREATE TABLE s23_items (tenant_id bigint NOT NULL, id int NOT NULL, secret text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE INDEX s23_items_secret ON s23_items (secret);
ALTER TABLE s23_items OWNER TO s23_owner;
SELECT utilix.protect('s23_items') \g /dev/null
RESET utilix.internal_ddl;   -- works around a bug asserted in 22_ddl_guard (protect() leaves it on)
-- A's secrets are numbers; B's are not (a cast to int would fail on them)
INSERT INTO s23_items SELECT :ta, i, (100 + i)::text FROM generate_series(1, 3) i;
INSERT INTO s23_items SELECT :tb, i, 'b-secret-' || i FROM generate_series(1, 200) i;
CREATE VIEW s23_view WITH (security_invoker = true) AS SELECT id, secret FROM s23_items;
ALTER VIEW s23_view OWNER TO s23_owner;
GRANT SELECT, UPDATE, DELETE ON s23_items, s23_view TO s23_app;

-- a leaky function: records (and prints) every value it is shown
CREATE TEMP TABLE s23_seen (v text);
GRANT INSERT, SELECT ON s23_seen TO s23_app;
CREATE FUNCTION pg_temp.peek(v text) RETURNS boolean LANGUAGE plpgsql VOLATILE COST 0.0001 AS $$
BEGIN
    INSERT INTO pg_temp.s23_seen VALUES (v);
    RAISE NOTICE 'peek saw %', v;
    RETURN true;
END
$$;

-- ------------------------------------------------------------------ functions and casts in WHERE
SET LOCAL ROLE s23_app;
SET LOCAL client_min_messages = warning;   -- the NOTICEs of peek() are not part of the TAP stream
SET LOCAL enable_seqscan = off;            -- tempt the planner to use the index on secret
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT is((SELECT count(*) FROM s23_items WHERE pg_temp.peek(secret)), 3::bigint,
          'a cheap leaky function in WHERE: 3 rows');
SELECT is((SELECT count(*) FROM s23_items WHERE secret = 'b-secret-7' OR pg_temp.peek(secret)), 3::bigint,
          'a leaky function under OR: 3 rows');
SELECT is((SELECT count(*) FROM s23_items WHERE secret > 'a' AND pg_temp.peek(secret)), 0::bigint,
          'a leaky function beside an indexable condition that matches only B''s rows: 0 rows');
SELECT is((SELECT count(*) FROM s23_view WHERE pg_temp.peek(secret)), 3::bigint,
          'a leaky function over a security_invoker view: 3 rows');
SELECT is((SELECT count(*) FROM (SELECT secret FROM s23_items OFFSET 0) s WHERE pg_temp.peek(s.secret)), 3::bigint,
          'a leaky function over a subquery: 3 rows');
SELECT is((SELECT count(*) FROM s23_items a JOIN s23_items b ON pg_temp.peek(a.secret || '/' || b.secret)), 9::bigint,
          'a leaky function as a join condition: 9 pairs');
SELECT lives_ok($$UPDATE s23_items SET secret = secret WHERE pg_temp.peek(secret)$$, 'a leaky function in UPDATE ... WHERE');
SELECT lives_ok($$DELETE FROM s23_items WHERE NOT pg_temp.peek(secret)$$, 'a leaky function in DELETE ... WHERE');
RESET enable_seqscan;
SELECT is((SELECT count(*) FROM s23_seen), 3 + 3 + 0 + 3 + 3 + 9 + 3 + 3::bigint,
          'the leaky function was called once per visible row (or pair) only');
SELECT is((SELECT count(*) FROM s23_seen WHERE v LIKE '%b-secret%'), 0::bigint,
          'the leaky function never saw one of tenant B''s values');
SELECT is((SELECT count(*) FROM s23_items WHERE secret::int > 0), 3::bigint,
          'a cast that fails on B''s values never sees them (no 22P02 naming B''s secret)');
SELECT is((SELECT count(*) FROM s23_items WHERE 1 / (CASE WHEN secret LIKE 'b-%' THEN 0 ELSE 1 END) = 1), 3::bigint,
          'a division that fails on B''s values never sees them (no 22012)');
SELECT is((SELECT count(*) FROM s23_items WHERE secret::int > 0 AND id < 1000), 3::bigint,
          'the same with another condition beside it');
RESET client_min_messages;

-- ------------------------------------------------------------------ statistics
RESET ROLE;
ANALYZE s23_items;
CREATE STATISTICS s23_stats (mcv) ON id, secret FROM s23_items;
ALTER STATISTICS s23_stats OWNER TO s23_owner;
ANALYZE s23_items;
SELECT ok((SELECT count(*) FROM pg_stats WHERE tablename = 's23_items') > 0,
          'control: after ANALYZE the superuser finds statistics of the table in pg_stats');
SELECT ok((SELECT count(*) FROM pg_stats_ext WHERE tablename = 's23_items') > 0,
          'control: the superuser finds the extended statistics in pg_stats_ext');
SET LOCAL ROLE s23_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT is((SELECT count(*) FROM pg_stats WHERE tablename = 's23_items'), 0::bigint,
          'the app role sees no pg_stats rows of the protected table (no most common values of other tenants)');
SELECT is((SELECT count(*) FROM pg_stats_ext WHERE tablename = 's23_items'), 0::bigint,
          'the app role sees no pg_stats_ext rows of the protected table');
SELECT throws_ok('SELECT count(*) FROM pg_statistic', '42501', NULL, 'the app role cannot read pg_statistic');
RESET ROLE;
SET LOCAL ROLE s23_owner;
SELECT is((SELECT count(*) FROM pg_stats WHERE tablename = 's23_items'), 0::bigint,
          'the owner (subject to the forced policy) sees no pg_stats rows of the protected table either');
RESET ROLE;

-- ------------------------------------------------------------------ EXPLAIN
SET LOCAL ROLE s23_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT throws_ok('EXPLAIN SELECT * FROM s23_items', '42501', NULL, 'EXPLAIN of a protected table is refused to the app role');
SELECT throws_ok('EXPLAIN ANALYZE SELECT * FROM s23_items', '42501', NULL, 'EXPLAIN ANALYZE is refused to the app role');
SELECT throws_ok($$EXPLAIN (FORMAT JSON) SELECT * FROM s23_items WHERE tenant_id = 2$$, '42501', NULL,
                 'EXPLAIN (FORMAT JSON) with a condition on another tenant is refused');
SELECT throws_ok('EXPLAIN SELECT * FROM s23_view', '42501', NULL, 'EXPLAIN of a view over a protected table is refused');
SELECT throws_ok('EXPLAIN ANALYZE DELETE FROM s23_items', '42501', NULL, 'EXPLAIN ANALYZE DELETE is refused');
SELECT is((SELECT count(*) FROM s23_items), 3::bigint, '... and the refused EXPLAIN ANALYZE DELETE deleted nothing');
PREPARE s23_q AS SELECT * FROM s23_items;
SELECT throws_ok('EXPLAIN EXECUTE s23_q', '42501', NULL, 'EXPLAIN EXECUTE of a prepared query is refused');
DEALLOCATE s23_q;
SELECT lives_ok('EXPLAIN SELECT 1', 'control: EXPLAIN of a query without protected tables is allowed');
SELECT throws_ok('SET utilix.restrict_explain = off', '42501', NULL, 'the app role cannot switch the EXPLAIN restriction off');
RESET ROLE;
SET LOCAL ROLE s23_owner;
SELECT throws_ok('EXPLAIN SELECT * FROM s23_items', '42501', NULL, 'EXPLAIN is refused to the (non-superuser) table owner too');
RESET ROLE;
SELECT lives_ok('EXPLAIN SELECT * FROM s23_items', 'EXPLAIN is allowed for the superuser');
SELECT lives_ok('EXPLAIN ANALYZE SELECT * FROM s23_items', 'EXPLAIN ANALYZE is allowed for the superuser');

SELECT * FROM finish();
ROLLBACK;
