-- 50_retention: retention policies (CLD.8.1.5).  set_retention, per-tenant
-- overrides, drop_retention and the retention_policies view; purge_preview
-- numbers, exact and removing nothing; run_retention removes exactly the
-- expired rows (a tenant on legal hold untouched, longer and shorter
-- overrides honoured, the boundary row kept) and records the run in
-- purge_runs; a run in bounded steps shows in purge_progress and resumes
-- without double counting; a table range-partitioned by its time column
-- loses its wholly expired partitions (preview counts them, the run detaches
-- and drops them) and keeps the others; bad input (SQLSTATE, nothing
-- changed); everything is refused (42501) to roles that are not operators,
-- tenant principals included.
--
-- One transaction: now() is fixed, so every timestamp below is relative to
-- now() and the expected counts are exact.
BEGIN;
SELECT plan(135);
SET LOCAL client_min_messages = warning;

-- ------------------------------------------------------------------ set-up
CREATE ROLE r50_op NOLOGIN IN ROLE utilix_operator;
CREATE ROLE r50_plain NOLOGIN;
CREATE ROLE r50_bound NOLOGIN;
CREATE ROLE r50_app NOLOGIN;
CREATE ROLE r50_issuer NOLOGIN IN ROLE utilix_issuer;

SELECT utilix.create_tenant('r50 a') AS ta, utilix.create_tenant('r50 b') AS tb,
       utilix.create_tenant('r50 held') AS tc, utilix.create_tenant('r50 long') AS td,
       utilix.create_tenant('r50 short') AS te \gset
SELECT utilix.bind_role('r50_bound', :ta) \g /dev/null
SET LOCAL ROLE r50_issuer;
SELECT utilix.issue_context(:ta, 'app-a', rights => '{read,write,admin,audit}') AS tok_a \gset
RESET ROLE;

-- 100 rows per tenant, one a day: ts = now() - k days, k = 1..100
CREATE TABLE r50_events (
    tenant_id bigint NOT NULL,
    id        int NOT NULL,
    ts        timestamptz NOT NULL,
    note      text,
    qty       int,
    day       date,
    local_ts  timestamp,
    PRIMARY KEY (tenant_id, id)
);
SELECT utilix.protect('r50_events') \g /dev/null
INSERT INTO r50_events
    SELECT t, k, now() - make_interval(days => k), 'note ' || k, k, (now() - make_interval(days => k))::date,
           (now() - make_interval(days => k))::timestamp
      FROM unnest(ARRAY[:ta, :tb, :tc, :td, :te]::bigint[]) t, generate_series(1, 100) k;
GRANT SELECT ON r50_events TO r50_app, r50_bound;

-- protected, no policy; and a table that is not protected
CREATE TABLE r50_nopolicy (tenant_id bigint NOT NULL, ts timestamptz NOT NULL);
SELECT utilix.protect('r50_nopolicy') \g /dev/null
CREATE TABLE r50_unprot (tenant_id bigint NOT NULL, ts timestamptz NOT NULL);
INSERT INTO r50_unprot SELECT :ta, now() - interval '1 year';

-- range-partitioned by its time column.  Rows (days before now):
--   p0 [-400, -200): empty, wholly in the past       -> droppable
--   p1 [-200, -100): a -160, c -150 (held)           -> kept (held row); a's row deleted
--   p2 [-100,  -70): a -95, b -80                    -> droppable (every row older than 50 days)
--   p3 [ -70,  -40): a -65, d -45 (d keeps 50 days)  -> kept; a's row deleted
--   p4 [ -40,   +1): a -35, b -5, e -20              -> kept; a's row deleted
-- Expired: a -160, a -95, b -80, a -65, a -35 = 5 rows; 2 partitions dropped.
CREATE TABLE r50_logs (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL)
    PARTITION BY RANGE (ts);
DO $$
DECLARE
    b int[] := ARRAY[-400, -200, -100, -70, -40, 1];
BEGIN
    FOR i IN 1..5 LOOP
        EXECUTE format('CREATE TABLE r50_logs_p%s PARTITION OF r50_logs FOR VALUES FROM (%L) TO (%L)',
                       i - 1, now() + make_interval(days => b[i]), now() + make_interval(days => b[i + 1]));
    END LOOP;
END
$$;
SELECT utilix.protect('r50_logs') \g /dev/null
INSERT INTO r50_logs VALUES
    (:ta, 1, now() - interval '160 days'), (:tc, 2, now() - interval '150 days'),
    (:ta, 3, now() - interval '95 days'), (:tb, 4, now() - interval '80 days'),
    (:ta, 5, now() - interval '65 days'), (:td, 6, now() - interval '45 days'),
    (:ta, 7, now() - interval '35 days'), (:tb, 8, now() - interval '5 days'), (:te, 9, now() - interval '20 days');

-- range-partitioned, with a partition made in advance for the coming month
-- (empty: nothing has been written there yet) and one expired partition
CREATE TABLE r50_sched (tenant_id bigint NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
DO $$
BEGIN
    EXECUTE format('CREATE TABLE r50_sched_old PARTITION OF r50_sched FOR VALUES FROM (%L) TO (%L)',
                   now() - interval '100 days', now() - interval '50 days');
    EXECUTE format('CREATE TABLE r50_sched_now PARTITION OF r50_sched FOR VALUES FROM (%L) TO (%L)',
                   now() - interval '50 days', now() + interval '1 day');
    EXECUTE format('CREATE TABLE r50_sched_next PARTITION OF r50_sched FOR VALUES FROM (%L) TO (%L)',
                   now() + interval '1 day', now() + interval '31 days');
END
$$;
CREATE TABLE r50_sched_def PARTITION OF r50_sched DEFAULT;
SELECT utilix.protect('r50_sched') \g /dev/null
-- old: in r50_sched_old; 300 days old: outside every range, in the default partition
INSERT INTO r50_sched VALUES (:ta, now() - interval '60 days'), (:ta, now() - interval '1 day'),
                             (:ta, now() - interval '300 days');

-- a bigger table for bounded steps: 100 expired rows, 10 fresh ones
CREATE TABLE r50_big (tenant_id bigint NOT NULL, id int NOT NULL, ts timestamptz NOT NULL);
SELECT utilix.protect('r50_big') \g /dev/null
INSERT INTO r50_big SELECT :tb, g, now() - interval '1 year' - make_interval(mins => g) FROM generate_series(1, 100) g;
INSERT INTO r50_big SELECT :tb, 1000 + g, now() - make_interval(mins => g) FROM generate_series(1, 10) g;

-- the SQLSTATE of a statement, or NULL
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE q;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END
$$;
-- rows of a table per tenant, as seen by a superuser (no row level security)
CREATE FUNCTION pg_temp.n(rel regclass, t bigint DEFAULT NULL) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    c bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %s WHERE $1 IS NULL OR tenant_id = $1', rel) INTO c USING t;
    RETURN c;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.sqlstate_of(text) TO PUBLIC;

-- ------------------------------------------------------------------ policies
SET LOCAL ROLE r50_op;
SELECT lives_ok($$SELECT utilix.set_retention('r50_events', '30 days', 'ts')$$,
                'an operator sets a 30-day retention on a protected table by its timestamptz column');
SELECT lives_ok($$SELECT utilix.set_retention('r50_logs', '30 days', 'ts')$$,
                'an operator sets a retention on a table range-partitioned by the time column');
SELECT lives_ok($$SELECT utilix.set_retention('r50_sched', '30 days', 'ts')$$,
                'and on a second range-partitioned table');
SELECT lives_ok($$SELECT utilix.set_retention('r50_big', '1 day', 'ts')$$, 'and on a fourth table');
SELECT lives_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_events', '60 days')$$, :td),
                'a tenant override longer than the table''s');
SELECT lives_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_events', '10 days')$$, :te),
                'a tenant override shorter than the table''s');
SELECT lives_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_logs', '50 days')$$, :td),
                'a tenant override on the partitioned table');
SELECT lives_ok(format($$SELECT utilix.hold_tenant(%s, 'litigation r50-17')$$, :tc),
                'an operator puts a tenant on legal hold');
SELECT lives_ok($$SELECT utilix.set_retention('r50_nopolicy', '7 days', 'ts')$$,
                'set_retention on another table (dropped again below)');
SELECT lives_ok($$SELECT utilix.set_retention('r50_events', '30 days', 'day')$$,
                'a date column is accepted as the time column');
SELECT lives_ok($$SELECT utilix.set_retention('r50_events', '30 days', 'local_ts')$$,
                'a timestamp (without time zone) column is accepted as the time column');
SELECT lives_ok($$SELECT utilix.set_retention('r50_events', '30 days', 'ts')$$,
                'set_retention again replaces the table''s policy');

SELECT results_eq(
    $$SELECT table_name::text, time_column::text COLLATE "default", keep, tenant_id FROM utilix.retention_policies
       WHERE table_name::text LIKE 'r50%' ORDER BY 1, 4 NULLS FIRST, 3$$,
    format($$VALUES ('r50_big', 'ts', interval '1 day', NULL::bigint),
                    ('r50_events', 'ts', interval '30 days', NULL), ('r50_events', 'ts', interval '60 days', %s),
                    ('r50_events', 'ts', interval '10 days', %s),
                    ('r50_logs', 'ts', interval '30 days', NULL), ('r50_logs', 'ts', interval '50 days', %s),
                    ('r50_nopolicy', 'ts', interval '7 days', NULL),
                    ('r50_sched', 'ts', interval '30 days', NULL)$$, :td, :te, :td),
    'retention_policies lists each table''s policy (tenant_id NULL) and each tenant override, with the time column');
SELECT is((SELECT count(*) FROM utilix.retention_policies WHERE table_name = 'r50_events'::regclass AND tenant_id IS NULL),
          1::bigint, 'setting a policy twice keeps one policy per table');

SELECT lives_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_nopolicy', '1 day')$$, :ta),
                'an override on the table that will lose its policy');
SELECT lives_ok($$SELECT utilix.drop_retention('r50_nopolicy')$$, 'drop_retention removes a table''s policy');
SELECT is((SELECT count(*) FROM utilix.retention_policies WHERE table_name = 'r50_nopolicy'::regclass), 0::bigint,
          'drop_retention removes the policy and the table''s tenant overrides with it');
RESET ROLE;
SELECT is((SELECT count(*) FROM utilix.tenant_retention WHERE table_name = 'r50_nopolicy'), 0::bigint,
          'no tenant override of the dropped policy is left in utilix.tenant_retention');
SELECT is((SELECT array_agg(event ORDER BY id) FROM utilix.lifecycle_event WHERE event LIKE '%retention%' AND detail LIKE '%r50_nopolicy%'),
          '{"set retention","set tenant retention","drop retention"}'::text[],
          'setting, overriding and dropping a policy are recorded in utilix.lifecycle_event');
SELECT is((SELECT reason FROM utilix.legal_hold WHERE tenant_id = :tc), 'litigation r50-17', 'the hold is recorded with its reason');
SELECT is((SELECT detail FROM utilix.lifecycle_event WHERE tenant_id = :tc AND event = 'legal hold'), 'litigation r50-17',
          'the hold is a lifecycle event');

-- ------------------------------------------------------------------ bad input
CREATE TEMP TABLE r50_policy_before AS SELECT * FROM utilix.retention_policy;
CREATE TEMP TABLE r50_override_before AS SELECT * FROM utilix.tenant_retention;
CREATE TEMP TABLE r50_hold_before AS SELECT * FROM utilix.legal_hold;
GRANT SELECT ON r50_policy_before TO r50_op;
SET LOCAL ROLE r50_op;
SELECT throws_ok($$SELECT utilix.set_retention('r50_no_such_table', '30 days', 'ts')$$, '42P01', NULL,
                 'set_retention: an unknown table is 42P01 (from the regclass cast)');
SELECT throws_ok($$SELECT utilix.set_retention('r50_unprot', '30 days', 'ts')$$, '55000', NULL,
                 'set_retention: a table that is not protected is 55000');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '30 days', 'note')$$, '42804', NULL,
                 'set_retention: a text time column is 42804');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '30 days', 'qty')$$, '42804', NULL,
                 'set_retention: an integer time column is 42804');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '30 days', 'no_such_column')$$, '42703', NULL,
                 'set_retention: a missing column is 42703');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '0 days', 'ts')$$, '22023', NULL,
                 'set_retention: a zero interval is 22023');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '-5 days', 'ts')$$, '22023', NULL,
                 'set_retention: a negative interval is 22023');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '1 month -40 days', 'ts')$$, '22023', NULL,
                 'set_retention: an interval that is negative overall is 22023');
SELECT throws_ok($$SELECT utilix.set_retention(NULL, '30 days', 'ts')$$, '22004', NULL, 'set_retention: a NULL table is 22004');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', NULL, 'ts')$$, '22004', NULL, 'set_retention: a NULL interval is 22004');
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '30 days', NULL)$$, '22004', NULL, 'set_retention: a NULL column is 22004');
SELECT throws_ok($$SELECT utilix.set_retention('r50_logs_p1', '30 days', 'ts')$$, '42809', NULL,
                 'set_retention: a partition (not its partitioned table) is 42809');
SELECT throws_ok($$SELECT utilix.set_tenant_retention(-1, 'r50_events', '1 day')$$, '22023', NULL,
                 'set_tenant_retention: an unknown tenant is 22023');
SELECT throws_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_events', '0 days')$$, :ta), '22023', NULL,
                 'set_tenant_retention: a zero interval is 22023');
SELECT throws_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_events', '-1 day')$$, :ta), '22023', NULL,
                 'set_tenant_retention: a negative interval is 22023');
SELECT throws_ok($$SELECT utilix.set_tenant_retention(NULL, 'r50_events', '1 day')$$, '22004', NULL,
                 'set_tenant_retention: a NULL tenant is 22004');
SELECT throws_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_events', NULL)$$, :ta), '22004', NULL,
                 'set_tenant_retention: a NULL interval is 22004');
SELECT throws_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_nopolicy', '1 day')$$, :ta), '55000', NULL,
                 'set_tenant_retention: a table without a policy is 55000');
SELECT throws_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_unprot', '1 day')$$, :ta), '55000', NULL,
                 'set_tenant_retention: a table that is not protected is 55000');
SELECT throws_ok($$SELECT utilix.drop_retention('r50_nopolicy')$$, '22023', NULL,
                 'drop_retention: a table without a policy is 22023');
SELECT throws_ok($$SELECT utilix.drop_retention('r50_unprot')$$, '55000', NULL,
                 'drop_retention: a table that is not protected is 55000');
SELECT throws_ok($$SELECT utilix.drop_retention(NULL)$$, '22004', NULL, 'drop_retention: NULL is 22004');
SELECT throws_ok($$SELECT * FROM utilix.purge_preview('r50_unprot')$$, '55000', NULL,
                 'purge_preview: a table that is not protected is 55000');
SELECT throws_ok($$SELECT * FROM utilix.purge_preview('r50_no_such_table')$$, '42P01', NULL,
                 'purge_preview: an unknown table is 42P01');
SELECT throws_ok($$SELECT * FROM utilix.run_retention('r50_unprot')$$, '55000', NULL,
                 'run_retention: a table that is not protected is 55000');
SELECT throws_ok($$SELECT * FROM utilix.run_retention('r50_nopolicy')$$, '22023', NULL,
                 'run_retention: a table without a policy is 22023');
SELECT throws_ok($$SELECT utilix.hold_tenant(NULL, 'x')$$, '22004', NULL, 'hold_tenant: a NULL tenant is 22004');
SELECT throws_ok(format($$SELECT utilix.hold_tenant(%s, NULL)$$, :ta), '22004', NULL, 'hold_tenant: a NULL reason is 22004');
SELECT throws_ok(format($$SELECT utilix.hold_tenant(%s, '  ')$$, :ta), '22004', NULL, 'hold_tenant: a blank reason is 22004');
SELECT throws_ok($$SELECT utilix.hold_tenant(-1, 'x')$$, '22023', NULL, 'hold_tenant: an unknown tenant is 22023');
SELECT throws_ok(format($$SELECT utilix.release_hold(%s)$$, :ta), '22023', NULL, 'release_hold: a tenant not on hold is 22023');
SELECT throws_ok($$SELECT utilix.release_hold(NULL)$$, '22004', NULL, 'release_hold: NULL is 22004');
RESET ROLE;
SELECT set_eq($$SELECT * FROM utilix.retention_policy$$, $$SELECT * FROM r50_policy_before$$,
              'after the refused calls, the policies are unchanged');
SELECT set_eq($$SELECT * FROM utilix.tenant_retention$$, $$SELECT * FROM r50_override_before$$,
              'after the refused calls, the tenant overrides are unchanged');
SELECT set_eq($$SELECT * FROM utilix.legal_hold$$, $$SELECT * FROM r50_hold_before$$,
              'after the refused calls, the legal holds are unchanged');
SELECT is(pg_temp.n('r50_events') + pg_temp.n('r50_logs') + pg_temp.n('r50_unprot'), 500 + 9 + 1::bigint,
          'after the refused calls, no row was removed');

-- ------------------------------------------------------------------ preview
-- expected, computed independently: a and b keep 30 days, d 60, e 10, c is held
CREATE TEMP VIEW r50_expected AS
    SELECT e.* FROM r50_events e
     WHERE (e.tenant_id IN (:ta, :tb) AND e.ts < now() - interval '30 days')
        OR (e.tenant_id = :td AND e.ts < now() - interval '60 days')
        OR (e.tenant_id = :te AND e.ts < now() - interval '10 days');
SELECT is((SELECT count(*) FROM r50_expected), 270::bigint, 'the data: 70 + 70 + 0 (held) + 40 + 90 rows of r50_events are expired');

SET LOCAL ROLE r50_op;
CREATE TEMP TABLE r50_preview AS SELECT * FROM utilix.purge_preview('r50_events');
CREATE TEMP TABLE r50_preview_all AS SELECT * FROM utilix.purge_preview();
CREATE TEMP TABLE r50_preview_logs AS SELECT * FROM utilix.purge_preview('r50_logs');
RESET ROLE;
SELECT results_eq($$SELECT table_name::text, rows_expired, partitions FROM r50_preview$$,
                  $$VALUES ('r50_events', 270::bigint, 0)$$,
                  'purge_preview(table): one row, 270 rows expired, no partition');
SELECT is((SELECT estimated_bytes FROM r50_preview),
          (SELECT sum(pg_column_size(x.*))::bigint FROM r50_events x WHERE (x.tenant_id, x.id) IN (SELECT tenant_id, id FROM r50_expected)),
          'purge_preview: estimated_bytes is the size of exactly the expired rows');
SELECT set_eq($$SELECT table_name::text FROM r50_preview_all WHERE table_name::text LIKE 'r50%'$$,
              ARRAY['r50_events', 'r50_logs', 'r50_sched', 'r50_big'],
              'purge_preview() without a table previews every table with a policy');
SELECT results_eq($$SELECT rows_expired, partitions FROM r50_preview_logs$$,
                  $$VALUES (5::bigint, 2)$$,
                  'purge_preview on the time-partitioned table: 5 rows expired, 2 wholly expired partitions (p0 empty, p2)');
SELECT is(pg_temp.n('r50_events'), 500::bigint, 'purge_preview removes nothing');
SELECT is((SELECT count(*) FROM utilix.purge_run WHERE table_name LIKE '%r50%'), 0::bigint,
          'purge_preview records no run');

-- ------------------------------------------------------------------ run_retention
SET LOCAL lock_timeout = '7s';
SET LOCAL ROLE r50_op;
CREATE TEMP TABLE r50_run AS SELECT * FROM utilix.run_retention('r50_events');
RESET ROLE;
SELECT is(current_setting('lock_timeout'), '7s',
          'run_retention leaves the caller''s lock_timeout as it was (the 100 ms batch timeout does not leak out)');
SELECT results_eq($$SELECT table_name, rows_removed, partitions_dropped FROM r50_run$$,
                  $$VALUES ('public.r50_events', 270::bigint, 0)$$,
                  'run_retention returns the table, 270 rows removed, 0 partitions');
SELECT is(pg_temp.n('r50_events'), 230::bigint, 'run_retention leaves 500 - 270 rows');
SELECT is((SELECT count(*) FROM r50_expected), 0::bigint, 'every expired row is gone');
SELECT is((SELECT count(*) FROM r50_events WHERE tenant_id IN (:ta, :tb)), 60::bigint,
          'tenants without override keep their last 30 days (k = 1..30: the row exactly 30 days old is kept)');
SELECT is((SELECT min(ts) FROM r50_events WHERE tenant_id = :ta), now() - interval '30 days',
          'the boundary row (exactly now() - keep) is kept');
SELECT is(pg_temp.n('r50_events', :tc), 100::bigint, 'the tenant on legal hold keeps all its 100 rows');
SELECT is(pg_temp.n('r50_events', :td), 60::bigint, 'the tenant with a 60-day override keeps 60 rows');
SELECT is(pg_temp.n('r50_events', :te), 10::bigint, 'the tenant with a 10-day override keeps 10 rows');
SELECT results_eq(
    $$SELECT kind, table_name, tenant_id, rows_expected, rows_removed, partitions_dropped, outcome, finished_at IS NOT NULL, error
        FROM utilix.purge_run WHERE table_name = 'public.r50_events'$$,
    $$VALUES ('retention', 'public.r50_events', NULL::bigint, 270::bigint, 270::bigint, 0, 'ok', true, NULL::text)$$,
    'purge_run: one finished retention run of r50_events, 270 expected, 270 removed, outcome ok');
SET LOCAL ROLE r50_op;
SELECT is((SELECT (rows_removed, outcome) FROM utilix.purge_runs WHERE table_name = 'public.r50_events'),
          (270::bigint, 'ok'::text), 'the operator sees the run in purge_runs');
SELECT is((SELECT count(*) FROM utilix.purge_progress WHERE table_name = 'public.r50_events'), 0::bigint,
          'a finished run is not in purge_progress');
SELECT is((SELECT rows_expired FROM utilix.purge_preview('r50_events')), 0::bigint,
          'after the run, purge_preview shows nothing expired');
SELECT is((SELECT COALESCE(sum(rows_removed), 0) FROM utilix.run_retention('r50_events')), 0::numeric,
          'a second run_retention reports nothing removed');
RESET ROLE;
SELECT is(pg_temp.n('r50_events'), 230::bigint, 'a second run_retention removes nothing');

-- ------------------------------------------------------------------ time-partitioned
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'r50_logs'::regclass),
          '{r50_logs_p0,r50_logs_p1,r50_logs_p2,r50_logs_p3,r50_logs_p4}'::text[], 'the data: five partitions');
SET LOCAL ROLE r50_op;
CREATE TEMP TABLE r50_run_logs AS SELECT * FROM utilix.run_retention('r50_logs');
RESET ROLE;
SELECT results_eq($$SELECT table_name, rows_removed, partitions_dropped FROM r50_run_logs$$,
                  $$VALUES ('public.r50_logs', 5::bigint, 2)$$,
                  'run_retention on the time-partitioned table: 5 rows removed, 2 partitions dropped');
SELECT is((SELECT count(*) FROM pg_class WHERE relname IN ('r50_logs_p0', 'r50_logs_p2')), 0::bigint,
          'the wholly expired partitions are dropped (gone from pg_class)');
SELECT is((SELECT array_agg(c.relname::text ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'r50_logs'::regclass),
          '{r50_logs_p1,r50_logs_p3,r50_logs_p4}'::text[], 'the other partitions stay attached');
SELECT is((SELECT count(*) FROM utilix.protected_table WHERE table_name IN ('r50_logs_p0', 'r50_logs_p2')), 0::bigint,
          'the dropped partitions are no longer listed as protected tables');
SELECT results_eq($$SELECT tenant_id, id FROM r50_logs ORDER BY id$$,
                  format($$VALUES (%s::bigint, 2), (%s, 6), (%s, 8), (%s, 9)$$, :tc, :td, :tb, :te),
                  'left: the held row in p1, the 50-day override row in p3, and the fresh rows in p4');
SELECT results_eq(
    $$SELECT rows_expected, rows_removed, partitions_dropped, outcome FROM utilix.purge_run WHERE table_name = 'public.r50_logs'$$,
    $$VALUES (5::bigint, 5::bigint, 2, 'ok')$$, 'purge_run of the time-partitioned table: 5 rows, 2 partitions, ok');

SET LOCAL ROLE r50_op;
CREATE TEMP TABLE r50_preview_sched AS SELECT * FROM utilix.purge_preview('r50_sched');
SELECT lives_ok($$SELECT * FROM utilix.run_retention('r50_sched')$$, 'run_retention on the table with a partition for the coming month');
RESET ROLE;
SELECT is((SELECT (rows_expired, partitions) FROM r50_preview_sched), (2::bigint, 1),
          'purge_preview: 2 rows expired, and only the expired partition counted (not the empty one for the coming month, not the default)');
SELECT ok(to_regclass('r50_sched_next') IS NOT NULL,
          'an empty partition made in advance for future rows is not dropped by retention');
SELECT ok(to_regclass('r50_sched_old') IS NULL, 'the expired partition of that table is dropped');
SELECT ok(CASE WHEN to_regclass('r50_sched_def') IS NULL THEN false ELSE pg_temp.n(to_regclass('r50_sched_def')) = 0 END,
          'the default partition is not dropped: its expired row is deleted, the partition stays');
SELECT lives_ok(format($$INSERT INTO r50_sched VALUES (%s, now() + interval '5 days')$$, :ta),
                'a row for next week can still be written after the run');
SELECT is(pg_temp.n('r50_sched'), 2::bigint, 'r50_sched: the fresh row and the new one');

-- ------------------------------------------------------------------ bounded steps, progress, resume
SET LOCAL utilix.purge_batch_rows = 10;
SELECT utilix._retention_step(r, 3) FROM utilix.retention_policy r WHERE r.table_name = 'r50_big' \g /dev/null
SELECT is(pg_temp.n('r50_big'), 80::bigint, 'a bounded step of 3 batches of 10 rows removes 30 rows');
SET LOCAL ROLE r50_op;
SELECT results_eq($$SELECT kind, rows_done, rows_expected, percent FROM utilix.purge_progress WHERE table_name = 'public.r50_big'$$,
                  $$VALUES ('retention', 30::bigint, 100::bigint, 30.0)$$,
                  'purge_progress shows the running run: 30 of 100 rows done');
RESET ROLE;
SELECT utilix._retention_step(r, 3) FROM utilix.retention_policy r WHERE r.table_name = 'r50_big' \g /dev/null
SELECT is(pg_temp.n('r50_big'), 50::bigint, 'the next step removes 30 more');
SELECT results_eq($$SELECT count(*), max(rows_removed), max(outcome) FROM utilix.purge_run WHERE table_name = 'public.r50_big'$$,
                  $$VALUES (1::bigint, 60::bigint, 'running')$$,
                  'the second step continues the same run (one run, 60 rows, still running)');
-- as if the worker had started the run in an earlier transaction
UPDATE utilix.purge_run SET started_at = started_at - interval '1 hour' WHERE table_name = 'public.r50_big';
SET LOCAL ROLE r50_op;
CREATE TEMP TABLE r50_run_big AS SELECT * FROM utilix.run_retention('r50_big');
RESET ROLE;
SELECT results_eq($$SELECT count(*), max(rows_removed), max(rows_expected), max(outcome) FROM utilix.purge_run WHERE table_name = 'public.r50_big'$$,
                  $$VALUES (1::bigint, 100::bigint, 100::bigint, 'ok')$$,
                  'run_retention finishes the same run: 100 rows in all, counted once, outcome ok');
SELECT is(pg_temp.n('r50_big'), 10::bigint, 'exactly the 10 fresh rows are left');
SELECT results_eq($$SELECT table_name, rows_removed FROM r50_run_big$$, $$VALUES ('public.r50_big', 100::bigint)$$,
                  'run_retention reports the run it finished, also when that run began in an earlier transaction');
RESET utilix.purge_batch_rows;

-- ------------------------------------------------------------------ non-operators
CREATE TEMP TABLE r50_counts_before AS
    SELECT (SELECT count(*) FROM utilix.retention_policy) AS policies, (SELECT count(*) FROM utilix.legal_hold) AS holds,
           pg_temp.n('r50_events') AS events, (SELECT count(*) FROM utilix.tenant WHERE status = 'active') AS active;
SET LOCAL ROLE r50_plain;
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '1 day', 'ts')$$, '42501', NULL, 'a plain role: set_retention is 42501');
SELECT throws_ok($$SELECT utilix.drop_retention('r50_events')$$, '42501', NULL, 'a plain role: drop_retention is 42501');
SELECT throws_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_events', '1 day')$$, :ta), '42501', NULL,
                 'a plain role: set_tenant_retention is 42501');
SELECT throws_ok($$SELECT * FROM utilix.purge_preview()$$, '42501', NULL, 'a plain role: purge_preview is 42501');
SELECT throws_ok($$SELECT * FROM utilix.run_retention()$$, '42501', NULL, 'a plain role: run_retention is 42501');
SELECT throws_ok(format($$SELECT utilix.hold_tenant(%s, 'x')$$, :ta), '42501', NULL, 'a plain role: hold_tenant is 42501');
SELECT throws_ok(format($$SELECT utilix.release_hold(%s)$$, :tc), '42501', NULL, 'a plain role: release_hold is 42501');
SELECT throws_ok(format($$SELECT utilix.terminate_tenant(%s)$$, :ta), '42501', NULL, 'a plain role: terminate_tenant is 42501');
SELECT throws_ok(format($$SELECT utilix.cancel_termination(%s)$$, :ta), '42501', NULL, 'a plain role: cancel_termination is 42501');
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :ta), '42501', NULL, 'a plain role: export_tenant is 42501');
SELECT throws_ok(format($$SELECT * FROM utilix.export_manifest(%s)$$, :ta), '42501', NULL, 'a plain role: export_manifest is 42501');
SELECT throws_ok($$SELECT utilix.purge_due_tenants()$$, '42501', NULL, 'a plain role: purge_due_tenants is 42501');
SELECT throws_ok($$SELECT * FROM utilix.verify_certificates()$$, '42501', NULL, 'a plain role: verify_certificates is 42501');
SELECT throws_ok($$SELECT utilix._retention_step(r, 1) FROM (SELECT NULL::utilix.retention_policy AS r) s$$, '42501', NULL,
                 'a plain role: _retention_step is 42501');
SELECT throws_ok(format($$SELECT utilix._purge_tenant(%s)$$, :ta), '42501', NULL, 'a plain role: _purge_tenant is 42501');
SELECT throws_ok($$SELECT utilix._worker_tick()$$, '42501', NULL, 'a plain role: _worker_tick is 42501');
SELECT is(ARRAY[pg_temp.sqlstate_of('SELECT * FROM utilix.retention_policies'), pg_temp.sqlstate_of('SELECT * FROM utilix.purge_runs'),
                pg_temp.sqlstate_of('SELECT * FROM utilix.purge_progress'), pg_temp.sqlstate_of('SELECT * FROM utilix.security_events'),
                pg_temp.sqlstate_of('SELECT * FROM utilix.deletion_certificates')],
          ARRAY['42501', '42501', '42501', '42501', '42501'],
          'a plain role: the views retention_policies, purge_runs, purge_progress, security_events, deletion_certificates are 42501');
SELECT is(ARRAY[pg_temp.sqlstate_of('SELECT * FROM utilix.retention_policy'), pg_temp.sqlstate_of('SELECT * FROM utilix.tenant_retention'),
                pg_temp.sqlstate_of('SELECT * FROM utilix.legal_hold'), pg_temp.sqlstate_of('SELECT * FROM utilix.purge_run'),
                pg_temp.sqlstate_of('SELECT * FROM utilix.lifecycle_event'), pg_temp.sqlstate_of('SELECT * FROM utilix.deletion_certificate')],
          ARRAY['42501', '42501', '42501', '42501', '42501', '42501'],
          'a plain role: the tables behind them are 42501');
RESET ROLE;

-- a tenant principal: a role bound to a tenant, and an application role with a context
SET LOCAL ROLE r50_bound;
SELECT throws_ok($$SELECT utilix.set_retention('r50_events', '1 day', 'ts')$$, '42501', NULL,
                 'a role bound to a tenant: set_retention is 42501');
SELECT throws_ok($$SELECT * FROM utilix.run_retention('r50_events')$$, '42501', NULL, 'a role bound to a tenant: run_retention is 42501');
SELECT throws_ok($$SELECT * FROM utilix.purge_preview('r50_events')$$, '42501', NULL, 'a role bound to a tenant: purge_preview is 42501');
SELECT throws_ok(format($$SELECT * FROM utilix.export_tenant(%s)$$, :ta), '42501', NULL,
                 'a role bound to a tenant: export_tenant of its own tenant is 42501');
SELECT throws_ok(format($$SELECT utilix.set_tenant_retention(%s, 'r50_events', '1 year')$$, :ta), '42501', NULL,
                 'a role bound to a tenant: set_tenant_retention for its own tenant is 42501');
RESET ROLE;
SET LOCAL ROLE r50_app;
SELECT utilix.set_context(:'tok_a') \g /dev/null
SELECT is((SELECT count(*) FROM r50_events), 30::bigint, 'the application role with tenant a''s admin context sees its 30 rows');
SELECT throws_ok($$SELECT * FROM utilix.run_retention()$$, '42501', NULL, 'an application role with a tenant admin context: run_retention is 42501');
SELECT throws_ok(format($$SELECT utilix.hold_tenant(%s, 'x')$$, :ta), '42501', NULL,
                 'an application role with a tenant admin context: hold_tenant of its own tenant is 42501');
SELECT throws_ok(format($$SELECT utilix.release_hold(%s)$$, :tc), '42501', NULL,
                 'an application role with a tenant admin context: release_hold is 42501');
SELECT throws_ok($$SELECT * FROM utilix.retention_policies$$, '42501', NULL,
                 'an application role with a tenant admin context: retention_policies is 42501');
SELECT utilix.clear_context() \g /dev/null
RESET ROLE;
SELECT is((SELECT (policies, holds, events, active) FROM r50_counts_before),
          ((SELECT count(*) FROM utilix.retention_policy), (SELECT count(*) FROM utilix.legal_hold),
           pg_temp.n('r50_events'), (SELECT count(*) FROM utilix.tenant WHERE status = 'active')),
          'after the refused calls of non-operators: policies, holds, rows and tenants unchanged');

-- ------------------------------------------------------------------ release, then retention applies
SET LOCAL ROLE r50_op;
SELECT lives_ok(format($$SELECT utilix.release_hold(%s)$$, :tc), 'an operator releases the hold');
SELECT is((SELECT rows_expired FROM utilix.purge_preview('r50_events')), 70::bigint,
          'once released, the tenant''s 70 old rows are expired in the preview');
SELECT lives_ok($$SELECT * FROM utilix.run_retention('r50_events')$$, 'run_retention after the release');
RESET ROLE;
SELECT is(pg_temp.n('r50_events', :tc), 30::bigint, 'the released tenant keeps its last 30 days');
SELECT is((SELECT count(*) FROM utilix.lifecycle_event WHERE tenant_id = :tc AND event = 'hold released'), 1::bigint,
          'the release is a lifecycle event');

-- ------------------------------------------------------------------ rename
ALTER TABLE r50_big RENAME TO r50_big_renamed;
SET LOCAL ROLE r50_op;
SELECT is((SELECT keep FROM utilix.retention_policies WHERE table_name = 'r50_big_renamed'::regclass AND tenant_id IS NULL),
          interval '1 day', 'a policy follows its table across a rename (as utilix.protected_table does)');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
