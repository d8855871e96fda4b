-- utilix install script, part 70: the access history.
--
-- The records are made by hooks in C (src/accesslog.c) and written here by
-- the access log writer of this database.  The log is partitioned by the day
-- its records were written,
-- append-only, chained per tenant with SHA-256, and readable by a tenant's
-- auditors (row level security) and by operators.

-- Each protected table may override utilix.access_log.
ALTER TABLE utilix.protected_table
    ADD COLUMN access_log text CHECK (access_log IN ('off', 'writes', 'all'));
COMMENT ON COLUMN utilix.protected_table.access_log IS
    'this table''s access log setting (off, writes, all); NULL follows utilix.access_log';
CREATE TRIGGER utilix_invalidate AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON utilix.protected_table
    FOR EACH STATEMENT EXECUTE FUNCTION utilix._invalidate_cache();

CREATE TABLE utilix.access_log (
    id               bigint NOT NULL,
    at               timestamptz NOT NULL,
    tenant_id        bigint,
    app_user         text,
    session_role     text,
    db_role   text,
    client_addr      inet,
    client_port      integer,
    application_name text,
    backend_pid      integer,
    kind             text NOT NULL,
    tables           jsonb NOT NULL DEFAULT '[]',
    outcome          text NOT NULL,
    sqlstate         text,
    query_id         bigint,
    query            text,
    detail           text,
    record_id        uuid NOT NULL,
    prev_hash        bytea,
    hash             bytea NOT NULL,
    written_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
) PARTITION BY RANGE (written_at);
-- Partitioned by when records were written, not by when their statements began:
-- ids are given in writing order, so a day holds a contiguous run of each chain
-- and dropping it cuts every chain at one place (the anchor).
CREATE INDEX access_log_tenant_at ON utilix.access_log (tenant_id, at);
COMMENT ON TABLE utilix.access_log IS
    'access history: one record per statement that touched a protected table, and per login, admin, key, purge and export event; append-only, chained per tenant';
COMMENT ON COLUMN utilix.access_log.at IS 'when the statement began (UTC; shown in the session''s time zone)';
COMMENT ON COLUMN utilix.access_log.written_at IS 'when the writer committed the record; the log is partitioned by its UTC day';
COMMENT ON COLUMN utilix.access_log.tables IS 'protected tables touched: [{"table", "read", "inserted", "updated", "deleted"}]';
COMMENT ON COLUMN utilix.access_log.outcome IS 'ok, error (sqlstate says which), or denied (42501 or class 28)';
COMMENT ON COLUMN utilix.access_log.query IS 'normalised statement text (literals masked), only with utilix.access_log_query_text';
COMMENT ON COLUMN utilix.access_log.prev_hash IS 'hash of the previous record of the same tenant (NULL for the first)';
COMMENT ON COLUMN utilix.access_log.hash IS 'SHA-256 of the canonical form of this record, which includes prev_hash';

-- The chain heads: the last record of each tenant (0: records of no tenant).
CREATE TABLE utilix.access_log_chain (
    tenant_id bigint PRIMARY KEY,
    last_id   bigint NOT NULL,
    last_hash bytea NOT NULL,
    records   bigint NOT NULL DEFAULT 0
);
COMMENT ON TABLE utilix.access_log_chain IS 'access log: the head of each tenant''s chain (tenant 0: records of no tenant)';

-- Where a chain starts again after old days were dropped.
CREATE TABLE utilix.access_log_anchor (
    tenant_id  bigint NOT NULL,
    upto_id    bigint NOT NULL,
    last_hash  bytea NOT NULL,
    dropped    text NOT NULL,
    dropped_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, upto_id)
);
COMMENT ON TABLE utilix.access_log_anchor IS
    'access log: the hash of the last record of each tenant in a dropped day, where verification starts again';


-- Append-only, for everyone, the owner included.  Old days leave only by
-- utilix._access_log_maintain(), which drops whole partitions.
CREATE FUNCTION utilix._access_log_append_only() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    RAISE EXCEPTION 'the access log is append-only'
        USING ERRCODE = '42501',
              HINT = 'Records leave the log only when their day is older than utilix.access_log_retention.';
END
$$;
COMMENT ON FUNCTION utilix._access_log_append_only() IS 'internal: refuses UPDATE, DELETE and TRUNCATE of the access log';

CREATE TRIGGER utilix_append_only BEFORE UPDATE OR DELETE ON utilix.access_log
    FOR EACH ROW EXECUTE FUNCTION utilix._access_log_append_only();
CREATE TRIGGER utilix_append_only_truncate BEFORE TRUNCATE ON utilix.access_log
    FOR EACH STATEMENT EXECUTE FUNCTION utilix._access_log_append_only();
CREATE TRIGGER utilix_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON utilix.access_log_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION utilix._access_log_append_only();
-- the chain heads only move forward; the next id is one past the highest head
CREATE FUNCTION utilix._access_log_chain_guard() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.tenant_id = OLD.tenant_id AND NEW.last_id > OLD.last_id
       AND NEW.records > OLD.records THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the access log chain only moves forward'
        USING ERRCODE = '42501';
END
$$;
COMMENT ON FUNCTION utilix._access_log_chain_guard() IS 'internal: chain heads only move forward';
CREATE TRIGGER utilix_forward_only BEFORE UPDATE OR DELETE ON utilix.access_log_chain
    FOR EACH ROW EXECUTE FUNCTION utilix._access_log_chain_guard();
CREATE TRIGGER utilix_forward_only_truncate BEFORE TRUNCATE ON utilix.access_log_chain
    FOR EACH STATEMENT EXECUTE FUNCTION utilix._access_log_append_only();
-- Row level security: a context with the right audit reads its own tenant's
-- records; members of utilix_operator read all.
ALTER TABLE utilix.access_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE utilix.access_log FORCE ROW LEVEL SECURITY;
CREATE POLICY utilix_audit ON utilix.access_log FOR SELECT TO PUBLIC
    USING (CASE WHEN pg_catalog.pg_has_role('utilix_operator', 'MEMBER') THEN true
                ELSE tenant_id OPERATOR(pg_catalog.=) utilix.tenant_if_may('audit') END);

-- The day partitions that records between lo and hi need.
CREATE FUNCTION utilix._access_log_partitions(lo timestamptz, hi timestamptz) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    d date;
    name text;
    n integer := 0;
BEGIN
    IF hi - lo > interval '3660 days' THEN
        RAISE EXCEPTION 'access log records span more than ten years' USING ERRCODE = '22008';
    END IF;
    FOR d IN SELECT g::date FROM generate_series((lo AT TIME ZONE 'UTC')::date, (hi AT TIME ZONE 'UTC')::date, interval '1 day') g LOOP
        name := 'access_log_' || to_char(d, 'YYYYMMDD');
        IF to_regclass('utilix.' || name) IS NULL THEN
            -- the writer and run_access_log_maintenance() may both make a day:
            -- one at a time, and the second finds it made
            -- (the lock ATTACH takes anyway; taking it reads the catalogs anew)
            LOCK TABLE utilix.access_log IN SHARE UPDATE EXCLUSIVE MODE;
            CONTINUE WHEN to_regclass('utilix.' || name) IS NOT NULL;
            -- made apart and attached, which locks the log only against other
            -- DDL (SHARE UPDATE EXCLUSIVE), never against its readers
            PERFORM utilix._access_log_maintenance(true);
            EXECUTE format('CREATE TABLE utilix.%I (LIKE utilix.access_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
            EXECUTE format('ALTER TABLE utilix.%I ADD CONSTRAINT %I CHECK (written_at >= %L AND written_at < %L)',
                           name, name || '_day', (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
            EXECUTE format('CREATE TRIGGER utilix_append_only_truncate BEFORE TRUNCATE ON utilix.%I '
                           'FOR EACH STATEMENT EXECUTE FUNCTION utilix._access_log_append_only()', name);
            EXECUTE format('REVOKE ALL ON utilix.%I FROM PUBLIC', name);
            -- a member of the extension, like its parent: pg_dump leaves the
            -- log to physical backups (see README, Access history)
            EXECUTE format('ALTER EXTENSION utilix ADD TABLE utilix.%I', name);
            EXECUTE format('ALTER TABLE utilix.access_log ATTACH PARTITION utilix.%I FOR VALUES FROM (%L) TO (%L)',
                           name, (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
            PERFORM utilix._access_log_maintenance(false);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION utilix._access_log_partitions(timestamptz, timestamptz) IS
    'internal: creates the day partitions (UTC days) of the access log that records need';

-- Old days: anchors first (so that verification can start after them), then
-- the drop, which is itself recorded.
CREATE FUNCTION utilix._access_log_maintain() RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    p record;
    keep integer := current_setting('utilix.access_log_retention')::integer;
    cutoff timestamptz := now() - make_interval(days => keep);
    n integer := 0;
    rows bigint;
    saved_timeout text := current_setting('lock_timeout');
BEGIN
    PERFORM utilix._access_log_partitions(now(), now() + interval '1 day');
    FOR p IN SELECT c.oid::regclass AS rel, c.relname,
                    (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS upper
               FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'utilix.access_log'::regclass
              ORDER BY 3 LOOP
        CONTINUE WHEN p.upper IS NULL OR p.upper > cutoff;
        -- dropping a day needs the whole log to itself: a reader's open
        -- transaction (any tenant's auditor) makes it wait
        -- utilix.purge_lock_timeout at most, not the writer and every other
        -- reader behind it; the day goes at a later maintenance
        BEGIN
            PERFORM set_config('lock_timeout', current_setting('utilix.purge_lock_timeout'), true);
            LOCK TABLE utilix.access_log IN ACCESS EXCLUSIVE MODE;
            PERFORM set_config('lock_timeout', saved_timeout, true);
            EXECUTE format('INSERT INTO utilix.access_log_anchor (tenant_id, upto_id, last_hash, dropped)
                            SELECT DISTINCT ON (coalesce(l.tenant_id, 0)) coalesce(l.tenant_id, 0), l.id, l.hash, %L
                              FROM %s l ORDER BY coalesce(l.tenant_id, 0), l.id DESC
                            ON CONFLICT DO NOTHING', p.relname, p.rel);
            EXECUTE format('SELECT count(*) FROM %s', p.rel) INTO rows;
            PERFORM utilix._access_log_maintenance(true);
            EXECUTE format('ALTER EXTENSION utilix DROP TABLE %s', p.rel);
            EXECUTE format('DROP TABLE %s', p.rel);
            PERFORM utilix._access_log_maintenance(false);
            PERFORM utilix._log_event('purge', NULL, 'ok',
                                      format('access log day %s dropped (%s records, older than %s days)', p.relname, rows, keep),
                                      on_commit => true);
            n := n + 1;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM utilix._log_event('purge', NULL, 'error',
                                      format('access log day %s not dropped: another transaction reads the log; retried at the next maintenance',
                                             p.relname), on_commit => true);
            EXIT;
        END;
    END LOOP;
    RETURN n;
END
$$;
COMMENT ON FUNCTION utilix._access_log_maintain() IS
    'internal: creates tomorrow''s partition and drops days older than utilix.access_log_retention (recording the drop)';

CREATE FUNCTION utilix._access_log_maintenance(on_off boolean) RETURNS boolean
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'utilix_access_log_maintenance';
COMMENT ON FUNCTION utilix._access_log_maintenance(boolean) IS
    'internal: marks this backend as adding or dropping a day of the access log, for the rest of the transaction at most (the guards let that DDL pass); NULL only reads the mark';

CREATE FUNCTION utilix.run_access_log_maintenance() RETURNS integer
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT utilix._access_log_maintain() $$;
COMMENT ON FUNCTION utilix.run_access_log_maintenance() IS
    'operator: drops access log days older than utilix.access_log_retention now (the writer does it hourly); returns days dropped';

CREATE FUNCTION utilix._access_log_hash(r utilix.access_log) RETURNS bytea
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'utilix_access_log_hash';
COMMENT ON FUNCTION utilix._access_log_hash(utilix.access_log) IS
    'internal: the hash a record should carry, from its fields and prev_hash';

CREATE FUNCTION utilix.access_log_canonical(r utilix.access_log) RETURNS text
    LANGUAGE c STABLE STRICT
    AS 'MODULE_PATHNAME', 'utilix_access_log_canonical';
COMMENT ON FUNCTION utilix.access_log_canonical(utilix.access_log) IS
    'the exact text whose SHA-256 is the record''s hash (for verification outside the database)';

-- Who may read a tenant's log: an operator (any tenant), or a context with
-- the right audit (its own tenant).  Returns the tenant to use, NULL for all.
CREATE FUNCTION utilix._audit_scope(tenant bigint) RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    mine bigint;
BEGIN
    -- judged on the role the caller acts as: inside this SECURITY DEFINER
    -- function current_user is the owner
    IF utilix._acting_role_is_member('utilix_operator') OR utilix._invoker_is_superuser() THEN
        RETURN tenant;
    END IF;
    mine := utilix.tenant_if_may('audit');
    IF mine IS NULL THEN
        RAISE EXCEPTION 'reading the access log needs the right audit or the role utilix_operator'
            USING ERRCODE = '42501';
    END IF;
    IF tenant IS NOT NULL AND tenant <> mine THEN
        RAISE EXCEPTION 'the access log of another tenant is not readable' USING ERRCODE = '42501';
    END IF;
    RETURN mine;
END
$$;
COMMENT ON FUNCTION utilix._audit_scope(bigint) IS 'internal: the tenant whose log the caller may read (NULL: all), or 42501';

CREATE FUNCTION utilix.verify_access_log(tenant bigint DEFAULT NULL, since timestamptz DEFAULT NULL)
    RETURNS TABLE (tenant_id bigint, records bigint, ok boolean, broken_at bigint, problem text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    scope bigint := utilix._audit_scope(tenant);
    c record;
    r record;
    prev bytea;
    last_id bigint;
BEGIN
    -- every chain with a head, and every tenant with records but no head
    -- (its head deleted: reported below as a chain whose records are not its head's)
    FOR c IN SELECT k.t, h.last_id, h.last_hash, h.records AS n
               FROM (SELECT x.tenant_id AS t FROM utilix.access_log_chain x
                     UNION SELECT DISTINCT coalesce(l.tenant_id, 0) FROM utilix.access_log l) k
               LEFT JOIN utilix.access_log_chain h ON h.tenant_id = k.t
              WHERE scope IS NULL OR k.t = scope
              ORDER BY k.t LOOP
        tenant_id := NULLIF(c.t, 0);
        records := 0;
        ok := true;
        broken_at := NULL;
        problem := NULL;
        last_id := NULL;
        -- where the chain starts: the newest anchor of a dropped day
        SELECT a.last_hash INTO prev FROM utilix.access_log_anchor a
         WHERE a.tenant_id = c.t ORDER BY a.upto_id DESC LIMIT 1;
        FOR r IN SELECT l.id, l.prev_hash, l.hash, utilix._access_log_hash(l) AS expected
                   FROM utilix.access_log l
                  WHERE coalesce(l.tenant_id, 0) = c.t
                    -- since: from the first record of a statement begun then, in id order
                    AND (since IS NULL OR l.id >= (SELECT min(x.id) FROM utilix.access_log x
                                                     WHERE coalesce(x.tenant_id, 0) = c.t AND x.at >= since))
                  ORDER BY l.id LOOP
            IF records = 0 AND since IS NOT NULL THEN
                prev := r.prev_hash;
            END IF;
            records := records + 1;
            IF r.prev_hash IS DISTINCT FROM prev THEN
                ok := false; broken_at := r.id;
                problem := 'the record before this one is missing, or records were reordered';
                EXIT;
            END IF;
            IF r.hash IS DISTINCT FROM r.expected THEN
                ok := false; broken_at := r.id;
                problem := 'this record was altered';
                EXIT;
            END IF;
            prev := r.hash;
            last_id := r.id;
        END LOOP;
        -- with since, a tenant without newer records has nothing to check
        IF ok AND NOT (since IS NOT NULL AND records = 0) AND prev IS DISTINCT FROM c.last_hash THEN
            ok := false; broken_at := last_id;
            problem := CASE WHEN c.last_hash IS NULL THEN 'the chain head of this tenant is missing'
                            WHEN last_id IS NULL THEN 'the records of this tenant are missing'
                            ELSE 'records after this one are missing' END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix.verify_access_log(bigint, timestamptz) IS
    'operator or auditor: recomputes each tenant''s chain and reports the first broken link (altered, missing or reordered records)';

CREATE FUNCTION utilix.export_access_log(tenant bigint, "from" timestamptz, "to" timestamptz)
    RETURNS TABLE (id bigint, at timestamptz, record jsonb, canonical text, prev_hash text, hash text)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    scope bigint;
BEGIN
    IF tenant IS NULL OR "from" IS NULL OR "to" IS NULL THEN
        RAISE EXCEPTION 'tenant, from and to must not be null' USING ERRCODE = '22004';
    END IF;
    IF "to" < "from" THEN
        RAISE EXCEPTION 'the range ends before it starts' USING ERRCODE = '22023';
    END IF;
    scope := utilix._audit_scope(tenant);
    RETURN QUERY
        SELECT l.id, l.at, to_jsonb(l) - 'prev_hash' - 'hash' - 'written_at',
               utilix.access_log_canonical(l), encode(l.prev_hash, 'hex'), encode(l.hash, 'hex')
          FROM utilix.access_log l
         WHERE coalesce(l.tenant_id, 0) = coalesce(scope, tenant) AND l.at >= "from" AND l.at < "to"
         ORDER BY l.id;
END
$$;
COMMENT ON FUNCTION utilix.export_access_log(bigint, timestamptz, timestamptz) IS
    'operator or auditor: a tenant''s records in a time range with their canonical text and hashes; the first prev_hash is the anchor to verify from';

CREATE FUNCTION utilix.set_access_log(rel regclass, mode text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF mode IS NOT NULL AND mode NOT IN ('off', 'writes', 'all') THEN
        RAISE EXCEPTION 'access log mode must be off, writes, all or NULL (follow utilix.access_log)'
            USING ERRCODE = '22023';
    END IF;
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
    END IF;
    UPDATE utilix.protected_table p SET access_log = mode WHERE p.relid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not protected by utilix', rel USING ERRCODE = '55000';
    END IF;
    PERFORM utilix._log_event('admin', NULL, 'ok', format('access log of %s set to %s', rel::text, coalesce(mode, 'default')));
END
$$;
COMMENT ON FUNCTION utilix.set_access_log(regclass, text) IS
    'operator: this table''s access log setting (off, writes, all); NULL follows utilix.access_log';

CREATE FUNCTION utilix._access_log_status()
    RETURNS TABLE (queue_size integer, queued_here integer, queued_all integer, queued_total bigint,
                   written bigint, spilled bigint, loaded bigint, lost bigint, overflow_waits bigint,
                   writer_pid integer, last_write timestamptz, lag interval)
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'utilix_access_log_status';
COMMENT ON FUNCTION utilix._access_log_status() IS 'internal: counters of the access log queue and writer';

CREATE VIEW utilix.access_log_status AS SELECT * FROM utilix._access_log_status();
COMMENT ON VIEW utilix.access_log_status IS
    'operator: the access log queue (size, depth here and in all databases), records written, spilled, loaded and lost since start, the writer, and its lag';

CREATE FUNCTION utilix.access_log_flush(timeout_ms integer DEFAULT 10000) RETURNS boolean
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'utilix_access_log_flush';
COMMENT ON FUNCTION utilix.access_log_flush(integer) IS
    'waits until every access log record of this database queued so far is written; false after the timeout';

CREATE FUNCTION utilix.access_log_spill() RETURNS bytea
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'utilix_access_log_spill';
COMMENT ON FUNCTION utilix.access_log_spill() IS
    'operator, on a standby: the access log records spilled for this database (each handed out once); load them on the primary';

CREATE FUNCTION utilix.load_access_log_spill(data bytea) RETURNS bigint
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'utilix_load_access_log_spill';
COMMENT ON FUNCTION utilix.load_access_log_spill(bytea) IS
    'operator, on the primary: queues a standby''s spilled records for the writer (loading twice adds nothing); returns the records';

CREATE VIEW utilix.access_history WITH (security_invoker = true, security_barrier = true) AS
    SELECT l.id, l.at, l.tenant_id, l.app_user, l.session_role, l.db_role, l.client_addr,
           l.application_name, l.kind, l.tables, l.outcome, l.sqlstate, l.query_id, l.query, l.detail
      FROM utilix.access_log l
     ORDER BY l.at DESC, l.id DESC;
COMMENT ON VIEW utilix.access_history IS
    'auditor (right audit: own tenant) or operator (all): the access history, newest first';

CREATE OR REPLACE VIEW utilix.security_events AS
    SELECT e.at, e.tenant_id, 'login ' || e.outcome AS kind, e.detail
      FROM utilix.auth_event e WHERE e.outcome <> 'ok' AND e.event = 'login'
    UNION ALL
    SELECT l.at, l.tenant_id, l.event, l.detail FROM utilix.lifecycle_event l
     WHERE l.event IN ('purged', 'legal hold', 'hold released', 'terminated')
    UNION ALL
    SELECT now(), t.id, 'purge overdue',
           format('grace ended %s; %s', t.purge_after,
                  CASE WHEN EXISTS (SELECT 1 FROM utilix.legal_hold h WHERE h.tenant_id = t.id) THEN 'on legal hold' ELSE 'not yet purged' END)
      FROM utilix.tenant t WHERE t.status = 'terminated' AND t.purge_after < now()
    UNION ALL
    SELECT a.at, a.tenant_id, a.kind || ' ' || a.outcome,
           concat_ws('; ', 'record ' || a.id, 'user ' || a.app_user, 'role ' || a.session_role,
                     'from ' || host(a.client_addr), 'sqlstate ' || a.sqlstate,
                     (SELECT string_agg(x->>'table', ', ') FROM jsonb_array_elements(a.tables) x),
                     a.detail)
      FROM utilix.access_log a
     WHERE a.outcome = 'denied' OR a.kind IN ('key', 'purge', 'export');
COMMENT ON VIEW utilix.security_events IS
    'operator: denied logins and accesses, key, purge and export events, lifecycle events, and tenants past their purge deadline';
