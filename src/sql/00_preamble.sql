-- utilix install script, part 00: guard, preload check, roles, schema.
\echo Use "CREATE EXTENSION utilix" to load this file. \quit

-- Refuse cleanly (SQLSTATE 55000, with a hint) when not preloaded.
CREATE FUNCTION utilix._assert_preloaded() RETURNS void
    LANGUAGE c VOLATILE PARALLEL SAFE
    AS 'MODULE_PATHNAME', 'utilix_assert_preloaded';
COMMENT ON FUNCTION utilix._assert_preloaded() IS
    'internal: raises 55000 unless utilix is in shared_preload_libraries';
SELECT utilix._assert_preloaded();

-- Roles are cluster-wide: create them once, keep them across databases.
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'utilix_operator') THEN
        CREATE ROLE utilix_operator NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'utilix_issuer') THEN
        CREATE ROLE utilix_issuer NOLOGIN;
    END IF;
END
$roles$;
COMMENT ON ROLE utilix_operator IS 'utilix: platform operators (tenants, protection, keys, retention)';
COMMENT ON ROLE utilix_issuer IS 'utilix: the login service that mints tenant context tokens';

COMMENT ON SCHEMA utilix IS 'utilix: database-enforced tenant isolation, encryption, access history and retention';
REVOKE ALL ON SCHEMA utilix FROM PUBLIC;
GRANT USAGE ON SCHEMA utilix TO PUBLIC;

-- Statement trigger on utilix's catalogs: tells every backend to drop its
-- caches of tenant status, role bindings and the key-check value.
CREATE FUNCTION utilix._invalidate_cache() RETURNS trigger
    LANGUAGE c
    AS 'MODULE_PATHNAME', 'utilix_invalidate_cache';
COMMENT ON FUNCTION utilix._invalidate_cache() IS
    'internal: statement trigger that invalidates per-backend caches of utilix catalogs';

-- The access log's entry point for events recorded by utilix's own
-- functions (logins, administration, keys, purges).  Defined first so that
-- every later part can call it; the record leaves the transaction at once.
CREATE FUNCTION utilix._log_event(kind text, tenant bigint, outcome text, detail text DEFAULT NULL,
                                  app_user text DEFAULT NULL, on_commit boolean DEFAULT false) RETURNS boolean
    LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'utilix_log_event';
COMMENT ON FUNCTION utilix._log_event(text, bigint, text, text, text, boolean) IS
    'internal: queues an access log record of kind login, admin, key, purge or export: at once (kept through rollback: attempts), or with on_commit only if the transaction commits (work done)';
