-- utilix install script, part 60: retention, legal hold, tenant offboarding.

ALTER TABLE utilix.tenant ADD COLUMN purge_after timestamptz, ADD COLUMN purged_at timestamptz;
COMMENT ON COLUMN utilix.tenant.purge_after IS 'end of the grace period of a terminated tenant: its data is purged after it';

CREATE TABLE utilix.retention_policy (
    schema_name  name NOT NULL,
    table_name   name NOT NULL,
    time_column  name NOT NULL,
    keep         interval NOT NULL CHECK (keep > interval '0'),
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    created_by   name NOT NULL DEFAULT SESSION_USER,
    PRIMARY KEY (schema_name, table_name)
);
COMMENT ON TABLE utilix.retention_policy IS 'how long the rows of a protected table live, by its time column';
REVOKE ALL ON utilix.retention_policy FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.retention_policy', '');

CREATE TABLE utilix.tenant_retention (
    tenant_id    bigint NOT NULL REFERENCES utilix.tenant (id),
    schema_name  name NOT NULL,
    table_name   name NOT NULL,
    keep         interval NOT NULL CHECK (keep > interval '0'),
    PRIMARY KEY (tenant_id, schema_name, table_name),
    FOREIGN KEY (schema_name, table_name) REFERENCES utilix.retention_policy ON DELETE CASCADE ON UPDATE CASCADE
);
COMMENT ON TABLE utilix.tenant_retention IS 'a tenant''s own retention for a table, overriding the table''s';
REVOKE ALL ON utilix.tenant_retention FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.tenant_retention', '');

CREATE TABLE utilix.legal_hold (
    tenant_id  bigint PRIMARY KEY REFERENCES utilix.tenant (id),
    reason     text NOT NULL,
    held_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    held_by    name NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE utilix.legal_hold IS 'tenants whose data neither retention nor offboarding may remove';
REVOKE ALL ON utilix.legal_hold FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.legal_hold', '');

CREATE TABLE utilix.lifecycle_event (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    tenant_id  bigint,
    event      text NOT NULL,
    detail     text,
    db_role    name NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE utilix.lifecycle_event IS 'terminations, cancellations, holds, releases, purges and key destruction (UTC)';
COMMENT ON SEQUENCE utilix.lifecycle_event_id_seq IS 'ids of lifecycle events';
REVOKE ALL ON utilix.lifecycle_event FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.lifecycle_event', '');

CREATE TABLE utilix.purge_run (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('retention', 'offboarding')),
    table_name         text,
    tenant_id          bigint,
    started_at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at        timestamptz,
    rows_expected      bigint,
    rows_removed       bigint NOT NULL DEFAULT 0,
    partitions_dropped integer NOT NULL DEFAULT 0,
    outcome            text NOT NULL DEFAULT 'running' CHECK (outcome IN ('running', 'ok', 'partial', 'error', 'skipped')),
    error              text,
    resume_leaf        oid,
    resume_ctid        tid,
    rows_skipped       bigint NOT NULL DEFAULT 0
);
COMMENT ON COLUMN utilix.purge_run.rows_skipped IS
    'expired rows a retention run left because another transaction held them (a row lock) or a foreign key kept them; a later run removes them';
COMMENT ON COLUMN utilix.purge_run.outcome IS
    'running; ok (every expired row removed); partial (the run reached the end, but rows_skipped rows were held and remain); error';
COMMENT ON COLUMN utilix.purge_run.resume_ctid IS
    'where a retention run spanning several worker ticks goes on: batches walk each table in physical order';
COMMENT ON TABLE utilix.purge_run IS 'every retention and offboarding run (kept utilix.purge_run_retention)';
COMMENT ON SEQUENCE utilix.purge_run_id_seq IS 'ids of purge runs';
REVOKE ALL ON utilix.purge_run FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.purge_run', '');

CREATE TABLE utilix.deletion_certificate (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       bigint NOT NULL,
    tenant_name     text NOT NULL,
    terminated_at   timestamptz NOT NULL,
    purged_at       timestamptz NOT NULL,
    tables          jsonb NOT NULL,
    keys_destroyed  integer NOT NULL,
    verification    text[] NOT NULL,
    prev_hash       bytea,
    hash            bytea NOT NULL
);
COMMENT ON TABLE utilix.deletion_certificate IS
    'one certificate per purged tenant: per-table row counts before and after, keys destroyed, verification queries, hash chained to the previous certificate';
COMMENT ON SEQUENCE utilix.deletion_certificate_id_seq IS 'ids of deletion certificates';
REVOKE ALL ON utilix.deletion_certificate FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.deletion_certificate', '');
SELECT pg_catalog.pg_extension_config_dump('utilix.deletion_certificate_id_seq', '');

CREATE FUNCTION utilix._lifecycle(tenant bigint, event text, detail text DEFAULT NULL) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    INSERT INTO utilix.lifecycle_event (tenant_id, event, detail) VALUES (tenant, event, detail);
    SELECT utilix._log_event(CASE WHEN event = 'purged' THEN 'purge' ELSE 'admin' END, tenant, 'ok',
                             event || CASE WHEN detail IS NULL THEN '' ELSE ': ' || detail END,
                             on_commit => true);
$$;
COMMENT ON FUNCTION utilix._lifecycle(bigint, text, text) IS 'internal: records a lifecycle event';

-- The protected table a policy may be set on, or an error.
CREATE FUNCTION utilix._policy_table(rel regclass) RETURNS utilix.protected_table
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p utilix.protected_table;
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO p FROM utilix.protected_table WHERE relid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" is not protected', rel::text
            USING ERRCODE = '55000', HINT = 'Retention applies to protected tables; call utilix.protect() first.';
    END IF;
    IF (SELECT relispartition FROM pg_class WHERE oid = rel) THEN
        RAISE EXCEPTION '"%" is a partition', rel::text USING ERRCODE = '42809',
            HINT = 'Set retention on the partitioned table.';
    END IF;
    RETURN p;
END
$$;
COMMENT ON FUNCTION utilix._policy_table(regclass) IS 'internal: the protected table a retention policy may name';

CREATE FUNCTION utilix.set_retention(rel regclass, keep interval, time_column name) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p utilix.protected_table := utilix._policy_table(rel);
    typ regtype;
BEGIN
    IF keep IS NULL OR time_column IS NULL THEN
        RAISE EXCEPTION 'keep and time_column must not be null' USING ERRCODE = '22004';
    END IF;
    -- a century at most: the cutoff now() - keep must stay a timestamp
    IF keep <= interval '0' OR keep > interval '100 years' THEN
        RAISE EXCEPTION 'keep must be a positive interval of at most 100 years' USING ERRCODE = '22023';
    END IF;
    SELECT a.atttypid INTO typ FROM pg_attribute a
     WHERE a.attrelid = rel AND a.attname = time_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table "%" does not exist', time_column, rel::text USING ERRCODE = '42703';
    END IF;
    IF typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'column "%" has type %, not a timestamp', time_column, typ
            USING ERRCODE = '42804', HINT = 'The time column is timestamptz, timestamp or date.';
    END IF;
    INSERT INTO utilix.retention_policy (schema_name, table_name, time_column, keep)
    VALUES (p.schema_name, p.table_name, time_column, keep)
    ON CONFLICT (schema_name, table_name) DO UPDATE SET time_column = EXCLUDED.time_column, keep = EXCLUDED.keep;
    PERFORM utilix._lifecycle(NULL, 'set retention', format('%s keep %s by %s', rel::text, keep, time_column));
END
$$;
COMMENT ON FUNCTION utilix.set_retention(regclass, interval, name) IS
    'operator: rows of the table older than keep (by time_column) are removed by the worker';

CREATE FUNCTION utilix.drop_retention(rel regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p utilix.protected_table := utilix._policy_table(rel);
BEGIN
    DELETE FROM utilix.retention_policy r WHERE r.schema_name = p.schema_name AND r.table_name = p.table_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table "%" has no retention policy', rel::text USING ERRCODE = '22023';
    END IF;
    PERFORM utilix._lifecycle(NULL, 'drop retention', rel::text);
END
$$;
COMMENT ON FUNCTION utilix.drop_retention(regclass) IS 'operator: removes a table''s retention policy';

CREATE FUNCTION utilix.set_tenant_retention(tenant bigint, rel regclass, keep interval) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p utilix.protected_table := utilix._policy_table(rel);
BEGIN
    IF tenant IS NULL OR keep IS NULL THEN
        RAISE EXCEPTION 'tenant and keep must not be null' USING ERRCODE = '22004';
    END IF;
    -- a century at most: the cutoff now() - keep must stay a timestamp
    IF keep <= interval '0' OR keep > interval '100 years' THEN
        RAISE EXCEPTION 'keep must be a positive interval of at most 100 years' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM utilix.tenant t WHERE t.id = tenant) THEN
        RAISE EXCEPTION 'tenant % does not exist', tenant USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM utilix.retention_policy r WHERE r.schema_name = p.schema_name AND r.table_name = p.table_name) THEN
        RAISE EXCEPTION 'table "%" has no retention policy', rel::text
            USING ERRCODE = '55000', HINT = 'Call utilix.set_retention() for the table first.';
    END IF;
    INSERT INTO utilix.tenant_retention (tenant_id, schema_name, table_name, keep)
    VALUES (tenant, p.schema_name, p.table_name, keep)
    ON CONFLICT (tenant_id, schema_name, table_name) DO UPDATE SET keep = EXCLUDED.keep;
    PERFORM utilix._lifecycle(tenant, 'set tenant retention', format('%s keep %s', rel::text, keep));
END
$$;
COMMENT ON FUNCTION utilix.set_tenant_retention(bigint, regclass, interval) IS
    'operator: a tenant''s own retention for a table, overriding the table''s policy';

CREATE VIEW utilix.retention_policies AS
    SELECT to_regclass(format('%I.%I', r.schema_name, r.table_name)) AS table_name, r.time_column, r.keep,
           NULL::bigint AS tenant_id, r.created_at
      FROM utilix.retention_policy r
    UNION ALL
    SELECT to_regclass(format('%I.%I', o.schema_name, o.table_name)), r.time_column, o.keep, o.tenant_id, NULL
      FROM utilix.tenant_retention o JOIN utilix.retention_policy r USING (schema_name, table_name);
COMMENT ON VIEW utilix.retention_policies IS 'operator: table policies (tenant_id NULL) and tenant overrides';

-- The condition a row of a policy's table must meet to be expired, with the
-- cutoffs as constants: one range condition for the table's own period
-- (usable by an index on the time column) and one per tenant override;
-- held tenants are left out of all of them.
CREATE FUNCTION utilix._expired_sql(r utilix.retention_policy, tenant_column name, alias text) RETURNS text
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    held bigint[] := ARRAY(SELECT h.tenant_id FROM utilix.legal_hold h ORDER BY 1);
    o record;
    special bigint[] := held;
    pred text := '';
BEGIN
    FOR o IN SELECT x.tenant_id, x.keep FROM utilix.tenant_retention x
              WHERE x.schema_name = r.schema_name AND x.table_name = r.table_name
                AND x.tenant_id <> ALL (held) ORDER BY 1 LOOP
        pred := pred || format(' OR (%1$s.%2$I = %3$s AND %1$s.%4$I < %5$L)',
                               alias, tenant_column, o.tenant_id, r.time_column, pg_catalog.now() - o.keep);
        special := special || o.tenant_id;
    END LOOP;
    RETURN format('((%1$s.%2$I < %3$L AND %1$s.%4$I <> ALL (%5$L::bigint[]))%6$s)',
                  alias, r.time_column, pg_catalog.now() - r.keep, tenant_column, special, pred);
END
$$;
COMMENT ON FUNCTION utilix._expired_sql(utilix.retention_policy, name, text) IS 'internal: the expiry predicate of a policy';

-- Leaves of a range-partitioned table (by the policy's time column) that hold
-- nothing any tenant keeps and nothing held.
CREATE FUNCTION utilix._droppable_partitions(r utilix.retention_policy) RETURNS SETOF regclass
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    rel regclass := to_regclass(format('%I.%I', r.schema_name, r.table_name));
    p utilix.protected_table;
    leaf regclass;
    longest interval;
    upper_text text;
    held boolean;
BEGIN
    IF rel IS NULL OR NOT EXISTS (
        SELECT 1 FROM pg_partitioned_table pt JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
         WHERE pt.partrelid = rel AND pt.partstrat = 'r' AND pt.partnatts = 1 AND a.attname = r.time_column) THEN
        RETURN;
    END IF;
    SELECT * INTO p FROM utilix.protected_table WHERE relid = rel;
    SELECT greatest(r.keep, max(o.keep)) INTO longest FROM utilix.tenant_retention o
     WHERE o.schema_name = r.schema_name AND o.table_name = r.table_name;
    longest := COALESCE(longest, r.keep);
    -- direct partitions by their upper bound: wholly before the cutoff of the
    -- longest retention any tenant has, and holding no row of a held tenant
    FOR leaf IN SELECT i.inhrelid::regclass FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = rel AND c.relkind = 'r' LOOP
        upper_text := substring(pg_get_expr((SELECT c.relpartbound FROM pg_class c WHERE c.oid = leaf), leaf)
                                FROM $re$TO \('([^']*)'\)$re$);
        CONTINUE WHEN upper_text IS NULL;
        CONTINUE WHEN upper_text::timestamptz > pg_catalog.now() - longest;
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s x WHERE x.%I IN (SELECT h.tenant_id FROM utilix.legal_hold h))',
                       leaf, p.tenant_column) INTO held;
        IF NOT held THEN
            RETURN NEXT leaf;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix._droppable_partitions(utilix.retention_policy) IS
    'internal: partitions of a time-partitioned table whose upper bound is past the longest retention, holding nothing held';

-- Counting expired rows under retention settings this very transaction
-- wrote (a tenant override, a policy, a hold), then rolling back, answers
-- questions about a tenant's rows with nothing left on record: a binary
-- search over a tenant's keep recovered its timestamps.  Such counts are
-- recorded at once, through any rollback, in the chain of every tenant that
-- is not purged, where its auditors see them.  (Refusing them would break
-- the DBA's set-then-apply in one transaction.)
CREATE FUNCTION utilix._record_unsettled_retention(what text, rel regclass) RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint;
BEGIN
    -- rows written here show in their xmin; rows deleted here (a hold
    -- released, an override or policy dropped) only in this transaction's
    -- statistics counters (which need track_counts, on by default)
    IF NOT (EXISTS (SELECT 1 FROM utilix.retention_policy x WHERE utilix._written_here(x.xmin))
            OR EXISTS (SELECT 1 FROM utilix.tenant_retention x WHERE utilix._written_here(x.xmin))
            OR EXISTS (SELECT 1 FROM utilix.legal_hold x WHERE utilix._written_here(x.xmin))
            OR pg_stat_get_xact_tuples_deleted('utilix.retention_policy'::regclass)
               + pg_stat_get_xact_tuples_deleted('utilix.tenant_retention'::regclass)
               + pg_stat_get_xact_tuples_deleted('utilix.legal_hold'::regclass) > 0) THEN
        RETURN;
    END IF;
    FOR t IN SELECT x.id FROM utilix.tenant x WHERE x.status <> 'purged' ORDER BY x.id LOOP
        PERFORM utilix._log_event('purge', t, 'ok',
                                  format('%s by %s counted expired rows%s under retention settings not yet committed',
                                         what, session_user, CASE WHEN rel IS NULL THEN '' ELSE ' of ' || rel::text END),
                                  NULL, false);
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix._record_unsettled_retention(text, regclass) IS
    'internal: records in every tenant''s chain, at once, a count of expired rows made under retention settings this transaction wrote';

CREATE FUNCTION utilix.purge_preview(rel regclass DEFAULT NULL)
    RETURNS TABLE (table_name regclass, rows_expired bigint, partitions integer, estimated_bytes bigint)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    r utilix.retention_policy;
    p utilix.protected_table;
    n bigint;
    parts integer;
    width bigint;
BEGIN
    IF rel IS NOT NULL THEN
        PERFORM utilix._policy_table(rel);
    END IF;
    PERFORM utilix._record_unsettled_retention('purge_preview()', rel);
    FOR r IN SELECT q.* FROM utilix.retention_policy q
              WHERE rel IS NULL OR to_regclass(format('%I.%I', q.schema_name, q.table_name)) = rel LOOP
        SELECT * INTO p FROM utilix.protected_table q WHERE q.schema_name = r.schema_name AND q.table_name = r.table_name;
        table_name := to_regclass(format('%I.%I', r.schema_name, r.table_name));
        IF table_name IS NULL THEN
            CONTINUE;
        END IF;
        EXECUTE format('SELECT count(*), COALESCE(sum(pg_column_size(t.*)), 0) FROM %s t WHERE %s',
                       table_name, utilix._expired_sql(r, p.tenant_column, 't')) INTO n, width;
        SELECT count(*)::integer INTO parts FROM utilix._droppable_partitions(r);
        rows_expired := n;
        partitions := parts;
        estimated_bytes := width;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix.purge_preview(regclass) IS
    'operator: what a retention run would remove now (rows, whole partitions, estimated bytes), removing nothing';

-- The tables a purge of leaf must be able to write without waiting: the
-- leaf, and every table whose foreign keys reach it (their ON DELETE
-- actions and checks run inside the purge's delete).  Locked here, ROW
-- EXCLUSIVE (what any writer holds), under the caller's lock_timeout: a
-- table lock, which only the owner's DDL or LOCK TABLE of the owner or a
-- superuser takes, holds every tenant of the table alike.  Returns whether
-- any foreign key reaches the leaf.
CREATE FUNCTION utilix._lock_for_purge(leaf regclass) RETURNS boolean
    LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    ref regclass;
    refs boolean := false;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = leaf) THEN
        RAISE EXCEPTION 'relation with OID % does not exist', leaf::oid USING ERRCODE = '42P01';
    END IF;
    EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', leaf);
    FOR ref IN SELECT DISTINCT c.conrelid::regclass FROM pg_constraint c
                WHERE c.contype = 'f'
                  AND c.confrelid IN (SELECT leaf::oid UNION SELECT a.relid FROM pg_partition_ancestors(leaf) a)
                ORDER BY 1 LOOP
        EXECUTE format('LOCK TABLE %s IN ROW EXCLUSIVE MODE', ref);
        refs := true;
    END LOOP;
    RETURN refs;
END
$$;
COMMENT ON FUNCTION utilix._lock_for_purge(regclass) IS
    'internal: locks a leaf and the tables whose foreign keys reach it for a purge (ROW EXCLUSIVE); true if any foreign key reaches it';

-- Deletes, as the table's owner, those of the rows at ctids of leaf that
-- are still expired (pred), each locked first and skipped if another
-- transaction holds it.  When the delete fails all the same (through a
-- foreign key: a referencing row that is locked, or that still refers to
-- the row), the set is halved until the rows that fail are alone; those
-- stay for a later run.  The caller sets a short lock_timeout (a lock met
-- here only tells which rows cannot go now).  Returns {rows removed,
-- expired rows left}.
CREATE FUNCTION utilix._purge_rows(leaf regclass, pred text, ctids tid[]) RETURNS bigint[]
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    SET enable_indexscan = on SET enable_bitmapscan = on
    AS $$
DECLARE
    n bigint;
    k integer := COALESCE(cardinality(ctids), 0);
    a bigint[];
    b bigint[];
BEGIN
    IF leaf IS NULL OR pred IS NULL THEN
        RAISE EXCEPTION 'table and predicate must not be null' USING ERRCODE = '22004';
    END IF;
    IF k = 0 THEN
        RETURN ARRAY[0, 0]::bigint[];
    END IF;
    BEGIN
        n := (utilix._exec_as_owner(leaf, format(
                 'WITH l AS MATERIALIZED (SELECT t.ctid FROM %1$s t WHERE t.ctid = ANY ($1) AND %2$s FOR UPDATE OF t SKIP LOCKED),
                       d AS (DELETE FROM %1$s x WHERE x.ctid = ANY (ARRAY(SELECT l.ctid FROM l)) RETURNING 1)
                  SELECT count(*) FROM d', leaf, pred), ctids))[1]::bigint;
        IF n = k THEN
            RETURN ARRAY[n, 0];
        END IF;
        -- some were held by others (or changed meanwhile): those still expired stay
        RETURN ARRAY[n, (utilix._exec_as_owner(leaf, format('SELECT count(*) FROM %1$s t WHERE t.ctid = ANY ($1) AND %2$s',
                                                             leaf, pred), ctids))[1]::bigint];
    EXCEPTION WHEN lock_not_available OR integrity_constraint_violation OR transaction_rollback THEN
        IF k = 1 THEN
            RETURN ARRAY[0, 1]::bigint[];
        END IF;
    END;
    a := utilix._purge_rows(leaf, pred, ctids[1:k / 2]);
    b := utilix._purge_rows(leaf, pred, ctids[k / 2 + 1:k]);
    RETURN ARRAY[a[1] + b[1], a[2] + b[2]];
END
$$;
COMMENT ON FUNCTION utilix._purge_rows(regclass, text, tid[]) IS
    'internal: deletes the expired rows at the given ctids, skipping locked rows and isolating rows a foreign key keeps; returns {removed, left}';

-- One bounded step of one policy, in the caller's transaction: drops
-- expired partitions (at a run's first step), then deletes up to max_batches batches of
-- utilix.purge_batch_rows rows under a short lock_timeout (the caller's
-- own lock_timeout is restored).  Records the work in utilix.purge_run and
-- returns that run's id (NULL when there was nothing to do).
--
-- What another session holds delays only what it holds: a row that a
-- transaction has locked (SELECT ... FOR UPDATE or FOR KEY SHARE, an
-- UPDATE or DELETE not yet committed; a tenant may do that to its own
-- rows) is skipped, counted in rows_skipped and left for a later run,
-- while every other expired row goes; a row a foreign key keeps (a
-- referencing row locked, or still referring to it) likewise.  A partition
-- that cannot be detached at once (a reader holds its table) is left to
-- the batches, row by row.  Only a table lock (the owner's DDL or LOCK
-- TABLE, which hold every tenant alike) makes the step give way: the work
-- done so far is kept and the next step goes on from there.
CREATE FUNCTION utilix._retention_step(r utilix.retention_policy, max_batches integer,
                                       time_budget interval DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET enable_indexscan = off SET enable_bitmapscan = off
    AS $$
DECLARE
    res text[];
    rel regclass := to_regclass(format('%I.%I', r.schema_name, r.table_name));
    p utilix.protected_table;
    run utilix.purge_run;
    leaf regclass;
    pred text;
    batch integer := current_setting('utilix.purge_batch_rows')::integer;
    n bigint;
    found_rows bigint;
    last_ctid tid;
    from_ctid tid;
    done bigint := 0;
    skipped bigint := 0;
    dropped integer := 0;
    i integer := 0;
    finished boolean := true;
    have_run boolean;
    gave_way text;
    q text;
    qd text;
    keep_sql text;
    todel tid[];
    lr bigint[];
    expected bigint;
    plan jsonb;
    deadline timestamptz := clock_timestamp() + time_budget;
    saved_timeout text := current_setting('lock_timeout');
    nblocks bigint;
    window_end tid;
    window_pages integer := 1024;
BEGIN
    IF rel IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT * INTO p FROM utilix.protected_table q WHERE q.schema_name = r.schema_name AND q.table_name = r.table_name;
    pred := utilix._expired_sql(r, p.tenant_column, 't');
    -- from here on every lock is waited for utilix.purge_lock_timeout at most
    PERFORM set_config('lock_timeout', current_setting('utilix.purge_lock_timeout'), true);
    BEGIN
        SELECT * INTO run FROM utilix.purge_run x
         WHERE x.kind = 'retention' AND x.table_name = rel::text AND x.outcome = 'running'
         ORDER BY x.id DESC LIMIT 1 FOR UPDATE;
        have_run := FOUND;
    EXCEPTION WHEN lock_not_available THEN
        -- another step of this run is under way, and goes on with it
        PERFORM set_config('lock_timeout', saved_timeout, true);
        RETURN NULL;
    END;
    IF NOT have_run THEN
        BEGIN
            -- an index on the time column answers these at once
            PERFORM set_config('enable_indexscan', 'on', true), set_config('enable_bitmapscan', 'on', true);
            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s t WHERE %s)', rel, pred) INTO finished;
            IF NOT finished AND NOT EXISTS (SELECT 1 FROM utilix._droppable_partitions(r)) THEN
                PERFORM set_config('lock_timeout', saved_timeout, true);
                RETURN NULL;
            END IF;
            -- exact for a small run; for a large one the planner's estimate,
            -- since counting would cost a scan of its own
            EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM %s t WHERE %s', rel, pred) INTO plan;
            expected := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint;
            IF expected < 100000 THEN
                EXECUTE format('SELECT count(*) FROM %s t WHERE %s', rel, pred) INTO expected;
            END IF;
            PERFORM set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
        EXCEPTION WHEN lock_not_available THEN
            -- a table lock (the owner's DDL or LOCK TABLE, which hold every
            -- tenant alike) keeps the table from being read: recorded, and
            -- tried again at the next run
            PERFORM set_config('lock_timeout', saved_timeout, true);
            INSERT INTO utilix.purge_run (kind, table_name, outcome, finished_at, error)
            VALUES ('retention', rel::text, 'skipped', clock_timestamp(),
                    format('lock timeout: a table lock on %s held the run off; retried at the next run', rel::text))
            RETURNING * INTO run;
            RETURN run.id;
        END;
        INSERT INTO utilix.purge_run (kind, table_name, rows_expected) VALUES ('retention', rel::text, expected)
            RETURNING * INTO run;
        finished := true;
        -- whole partitions, each on its own, once per run: DETACH needs the
        -- table to itself, so one that a reader holds (any tenant's open
        -- transaction that read the table) is left to the batches below,
        -- and the partition to a later run
        BEGIN
            n := 0;
            lr := ARRAY[0, 0];
            FOR leaf IN SELECT * FROM utilix._droppable_partitions(r) LOOP
                BEGIN
                    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', rel, leaf);
                    EXECUTE format('SELECT count(*) FROM %s', leaf) INTO n;
                    EXECUTE format('DROP TABLE %s', leaf);
                    lr := ARRAY[lr[1] + n, lr[2] + 1];
                EXCEPTION WHEN lock_not_available THEN
                    NULL;
                END;
            END LOOP;
            done := done + lr[1];
            dropped := dropped + lr[2];
        EXCEPTION WHEN lock_not_available THEN
            NULL;   -- a partition could not even be read: the batches below
        END;
    END IF;
    -- each leaf in physical order, from where the run stopped last time,
    -- a window of pages at a time, so that no batch scans for long
    FOR leaf IN SELECT l FROM utilix._leaves(rel) l
                 WHERE run.resume_leaf IS NULL OR l::oid >= run.resume_leaf ORDER BY l::oid LOOP
        from_ctid := CASE WHEN leaf::oid = run.resume_leaf THEN run.resume_ctid ELSE '(0,0)'::tid END;
        BEGIN
            PERFORM utilix._lock_for_purge(leaf);
        EXCEPTION WHEN lock_not_available THEN
            -- a table lock: the step gives way, keeping what it did
            gave_way := format('lock timeout on a table lock of %s or of a table referencing it; retried at the next run', leaf);
            finished := false;
            run.resume_leaf := leaf::oid;
            run.resume_ctid := from_ctid;
            EXIT;
        END;
        nblocks := pg_relation_size(leaf) / current_setting('block_size')::integer;
        -- rows a foreign key without an action still refers to (NO ACTION,
        -- RESTRICT) cannot go: they are left out before the delete, instead
        -- of failing it and being sorted out row by row at every run (a
        -- tenant's own references would otherwise cost every tenant's purge)
        SELECT string_agg(format('EXISTS (SELECT 1 FROM %s c WHERE %s)', c.conrelid::regclass,
                                 (SELECT string_agg(format('c.%I = t.%I', ca.attname, pa.attname), ' AND ')
                                    FROM unnest(c.conkey, c.confkey) k(ck, pk)
                                    JOIN pg_attribute ca ON ca.attrelid = c.conrelid AND ca.attnum = k.ck
                                    JOIN pg_attribute pa ON pa.attrelid = c.confrelid AND pa.attnum = k.pk)), ' OR ')
          INTO keep_sql
          FROM pg_constraint c
         WHERE c.contype = 'f' AND c.confdeltype IN ('a', 'r') AND c.conparentid = 0
           AND c.confrelid IN (SELECT leaf::oid UNION SELECT a.relid FROM pg_partition_ancestors(leaf) a);
        -- the candidates: expired rows of the window, read without waiting.
        -- One whose xmax is unset was neither locked nor changed by anyone
        -- when it was read, and is deleted at once; the others may be held
        -- by a transaction still open, and are locked first, skipping
        -- those held (SKIP LOCKED: left for a later run).  Locking every
        -- row would cost a second write of each.
        q := format('WITH c AS MATERIALIZED (
                            SELECT count(*) AS n, max(s.ctid) AS last,
                                   array_agg(s.ctid) FILTER (WHERE NOT s.touched) AS untouched,
                                   array_agg(s.ctid) FILTER (WHERE s.touched) AS touched
                              FROM (SELECT t.ctid, t.xmax <> ''0''::xid AS touched FROM %1$s t
                                     WHERE t.ctid > $1[1] AND t.ctid < $1[2] AND %2$s LIMIT %3$s) s),
                          l AS MATERIALIZED (SELECT t.ctid FROM %1$s t WHERE t.ctid = ANY ((SELECT c.touched FROM c)::tid[])
                                               AND %2$s FOR UPDATE OF t SKIP LOCKED)
                     SELECT (SELECT c.n FROM c), (SELECT c.last FROM c),
                            COALESCE((SELECT c.untouched FROM c), ''{}'') || ARRAY(SELECT l.ctid FROM l)',
                    leaf, pred, batch);
        -- the delete apart, so that its foreign-key checks and cascades plan
        -- with index scans (the window walk above must not use them)
        qd := format('WITH d AS (DELETE FROM %1$s x WHERE x.ctid = ANY ($1) RETURNING 1) SELECT count(*) FROM d', leaf);
        -- the table locks are held now; a lock the batches meet is a row's
        -- (taken since the batch read it, or reached through a foreign
        -- key), which says only that this row cannot go yet: 10 ms at most
        PERFORM set_config('lock_timeout', '10ms', true);
        LOOP
            -- (one batch at least: waits above must not starve the batches)
            IF i >= max_batches OR (i > 0 AND clock_timestamp() > deadline) THEN
                finished := false;
                run.resume_leaf := leaf::oid;
                run.resume_ctid := from_ctid;
                EXIT;
            END IF;
            window_end := format('(%s,0)', (from_ctid::text::point)[0]::bigint + window_pages)::tid;
            -- as the table's owner, restricted: see utilix._exec_as_owner.
            -- Only this batch is undone when it meets a lock all the same (a
            -- row locked since it was read, or one a foreign key's action or
            -- check reaches) or a row a foreign key keeps; it is then sorted
            -- out row by row below.
            BEGIN
                res := utilix._exec_as_owner(leaf, q, ARRAY[from_ctid, window_end]);
                PERFORM set_config('enable_indexscan', 'on', true), set_config('enable_bitmapscan', 'on', true);
                todel := res[3]::tid[];
                IF keep_sql IS NOT NULL AND cardinality(todel) > 0 THEN
                    todel := (utilix._exec_as_owner(leaf,
                                format('SELECT ARRAY(SELECT t.ctid FROM %1$s t WHERE t.ctid = ANY ($1) AND NOT (%2$s))', leaf, keep_sql),
                                todel))[1]::tid[];
                END IF;
                res[3] := (utilix._exec_as_owner(leaf, qd, todel))[1];
                PERFORM set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
            EXCEPTION WHEN lock_not_available OR integrity_constraint_violation OR transaction_rollback THEN
                PERFORM set_config('enable_indexscan', 'off', true), set_config('enable_bitmapscan', 'off', true);
                res := NULL;
            END;
            IF res IS NOT NULL THEN
                found_rows := res[1]::bigint;
                last_ctid := res[2]::tid;
                n := res[3]::bigint;
                IF n < found_rows THEN
                    -- rows held by other transactions: those still expired stay for a later run
                    skipped := skipped + (utilix._exec_as_owner(leaf,
                        format('SELECT count(*) FROM %1$s t WHERE t.ctid > $1[1] AND t.ctid <= $1[2] AND %2$s', leaf, pred),
                        ARRAY[from_ctid, last_ctid]))[1]::bigint;
                END IF;
            ELSE
                res := utilix._exec_as_owner(leaf,
                           format('SELECT ARRAY(SELECT t.ctid FROM %1$s t WHERE t.ctid > $1[1] AND t.ctid < $1[2] AND %2$s LIMIT %3$s)',
                                  leaf, pred, batch),
                           ARRAY[from_ctid, window_end]);
                found_rows := COALESCE(cardinality(res[1]::tid[]), 0);
                last_ctid := (res[1]::tid[])[found_rows];
                -- row by row, as it were: a lock met now only tells which rows
                -- cannot go, so it is waited for 1 ms (a row locked through
                -- a foreign key costs a few such waits, not a run)
                PERFORM set_config('lock_timeout', '1ms', true);
                lr := utilix._purge_rows(leaf, pred, res[1]::tid[]);
                PERFORM set_config('lock_timeout', '10ms', true);
                n := lr[1];
                skipped := skipped + lr[2];
            END IF;
            i := i + 1;
            done := done + n;
            IF found_rows = batch THEN
                from_ctid := last_ctid;             -- more in this window
            ELSIF (window_end::text::point)[0] >= nblocks THEN
                EXIT;                               -- the leaf is done
            ELSE
                from_ctid := format('(%s,%s)', (window_end::text::point)[0]::bigint - 1, 65535)::tid;
            END IF;
        END LOOP;
        PERFORM set_config('lock_timeout', current_setting('utilix.purge_lock_timeout'), true);
        EXIT WHEN NOT finished;
    END LOOP;
    PERFORM set_config('lock_timeout', saved_timeout, true);
    UPDATE utilix.purge_run x SET rows_removed = x.rows_removed + done, partitions_dropped = x.partitions_dropped + dropped,
           rows_skipped = x.rows_skipped + skipped,
           outcome = CASE WHEN NOT finished THEN 'running' WHEN x.rows_skipped + skipped > 0 THEN 'partial' ELSE 'ok' END,
           finished_at = CASE WHEN finished THEN clock_timestamp() END,
           error = CASE WHEN gave_way IS NOT NULL THEN gave_way
                        WHEN finished AND x.rows_skipped + skipped > 0
                        THEN format('%s expired rows were held by other transactions (or kept by a foreign key); left for the next run',
                                    x.rows_skipped + skipped) END,
           resume_leaf = CASE WHEN finished THEN NULL ELSE run.resume_leaf END,
           resume_ctid = CASE WHEN finished THEN NULL ELSE run.resume_ctid END
     WHERE x.id = run.id;
    IF done > 0 OR dropped > 0 OR skipped > 0 THEN
        PERFORM utilix._log_event('purge', NULL, 'ok',
                                  format('retention of %s: %s rows removed, %s partitions dropped%s (run %s)', rel::text, done, dropped,
                                         CASE WHEN skipped > 0 THEN format(', %s expired rows held by other transactions left', skipped) ELSE '' END,
                                         run.id),
                                  on_commit => true);
    END IF;
    RETURN run.id;
END
$$;
COMMENT ON FUNCTION utilix._retention_step(utilix.retention_policy, integer, interval) IS
    'internal: one bounded step of a retention policy, recorded in utilix.purge_run';

CREATE FUNCTION utilix.run_retention(rel regclass DEFAULT NULL)
    RETURNS TABLE (table_name text, rows_removed bigint, partitions_dropped integer)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    r utilix.retention_policy;
    run_id bigint;
BEGIN
    IF rel IS NOT NULL THEN
        PERFORM utilix._policy_table(rel);
        IF NOT EXISTS (SELECT 1 FROM utilix.retention_policy q
                        WHERE to_regclass(format('%I.%I', q.schema_name, q.table_name)) = rel) THEN
            RAISE EXCEPTION 'table "%" has no retention policy', rel::text USING ERRCODE = '22023';
        END IF;
    END IF;
    PERFORM utilix._record_unsettled_retention('run_retention()', rel);
    FOR r IN SELECT * FROM utilix.retention_policy q
              WHERE rel IS NULL OR to_regclass(format('%I.%I', q.schema_name, q.table_name)) = rel LOOP
        run_id := utilix._retention_step(r, 2147483647);
        IF run_id IS NULL THEN
            table_name := format('%I.%I', r.schema_name, r.table_name)::regclass::text;
            rows_removed := 0;
            partitions_dropped := 0;
            RETURN NEXT;
        ELSE
            RETURN QUERY SELECT x.table_name, x.rows_removed, x.partitions_dropped FROM utilix.purge_run x
                          WHERE x.id = run_id;
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix.run_retention(regclass) IS
    'operator: applies retention now, in this transaction (the worker does the same in short transactions)';

CREATE FUNCTION utilix.hold_tenant(tenant bigint, reason text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF tenant IS NULL OR reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'tenant and a reason are required' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM utilix.tenant t WHERE t.id = tenant AND t.status <> 'purged') THEN
        RAISE EXCEPTION 'tenant % does not exist or was purged', tenant USING ERRCODE = '22023';
    END IF;
    INSERT INTO utilix.legal_hold (tenant_id, reason) VALUES (tenant, reason)
    ON CONFLICT (tenant_id) DO UPDATE SET reason = EXCLUDED.reason;
    PERFORM utilix._lifecycle(tenant, 'legal hold', reason);
END
$$;
COMMENT ON FUNCTION utilix.hold_tenant(bigint, text) IS 'operator: retention and offboarding skip the tenant until released';

CREATE FUNCTION utilix.release_hold(tenant bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'tenant must not be null' USING ERRCODE = '22004';
    END IF;
    DELETE FROM utilix.legal_hold h WHERE h.tenant_id = tenant;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % is not on hold', tenant USING ERRCODE = '22023';
    END IF;
    PERFORM utilix._lifecycle(tenant, 'hold released');
END
$$;
COMMENT ON FUNCTION utilix.release_hold(bigint) IS 'operator: ends a legal hold';

CREATE FUNCTION utilix.terminate_tenant(tenant bigint, grace interval DEFAULT '30 days') RETURNS timestamptz
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    st text;
    due timestamptz;
BEGIN
    IF grace IS NULL THEN
        RAISE EXCEPTION 'grace must not be null' USING ERRCODE = '22004';
    END IF;
    IF grace <= interval '0' THEN
        RAISE EXCEPTION 'grace must be a positive interval' USING ERRCODE = '22023';
    END IF;
    st := utilix._tenant_status(tenant, true);
    IF st <> 'active' THEN
        RAISE EXCEPTION 'tenant % is already %', tenant, st USING ERRCODE = '55000';
    END IF;
    due := now() + grace;
    UPDATE utilix.tenant t SET status = 'terminated', terminated_at = now(), purge_after = due WHERE t.id = tenant;
    PERFORM utilix._lifecycle(tenant, 'terminated', format('purge after %s', due));
    RETURN due;
END
$$;
COMMENT ON FUNCTION utilix.terminate_tenant(bigint, interval) IS
    'operator: the tenant''s contexts stop working at once; its data stays for export until the grace period ends, then is purged';

CREATE FUNCTION utilix.cancel_termination(tenant bigint) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF utilix._tenant_status(tenant, true) <> 'terminated' OR EXISTS (SELECT 1 FROM utilix.data_key k WHERE k.tenant_id = tenant AND k.state = 'destroyed') THEN
        RAISE EXCEPTION 'tenant % is not in its grace period', tenant USING ERRCODE = '55000';
    END IF;
    UPDATE utilix.tenant x SET status = 'active', terminated_at = NULL, purge_after = NULL WHERE x.id = tenant;
    PERFORM utilix._lifecycle(tenant, 'termination cancelled');
END
$$;
COMMENT ON FUNCTION utilix.cancel_termination(bigint) IS 'operator: reactivates a terminated tenant within its grace period';

-- Every row of a tenant as JSON, encrypted columns decrypted.
--
-- This is where an operator reads a tenant's plaintext, so:
--  - only after the tenant's termination has committed.  Termination cuts
--    the tenant's contexts off, which the tenant sees; a termination made in
--    this very transaction is visible to no one else yet and would vanish
--    with a ROLLBACK (taking the lifecycle event with it), leaving an active
--    tenant whose data was read: refused (55000);
--  - every export goes at once into the tenant's own chain of the access
--    log (kind export), and is written there before a row reaches the
--    caller: no ROLLBACK takes it back, and the tenant's auditors read it.
--    A refused export goes there too (outcome denied);
--  - the tenant row is share-locked meanwhile: no cancellation or purge
--    happens under an export.
CREATE FUNCTION utilix.export_tenant(tenant bigint) RETURNS TABLE (table_name text, row_data jsonb)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p utilix.protected_table;
    cols text;
    st text;
    here boolean;
    n bigint;
    total bigint := 0;
    ntables integer := 0;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'tenant must not be null' USING ERRCODE = '22004';
    END IF;
    SELECT t.status, utilix._written_here(t.xmin) INTO st, here FROM utilix.tenant t WHERE t.id = tenant FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant % does not exist', tenant USING ERRCODE = '22023';
    END IF;
    -- operators decrypt a tenant's data only to hand it over at the end
    IF st <> 'terminated' THEN
        PERFORM utilix._log_event('export', tenant, 'denied', format('export refused: the tenant is %s, not terminated', st));
        RAISE EXCEPTION 'tenant % is not terminated', tenant
            USING ERRCODE = '55000',
                  HINT = 'Operators export a tenant''s data after utilix.terminate_tenant(); an active tenant reads its own data with its context.';
    END IF;
    IF here THEN
        PERFORM utilix._log_event('export', tenant, 'denied', 'export refused: the termination is not committed');
        RAISE EXCEPTION 'tenant % was terminated in this transaction', tenant
            USING ERRCODE = '55000',
                  DETAIL = 'Until the termination commits, the tenant is still active for everyone else, and a rollback would leave it so.',
                  HINT = 'Commit utilix.terminate_tenant() first, then export in a transaction of its own.';
    END IF;
    INSERT INTO utilix.lifecycle_event (tenant_id, event) VALUES (tenant, 'exported');
    FOR p IN SELECT q.* FROM utilix.protected_table q
              WHERE NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = q.relid)
              ORDER BY q.schema_name, q.table_name LOOP
        SELECT string_agg(CASE WHEN e.column_id IS NOT NULL THEN format('utilix._plain(x.%1$I) AS %1$I', a.attname)
                               ELSE format('x.%I', a.attname) END, ', ' ORDER BY a.attnum)
          INTO cols
          FROM pg_attribute a
          LEFT JOIN utilix.encrypted_column e ON e.relid = p.relid AND e.column_name = a.attname
         WHERE a.attrelid = p.relid AND a.attnum > 0 AND NOT a.attisdropped;
        table_name := format('%I.%I', p.schema_name, p.table_name);
        RETURN QUERY EXECUTE format('SELECT %L::text, to_jsonb(s) FROM (SELECT %s FROM %I.%I x WHERE x.%I = $1) s ORDER BY to_jsonb(s)::text',
                                    table_name, cols, p.schema_name, p.table_name, p.tenant_column) USING tenant;
        GET DIAGNOSTICS n = ROW_COUNT;
        total := total + n;
        ntables := ntables + 1;
    END LOOP;
    -- the rows reach the caller only when this function returns: the record
    -- is written first, in the tenant's chain, whatever becomes of this transaction
    IF NOT utilix._log_event('export', tenant, 'ok',
                             format('tenant data exported, encrypted columns decrypted: %s rows of %s tables', total, ntables))
       OR NOT utilix.access_log_flush(10000) THEN
        RAISE EXCEPTION 'the export of tenant % could not be recorded in the access log', tenant
            USING ERRCODE = '55000',
                  HINT = 'An export is recorded before it is returned: utilix must be in shared_preload_libraries and its access log writer must be running (see utilix.access_log_status).';
    END IF;
END
$$;
COMMENT ON FUNCTION utilix.export_tenant(bigint) IS
    'operator: every row of a tenant whose termination has committed, in every protected table, as JSON (encrypted columns decrypted), for COPY to files; recorded in the tenant''s access log chain before it returns, through rollback';

CREATE FUNCTION utilix.export_manifest(tenant bigint) RETURNS TABLE (table_name text, row_count bigint, sha256 text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT e.table_name, count(*),
           encode(pg_catalog.sha256(convert_to(string_agg(e.row_data::text || E'\n', '' ORDER BY e.row_data::text), 'UTF8')), 'hex')
      FROM utilix.export_tenant(tenant) e GROUP BY e.table_name ORDER BY 1
$$;
COMMENT ON FUNCTION utilix.export_manifest(bigint) IS
    'operator: per table, the row count and the SHA-256 of the exported rows (each row''s JSON text and a newline, in export order)';

-- Purges one tenant: every protected row, its users and keys; writes the certificate.
CREATE FUNCTION utilix._purge_tenant(tenant bigint) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET utilix.internal_ddl = on
    AS $$
DECLARE
    t record;
    p utilix.protected_table;
    leaf regclass;
    before bigint;
    after bigint;
    tables jsonb := '{}';
    checks text[] := '{}';
    q text;
    keys integer;
    prev bytea;
    cert_id bigint;
    run_id bigint;
    total bigint := 0;
    dropped integer := 0;
    bound text;
    pending oid[];
    rid oid;
    progress boolean;
    saved_timeout text := current_setting('lock_timeout');
BEGIN
    -- every lock is waited for utilix.purge_lock_timeout at most: a
    -- transaction that holds the tenant (one that wrote its rows holds its
    -- tenant row) or its rows delays this purge only, which the caller
    -- records and retries, never the worker's other work
    PERFORM set_config('lock_timeout', current_setting('utilix.purge_lock_timeout'), true);
    SELECT * INTO t FROM utilix.tenant x WHERE x.id = tenant FOR UPDATE;
    IF NOT FOUND OR t.status <> 'terminated' THEN
        RAISE EXCEPTION 'tenant % is not terminated', tenant USING ERRCODE = '55000';
    END IF;
    IF EXISTS (SELECT 1 FROM utilix.legal_hold h WHERE h.tenant_id = tenant) THEN
        RAISE EXCEPTION 'tenant % is on legal hold', tenant USING ERRCODE = '55000',
            HINT = 'Release the hold with utilix.release_hold() first.';
    END IF;
    INSERT INTO utilix.purge_run (kind, tenant_id) VALUES ('offboarding', tenant) RETURNING id INTO run_id;
    -- counts before anything is removed
    FOR p IN SELECT q2.* FROM utilix.protected_table q2
              WHERE NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = q2.relid) LOOP
        EXECUTE format('SELECT count(*) FROM %I.%I WHERE %I = $1', p.schema_name, p.table_name, p.tenant_column)
            INTO before USING tenant;
        tables := tables || jsonb_build_object(format('%I.%I', p.schema_name, p.table_name),
                                               jsonb_build_object('before', before));
        total := total + before;
    END LOOP;
    -- remove: tables referenced by others may have to wait for them, so go
    -- round until every table is empty or a round makes no progress
    pending := ARRAY(SELECT q2.relid FROM utilix.protected_table q2
                      WHERE NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = q2.relid));
    LOOP
        EXIT WHEN cardinality(pending) = 0;
        progress := false;
        FOREACH rid IN ARRAY pending LOOP
            SELECT * INTO p FROM utilix.protected_table q2 WHERE q2.relid = rid;
            BEGIN
                -- a partition that holds exactly this tenant goes whole;
                -- unless another session reads the table (DETACH needs it to
                -- itself): then its rows go by the DELETE below
                FOR leaf IN SELECT l.* FROM utilix._leaves(p.relid::regclass) l WHERE l::oid <> p.relid LOOP
                    bound := pg_get_expr((SELECT c.relpartbound FROM pg_class c WHERE c.oid = leaf), leaf);
                    IF bound = format('FOR VALUES IN (''%s'')', tenant) THEN
                        BEGIN
                            EXECUTE format('ALTER TABLE %s DETACH PARTITION %s',
                                           (SELECT i.inhparent::regclass FROM pg_inherits i WHERE i.inhrelid = leaf), leaf);
                            EXECUTE format('DROP TABLE %s', leaf);
                            dropped := dropped + 1;
                        EXCEPTION WHEN lock_not_available THEN
                            NULL;
                        END;
                    END IF;
                END LOOP;
                PERFORM utilix._exec_as_owner(p.relid::regclass,
                            format('DELETE FROM %I.%I WHERE %I = %s', p.schema_name, p.table_name, p.tenant_column, tenant));
                pending := array_remove(pending, rid);
                progress := true;
            EXCEPTION WHEN foreign_key_violation THEN
                NULL;   -- rows of another table still reference these: next round
            END;
        END LOOP;
        IF NOT progress THEN
            RAISE EXCEPTION 'tenant % cannot be purged: foreign keys between its tables form a cycle', tenant
                USING ERRCODE = '23503';
        END IF;
    END LOOP;
    FOR p IN SELECT q2.* FROM utilix.protected_table q2
              WHERE NOT (SELECT c.relispartition FROM pg_class c WHERE c.oid = q2.relid) LOOP
        q := format('SELECT count(*) FROM %I.%I WHERE %I = %s', p.schema_name, p.table_name, p.tenant_column, tenant);
        EXECUTE q INTO after;
        IF after <> 0 THEN
            RAISE EXCEPTION 'rows of tenant % remain in %.%', tenant, p.schema_name, p.table_name USING ERRCODE = 'XX000';
        END IF;
        tables := jsonb_set(tables, ARRAY[format('%I.%I', p.schema_name, p.table_name), 'after'], to_jsonb(after));
        checks := checks || q;
    END LOOP;
    DELETE FROM utilix.app_user a WHERE a.tenant_id = tenant;
    DELETE FROM utilix.admin_network n WHERE n.tenant_id = tenant;
    DELETE FROM utilix.role_binding b WHERE b.tenant_id = tenant;
    DELETE FROM utilix.tenant_retention o WHERE o.tenant_id = tenant;
    UPDATE utilix.data_key k SET wrapped = NULL, state = 'destroyed', destroyed_at = now()
     WHERE k.tenant_id = tenant AND k.state <> 'destroyed';
    SELECT count(*) INTO keys FROM utilix.data_key k WHERE k.tenant_id = tenant AND k.state = 'destroyed';
    UPDATE utilix.tenant x SET status = 'purged', purged_at = now() WHERE x.id = tenant;
    SELECT c.hash INTO prev FROM utilix.deletion_certificate c ORDER BY c.id DESC LIMIT 1;
    INSERT INTO utilix.deletion_certificate (tenant_id, tenant_name, terminated_at, purged_at, tables,
                                             keys_destroyed, verification, prev_hash, hash)
    VALUES (tenant, t.name, t.terminated_at, now(), tables, keys, checks, prev, '\x')
    RETURNING id INTO cert_id;
    UPDATE utilix.deletion_certificate c
       SET hash = utilix._certificate_hash(c) WHERE c.id = cert_id;
    UPDATE utilix.purge_run x SET rows_removed = total, partitions_dropped = dropped, outcome = 'ok',
           finished_at = clock_timestamp(), rows_expected = total WHERE x.id = run_id;
    PERFORM utilix._lifecycle(tenant, 'purged', format('%s rows, %s keys destroyed, certificate %s', total, keys, cert_id));
    PERFORM set_config('lock_timeout', saved_timeout, true);
    RETURN cert_id;
END
$$;
COMMENT ON FUNCTION utilix._purge_tenant(bigint) IS 'internal: purges a terminated tenant and certifies it';

CREATE FUNCTION utilix._certificate_hash(c utilix.deletion_certificate) RETURNS bytea
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT pg_catalog.sha256(COALESCE(c.prev_hash, '\x'::bytea) || convert_to(
        jsonb_build_object('id', c.id, 'tenant_id', c.tenant_id, 'tenant_name', c.tenant_name,
                           'terminated_at', to_char(c.terminated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           'purged_at', to_char(c.purged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                           'tables', c.tables,
                           'keys_destroyed', c.keys_destroyed, 'verification', to_jsonb(c.verification))::text, 'UTF8'))
$$;
COMMENT ON FUNCTION utilix._certificate_hash(utilix.deletion_certificate) IS
    'the hash of a certificate: SHA-256 of the previous hash and the certificate''s canonical JSON (times in UTC, so any session verifies alike)';

CREATE FUNCTION utilix._purge_lock_note() RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT 'lock timeout: a transaction holds the tenant, its rows or its partition (utilix.purge_lock_timeout); '
           'nothing was removed, the purge is retried at the next run'
$$;
COMMENT ON FUNCTION utilix._purge_lock_note() IS 'internal: what an offboarding that gave way to a lock records';

CREATE FUNCTION utilix.purge_due_tenants() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    t bigint;
    n integer := 0;
BEGIN
    FOR t IN SELECT x.id FROM utilix.tenant x
              WHERE x.status = 'terminated' AND x.purge_after <= now()
                AND NOT EXISTS (SELECT 1 FROM utilix.legal_hold h WHERE h.tenant_id = x.id)
              ORDER BY x.purge_after LOOP
        -- a tenant whose rows a transaction holds waits for the next call;
        -- the others are purged all the same
        BEGIN
            PERFORM utilix._purge_tenant(t);
            n := n + 1;
        EXCEPTION WHEN lock_not_available THEN
            INSERT INTO utilix.purge_run (kind, tenant_id, outcome, finished_at, error)
            VALUES ('offboarding', t, 'error', clock_timestamp(), utilix._purge_lock_note());
        END;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION utilix.purge_due_tenants() IS
    'operator: purges every terminated tenant whose grace period has ended and that is not on hold (the worker calls it)';

CREATE FUNCTION utilix.verify_certificates() RETURNS TABLE (id bigint, tenant_id bigint, ok boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
    SELECT c.id, c.tenant_id,
           c.hash = utilix._certificate_hash(c)
           AND c.prev_hash IS NOT DISTINCT FROM lag(c.hash) OVER (ORDER BY c.id)
      FROM utilix.deletion_certificate c ORDER BY c.id
$$;
COMMENT ON FUNCTION utilix.verify_certificates() IS 'operator: checks each certificate''s hash and its link to the previous one';

CREATE VIEW utilix.deletion_certificates AS
    SELECT c.id, c.tenant_id, c.tenant_name, c.terminated_at, c.purged_at, c.tables, c.keys_destroyed,
           c.verification, encode(c.prev_hash, 'hex') AS prev_hash, encode(c.hash, 'hex') AS hash
      FROM utilix.deletion_certificate c;
COMMENT ON VIEW utilix.deletion_certificates IS 'operator: deletion certificates of purged tenants';

CREATE VIEW utilix.purge_runs AS
    SELECT x.id, x.kind, x.table_name, x.tenant_id, x.started_at, x.finished_at, x.rows_expected,
           x.rows_removed, x.partitions_dropped, x.outcome, x.error, x.rows_skipped
      FROM utilix.purge_run x;
COMMENT ON VIEW utilix.purge_runs IS 'operator: history of retention and offboarding runs';

CREATE VIEW utilix.purge_progress AS
    SELECT x.id, x.kind, x.table_name, x.tenant_id, x.started_at, x.rows_removed AS rows_done, x.rows_expected,
           round(100.0 * x.rows_removed / NULLIF(x.rows_expected, 0), 1) AS percent, x.rows_skipped
      FROM utilix.purge_run x WHERE x.outcome = 'running';
COMMENT ON VIEW utilix.purge_progress IS 'operator: runs in progress, with rows done and rows expected';

CREATE VIEW utilix.security_events AS
    SELECT e.at, e.tenant_id, 'login ' || e.outcome AS kind, e.detail
      FROM utilix.auth_event e WHERE e.outcome <> 'ok' AND e.event = 'login'
    UNION ALL
    SELECT l.at, l.tenant_id, l.event, l.detail FROM utilix.lifecycle_event l
     WHERE l.event IN ('purged', 'legal hold', 'hold released', 'terminated')
    UNION ALL
    SELECT now(), t.id, 'purge overdue',
           format('grace ended %s; %s', t.purge_after,
                  CASE WHEN EXISTS (SELECT 1 FROM utilix.legal_hold h WHERE h.tenant_id = t.id) THEN 'on legal hold' ELSE 'not yet purged' END)
      FROM utilix.tenant t WHERE t.status = 'terminated' AND t.purge_after < now();
COMMENT ON VIEW utilix.security_events IS 'operator: denied logins, lifecycle events, and tenants past their purge deadline';

-- What the worker does at each tick: a bounded step of every policy, the
-- due offboardings, and the trimming of old run history.
CREATE FUNCTION utilix._worker_tick() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    r utilix.retention_policy;
    t bigint;
BEGIN
    -- each piece of work in a subtransaction of its own: one failure is
    -- recorded and leaves the rest to go on
    FOR r IN SELECT * FROM utilix.retention_policy LOOP
        BEGIN
            PERFORM utilix._retention_step(r, current_setting('utilix.purge_batches_per_run')::integer,
                                           current_setting('utilix.purge_time_budget')::interval);
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO utilix.purge_run (kind, table_name, outcome, finished_at, error)
            VALUES ('retention', format('%I.%I', r.schema_name, r.table_name), 'error', clock_timestamp(), SQLERRM);
        END;
    END LOOP;
    FOR t IN SELECT x.id FROM utilix.tenant x
              WHERE x.status = 'terminated' AND x.purge_after <= now()
                AND NOT EXISTS (SELECT 1 FROM utilix.legal_hold h WHERE h.tenant_id = x.id)
              ORDER BY x.purge_after LOOP
        BEGIN
            PERFORM utilix._purge_tenant(t);
        EXCEPTION WHEN lock_not_available THEN
            INSERT INTO utilix.purge_run (kind, tenant_id, outcome, finished_at, error)
            VALUES ('offboarding', t, 'error', clock_timestamp(), utilix._purge_lock_note());
        WHEN OTHERS THEN
            INSERT INTO utilix.purge_run (kind, tenant_id, outcome, finished_at, error)
            VALUES ('offboarding', t, 'error', clock_timestamp(), SQLERRM);
        END;
    END LOOP;
    DELETE FROM utilix.purge_run x
     WHERE x.outcome <> 'running' AND x.started_at < now() - make_interval(days => current_setting('utilix.purge_run_retention')::integer);
END
$$;
COMMENT ON FUNCTION utilix._worker_tick() IS 'internal: one run of the background worker';
