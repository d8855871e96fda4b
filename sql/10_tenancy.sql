-- What a DBA and an application see when they protect tables and use contexts.
\set VERBOSITY terse
SET client_min_messages = warning;
SELECT utilix.create_tenant('acme') AS acme, utilix.create_tenant('globex', 'JP') AS globex \gset
-- bad tenant input
SELECT utilix.create_tenant('acme');
SELECT utilix.create_tenant('');
SELECT utilix.create_tenant('x;drop table y');
SELECT utilix.create_tenant('ok', 'Japan');
SELECT utilix.create_tenant(NULL);
SELECT name, status, data_region FROM utilix.tenants ORDER BY id;

CREATE SCHEMA meter;
CREATE TABLE meter.site (tenant_id bigint, site_id int, name text, PRIMARY KEY (tenant_id, site_id));
CREATE TABLE meter.reading (
    tenant_id bigint, site_id int, ts timestamptz, kwh numeric,
    PRIMARY KEY (tenant_id, site_id, ts),
    FOREIGN KEY (tenant_id, site_id) REFERENCES meter.site (tenant_id, site_id));
-- tables that reference each other are protected in one transaction: a
-- protected table may reference only protected tables (checked at commit),
-- and a protected table only be referenced by protected tables
SELECT utilix.protect('meter.site');
SELECT utilix.protect('meter.reading');
BEGIN;
SELECT utilix.protect('meter.reading');
SELECT utilix.protect('meter.site');
COMMIT;
SELECT table_name, tenant_column, rls_enabled, rls_forced, tenant_policy, guard_trigger
  FROM utilix.protected_tables ORDER BY 1::text;
-- what protect refuses, and why
CREATE TABLE meter.bad_pk (id int PRIMARY KEY);
SELECT utilix.protect('meter.bad_pk');
CREATE TABLE meter.bad_unique (tenant_id bigint, email text UNIQUE);
SELECT utilix.protect('meter.bad_unique');
CREATE TABLE meter.bad_fk (tenant_id bigint, site_id int REFERENCES meter.site (site_id));
CREATE TABLE meter.bad_type (tenant_id int);
SELECT utilix.protect('meter.bad_type');
CREATE VIEW meter.v AS SELECT 1 AS x;
SELECT utilix.protect('meter.v');
SELECT utilix.protect('pg_catalog.pg_class');
SELECT utilix.protect('meter.nonexistent');
SELECT utilix.protect(NULL);
INSERT INTO meter.bad_type VALUES (1);
SELECT utilix.protect('meter.bad_type', 'missing_column');
SELECT utilix.unprotect('meter.bad_type');

-- principals
CREATE ROLE regress_app;
CREATE ROLE regress_issuer IN ROLE utilix_issuer;
GRANT USAGE ON SCHEMA meter TO regress_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON meter.site, meter.reading TO regress_app;
SET ROLE regress_issuer;
SELECT utilix.issue_context(:acme, 'alice') AS tok_a \gset
SELECT utilix.issue_context(:globex, 'bob', '5 minutes', '{read,write}') AS tok_g \gset
SELECT utilix.issue_context(999, 'nobody');
SELECT utilix.issue_context(:acme, '');
SELECT utilix.issue_context(:acme, 'alice', '-1 minute');
SELECT utilix.issue_context(:acme, 'alice', '30 days');
SELECT utilix.issue_context(:acme, 'alice', '1 minute', '{READ}');
RESET ROLE;
SET ROLE regress_app;
SELECT utilix.issue_context(:acme, 'alice');
SELECT utilix.create_tenant('sneaky');
-- no context: fail closed
SELECT count(*) FROM meter.site;
SELECT utilix.current_tenant();
SELECT status FROM utilix.context_info();
-- each tenant writes and sees only its own rows
BEGIN;
SELECT utilix.set_context(:'tok_a') = :acme AS acme_context;
INSERT INTO meter.site (site_id, name) VALUES (1, 'Osaka plant'), (2, 'Kobe office');
INSERT INTO meter.reading (site_id, ts, kwh) VALUES (1, '2026-01-01 00:00Z', 10.5), (2, '2026-01-01 00:00Z', 3.25);
SELECT utilix.current_app_user(), app_user, rights, status FROM utilix.context_info();
COMMIT;
BEGIN;
SELECT utilix.set_context(:'tok_g') = :globex AS globex_context;
INSERT INTO meter.site (site_id, name) VALUES (1, 'Nagoya depot');
INSERT INTO meter.reading (site_id, ts, kwh) VALUES (1, '2026-01-01 00:00Z', 99);
SELECT site_id, name FROM meter.site ORDER BY 1;
COMMIT;
-- the same key in another tenant was no conflict; a reference to another tenant's site fails
BEGIN;
SELECT utilix.set_context(:'tok_g') IS NOT NULL;
INSERT INTO meter.reading (site_id, ts, kwh) VALUES (2, '2026-01-01 00:00Z', 1);
ROLLBACK;
BEGIN;
SELECT utilix.set_context(:'tok_g') IS NOT NULL;
INSERT INTO meter.site (tenant_id, site_id, name) VALUES (:acme, 9, 'planted');
ROLLBACK;
BEGIN;
SELECT utilix.set_context(:'tok_g') IS NOT NULL;
WITH u AS (UPDATE meter.site SET name = 'renamed' WHERE tenant_id = :acme RETURNING 1)
SELECT count(*) AS updated_of_acme FROM u;
WITH d AS (DELETE FROM meter.reading WHERE tenant_id = :acme RETURNING 1)
SELECT count(*) AS deleted_of_acme FROM d;
INSERT INTO meter.site (site_id, name) VALUES (1, 'x') ON CONFLICT (tenant_id, site_id) DO UPDATE SET name = 'upserted' RETURNING tenant_id = :globex AS own_tenant, name;
ROLLBACK;
BEGIN;
SELECT utilix.set_context(:'tok_g') IS NOT NULL;
UPDATE meter.site SET tenant_id = :acme;
ROLLBACK;
BEGIN;
SELECT utilix.set_context(:'tok_g') IS NOT NULL;
MERGE INTO meter.site s USING (VALUES (1, 'merged'), (2, 'merged')) v(site_id, name)
   ON s.site_id = v.site_id
 WHEN MATCHED THEN UPDATE SET name = v.name
 WHEN NOT MATCHED THEN INSERT (site_id, name) VALUES (v.site_id, v.name);
SELECT tenant_id = :globex AS own_tenant, site_id, name FROM meter.site ORDER BY site_id;
ROLLBACK;
BEGIN;
SELECT utilix.set_context(:'tok_a') IS NOT NULL;
SELECT site_id, name FROM meter.site ORDER BY site_id;
ROLLBACK;
-- the context ends with the transaction
SELECT count(*) FROM meter.site;
-- forged, edited and empty tokens
SET utilix.context = 'utx1.AAAA.BBBB';
SELECT set_config('utilix.context', 'not a token', false);
SELECT utilix.set_context('');
SELECT utilix.set_context(NULL);
SELECT utilix.set_context(:'tok_a' || 'x');
SELECT utilix.set_context(replace(:'tok_a', 'utx1.', 'utx2.'));
-- a session-level context stays until cleared
SELECT utilix.set_context(:'tok_a', false) = :acme AS session_context;
SELECT count(*) AS acme_sites FROM meter.site;
SHOW utilix.context;
SELECT utilix.clear_context();
SELECT count(*) FROM meter.site;
-- EXPLAIN would count other tenants' rows
BEGIN;
SELECT utilix.set_context(:'tok_a') IS NOT NULL;
EXPLAIN (COSTS OFF) SELECT * FROM meter.site;
ROLLBACK;
RESET ROLE;
-- tokens cannot be stored in role or function settings
ALTER ROLE regress_app SET utilix.context = :'tok_a';
CREATE FUNCTION meter.f() RETURNS int LANGUAGE sql SET utilix.context = :'tok_a' AS 'SELECT 1';
-- a terminated tenant's tokens stop working at once
UPDATE utilix.tenant SET status = 'terminated', terminated_at = now() WHERE id = :globex;
SET ROLE regress_app;
SELECT utilix.set_context(:'tok_g');
RESET ROLE;
UPDATE utilix.tenant SET status = 'active', terminated_at = NULL WHERE id = :globex;
-- a role bound to a tenant needs no token, and cannot use another tenant's
CREATE ROLE regress_report;
GRANT USAGE ON SCHEMA meter TO regress_report;
GRANT SELECT ON meter.site TO regress_report;
SELECT utilix.bind_role('regress_report', :acme);
SELECT utilix.bind_role('postgres', :acme);
SET ROLE regress_report;
SELECT site_id, name FROM meter.site ORDER BY 1;
SELECT tenant = :acme AS bound_to_acme, bound_role, status FROM utilix.context_info();
SELECT utilix.set_context(:'tok_g');
RESET ROLE;
SELECT utilix.unbind_role('regress_report');
SET ROLE regress_report;
SELECT count(*) FROM meter.site;
RESET ROLE;
-- the operator sees the catalog; renames are followed
ALTER TABLE meter.site RENAME TO sites;
SELECT table_name FROM utilix.protected_tables ORDER BY 1::text;
DROP TABLE meter.reading;
SELECT table_name FROM utilix.protected_tables ORDER BY 1::text;
DROP SCHEMA meter CASCADE;
DROP ROLE regress_app, regress_issuer, regress_report;
