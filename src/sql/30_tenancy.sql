-- utilix install script, part 30: protected tables and schemas.

CREATE TABLE utilix.protected_table (
    schema_name   name NOT NULL,
    table_name    name NOT NULL,
    tenant_column name NOT NULL,
    relid         oid NOT NULL,
    protected_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    protected_by  name NOT NULL DEFAULT SESSION_USER,
    PRIMARY KEY (schema_name, table_name)
);
COMMENT ON TABLE utilix.protected_table IS
    'tables under tenant isolation; names are authoritative (they survive dump and restore), relid follows renames';
REVOKE ALL ON utilix.protected_table FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.protected_table', '');

CREATE TABLE utilix.protected_schema (
    schema_name  name PRIMARY KEY,
    tenant_column name NOT NULL DEFAULT 'tenant_id',
    protected_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    protected_by name NOT NULL DEFAULT SESSION_USER
);
COMMENT ON TABLE utilix.protected_schema IS 'schemas whose new tables are protected when they are created';
REVOKE ALL ON utilix.protected_schema FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('utilix.protected_schema', '');

CREATE FUNCTION utilix._guard_tenant() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'utilix_guard_tenant';
COMMENT ON FUNCTION utilix._guard_tenant() IS
    'internal: row trigger that refuses an UPDATE moving a row to another tenant, and checks the tenant of rows copied in by COPY FROM';

CREATE FUNCTION utilix._may(right_name text) RETURNS boolean
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_may';
COMMENT ON FUNCTION utilix._may(text) IS
    'does the current context carry this right (raises 42501 without a context); used by the utilix_access policy';
CREATE FUNCTION utilix.tenant_if_may(right_name text) RETURNS bigint
    LANGUAGE c STABLE STRICT PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_tenant_if_may';
COMMENT ON FUNCTION utilix.tenant_if_may(text) IS
    'the current tenant when the context carries this right, else NULL (raises 42501 without a context); the utilix_access policy compares the tenant column with it';
CREATE FUNCTION utilix._check_rights() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'utilix_check_rights';
COMMENT ON FUNCTION utilix._check_rights() IS
    'internal: statement trigger: writes need the write right, TRUNCATE is refused (roles under row level security)';

-- The uniqueness and reference rules, as rows: one per offending object.
CREATE FUNCTION utilix._oracle_problems(rel regclass, tenant_column name, unprotected_refs boolean DEFAULT true)
    RETURNS TABLE (object text, problem text, fix text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    tatt smallint;
BEGIN
    SELECT a.attnum INTO tatt FROM pg_attribute a
     WHERE a.attrelid = rel AND a.attname = tenant_column AND NOT a.attisdropped AND a.attnum > 0;

    -- unique indexes (primary keys and unique constraints included)
    RETURN QUERY
    SELECT format('index %I', ic.relname),
           'a unique index that does not lead with the tenant column reveals whether another tenant holds a key',
           format('Recreate it as UNIQUE (%I, ...).', tenant_column)
      FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
     WHERE i.indrelid = rel AND i.indisunique
       AND (tatt IS NULL OR i.indkey[0] <> tatt);

    -- exclusion constraints
    RETURN QUERY
    SELECT format('constraint %I', c.conname),
           'an exclusion constraint that does not lead with the tenant column reveals other tenants'' rows',
           format('Make %I the first element of the constraint.', tenant_column)
      FROM pg_constraint c
     WHERE c.conrelid = rel AND c.contype = 'x'
       AND (tatt IS NULL OR c.conkey[1] <> tatt);

    -- an exclusion constraint that compares the tenant column with another
    -- operator than = spans tenants
    RETURN QUERY
    SELECT format('constraint %I', c.conname),
           'an exclusion constraint must compare the tenant column with =, or it compares rows of different tenants',
           format('Use EXCLUDE USING gist (%I WITH =, ...).', tenant_column)
      FROM pg_constraint c
     WHERE c.conrelid = rel AND c.contype = 'x'
       AND c.conkey[1] = tatt AND c.conexclop[1] <> 'pg_catalog.=(bigint,bigint)'::regoperator;

    -- foreign keys from this table to a table outside protection: deleting or
    -- changing a key there fails (or cascades) only when some tenant uses it
    RETURN QUERY
    SELECT format('constraint %I', c.conname),
           format('a foreign key to %s, which is not protected, reveals which keys tenants use, and its actions reach every tenant''s rows',
                  c.confrelid::regclass),
           format('Protect %s first (its keys then lead with the tenant column), or keep the values in a CHECK constraint or an enum.',
                  c.confrelid::regclass)
      FROM pg_constraint c
     WHERE unprotected_refs AND c.conrelid = rel AND c.contype = 'f' AND c.conparentid = 0
       AND c.confrelid <> rel AND c.confrelid <> 'utilix.tenant'::regclass
       AND NOT EXISTS (SELECT 1 FROM utilix.protected_table p WHERE p.relid = c.confrelid);

    -- foreign keys from this table to another protected table
    RETURN QUERY
    SELECT format('constraint %I', c.conname),
           'a foreign key to a protected table that does not lead with both tenant columns reveals other tenants'' keys',
           format('Reference (%I, ...) to (%I, ...).', _oracle_problems.tenant_column, p.tenant_column)
      FROM pg_constraint c
      JOIN utilix.protected_table p ON p.relid = c.confrelid
      JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attname = p.tenant_column
     WHERE c.conrelid = rel AND c.contype = 'f' AND c.conparentid = 0
       AND c.confrelid <> rel
       AND (tatt IS NULL OR c.conkey[1] <> tatt OR c.confkey[1] <> fa.attnum);

    -- foreign keys from any table into this one: only from a protected table,
    -- leading with both tenant columns (anyone can insert any key elsewhere)
    RETURN QUERY
    SELECT format('constraint %I on %s', c.conname, c.conrelid::regclass),
           'a foreign key into a protected table must come from a protected table and lead with both tenant columns, or inserts there reveal which keys exist',
           format('Protect %s first, with its foreign key leading with its tenant column and referencing (%I, ...).',
                  c.conrelid::regclass, _oracle_problems.tenant_column)
      FROM pg_constraint c
      LEFT JOIN utilix.protected_table p ON p.relid = c.conrelid
      LEFT JOIN pg_attribute pa ON pa.attrelid = c.conrelid AND pa.attname = p.tenant_column
     WHERE c.confrelid = rel AND c.contype = 'f' AND c.conparentid = 0 AND c.conrelid <> rel
       AND (tatt IS NULL OR c.confkey[1] <> tatt OR p.relid IS NULL OR c.conkey[1] <> pa.attnum);
    -- a self-reference must lead with the tenant column on both sides
    RETURN QUERY
    SELECT format('constraint %I', c.conname),
           'a self-referencing foreign key must lead with the tenant column on both sides',
           format('Reference (%I, ...) to (%I, ...).', _oracle_problems.tenant_column, _oracle_problems.tenant_column)
      FROM pg_constraint c
     WHERE c.confrelid = rel AND c.conrelid = rel AND c.contype = 'f' AND c.conparentid = 0
       AND (tatt IS NULL OR c.confkey[1] <> tatt OR c.conkey[1] <> tatt);
END
$$;
COMMENT ON FUNCTION utilix._oracle_problems(regclass, name, boolean) IS
    'internal: unique constraints and foreign keys of a table that would reveal other tenants'' keys';

-- Everything code attached to a table can reach: its own objects, and
-- through them functions, operators, types (domains at any depth, with their
-- constraints and defaults, attributes, casts) and views.  (The label names
-- the attached object each came through.)
CREATE FUNCTION utilix._reach(rel regclass)
    RETURNS TABLE (classid oid, objid oid, label text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET jit = off
    AS $$
WITH RECURSIVE
  -- the stored expressions attached to the table, and those of the domains
  -- its columns use (the functions they call, built-ins included)
  expr(label, e) AS (
    SELECT format('constraint %I', c.conname), c.conbin FROM pg_constraint c
     WHERE c.conrelid = rel AND c.conbin IS NOT NULL
    UNION ALL SELECT format('the default of column %I', a.attname), d.adbin
                FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
               WHERE d.adrelid = rel
    UNION ALL SELECT format('trigger %I', t.tgname), t.tgqual FROM pg_trigger t
               WHERE t.tgrelid = rel AND t.tgqual IS NOT NULL
    UNION ALL SELECT format('index %s', i.indexrelid::regclass), i.indexprs FROM pg_index i
               WHERE i.indrelid = rel AND i.indexprs IS NOT NULL
    UNION ALL SELECT format('index %s', i.indexrelid::regclass), i.indpred FROM pg_index i
               WHERE i.indrelid = rel AND i.indpred IS NOT NULL
    UNION ALL SELECT format('policy %I', p.polname), p.polqual FROM pg_policy p
               WHERE p.polrelid = rel AND p.polqual IS NOT NULL
    UNION ALL SELECT format('policy %I', p.polname), p.polwithcheck FROM pg_policy p
               WHERE p.polrelid = rel AND p.polwithcheck IS NOT NULL
    UNION ALL SELECT format('statistics %I', x.stxname), x.stxexprs FROM pg_statistic_ext x
               WHERE x.stxrelid = rel AND x.stxexprs IS NOT NULL
  ),
  own(classid, objid, label) AS (
    SELECT 'pg_class'::regclass::oid, rel::oid, 'a column type'
    UNION ALL SELECT 'pg_proc'::regclass, f.f, x.label FROM expr x, unnest(utilix._expr_functions(x.e)) AS f(f)
    UNION ALL SELECT 'pg_constraint'::regclass, c.oid, format('constraint %I', c.conname)
                FROM pg_constraint c WHERE c.conrelid = rel
    UNION ALL SELECT 'pg_trigger'::regclass, t.oid, format('trigger %I', t.tgname)
                FROM pg_trigger t WHERE t.tgrelid = rel
    UNION ALL SELECT 'pg_class'::regclass, i.indexrelid, format('index %s', i.indexrelid::regclass)
                FROM pg_index i WHERE i.indrelid = rel
    UNION ALL SELECT 'pg_attrdef'::regclass, d.oid, format('the default of column %I', a.attname)
                FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
               WHERE d.adrelid = rel
    UNION ALL SELECT 'pg_policy'::regclass, p.oid, format('policy %I', p.polname)
                FROM pg_policy p WHERE p.polrelid = rel
    UNION ALL SELECT 'pg_rewrite'::regclass, r.oid, format('rule %I', r.rulename)
                FROM pg_rewrite r WHERE r.ev_class = rel
    UNION ALL SELECT 'pg_statistic_ext'::regclass, x.oid, format('statistics %I', x.stxname)
                FROM pg_statistic_ext x WHERE x.stxrelid = rel
  ),
  reach(classid, objid, label) AS (
    SELECT classid, objid, label FROM own
    UNION
    SELECT n.classid, n.objid, r.label
      FROM reach r, LATERAL (
        SELECT d.refclassid AS classid, d.refobjid AS objid
          FROM pg_depend d
         WHERE d.classid = r.classid AND d.objid = r.objid AND d.deptype IN ('n', 'a', 'i')
           AND d.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass, 'pg_type'::regclass,
                                'pg_class'::regclass, 'pg_collation'::regclass,
                                'pg_ts_config'::regclass, 'pg_ts_dict'::regclass)
           AND NOT (d.refclassid = 'pg_class'::regclass AND d.refobjid = rel)
        UNION ALL
        SELECT 'pg_constraint'::regclass, c.oid FROM pg_constraint c
         WHERE r.classid = 'pg_type'::regclass AND c.contypid = r.objid
        UNION ALL
        -- a domain's constraints, however the domain was reached (a column, a
        -- cast in an expression, a deeper domain, an attribute, a range),
        -- with the built-ins they call
        SELECT 'pg_proc'::regclass, f.f FROM pg_constraint c, unnest(utilix._expr_functions(c.conbin)) AS f(f)
         WHERE r.classid = 'pg_constraint'::regclass AND c.oid = r.objid AND c.contypid <> 0
           AND c.conbin IS NOT NULL
        UNION ALL
        -- and its default, which fills a column that an insert leaves out
        SELECT 'pg_proc'::regclass, f.f FROM pg_type t, unnest(utilix._expr_functions(t.typdefaultbin)) AS f(f)
         WHERE r.classid = 'pg_type'::regclass AND t.oid = r.objid AND t.typdefaultbin IS NOT NULL
        UNION ALL
        -- a view or materialized view that attached code reads: its query, and the built-ins it calls
        SELECT 'pg_rewrite'::regclass, w.oid FROM pg_rewrite w
         WHERE r.classid = 'pg_class'::regclass AND w.ev_class = r.objid AND r.objid <> rel
        UNION ALL
        SELECT 'pg_proc'::regclass, f.f FROM pg_rewrite w, unnest(utilix._expr_functions(w.ev_action)) AS f(f)
         WHERE r.classid = 'pg_rewrite'::regclass AND w.oid = r.objid
        UNION ALL
        SELECT 'pg_proc'::regclass, k.castfunc FROM pg_cast k
         WHERE r.classid = 'pg_type'::regclass AND k.castfunc <> 0
           AND (k.castsource = r.objid OR k.casttarget = r.objid)
        UNION ALL
        SELECT 'pg_type'::regclass, a.atttypid FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
         WHERE r.classid = 'pg_type'::regclass AND t.oid = r.objid AND t.typrelid <> 0
           AND a.attnum > 0 AND NOT a.attisdropped
        UNION ALL
        SELECT 'pg_proc'::regclass, f.f FROM pg_operator o,
               unnest(ARRAY[o.oprcode::oid, o.oprrest::oid, o.oprjoin::oid]) AS f(f)
         WHERE r.classid = 'pg_operator'::regclass AND o.oid = r.objid AND f.f <> 0
      ) n
  )
SELECT classid, objid, label FROM reach
$$;
COMMENT ON FUNCTION utilix._reach(regclass) IS
    'internal: the functions, operators, types and views that code attached to a table can reach';

-- Every function that code attached to a table can run over its rows and
-- that is not allowed there: the code of triggers (and their WHEN), column
-- defaults, constraints, indexes, policies, rules and extended statistics,
-- the operators they use, and the column types with their domain
-- constraints, range functions, attributes and casts.  Such code sees
-- tenants' rows with the privileges of whoever touches them (a tenant's
-- session and its context, utilix's own functions, the worker), so:
--  - every such function must be owned by a superuser (reviewed code, that
--    the table owner cannot change), and
--  - apart from the table's trigger functions themselves, it must be
--    IMMUTABLE: a superuser's built-in with side effects or that runs SQL
--    handed to it as text (setval, pg_notify, advisory locks,
--    query_to_xml, table_to_xml, ...) would carry rows out as surely as
--    the owner's own function.  A few volatile built-ins that see no row
--    (now(), nextval(), gen_random_uuid(), random(), ...) and utilix's own
--    functions that are not VOLATILE are allowed too.
CREATE FUNCTION utilix._expr_functions(expr pg_node_tree) RETURNS oid[]
    LANGUAGE c STRICT STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_expr_functions';
COMMENT ON FUNCTION utilix._expr_functions(pg_node_tree) IS
    'internal: the functions a stored expression calls, operators, casts and type input/output included (built-in functions have no pg_depend entries)';

CREATE FUNCTION utilix._untrusted_code(rel regclass)
    RETURNS TABLE (object text, function regprocedure, owner name, reason text)
    LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp SET jit = off
    AS $$
SELECT DISTINCT r.label, NULL::regprocedure, o.rolname,
       format('reads %s %s, owned by role %I, which is not a superuser (a view runs with its owner''s rights)',
              CASE c.relkind WHEN 'm' THEN 'materialized view' ELSE 'view' END, c.oid::regclass, o.rolname)
  FROM utilix._reach(rel) r
  JOIN pg_class c ON c.oid = r.objid AND c.relkind IN ('v', 'm')
  JOIN pg_roles o ON o.oid = c.relowner
 WHERE r.classid = 'pg_class'::regclass AND NOT o.rolsuper
UNION
SELECT DISTINCT r.label, p.oid::regprocedure, o.rolname,
       format('runs function %s, ', p.oid::regprocedure) ||
       CASE WHEN NOT o.rolsuper THEN format('owned by role %I, which is not a superuser', o.rolname)
            ELSE 'which is not IMMUTABLE (it could carry rows out through its side effects or the SQL it runs)' END
  FROM utilix._reach(rel) r
  JOIN pg_proc p ON p.oid = r.objid
  JOIN pg_roles o ON o.oid = p.proowner
 WHERE r.classid = 'pg_proc'::regclass
   AND (NOT o.rolsuper
        OR (p.provolatile <> 'i'
            AND p.oid NOT IN (SELECT t.tgfoid FROM pg_trigger t WHERE t.tgrelid = rel)
            AND p.oid NOT IN ('pg_catalog.now()'::regprocedure, 'pg_catalog.clock_timestamp()'::regprocedure,
                              'pg_catalog.statement_timestamp()'::regprocedure,
                              'pg_catalog.transaction_timestamp()'::regprocedure,
                              'pg_catalog.nextval(regclass)'::regprocedure, 'pg_catalog.gen_random_uuid()'::regprocedure,
                              'pg_catalog.random()'::regprocedure)
            AND NOT (p.provolatile <> 'v' AND EXISTS (
                     SELECT 1 FROM pg_depend e JOIN pg_extension x ON x.oid = e.refobjid
                      WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e'
                        AND e.refclassid = 'pg_extension'::regclass AND x.extname = 'utilix'))))
$$;
COMMENT ON FUNCTION utilix._untrusted_code(regclass) IS
    'internal: functions that code attached to the table (triggers, defaults, constraints, indexes, policies, column types and casts) can run over its rows and that are not allowed there (not owned by a superuser, or not immutable)';

-- Statistics of index expressions are shown in pg_stats without row level
-- security (the index has none): keep them from being collected.
CREATE FUNCTION utilix._hide_index_statistics(rel regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    SET utilix.internal_ddl = on SET client_min_messages = warning
    AS $$
DECLARE
    ix record;
BEGIN
    FOR ix IN SELECT i.indexrelid, a.attnum
                FROM pg_index i
                JOIN pg_attribute a ON a.attrelid = i.indexrelid AND a.attnum > 0
               WHERE i.indrelid = rel AND i.indkey[a.attnum - 1] = 0
                 AND a.attstattarget IS DISTINCT FROM 0 LOOP
        EXECUTE format('ALTER INDEX %s ALTER COLUMN %s SET STATISTICS 0', ix.indexrelid::regclass, ix.attnum);
        DELETE FROM pg_statistic WHERE starelid = ix.indexrelid AND staattnum = ix.attnum;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix._hide_index_statistics(regclass) IS
    'internal: sets the statistics target of the expression columns of a protected table''s indexes to 0 and removes what was collected';

CREATE FUNCTION utilix.protect(rel regclass, tenant_column name DEFAULT 'tenant_id') RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = warning
    SET utilix.internal_ddl = on
    AS $$
DECLARE
    cls record;
    att record;
    prob record;
    has_rows boolean;
    parent_protected boolean;
    child oid;
    qual text;
BEGIN
    IF rel IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'table and tenant column must not be null' USING ERRCODE = '22004';
    END IF;
    IF tenant_column = '' THEN
        RAISE EXCEPTION 'tenant column must not be empty' USING ERRCODE = '22023';
    END IF;
    SELECT c.relkind, c.relpersistence, c.relispartition, n.nspname, c.relname
      INTO cls
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation with OID % does not exist', rel::oid USING ERRCODE = '42P01';
    END IF;
    IF cls.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '"%" is not a table', rel::text
            USING ERRCODE = '42809', HINT = 'Only ordinary and partitioned tables can be protected.';
    END IF;
    IF cls.nspname IN ('pg_catalog', 'information_schema', 'utilix', 'pg_toast')
       OR cls.relpersistence = 't' THEN
        RAISE EXCEPTION 'table "%" cannot be protected', rel::text
            USING ERRCODE = '42501', DETAIL = 'System, temporary and utilix''s own tables are not tenant data.';
    END IF;

    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', rel);

    SELECT a.attnum, a.atttypid, a.attgenerated, a.attidentity INTO att
      FROM pg_attribute a
     WHERE a.attrelid = rel AND a.attname = tenant_column AND NOT a.attisdropped AND a.attnum > 0;
    IF FOUND AND (att.atttypid <> 'bigint'::regtype OR att.attgenerated <> '' OR att.attidentity <> '') THEN
        RAISE EXCEPTION 'tenant column "%" of table "%" must be a plain bigint column', tenant_column, rel::text
            USING ERRCODE = '42804';
    END IF;

    -- refuse existence oracles before changing anything; references to tables
    -- not yet protected are checked when the transaction commits (see
    -- utilix._check_references), so that tables that reference each other
    -- can be protected one after the other in one transaction
    FOR prob IN SELECT * FROM utilix._oracle_problems(rel, tenant_column, false) LOOP
        RAISE EXCEPTION 'cannot protect table "%": % (%)', rel::text, prob.object, prob.problem
            USING ERRCODE = '42P16', HINT = prob.fix;
    END LOOP;
    FOR prob IN SELECT * FROM utilix._untrusted_code(rel) LOOP
        RAISE EXCEPTION 'cannot protect table "%": % %',
                        rel::text, prob.object, prob.reason
            USING ERRCODE = '42501',
                  DETAIL = 'Code attached to a protected table sees tenants'' rows with the privileges of whoever touches them.',
                  HINT = 'Attached code may call only IMMUTABLE functions owned by a superuser (trigger functions: owned by a superuser); have a superuser review a function and take it over (ALTER FUNCTION ... OWNER TO), or remove it.';
    END LOOP;

    IF att.attnum IS NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', rel) INTO has_rows;
        IF has_rows THEN
            RAISE EXCEPTION 'table "%" has rows but no tenant column "%"', rel::text, tenant_column
                USING ERRCODE = '55000',
                      HINT = 'Add the column as bigint, fill in each row''s tenant id, then protect the table.';
        END IF;
        IF cls.relispartition THEN
            RAISE EXCEPTION 'partition "%" has no tenant column "%"', rel::text, tenant_column
                USING ERRCODE = '55000', HINT = 'Protect the partitioned parent table instead.';
        END IF;
        -- the default is set apart: ADD COLUMN would evaluate it once, now, without a context
        EXECUTE format('ALTER TABLE %s ADD COLUMN %I bigint NOT NULL', rel, tenant_column);
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT utilix.current_tenant()', rel, tenant_column);
    ELSE
        EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL, ALTER COLUMN %I SET DEFAULT utilix.current_tenant()',
                       rel, tenant_column, tenant_column);
    END IF;

    -- every tenant id must name a registered tenant (partitions inherit the parent's key)
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint c
         WHERE c.conrelid = rel AND c.contype = 'f'
           AND c.confrelid = 'utilix.tenant'::regclass
           AND c.conkey = ARRAY[(SELECT attnum FROM pg_attribute
                                  WHERE attrelid = rel AND attname = tenant_column)]::smallint[])
    THEN
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT utilix_tenant_fk FOREIGN KEY (%I) REFERENCES utilix.tenant (id)',
                       rel, tenant_column);
    END IF;

    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', rel);
    EXECUTE format('DROP POLICY IF EXISTS utilix_tenant ON %s', rel);
    EXECUTE format('DROP POLICY IF EXISTS utilix_access ON %s', rel);
    qual := format('%I OPERATOR(pg_catalog.=) utilix.current_tenant()', tenant_column);
    EXECUTE format('CREATE POLICY utilix_tenant ON %s AS RESTRICTIVE FOR ALL TO PUBLIC USING (%s) WITH CHECK (%s)',
                   rel, qual, qual);
    -- the rights model: reading needs the read right, writing the write right;
    -- written as a comparison of the tenant column, it is an index condition
    -- evaluated once per scan (and no sub-select keeps parallel query away)
    EXECUTE format('CREATE POLICY utilix_access ON %s AS PERMISSIVE FOR ALL TO PUBLIC USING (%I OPERATOR(pg_catalog.=) utilix.tenant_if_may(%L)) WITH CHECK (%I OPERATOR(pg_catalog.=) utilix.tenant_if_may(%L))',
                   rel, tenant_column, 'read', tenant_column, 'write');
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'utilix_rights') THEN
        EXECUTE format('CREATE TRIGGER utilix_rights BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION utilix._check_rights()',
                       rel);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'utilix_guard_tenant') THEN
        EXECUTE format('CREATE TRIGGER utilix_guard_tenant BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION utilix._guard_tenant(%L)',
                       rel, tenant_column);
    END IF;

    INSERT INTO utilix.protected_table (schema_name, table_name, tenant_column, relid)
        VALUES (cls.nspname, cls.relname, tenant_column, rel)
        ON CONFLICT (schema_name, table_name) DO UPDATE
            SET tenant_column = EXCLUDED.tenant_column, relid = EXCLUDED.relid,
                protected_at = now(), protected_by = session_user;

    PERFORM utilix._hide_index_statistics(rel);

    -- partitions are tables of their own: protect each one
    FOR child IN SELECT inhrelid FROM pg_inherits WHERE inhparent = rel LOOP
        PERFORM utilix.protect(child::regclass, tenant_column);
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix.protect(regclass, name) IS
    'operator: puts a table (and its partitions) under tenant isolation: tenant column, FORCE row level security, a restrictive tenant policy, a guard against moving rows between tenants';

-- At commit: a protected table references only protected tables (and
-- utilix.tenant).  Deferred, so that a table and the tables it references
-- can be protected in any order within one transaction.
CREATE FUNCTION utilix._check_references() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    prob record;
    rel regclass := to_regclass(format('%I.%I', NEW.schema_name, NEW.table_name));
BEGIN
    IF rel IS NULL OR NOT EXISTS (SELECT 1 FROM utilix.protected_table p
                                   WHERE p.schema_name = NEW.schema_name AND p.table_name = NEW.table_name) THEN
        RETURN NULL;
    END IF;
    FOR prob IN SELECT * FROM utilix._oracle_problems(rel, NEW.tenant_column) LOOP
        RAISE EXCEPTION 'protected table "%" cannot keep %: %', rel::text, prob.object, prob.problem
            USING ERRCODE = '42P16', HINT = prob.fix || ' Tables that reference each other are protected in one transaction.';
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION utilix._check_references() IS
    'internal: deferred check that a newly protected table references only protected tables';
CREATE CONSTRAINT TRIGGER utilix_check_references AFTER INSERT OR UPDATE ON utilix.protected_table
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION utilix._check_references();

CREATE FUNCTION utilix.unprotect(rel regclass) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp SET client_min_messages = warning
    SET utilix.internal_ddl = on
    AS $$
DECLARE
    child oid;
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table must not be null' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM utilix.protected_table WHERE relid = rel) THEN
        RAISE EXCEPTION 'table "%" is not protected', rel::text USING ERRCODE = '22023';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_constraint c JOIN utilix.protected_table p ON p.relid = c.conrelid
                WHERE c.confrelid = rel AND c.contype = 'f' AND c.conrelid <> rel
                  AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = c.conrelid AND i.inhparent = rel)) THEN
        RAISE EXCEPTION 'table "%" is referenced by a protected table', rel::text
            USING ERRCODE = '2BP01', HINT = 'Unprotect the referencing tables first, or drop their foreign keys.';
    END IF;
    FOR child IN SELECT inhrelid FROM pg_inherits WHERE inhparent = rel LOOP
        IF EXISTS (SELECT 1 FROM utilix.protected_table WHERE relid = child) THEN
            PERFORM utilix.unprotect(child::regclass);
        END IF;
    END LOOP;
    EXECUTE format('DROP POLICY IF EXISTS utilix_tenant ON %s', rel);
    EXECUTE format('DROP POLICY IF EXISTS utilix_access ON %s', rel);
    EXECUTE format('DROP TRIGGER IF EXISTS utilix_guard_tenant ON %s', rel);
    EXECUTE format('DROP TRIGGER IF EXISTS utilix_rights ON %s', rel);
    EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY', rel);
    DELETE FROM utilix.protected_table WHERE relid = rel;
END
$$;
COMMENT ON FUNCTION utilix.unprotect(regclass) IS
    'operator: removes tenant isolation from a table (the tenant column and its data stay)';

CREATE FUNCTION utilix.protect_schema(schema name, tenant_column name DEFAULT 'tenant_id') RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF schema IS NULL OR tenant_column IS NULL THEN
        RAISE EXCEPTION 'schema and tenant column must not be null' USING ERRCODE = '22004';
    END IF;
    IF tenant_column = '' THEN
        RAISE EXCEPTION 'tenant column must not be empty' USING ERRCODE = '22023';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000';
    END IF;
    IF schema IN ('pg_catalog', 'information_schema', 'utilix', 'pg_toast') THEN
        RAISE EXCEPTION 'schema "%" cannot be protected', schema USING ERRCODE = '42501';
    END IF;
    INSERT INTO utilix.protected_schema (schema_name, tenant_column) VALUES (schema, tenant_column)
        ON CONFLICT (schema_name) DO UPDATE SET tenant_column = EXCLUDED.tenant_column;
END
$$;
COMMENT ON FUNCTION utilix.protect_schema(name, name) IS
    'operator: every table created in the schema from now on is protected at creation';

CREATE FUNCTION utilix.unprotect_schema(schema name) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
BEGIN
    IF schema IS NULL THEN
        RAISE EXCEPTION 'schema must not be null' USING ERRCODE = '22004';
    END IF;
    DELETE FROM utilix.protected_schema WHERE schema_name = schema;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'schema "%" is not protected', schema USING ERRCODE = '22023';
    END IF;
END
$$;
COMMENT ON FUNCTION utilix.unprotect_schema(name) IS
    'operator: new tables in the schema are no longer protected automatically (existing ones stay protected)';

-- One row per protected table, with the state of each safeguard.
CREATE VIEW utilix.protected_tables AS
    SELECT to_regclass(format('%I.%I', p.schema_name, p.table_name)) AS table_name,
           p.schema_name, p.table_name AS relname, p.tenant_column,
           c.relkind = 'p' AS partitioned,
           (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) AS partition_of,
           COALESCE(c.relrowsecurity, false) AS rls_enabled,
           COALESCE(c.relforcerowsecurity, false) AS rls_forced,
           EXISTS (SELECT 1 FROM pg_catalog.pg_policy pol
                    WHERE pol.polrelid = c.oid AND pol.polname = 'utilix_tenant'
                      AND NOT pol.polpermissive AND pol.polcmd = '*') AS tenant_policy,
           EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                    WHERE t.tgrelid = c.oid AND t.tgname = 'utilix_guard_tenant'
                      AND t.tgenabled = 'O') AS guard_trigger,
           p.protected_at, p.protected_by
      FROM utilix.protected_table p
      LEFT JOIN pg_catalog.pg_class c
        ON c.oid = to_regclass(format('%I.%I', p.schema_name, p.table_name));
COMMENT ON VIEW utilix.protected_tables IS
    'operator: every protected table with the state of its safeguards (all should be true)';

-- Every protected table whose safeguards are not all in place.
CREATE FUNCTION utilix._integrity_problems(rels oid[] DEFAULT NULL)
    RETURNS TABLE (table_name text, problem text, oracle boolean, fix text)
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp SET jit = off
    AS $$
DECLARE
    p record;
    o record;
    expected text;
    actual_using text;
    actual_check text;
BEGIN
    FOR p IN SELECT * FROM utilix.protected_tables t
              WHERE rels IS NULL OR t.table_name::oid = ANY (rels) LOOP
        IF p.table_name IS NULL THEN
            CONTINUE;
        END IF;
        IF NOT p.rls_enabled THEN
            oracle := false; fix := NULL; table_name := p.table_name::text; problem := 'row level security is disabled'; RETURN NEXT;
        END IF;
        IF NOT p.rls_forced THEN
            oracle := false; fix := NULL; table_name := p.table_name::text; problem := 'row level security is not forced'; RETURN NEXT;
        END IF;
        -- utilix's triggers are judged by their whole definition (CREATE OR
        -- REPLACE TRIGGER can change events, arguments or WHEN under the same name)
        IF NOT p.guard_trigger OR NOT EXISTS (
               SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p.table_name AND t.tgname = 'utilix_guard_tenant'
                  AND t.tgfoid = 'utilix._guard_tenant()'::regprocedure AND t.tgtype = 23
                  AND t.tgnargs = 1 AND t.tgargs = convert_to(p.tenant_column, 'UTF8') || '\x00'::bytea
                  AND t.tgqual IS NULL AND t.tgattr = ''::int2vector) THEN
            oracle := false; fix := NULL; table_name := p.table_name::text; problem := 'trigger utilix_guard_tenant is missing, disabled, enabled for replica sessions only or altered'; RETURN NEXT;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p.table_name AND t.tgname = 'utilix_rights'
                         AND t.tgenabled = 'O' AND t.tgfoid = 'utilix._check_rights()'::regprocedure
                         AND t.tgtype = 62 AND t.tgnargs = 0 AND t.tgqual IS NULL AND t.tgattr = ''::int2vector) THEN
            oracle := false; fix := NULL; table_name := p.table_name::text;
            problem := 'trigger utilix_rights is missing, disabled, enabled for replica sessions only or altered'; RETURN NEXT;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_policy pol
                        WHERE pol.polrelid = p.table_name AND pol.polname = 'utilix_access' AND pol.polpermissive
                          AND pol.polcmd = '*' AND pol.polroles = '{0}'
                          AND pg_get_expr(pol.polqual, pol.polrelid) = format('(%I = utilix.tenant_if_may(''read''::text))', p.tenant_column)
                          AND pg_get_expr(pol.polwithcheck, pol.polrelid) = format('(%I = utilix.tenant_if_may(''write''::text))', p.tenant_column)) THEN
            oracle := false; fix := NULL; table_name := p.table_name::text;
            problem := 'policy utilix_access is missing or altered'; RETURN NEXT;
        END IF;
        -- another permissive policy would widen the rights model; a rule could copy rows away
        IF EXISTS (SELECT 1 FROM pg_policy pol
                    WHERE pol.polrelid = p.table_name AND pol.polpermissive AND pol.polname <> 'utilix_access') THEN
            oracle := false; fix := NULL; table_name := p.table_name::text;
            problem := 'a permissive policy other than utilix_access was added (make it AS RESTRICTIVE)'; RETURN NEXT;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_rewrite rw WHERE rw.ev_class = p.table_name AND rw.rulename <> '_RETURN') THEN
            oracle := false; fix := NULL; table_name := p.table_name::text;
            problem := 'a rule was added (rules could copy tenants'' rows elsewhere)'; RETURN NEXT;
        END IF;
        expected := format('(%I = utilix.current_tenant())', p.tenant_column);
        SELECT pg_get_expr(pol.polqual, pol.polrelid), pg_get_expr(pol.polwithcheck, pol.polrelid)
          INTO actual_using, actual_check
          FROM pg_policy pol
         WHERE pol.polrelid = p.table_name AND pol.polname = 'utilix_tenant'
           AND NOT pol.polpermissive AND pol.polcmd = '*'
           AND pol.polroles = '{0}';
        IF NOT FOUND OR actual_using IS DISTINCT FROM expected OR actual_check IS DISTINCT FROM expected THEN
            oracle := false; fix := NULL; table_name := p.table_name::text; problem := 'policy utilix_tenant is missing or altered'; RETURN NEXT;
        END IF;
        -- encrypted columns: the seal trigger and each column's CHECK must stay
        IF EXISTS (SELECT 1 FROM utilix.encrypted_column e WHERE e.relid = p.table_name::oid) THEN
            IF NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p.table_name AND t.tgname = 'zz_utilix_seal'
                             AND t.tgenabled = 'O' AND t.tgfoid = 'utilix._seal_row()'::regprocedure
                             AND t.tgtype = 23 AND t.tgnargs = 0 AND t.tgqual IS NULL AND t.tgattr = ''::int2vector) THEN
                oracle := false; fix := NULL; table_name := p.table_name::text;
                problem := 'trigger zz_utilix_seal is missing, disabled, enabled for replica sessions only or altered'; RETURN NEXT;
            END IF;
            -- the constraint is judged by what it checks, not by its name
            IF EXISTS (SELECT 1 FROM utilix.encrypted_column e
                        WHERE e.relid = p.table_name::oid
                          AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                                           WHERE k.conrelid = p.table_name AND k.conname = 'utilix_sealed_' || e.column_id
                                             AND k.contype = 'c'
                                             AND pg_get_expr(k.conbin, k.conrelid) = format('utilix.is_sealed(%I)', e.column_name))) THEN
                oracle := false; fix := NULL; table_name := p.table_name::text;
                problem := 'a CHECK constraint utilix_sealed_* of an encrypted column is missing or altered'; RETURN NEXT;
            END IF;
        END IF;
        FOR o IN SELECT * FROM utilix._oracle_problems(p.table_name, p.tenant_column) LOOP
            oracle := true; fix := o.fix; table_name := p.table_name::text;
            problem := o.object || ': ' || o.problem; RETURN NEXT;
        END LOOP;
        -- the tenant column keeps its default and its reference to utilix.tenant
        IF NOT EXISTS (SELECT 1 FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                        WHERE d.adrelid = p.table_name AND a.attname = p.tenant_column
                          AND pg_get_expr(d.adbin, d.adrelid) = 'utilix.current_tenant()') THEN
            oracle := false; fix := NULL; table_name := p.table_name::text;
            problem := format('the default of tenant column %I is missing or altered', p.tenant_column); RETURN NEXT;
        END IF;
        IF NOT EXISTS (SELECT 1 FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
                        WHERE k.conrelid = p.table_name AND k.contype = 'f' AND k.confrelid = 'utilix.tenant'::regclass
                          AND array_length(k.conkey, 1) = 1 AND a.attname = p.tenant_column) THEN
            oracle := false; fix := NULL; table_name := p.table_name::text;
            problem := format('the foreign key of tenant column %I to utilix.tenant is missing', p.tenant_column); RETURN NEXT;
        END IF;
        -- a parent that is not protected reads and changes every tenant's rows through inheritance
        IF EXISTS (WITH RECURSIVE a(r) AS (
                       SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = p.table_name
                       UNION SELECT i.inhparent FROM pg_inherits i JOIN a ON i.inhrelid = a.r)
                   SELECT 1 FROM a WHERE NOT EXISTS (SELECT 1 FROM utilix.protected_table q WHERE q.relid = a.r)) THEN
            oracle := true; table_name := p.table_name::text;
            problem := 'a parent or ancestor that is not protected (queries through it would read every tenant''s rows)';
            fix := 'Protect the parent tables too, or detach the table.';
            RETURN NEXT;
        END IF;
        FOR o IN SELECT * FROM utilix._untrusted_code(p.table_name) LOOP
            oracle := true; table_name := p.table_name::text;
            problem := format('%s that %s (code attached to a protected table sees tenants'' rows)',
                              o.object, o.reason);
            fix := 'Attached code may call only IMMUTABLE functions owned by a superuser (trigger functions: owned by a superuser); have a superuser review a function and take it over (ALTER FUNCTION ... OWNER TO), or remove it.';
            RETURN NEXT;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix._integrity_problems(oid[]) IS 'internal: protected tables whose safeguards are not all in place';

-- Keep the catalog true across renames and restores: names are
-- authoritative; a relid is refreshed when its name resolves elsewhere, and
-- names follow the relid when the old name no longer exists (a rename).
CREATE FUNCTION utilix._sync_protected() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    rn record;
BEGIN
    -- restore: the names resolve to another relid
    UPDATE utilix.protected_table p
       SET relid = to_regclass(format('%I.%I', p.schema_name, p.table_name))
     WHERE to_regclass(format('%I.%I', p.schema_name, p.table_name)) IS NOT NULL
       AND p.relid <> to_regclass(format('%I.%I', p.schema_name, p.table_name));
    -- rename: the old name is gone, the relid is there; what names the table follows
    FOR rn IN SELECT p.schema_name AS old_s, p.table_name AS old_t, n.nspname AS new_s, c.relname AS new_t
                FROM utilix.protected_table p
                JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE to_regclass(format('%I.%I', p.schema_name, p.table_name)) IS NULL LOOP
        UPDATE utilix.retention_policy r SET schema_name = rn.new_s, table_name = rn.new_t
         WHERE r.schema_name = rn.old_s AND r.table_name = rn.old_t;
        UPDATE utilix.protected_table p SET schema_name = rn.new_s, table_name = rn.new_t
         WHERE p.schema_name = rn.old_s AND p.table_name = rn.old_t;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix._sync_protected() IS 'internal: follows renames and restores in utilix.protected_table';

CREATE FUNCTION utilix._exec_as_owner(rel regclass, sql text, args tid[] DEFAULT NULL, reseal boolean DEFAULT false)
    RETURNS text[]
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'utilix_exec_as_owner';
COMMENT ON FUNCTION utilix._exec_as_owner(regclass, text, tid[], boolean) IS
    'internal: runs one statement of utilix''s privileged code on a table as its owner, without row level security, as a security-restricted operation; returns the first row, or the number of rows processed';

CREATE FUNCTION utilix._has_rows(rel regclass) RETURNS boolean
    LANGUAGE plpgsql STABLE STRICT SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    found boolean;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = rel) THEN
        RAISE EXCEPTION 'relation with OID % does not exist', rel::oid USING ERRCODE = '42P01';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT FROM %s)', rel) INTO found;
    RETURN found;
END
$$;
COMMENT ON FUNCTION utilix._has_rows(regclass) IS 'internal: does the table (and its children) hold a row';

CREATE FUNCTION utilix._written_here(x xid) RETURNS boolean
    LANGUAGE c VOLATILE STRICT
    AS 'MODULE_PATHNAME', 'utilix_written_here';
COMMENT ON FUNCTION utilix._written_here(xid) IS
    'internal: is this the transaction (or a subtransaction of it) that wrote a row version with this xmin, not yet visible to anyone else?';

CREATE FUNCTION utilix._invoker_is_superuser() RETURNS boolean
    LANGUAGE c STABLE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_invoker_is_superuser';
COMMENT ON FUNCTION utilix._invoker_is_superuser() IS
    'internal: is the role that ran the statement (after SET ROLE, before SECURITY DEFINER) a superuser';

CREATE FUNCTION utilix._on_ddl_end() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    cmd record;
    sch record;
    part record;
    bad record;
    touched oid[];
BEGIN
    IF current_setting('utilix.internal_ddl', true) = 'on' THEN
        RETURN;
    END IF;
    PERFORM utilix._sync_protected();
    PERFORM utilix._sync_encrypted();

    -- new tables in protected schemas
    FOR cmd IN SELECT * FROM pg_event_trigger_ddl_commands()
                WHERE command_tag IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO')
                  AND object_type = 'table' LOOP
        SELECT s.* INTO sch
          FROM utilix.protected_schema s JOIN pg_class c ON c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = s.schema_name)
         WHERE c.oid = cmd.objid AND c.relkind IN ('r', 'p') AND c.relpersistence <> 't';
        IF FOUND AND NOT EXISTS (SELECT 1 FROM utilix.protected_table WHERE relid = cmd.objid)
           AND NOT EXISTS (SELECT 1 FROM pg_inherits i JOIN utilix.protected_table p ON p.relid = i.inhparent
                            WHERE i.inhrelid = cmd.objid) THEN
            -- CREATE TABLE AS brings rows its creator chose, under any tenant id
            IF NOT utilix._invoker_is_superuser() AND utilix._has_rows(cmd.objid::regclass) THEN
                RAISE EXCEPTION 'table "%" cannot be created with rows in protected schema "%"',
                                cmd.objid::regclass, sch.schema_name
                    USING ERRCODE = '42501',
                          DETAIL = 'Its rows would join tenants'' rows without the tenant checks of an insert.',
                          HINT = 'Create the table empty and insert the rows under each tenant''s context.';
            END IF;
            PERFORM utilix.protect(cmd.objid::regclass, sch.tenant_column);
        END IF;
    END LOOP;

    -- partitions created or attached under a protected parent
    FOR part IN SELECT i.inhrelid, p.tenant_column
                  FROM pg_inherits i JOIN utilix.protected_table p ON p.relid = i.inhparent
                 WHERE NOT EXISTS (SELECT 1 FROM utilix.protected_table q WHERE q.relid = i.inhrelid) LOOP
        PERFORM utilix.protect(part.inhrelid::regclass, part.tenant_column);
    END LOOP;

    -- the tables this command touched, and the tables they reference
    SELECT array_agg(DISTINCT r) INTO touched FROM (
        SELECT CASE c.object_type
                 WHEN 'table' THEN c.objid
                 WHEN 'table column' THEN c.objid
                 WHEN 'index' THEN (SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = c.objid)
                 WHEN 'policy' THEN (SELECT pol.polrelid FROM pg_policy pol WHERE pol.oid = c.objid)
                 WHEN 'trigger' THEN (SELECT t.tgrelid FROM pg_trigger t WHERE t.oid = c.objid)
                 WHEN 'table constraint' THEN (SELECT k.conrelid FROM pg_constraint k WHERE k.oid = c.objid)
                 WHEN 'rule' THEN (SELECT rw.ev_class FROM pg_rewrite rw WHERE rw.oid = c.objid)
                 WHEN 'statistics object' THEN (SELECT x.stxrelid FROM pg_statistic_ext x WHERE x.oid = c.objid)
               END AS r
          FROM pg_event_trigger_ddl_commands() c) s
     WHERE r IS NOT NULL;
    -- a domain or type that protected tables reach (a column, a cast in an
    -- index expression, ...) changes only by a superuser: a constraint added
    -- later, or a renamed enum label, would change what REINDEX, CLUSTER or a
    -- rewrite evaluates over every tenant's rows
    -- (the same for text search configurations and dictionaries, collations,
    -- functions and operators that protected tables reach)
    IF NOT utilix._invoker_is_superuser() THEN
        FOR cmd IN SELECT c.object_type, c.object_identity,
                          CASE c.object_type WHEN 'domain constraint' THEN 'pg_type'::regclass::oid ELSE c.classid END AS cls,
                          CASE c.object_type WHEN 'domain constraint'
                               THEN (SELECT k.contypid FROM pg_constraint k WHERE k.oid = c.objid)
                               ELSE c.objid END AS obj
                     FROM pg_event_trigger_ddl_commands() c
                    WHERE c.command_tag LIKE 'ALTER %'
                      AND c.classid <> 'pg_class'::regclass LOOP
            IF EXISTS (SELECT 1 FROM utilix.protected_table p, utilix._reach(p.relid::regclass) r
                        WHERE to_regclass(format('%I.%I', p.schema_name, p.table_name)) IS NOT NULL
                          AND r.classid = cmd.cls AND r.objid = cmd.obj) THEN
                RAISE EXCEPTION '% % is used by a protected table and can be altered only by a superuser',
                                cmd.object_type, cmd.object_identity
                    USING ERRCODE = '42501',
                          DETAIL = 'A change to it would change what maintenance commands evaluate over every tenant''s rows.',
                          HINT = 'Have a superuser review and run the change.';
            END IF;
        END LOOP;
    END IF;

    -- a cast, domain, type, operator or function can be reached from any protected table
    IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c
                WHERE c.object_type IN ('cast', 'domain', 'domain constraint', 'type', 'operator',
                                        'function', 'procedure', 'aggregate')) THEN
        touched := COALESCE(touched, '{}') || ARRAY(SELECT p.relid FROM utilix.protected_table p);
    END IF;
    IF touched IS NULL THEN
        RETURN;
    END IF;
    -- what is created on a parent (triggers, indexes, constraints) is cloned onto its partitions
    touched := touched || ARRAY(WITH RECURSIVE d(r) AS (
                                    SELECT unnest(touched)
                                    UNION SELECT i.inhrelid FROM pg_inherits i JOIN d ON i.inhparent = d.r)
                                SELECT r FROM d);
    touched := touched || ARRAY(SELECT k.confrelid FROM pg_constraint k
                                 WHERE k.conrelid = ANY (touched) AND k.contype = 'f');
    PERFORM utilix._hide_index_statistics(p.relid::regclass)
       FROM utilix.protected_table p
      WHERE p.relid = ANY (touched) AND to_regclass(format('%I.%I', p.schema_name, p.table_name)) IS NOT NULL;

    -- no one but a superuser may weaken a protected table
    FOR bad IN SELECT * FROM utilix._integrity_problems(touched) LOOP
        IF bad.oracle THEN
            -- an existence oracle is refused to everyone: unprotect first to add one
            RAISE EXCEPTION 'protected table "%" cannot get %', bad.table_name, bad.problem
                USING ERRCODE = '42P16', HINT = bad.fix;
        ELSIF utilix._invoker_is_superuser() THEN
            RAISE WARNING 'protected table "%": %', bad.table_name, bad.problem
                USING HINT = 'Call utilix.protect() again to restore its safeguards, or utilix.unprotect() to remove them.';
        ELSE
            RAISE EXCEPTION 'protected table "%" cannot be changed this way: %', bad.table_name, bad.problem
                USING ERRCODE = '42501',
                      HINT = 'Only a superuser can weaken a protected table; an operator can call utilix.unprotect().';
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION utilix._on_ddl_end() IS
    'internal: event trigger that protects new tables and partitions and refuses DDL that weakens protection';

CREATE FUNCTION utilix._on_sql_drop() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$
DECLARE
    dr record;
BEGIN
    -- utilix's policies and triggers go only with their table, or through utilix
    IF current_setting('utilix.internal_ddl', true) IS DISTINCT FROM 'on' THEN
        FOR dr IN SELECT o.* FROM pg_event_trigger_dropped_objects() o
                  WHERE o.object_type IN ('policy', 'trigger')
                    AND o.address_names[3] IN ('utilix_tenant', 'utilix_access', 'utilix_guard_tenant', 'utilix_rights', 'zz_utilix_seal')
                    AND EXISTS (SELECT 1 FROM utilix.protected_table p
                                 WHERE p.schema_name = o.address_names[1] AND p.table_name = o.address_names[2])
                    AND NOT EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() t
                                     WHERE t.object_type IN ('table', 'partitioned table')
                                       AND t.address_names[1] = o.address_names[1]
                                       AND t.address_names[2] = o.address_names[2]) LOOP
            IF utilix._invoker_is_superuser() THEN
                RAISE WARNING 'protected table "%.%": % % dropped', dr.address_names[1], dr.address_names[2],
                    dr.object_type, dr.address_names[3]
                    USING HINT = 'Call utilix.protect() again to restore its safeguards.';
            ELSE
                RAISE EXCEPTION 'protected table "%.%" cannot lose % %', dr.address_names[1], dr.address_names[2],
                    dr.object_type, dr.address_names[3]
                    USING ERRCODE = '42501', HINT = 'An operator can call utilix.unprotect().';
            END IF;
        END LOOP;
    END IF;
    -- days of the access log leave only through its retention
    IF EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() o
                WHERE o.object_type = 'table' AND o.schema_name = 'utilix'
                  AND o.object_name ~ '^access_log_[0-9]{8}$')
       AND NOT EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() o
                        WHERE o.object_type = 'partitioned table' AND o.schema_name = 'utilix'
                          AND o.object_name = 'access_log')
       AND NOT utilix._access_log_maintenance(NULL) THEN
        RAISE EXCEPTION 'days of the access log are dropped only by its retention'
            USING ERRCODE = '42501', HINT = 'See utilix.access_log_retention.';
    END IF;
    -- a protected table that goes (by DROP TABLE, or with its schema or a
    -- parent in a CASCADE) is recorded in the access log when the drop commits
    PERFORM utilix._log_event('admin', NULL, 'ok', format('protected table %I.%I dropped', p.schema_name, p.table_name),
                              on_commit => true)
       FROM utilix.protected_table p, pg_event_trigger_dropped_objects() d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = p.relid AND d.objsubid = 0
        AND d.object_type IN ('table', 'partitioned table');
    DELETE FROM utilix.protected_table p
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_class'::regclass AND d.objid = p.relid AND d.objsubid = 0
       AND d.object_type IN ('table', 'partitioned table');
    DELETE FROM utilix.protected_schema s
     USING pg_event_trigger_dropped_objects() d
     WHERE d.object_type = 'schema' AND d.object_name = s.schema_name;
END
$$;
COMMENT ON FUNCTION utilix._on_sql_drop() IS 'internal: event trigger that forgets dropped protected tables and schemas';

